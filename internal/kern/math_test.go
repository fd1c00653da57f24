package kern

import (
	"math"
	"testing"
)

// TestExp32Tanh32 checks the float32 exp and tanh against the math package.
func TestExp32Tanh32(t *testing.T) {
	for x := -90.0; x <= 88; x += 0.00937 {
		got, want := float64(exp32(float32(x))), math.Exp(float64(float32(x)))
		if x < -87 {
			want = 0
		}
		if math.Abs(got-want) > 3e-7*want {
			t.Fatalf("exp32(%g) = %g, want %g", x, got, want)
		}
	}
	for x := -20.0; x <= 20; x += 0.00131 {
		got, want := float64(tanh32(float32(x))), math.Tanh(float64(float32(x)))
		if math.Abs(got-want) > 2e-7 {
			t.Fatalf("tanh32(%g) = %g, want %g", x, got, want)
		}
	}
}

// TestExpsTanhs checks the vectorised slice versions against exp32 and
// tanh32, including the scalar tails and the underflow to 0.
func TestExpsTanhs(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 100} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%23)*7.1 - 100 // [-100, 56]: the sum stays finite
		}
		e := append([]float32(nil), x...)
		sum := ExpSum(e, -3)
		var want float64
		for i, v := range x {
			w := exp32(v + 3)
			want += float64(w)
			if math.Abs(float64(e[i]-w)) > 2e-7*float64(w) {
				t.Fatalf("n=%d: ExpSum[%d] of %g = %g, want %g", n, i, v+3, e[i], w)
			}
		}
		if math.Abs(float64(sum)-want) > 1e-6*want {
			t.Fatalf("n=%d: sum %g, want %g", n, sum, want)
		}
		for i := range x {
			x[i] /= 20
		}
		th := make([]float32, n)
		tanhs(th, x)
		for i, v := range x {
			if math.Abs(float64(th[i]-tanh32(v))) > 2e-7 {
				t.Fatalf("n=%d: tanhs(%g) = %g, want %g", n, v, th[i], tanh32(v))
			}
		}
	}
}

// TestExpNaN checks that NaN propagates through exp and tanh (vectorised
// and scalar lanes), so that a diverged model reports a NaN loss.
func TestExpNaN(t *testing.T) {
	nan := float32(math.NaN())
	x := make([]float32, 11)
	x[2], x[9] = nan, nan
	if s := ExpSum(x, 0); s == s {
		t.Errorf("sum of ExpSum with NaN inputs = %g, want NaN", s)
	}
	for i, v := range x {
		if (i == 2 || i == 9) != (v != v) {
			t.Errorf("ExpSum[%d] = %g", i, v)
		}
	}
	th := make([]float32, 11)
	x[2], x[9] = nan, nan
	tanhs(th, x)
	if th[2] == th[2] || th[9] == th[9] {
		t.Errorf("tanh(NaN) = %g, %g, want NaN", th[2], th[9])
	}
}

// TestGeluDerivAVX2 checks the AVX2 GELU kernel against the Go version,
// including saturated arguments, NaN and a tail shorter than 8.
func TestGeluDerivAVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	var x []float32
	for i := -200; i <= 200; i++ {
		x = append(x, float32(i)*0.05)
	}
	x = append(x, -30, -12, 9, 30, 1e4, -1e4, float32(math.NaN()), 0.3)
	y1, d1 := make([]float32, len(x)), make([]float32, len(x))
	y2, d2 := make([]float32, len(x)), make([]float32, len(x))
	geluForwardDeriv32(x, y1, d1)
	geluForwardDeriv32Go(x, y2, d2)
	for i, v := range x {
		if math.IsNaN(float64(v)) {
			if !math.IsNaN(float64(y1[i])) || !math.IsNaN(float64(d1[i])) {
				t.Errorf("x=NaN: y=%v dd=%v, want NaN", y1[i], d1[i])
			}
			continue
		}
		ey := math.Abs(float64(y1[i] - y2[i]))
		ed := math.Abs(float64(d1[i] - d2[i]))
		if ey > 1e-6*(1+math.Abs(float64(y2[i]))) || ed > 1e-6*(1+math.Abs(float64(d2[i]))) {
			t.Errorf("x=%v: y=%v dd=%v, want %v %v", v, y1[i], d1[i], y2[i], d2[i])
		}
	}
}

