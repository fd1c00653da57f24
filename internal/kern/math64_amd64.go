package kern

// expSum64AVX2 sets x[i] = e^(x[i] - shift) for len(x) a multiple of 4, to
// within 2 ulp of math.Exp, and returns their sum (math64_amd64.s).
//
//go:noescape
func expSum64AVX2(x []float64, shift float64) float64

// geluErf64AVX2 sets y = x Phi(x), the exact GELU, and dd = Phi(x) + x
// phi(x) unless dd is empty, for len(x) a multiple of 4 (math64_amd64.s).
//
//go:noescape
func geluErf64AVX2(x, y, dd []float64)

// rowShift64AVX2 subtracts from each of the m rows of k (k >= 4) of x its
// max (math64_amd64.s).
//
//go:noescape
func rowShift64AVX2(x []float64, m, k int)

// causalShift64AVX2 is CausalSoftmax's first pass for float64 and t a
// positive multiple of 4 (math64_amd64.s).
//
//go:noescape
func causalShift64AVX2(s []float64, rows, t int)

// layerNorm8x64AVX2 is layerNormForward8 for float64 (math64_amd64.s).
//
//go:noescape
func layerNorm8x64AVX2(x, gain, bias, xhat, rstd, y []float64, m int)

// layerNormRows8x64AVX2 is layerNormRows8 for float64 (math64_amd64.s).
//
//go:noescape
func layerNormRows8x64AVX2(dy, gain, xhat, rstd, dx []float64, m int)

// causalNorm64AVX2 is CausalSoftmax's last pass for float64 and t a
// positive multiple of 4 (math64_amd64.s).
//
//go:noescape
func causalNorm64AVX2(s []float64, rows, t int)

// causalGrad64AVX2 is CausalSoftmaxGrad for float64 and t a positive
// multiple of 4 (math64_amd64.s).
//
//go:noescape
func causalGrad64AVX2(p, dp []float64, t int, scale float64)

// softmaxNorm64AVX2 is softmaxNormAVX2 for float64 and k >= 4
// (softmax_amd64.s).
//
//go:noescape
func softmaxNorm64AVX2(x, sums []float64, m, k, grad int, scale float64)
