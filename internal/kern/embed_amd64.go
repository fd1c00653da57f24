package kern

// embedGrad8AVX2 is EmbedGrad for d = 8 in float32; it returns -1 or the
// first row whose token is out of range, where it stops (embed_amd64.s).
//
//go:noescape
func embedGrad8AVX2(tok, pos, dx []float32, tokens []int, t int) (bad int)

// embedGrad8x64AVX2 is embedGrad8AVX2 for float64 (embed_amd64.s).
//
//go:noescape
func embedGrad8x64AVX2(tok, pos, dx []float64, tokens []int, t int) (bad int)

// embedSum8AVX2 is EmbedSum for d = 8 in float32; it returns -1 or the
// first row whose token is out of range, where it stops (embed_amd64.s).
//
//go:noescape
func embedSum8AVX2(x, tok, pos []float32, tokens []int, t int) (bad int)

// embedSum8x64AVX2 is embedSum8AVX2 for float64 (embed_amd64.s).
//
//go:noescape
func embedSum8x64AVX2(x, tok, pos []float64, tokens []int, t int) (bad int)
