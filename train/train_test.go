package train

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
)

// writeCorpus writes a small synthetic text with learnable structure.
func writeCorpus(t *testing.T) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"}
	var sb strings.Builder
	for sb.Len() < 20000 {
		sb.WriteString(words[rng.IntN(len(words))])
	}
	p := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tinyTransformer(corpus string) Config {
	c := DefaultConfig("transformer")
	c.Model.Transformer = models.TransformerConfig{Layers: 1, Width: 8, Heads: 2, Context: 8}
	c.Data.Path = corpus
	c.SGD = SGDConfig{LR: 0.3, Batch: 4, Steps: 30, EvalEvery: 7, CheckpointEvery: 10, EvalExamples: 16}
	return c
}

func readAll(t *testing.T, dir string) (metrics []byte, params []byte) {
	t.Helper()
	m, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := LatestCheckpoint(dir)
	if err != nil || ck == nil {
		t.Fatalf("no checkpoint in %s: %v", dir, err)
	}
	p, err := os.ReadFile(ck.Path())
	if err != nil {
		t.Fatal(err)
	}
	return m, p
}

// TestResumeIsBitIdentical interrupts a run at several steps, continues it,
// and compares parameters and metrics byte for byte with an uninterrupted run.
func TestResumeIsBitIdentical(t *testing.T) {
	c := tinyTransformer(writeCorpus(t))
	whole := filepath.Join(t.TempDir(), "whole")
	// The trajectory is logged every 2 steps on 3 fixed random directions.
	ds, _ := LoadData(c.WithDefaults())
	m0, _ := models.New(c.WithDefaults().Model, ds.Shape, c.Seed)
	rng := rand.New(rand.NewPCG(9, 9))
	dirs := make([][]float64, 3)
	for i := range dirs {
		dirs[i] = make([]float64, m0.NumParams())
		for j := range dirs[i] {
			dirs[i][j] = rng.NormFloat64()
		}
	}
	trajOpts := func() *TrajectoryOptions { return &TrajectoryOptions{Directions: dirs, LogEvery: 2, SnapshotEvery: 10} }
	if _, err := Train(context.Background(), whole, c, Options{Trajectory: trajOpts()}); err != nil {
		t.Fatal(err)
	}
	wantMetrics, wantParams := readAll(t, whole)
	wantTraj, err := os.ReadFile(filepath.Join(whole, TrajectoryDir, TrajectoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if shape, _, _ := npyShape(filepath.Join(whole, TrajectoryDir, TrajectoryFile)); len(shape) != 2 || shape[0] != 16 || shape[1] != 6 {
		t.Errorf("trajectory shape %v, want (16, 6): steps 0, 2, ..., 30 and step, loss, distance, 3 projections", shape)
	}
	if n := bytes.Count(wantMetrics, []byte("\n")); n != 30+1+4+1 {
		t.Errorf("metrics has %d lines, want 30 steps + 5 evaluations + final", n)
	}

	for _, stops := range [][]int64{{1}, {7, 13}, {10, 20, 29}} {
		dir := filepath.Join(t.TempDir(), "resumed")
		for _, k := range stops {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := Train(ctx, dir, c, Options{Trajectory: trajOpts(), AfterStep: func(step int64, _ []float64) error {
				if step == k {
					cancel()
				}
				return nil
			}})
			cancel()
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("stop at %d: got %v, want ErrInterrupted", k, err)
			}
		}
		res, err := Train(context.Background(), dir, c, Options{Trajectory: trajOpts()})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, TrajectoryDir, TrajectoryFile)); !bytes.Equal(got, wantTraj) {
			t.Errorf("stops %v: trajectory differs from the uninterrupted run", stops)
		}
		if res.Resumed != stops[len(stops)-1] {
			t.Errorf("resumed from %d, want %d", res.Resumed, stops[len(stops)-1])
		}
		gotMetrics, gotParams := readAll(t, dir)
		if !bytes.Equal(gotMetrics, wantMetrics) {
			t.Errorf("stops %v: metrics differ from the uninterrupted run:\n%s\nwant\n%s", stops, gotMetrics, wantMetrics)
		}
		if !bytes.Equal(gotParams, wantParams) {
			t.Errorf("stops %v: final parameters differ from the uninterrupted run", stops)
		}
	}
}

// TestTrainingLearns checks that SGD lowers the validation loss of a linear
// regression with a known solution to near the noise floor.
func TestTrainingLearns(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "reg.csv")
	rng := rand.New(rand.NewPCG(5, 6))
	var sb strings.Builder
	sb.WriteString("x1,x2,x3,y\n")
	for i := 0; i < 500; i++ {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		y := 2*x[0] - x[1] + 0.5*x[2] + 0.01*rng.NormFloat64()
		sb.WriteString(strings.Join([]string{f(x[0]), f(x[1]), f(x[2]), f(y)}, ",") + "\n")
	}
	os.WriteFile(csv, []byte(sb.String()), 0o644)
	c := DefaultConfig("linreg")
	c.Model.DType = "float64"
	c.Data.Path = csv
	c.SGD = SGDConfig{LR: 0.1, Batch: 16, Steps: 400}
	res, err := Train(context.Background(), filepath.Join(dir, "run"), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Noise floor 0.5 * 0.01^2 = 5e-5.
	if res.Val.Loss > 1e-4 {
		t.Errorf("validation loss %g after 400 steps, want < 1e-4", res.Val.Loss)
	}
}

