package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sentinel64 marks entries a kernel must leave as they were: a NaN with
// a payload no arithmetic produces, compared by its bits.
var sentinel64 = math.Float64frombits(0x7ff8_dead_beef_0001)

func filled64(n int, v float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = v
	}
	return x
}

func normals64(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// lowerRandom64 returns a (t, t) matrix of distinct random entries on and
// below the diagonal and zeros above, as a causal softmax (or its
// gradient) is.
func lowerRandom64(rng *rand.Rand, t int) []float64 {
	p := make([]float64, t*t)
	for i := 0; i < t; i++ {
		for j := 0; j <= i; j++ {
			p[i*t+j] = rng.NormFloat64()
		}
	}
	return p
}

// TestAttention8x64Kernels checks abT8x64AVX2, lowerMul8x64AVX2 and
// lowerTMul8x64AVX2 against the gemm products they replace, for several t
// and leading dimensions (8: packed rows; 24 and 51: a head read in place
// from the qkv rows of d = 8 and d = 17), on distinct random entries so
// that a block read from or written to the wrong place changes the
// result. They accumulate in gemm's order, so the results must have the
// same bits. abT8x64AVX2 must leave the 8x8 blocks wholly above the
// diagonal as they were and write everything else; no kernel may write
// past its t rows of 8 (the rest of each row of out up to ldo, and a
// guard after the last row, hold a sentinel).
func TestAttention8x64Kernels(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2: the float64 kernels for heads of width 8 are not used")
	}
	rng := rand.New(rand.NewPCG(8, 64))
	const guard = 16
	for _, tt := range []int{8, 16, 24, 32} {
		for _, ld := range []struct{ a, b, o int }{{8, 8, 8}, {24, 24, 8}, {51, 24, 51}, {8, 51, 24}} {
			a := normals64(rng, (tt-1)*ld.a+8)
			b := normals64(rng, (tt-1)*ld.b+8)

			// s = scale a b^T.
			const scale = 0.353553390593273762
			want, got := filled64(tt*tt+guard, sentinel64), filled64(tt*tt+guard, sentinel64)
			headABt(false, tt, 8, scale, a, ld.a, b, ld.b, want)
			abT8x64AVX2(a, ld.a, b, ld.b, tt, scale, got)
			for i := 0; i < tt; i++ {
				for j := 0; j < tt; j++ {
					g, w := got[i*tt+j], want[i*tt+j]
					if j/8 > i/8 { // a block wholly above the diagonal
						if math.Float64bits(g) != math.Float64bits(sentinel64) {
							t.Fatalf("abT t=%d lda=%d ldb=%d: s[%d][%d] = %v above the diagonal blocks, want it untouched", tt, ld.a, ld.b, i, j, g)
						}
						continue
					}
					if math.Float64bits(g) != math.Float64bits(w) {
						t.Fatalf("abT t=%d lda=%d ldb=%d: s[%d][%d] = %v, gemm %v", tt, ld.a, ld.b, i, j, g, w)
					}
				}
			}
			checkGuard64(t, "abT", got[tt*tt:])

			// out = p b and p^T b.
			p := lowerRandom64(rng, tt)
			for _, trans := range []bool{false, true} {
				name := "lowerMul"
				if trans {
					name = "lowerTMul"
				}
				n := (tt-1)*ld.o + 8
				want, got := filled64(n+guard, sentinel64), filled64(n+guard, sentinel64)
				if trans {
					headLowerTMul(false, tt, 8, p, b, ld.b, want, ld.o)
					lowerTMul8x64AVX2(p, tt, b, ld.b, got, ld.o)
				} else {
					headLowerMul(false, tt, 8, p, b, ld.b, want, ld.o)
					lowerMul8x64AVX2(p, tt, b, ld.b, got, ld.o)
				}
				for i := 0; i < tt; i++ {
					for c := 0; c < ld.o; c++ {
						o := i*ld.o + c
						if o >= n {
							break
						}
						g, w := got[o], want[o]
						if c >= 8 {
							w = sentinel64
						}
						if math.Float64bits(g) != math.Float64bits(w) {
							t.Fatalf("%s t=%d ldb=%d ldo=%d: out[%d][%d] = %v, want %v", name, tt, ld.b, ld.o, i, c, g, w)
						}
					}
				}
				checkGuard64(t, name, got[n:])
			}
		}
	}
}

func checkGuard64(t *testing.T, what string, g []float64) {
	t.Helper()
	for i, v := range g {
		if math.Float64bits(v) != math.Float64bits(sentinel64) {
			t.Fatalf("%s wrote %v at %d past its output", what, v, i)
		}
	}
}

// causalAttentionGemm and causalAttentionBackwardGemm are CausalAttention
// and CausalAttentionBackward with fast = false: every head product in
// gemm, the reference of the kernels for heads of width 8.
func causalAttentionGemm(qkv []float64, n, t, d, heads int, p, att []float64) {
	dh := d / heads
	scale := 1 / math.Sqrt(float64(dh))
	ps, att := p[:n*heads*t*t], att[:n*t*d]
	clearColumnsPast(att, n*t, d, heads*dh)
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o := s*t*ld + h*dh
			headABt(false, t, dh, scale, q[o:], ld, k[o:], ld, ps[(s*heads+h)*t*t:])
		}
	}
	CausalSoftmax(ps, t)
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			pr := ps[(s*heads+h)*t*t:]
			headLowerMul(false, t, dh, pr, v[s*t*ld+h*dh:], ld, att[s*t*d+h*dh:], d)
		}
	}
}

