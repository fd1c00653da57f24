package kern

import "math"

// The smooth activations of the paper's tiny models: SiLU (the MLP-386)
// and the exact erf GELU (the NanoGPT-960). Both keep their derivative from
// the forward pass, so the backward pass is one product dy *= dd, as for
// the tanh GELU (GELUForwardDeriv).

// SiLUForwardDeriv sets v[i] to silu(v[i]) = v sigmoid(v) in place and
// dd[i] to its derivative there, s (1 + v (1 - s)) with s = sigmoid(v).
func SiLUForwardDeriv[T Float](v, dd []T) {
	dd = dd[:len(v)]
	for i, x := range v {
		dd[i] = -x
	}
	ExpSum(dd, 0) // e^-x, vectorised in float32
	for i, x := range v {
		// e^-x overflows to +Inf for very negative x: s = 0, silu = -0,
		// derivative -0, the limits.
		s := 1 / (1 + dd[i])
		v[i] = x * s
		dd[i] = s * (1 + x*(1-s))
	}
}

// invSqrt2Pi is 1/sqrt(2 pi), the standard normal density at 0.
var invSqrt2Pi = 1 / math.Sqrt(2*math.Pi)

// GELUErfForward sets y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), PyTorch's
// nn.GELU() and the plain graph's formula: in float64 with math.Erf or,
// given AVX2, geluErf64's Cody approximation, and in float32 with
// geluErf32's rational one.
func GELUErfForward[T Float](x, y []T) {
	y = y[:len(x)]
	if x32, ok := any(x).([]float32); ok {
		geluErf32(x32, any(y).([]float32), nil)
		return
	}
	if x64, ok := any(x).([]float64); ok && haveAVX2 {
		geluErf64(x64, any(y).([]float64), nil)
		return
	}
	for i, v := range x {
		f := float64(v)
		y[i] = T(0.5 * f * (1 + math.Erf(f*(1/math.Sqrt2))))
	}
}

// GELUErfForwardDeriv is GELUErfForward keeping the derivative dd = Phi(x)
// + x phi(x), phi the standard normal density.
func GELUErfForwardDeriv[T Float](x, y, dd []T) {
	y, dd = y[:len(x)], dd[:len(x)]
	if x32, ok := any(x).([]float32); ok {
		geluErf32(x32, any(y).([]float32), any(dd).([]float32))
		return
	}
	if x64, ok := any(x).([]float64); ok && haveAVX2 {
		geluErf64(x64, any(y).([]float64), any(dd).([]float64))
		return
	}
	for i, v := range x {
		f := float64(v)
		cdf := 0.5 * (1 + math.Erf(f*(1/math.Sqrt2)))
		y[i] = T(f * cdf)
		dd[i] = T(cdf + f*invSqrt2Pi*math.Exp(-0.5*f*f))
	}
}

// geluErf32 is the exact GELU in float32, with its derivative if dd is not
// nil: geluErf32AVX2 given AVX2 (the scalar Go code took a fifth of the
// NanoGPT-960's float32 step), else geluErf32Go. As in geluErf64, the last
// len(x)%8 entries go through the kernel padded, so that no entry's value
// depends on its position.
func geluErf32(x, y, dd []float32) {
	if !haveAVX2 {
		geluErf32Go(x, y, dd)
		return
	}
	n8 := len(x) &^ 7
	var d8 []float32
	if dd != nil {
		d8 = dd[:n8]
	}
	geluErf32AVX2(x[:n8], y[:n8], d8)
	if len(x) == n8 {
		return
	}
	var bx, by, bd [8]float32
	copy(bx[:], x[n8:])
	geluErf32AVX2(bx[:], by[:], bd[:])
	copy(y[n8:len(x)], by[:])
	if dd != nil {
		copy(dd[n8:len(x)], bd[:])
	}
}

// The rational function N(u)/D(u) of geluErf32, N = 1/2 + gN1 u + ... +
// gN4 u^4 and D = 1 + gD1 u + ... + gD5 u^5, approximates R(u) =
// e^(u^2/2) Phi(-u) on [0, 14] to within 6e-9 relative (a tenth of a
// float32 ulp): a minimax fit (Loeb's linearisation with Lawson's weights)
// in float64, with N(0)/D(0) = 1/2 exact. All coefficients are positive,
// so that Horner's scheme for u >= 0 does not cancel. gelu32_amd64.s holds
// the same values.
const (
	gN1 = 0.43655697788730036
	gN2 = 0.18192314973168497
	gN3 = 0.040183802407357555
	gN4 = 0.004047456425175084
	gD1 = 1.6709987832763784
	gD2 = 1.1971067284366399
	gD3 = 0.46600058367317715
	gD4 = 0.10073280239632922
	gD5 = 0.010145337012434079
)

// geluErf32Go is the exact GELU in float32, y = x Phi(x), and its
// derivative dd = Phi(x) + x phi(x) if dd is not nil, to within 2 float32
// ulps of the exact values, in the tail too (TestGeluErf32). With u = |x|,
// Phi(-u) = E R(u), E = e^(-x^2/2) = phi(x) sqrt(2 pi) from exp32 with
// x^2 = h + l split exactly, so that E keeps its relative accuracy for
// large |x|, and R(u) = N(u)/D(u), evaluated in float64 (in float32 its
// nine roundings cost up to 5 ulp); Phi(x) = 1 - Phi(-u) for x > 0. x is
// clamped to [-14, 14] (E is 0 beyond) but NaN kept, so that gelu(+Inf) =
// +Inf, gelu(-Inf) = -0 and their derivatives 1 and 0.
func geluErf32Go(x, y, dd []float32) {
	y = y[:len(x)]
	if dd != nil {
		dd = dd[:len(x)]
	}
	for i, v := range x {
		xn := max(v, -14)
		xd := min(xn, 14)
		sq := float64(xd) * float64(xd) // exact
		h := float32(sq)
		l := float32(sq - float64(h))
		e32 := exp32(-0.5 * h)
		e32 -= e32 * (0.5 * l)
		e, u := float64(e32), math.Abs(float64(xd))
		n := (((gN4*u+gN3)*u+gN2)*u+gN1)*u + 0.5
		d := ((((gD5*u+gD4)*u+gD3)*u+gD2)*u+gD1)*u + 1
		cdf := e * n / d
		if xd > 0 {
			cdf = 1 - cdf
		}
		y[i] = float32(float64(xn) * cdf)
		if dd != nil {
			dd[i] = float32(cdf + float64(xd)*(e*invSqrt2Pi))
		}
	}
}

// geluErf64 is the exact GELU in float64 in AVX2, with its derivative if
// dd is not nil: geluErf64AVX2, within 8 float64 epsilons (relative) of x
// Phi(x) from math.Erfc and of its derivative (TestGeluErf64AVX2), where
// math.Erf and math.Exp took 13% of the float64 NanoGPT-960's gradient. The last len(x)%4 entries go through
// the kernel too, padded, so that no entry's value depends on its position.
func geluErf64(x, y, dd []float64) {
	n4 := len(x) &^ 3
	var d4 []float64
	if dd != nil {
		d4 = dd[:n4]
	}
	geluErf64AVX2(x[:n4], y[:n4], d4)
	if len(x) == n4 {
		return
	}
	var bx, by, bd [4]float64
	copy(bx[:], x[n4:])
	geluErf64AVX2(bx[:], by[:], bd[:])
	copy(y[n4:len(x)], by[:])
	if dd != nil {
		copy(dd[n4:len(x)], bd[:])
	}
}
