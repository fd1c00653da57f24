package models

import (
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// The default CNN step (batch 128, float32, 3x32x32, 10 classes) in each
// implementation; BenchmarkCNNStep runs the default, ops:
//
//	go test ./models -run '^$' -bench CNNStep -benchtime 20x -count 3

func BenchmarkCNNStepFused(b *testing.B) {
	benchmarkStep(b, Config{Kind: "cnn", Impl: "fused"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(128, 3072, 10, 0))
}

func BenchmarkCNNStepOps(b *testing.B) {
	benchmarkStep(b, Config{Kind: "cnn", Impl: "ops"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(128, 3072, 10, 0))
}

func BenchmarkCNNStepPlain(b *testing.B) {
	benchmarkStep(b, Config{Kind: "cnn", Impl: "plain"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(128, 3072, 10, 0))
}

// BenchmarkCNNStepWarm is the same step of each implementation after one
// untimed step, so that B/op is the steady state: in the benchmarks above
// it also holds the first step's graph compilation and buffer allocation,
// divided by b.N.
func BenchmarkCNNStepWarm(b *testing.B) {
	benchmarkStepWarm(b, Config{Kind: "cnn"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(128, 3072, 10, 0))
}

// The default transformer step (batch 32 of context 64, float32, vocabulary
// 65) in the other two implementations, beside BenchmarkTransformerStep
// (fused):
//
//	go test ./models -run '^$' -bench TransformerStep -benchtime 10x -count 3

func BenchmarkTransformerStepOps(b *testing.B) {
	benchmarkStep(b, Config{Kind: "transformer", Impl: "ops"}, Shape{Vocab: 65}, benchBatch(32, 0, 65, 64))
}

func BenchmarkTransformerStepPlain(b *testing.B) {
	benchmarkStep(b, Config{Kind: "transformer", Impl: "plain"}, Shape{Vocab: 65}, benchBatch(32, 0, 65, 64))
}

// BenchmarkTransformerStepWarm is BenchmarkCNNStepWarm for the transformer.
func BenchmarkTransformerStepWarm(b *testing.B) {
	benchmarkStepWarm(b, Config{Kind: "transformer"}, Shape{Vocab: 65}, benchBatch(32, 0, 65, 64))
}

// benchmarkStepWarm times the training step of cfg in each implementation
// after one untimed step.
func benchmarkStepWarm(b *testing.B, cfg Config, s Shape, batch *data.Batch) {
	for _, impl := range []string{"fused", "ops", "plain"} {
		b.Run(impl, func(b *testing.B) {
			c := cfg
			c.Impl = impl
			m, err := New(c, s, 1)
			if err != nil {
				b.Fatal(err)
			}
			w := make([]float64, m.NumParams())
			g := make([]float64, m.NumParams())
			m.Params(w)
			step := func() {
				if _, err := m.Grad(batch, g); err != nil {
					b.Fatal(err)
				}
				for i := range w {
					w[i] -= 0.01 * g[i]
				}
				m.SetParams(w)
			}
			step()
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
		})
	}
}
