package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/data"
)

func runTheory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "linreg" {
		return errors.New("usage: sgdyn theory linreg --data FILE.csv --lr ETA --batch B --steps T")
	}
	fs := newFlagSet("theory linreg", "theory linreg --data FILE.csv --lr ETA --batch B --steps T [flags]", stderr)
	path := fs.String("data", "", "regression CSV `file` (x1..xd,y) (required)")
	eta := fs.Float64("lr", 0, "learning rate (required)")
	batch := fs.Int("batch", 0, "batch size (required)")
	steps := fs.Int("steps", 0, "steps to iterate (required)")
	sampling := fs.String("sampling", "with", "with or without replacement")
	every := fs.Int("every", 0, "print every K steps (default steps/20)")
	out := fs.String("out", "", "also write the full table as CSV to `file`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" || !(*eta > 0) || *batch < 1 || *steps < 1 {
		return errors.New("--data, a positive --lr, --batch and --steps are required")
	}
	mode, err := data.ParseSampling(*sampling)
	if err != nil {
		return err
	}
	t, err := data.LoadRegressionCSV(*path)
	if err != nil {
		return err
	}
	if *batch > t.Len() {
		return fmt.Errorf("batch %d larger than the data set (%d examples)", *batch, t.Len())
	}
	lr, err := analysis.NewLinReg(mat.NewDense(t.Len(), t.Dim, t.X), t.Targets)
	if err != nil {
		return err
	}
	var eig mat.EigenSym
	if !eig.Factorize(lr.H, true) {
		return errors.New("eigen-decomposition of the Hessian failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := t.Dim
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
	fmt.Fprintf(stdout, "linear regression %s: %d examples, d = %d, eta %g, batch %d (%s replacement), from the exact solution\n", *path, t.Len(), d, *eta, *batch, *sampling)
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
	if *out != "" {
		f, err := os.Create(*out)
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
