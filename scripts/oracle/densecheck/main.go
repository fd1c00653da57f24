// Command densecheck writes what hessian_torch.py needs to check a
// transformer run's dense Hessian, as the survey builds it (the sweep of
// models.DenseHessianer), against PyTorch's exact double backprop.
//
// It loads the run's reference point in float64, takes the survey's
// evaluation windows (evenly spaced over the training set) and writes
//
//	params.npy   (P)          the point w0
//	tokens.npy   (N, T)       input windows (token ids as float64)
//	labels.npy   (N, T)       next-token targets (likewise)
//	h-<step>.npy (P, P)       the sweep's Hessian at each finite-difference step
//	layout.json               the model's Tensors() and transformer settings
//
// Usage (from the repository root; see scripts/oracle/README.md):
//
//	go run ./scripts/oracle/densecheck -run RUN -examples 256 -steps 1e-4,1e-6 -out DIR
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/floatlist"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/train"
)

func main() {
	runDir := flag.String("run", "", "run directory of a transformer (required)")
	examples := flag.Int("examples", 256, "evaluation windows, evenly spaced over the training set")
	steps := flag.String("steps", "1e-4,1e-6", "comma-separated finite-difference steps")
	out := flag.String("out", "", "output directory (required)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("densecheck: ")
	if *runDir == "" || *out == "" {
		log.Fatal("-run and -out are required")
	}
	hs, err := floatlist.Positive(*steps)
	if err != nil {
		log.Fatalf("-steps: %v", err)
	}
	ref, err := train.LoadReference(*runDir, "")
	if err != nil {
		log.Fatal(err)
	}
	m, err := ref.NewProbeModel()
	if err != nil {
		log.Fatal(err)
	}
	dh, ok := m.(models.DenseHessianer)
	if !ok {
		log.Fatalf("the run's model (%s) has no dense Hessian sweep", ref.Config.Model.Kind)
	}
	m.SetParams(ref.W)
	train := ref.Data.Train
	idx := data.EvenlySpaced(train.Len(), *examples)
	var b data.Batch
	train.Fill(&b, idx)
	t := ref.Config.Model.Transformer.Context
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	write := func(name string, shape []int, v any) {
		if err := npy.WriteNPY(filepath.Join(*out, name), shape, v); err != nil {
			log.Fatal(err)
		}
	}
	p := m.NumParams()
	write("params.npy", []int{p}, ref.W)
	toks, labs := make([]float64, len(b.Tokens)), make([]float64, len(b.Labels))
	for i := range b.Tokens {
		toks[i], labs[i] = float64(b.Tokens[i]), float64(b.Labels[i])
	}
	write("tokens.npy", []int{b.N, t}, toks)
	write("labels.npy", []int{b.N, t}, labs)
	fmt.Printf("%s: %d parameters, %d windows of %d, GOMAXPROCS %d\n", *runDir, p, b.N, t, runtime.GOMAXPROCS(0))
	for _, h := range hs {
		t0 := time.Now()
		hm, asym, err := dh.DenseHessian(context.Background(), &b, h, runtime.GOMAXPROCS(0), nil)
		if err != nil {
			log.Fatal(err)
		}
		write(fmt.Sprintf("h-%g.npy", h), []int{p, p}, hm.RawSymmetric().Data)
		fmt.Printf("step %g: sweep %v, asymmetry %.3g\n", h, time.Since(t0).Round(time.Millisecond), asym)
	}
	layout, err := json.MarshalIndent(map[string]any{"tensors": m.Tensors(), "transformer": ref.Config.Model.Transformer, "vocab": ref.Data.Vocab, "steps": hs}, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "layout.json"), layout, 0o644); err != nil {
		log.Fatal(err)
	}
}
