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
			t.Run(c.name+"/"+dt.dtype, func(t *testing.T) {
				cfg := c.cfg
				cfg.DType = dt.dtype
				cfg.Impl = "plain"
				plain, err := New(cfg, c.shape, 13)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Impl = "fused"
				fused, err := New(cfg, c.shape, 13)
				if err != nil {
					t.Fatal(err)
				}
				w := make([]float64, plain.NumParams())
				w2 := make([]float64, fused.NumParams())
				plain.Params(w)
				fused.Params(w2)
				for i := range w {
					if w[i] != w2[i] {
						t.Fatalf("initial parameter %d: fused %g, plain %g", i, w2[i], w[i])
					}
				}
				// Move off the initialisation (zero biases, unit gains)
				// so that every parameter's gradient path is exercised.
				for i := range w {
					w[i] += 0.03 * r.rng.NormFloat64()
				}
				plain.SetParams(w)
				fused.SetParams(w)
				gp := make([]float64, len(w))
				gf := make([]float64, len(w))
				lp, err := plain.Grad(c.batch, gp)
				if err != nil {
					t.Fatal(err)
				}
				lf, err := fused.Grad(c.batch, gf)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(lf-lp) > dt.tol*math.Abs(lp) {
					t.Errorf("loss fused %.15g, plain %.15g", lf, lp)
				}
				if e := relErr(gf, gp); e > dt.tol {
					t.Errorf("gradient rel err %.3g > %g", e, dt.tol)
				}
				ep, _ := plain.Eval(c.batch)
				ef, _ := fused.Eval(c.batch)
				if math.Abs(ef.Loss-ep.Loss) > dt.tol*math.Abs(ep.Loss) || ef.Count != ep.Count || (dt.dtype == "float64" && ef.Correct != ep.Correct) {
					t.Errorf("Eval fused %+v, plain %+v", ef, ep)
				}
			})
		}
	}
}
