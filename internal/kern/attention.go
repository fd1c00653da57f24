package kern

import (
	"math"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// CausalAttention computes att = causal softmax(q k^T / sqrt(dh)) v for
// each of the n sequences of t positions and each of the heads heads of
// width dh = d/heads, keeping the attention probabilities in p (n*heads,
// t, t) for CausalAttentionBackward. q, k and v are side by side in the
// rows of qkv (n*t, 3d), att is (n*t, d) with head h in columns
// [h*dh, (h+1)*dh). A head is a column slice of the projections, read in
// place with leading dimension 3d: no transposes or copies.
func CausalAttention[T Float](qkv []T, n, t, d, heads int, p, att []T) {
	dh := d / heads
	scale := T(1 / math.Sqrt(float64(dh)))
	// Each head's scores and output are written by one product each (the
	// AVX2 kernels for heads of width 8, heads8, or gemm with beta = 0,
	// which stores without reading): no clears. Columns past heads*dh, if
	// d is not a multiple of heads, are zero.
	ps, att := p[:n*heads*t*t], att[:n*t*d]
	clearColumnsPast(att, n*t, d, heads*dh)
	// q, k and v of a head are column slices of qkv, leading dimension 3d.
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	fast := heads8(qkv, t, dh)
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o := s*t*ld + h*dh
			pr := ps[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			headABt(fast, t, dh, scale, q[o:], ld, k[o:], ld, pr)
		}
	}
	// All heads at once: one long ExpSum call instead of t short ones each.
	CausalSoftmax(ps, t)
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o := s*t*d + h*dh
			pr := ps[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			headLowerMul(fast, t, dh, pr, v[s*t*ld+h*dh:], ld, att[o:], d)
		}
	}
}

// CausalAttentionBackward turns datt, the gradient of CausalAttention's
// output, into the gradient dqkv (n*t, 3d) of the projections, laid out
// as qkv, given the qkv and p of the forward pass; dp (t, t) is scratch.
func CausalAttentionBackward[T Float](qkv, p []T, n, t, d, heads int, datt, dp, dqkv []T) {
	dh := d / heads
	scale := T(1 / math.Sqrt(float64(dh)))
	// Every block of dq, dk, dv and dp is written by one product, as in
	// CausalAttention: no clears but of the columns past heads*dh.
	dqkv, dp = dqkv[:3*n*t*d], dp[:t*t]
	if heads*dh != d {
		clear(dqkv)
	}
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	dq, dk, dv := dqkv, dqkv[d:], dqkv[2*d:]
	fast := heads8(qkv, t, dh)
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o, o3 := s*t*d+h*dh, s*t*ld+h*dh
			pr := p[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			headABt(fast, t, dh, 1, datt[o:], d, v[o3:], ld, dp)
			headLowerTMul(fast, t, dh, pr, datt[o:], d, dv[o3:], ld)
			CausalSoftmaxGrad(pr, dp, t, scale)
			headLowerMul(fast, t, dh, dp, k[o3:], ld, dq[o3:], ld)
			headLowerTMul(fast, t, dh, dp, q[o3:], ld, dk[o3:], ld)
		}
	}
}

// heads8 reports whether a head's products go through the AVX2 kernels
// for heads of width 8 (abT8AVX2, lowerMul8AVX2, lowerTMul8AVX2 and their
// float64 twins abT8x64AVX2, lowerMul8x64AVX2, lowerTMul8x64AVX2), which
// on the tiny transformer's heads (t = 16) take a fraction of gemm's
// per-call work.
func heads8[T Float](qkv []T, t, dh int) bool {
	switch any(qkv).(type) {
	case []float32, []float64:
		return haveAVX2 && dh == 8 && t > 0 && t%8 == 0
	}
	return false
}

// headABt sets the (t, t) matrix s to scale a b^T, a and b t rows of dh
// (leading dimensions lda, ldb), at least on and below the diagonal (the
// causal softmax and its gradient ignore the rest): in abT8AVX2 or
// abT8x64AVX2 if fast, which skip the 8x8 blocks above it, else gemm.
func headABt[T Float](fast bool, t, dh int, scale T, a []T, lda int, b []T, ldb int, s []T) {
	if !fast {
		gemm.Gemm(false, true, t, t, dh, scale, a, lda, b, ldb, 0, s, t)
		return
	}
	// The assembly does not check bounds.
	_, _, _ = a[(t-1)*lda+7], b[(t-1)*ldb+7], s[t*t-1]
	switch a := any(a).(type) {
	case []float32:
		abT8AVX2(a, lda, any(b).([]float32), ldb, t, float32(scale), any(s).([]float32))
	case []float64:
		abT8x64AVX2(a, lda, any(b).([]float64), ldb, t, float64(scale), any(s).([]float64))
	}
}

// headLowerMul sets out (t rows of dh, leading dimension ldo) to p b, p
// (t, t) zero above its diagonal (a causal softmax or its gradient) and b
// t rows of dh: in lowerMul8AVX2 or lowerMul8x64AVX2 if fast, which skip
// the zeros, else gemm.
func headLowerMul[T Float](fast bool, t, dh int, p, b []T, ldb int, out []T, ldo int) {
	if !fast {
		gemm.Gemm(false, false, t, dh, t, 1, p, t, b, ldb, 0, out, ldo)
		return
	}
	_, _, _ = p[t*t-1], b[(t-1)*ldb+7], out[(t-1)*ldo+7]
	switch p := any(p).(type) {
	case []float32:
		lowerMul8AVX2(p, t, any(b).([]float32), ldb, any(out).([]float32), ldo)
	case []float64:
		lowerMul8x64AVX2(p, t, any(b).([]float64), ldb, any(out).([]float64), ldo)
	}
}

// headLowerTMul is headLowerMul with p^T b.
func headLowerTMul[T Float](fast bool, t, dh int, p, b []T, ldb int, out []T, ldo int) {
	if !fast {
		gemm.Gemm(true, false, t, dh, t, 1, p, t, b, ldb, 0, out, ldo)
		return
	}
	_, _, _ = p[t*t-1], b[(t-1)*ldb+7], out[(t-1)*ldo+7]
	switch p := any(p).(type) {
	case []float32:
		lowerTMul8AVX2(p, t, any(b).([]float32), ldb, any(out).([]float32), ldo)
	case []float64:
		lowerTMul8x64AVX2(p, t, any(b).([]float64), ldb, any(out).([]float64), ldo)
	}
}

// clearColumnsPast sets columns [c, cols) of the rows x cols matrix a to
// zero (none if c >= cols).
func clearColumnsPast[T Float](a []T, rows, cols, c int) {
	if c >= cols {
		return
	}
	for i := 0; i < rows; i++ {
		clear(a[i*cols+c : (i+1)*cols])
	}
}
