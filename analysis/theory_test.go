package analysis

import (
	"math"
	"testing"
)

// TestDiscreteVarianceMatchesIteration compares the closed form with direct
// iteration of sigma^2(t+1) = a sigma^2(t) + eta^2 c in the three regimes.
func TestDiscreteVarianceMatchesIteration(t *testing.T) {
	const eta = 0.1
	for _, p := range []DirectionParams{
		{Lambda: 1, C: 2, S2: 3},    // confined
		{Lambda: 0, C: 2, S2: 0},    // a == 1
		{Lambda: 25, C: 1, S2: 0},   // eta lambda = 2.5: unstable
		{Lambda: -1, C: 1, S2: 1},   // lambda < 0
		{Lambda: 10, C: 1, S2: 0},   // a == 0: one step to stationarity
		{Lambda: 19.9, C: 1, S2: 0}, // just inside the upper edge
	} {
		a := DiscreteFactor(eta, p)
		v := 0.3
		for step := range 60 {
			got := DiscreteVariance(eta, p, 0.3, float64(step))
			if !approxEq(got, v, 1e-11) {
				t.Errorf("%+v step %d: closed form %.15g, iteration %.15g", p, step, got, v)
			}
			v = a*v + eta*eta*p.C
		}
	}
}

// TestDiscreteClosedForms checks a, sigma_inf^2 in both of THEORY.md's forms,
// the regimes and the a >= 1 conventions.
func TestDiscreteClosedForms(t *testing.T) {
	const eta = 0.05
	p := DirectionParams{Lambda: 2, C: 3, S2: 5}
	a := (1-eta*2)*(1-eta*2) + eta*eta*5
	if got := DiscreteFactor(eta, p); !approxEq(got, a, 1e-14) {
		t.Errorf("a = %.16g, want %.16g", got, a)
	}
	inf := eta * 3 / (2*2 - eta*4 - eta*5)
	if got := DiscreteStationary(eta, p); !approxEq(got, inf, 1e-13) || !approxEq(got, eta*eta*3/(1-a), 1e-12) {
		t.Errorf("sigma_inf^2 = %.16g, want %.16g", got, inf)
	}
	if got := DiscreteVariance(eta, p, 0, 1e5); !approxEq(got, inf, 1e-12) {
		t.Errorf("sigma^2(1e5) = %.16g, want sigma_inf^2 %.16g", got, inf)
	}
	if got := DiscreteStationary(eta, DirectionParams{C: 1}); !math.IsInf(got, 1) {
		t.Errorf("flat sigma_inf^2 = %g, want +Inf", got)
	}
	if got := DiscreteStationary(eta, DirectionParams{Lambda: -1, C: 1}); !math.IsInf(got, 1) {
		t.Errorf("unstable sigma_inf^2 = %g, want +Inf", got)
	}
	for _, tc := range []struct {
		p    DirectionParams
		want Class
	}{
		{p, Confined}, {DirectionParams{C: 1}, Diffusive},
		{DirectionParams{Lambda: 41, C: 1}, Unstable},                   // eta lambda > 2
		{DirectionParams{Lambda: -0.1, C: 1}, Unstable},                 // lambda < 0
		{DirectionParams{Lambda: 0.01, C: 1, S2: 1}, Unstable},          // s2 beats curvature
		{DirectionParams{Lambda: 0.01, C: 1, S2: 0.1 - 1e-3}, Confined}, // just below eta s2/2
	} {
		if got := Regime(eta, tc.p); got != tc.want {
			t.Errorf("Regime(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := FlatSlope(eta, 3); !approxEq(got, eta*eta*3, 1e-15) {
		t.Errorf("flat slope %g", got)
	}
}

// TestContinuityAtAOne: as a -> 1 from either side, and for eta lambda tiny,
// the discrete curve tends to the linear var0 + eta^2 c t without losing
// precision (a naive (a^t - 1)/(a - 1) would cancel).
func TestContinuityAtAOne(t *testing.T) {
	const eta, c, T = 0.01, 2.0, 1000.0
	lin := DiscreteVariance(eta, DirectionParams{C: c}, 0.5, T)
	if !approxEq(lin, 0.5+eta*eta*c*T, 1e-15) {
		t.Fatalf("a == 1: %.17g", lin)
	}
	for _, lam := range []float64{1e-6, -1e-6, 1e-9, -1e-9, 1e-13, -1e-13} {
		p := DirectionParams{Lambda: lam, C: c}
		got := DiscreteVariance(eta, p, 0.5, T)
		// Expansion to second order in delta = a - 1 of
		// var0 (1+delta)^T + eta^2 c sum_{k<T} (1+delta)^k.
		d := eta * (eta*lam*lam - 2*lam)
		want := lin + d*(T*(T-1)/2*eta*eta*c+0.5*T) +
			d*d*(T*(T-1)*(T-2)/6*eta*eta*c+0.5*T*(T-1)/2)
		if !approxEq(got, want, 1e-12) {
			t.Errorf("lambda %g: %.17g, want %.17g", lam, got, want)
		}
		// Langevin too: continuous through lambda = 0.
		gl := LangevinVariance(eta, p, 0, T)
		wl := eta * eta * c * T * (1 - lam*eta*T)
		if !approxEq(gl, wl, 1e-9) {
			t.Errorf("Langevin lambda %g: %.17g, want %.17g", lam, gl, wl)
		}
	}
}

// TestLangevinVariance checks the exact FP solution against closed-form
// values, its lambda -> 0 limit, growth for lambda < 0, and that it is not
// the Euler recursion.
func TestLangevinVariance(t *testing.T) {
	const eta = 0.1
	p := DirectionParams{Lambda: 3, C: 2, S2: 7}
	for _, st := range []float64{0, 1, 10, 100} {
		tau := eta * st
		want := eta*2*(1-math.Exp(-6*tau))/6 + 0.4*math.Exp(-6*tau)
		if got := LangevinVariance(eta, p, 0.4, st); !approxEq(got, want, 1e-14) {
			t.Errorf("t=%g: %.16g, want %.16g", st, got, want)
		}
	}
	if got := LangevinVariance(eta, DirectionParams{C: 2}, 0, 50); !approxEq(got, eta*eta*2*50, 1e-15) {
		t.Errorf("flat Langevin %g", got)
	}
	neg := DirectionParams{Lambda: -1, C: 1}
	if a, b := LangevinVariance(eta, neg, 0, 100), LangevinVariance(eta, neg, 0, 200); !(b > 2*a) {
		t.Errorf("lambda < 0: not growing faster than linearly (%g, %g)", a, b)
	}
	if got := LangevinStationary(eta, p); !approxEq(got, eta*2/6, 1e-15) {
		t.Errorf("Langevin stationary %g", got)
	}
	// At eta lambda = 1.5 the Euler recursion (1 - 2 eta lambda) oscillates
	// and blows up; the FP solution stays bounded.
	big := DirectionParams{Lambda: 15, C: 1}
	v := 0.0
	for range 50 {
		v = (1-2*eta*big.Lambda)*v + eta*eta*big.C
	}
	if l := LangevinVariance(eta, big, 0, 50); !(math.Abs(v) > 1e3 && approxEq(l, LangevinStationary(eta, big), 1e-12)) {
		t.Errorf("Langevin %g vs Euler %g: Langevin must not be the Euler recursion", l, v)
	}
}

// TestDriftSpreading checks the t^3 term against direct iteration of the
// mean and variance recursions of a flat direction with a mean gradient,
// and the onset time.
func TestDriftSpreading(t *testing.T) {
	const eta, c, s2, g = 0.01, 1.0, 0.05, 10.0
	m, v := 0.0, 0.0
	const T = 2000
	for range T {
		// x' = x - eta h x - eta (g + xi): the random curvature multiplies
		// the drifting mean too.
		v = v + eta*eta*s2*(v+m*m) + eta*eta*c
		m = m - eta*g
	}
	extra := v - FlatSlope(eta, c)*T
	// t^3/3 is the leading term; the discrete sum and the eta^2 s2 v
	// feedback correct it by O(1/T) and O(eta^2 s2 T) = 1%.
	if want := DriftSpreading(eta, s2, g, T); !approxEq(extra, want, 0.02) {
		t.Errorf("extra variance %.6g, t^3 term %.6g", extra, want)
	}
	on := DriftSpreadingOnset(eta, c, s2, g, 0.1)
	if r := DriftSpreading(eta, s2, g, on) / (FlatSlope(eta, c) * on); !approxEq(r, 0.1, 1e-12) {
		t.Errorf("at onset %g the ratio is %g, want 0.1", on, r)
	}
	if !math.IsInf(DriftSpreadingOnset(eta, c, 0, g, 0.1), 1) || !math.IsInf(DriftSpreadingOnset(eta, c, s2, 0, 0.1), 1) {
		t.Error("onset without curvature noise or mean gradient must be +Inf")
	}
}
