package analysis

import (
	"fmt"
	"math"
)

// ScanPoint is the late-time variance growth rate per step of the diffusive
// directions at one learning rate, with its confidence interval.
type ScanPoint struct {
	Eta  float64
	Rate Interval
}

// DiffusiveRate returns the median over the diffusive directions of cls of
// the late slope (variance growth per step) at learning rate eta, with a
// percentile interval at level from the per-resample medians (the resamples
// are shared by all directions, so the median is a curve-level statistic of
// each resample).
func DiffusiveRate(eta float64, cls []Classification, level float64) (ScanPoint, error) {
	use := make([]bool, len(cls))
	for i, c := range cls {
		use[i] = c.Class == Diffusive
	}
	p, err := MedianRate(eta, cls, use, level)
	if err != nil {
		return p, fmt.Errorf("diffusive rate: %w", err)
	}
	return p, nil
}

// MedianRate is DiffusiveRate over the directions i with use[i], whatever
// their class.
func MedianRate(eta float64, cls []Classification, use []bool, level float64) (ScanPoint, error) {
	var est []float64
	var boot [][]float64
	for i, c := range cls {
		if use[i] {
			est = append(est, c.LateSlope.Est)
			boot = append(boot, c.SlopeBoot)
		}
	}
	if len(est) == 0 {
		return ScanPoint{}, fmt.Errorf("eta %g: no direction to take the median over", eta)
	}
	nb := len(boot[0])
	for _, b := range boot {
		if len(b) != nb || nb == 0 {
			return ScanPoint{}, fmt.Errorf("eta %g: directions have different or no bootstrap resamples", eta)
		}
	}
	med := make([]float64, nb)
	col := make([]float64, len(boot))
	for b := range nb {
		for k := range boot {
			col[k] = boot[k][b]
		}
		med[b] = median(col)
	}
	lo, hi := percentileCI(med, level, math.NaN())
	return ScanPoint{Eta: eta, Rate: Interval{Est: median(est), Lo: lo, Hi: hi}}, nil
}

// LogLogFit is a straight-line fit of ln y against ln eta.
type LogLogFit struct {
	// Slope is the fitted exponent with its confidence interval;
	// Intercept is ln y at eta = 1.
	Slope     Interval
	Intercept float64
	// Theory is the exponent THEORY.md section 5 predicts.
	Theory float64
	// Chi2 is the weighted residual sum of squares and DoF = points - 2.
	// When Chi2/DoF > 1 the slope interval is widened by sqrt(Chi2/DoF).
	Chi2 float64
	DoF  int
}

// ScanFit is the learning-rate scan fit: growth per step against eta
// (theory slope 2: eta^2 c) and per unit time tau = eta t (rate/eta =
// 2D, theory slope 1: eta c).
type ScanFit struct {
	PerStep, PerTau LogLogFit
}

// FitScan fits ln(rate) against ln(eta) by weighted least squares. Each
// point's standard error on the log scale is taken from its interval,
// (ln Hi - ln Lo) / (2 z), z the normal quantile of level (the level of the
// points' intervals and of the returned ones). The slope interval is
// +- z times the propagated standard error, widened by the Birge ratio
// sqrt(Chi2/DoF) when the scatter exceeds the errors. The per-tau fit
// divides each rate by eta, which shifts the slope by exactly -1 and keeps
// the errors.
func FitScan(points []ScanPoint, level float64) (ScanFit, error) {
	if !(level > 0 && level < 1) {
		return ScanFit{}, fmt.Errorf("lr scan: level %g not in (0, 1)", level)
	}
	if len(points) < 2 {
		return ScanFit{}, fmt.Errorf("lr scan: %d learning rates: need at least 2", len(points))
	}
	z := normalQuantile(0.5 + level/2)
	x := make([]float64, len(points))
	y := make([]float64, len(points))
	w := make([]float64, len(points))
	for i, p := range points {
		if !(p.Eta > 0) || !(p.Rate.Est > 0 && p.Rate.Lo > 0 && p.Rate.Hi >= p.Rate.Lo) {
			return ScanFit{}, fmt.Errorf("lr scan: point %d (eta %g, rate %+v): need eta > 0 and a positive rate interval", i, p.Eta, p.Rate)
		}
		se := (math.Log(p.Rate.Hi) - math.Log(p.Rate.Lo)) / (2 * z)
		if !(se > 0) {
			return ScanFit{}, fmt.Errorf("lr scan: point %d (eta %g) has a zero-width interval", i, p.Eta)
		}
		x[i], y[i], w[i] = math.Log(p.Eta), math.Log(p.Rate.Est), 1/(se*se)
	}
	var sw, swx, swy float64
	for i := range x {
		sw += w[i]
		swx += w[i] * x[i]
		swy += w[i] * y[i]
	}
	mx, my := swx/sw, swy/sw
	var sxx, sxy float64
	for i := range x {
		sxx += w[i] * (x[i] - mx) * (x[i] - mx)
		sxy += w[i] * (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return ScanFit{}, fmt.Errorf("lr scan: all learning rates equal")
	}
	slope := sxy / sxx
	icept := my - slope*mx
	var chi2 float64
	for i := range x {
		r := y[i] - icept - slope*x[i]
		chi2 += w[i] * r * r
	}
	dof := len(x) - 2
	se := math.Sqrt(1 / sxx)
	if dof > 0 && chi2/float64(dof) > 1 {
		se *= math.Sqrt(chi2 / float64(dof))
	}
	step := LogLogFit{
		Slope:     Interval{Est: slope, Lo: slope - z*se, Hi: slope + z*se},
		Intercept: icept, Theory: 2, Chi2: chi2, DoF: dof,
	}
	tau := step
	tau.Slope = Interval{Est: slope - 1, Lo: step.Slope.Lo - 1, Hi: step.Slope.Hi - 1}
	tau.Theory = 1
	return ScanFit{PerStep: step, PerTau: tau}, nil
}
