package kern

import "golang.org/x/sys/cpu"

// haveAVX2 reports whether the AVX2/FMA exp kernel can run here.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// expSumAVX2 sets x[i] = exp32(x[i] - shift) for len(x) a multiple of 8 and
// returns their sum (math_amd64.s).
//
//go:noescape
func expSumAVX2(x []float32, shift float32) float32

// geluDerivAVX2 is geluForwardDeriv32 eight at a time, for len(x) a
// multiple of 8 (math_amd64.s).
//
//go:noescape
func geluDerivAVX2(x, y, dd []float32)

// sumRowsAVX2 adds the m rows of x, row i at x[i*k:], into dst, len(dst) a
// multiple of 8 and at most k (math_amd64.s).
//
//go:noescape
func sumRowsAVX2(dst, x []float32, m, k int)

// dotRowsAVX2 adds the column sums of x*y, m rows of stride k, into dst, as
// sumRowsAVX2 (math_amd64.s).
//
//go:noescape
func dotRowsAVX2(dst, x, y []float32, m, k int)

// causalShiftAVX2 is CausalSoftmax's first pass, each row shifted by its
// live entries' max and the rest set to -inf, for t a positive multiple
// of 8 (math_amd64.s).
//
//go:noescape
func causalShiftAVX2(s []float32, rows, t int)

// layerNorm8AVX2 is layerNormForward8 for float32, one row per vector
// (math_amd64.s).
//
//go:noescape
func layerNorm8AVX2(x, gain, bias, xhat, rstd, y []float32, m int)

// layerNormRows8AVX2 is layerNormRows8 for float32, one row per vector
// (math_amd64.s).
//
//go:noescape
func layerNormRows8AVX2(dy, gain, xhat, rstd, dx []float32, m int)

// rowShiftAVX2 subtracts from each of the m rows of k (k >= 8) of x its
// max (math_amd64.s).
//
//go:noescape
func rowShiftAVX2(x []float32, m, k int)

// causalGradAVX2 is CausalSoftmaxGrad for float32 and t a positive
// multiple of 8 (math_amd64.s).
//
//go:noescape
func causalGradAVX2(p, dp []float32, t int, scale float32)

// causalNormAVX2 is CausalSoftmax's last pass, each row divided by its
// sum, for t a positive multiple of 8 (math_amd64.s).
//
//go:noescape
func causalNormAVX2(s []float32, rows, t int)

// geluErf32AVX2 is geluErf32Go eight at a time, for len(x) a multiple of
// 8; dd empty: no derivative (gelu32_amd64.s).
//
//go:noescape
func geluErf32AVX2(x, y, dd []float32)

// softmaxNormAVX2 sets sums[i] to the sum of row i of the m rows of k (k
// >= 8) of x and, if grad is not 0, multiplies the row by scale/sums[i]
// (softmax_amd64.s).
//
//go:noescape
func softmaxNormAVX2(x, sums []float32, m, k, grad int, scale float32)

// abT8AVX2 sets the (t, t) matrix s to scale a b^T for a and b t rows of
// 8 (leading dimensions lda, ldb), t a positive multiple of 8, but for
// the 8x8 blocks wholly above the diagonal, left as they were
// (attention_amd64.s).
//
//go:noescape
func abT8AVX2(a []float32, lda int, b []float32, ldb int, t int, scale float32, s []float32)

// lowerMul8AVX2 sets out (t rows of 8, leading dimension ldo) to p b for
// the (t, t) matrix p, zero above its diagonal, and b t rows of 8
// (attention_amd64.s).
//
//go:noescape
func lowerMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int)

// lowerTMul8AVX2 is lowerMul8AVX2 with p^T b (attention_amd64.s).
//
//go:noescape
func lowerTMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int)
