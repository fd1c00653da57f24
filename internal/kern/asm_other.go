//go:build !amd64

package kern

// haveAVX2 is false: exp and tanh are computed one element at a time.
const haveAVX2 = false

func expSumAVX2(x []float32, shift float32) float32 { panic("unreachable") }

func geluDerivAVX2(x, y, dd []float32) { panic("unreachable") }

func geluErf32AVX2(x, y, dd []float32) { panic("unreachable") }

func sumRowsAVX2(dst, x []float32, m, k int) { panic("unreachable") }

func dotRowsAVX2(dst, x, y []float32, m, k int) { panic("unreachable") }

func causalShiftAVX2(s []float32, rows, t int) { panic("unreachable") }

func layerNorm8AVX2(x, gain, bias, xhat, rstd, y []float32, m int) { panic("unreachable") }

func layerNormRows8AVX2(dy, gain, xhat, rstd, dx []float32, m int) { panic("unreachable") }

func rowShiftAVX2(x []float32, m, k int) { panic("unreachable") }

func causalGradAVX2(p, dp []float32, t int, scale float32) { panic("unreachable") }

func causalNormAVX2(s []float32, rows, t int) { panic("unreachable") }

func expSum64AVX2(x []float64, shift float64) float64 { panic("unreachable") }

func geluErf64AVX2(x, y, dd []float64) { panic("unreachable") }

func rowShift64AVX2(x []float64, m, k int) { panic("unreachable") }

func causalShift64AVX2(s []float64, rows, t int) { panic("unreachable") }

func layerNorm8x64AVX2(x, gain, bias, xhat, rstd, y []float64, m int) { panic("unreachable") }

func layerNormRows8x64AVX2(dy, gain, xhat, rstd, dx []float64, m int) { panic("unreachable") }

func causalNorm64AVX2(s []float64, rows, t int) { panic("unreachable") }

func causalGrad64AVX2(p, dp []float64, t int, scale float64) { panic("unreachable") }

func softmaxNormAVX2(x, sums []float32, m, k, grad int, scale float32) { panic("unreachable") }

func softmaxNorm64AVX2(x, sums []float64, m, k, grad int, scale float64) { panic("unreachable") }

func abT8AVX2(a []float32, lda int, b []float32, ldb int, t int, scale float32, s []float32) {
	panic("unreachable")
}

func lowerMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int) {
	panic("unreachable")
}

func lowerTMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int) {
	panic("unreachable")
}

func abT8x64AVX2(a []float64, lda int, b []float64, ldb int, t int, scale float64, s []float64) {
	panic("unreachable")
}

func lowerMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int) {
	panic("unreachable")
}

func lowerTMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int) {
	panic("unreachable")
}

func softmaxCEAVX2(x []float32, labels []int32, sums, lvs, buf []float32, m, k, grad int, scale float32) (correct int) {
	panic("unreachable")
}

func addAVX2(dst, src []float32) { panic("unreachable") }

func add64AVX2(dst, src []float64) { panic("unreachable") }

func embedGrad8AVX2(tok, pos, dx []float32, tokens []int, t int) (bad int) { panic("unreachable") }

func embedGrad8x64AVX2(tok, pos, dx []float64, tokens []int, t int) (bad int) { panic("unreachable") }

func layerNorm8TAVX2(x, gain, bias, xhat, rstd, y []float32, m int) { panic("unreachable") }

func embedSum8AVX2(x, tok, pos []float32, tokens []int, t int) (bad int) { panic("unreachable") }

func embedSum8x64AVX2(x, tok, pos []float64, tokens []int, t int) (bad int) { panic("unreachable") }
