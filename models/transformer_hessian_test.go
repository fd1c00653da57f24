package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
)

// tokenBatch returns n random windows of t tokens; the first window
// holds only tokens below vocab/2, so that some chunks lack some tokens
// and the sweep skips them.
func tokenBatch(n, t, vocab int, seed uint64) *data.Batch {
	r := rand.New(rand.NewPCG(seed, 7))
	b := &data.Batch{N: n}
	for e := range n {
		top := vocab
		if e < hessianChunk {
			top = vocab / 2
		}
		for range t {
			b.Tokens = append(b.Tokens, r.IntN(top))
			b.Labels = append(b.Labels, r.IntN(vocab))
		}
	}
	return b
}

// productHessian is the Hessian P central-difference products give, each
// from two full gradients, symmetrised: probe.Hessian's and
// probe.DenseMatrix's construction.
func productHessian(t *testing.T, m Model, b *data.Batch, step float64) *mat.SymDense {
	t.Helper()
	p := m.NumParams()
	w0 := make([]float64, p)
	m.Params(w0)
	w := append([]float64(nil), w0...)
	gp, gm := make([]float64, p), make([]float64, p)
	cols := mat.NewDense(p, p, nil)
	for i := range p {
		for _, pm := range []struct {
			sign float64
			g    []float64
		}{{1, gp}, {-1, gm}} {
			w[i] = w0[i] + pm.sign*step
			m.SetParams(w)
			if _, err := m.Grad(b, pm.g); err != nil {
				t.Fatal(err)
			}
		}
		w[i] = w0[i]
		for j := range p {
			cols.Set(i, j, (gp[j]-gm[j])/(2*step))
		}
	}
	m.SetParams(w0)
	h := mat.NewSymDense(p, nil)
	for i := range p {
		for j := i; j < p; j++ {
			h.SetSym(i, j, 0.5*(cols.At(i, j)+cols.At(j, i)))
		}
	}
	return h
}

func TestTransformerDenseHessian(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name string
		cfg  TransformerConfig
		n    int
	}{
		// The paper's NanoGPT-960 layout: no biases, MLP ratio 1, erf GELU.
		{"paper", TransformerConfig{Layers: 1, Width: 8, Heads: 1, Context: 16, MLPRatio: 1, Bias: &no, HeadBias: &no, GELU: "erf", Init: "normal0.02"}, 45},
		// Two blocks with biases and two heads: every stage, and a chunk
		// split that leaves a short last chunk.
		{"two blocks", TransformerConfig{Layers: 2, Width: 8, Heads: 2, Context: 8, MLPRatio: 2, GELU: "tanh"}, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Config{Kind: "transformer", Impl: "fused", DType: "float64", Transformer: tc.cfg}, Shape{Vocab: 12}, 5)
			if err != nil {
				t.Fatal(err)
			}
			// Move off the initialisation, so the Hessian is not dominated
			// by a few large entries.
			w := make([]float64, m.NumParams())
			m.Params(w)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range w {
				w[i] += 0.3 * r.NormFloat64()
			}
			m.SetParams(w)
			b := tokenBatch(tc.n, tc.cfg.Context, 12, 9)
			const step = 1e-4
			want := productHessian(t, m, b, step)
			dh := m.(DenseHessianer)
			var calls, last int
			got, asym, err := dh.DenseHessian(context.Background(), b, step, 2, func(cols int) {
				calls++
				if cols < last {
					t.Errorf("progress went back from %d to %d columns", last, cols)
				}
				last = cols
			})
			if err != nil {
				t.Fatal(err)
			}
			p := m.NumParams()
			if last != p || calls != (tc.n+hessianChunk-1)/hessianChunk {
				t.Errorf("progress ended at %d of %d columns after %d calls", last, p, calls)
			}
			scale := mat.Norm(want, math.Inf(1))
			var worst float64
			for i := range p {
				for j := range p {
					worst = max(worst, math.Abs(got.At(i, j)-want.At(i, j)))
				}
			}
			// The two differ by the rounding of the sums over chunks and by
			// which of H_ij, H_ji a pair across stages keeps (their
			// difference is the central differences' truncation error).
			t.Logf("worst %.3g asym %.3g scale %.3g", worst, asym, scale)
			if worst > 1e-8*scale {
				t.Errorf("sweep against %d products: worst entry differs by %.3g, norm %.3g", p, worst, scale)
			}
			if asym > 1e-8*scale || asym == 0 {
				t.Errorf("asymmetry over pairs measured twice %.3g (norm %.3g): want small and non-zero", asym, scale)
			}
			// The result depends on the number of workers only in the last
			// bits.
			one, _, err := dh.DenseHessian(context.Background(), b, step, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range p {
				for j := range p {
					if d := math.Abs(one.At(i, j) - got.At(i, j)); d > 1e-12*scale {
						t.Fatalf("1 worker against 2: entry (%d, %d) differs by %.3g", i, j, d)
					}
				}
			}
			// The sweep leaves the model's parameters where they were.
			after := make([]float64, p)
			m.Params(after)
			for i := range w {
				if after[i] != w[i] {
					t.Fatalf("parameter %d moved from %g to %g", i, w[i], after[i])
				}
			}
		})
	}
}

func TestTransformerDenseHessianErrors(t *testing.T) {
	cfg := TransformerConfig{Layers: 1, Width: 8, Heads: 1, Context: 4}
	m32, err := New(Config{Kind: "transformer", Impl: "fused", DType: "float32", Transformer: cfg}, Shape{Vocab: 5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := tokenBatch(3, 4, 5, 1)
	if _, _, err := m32.(DenseHessianer).DenseHessian(context.Background(), b, 1e-4, 1, nil); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("float32 model: got %v, want an error naming float64", err)
	}
	m, err := New(Config{Kind: "transformer", Impl: "fused", DType: "float64", Transformer: cfg}, Shape{Vocab: 5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	dh := m.(DenseHessianer)
	bad := tokenBatch(3, 4, 9, 1) // tokens beyond the vocabulary
	if _, _, err := dh.DenseHessian(context.Background(), bad, 1e-4, 1, nil); err == nil {
		t.Error("tokens outside the vocabulary: no error")
	}
	if _, _, err := dh.DenseHessian(context.Background(), b, 0, 1, nil); err == nil {
		t.Error("step 0: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := dh.DenseHessian(ctx, b, 1e-4, 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}
