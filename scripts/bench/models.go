package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// benchModel is one benchmark: a model config, its data shape and batch,
// and the matching name in torch_step.py.
type benchModel struct {
	name  string
	cfg   models.Config
	shape models.Shape
	n     int     // batch size
	flops float64 // multiply-add FLOPs (2 per MAC) of one training step
}

// benchModels lists the benchmarks in the order they are run. The FLOP
// counts are 3x the forward pass's matrix products (forward, input gradient,
// weight gradient); elementwise work is not counted.
func benchModels() []benchModel {
	cnnFwd := 0.0
	ch := []int{3, 16, 32, 64}
	for l, hw := range []int{32, 16, 8} {
		cnnFwd += float64(ch[l+1] * ch[l] * 9 * hw * hw)
	}
	cnnFwd += 1024*64 + 64*10
	trFwd := func(layers, d, t, vocab int) float64 {
		return float64(t) * float64(layers*(12*d*d+2*t*d)+d*vocab)
	}
	return []benchModel{
		{"cnn", models.Config{Kind: "cnn"}, models.Shape{Image: []int{3, 32, 32}, Classes: 10}, 128, 6 * 128 * cnnFwd},
		{"transformer", models.Config{Kind: "transformer"}, models.Shape{Vocab: 65}, 32, 6 * 32 * trFwd(2, 64, 64, 65)},
		{"mlp", models.Config{Kind: "mlp"}, models.Shape{Inputs: 3072, Classes: 10}, 128, 6 * 128 * (3072*64 + 64*10)},
		{"tiny-mlp", models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{8}}}, models.Shape{Inputs: 36, Classes: 10}, 32, 6 * 32 * (36*8 + 8*10)},
		{"tiny-transformer", models.Config{Kind: "transformer", Transformer: models.TransformerConfig{Layers: 1, Width: 8, Heads: 2, Context: 16}},
			models.Shape{Vocab: 25}, 32, 6 * 32 * trFwd(1, 8, 16, 25)},
	}
}

func findModel(name string) (benchModel, error) {
	for _, b := range benchModels() {
		if b.name == name {
			return b, nil
		}
	}
	return benchModel{}, fmt.Errorf("unknown benchmark model %q", name)
}

// randomBatch returns a fixed random batch of n examples for the model.
func randomBatch(bm benchModel, n int, seed uint64) *data.Batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	b := &data.Batch{N: n}
	switch bm.cfg.Kind {
	case "transformer":
		t := bm.cfg.WithDefaults().Transformer.Context
		for range n * t {
			b.Tokens = append(b.Tokens, rng.IntN(bm.shape.Vocab))
			b.Labels = append(b.Labels, rng.IntN(bm.shape.Vocab))
		}
	default:
		feat := bm.shape.Inputs
		if bm.shape.Image != nil {
			feat = bm.shape.Image[0] * bm.shape.Image[1] * bm.shape.Image[2]
		}
		for range n * feat {
			b.X = append(b.X, rng.NormFloat64())
		}
		for range n {
			b.Labels = append(b.Labels, rng.IntN(bm.shape.Classes))
		}
	}
	return b
}

// stepper runs SGD steps through the models.Model interface: Grad, then
// SetParams of w - lr g.
type stepper struct {
	m    models.Model
	b    *data.Batch
	w, g []float64
}

func newStepper(bm benchModel, impl, dtype string, n int, seed uint64) (*stepper, error) {
	cfg := bm.cfg
	cfg.Impl, cfg.DType = impl, dtype
	m, err := models.New(cfg, bm.shape, seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bm.name, err)
	}
	s := &stepper{m: m, b: randomBatch(bm, n, seed), w: make([]float64, m.NumParams()), g: make([]float64, m.NumParams())}
	m.Params(s.w)
	return s, nil
}

func (s *stepper) step() error {
	if _, err := s.m.Grad(s.b, s.g); err != nil {
		return err
	}
	for i, g := range s.g {
		s.w[i] -= 0.01 * g
	}
	s.m.SetParams(s.w)
	return nil
}
