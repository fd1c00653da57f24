package kern

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// expBig returns e^x correctly rounded to float64 (for |x| < 1000, the
// result normal), from 2^n e^r, e^r by its Taylor series in 200-bit
// arithmetic: the reference above 709, where math.Exp on amd64 overflows
// early for some arguments (it gives +Inf for 1023.5 ln2).
func expBig(x float64) float64 {
	const prec = 200
	ln2, _, _ := big.ParseFloat("0.693147180559945309417232121458176568075500134360255254120680009493393621969694715605863326996418687", 10, prec, big.ToNearestEven)
	n := math.Round(x / math.Ln2)
	r := new(big.Float).SetPrec(prec).SetFloat64(x)
	r.Sub(r, new(big.Float).SetPrec(prec).Mul(ln2, big.NewFloat(n)))
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := int64(1); k < 60; k++ {
		term.Mul(term, r)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(k))
		sum.Add(sum, term)
	}
	sum.SetMantExp(sum, int(n))
	f, _ := sum.Float64()
	return f
}

// ulpDiff returns how many float64s lie between a and b (of one sign):
// the distance of their bit patterns, which counts subnormal steps too.
func ulpDiff(a, b float64) uint64 {
	ia, ib := int64(math.Float64bits(a)), int64(math.Float64bits(b))
	if ia > ib {
		return uint64(ia - ib)
	}
	return uint64(ib - ia)
}

// exp64Vector runs x through the float64 ExpSum kernel, four lanes at a
// time, with no scalar tail.
func exp64Vector(x []float64) []float64 {
	v := make([]float64, (len(x)+3)&^3)
	copy(v, x)
	expSum64AVX2(v, 0)
	return v[:len(x)]
}

// TestExp64AVX2 checks the float64 exp kernel against math.Exp within 2
// ulp on a dense grid over the whole finite range (subnormal results
// included), on random arguments near 0 and at reduction boundaries, and
// the special values: -Inf and arguments below the underflow threshold give
// exactly 0 (masked attention entries), +Inf and those above overflow +Inf,
// NaN stays NaN.
func TestExp64AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	var x []float64
	for v := -746.0; v <= 710; v += 0.000731 {
		x = append(x, v)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for range 200000 {
		x = append(x, rng.NormFloat64()*3, (rng.Float64()-0.5)*1e-6)
	}
	for k := -1075; k <= 1024; k++ { // x near (k+1/2) ln2, where n changes
		c := (float64(k) + 0.5) * math.Ln2
		x = append(x, c, math.Nextafter(c, -1000), math.Nextafter(c, 1000))
	}
	x = append(x, 0, math.Copysign(0, -1), 1, -1, 1e-300, -1e-300, 709.78, 709.782712893384,
		-708.39, -708.4, -745.13, -745.1332191019411, -745.14)
	got := exp64Vector(x)
	var worst uint64
	for i, v := range x {
		want := math.Exp(v)
		if v > 709 {
			want = expBig(v)
		}
		d := ulpDiff(got[i], want)
		if d > 2 {
			t.Fatalf("exp(%.17g) = %.17g, want %.17g (%d ulp)", v, got[i], want, d)
		}
		worst = max(worst, d)
	}
	t.Logf("worst error %d ulp over %d arguments", worst, len(x))

	special := []float64{math.Inf(-1), -1e300, -746, -750, -1e4, math.Inf(1), 1e300, 710, 709.79,
		math.NaN(), -math.NaN(), 3}
	want := []float64{0, 0, 0, 0, 0, math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1),
		math.NaN(), math.NaN(), math.Exp(3)}
	got = exp64Vector(special)
	for i, v := range special {
		if math.IsNaN(want[i]) != math.IsNaN(got[i]) || !math.IsNaN(want[i]) && ulpDiff(got[i], want[i]) > 2 ||
			want[i] == 0 && math.Float64bits(got[i]) != 0 {
			t.Errorf("exp(%g) = %g, want %g", v, got[i], want[i])
		}
	}
}

