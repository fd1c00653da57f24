package kern

// layerNorm8TAVX2 is layerNorm8AVX2 eight rows at a time, transposed to
// one row per lane, for m a multiple of 8, bit for bit its results
// (ln8t_amd64.s).
//
//go:noescape
func layerNorm8TAVX2(x, gain, bias, xhat, rstd, y []float32, m int)
