package kern

import (
	"math"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// DenseForward sets y (m, out) = x (m, in) w (in, out) + bias, or x w
// for a nil bias.
func DenseForward[T Float](x []T, m, in int, w, bias []T, out int, y []T) {
	if bias == nil {
		// beta = 0: gemm stores x w without reading y, no clear needed.
		gemm.Gemm(false, false, m, out, in, 1, x, in, w, out, 0, y, out)
		return
	}
	broadcastRows(y[:m*out], bias[:out])
	gemm.Gemm(false, false, m, out, in, 1, x, in, w, out, 1, y, out)
}

// DenseBackward adds the weight and bias gradients of y = x w + bias to dw
// and dbias (none for a nil dbias, a layer without bias) and, if dx is not
// nil, sets dx = dy w^T.
func DenseBackward[T Float](x []T, m, in int, w []T, out int, dy []T, dw, dbias, dx []T) {
	denseBackwardBeta(x, m, in, w, out, dy, dw, dbias, dx, 0)
}

// denseBackwardBeta is DenseBackward with dx = dy w^T + beta dx, so that
// beta = 1 sums the input gradients of several layers reading one x.
func denseBackwardBeta[T Float](x []T, m, in int, w []T, out int, dy []T, dw, dbias, dx []T, beta T) {
	gemm.Gemm(true, false, in, out, m, 1, x, in, dy, out, 1, dw, out)
	if dbias != nil {
		SumRows(dbias[:out], dy[:m*out])
	}
	if dx != nil {
		// beta = 0 stores dy w^T without reading dx (no clear needed).
		gemm.Gemm(false, true, m, in, out, 1, dy, out, w, out, beta, dx, in)
	}
}

// broadcastRows fills y with copies of row. It doubles the filled prefix
// with each copy: one copy per row costs a call per row, which dominates
// for the tiny transformer's rows of 8.
func broadcastRows[T Float](y, row []T) {
	n := copy(y, row)
	for n < len(y) {
		n += copy(y[n:], y[:n])
	}
}

// Transpose writes the transpose of the rows x cols matrix a into dst
// (cols x rows).
func Transpose[T Float](dst, a []T, rows, cols int) {
	for i := 0; i < rows; i++ {
		for j, v := range a[i*cols : (i+1)*cols] {
			dst[j*rows+i] = v
		}
	}
}

// SumRows adds the rows of x (len(x)/len(dst) rows of len(dst)) into dst,
// four rows per pass over dst, to cut the loads and stores of dst and the
// loop overhead on short rows.
func SumRows[T Float](dst, x []T) {
	k := len(dst)
	if k == 0 {
		return
	}
	m, i := len(x)/k, 0
	if d32, ok := any(dst).([]float32); ok && haveAVX2 && k >= 8 && m > 0 {
		// Eight columns at a time in AVX2, the last k%8 columns here.
		x32, k8 := any(x).([]float32)[:m*k], k&^7
		sumRowsAVX2(d32[:k8], x32, m, k)
		for j := k8; j < k; j++ {
			d32[j] += colSum(x32[j:], m, k)
		}
		return
	}
	for ; i+4 <= m; i += 4 {
		r0, r1 := x[i*k:(i+1)*k], x[(i+1)*k:(i+2)*k]
		r2, r3 := x[(i+2)*k:(i+3)*k], x[(i+3)*k:(i+4)*k]
		for j := range dst {
			dst[j] += (r0[j] + r1[j]) + (r2[j] + r3[j])
		}
	}
	for ; i < m; i++ {
		Add(dst, x[i*k:(i+1)*k])
	}
}

// colSum returns the sum of x[i*k] for i < m, with four running sums.
func colSum(x []float32, m, k int) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= m; i += 4 {
		s0 += x[i*k]
		s1 += x[(i+1)*k]
		s2 += x[(i+2)*k]
		s3 += x[(i+3)*k]
	}
	for ; i < m; i++ {
		s0 += x[i*k]
	}
	return (s0 + s1) + (s2 + s3)
}

// ReLUMask sets v[i] = max(v[i], 0) and mask[i] = 1 where v[i] was
// positive, 0 elsewhere.
func ReLUMask[T Float](v []T, mask []uint8) {
	mask = mask[:len(v)]
	for i, x := range v {
		mask[i] = b2u(x > 0)
		if x < 0 {
			v[i] = 0
		}
	}
}

// ApplyMask zeroes v[i] where mask[i] is 0: a ReLU with a given pattern in
// the forward pass, and the ReLU's gradient in the backward pass.
func ApplyMask[T Float](v []T, mask []uint8) {
	mask = mask[:len(v)]
	for i, m := range mask {
		if m == 0 {
			v[i] = 0
		}
	}
}

// CopyPattern moves the units [off, off+size) of n examples between a
// layer's rows (mask, n x size) and the per-example pattern bytes (n x per):
// into pat if record, out of it otherwise.
func CopyPattern(mask, pat []uint8, n, per, off, size int, record bool) {
	for i := 0; i < n; i++ {
		row, p := mask[i*size:(i+1)*size], pat[i*per+off:i*per+off+size]
		if record {
			copy(p, row)
		} else {
			copy(row, p)
		}
	}
}