// TestExps64 checks the float64 ExpSum (vector lanes, scalar tail, shift and
// the returned sum) against math.Exp, and NaN propagation into the sum.
func TestExps64(t *testing.T) {
	for _, n := range []int{1, 3, 4, 5, 8, 11, 100} {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(i%23)*7.1 - 100
		}
		x[n/2] = math.Inf(-1)
		e := append([]float64(nil), x...)
		sum := ExpSum(e, -3)
		var want float64
		for i, v := range x {
			w := math.Exp(v + 3)
			want += w
			if ulpDiff(e[i], w) > 2 {
				t.Fatalf("n=%d: ExpSum[%d] of %g = %.17g, want %.17g", n, i, v+3, e[i], w)
			}
		}
		if math.Abs(sum-want) > 1e-15*want {
			t.Fatalf("n=%d: sum %.17g, want %.17g", n, sum, want)
		}
		x[n-1] = math.NaN()
		if s := ExpSum(x, 0); !math.IsNaN(s) || !math.IsNaN(x[n-1]) {
			t.Errorf("n=%d: ExpSum with a NaN input: sum %g, entry %g, want NaN", n, s, x[n-1])
		}
	}
}

// geluErfRef returns Phi(x) and phi(x) from math.Erfc and math.Exp, with
// the errors of rounding x/sqrt2 and x^2 corrected: erfc(|x|/sqrt2) is
// erfc(|z|) e^(z^2 - x^2/2) for the rounded z, the squares split exactly.
func geluErfRef(x float64) (cdf, pdf float64) {
	z := x / math.Sqrt2
	hz, hx := z*z, x*x
	lz, lx := math.FMA(z, z, -hz), math.FMA(x, x, -hx)
	tail := 0.5 * math.Erfc(math.Abs(z)) * math.Exp((hz-hx/2)+(lz-lx/2))
	cdf = tail
	if x > 0 {
		cdf = 1 - tail
	}
	return cdf, math.Exp(-hx/2) * (1 - lx/2) * invSqrt2Pi
}

// TestGeluErf64AVX2 checks the float64 GELU kernel on a dense grid over
// [-40, 40] (all three of Cody's intervals and the underflowing tail)
// against x Phi(x) and Phi(x) + x phi(x) from the math package, within 8
// float64 epsilons relative (the grid's worst is below 4, reference
// included); the forward-only call against the forward of the derivative
// call, bit for bit; a tail shorter than 4 against the same values inside
// the vector; and zeros, infinities and NaN.
func TestGeluErf64AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	const eps = 0x1p-52
	var x []float64
	for v := -40.0; v <= 40; v += 0.000317 {
		x = append(x, v)
	}
	x = append(x, 0.46875*math.Sqrt2, math.Nextafter(0.46875*math.Sqrt2, 0), 4*math.Sqrt2,
		math.Nextafter(4*math.Sqrt2, 10), -4*math.Sqrt2, 1e-300, -1e-300, 0, 3) // len%4 = 3
	y, dd, yf := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	GELUErfForwardDeriv(x, y, dd)
	GELUErfForward(x, yf)
	for i, v := range x {
		cdf, pdf := geluErfRef(v)
		want, wantD := v*cdf, cdf+v*pdf
		ok := math.Abs(y[i]-want) <= 8*eps*math.Abs(want) || math.Abs(want) < 1e-290 && math.Abs(y[i]) < 1e-290
		okD := math.Abs(dd[i]-wantD) <= 8*eps*(cdf+math.Abs(v*pdf)) || cdf < 1e-290 && math.Abs(dd[i]) < 1e-290
		if !ok || !okD {
			t.Fatalf("gelu(%.17g) = %.17g, gelu' %.17g; want %.17g, %.17g", v, y[i], dd[i], want, wantD)
		}
		if yf[i] != y[i] {
			t.Fatalf("gelu(%g): forward-only %.17g, with derivative %.17g", v, yf[i], y[i])
		}
	}
	// The tail (the last 3 entries, 0 and 3 among them) against the same
	// arguments inside a vector.
	inner := []float64{x[len(x)-3], x[len(x)-2], x[len(x)-1], 1}
	yi, di := make([]float64, 4), make([]float64, 4)
	GELUErfForwardDeriv(inner, yi, di)
	for j := range 3 {
		if k := len(x) - 3 + j; yi[j] != y[k] || di[j] != dd[k] {
			t.Errorf("gelu(%g): %.17g, %.17g in the tail, %.17g, %.17g in a vector", inner[j], y[k], dd[k], yi[j], di[j])
		}
	}

	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e300, -1e300}
	ys, ds := make([]float64, len(special)), make([]float64, len(special))
	GELUErfForwardDeriv(special, ys, ds)
	if !math.IsNaN(ys[0]) || !math.IsNaN(ds[0]) {
		t.Errorf("gelu(NaN) = %g, gelu' %g, want NaN", ys[0], ds[0])
	}
	if !math.IsInf(ys[1], 1) || ys[3] != 0 || ds[3] != 0.5 || ys[4] != 1e300 || ds[4] != 1 || ys[5] != 0 || ds[5] != 0 {
		t.Errorf("gelu(+Inf, -0, 1e300, -1e300) = %g, %g, %g, %g; gelu' at -0, 1e300, -1e300 %g, %g, %g",
			ys[1], ys[3], ys[4], ys[5], ds[3], ds[4], ds[5])
	}
}

