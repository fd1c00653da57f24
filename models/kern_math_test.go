package models

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
		sum := exps(e, -3)
		var want float64
		for i, v := range x {
			w := exp32(v + 3)
			want += float64(w)
			if math.Abs(float64(e[i]-w)) > 2e-7*float64(w) {
				t.Fatalf("n=%d: exps[%d] of %g = %g, want %g", n, i, v+3, e[i], w)
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
	if s := exps(x, 0); s == s {
		t.Errorf("sum of exps with NaN inputs = %g, want NaN", s)
	}
	for i, v := range x {
		if (i == 2 || i == 9) != (v != v) {
			t.Errorf("exps[%d] = %g", i, v)
		}
	}
	th := make([]float32, 11)
	x[2], x[9] = nan, nan
	tanhs(th, x)
	if th[2] == th[2] || th[9] == th[9] {
		t.Errorf("tanh(NaN) = %g, %g, want NaN", th[2], th[9])
	}
}
