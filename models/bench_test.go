package models

import (
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// benchmarkStep times Grad plus SetParams, the training step of
// scripts/bench, for profiling inside the package.
func benchmarkStep(b *testing.B, cfg Config, s Shape, batch *data.Batch) {
	m, err := New(cfg, s, 1)
	if err != nil {
		b.Fatal(err)
	}
	w := make([]float64, m.NumParams())
	g := make([]float64, m.NumParams())
	m.Params(w)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Grad(batch, g); err != nil {
			b.Fatal(err)
		}
		for i := range w {
			w[i] -= 0.01 * g[i]
		}
		m.SetParams(w)
	}
}

func benchBatch(n, feat, classes, tokens int) *data.Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	b := &data.Batch{N: n}
	for range n * feat {
		b.X = append(b.X, rng.NormFloat64())
	}
	for range n * tokens {
		b.Tokens = append(b.Tokens, rng.IntN(classes))
	}
	for range n * max(1, tokens) {
		b.Labels = append(b.Labels, rng.IntN(classes))
	}
	return b
}

func BenchmarkCNNStep(b *testing.B) {
	benchmarkStep(b, Config{Kind: "cnn"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(128, 3072, 10, 0))
}

func BenchmarkTransformerStep(b *testing.B) {
	benchmarkStep(b, Config{Kind: "transformer"}, Shape{Vocab: 65}, benchBatch(32, 0, 65, 64))
}

func BenchmarkTinyMLPStep(b *testing.B) {
	benchmarkStep(b, Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{8}}}, Shape{Inputs: 36, Classes: 10}, benchBatch(32, 36, 10, 0))
}

func BenchmarkTinyTransformerStep(b *testing.B) {
	benchmarkStep(b, Config{Kind: "transformer", Transformer: TransformerConfig{Layers: 1, Width: 8, Heads: 2, Context: 16}}, Shape{Vocab: 25}, benchBatch(32, 0, 25, 16))
}
