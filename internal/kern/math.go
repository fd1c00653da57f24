package kern

import "math"

// The float32 models spend much of their elementwise time in exp and tanh
// (attention softmax, GELU, tanh units). math.Exp and math.Tanh work in
// float64 with full accuracy; exp32 and tanh32 below are accurate to a few
// float32 ulps, which is all a float32 model can use, at a fraction of the
// cost. The float64 models use a vectorised exp within 2 ulp of math.Exp
// (expSum64AVX2) and otherwise the math package.

// exp32 returns e^x to within ~2 ulp for x in [-87, 88]; smaller x give 0,
// larger x give e^88 and NaN gives NaN.
func exp32(x float32) float32 {
	const (
		log2e   = 1.44269504088896341
		ln2Hi   = 0.693359375
		ln2Lo   = -2.12194440e-4
		shifter = 1 << 23 * 1.5 // adding it rounds to an integer
	)
	if x < -87 {
		return 0
	}
	if x != x {
		return x // NaN: a diverged model must not look finite
	}
	x = min(x, 88)
	t := x*log2e + shifter
	n := int32(math.Float32bits(t) - math.Float32bits(shifter))
	fn := t - shifter
	r := x - fn*ln2Hi - fn*ln2Lo
	// Cephes expf polynomial for e^r - 1 - r on |r| <= ln2/2.
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	e := p*r*r + r + 1
	return math.Float32frombits(uint32(int32(math.Float32bits(e)) + n<<23))
}

// tanh32 is tanh(x) = 1 - 2/(e^{2x}+1), with absolute error ~1e-7.
func tanh32(x float32) float32 {
	return 1 - 2/(exp32(2*x)+1)
}

// tanhs sets dst[i] = tanh(src[i]).
func tanhs[T Float](dst, src []T) {
	dst = dst[:len(src)]
	if s, ok := any(src).([]float32); ok {
		d := any(dst).([]float32)
		if !haveAVX2 {
			for i, v := range s {
				d[i] = tanh32(v)
			}
			return
		}
		// tanh x = 1 - 2/(e^{2x}+1), with the exponentials vectorised.
		for i, v := range s {
			d[i] = 2 * v
		}
		ExpSum(d, 0)
		for i, e := range d {
			d[i] = 1 - 2/(e+1)
		}
		return
	}
	for i, v := range src {
		dst[i] = T(math.Tanh(float64(v)))
	}
}

// ExpSum sets v[i] = e^(v[i] - shift) and returns their sum.
func ExpSum[T Float](v []T, shift T) T {
	var sum T
	if s, ok := any(v).([]float32); ok {
		sh := float32(shift)
		var sum32 float32
		if haveAVX2 {
			n8 := len(s) &^ 7
			sum32 = expSumAVX2(s[:n8], sh)
			s = s[n8:]
		}
		for i, x := range s {
			e := exp32(x - sh)
			s[i] = e
			sum32 += e
		}
		return T(sum32)
	}
	if s, ok := any(v).([]float64); ok && haveAVX2 {
		// Four lanes of expSum64AVX2, within 2 ulp of math.Exp, which was
		// a third of the float64 NanoGPT-960's gradient. The tail goes
		// through the kernel too, padded with -Inf (e^-Inf = 0), so that
		// an entry's value does not depend on its position in v.
		n4 := len(s) &^ 3
		sum := expSum64AVX2(s[:n4], float64(shift))
		if tail := s[n4:]; len(tail) > 0 {
			buf := [4]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)}
			copy(buf[:], tail)
			sum += expSum64AVX2(buf[:], float64(shift))
			copy(tail, buf[:])
		}
		return T(sum)
	}
	for i, x := range v {
		e := T(math.Exp(float64(x - shift)))
		v[i] = e
		sum += e
	}
	return sum
}