// BenchmarkGeluErf64 times the float64 exact GELU with its derivative on
// MLP-sized data.
func BenchmarkGeluErf64(b *testing.B) {
	x := make([]float64, 4096)
	for i := range x {
		x[i] = float64(i%97)*0.09 - 4.3
	}
	y, dd := make([]float64, len(x)), make([]float64, len(x))
	for b.Loop() {
		GELUErfForwardDeriv(x, y, dd)
	}
}

// TestRowShift64AVX2 checks the float64 row shift of SoftmaxCrossEntropy
// against rowMax and a subtraction, bit for bit (the max is one of the
// entries whatever the order), for rows with and without a scalar tail.
func TestRowShift64AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	for _, k := range []int{4, 5, 7, 8, 25} {
		const m = 9
		x := make([]float64, m*k)
		for i := range x {
			x[i] = math.Sin(float64(7*i+k)) * 20
		}
		x[3*k+k-1] = 50 // a row's max in its last entry
		want := append([]float64(nil), x...)
		for i := 0; i < m; i++ {
			row := want[i*k : (i+1)*k]
			mx := rowMax(row)
			for j := range row {
				row[j] -= mx
			}
		}
		rowShift64AVX2(x, m, k)
		for i := range x {
			if x[i] != want[i] {
				t.Fatalf("k=%d entry %d: %v, want %v", k, i, x[i], want[i])
			}
		}
	}
}

// TestCausalShift64AVX2 checks the float64 AVX2 first pass of
// CausalSoftmax against the Go one, bit for bit.
func TestCausalShift64AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	for _, n := range []int{4, 8, 16, 20} {
		s := make([]float64, 3*n*n)
		for i := range s {
			s[i] = math.Sin(float64(7*i+n)) * 20
		}
		want := append([]float64(nil), s...)
		causalShift(want, n, math.Inf(-1))
		causalShift64AVX2(s, len(s)/n, n)
		for i := range s {
			if s[i] != want[i] {
				t.Fatalf("t=%d entry %d: %v, want %v", n, i, s[i], want[i])
			}
		}
	}
}

