package models

import (
	"math"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// denseForward sets y (m, out) = x (m, in) w (in, out) + bias.
func denseForward[T float](x []T, m, in int, w, bias []T, out int, y []T) {
	for i := 0; i < m; i++ {
		copy(y[i*out:(i+1)*out], bias)
	}
	gemm.Gemm(false, false, m, out, in, 1, x, in, w, out, 1, y, out)
}

// denseBackward adds the weight and bias gradients of y = x w + bias to dw
// and dbias and, if dx is not nil, sets dx = dy w^T.
func denseBackward[T float](x []T, m, in int, w []T, out int, dy []T, dw, dbias, dx []T) {
	denseBackwardBeta(x, m, in, w, out, dy, dw, dbias, dx, 0)
}

// denseBackwardBeta is denseBackward with dx = dy w^T + beta dx, so that
// beta = 1 sums the input gradients of several layers reading one x.
func denseBackwardBeta[T float](x []T, m, in int, w []T, out int, dy []T, dw, dbias, dx []T, beta T) {
	gemm.Gemm(true, false, in, out, m, 1, x, in, dy, out, 1, dw, out)
	for i := 0; i < m; i++ {
		addTo(dbias, dy[i*out:(i+1)*out])
	}
	if dx != nil {
		gemm.Gemm(false, true, m, in, out, 1, dy, out, w, out, beta, dx, in)
	}
}

// reluMask sets v[i] = max(v[i], 0) and mask[i] = 1 where v[i] was
// positive, 0 elsewhere.
func reluMask[T float](v []T, mask []uint8) {
	mask = mask[:len(v)]
	for i, x := range v {
		mask[i] = b2u(x > 0)
		if x < 0 {
			v[i] = 0
		}
	}
}

// applyMask zeroes v[i] where mask[i] is 0: a ReLU with a given pattern in
// the forward pass, and the ReLU's gradient in the backward pass.
func applyMask[T float](v []T, mask []uint8) {
	mask = mask[:len(v)]
	for i, m := range mask {
		if m == 0 {
			v[i] = 0
		}
	}
}

// copyPattern moves the units [off, off+size) of n examples between a
// layer's rows (mask, n x size) and the per-example pattern bytes (n x per):
// into pat if record, out of it otherwise.
func copyPattern(mask, pat []uint8, n, per, off, size int, record bool) {
	for i := 0; i < n; i++ {
		row, p := mask[i*size:(i+1)*size], pat[i*per+off:i*per+off+size]
		if record {
			copy(p, row)
		} else {
			copy(row, p)
		}
	}
}

// tanhInPlace sets v[i] = tanh(v[i]).
func tanhInPlace[T float](v []T) { tanhs(v, v) }

// tanhGrad multiplies dv by 1 - t^2, the derivative of tanh at the output t.
func tanhGrad[T float](t, dv []T) {
	dv = dv[:len(t)]
	for i, x := range t {
		dv[i] *= 1 - x*x
	}
}

// geluC is sqrt(2/pi), the scale inside the tanh approximation of GELU.
var geluC = math.Sqrt(2 / math.Pi)

// geluForward sets y = 0.5 x (1 + th), th = tanh(sqrt(2/pi) (x + 0.044715
// x^3)), and keeps th for the gradient.
func geluForward[T float](x, y, th []T) {
	y, th = y[:len(x)], th[:len(x)]
	c := T(geluC)
	for i, v := range x {
		th[i] = c * (v + 0.044715*v*v*v)
	}
	tanhs(th, th)
	for i, v := range x {
		y[i] = 0.5 * v * (1 + th[i])
	}
}

// geluBackward multiplies dy in place by the GELU derivative at x, given
// the th kept by geluForward.
func geluBackward[T float](x, th, dy []T) {
	dy, th = dy[:len(x)], th[:len(x)]
	c := T(geluC)
	for i, v := range x {
		t := th[i]
		dy[i] *= 0.5*(1+t) + 0.5*v*(1-t*t)*c*(1+3*0.044715*v*v)
	}
}