// TestColumnSumsAVX2 checks SumRows and layerNormParamGrad, whose float32
// paths run in AVX2 for rows of 8 or more, against plain sums.
func TestColumnSumsAVX2(t *testing.T) {
	for _, k := range []int{1, 7, 8, 9, 16, 25, 32} {
		for _, m := range []int{0, 1, 3, 4, 5, 17} {
			x, y := make([]float32, m*k), make([]float32, m*k)
			for i := range x {
				x[i] = float32(math.Sin(float64(3*i+k))) * 3
				y[i] = float32(math.Cos(float64(5*i+m))) * 2
			}
			sum, dot := make([]float32, k), make([]float32, k)
			want, wantDot := make([]float64, k), make([]float64, k)
			for j := range sum {
				sum[j], dot[j] = float32(j), float32(-j)
				want[j], wantDot[j] = float64(j), float64(-j)
			}
			for i := 0; i < m; i++ {
				for j := 0; j < k; j++ {
					want[j] += float64(x[i*k+j])
					wantDot[j] += float64(x[i*k+j]) * float64(y[i*k+j])
				}
			}
			SumRows(sum, x)
			dbias := make([]float32, k)
			layerNormParamGrad(x, m, k, y, dot, dbias)
			for j := range sum {
				if math.Abs(float64(sum[j])-want[j]) > 1e-4 || math.Abs(float64(dot[j])-wantDot[j]) > 1e-4 ||
					math.Abs(float64(dbias[j])-(want[j]-float64(j))) > 1e-4 {
					t.Errorf("k=%d m=%d col %d: sum %v dot %v dbias %v, want %v %v %v", k, m, j,
						sum[j], dot[j], dbias[j], want[j], wantDot[j], want[j]-float64(j))
				}
			}
		}
	}
}

// TestCausalShiftAVX2 checks the AVX2 first pass of CausalSoftmax against
// the Go one: the same max, so the same floats.
func TestCausalShiftAVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	for _, n := range []int{8, 16, 24} {
		s := make([]float32, 3*n*n)
		for i := range s {
			s[i] = float32(math.Sin(float64(7*i+n))) * 20
		}
		want := append([]float32(nil), s...)
		causalShift(want, n, float32(math.Inf(-1)))
		causalShiftAVX2(s, len(s)/n, n)
		for i := range s {
			if s[i] != want[i] {
				t.Fatalf("t=%d entry %d: %v, want %v", n, i, s[i], want[i])
			}
		}
	}
}

// TestLayerNorm8AVX2 checks the AVX2 LayerNorm of rows of 8 against
// layerNormForward8, up to float32 rounding.
func TestLayerNorm8AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	const m = 13
	x := make([]float32, m*8)
	for i := range x {
		x[i] = float32(math.Sin(float64(3*i))) * float32(1+i%5)
	}
	x[8*5] = 7 // a row far from its mean
	gain, bias := make([]float32, 8), make([]float32, 8)
	for j := range gain {
		gain[j], bias[j] = 1+0.1*float32(j), 0.05*float32(j)-0.2
	}
	h1, y1, r1 := make([]float32, m*8), make([]float32, m*8), make([]float32, m)
	h2, y2, r2 := make([]float32, m*8), make([]float32, m*8), make([]float32, m)
	layerNorm8AVX2(x, gain, bias, h1, r1, y1, m)
	layerNormForward8(x, m, gain, bias, h2, r2, y2)
	near := func(a, b float32) bool { return math.Abs(float64(a-b)) <= 1e-5*(1+math.Abs(float64(b))) }
	for i := range x {
		if !near(h1[i], h2[i]) || !near(y1[i], y2[i]) || !near(r1[i/8], r2[i/8]) {
			t.Errorf("entry %d: xhat %v y %v rstd %v, want %v %v %v", i, h1[i], y1[i], r1[i/8], h2[i], y2[i], r2[i/8])
		}
	}
}

