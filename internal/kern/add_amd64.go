package kern

// addAVX2 sets dst[i] += src[i] for i < len(dst), src at least as long
// (add_amd64.s).
//
//go:noescape
func addAVX2(dst, src []float32)

// add64AVX2 is addAVX2 for float64 (add_amd64.s).
//
//go:noescape
func add64AVX2(dst, src []float64)
