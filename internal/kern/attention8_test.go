package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCausalAttentionFloat32 checks float32 CausalAttention and
// CausalAttentionBackward (on amd64 with AVX2 the kernels for heads of
// width 8, abT8AVX2, lowerMul8AVX2 and lowerTMul8AVX2, for t a multiple
// of 8; gemm otherwise) against the float64 ones (gemm): probabilities,
// outputs and the gradient of the packed projections, within float32
// rounding, for one and two heads, several t and more than one sequence.
func TestCausalAttentionFloat32(t *testing.T) {
	if haveAVX2 && !heads8(make([]float32, 1), 16, 8) {
		t.Fatal("heads of width 8 do not take the AVX2 kernels")
	}
	rng := rand.New(rand.NewPCG(16, 8))
	for _, c := range []struct{ tt, heads int }{{8, 1}, {16, 1}, {16, 2}, {24, 1}, {5, 1}} {
		const n = 3
		tt, heads := c.tt, c.heads
		d := 8 * heads
		qkv64, datt64 := make([]float64, n*tt*3*d), make([]float64, n*tt*d)
		for i := range qkv64 {
			qkv64[i] = rng.NormFloat64()
		}
		for i := range datt64 {
			datt64[i] = rng.NormFloat64()
		}
		qkv32, datt32 := make([]float32, len(qkv64)), make([]float32, len(datt64))
		for i, v := range qkv64 {
			qkv32[i] = float32(v)
			qkv64[i] = float64(qkv32[i]) // the same inputs
		}
		for i, v := range datt64 {
			datt32[i] = float32(v)
			datt64[i] = float64(datt32[i])
		}
		p64, att64 := make([]float64, n*heads*tt*tt), make([]float64, n*tt*d)
		p32, att32 := make([]float32, len(p64)), make([]float32, len(att64))
		for i := range p32 { // NaN garbage: every entry must be written
			p32[i], p64[i] = float32(math.NaN()), math.NaN()
		}
		CausalAttention(qkv64, n, tt, d, heads, p64, att64)
		CausalAttention(qkv32, n, tt, d, heads, p32, att32)
		dqkv64, dqkv32 := make([]float64, len(qkv64)), make([]float32, len(qkv32))
		for i := range dqkv32 {
			dqkv32[i], dqkv64[i] = float32(math.NaN()), math.NaN()
		}
		dp64, dp32 := make([]float64, tt*tt), make([]float32, tt*tt)
		CausalAttentionBackward(qkv64, p64, n, tt, d, heads, datt64, dp64, dqkv64)
		CausalAttentionBackward(qkv32, p32, n, tt, d, heads, datt32, dp32, dqkv32)
		check := func(what string, got []float32, want []float64, tol float64) {
			t.Helper()
			for i, w := range want {
				if e := math.Abs(float64(got[i]) - w); !(e <= tol*(1+math.Abs(w))) {
					t.Fatalf("t=%d heads=%d: %s[%d] = %.9g, float64 %.9g", tt, heads, what, i, got[i], w)
				}
			}
		}
		check("p", p32, p64, 1e-6)
		check("att", att32, att64, 2e-6)
		check("dqkv", dqkv32, dqkv64, 4e-6)
	}
}

// BenchmarkCausalAttention times the NanoGPT-960's attention forward and
// backward at batch 64 (64 sequences of 16, one head of width 8) in
// float32.
func BenchmarkCausalAttention(b *testing.B) {
	const n, tt, d, heads = 64, 16, 8, 1
	rng := rand.New(rand.NewPCG(1, 2))
	qkv, datt := make([]float32, n*tt*3*d), make([]float32, n*tt*d)
	for i := range qkv {
		qkv[i] = float32(rng.NormFloat64())
	}
	for i := range datt {
		datt[i] = float32(rng.NormFloat64())
	}
	p, att := make([]float32, n*heads*tt*tt), make([]float32, n*tt*d)
	dp, dqkv := make([]float32, tt*tt), make([]float32, len(qkv))
	for b.Loop() {
		CausalAttention(qkv, n, tt, d, heads, p, att)
		CausalAttentionBackward(qkv, p, n, tt, d, heads, datt, dp, dqkv)
	}
}
