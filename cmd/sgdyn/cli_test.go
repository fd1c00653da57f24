package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/train"
)

// TestHelp checks that every -h and --help exits 0 and shows the flags of
// the command or of each of its subcommands.
func TestHelp(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want []string // text the help must contain
	}{
		{[]string{"-h"}, []string{"train", "hessian", "ensemble merge --run DIR", "report", "run", "theory linreg --run DIR", "data fetch cifar10"}},
		{[]string{"--help"}, []string{"theory linreg"}},
		{[]string{"help"}, []string{"data verify"}},
		{[]string{"help", "theory"}, []string{"-val-fraction", "-steps"}},
		{[]string{"train", "-h"}, []string{"-run directory", "-out directory", "-val-fraction"}},
		{[]string{"train", "--help"}, []string{"-lr"}},
		{[]string{"hessian", "-h"}, []string{"-run directory", "-out directory", "-weights"}},
		{[]string{"ensemble", "-h"}, []string{"-replicas", "-shard", "Usage: sgdyn ensemble merge", "-name"}},
		{[]string{"ensemble", "--help"}, []string{"-replicas", "Usage: sgdyn ensemble merge"}},
		{[]string{"ensemble", "merge", "-h"}, []string{"-name", "-run directory", "-out directory"}},
		{[]string{"ensemble", "merge", "--help"}, []string{"-name"}},
		{[]string{"report", "-h"}, []string{"-resamples"}},
		{[]string{"run", "-h"}, []string{"-config", "-out directory", "-run directory"}},
		{[]string{"theory", "-h"}, []string{"theory linreg", "-steps", "-csv", "-val-fraction", "-run directory"}},
		{[]string{"theory", "--help"}, []string{"-steps"}},
		{[]string{"theory", "linreg", "-h"}, []string{"-steps", "-data"}},
		{[]string{"data", "-h"}, []string{"data fetch cifar10", "data verify cifar10", "-dir", "-url"}},
		{[]string{"data", "--help"}, []string{"-dir"}},
		{[]string{"data", "fetch", "-h"}, []string{"data fetch cifar10", "-url"}},
		{[]string{"data", "verify", "cifar10", "-h"}, []string{"-dir"}},
	}
	for _, c := range cases {
		r := sgdyn(t, dir, c.args...)
		help := r.stdout + r.stderr
		if r.code != 0 {
			t.Errorf("sgdyn %s: exit %d, want 0:\n%s", strings.Join(c.args, " "), r.code, help)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(help, w) {
				t.Errorf("sgdyn %s: help does not show %q:\n%s", strings.Join(c.args, " "), w, help)
			}
		}
	}
	// Without a command there is nothing to do: usage, and a failure.
	if r := sgdyn(t, dir); r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("sgdyn without a command: exit %d, %q", r.code, r.stderr)
	}
}

