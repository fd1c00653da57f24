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
