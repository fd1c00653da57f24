package kern

// layerNorm8T is layerNorm8AVX2's results (LayerNormForward's float32
// AVX2 path for rows of 8) bit for bit, faster: the rows in blocks of
// eight through layerNorm8TAVX2, the last m%8 through layerNorm8AVX2.
func layerNorm8T(x, gain, bias, xhat, rstd, y []float32, m int) {
	x, xhat, y, rstd, gain, bias = x[:m*8], xhat[:m*8], y[:m*8], rstd[:m], gain[:8], bias[:8]
	m8 := m &^ 7
	layerNorm8TAVX2(x, gain, bias, xhat, rstd, y, m8)
	if m8 < m {
		layerNorm8AVX2(x[m8*8:], gain, bias, xhat[m8*8:], rstd[m8:], y[m8*8:], m-m8)
	}
}