func f(x float64) string { return strings.TrimRight(strings.TrimRight(fmtG(x), "0"), ".") }

// TestDivergenceStops checks that a NaN loss stops the run with a clear
// error and leaves the metrics written so far intact.
func TestDivergenceStops(t *testing.T) {
	c := tinyTransformer(writeCorpus(t))
	c.SGD.LR = 1e30
	dir := filepath.Join(t.TempDir(), "run")
	_, err := Train(context.Background(), dir, c, Options{})
	var d *DivergedError
	if !errors.As(err, &d) {
		t.Fatalf("got %v, want a DivergedError", err)
	}
	m, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	lines := bytes.Split(bytes.TrimSpace(m), []byte("\n"))
	if int64(len(lines)) != d.Step { // the step-0 evaluation plus steps 1..d.Step-1
		t.Errorf("metrics has %d lines after divergence at step %d, want %d", len(lines), d.Step, d.Step)
	}
}

// TestBadInputLeavesRunUntouched runs bad commands against an existing run
// directory and checks every file in it is byte-identical afterwards.
func TestBadInputLeavesRunUntouched(t *testing.T) {
	corpus := writeCorpus(t)
	c := tinyTransformer(corpus)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Train(context.Background(), dir, c, Options{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	bad := map[string]func(*Config){
		"negative lr":       func(c *Config) { c.SGD.LR = -1 },
		"zero batch":        func(c *Config) { c.SGD.Batch = 0 },
		"batch > data":      func(c *Config) { c.SGD.Batch = 1 << 20 },
		"empty corpus":      func(c *Config) { c.Data.Path = empty },
		"missing corpus":    func(c *Config) { c.Data.Path = corpus + ".missing" },
		"different model":   func(c *Config) { c.Model.Transformer.Width = 16 },
		"momentum":          func(c *Config) { c.SGD.Momentum = 0.9 },
		"clipping":          func(c *Config) { c.SGD.GradClip = 1 },
		"unknown sampling":  func(c *Config) { c.SGD.Sampling = "stratified" },
		"more steps, other": func(c *Config) { c.SGD.Steps = 60; c.SGD.LR = 0.1 },
	}
	for name, mutate := range bad {
		bc := c
		mutate(&bc)
		if _, err := Train(context.Background(), dir, bc, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", name, err)
		}
		if after := snapshot(t, dir); !equalSnapshots(before, after) {
			t.Fatalf("%s: run directory changed", name)
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	s := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			s[p] = string(b)
		}
		return nil
	})
	return s
}

func equalSnapshots(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseConfigStrict(t *testing.T) {
	if _, err := ParseConfig([]byte("model:\n  kind: cnn\nsgd:\n  learning_rate: 0.1\n")); err == nil || !strings.Contains(err.Error(), "learning_rate") {
		t.Errorf("unknown key: got %v, want an error naming it", err)
	}
	if _, err := ParseConfig([]byte("sgd:\n  lr: fast\n")); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("ill-typed value: got %v, want a one-line error", err)
	}
	c, err := ParseConfig([]byte("model:\n  kind: cnn\nsgd:\n  lr: 0.02\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SGD.LR != 0.02 || c.SGD.Batch != 128 {
		t.Errorf("got lr %g batch %d, want 0.02 and the cnn default 128", c.SGD.LR, c.SGD.Batch)
	}
}

func fmtG(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }

func npyShape(path string) ([]int, any, error) { return npy.ReadNPY(path) }

// TestContinueWithOtherPathSpelling checks that a run continues when its
// data path is spelled differently but names the same file, and is refused
// when the file is another.
func TestContinueWithOtherPathSpelling(t *testing.T) {
	corpus := writeCorpus(t)
	c := tinyTransformer(corpus)
	c.SGD.Steps = 5
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Train(context.Background(), dir, c, Options{}); err != nil {
		t.Fatal(err)
	}
	c.Data.Path = filepath.Dir(corpus) + "/./" + filepath.Base(corpus)
	c.SGD.Steps = 8
	if _, err := Train(context.Background(), dir, c, Options{}); err != nil {
		t.Fatalf("continuing with %s: %v", c.Data.Path, err)
	}
	other := writeCorpus(t)
	c.Data.Path = other
	c.SGD.Steps = 10
	if _, err := Train(context.Background(), dir, c, Options{}); err == nil || !strings.Contains(err.Error(), "different config") {
		t.Fatalf("continuing on another corpus: %v, want a different-config error", err)
	}
}

// TestNewProbeModel checks that the probes get a float64 model that can
// hold its activation pattern, whatever implementation the run used.
func TestNewProbeModel(t *testing.T) {
	c := DefaultConfig("mlp")
	c.Model.Impl, c.Model.DType = "plain", "float32"
	c.Model.MLP = models.MLPConfig{Hidden: []int{4}, Activation: "relu"}
	r := &Reference{Config: c.WithDefaults(), Data: &Data{Shape: models.Shape{Inputs: 3, Classes: 2}}}
	m, err := r.NewProbeModel()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(models.Piecewise); !ok || m.DType() != "float64" {
		t.Fatalf("probe model %T in %s: want a float64 models.Piecewise", m, m.DType())
	}
	if run, _ := r.NewModel(""); run.DType() != "float32" {
		t.Fatalf("run model in %s, want the run's float32", run.DType())
	}
}
