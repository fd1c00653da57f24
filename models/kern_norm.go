package models

import "math"

// layerNormEps is added to the variance, as in the plain graph.
const layerNormEps = 1e-5

// layerNormForward normalises each row of x (m, d) to zero mean and unit
// variance and writes gain*xhat + bias into y. It keeps xhat and the
// reciprocal standard deviations rstd for the gradient.
func layerNormForward[T float](x []T, m, d int, gain, bias, xhat, rstd, y []T) {
	gain, bias = gain[:d], bias[:d] // hoists the bounds checks out of the rows
	for i := 0; i < m; i++ {
		row := x[i*d : (i+1)*d]
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
		xh := xhat[i*d : (i+1)*d]
		yr := y[i*d : (i+1)*d]
		for j, v := range row {
			h := (v - mu) * r
			xh[j] = h
			yr[j] = h*gain[j] + bias[j]
		}
	}
}

// layerNormBackward adds the gain and bias gradients to dgain and dbias and
// adds the input gradient to dx:
//
//	dx = rstd (g - mean(g) - xhat mean(g xhat)),  g = dy * gain.
func layerNormBackward[T float](dy []T, m, d int, gain, xhat, rstd, dgain, dbias, dx []T) {
	gain, dgain, dbias = gain[:d], dgain[:d], dbias[:d] // as in layerNormForward
	for i := 0; i < m; i++ {
		dyr := dy[i*d : (i+1)*d]
		xh := xhat[i*d : (i+1)*d]
		var sg, sgx T
		for j, g := range dyr {
			dgain[j] += g * xh[j]
			dbias[j] += g
			g *= gain[j]
			sg += g
			sgx += g * xh[j]
		}
		sg /= T(d)
		sgx /= T(d)
		r := rstd[i]
		dxr := dx[i*d : (i+1)*d]
		for j, g := range dyr {
			dxr[j] += r * (g*gain[j] - sg - xh[j]*sgx)
		}
	}
}
