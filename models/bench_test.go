package models

import (
	"context"
	"math/rand/v2"
	"runtime"
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

// The paper's two tiny models (paper_test.go): a training step at the
// paper's batch of 64, and one gradient over the 2,048 examples of the
// dense-Hessian protocols (which take 2P of them), in float32 (training,
// ensembles) and float64 (probes).

// The step on both implementations: the protocol configs train NanoGPT-960
// fused (configs/paper-exp2-nanogpt.yaml), NanoGPT960Config leaves the
// default.
func BenchmarkNanoGPT960Step(b *testing.B) {
	for _, impl := range []string{"ops", "fused"} {
		for _, dt := range []string{"float32", "float64"} {
			b.Run(impl+"/"+dt, func(b *testing.B) {
				cfg := nanoGPT960
				cfg.DType, cfg.Impl = dt, impl
				benchmarkStep(b, cfg, nanoShape, benchBatch(64, 0, 25, 16))
			})
		}
	}
}

func BenchmarkMLP386Step(b *testing.B) {
	for _, dt := range []string{"float32", "float64"} {
		b.Run(dt, func(b *testing.B) {
			cfg := mlp386
			cfg.DType = dt
			benchmarkStep(b, cfg, mlpShape, benchBatch(64, 36, 10, 0))
		})
	}
}

func BenchmarkNanoGPT960Grad2048(b *testing.B) {
	for _, dt := range []string{"float32", "float64"} {
		b.Run(dt, func(b *testing.B) {
			cfg := nanoGPT960
			cfg.DType = dt
			benchmarkGrad(b, cfg, nanoShape, benchBatch(2048, 0, 25, 16))
		})
	}
}

func BenchmarkMLP386Grad2048(b *testing.B) {
	for _, dt := range []string{"float32", "float64"} {
		b.Run(dt, func(b *testing.B) {
			cfg := mlp386
			cfg.DType = dt
			benchmarkGrad(b, cfg, mlpShape, benchBatch(2048, 36, 10, 0))
		})
	}
}

// benchmarkGrad times one Grad over batch.
func benchmarkGrad(b *testing.B, cfg Config, s Shape, batch *data.Batch) {
	m, err := New(cfg, s, 1)
	if err != nil {
		b.Fatal(err)
	}
	g := make([]float64, m.NumParams())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Grad(batch, g); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNanoGPT960DenseHessian256 builds the dense Hessian of
// NanoGPT-960 over 256 windows with the sweep and by the 2P full
// gradients that P central-difference products take (random tokens, so
// every window holds most tokens: on text the sweep skips more).
func BenchmarkNanoGPT960DenseHessian256(b *testing.B) {
	cfg := nanoGPT960
	cfg.DType, cfg.Impl = "float64", "fused"
	m, err := New(cfg, nanoShape, 1)
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch(256, 0, 25, 16)
	b.Run("sweep", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := m.(DenseHessianer).DenseHessian(context.Background(), batch, 1e-4, runtime.GOMAXPROCS(0), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("products", func(b *testing.B) {
		g := make([]float64, m.NumParams())
		for b.Loop() {
			for range 2 * m.NumParams() {
				if _, err := m.Grad(batch, g); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkCNNGrad512 times one float64 gradient of the CIFAR-10 CNN over
// 512 images, half of the central-difference Hessian-vector product a
// CNN survey makes hundreds of (eval_examples 512).
func BenchmarkCNNGrad512(b *testing.B) {
	benchmarkGrad(b, Config{Kind: "cnn", DType: "float64"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, benchBatch(512, 3072, 10, 0))
}

// BenchmarkTransformerGrad256 is BenchmarkCNNGrad512 for the default
// transformer: one float64 gradient over the 256 windows of its survey.
func BenchmarkTransformerGrad256(b *testing.B) {
	benchmarkGrad(b, Config{Kind: "transformer", DType: "float64"}, Shape{Vocab: 65}, benchBatch(256, 0, 65, 64))
}