// TanhInPlace sets v[i] = tanh(v[i]).
func TanhInPlace[T Float](v []T) { tanhs(v, v) }

// TanhGrad multiplies dv by 1 - t^2, the derivative of tanh at the output t.
func TanhGrad[T Float](t, dv []T) {
	dv = dv[:len(t)]
	for i, x := range t {
		dv[i] *= 1 - x*x
	}
}

// geluC is sqrt(2/pi), the scale inside the tanh approximation of GELU.
var geluC = math.Sqrt(2 / math.Pi)

// GELUForward sets y = 0.5 x (1 + th), th = tanh(sqrt(2/pi) (x + 0.044715
// x^3)), and keeps th for the gradient.
func GELUForward[T Float](x, y, th []T) {
	y, th = y[:len(x)], th[:len(x)]
	if x32, ok := any(x).([]float32); ok && haveAVX2 {
		geluForward32(x32, any(y).([]float32), any(th).([]float32))
		return
	}
	c := T(geluC)
	for i, v := range x {
		th[i] = c * (v + 0.044715*v*v*v)
	}
	tanhs(th, th)
	for i, v := range x {
		y[i] = 0.5 * v * (1 + th[i])
	}
}

// geluForward32 is GELUForward on the vector exp kernel in three passes
// rather than tanhs's four plus two: with e = exp(2u), u the tanh's
// argument, and r = 1/(e+1), th = 1 - 2r and y = x (1 - r).
func geluForward32(x, y, th []float32) {
	y, th = y[:len(x)], th[:len(x)]
	c := float32(2 * geluC)
	for i, v := range x {
		th[i] = c * (v + 0.044715*v*v*v)
	}
	ExpSum(th, 0)
	for i, v := range x {
		r := 1 / (th[i] + 1)
		th[i] = 1 - 2*r
		y[i] = v - v*r
	}
}

// GELUBackward multiplies dy in place by the GELU derivative at x, given
// the th kept by GELUForward.
func GELUBackward[T Float](x, th, dy []T) {
	dy, th = dy[:len(x)], th[:len(x)]
	// 0.5 (1+t) + 0.5 x (1-t^2) c (1 + 3*0.044715 x^2), with the
	// constants multiplied out: two multiplications fewer per element.
	h, h3 := T(0.5*geluC), T(0.5*geluC*3*0.044715)
	for i, v := range x {
		t := th[i]
		dy[i] *= 0.5 + 0.5*t + v*(1-t*t)*(h+h3*v*v)
	}
}

// GELUForwardDeriv is GELUForward keeping, instead of th, the derivative
// dd of GELU at x, so that the backward pass is one product dy *= dd: the
// forward pass has x and th in registers, where GELUBackward reloads both.
func GELUForwardDeriv[T Float](x, y, dd []T) {
	y, dd = y[:len(x)], dd[:len(x)]
	if x32, ok := any(x).([]float32); ok && haveAVX2 {
		geluForwardDeriv32(x32, any(y).([]float32), any(dd).([]float32))
		return
	}
	GELUForward(x, y, dd)
	h, h3 := T(0.5*geluC), T(0.5*geluC*3*0.044715)
	for i, v := range x {
		t := dd[i]
		dd[i] = 0.5 + 0.5*t + v*(1-t*t)*(h+h3*v*v)
	}
}

// geluForwardDeriv32 is geluForward32 with the derivative: with r =
// 1/(e+1) and th = 1 - 2r, 0.5 (1+th) = 1 - r and 1 - th^2 = 4r(1-r).
func geluForwardDeriv32(x, y, dd []float32) {
	y, dd = y[:len(x)], dd[:len(x)]
	// The AVX2 kernel does all of it in one pass, its divide eight wide.
	if n8 := len(x) &^ 7; n8 > 0 {
		geluDerivAVX2(x[:n8], y[:n8], dd[:n8])
		x, y, dd = x[n8:], y[n8:], dd[n8:]
	}
	geluForwardDeriv32Go(x, y, dd)
}

// geluForwardDeriv32Go is geluForwardDeriv32 in Go, exp vectorised.
func geluForwardDeriv32Go(x, y, dd []float32) {
	y, dd = y[:len(x)], dd[:len(x)]
	c, c3 := float32(2*geluC), float32(2*geluC*0.044715)
	for i, v := range x {
		dd[i] = v * (c + c3*v*v)
	}
	ExpSum(dd, 0)
	h4, h34 := float32(4*0.5*geluC), float32(4*0.5*geluC*3*0.044715)
	for i, v := range x {
		r := 1 / (dd[i] + 1)
		q := 1 - r
		y[i] = v * q
		dd[i] = q + v*r*q*(h4+h34*v*v)
	}
}

// Mul sets dst[i] *= src[i].
func Mul[T Float](dst, src []T) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] *= v
	}
}
