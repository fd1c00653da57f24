package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/train"
)

func TestEnsembleSamplingList(t *testing.T) {
	const head = "model: {kind: linreg}\ndata: {kind: synthetic}\nsgd: {lr: 0.1, batch: 10, steps: 50}\n"
	names := func(y string, n int) []string {
		t.Helper()
		e, err := parseExperiment([]byte(head + y))
		if err != nil {
			t.Fatalf("%q: %v", y, err)
		}
		e.applySamplingDefault(n)
		var out []string
		for _, c := range e.ensembleConfigs() {
			s := c.Name + ":" + c.Sampling
			if c.Paired {
				s += ":paired"
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		yaml string
		n    int
		want string
	}{
		// 100 steps of batch 10: 1 epoch of 1000 examples, 10 of 100.
		{"ensemble: {steps: 100}", 1000, "lr0.1-b10:without"},
		{"ensemble: {steps: 100}", 100, "lr0.1-b10-with:with lr0.1-b10-without:without:paired"},
		{"ensemble: {steps: 100, sampling: without}", 100, "lr0.1-b10:without"},
		{"ensemble: {steps: 100, sampling: with}", 100, "lr0.1-b10:with"},
		{"ensemble: {steps: 100, sampling: [without, with], lr: [0.1, 0.2]}", 1000,
			"lr0.1-b10-without:without:paired lr0.1-b10-with:with lr0.2-b10-without:without:paired lr0.2-b10-with:with"},
		{"ensemble: {steps: 100, sampling: 'with,without'}", 1000, "lr0.1-b10-with:with lr0.1-b10-without:without:paired"},
	} {
		if got := strings.Join(names(tc.yaml, tc.n), " "); got != tc.want {
			t.Errorf("%s with %d examples: %s, want %s", tc.yaml, tc.n, got, tc.want)
		}
	}
	for _, bad := range []string{"ensemble: {sampling: [with, with]}", "ensemble: {sampling: sometimes}", "ensemble: {sampling: {a: 1}}"} {
		if _, err := parseExperiment([]byte(head + bad)); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want a one-line error", bad, err)
		}
	}
	e, _ := parseExperiment([]byte(head + "ensemble: {sampling: [with, without]}"))
	if got := e.Ensemble.surveySampling("without"); got != "without" {
		t.Errorf("survey sampling %q, want the training run's", got)
	}
	if got := e.Ensemble.surveySampling("other"); got != "with" {
		t.Errorf("survey sampling %q, want the first scheme", got)
	}
}

func TestSchemesNote(t *testing.T) {
	e, _ := parseExperiment([]byte("model: {kind: linreg}\ndata: {kind: synthetic}\nsgd: {batch: 10}\nensemble: {steps: 100}\n"))
	e.applySamplingDefault(100)
	note := schemesNote(e.ensembleConfigs(), 100)
	for _, want := range []string{"10 epochs", "describes the with-replacement ensembles (lr0.01-b10-with)", "reshuffling (lr0.01-b10-without)", "measured, not predicted"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q does not say %q", note, want)
		}
	}
	e.applySamplingDefault(1000)
	if note := schemesNote(e.ensembleConfigs(), 1000); note != "" {
		t.Errorf("within one epoch: note %q, want none", note)
	}
}

// TestEnsembleBothSchemes: `sgdyn ensemble --sampling with,without` runs
// one ensemble per scheme with the -with and -without names, pairs the
// reshuffled one, records N, and says which the paper's theory describes.
func TestEnsembleBothSchemes(t *testing.T) {
	work, run := tinyRun(t)
	ref, err := train.LoadReference(run, "")
	if err != nil {
		t.Fatal(err)
	}
	u := make([]float64, len(ref.W))
	u[0] = 1
	if err := npy.WriteNPY(filepath.Join(work, "u.npy"), []int{1, len(u)}, u); err != nil {
		t.Fatal(err)
	}
	n := ref.Data.Train.Len()
	steps := n/8 + 10 // just over one epoch at batch 8
	out := mustRun(t, work, "ensemble", "--run", "run", "--directions", "u.npy", "--replicas", "3", "--steps", strconv.Itoa(steps),
		"--sampling", "with,without", "--workers", "1")
	for _, want := range []string{"ensemble lr0.3-b8-with:", "sampling with,", "ensemble lr0.3-b8-without:", "sampling without,", "describes the with-replacement ensembles (lr0.3-b8-with)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for name, paired := range map[string]bool{"lr0.3-b8-with": false, "lr0.3-b8-without": true} {
		b, err := os.ReadFile(filepath.Join(run, "ensemble", name, train.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var m train.EnsembleManifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Paired != paired || m.TrainExamples != n {
			t.Errorf("%s: paired %v, train_examples %d; want %v, %d", name, m.Paired, m.TrainExamples, paired, n)
		}
	}
	if r := sgdyn(t, work, "ensemble", "--run", "run", "--directions", "u.npy", "--steps", "5", "--sampling", "with,with"); r.code == 0 || !strings.Contains(r.stderr, "listed twice") {
		t.Errorf("--sampling with,with: exit %d, %s", r.code, r.stderr)
	}
}