// TestLayerNorm8x64AVX2 checks the float64 AVX2 LayerNorm of rows of 8,
// forward and input gradient, against layerNormForward8 and
// layerNormRows8, up to float64 rounding.
func TestLayerNorm8x64AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	const m = 13
	x, dy := make([]float64, m*8), make([]float64, m*8)
	for i := range x {
		x[i] = math.Sin(float64(3*i)) * float64(1+i%5)
		dy[i] = math.Cos(float64(5*i)) * float64(1+i%3)
	}
	x[8*5] = 7 // a row far from its mean
	gain, bias := make([]float64, 8), make([]float64, 8)
	for j := range gain {
		gain[j], bias[j] = 1+0.1*float64(j), 0.05*float64(j)-0.2
	}
	h1, y1, r1 := make([]float64, m*8), make([]float64, m*8), make([]float64, m)
	h2, y2, r2 := make([]float64, m*8), make([]float64, m*8), make([]float64, m)
	layerNorm8x64AVX2(x, gain, bias, h1, r1, y1, m)
	layerNormForward8(x, m, gain, bias, h2, r2, y2)
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-14*(1+math.Abs(b)) }
	for i := range x {
		if !near(h1[i], h2[i]) || !near(y1[i], y2[i]) || !near(r1[i/8], r2[i/8]) {
			t.Errorf("entry %d: xhat %v y %v rstd %v, want %v %v %v", i, h1[i], y1[i], r1[i/8], h2[i], y2[i], r2[i/8])
		}
	}
	d1, d2 := make([]float64, m*8), make([]float64, m*8)
	for i := range d1 {
		d1[i] = float64(i%3) - 1
		d2[i] = d1[i]
	}
	layerNormRows8x64AVX2(dy, gain, h2, r2, d1, m)
	layerNormRows8(dy, m, gain, h2, r2, d2)
	for i := range d1 {
		if !near(d1[i], d2[i]) {
			t.Errorf("gradient entry %d: %v, want %v", i, d1[i], d2[i])
		}
	}
}

// TestCausalSoftmax64AVX2 checks the float64 causal softmax and its
// gradient, in AVX2 for t a multiple of 4, against a direct evaluation
// with math.Exp, within a few ulp, masked entries exactly 0.
func TestCausalSoftmax64AVX2(t *testing.T) {
	for _, n := range []int{4, 8, 16, 5} {
		const scale = 0.7
		p, dp := make([]float64, 3*n*n), make([]float64, 3*n*n)
		for i := range p {
			p[i] = math.Sin(float64(7*i+n)) * 20
			dp[i] = math.Cos(float64(3*i+n)) * 2
		}
		wantP, wantDs := make([]float64, len(p)), make([]float64, len(p))
		for r := 0; r < len(p)/n; r++ {
			live := p[r*n : r*n+r%n+1]
			mx := live[0]
			for _, v := range live {
				mx = max(mx, v)
			}
			var sum, dot float64
			for _, v := range live {
				sum += math.Exp(v - mx)
			}
			for j, v := range live {
				wantP[r*n+j] = math.Exp(v-mx) / sum
				dot += wantP[r*n+j] * dp[r*n+j]
			}
			for j := range live {
				wantDs[r*n+j] = scale * wantP[r*n+j] * (dp[r*n+j] - dot)
			}
		}
		CausalSoftmax(p, n)
		for b := 0; b < 3; b++ {
			CausalSoftmaxGrad(p[b*n*n:(b+1)*n*n], dp[b*n*n:(b+1)*n*n], n, scale)
		}
		for i := range p {
			if math.Abs(p[i]-wantP[i]) > 1e-15*wantP[i] || math.Abs(dp[i]-wantDs[i]) > 1e-14 ||
				wantP[i] == 0 && (p[i] != 0 || dp[i] != 0) {
				t.Errorf("t=%d entry %d: p %.17g ds %.17g, want %.17g %.17g", n, i, p[i], dp[i], wantP[i], wantDs[i])
			}
		}
	}
}

// BenchmarkExps64 times the float64 ExpSum on attention-sized data, beside
// math.Exp.
func BenchmarkExps64(b *testing.B) {
	x := make([]float64, 4096)
	for i := range x {
		x[i] = -float64(i%97) * 0.37
	}
	v := make([]float64, len(x))
	b.Run("ExpSum", func(b *testing.B) {
		for b.Loop() {
			copy(v, x)
			ExpSum(v, 0)
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for i, e := range x {
				v[i] = math.Exp(e)
			}
		}
	})
}