// writeRowsCSV writes a one-feature regression table: the first train
// rows have x = +-1, the last held rows x = +-3, so the mean of x^2 (the
// Hessian) tells which rows were used.
func writeRowsCSV(t *testing.T, path string, trainRows, held int) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("x1,y\n")
	for i := range trainRows + held {
		x := 1.0
		if i >= trainRows {
			x = 3
		}
		if i%2 == 1 {
			x = -x
		}
		noise := 0.1 * float64(i%3-1)
		fmt.Fprintf(&sb, "%g,%g\n", x, 0.5*x+noise)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

var eigenLine = regexp.MustCompile(`(?m)^eigenvalues of H: (\S+)$`)

// theoryLambda runs `sgdyn theory linreg` and returns its one eigenvalue
// and its rows line.
func theoryLambda(t *testing.T, dir string, args ...string) (float64, string) {
	t.Helper()
	out := mustRun(t, dir, append([]string{"theory", "linreg", "--steps", "2"}, args...)...)
	m := eigenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no eigenvalue line in:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	rows := regexp.MustCompile(`(?m)^rows: .*$`).FindString(out)
	return v, rows
}

// TestTheoryUsesTrainingRows checks that `sgdyn theory linreg` uses the
// rows a run trains on: the first 90% by default, all with val_fraction 0,
// whether it is given the run, the run's config or the CSV file.
func TestTheoryUsesTrainingRows(t *testing.T) {
	work := t.TempDir()
	writeRowsCSV(t, filepath.Join(work, "rows.csv"), 90, 10)
	mustRun(t, work, "train", "--run", "held", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "3")
	os.WriteFile(filepath.Join(work, "all.yaml"), []byte("model: {kind: linreg}\ndata: {path: rows.csv, val_fraction: 0}\nsgd: {lr: 0.01, batch: 4, steps: 3}\n"), 0o644)
	mustRun(t, work, "train", "--config", "all.yaml", "--out", "all")

	// The rows train itself loads for each run.
	for _, c := range []struct {
		run        string
		rows       int
		lambda     float64 // mean x^2 over those rows
		rowsPhrase string
	}{
		{"held", 90, 1, "training rows 1-90 of 100 (val_fraction 0.1: the last 10 held out"},
		{"all", 100, 1.8, "training rows 1-100 of 100 (val_fraction 0: no validation split"},
	} {
		cfg, err := train.LoadConfig(filepath.Join(work, c.run, train.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := train.LoadData(cfg.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		if ds.Train.Len() != c.rows {
			t.Fatalf("run %s trains on %d rows, want %d", c.run, ds.Train.Len(), c.rows)
		}
		for _, args := range [][]string{{"--run", c.run}, {"--out", c.run}, {"--config", filepath.Join(c.run, train.ConfigFile)}} {
			got, rows := theoryLambda(t, work, args...)
			if math.Abs(got-c.lambda) > 1e-9 || !strings.Contains(rows, c.rowsPhrase) {
				t.Errorf("theory %v: lambda %g and %q, want %g (the mean x^2 of the run's %d rows) and %q", args, got, rows, c.lambda, c.rows, c.rowsPhrase)
			}
		}
	}
	// The CSV file alone: the default split is train's.
	if got, rows := theoryLambda(t, work, "--data", "rows.csv", "--lr", "0.01", "--batch", "4"); got != 1 || !strings.Contains(rows, "1-90 of 100") {
		t.Errorf("theory --data: lambda %g, %q; want 1 on rows 1-90", got, rows)
	}
	if got, _ := theoryLambda(t, work, "--data", "rows.csv", "--lr", "0.01", "--batch", "4", "--val-fraction", "0"); math.Abs(got-1.8) > 1e-9 {
		t.Errorf("theory --data --val-fraction 0: lambda %g, want 1.8", got)
	}
	if got, rows := theoryLambda(t, work, "--data", "rows.csv", "--lr", "0.01", "--batch", "4", "--limit", "20"); got != 1 || !strings.Contains(rows, "1-20 of 100") || !strings.Contains(rows, "limit 20") {
		t.Errorf("theory --data --limit 20: lambda %g, %q", got, rows)
	}
	// The old --out FILE.csv spelling gets a pointer to --csv.
	if r := sgdyn(t, work, "theory", "linreg", "--data", "rows.csv", "--lr", "0.01", "--batch", "4", "--steps", "2", "--out", "table.csv"); r.code != 2 || !strings.Contains(r.stderr, "--csv FILE") {
		t.Errorf("theory --out table.csv: exit %d, %q; want 2 and a pointer to --csv", r.code, r.stderr)
	}
	mustRun(t, work, "theory", "linreg", "--run", "held", "--steps", "2", "--csv", "table.csv")
	if b, err := os.ReadFile(filepath.Join(work, "table.csv")); err != nil || !strings.HasPrefix(string(b), "step,discrete_u0,langevin_u0\n") {
		t.Errorf("--csv table: %v %q", err, b)
	}
}

// TestTrainValidatesFirst checks that a bad config is refused before the
// header and before anything is written.
func TestTrainValidatesFirst(t *testing.T) {
	work := t.TempDir()
	writeRowsCSV(t, filepath.Join(work, "rows.csv"), 18, 2)
	r := sgdyn(t, work, "train", "--run", "r5", "--model", "linreg", "--data", "rows.csv", "--lr", "-1")
	if r.code != 2 || !strings.Contains(r.stderr, "learning rate -1") {
		t.Errorf("lr -1: exit %d, %q", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("lr -1 printed %q before refusing", r.stdout)
	}
	// No validation split is for tables only: text needs its held-out part.
	os.WriteFile(filepath.Join(work, "corpus.txt"), []byte(strings.Repeat("to be or not to be\n", 50)), 0o644)
	r = sgdyn(t, work, "train", "--run", "r5", "--data", "corpus.txt", "--val-fraction", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "val_fraction 0: must be between 0 and 1 for text") || r.stdout != "" {
		t.Errorf("text with val_fraction 0: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// A data error is found after the lock is taken: still nothing left.
	r = sgdyn(t, work, "train", "--run", "runs/r6", "--model", "linreg", "--data", "rows.csv", "--batch", "100")
	if r.code != 2 || !strings.Contains(r.stderr, "larger than the data set") {
		t.Errorf("batch 100: exit %d, %q", r.code, r.stderr)
	}
	for _, d := range []string{"r5", "runs"} {
		if _, err := os.Stat(filepath.Join(work, d)); err == nil {
			t.Errorf("a refused train left %s behind", d)
		}
	}
}

// TestRunDirSpellings checks that --run and --out name the run directory
// alike, and that two different directories are refused.
func TestRunDirSpellings(t *testing.T) {
	work := t.TempDir()
	writeRowsCSV(t, filepath.Join(work, "rows.csv"), 18, 2)
	mustRun(t, work, "train", "--out", "a", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "2")
	if _, err := os.Stat(filepath.Join(work, "a", train.ConfigFile)); err != nil {
		t.Fatalf("train --out a: %v", err)
	}
	out := mustRun(t, work, "train", "--run", "a", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "2")
	if !strings.Contains(out, "already complete") {
		t.Errorf("train --run a after train --out a: %q, want the same run", out)
	}
	r := sgdyn(t, work, "train", "--run", "a", "--out", "b", "--model", "linreg", "--data", "rows.csv")
	if r.code != 2 || !strings.Contains(r.stderr, "--run a and --out b name two run directories") {
		t.Errorf("--run a --out b: exit %d, %q", r.code, r.stderr)
	}
	mustRun(t, work, "train", "--run", "a", "--out", "a", "--model", "linreg", "--data", "rows.csv", "--batch", "4", "--steps", "2")
	r = sgdyn(t, work, "ensemble", "merge", "--out", "a", "--name", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("ensemble merge --out: exit %d, %q; want the missing ensemble named", r.code, r.stderr)
	}
}

// writeDirections writes a (k, p) direction file.
func writeDirections(t *testing.T, path string, rows [][]float64) {
	t.Helper()
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	if err := npy.WriteNPY(path, []int{len(rows), len(rows[0])}, flat); err != nil {
		t.Fatal(err)
	}
}

// TestRelativePathsAndDirections trains with a relative data path, then
// probes and runs an ensemble from another working directory, and checks
// that direction files with non-unit or non-orthogonal rows are refused
// by every command that reads one.
func TestRelativePathsAndDirections(t *testing.T) {
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "c1"), 0o755)
	os.MkdirAll(filepath.Join(work, "elsewhere"), 0o755)
	writeLinregCSV(t, filepath.Join(work, "c1", "full.csv"), 100)
	mustRun(t, work, "train", "--run", "r", "--model", "linreg", "--data", "c1/full.csv", "--batch", "8", "--steps", "10")
	cfg, err := train.LoadConfig(filepath.Join(work, "r", train.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(work, "c1", "full.csv"); cfg.Data.Path != want {
		t.Errorf("config.yaml data path %q, want the absolute %q", cfg.Data.Path, want)
	}
	other := filepath.Join(work, "elsewhere")
	mustRun(t, other, "hessian", "--run", "../r", "--eval-examples", "64", "--top", "1", "--bottom", "1", "--bulk", "1",
		"--noise-batches", "4", "--density-starts", "-1", "--trace-samples", "-1")
	mustRun(t, other, "ensemble", "--run", "../r", "--replicas", "2", "--steps", "4")
	mustRun(t, other, "theory", "linreg", "--run", "../r", "--steps", "2")

	// Directions in the parameter space of this 3-parameter model.
	s := 1 / math.Sqrt2
	files := map[string][][]float64{
		"unit.npy":    {{1, 0, 0}, {0, s, s}},
		"scaled.npy":  {{1, 0, 0}, {0, 2 * s, 2 * s}},
		"oblique.npy": {{1, 0, 0}, {0.6, 0.8, 0}},
	}
	for name, rows := range files {
		writeDirections(t, filepath.Join(work, name), rows)
	}
	mustRun(t, work, "ensemble", "--run", "r", "--replicas", "2", "--steps", "3", "--directions", "unit.npy", "--name", "user")
	for _, args := range [][]string{
		{"ensemble", "--run", "r", "--replicas", "2", "--steps", "3", "--name", "bad"},
		{"train", "--run", "traj", "--model", "linreg", "--data", "c1/full.csv", "--steps", "3"},
		{"hessian", "--run", "r", "--eval-examples", "64", "--top", "1", "--bottom", "0", "--bulk", "0", "--noise-batches", "2", "--density-starts", "-1", "--trace-samples", "-1"},
	} {
		for file, want := range map[string]string{
			"scaled.npy":  "scaled.npy: row 1 has norm 2;",
			"oblique.npy": "oblique.npy: rows 0 and 1 have inner product 0.6;",
		} {
			r := sgdyn(t, work, append(args, "--directions", file)...)
			if r.code != 2 || !strings.Contains(r.stderr, want) {
				t.Errorf("sgdyn %s --directions %s: exit %d, %q; want 2 and %q", args[0], file, r.code, r.stderr, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(work, "traj")); err == nil {
		t.Error("train with a refused direction file left its run directory")
	}
}

// writeLinregCSV writes n rows of a noisy linear function of three features.
func writeLinregCSV(t *testing.T, path string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	var sb strings.Builder
	sb.WriteString("x1,x2,x3,y\n")
	for range n {
		a, b, c := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		fmt.Fprintf(&sb, "%.4f,%.4f,%.4f,%.4f\n", a, b, c, a-0.5*b+0.2*c+0.3*rng.NormFloat64())
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
