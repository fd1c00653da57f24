//go:build !amd64

package models

// haveAVX2 is false: exp and tanh are computed one element at a time.
const haveAVX2 = false

func expSumAVX2(x []float32, shift float32) float32 { panic("unreachable") }

func geluDerivAVX2(x, y, dd []float32) { panic("unreachable") }

func sumRowsAVX2(dst, x []float32, m, k int) { panic("unreachable") }

func dotRowsAVX2(dst, x, y []float32, m, k int) { panic("unreachable") }

func causalShiftAVX2(s []float32, rows, t int) { panic("unreachable") }

func layerNorm8AVX2(x, gain, bias, xhat, rstd, y []float32, m int) { panic("unreachable") }

func layerNormRows8AVX2(dy, gain, xhat, rstd, dx []float32, m int) { panic("unreachable") }

func rowShiftAVX2(x []float32, m, k int) { panic("unreachable") }

func causalGradAVX2(p, dp []float32, t int, scale float32) { panic("unreachable") }

func causalNormAVX2(s []float32, rows, t int) { panic("unreachable") }
