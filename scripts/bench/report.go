package main

import (
	"fmt"
	"io"
)

// row is one model's results: per side, the step-time statistics.
type row struct {
	name  string
	flops float64
	sides []side
}

func makeRow(bm benchModel, sides []side) row {
	return row{name: bm.name, flops: bm.flops, sides: sides}
}

// printTable writes the markdown results table: per implementation the
// median step, its ratio to PyTorch's and to the fused kernels'. The noise
// column is the interquartile range of the step times relative to their
// median.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| model | impl | median ms/step | ours/torch | ours/fused | GFLOP/s | alloc/step | peak RSS MiB | IQR/median | steps |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		torch, fused := 0.0, 0.0
		for _, s := range r.sides {
			switch s.label {
			case "torch":
				torch = median(s.times)
			case "fused":
				fused = median(s.times)
			}
		}
		for _, s := range r.sides {
			med := median(s.times)
			ratio, vsFused, alloc := "", "", "n/a"
			if s.label != "torch" {
				ratio = fmt.Sprintf("%.2f", med/torch)
				vsFused = fmt.Sprintf("%.2f", med/fused)
				alloc = bytes(s.stats.AllocPerStep)
			}
			iqr := (quantile(s.times, 0.75) - quantile(s.times, 0.25)) / med
			fmt.Fprintf(w, "| %s | %s | %.3f | %s | %s | %.1f | %s | %.0f | %.0f%% | %d |\n",
				r.name, s.label, med, ratio, vsFused, r.flops/med/1e6, alloc, s.stats.RSSMB, 100*iqr, len(s.times))
		}
	}
	fmt.Fprintln(w)
}

func bytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
