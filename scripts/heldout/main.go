// Command heldout re-measures a finished survey's directions on examples
// the survey did not choose them on: the per-example gradient noise c on
// the survey's evaluation set and on a disjoint held-out sample of the same
// size (probe.HeldOutIndices), and ||H u|| of the flat directions on both,
// with the split-half estimate sqrt((H_A u) . (H_B u)) over the two halves
// of the held-out sample, whose square is unbiased for the training set.
// Surveys made since the held-out check exists record these themselves
// (c, c_eval and h_norm_heldout in directions.json); this is for older
// ones. It prints a table.
//
// Usage (from the repository root):
//
//	go run ./scripts/heldout -run R [-batch B] [-prefix flat-]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/floats"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

func main() {
	log.SetFlags(0)
	run := flag.String("run", "", "run directory with a survey in hessian/ (required)")
	batch := flag.Int("batch", 0, "batch size of c (default: the survey's)")
	prefix := flag.String("prefix", "flat-", "recheck ||H u|| for the directions whose source starts with this")
	flag.Parse()
	if *run == "" {
		log.Fatal("heldout: -run is required")
	}
	if err := recheck(*run, *batch, *prefix); err != nil {
		log.Fatalf("heldout: %v", err)
	}
}

func recheck(run string, batch int, prefix string) error {
	dir := filepath.Join(run, "hessian")
	var spec struct {
		EvalExamples int                 `json:"eval_examples"`
		Settings     probe.SurveyOptions `json:"settings"`
	}
	var dirs []probe.Direction
	if err := readJSON(filepath.Join(dir, "spectrum.json"), &spec); err != nil {
		return err
	}
	if err := readJSON(filepath.Join(dir, "directions.json"), &dirs); err != nil {
		return err
	}
	shape, raw, err := npy.ReadNPY(filepath.Join(dir, "directions.npy"))
	if err != nil {
		return err
	}
	v, ok := raw.([]float64)
	if !ok || len(shape) != 2 || shape[0] != len(dirs) {
		return fmt.Errorf("%s: want a float64 (%d, P) array", filepath.Join(dir, "directions.npy"), len(dirs))
	}
	vecs := make([][]float64, shape[0])
	for i := range vecs {
		vecs[i] = v[i*shape[1] : (i+1)*shape[1]]
	}
	ref, err := train.LoadReference(run, "")
	if err != nil {
		return err
	}
	m, err := ref.NewProbeModel()
	if err != nil {
		return err
	}
	if batch == 0 {
		batch = spec.Settings.BatchSize
	}
	ds := ref.Data.Train
	idx := data.EvenlySpaced(ds.Len(), spec.EvalExamples)
	held := probe.HeldOutIndices(ds.Len(), idx)
	if held == nil {
		return fmt.Errorf("the evaluation set takes %d of %d training examples: no room for a held-out sample", len(idx), ds.Len())
	}
	noise := func(on []int) ([]float64, error) {
		proj, err := probe.ExampleProjections(context.Background(), []models.Model{m}, ds, on, ref.W, vecs)
		if err != nil {
			return nil, err
		}
		ex, err := probe.NoiseFromProjections(proj, ds.Len(), batch, data.WithReplacement)
		if err != nil {
			return nil, err
		}
		return ex.C, nil
	}
	cEval, err := noise(idx)
	if err != nil {
		return err
	}
	cHeld, err := noise(held)
	if err != nil {
		return err
	}
	var b data.Batch
	ds.Fill(&b, idx)
	hEval, err := probe.NewHessian(m, &b, ref.W, probe.DefaultFDStep)
	if err != nil {
		return err
	}
	var flat [][]float64
	for i, d := range dirs {
		if strings.HasPrefix(d.Source, prefix) {
			flat = append(flat, vecs[i])
		}
	}
	heldNorms, split2, err := probe.HeldOutCurvature(context.Background(), m, ds, held, ref.W, probe.DefaultFDStep, flat)
	if err != nil {
		return err
	}
	hv := make([]float64, len(ref.W))
	fmt.Printf("%d evaluation and %d held-out examples of %d; c at batch %d, with replacement\n", len(idx), len(held), ds.Len(), batch)
	fmt.Printf("%-10s %11s %11s %8s %11s %11s %11s\n", "source", "c eval", "c held-out", "ratio", "|Hu| eval", "|Hu| held", "|Hu| split")
	k := 0
	for i, d := range dirs {
		he, hh, hs := "", "", ""
		if strings.HasPrefix(d.Source, prefix) {
			if err := hEval.Apply(hv, vecs[i]); err != nil {
				return err
			}
			he = fmt.Sprintf("%.4g", floats.Norm(hv, 2))
			hh, hs = fmt.Sprintf("%.4g", heldNorms[k]), fmt.Sprintf("%.4g", math.Sqrt(max(split2[k], 0)))
			k++
		}
		fmt.Printf("%-10s %11.4g %11.4g %8.2f %11s %11s %11s\n", d.Source, cEval[i], cHeld[i], cHeld[i]/cEval[i], he, hh, hs)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
