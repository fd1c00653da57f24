package kern

import "math"

// layerNormEps is added to the variance, as in the plain graph.
const layerNormEps = 1e-5

// LayerNormForward normalises each row of x (m, d) to zero mean and unit
// variance and writes gain*xhat + bias into y. It keeps xhat and the
// reciprocal standard deviations rstd for the gradient.
func LayerNormForward[T Float](x []T, m, d int, gain, bias, xhat, rstd, y []T) {
	if d == 8 {
		if x32, ok := any(x).([]float32); ok && haveAVX2 {
			layerNorm8T(x32[:m*8], any(gain).([]float32)[:8], any(bias).([]float32)[:8],
				any(xhat).([]float32)[:m*8], any(rstd).([]float32)[:m], any(y).([]float32)[:m*8], m)
			return
		}
		if x64, ok := any(x).([]float64); ok && haveAVX2 {
			layerNorm8x64AVX2(x64[:m*8], any(gain).([]float64)[:8], any(bias).([]float64)[:8],
				any(xhat).([]float64)[:m*8], any(rstd).([]float64)[:m], any(y).([]float64)[:m*8], m)
			return
		}
		layerNormForward8(x, m, gain, bias, xhat, rstd, y)
		return
	}
	gain, bias = gain[:d], bias[:d] // hoists the bounds checks out of the rows
	for i := 0; i < m; i++ {
		row := x[i*d:][:d]
		var mu T
		for _, v := range row {
			mu += v
		}
		mu /= T(d)
		var va T
		for _, v := range row {
			va += (v - mu) * (v - mu)
		}
		va /= T(d)
		r := 1 / T(math.Sqrt(float64(va+layerNormEps)))
		rstd[i] = r
		xh, yr := xhat[i*d:][:d], y[i*d:][:d]
		for j, v := range row {
			h := (v - mu) * r
			xh[j] = h
			yr[j] = h*gain[j] + bias[j]
		}
	}
}

// LayerNormBackward adds the gain and bias gradients to dgain and dbias and
// adds the input gradient to dx:
//
//	dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dy * gain.
//
// The gain and bias gradients are column sums over the rows, taken four
// rows at a time after the rows' pass: accumulating them row by row would
// load and store dgain and dbias once per row of a few floats.
func LayerNormBackward[T Float](dy []T, m, d int, gain, xhat, rstd, dgain, dbias, dx []T) {
	gain, dgain, dbias = gain[:d], dgain[:d], dbias[:d] // as in LayerNormForward
	if dy32, ok := any(dy).([]float32); ok && haveAVX2 && d == 8 {
		layerNormRows8AVX2(dy32[:m*8], any(gain).([]float32), any(xhat).([]float32)[:m*8],
			any(rstd).([]float32)[:m], any(dx).([]float32)[:m*8], m)
	} else if dy64, ok := any(dy).([]float64); ok && haveAVX2 && d == 8 {
		layerNormRows8x64AVX2(dy64[:m*8], any(gain).([]float64), any(xhat).([]float64)[:m*8],
			any(rstd).([]float64)[:m], any(dx).([]float64)[:m*8], m)
	} else if d == 8 {
		layerNormRows8(dy, m, gain, xhat, rstd, dx)
	} else {
		layerNormRows(dy, m, d, gain, xhat, rstd, dx)
	}
	layerNormParamGrad(dy, m, d, xhat, dgain, dbias)
}

// layerNormRows adds the input gradient of LayerNormBackward to dx.
func layerNormRows[T Float](dy []T, m, d int, gain, xhat, rstd, dx []T) {
	gain = gain[:d]
	for i := 0; i < m; i++ {
		dyr, xh, dxr := dy[i*d:][:d], xhat[i*d:][:d], dx[i*d:][:d]
		var sg, sgx T
		for j, g := range dyr {
			g *= gain[j]
			sg += g
			sgx += g * xh[j]
		}
		sg /= T(d)
		sgx /= T(d)
		r := rstd[i]
		for j, g := range dyr {
			dxr[j] += r * (g*gain[j] - sg - xh[j]*sgx)
		}
	}
}

