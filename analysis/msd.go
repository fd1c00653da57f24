package analysis

import (
	"fmt"
	"math"
	"slices"
)

// LogLags returns up to n distinct integer lags from 1 to maxLag, spaced
// evenly in log scale (rounding merges the smallest ones).
func LogLags(maxLag int64, n int) []int64 {
	if maxLag < 1 || n < 1 {
		return nil
	}
	if n == 1 {
		return []int64{maxLag}
	}
	out := make([]int64, 0, n)
	for i := range n {
		l := int64(math.Round(math.Exp(float64(i) * math.Log(float64(maxLag)) / float64(n-1))))
		if len(out) == 0 || l > out[len(out)-1] {
			out = append(out, l)
		}
	}
	return out
}

// MSD returns the mean squared displacement of one run's projection p on
// one direction, MSD(k) = mean over t of (p(t+k) - p(t))^2, for each lag k
// in steps, averaging over every pair of logged steps exactly k apart
// (steps need not be evenly spaced). pairs[j] is the number of pairs for
// lag j; the MSD is NaN where there are none.
func MSD(steps []int64, p []float64, lags []int64) (msd []float64, pairs []int, err error) {
	if len(steps) != len(p) {
		return nil, nil, fmt.Errorf("msd: %d steps for %d projections", len(steps), len(p))
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] <= steps[i-1] {
			return nil, nil, fmt.Errorf("msd: steps not strictly ascending at index %d", i)
		}
	}
	msd = make([]float64, len(lags))
	pairs = make([]int, len(lags))
	for j, k := range lags {
		if k <= 0 {
			return nil, nil, fmt.Errorf("msd: lag %d is not positive", k)
		}
		var s float64
		n := 0
		for i, t := range steps {
			if m, ok := slices.BinarySearch(steps[i+1:], t+k); ok {
				d := p[i+1+m] - p[i]
				s += d * d
				n++
			}
		}
		msd[j], pairs[j] = math.NaN(), n
		if n > 0 {
			msd[j] = s / float64(n)
		}
	}
	return msd, pairs, nil
}

// MSDSummary interprets an MSD curve.
type MSDSummary struct {
	// LogLogSlope is the least-squares slope of ln MSD vs ln lag over the
	// upper half of the lags (in log scale).
	LogLogSlope float64
	// Plateau is the mean MSD over those lags; for a confined direction
	// it is 2 sigma_inf^2, so SigmaInf2 = Plateau / 2.
	Plateau, SigmaInf2 float64
	// SlopePerStep is the least-squares slope through the origin of MSD vs
	// lag over those lags: eta^2 c for a diffusive direction.
	SlopePerStep float64
	// Kind is "plateau" (log-log slope < 0.25), "linear" (0.75..1.25),
	// "superlinear" (> 1.25) or "crossover".
	Kind string
}

// SummarizeMSD fits the upper half (in log lag) of an MSD curve. A single
// run has no replicas to bootstrap, so no intervals are given; use
// ensembles for classification.
func SummarizeMSD(lags []int64, msd []float64) (MSDSummary, error) {
	if len(lags) != len(msd) {
		return MSDSummary{}, fmt.Errorf("msd summary: %d lags for %d values", len(lags), len(msd))
	}
	var x, y, l, m []float64
	for j, k := range lags {
		if k > 0 && msd[j] > 0 {
			x = append(x, math.Log(float64(k)))
			y = append(y, math.Log(msd[j]))
			l = append(l, float64(k))
			m = append(m, msd[j])
		}
	}
	if len(x) < 3 {
		return MSDSummary{}, fmt.Errorf("msd summary: %d usable lags: need at least 3", len(x))
	}
	mid := 0.5 * (x[0] + x[len(x)-1])
	i0 := len(x) - 2 // keep at least 2 points
	for i, v := range x {
		if v >= mid {
			i0 = min(i, len(x)-2)
			break
		}
	}
	var s MSDSummary
	s.LogLogSlope = olsSlope(x[i0:], y[i0:])
	var sm, slm, sll float64
	for i := i0; i < len(x); i++ {
		sm += m[i]
		slm += l[i] * m[i]
		sll += l[i] * l[i]
	}
	s.Plateau = sm / float64(len(x)-i0)
	s.SigmaInf2 = s.Plateau / 2
	s.SlopePerStep = slm / sll
	switch a := s.LogLogSlope; {
	case a < 0.25:
		s.Kind = "plateau"
	case a >= 0.75 && a <= 1.25:
		s.Kind = "linear"
	case a > 1.25:
		s.Kind = "superlinear"
	default:
		s.Kind = "crossover"
	}
	return s, nil
}