// TestLayerNormRows8AVX2 checks the AVX2 LayerNorm input gradient of rows
// of 8 against layerNormRows8, up to float32 rounding.
func TestLayerNormRows8AVX2(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	const m = 13
	dy, xh := make([]float32, m*8), make([]float32, m*8)
	rstd, gain := make([]float32, m), make([]float32, 8)
	for i := range dy {
		dy[i] = float32(math.Sin(float64(3*i))) * float32(1+i%5)
		xh[i] = float32(math.Cos(float64(5 * i)))
	}
	for i := range rstd {
		rstd[i] = 0.5 + float32(i)/7
	}
	for j := range gain {
		gain[j] = 1 + 0.1*float32(j)
	}
	d1, d2 := make([]float32, m*8), make([]float32, m*8)
	for i := range d1 {
		d1[i] = float32(i%3) - 1
		d2[i] = d1[i]
	}
	layerNormRows8AVX2(dy, gain, xh, rstd, d1, m)
	layerNormRows8(dy, m, gain, xh, rstd, d2)
	for i := range d1 {
		if math.Abs(float64(d1[i]-d2[i])) > 1e-5*(1+math.Abs(float64(d2[i]))) {
			t.Errorf("entry %d: %v, want %v", i, d1[i], d2[i])
		}
	}
}

// TestSoftmaxCrossEntropyAVX2 checks the float32 cross-entropy, whose rows
// of 8 or more are shifted in AVX2, against float64: loss, gradient and
// the count of correct rows (the first argmax), ties included.
func TestSoftmaxCrossEntropyAVX2(t *testing.T) {
	for _, k := range []int{8, 10, 25} {
		const m, scale = 40, 0.5
		logits, labels := make([]float32, m*k), make([]int, m)
		for i := range logits {
			logits[i] = float32(math.Round(4 * math.Sin(float64(7*i+k)))) // many ties
		}
		for i := range labels {
			labels[i] = (3 * i) % k
		}
		var wantLoss float64
		wantGrad, wantCorrect := make([]float64, m*k), 0
		for i := 0; i < m; i++ {
			row, best := logits[i*k:(i+1)*k], 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			if best == labels[i] {
				wantCorrect++
			}
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v - row[best]))
			}
			wantLoss += math.Log(sum) - float64(row[labels[i]]-row[best])
			for j, v := range row {
				wantGrad[i*k+j] = scale * math.Exp(float64(v-row[best])) / sum
			}
			wantGrad[i*k+labels[i]] -= scale
		}
		var correct int
		loss := SoftmaxCrossEntropy(logits, m, k, labels, scale, true, &correct)
		if correct != wantCorrect || math.Abs(loss-wantLoss) > 1e-5*wantLoss {
			t.Errorf("k=%d: loss %v correct %d, want %v %d", k, loss, correct, wantLoss, wantCorrect)
		}
		for i, g := range logits {
			if math.Abs(float64(g)-wantGrad[i]) > 1e-6 {
				t.Errorf("k=%d grad %d: %v, want %v", k, i, g, wantGrad[i])
			}
		}
	}
}

// TestCausalSoftmaxAVX2 checks the float32 causal softmax and its
// gradient, in AVX2 for t a multiple of 8, against float64.
func TestCausalSoftmaxAVX2(t *testing.T) {
	for _, n := range []int{5, 8, 16, 24} {
		const scale = 0.7
		p, dp := make([]float32, 3*n*n), make([]float32, 3*n*n)
		for i := range p {
			p[i] = float32(math.Sin(float64(7*i+n))) * 20
			dp[i] = float32(math.Cos(float64(3*i+n))) * 2
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
				sum += math.Exp(float64(v - mx))
			}
			for j, v := range live {
				wantP[r*n+j] = math.Exp(float64(v-mx)) / sum
				dot += wantP[r*n+j] * float64(dp[r*n+j])
			}
			for j := range live {
				wantDs[r*n+j] = scale * wantP[r*n+j] * (float64(dp[r*n+j]) - dot)
			}
		}
		CausalSoftmax(p, n)
		for b := 0; b < 3; b++ {
			CausalSoftmaxGrad(p[b*n*n:(b+1)*n*n], dp[b*n*n:(b+1)*n*n], n, scale)
		}
		for i := range p {
			if math.Abs(float64(p[i])-wantP[i]) > 1e-6 || math.Abs(float64(dp[i])-wantDs[i]) > 1e-5 {
				t.Errorf("t=%d entry %d: p %v ds %v, want %v %v", n, i, p[i], dp[i], wantP[i], wantDs[i])
			}
		}
	}
}
