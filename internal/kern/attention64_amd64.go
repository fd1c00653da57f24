package kern

// abT8x64AVX2 is abT8AVX2 in float64: s = scale a b^T for a and b t rows
// of 8, t a positive multiple of 8, but for the 8x8 blocks wholly above
// the diagonal, left as they were (attention64_amd64.s).
//
//go:noescape
func abT8x64AVX2(a []float64, lda int, b []float64, ldb int, t int, scale float64, s []float64)

// lowerMul8x64AVX2 is lowerMul8AVX2 in float64: out = p b for p (t, t)
// zero above its diagonal and b t rows of 8 (attention64_amd64.s).
//
//go:noescape
func lowerMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int)

// lowerTMul8x64AVX2 is lowerMul8x64AVX2 with p^T b (attention64_amd64.s).
//
//go:noescape
func lowerTMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int)
