package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sgdyn/sgdyn/analysis/report"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "report [--resamples B] [--level L] DIR", stderr)
	resamples := fs.Int("resamples", 1000, "bootstrap resamples over replicas")
	level := fs.Float64("level", 0.95, "confidence level of the intervals")
	primary := fs.String("primary", "", "ensemble `name` that heads the summary (default: the run's own lr and batch, else the largest)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: sgdyn report [flags] RUN_DIR")
	}
	if !(*level > 0 && *level < 1) || *resamples < 10 {
		return fmt.Errorf("--level %g must be in (0, 1) and --resamples %d at least 10", *level, *resamples)
	}
	return writeReportWith(fs.Arg(0), report.Options{Resamples: *resamples, Level: *level, Primary: *primary}, stdout)
}

func writeReport(dir, primary string, stdout io.Writer) error {
	return writeReportWith(dir, report.Options{Primary: primary}, stdout)
}

func writeReportWith(dir string, o report.Options, stdout io.Writer) error {
	r, err := report.Build(dir, o)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "report")
	if err := report.Write(r, out); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	for _, e := range r.Ensembles {
		fmt.Fprintf(stdout, "  %s: ", e.Name)
		first := true
		for _, c := range []string{"confined", "diffusive", "unstable", "null", "undetermined"} {
			if n := e.Counts[c]; n > 0 {
				if !first {
					fmt.Fprint(stdout, ", ")
				}
				fmt.Fprintf(stdout, "%d %s", n, c)
				first = false
			}
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(out, "index.html"))
	return nil
}
