package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// TestFusedMatchesPlain checks that the fused kernels compute the same loss
// and gradient as the plain Gorgonia graph for every model, at a random
// point, in float64 (rel err < 1e-9) and float32 (< 1e-4). Larger configs
// than tinyCases exercise the goroutine split and several heads.
func TestFusedMatchesPlain(t *testing.T) {
	r := randomData{rand.New(rand.NewPCG(3, 4))}
	normals, ints := r.normals, r.ints
	cases := []testCase{
		{"cnn-wide", Config{Kind: "cnn", CNN: CNNConfig{Width: 4, Hidden: 8}}, Shape{Image: []int{3, 16, 16}, Classes: 10},
			&data.Batch{N: 40, X: normals(40 * 3 * 256), Labels: ints(40, 10)}},
		{"transformer-wide", Config{Kind: "transformer", Transformer: TransformerConfig{Layers: 2, Width: 16, Heads: 4, Context: 12}}, Shape{Vocab: 11},
			&data.Batch{N: 24, Tokens: ints(24*12, 11), Labels: ints(24*12, 11)}},
		{"mlp-big", Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{32, 16}}}, Shape{Inputs: 36, Classes: 4},
			&data.Batch{N: 300, X: normals(300 * 36), Labels: ints(300, 4)}},
	}
	for _, c := range tinyCases("") {
		cases = append(cases, c)
	}
	for _, c := range cases {
		for _, dt := range []struct {
			dtype string
			tol   float64
		}{{"float64", 1e-9}, {"float32", 1e-4}} {
			t.Run(c.name+"/"+dt.dtype, func(t *testing.T) { matchesPlain(t, c, "fused", dt.dtype, dt.tol, r.rng) })
		}
	}
}

// matchesPlain checks that implementation impl of c's model starts from the
// plain graph's parameters and, at a random point near them, computes the
// plain graph's loss and gradient (twice: the second step runs on reused
// buffers) and Eval, to relative error tol. The plain graph runs the whole
// batch at once.
func matchesPlain(t *testing.T, c testCase, impl, dtype string, tol float64, rng *rand.Rand) {
	t.Helper()
	cfg := c.cfg
	cfg.DType, cfg.Impl = dtype, impl
	m, err := New(cfg, c.shape, 13)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impl, cfg.Chunk = "plain", c.batch.N
	plain, err := New(cfg, c.shape, 13)
	if err != nil {
		t.Fatal(err)
	}
	w, w2 := make([]float64, plain.NumParams()), make([]float64, m.NumParams())
	plain.Params(w)
	m.Params(w2)
	for i := range w {
		if w[i] != w2[i] {
			t.Fatalf("initial parameter %d: %s %g, plain %g", i, impl, w2[i], w[i])
		}
	}
	// Move off the initialisation (zero biases, unit gains) so that every
	// parameter's gradient path is exercised.
	for i := range w {
		w[i] += 0.03 * rng.NormFloat64()
	}
	plain.SetParams(w)
	m.SetParams(w)
	gp, gm := make([]float64, len(w)), make([]float64, len(w))
	lp, err := plain.Grad(c.batch, gp)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		lm, err := m.Grad(c.batch, gm)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(lm-lp) > tol*math.Abs(lp) {
			t.Errorf("loss %s %.15g, plain %.15g", impl, lm, lp)
		}
		if e := relErr(gm, gp); e > tol {
			t.Errorf("gradient rel err %.3g > %g (worst at %s)", e, tol, paramAt(m, worstIndex(gm, gp)))
		}
	}
	ep, err := plain.Eval(c.batch)
	if err != nil {
		t.Fatal(err)
	}
	em, err := m.Eval(c.batch)
	if err != nil {
		t.Fatal(err)
	}
	// float32 argmaxes may differ at a near tie.
	if math.Abs(em.Loss-ep.Loss) > tol*math.Abs(ep.Loss) || em.Count != ep.Count || (dtype == "float64" && em.Correct != ep.Correct) {
		t.Errorf("Eval %s %+v, plain %+v", impl, em, ep)
	}
}
