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
// geluErf32's.
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
// nil: math.Erf in float64 was 40% of the NanoGPT-960's float32 step.
// Phi(x) = erfc(-x/sqrt 2)/2 from Numerical Recipes' erfcc, whose relative
// error is below 1.2e-7 for every argument (so also in the tail where
// Phi is tiny), erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2), z >= 0, and
// phi from a second exponential. Both exponentials are vectorised (ExpSum);
// y serves as their scratch.
func geluErf32(x, y, dd []float32) {
	y = y[:len(x)]
	for i, v := range x {
		z := float32(math.Abs(float64(v))) * (1 / math.Sqrt2)
		t := 1 / (1 + 0.5*z)
		y[i] = -z*z + erfcPoly(t)
	}
	ExpSum(y, 0)
	if dd != nil {
		dd = dd[:len(x)]
		for i, v := range x {
			dd[i] = -0.5 * v * v
		}
		ExpSum(dd, 0)
	}
	for i, v := range x {
		z := float32(math.Abs(float64(v))) * (1 / math.Sqrt2)
		half := 0.5 * y[i] / (1 + 0.5*z) // erfc(|x|/sqrt 2)/2 = Phi(-|x|)
		cdf := half
		if v > 0 {
			cdf = 1 - half
		}
		y[i] = v * cdf
		if dd != nil {
			dd[i] = cdf + v*float32(invSqrt2Pi)*dd[i]
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

// erfcPoly is the polynomial in t of erfcc (Numerical Recipes, 6.2).
func erfcPoly(t float32) float32 {
	p := float32(0.17087277)
	p = p*t - 0.82215223
	p = p*t + 1.48851587
	p = p*t - 1.13520398
	p = p*t + 0.27886807
	p = p*t - 0.18628806
	p = p*t + 0.09678418
	p = p*t + 0.37409196
	p = p*t + 1.00002368
	return p*t - 1.26551223
}