func causalAttentionBackwardGemm(qkv, p []float64, n, t, d, heads int, datt, dp, dqkv []float64) {
	dh := d / heads
	scale := 1 / math.Sqrt(float64(dh))
	dqkv, dp = dqkv[:3*n*t*d], dp[:t*t]
	if heads*dh != d {
		clear(dqkv)
	}
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	dq, dk, dv := dqkv, dqkv[d:], dqkv[2*d:]
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o, o3 := s*t*d+h*dh, s*t*ld+h*dh
			pr := p[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			headABt(false, t, dh, 1, datt[o:], d, v[o3:], ld, dp)
			headLowerTMul(false, t, dh, pr, datt[o:], d, dv[o3:], ld)
			CausalSoftmaxGrad(pr, dp, t, scale)
			headLowerMul(false, t, dh, dp, k[o3:], ld, dq[o3:], ld)
			headLowerTMul(false, t, dh, dp, q[o3:], ld, dk[o3:], ld)
		}
	}
}

// TestCausalAttention64Heads8 checks float64 CausalAttention and
// CausalAttentionBackward, on amd64 with AVX2 through the kernels for
// heads of width 8, against the same passes in gemm: the same bits in the
// probabilities, the outputs and the gradient of the projections, with
// NaN garbage in every output and scratch beforehand (each entry must be
// written, and the score blocks the kernels skip must not leak), for one
// and two heads, d = 17 (a column past the heads), t = 8 to 32 and more
// than one sequence. The gemm reference's forward pass is checked against
// a plain loop too.
func TestCausalAttention64Heads8(t *testing.T) {
	if haveAVX2 && !heads8(make([]float64, 1), 16, 8) {
		t.Fatal("float64 heads of width 8 do not take the AVX2 kernels")
	}
	rng := rand.New(rand.NewPCG(64, 8))
	for _, c := range []struct{ tt, d, heads int }{{8, 8, 1}, {16, 8, 1}, {16, 16, 2}, {16, 17, 2}, {24, 8, 1}, {32, 16, 2}} {
		const n = 3
		tt, d, heads := c.tt, c.d, c.heads
		qkv, datt := normals64(rng, n*tt*3*d), normals64(rng, n*tt*d)
		nan := math.NaN()
		p, att := filled64(n*heads*tt*tt, nan), filled64(n*tt*d, nan)
		pRef, attRef := filled64(len(p), nan), filled64(len(att), nan)
		CausalAttention(qkv, n, tt, d, heads, p, att)
		causalAttentionGemm(qkv, n, tt, d, heads, pRef, attRef)
		dp, dqkv := filled64(tt*tt, nan), filled64(len(qkv), nan)
		dpRef, dqkvRef := filled64(tt*tt, nan), filled64(len(qkv), nan)
		CausalAttentionBackward(qkv, p, n, tt, d, heads, datt, dp, dqkv)
		causalAttentionBackwardGemm(qkv, pRef, n, tt, d, heads, datt, dpRef, dqkvRef)
		same := func(what string, got, want []float64) {
			t.Helper()
			for i, w := range want {
				if math.Float64bits(got[i]) != math.Float64bits(w) {
					t.Fatalf("t=%d d=%d heads=%d: %s[%d] = %v, gemm %v", tt, d, heads, what, i, got[i], w)
				}
			}
		}
		same("p", p, pRef)
		same("att", att, attRef)
		same("dqkv", dqkv, dqkvRef)

		// The reference forward pass against softmax(q k^T / sqrt(dh)) v
		// written out.
		dh := d / heads
		for s := 0; s < n; s++ {
			for h := 0; h < heads; h++ {
				for i := 0; i < tt; i++ {
					row := (s*tt + i) * 3 * d
					w := make([]float64, i+1)
					var sum float64
					for j := range w {
						col := (s*tt + j) * 3 * d
						var dot float64
						for e := 0; e < dh; e++ {
							dot += qkv[row+h*dh+e] * qkv[col+d+h*dh+e]
						}
						w[j] = math.Exp(dot / math.Sqrt(float64(dh)))
						sum += w[j]
					}
					for e := 0; e < dh; e++ {
						var y float64
						for j := range w {
							y += w[j] / sum * qkv[(s*tt+j)*3*d+2*d+h*dh+e]
						}
						got := attRef[(s*tt+i)*d+h*dh+e]
						if math.Abs(got-y) > 1e-12*(1+math.Abs(y)) {
							t.Fatalf("t=%d d=%d heads=%d: gemm att[%d][%d][%d] = %v, plain %v", tt, d, heads, s, i, h*dh+e, got, y)
						}
					}
				}
			}
		}
	}
}

// BenchmarkAttention64 times float64 CausalAttention and
// CausalAttentionBackward at the NanoGPT-960's shapes, 64 sequences of
// 16, one head of width 8: "fast" through CausalAttention (the kernels
// for heads of width 8 on amd64 with AVX2), "gemm" the same passes in
// gemm. (go test -count repeats each sub-benchmark back to back; on a
// shared machine, compare runs of the two alternated from the shell.)
func BenchmarkAttention64(b *testing.B) {
	const n, tt, d, heads = 64, 16, 8, 1
	rng := rand.New(rand.NewPCG(1, 2))
	qkv, datt := normals64(rng, n*tt*3*d), normals64(rng, n*tt*d)
	p, att := make([]float64, n*heads*tt*tt), make([]float64, n*tt*d)
	dp, dqkv := make([]float64, tt*tt), make([]float64, len(qkv))
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			CausalAttention(qkv, n, tt, d, heads, p, att)
			CausalAttentionBackward(qkv, p, n, tt, d, heads, datt, dp, dqkv)
		}
	})
	b.Run("gemm", func(b *testing.B) {
		for b.Loop() {
			causalAttentionGemm(qkv, n, tt, d, heads, p, att)
			causalAttentionBackwardGemm(qkv, p, n, tt, d, heads, datt, dp, dqkv)
		}
	})
}
