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
	// The products accumulate (beta = 1) into outputs cleared here in one
	// call each: with beta = 0, gemm clears its output row by row, a call
	// per row of a head, which costs more than the tiny products.
	ps, att := p[:n*heads*t*t], att[:n*t*d]
	clear(ps)
	clear(att)
	// q, k and v of a head are column slices of qkv, leading dimension 3d.
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o := s*t*ld + h*dh
			pr := ps[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			gemm.Gemm(false, true, t, t, dh, scale, q[o:], ld, k[o:], ld, 1, pr, t)
		}
	}
	// All heads at once: one long ExpSum call instead of t short ones each.
	CausalSoftmax(ps, t)
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o := s*t*d + h*dh
			pr := ps[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			gemm.Gemm(false, false, t, dh, t, 1, pr, t, v[s*t*ld+h*dh:], ld, 1, att[o:], d)
		}
	}
}

// CausalAttentionBackward turns datt, the gradient of CausalAttention's
// output, into the gradient dqkv (n*t, 3d) of the projections, laid out
// as qkv, given the qkv and p of the forward pass; dp (t, t) is scratch.
func CausalAttentionBackward[T Float](qkv, p []T, n, t, d, heads int, datt, dp, dqkv []T) {
	dh := d / heads
	scale := T(1 / math.Sqrt(float64(dh)))
	// Accumulating into outputs cleared in bulk, as in CausalAttention.
	dqkv, dp = dqkv[:3*n*t*d], dp[:t*t]
	clear(dqkv)
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	dq, dk, dv := dqkv, dqkv[d:], dqkv[2*d:]
	for s := 0; s < n; s++ {
		for h := 0; h < heads; h++ {
			o, o3 := s*t*d+h*dh, s*t*ld+h*dh
			pr := p[(s*heads+h)*t*t : (s*heads+h+1)*t*t]
			clear(dp)
			gemm.Gemm(false, true, t, t, dh, 1, datt[o:], d, v[o3:], ld, 1, dp, t)
			gemm.Gemm(true, false, t, dh, t, 1, pr, t, datt[o:], d, 1, dv[o3:], ld)
			CausalSoftmaxGrad(pr, dp, t, scale)
			gemm.Gemm(false, false, t, dh, t, 1, dp, t, k[o3:], ld, 1, dq[o3:], ld)
			gemm.Gemm(true, false, t, dh, t, 1, dp, t, q[o3:], ld, 1, dk[o3:], ld)
		}
	}
}
