package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/train"
)

func runTheory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "linreg" {
		return errors.New("usage: sgdyn theory linreg (--run DIR | --config FILE | --data FILE.csv) --steps T [flags]")
	}
	fs := newFlagSet("theory linreg", "theory linreg --run DIR --steps T [--lr ETA] [--batch B] [flags]\n       sgdyn theory linreg --data FILE.csv --lr ETA --batch B --steps T [--val-fraction V] [flags]", stderr)
	runDir := runDirFlag(fs, "linreg run `directory` whose config gives the data, rows, lr, batch and sampling")
	cfgPath := fs.String("config", "", "training config `file` giving them instead")
	path := fs.String("data", "", "regression CSV `file` (x1..xd,y), instead of a run or config")
	valFraction := fs.Float64("val-fraction", 0.1, "with --data: share of the rows held out from the end, as sgdyn train does (0: every row)")
	limit := fs.Int("limit", 0, "with --data: use only the first N training rows, as sgdyn train --limit")
	eta := fs.Float64("lr", 0, "learning rate (default: the run's)")
	batch := fs.Int("batch", 0, "batch size (default: the run's)")
	steps := fs.Int("steps", 0, "steps to iterate (required)")
	sampling := fs.String("sampling", "", "with or without replacement (default: the run's; with --data, with)")
	every := fs.Int("every", 0, "print every K steps (default steps/20)")
	csvOut := fs.String("csv", "", "also write the full table as CSV to `file`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if strings.HasSuffix(*runDir, ".csv") {
		return fmt.Errorf("--out %s: --out and --run name a run directory; write the table with --csv FILE", *runDir)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c, source, err := theoryConfig(*runDir, *cfgPath, *path)
	if err != nil {
		return err
	}
	if source == "--data" {
		c.Data.ValFraction, c.Data.Limit = *valFraction, *limit
		c.SGD.Sampling = string(data.WithReplacement)
	} else if set["val-fraction"] || set["limit"] {
		return fmt.Errorf("--val-fraction and --limit go with --data; %s sets the rows", source)
	}
	if set["lr"] {
		c.SGD.LR = *eta
	}
	if set["batch"] {
		c.SGD.Batch = *batch
	}
	if *sampling != "" {
		c.SGD.Sampling = *sampling
	}
	c = c.WithDefaults()
	if c.Model.Kind != "linreg" || c.Data.Kind != "regression" && c.Data.Kind != "synthetic" {
		return fmt.Errorf("%s: model %s on %s data; the theory is for linreg on regression data", source, c.Model.Kind, c.Data.Kind)
	}
	if !(c.SGD.LR > 0) || c.SGD.Batch < 1 || *steps < 1 {
		return errors.New("a positive --lr, --batch and --steps are required")
	}
	mode, err := data.ParseSampling(c.SGD.Sampling)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	// The training rows exactly as train.LoadData gives them to a run.
	ds, err := train.LoadData(c)
	if err != nil {
		return err
	}
	n := ds.Train.Len()
	if c.SGD.Batch > n {
		return fmt.Errorf("batch %d larger than the data set (%d examples)", c.SGD.Batch, n)
	}
	var all data.Batch
	ds.Train.Fill(&all, data.EvenlySpaced(n, n))
	d := len(all.X) / n
	lr, err := analysis.NewLinReg(mat.NewDense(n, d, all.X), all.Targets)
	if err != nil {
		return err
	}
	*eta, *batch, *sampling = c.SGD.LR, c.SGD.Batch, c.SGD.Sampling
	var eig mat.EigenSym
	if !eig.Factorize(lr.H, true) {
		return errors.New("eigen-decomposition of the Hessian failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	dirs := make([][]float64, d)
	for i := range dirs {
		dirs[i] = mat.Col(nil, d-1-i, &vecs) // largest eigenvalue first
	}
	k := *every
	if k < 1 {
		k = max(1, *steps/20)
	}
	var at []int
	for s := 0; s <= *steps; s += k {
		at = append(at, s)
	}
	if at[len(at)-1] != *steps {
		at = append(at, *steps)
	}
	s := analysis.Sampling(mode)
	disc, err := lr.Recursion(*eta, *batch, s, at)
	if err != nil {
		return err
	}
	lang, err := lr.Langevin(*eta, *batch, s, at)
	if err != nil {
		return err
	}
	pd, err := analysis.ProjectCov(disc, dirs)
	if err != nil {
		return err
	}
	pl, err := analysis.ProjectCov(lang, dirs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "linear regression %s: %d examples, d = %d, eta %g, batch %d (%s replacement), from the exact solution\n", ds.Source, n, d, *eta, *batch, *sampling)
	fmt.Fprintf(stdout, "rows: %s\n", rowsUsed(ds, c.Data))
	fmt.Fprint(stdout, "eigenvalues of H:")
	for i := range dirs {
		fmt.Fprintf(stdout, " %.6g", vals[d-1-i])
	}
	fmt.Fprintf(stdout, "\neta * lambda_max = %.4g\n", *eta*vals[d-1])
	header := []string{"step"}
	for i := range dirs {
		header = append(header, fmt.Sprintf("discrete_u%d", i), fmt.Sprintf("langevin_u%d", i))
	}
	rows := [][]string{header}
	for ti, step := range at {
		row := []string{strconv.Itoa(step)}
		for i := range dirs {
			row = append(row, strconv.FormatFloat(pd[ti][i], 'g', -1, 64), strconv.FormatFloat(pl[ti][i], 'g', -1, 64))
		}
		rows = append(rows, row)
	}
	w := csv.NewWriter(stdout)
	w.Comma = '\t'
	w.WriteAll(rows)
	if *csvOut != "" {
		f, err := os.Create(*csvOut)
		if err != nil {
			return err
		}
		cw := csv.NewWriter(f)
		cw.WriteAll(rows)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return w.Error()
}

// theoryConfig is the training config whose data and rows the theory
// uses: a run's, a config file's, or the defaults of linreg on a CSV file.
func theoryConfig(runDir, cfgPath, csvPath string) (train.Config, string, error) {
	given := 0
	for _, s := range []string{runDir, cfgPath, csvPath} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return train.Config{}, "", errors.New("give one of --run DIR, --config FILE and --data FILE.csv")
	}
	switch {
	case runDir != "":
		p := filepath.Join(runDir, train.ConfigFile)
		if _, err := os.Stat(p); err != nil {
			return train.Config{}, "", fmt.Errorf("%s is not an sgdyn run directory (no %s)", runDir, train.ConfigFile)
		}
		c, err := train.LoadConfig(p)
		return c, "run " + runDir, err
	case cfgPath != "":
		c, err := train.LoadConfig(cfgPath)
		return c, "config " + cfgPath, err
	}
	c := train.DefaultConfig("linreg")
	c.Data.Path = csvPath
	return c, "--data", nil
}

// rowsUsed says which rows of the table the theory (and a run of this
// config) trains on.
func rowsUsed(ds *train.Data, dc train.DataConfig) string {
	n := ds.Train.Len()
	s := fmt.Sprintf("training rows 1-%d of %d", n, ds.Rows)
	switch {
	case ds.HeldOut == 0:
		s += " (val_fraction 0: no validation split"
	default:
		s += fmt.Sprintf(" (val_fraction %g: the last %d held out for validation", dc.ValFraction, ds.HeldOut)
	}
	if n < ds.Rows-ds.HeldOut {
		s += fmt.Sprintf("; limit %d", dc.Limit)
	}
	return s + "), as sgdyn train uses them"
}
