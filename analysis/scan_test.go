package analysis

import (
	"math/rand/v2"
	"testing"
)

// TestLRScanRecoversExponents runs diffusive ensembles (lambda = s2 = 0) at
// five learning rates, takes the median late slope of the diffusive
// directions and fits it against eta: the per-step exponent must come out
// near 2 and the per-tau one near 1, with intervals excluding 1 and 2
// respectively.
func TestLRScanRecoversExponents(t *testing.T) {
	rng := rand.New(rand.NewPCG(77, 78))
	// Equal c so that the median is the same quantity whichever diffusive
	// directions pass the rule at a given eta.
	ps := []DirectionParams{{C: 1}, {C: 1}, {C: 1}, {Lambda: 3, C: 1, S2: 1}}
	var pts []ScanPoint
	for i, eta := range []float64{0.01, 0.02, 0.05, 0.1, 0.2} {
		e := simulate(rng, eta, ps, nil, 128, 150, 3)
		g, err := VarianceGrowth(e, GrowthOptions{Resamples: 300, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		cls, err := Classify(g, nil, ClassifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := DiffusiveRate(eta, cls, g.Level)
		if err != nil {
			t.Fatal(err)
		}
		pts = append(pts, p)
	}
	fit, err := FitScan(pts, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("per step %+v; per tau %+v", fit.PerStep, fit.PerTau)
	if s := fit.PerStep.Slope; !s.Contains(2) || s.Contains(1) || s.Hi-s.Lo > 0.5 {
		t.Errorf("per-step slope %+v: want an interval around 2", s)
	}
	if s := fit.PerTau.Slope; !s.Contains(1) || s.Contains(2) || s.Contains(0) {
		t.Errorf("per-tau slope %+v: want an interval around 1", s)
	}
}

// TestFitScanExact: noiseless power laws give the exact exponents, and bad
// input is refused.
func TestFitScanExact(t *testing.T) {
	var pts []ScanPoint
	for _, eta := range []float64{0.01, 0.03, 0.1} {
		r := 5 * eta * eta
		pts = append(pts, ScanPoint{Eta: eta, Rate: Interval{Est: r, Lo: 0.9 * r, Hi: 1.1 * r}})
	}
	fit, err := FitScan(pts, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if !approxEq(fit.PerStep.Slope.Est, 2, 1e-12) || !approxEq(fit.PerTau.Slope.Est, 1, 1e-12) {
		t.Errorf("slopes %g, %g", fit.PerStep.Slope.Est, fit.PerTau.Slope.Est)
	}
	pts[1].Rate.Lo = -1
	if _, err := FitScan(pts, 0.9); err == nil {
		t.Error("non-positive interval accepted")
	}
}