// layerNormParamGrad adds the column sums of dy * xhat and dy to dgain and
// dbias.
func layerNormParamGrad[T Float](dy []T, m, d int, xhat, dgain, dbias []T) {
	dgain = dgain[:d]
	SumRows(dbias[:d], dy[:m*d])
	if g32, ok := any(dgain).([]float32); ok && haveAVX2 && d >= 8 {
		// Eight columns at a time in AVX2, the last d%8 columns here.
		dy32, xh32, d8 := any(dy).([]float32)[:m*d], any(xhat).([]float32)[:m*d], d&^7
		dotRowsAVX2(g32[:d8], dy32, xh32, m, d)
		for j := d8; j < d; j++ {
			var s float32
			for i := 0; i < m; i++ {
				s += dy32[i*d+j] * xh32[i*d+j]
			}
			g32[j] += s
		}
		return
	}
	i := 0
	for ; i+4 <= m; i += 4 {
		g0, g1, g2, g3 := dy[i*d:][:d], dy[(i+1)*d:][:d], dy[(i+2)*d:][:d], dy[(i+3)*d:][:d]
		x0, x1, x2, x3 := xhat[i*d:][:d], xhat[(i+1)*d:][:d], xhat[(i+2)*d:][:d], xhat[(i+3)*d:][:d]
		for j := range dgain {
			dgain[j] += (g0[j]*x0[j] + g1[j]*x1[j]) + (g2[j]*x2[j] + g3[j]*x3[j])
		}
	}
	for ; i < m; i++ {
		g0, x0 := dy[i*d:][:d], xhat[i*d:][:d]
		for j := range dgain {
			dgain[j] += g0[j] * x0[j]
		}
	}
}

// The tiny transformer's rows are 8 wide: layerNormForward8 and
// layerNormRows8 are the row loops unrolled on fixed-size arrays, without
// loop overhead or bounds checks and with the sums taken as trees rather
// than serial chains.

func layerNormForward8[T Float](x []T, m int, gain, bias, xhat, rstd, y []T) {
	g, b := (*[8]T)(gain[:8]), (*[8]T)(bias[:8])
	x, xhat, y, rstd = x[:m*8], xhat[:m*8], y[:m*8], rstd[:m]
	for i := range rstd {
		r := (*[8]T)(x[i*8:])
		mu := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		mu /= 8
		c0, c1, c2, c3 := r[0]-mu, r[1]-mu, r[2]-mu, r[3]-mu
		c4, c5, c6, c7 := r[4]-mu, r[5]-mu, r[6]-mu, r[7]-mu
		va := ((c0*c0 + c1*c1) + (c2*c2 + c3*c3)) + ((c4*c4 + c5*c5) + (c6*c6 + c7*c7))
		va /= 8
		s := 1 / T(math.Sqrt(float64(va+layerNormEps)))
		rstd[i] = s
		h, o := (*[8]T)(xhat[i*8:]), (*[8]T)(y[i*8:])
		h[0], h[1], h[2], h[3] = c0*s, c1*s, c2*s, c3*s
		h[4], h[5], h[6], h[7] = c4*s, c5*s, c6*s, c7*s
		o[0], o[1], o[2], o[3] = h[0]*g[0]+b[0], h[1]*g[1]+b[1], h[2]*g[2]+b[2], h[3]*g[3]+b[3]
		o[4], o[5], o[6], o[7] = h[4]*g[4]+b[4], h[5]*g[5]+b[5], h[6]*g[6]+b[6], h[7]*g[7]+b[7]
	}
}

func layerNormRows8[T Float](dy []T, m int, gain, xhat, rstd, dx []T) {
	w := (*[8]T)(gain[:8])
	dy, xhat, dx, rstd = dy[:m*8], xhat[:m*8], dx[:m*8], rstd[:m]
	for i, r := range rstd {
		e, h, o := (*[8]T)(dy[i*8:]), (*[8]T)(xhat[i*8:]), (*[8]T)(dx[i*8:])
		g0, g1, g2, g3 := e[0]*w[0], e[1]*w[1], e[2]*w[2], e[3]*w[3]
		g4, g5, g6, g7 := e[4]*w[4], e[5]*w[5], e[6]*w[6], e[7]*w[7]
		sg := ((g0 + g1) + (g2 + g3)) + ((g4 + g5) + (g6 + g7))
		sgx := ((g0*h[0] + g1*h[1]) + (g2*h[2] + g3*h[3])) + ((g4*h[4] + g5*h[5]) + (g6*h[6] + g7*h[7]))
		sg /= 8
		sgx /= 8
		o[0] += r * (g0 - sg - h[0]*sgx)
		o[1] += r * (g1 - sg - h[1]*sgx)
		o[2] += r * (g2 - sg - h[2]*sgx)
		o[3] += r * (g3 - sg - h[3]*sgx)
		o[4] += r * (g4 - sg - h[4]*sgx)
		o[5] += r * (g5 - sg - h[5]*sgx)
		o[6] += r * (g6 - sg - h[6]*sgx)
		o[7] += r * (g7 - sg - h[7]*sgx)
	}
}
