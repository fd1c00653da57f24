package analysis

import (
	"math"
	"slices"
)

// Interval is a point estimate with a confidence interval [Lo, Hi].
type Interval struct {
	Est, Lo, Hi float64
}

// Contains reports whether x lies in [Lo, Hi].
func (iv Interval) Contains(x float64) bool { return iv.Lo <= x && x <= iv.Hi }

// quantileSorted is the linearly interpolated (type 7) quantile of sorted
// finite data; NaN for empty input.
func quantileSorted(s []float64, p float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return s[0]
	}
	h := p * float64(n-1)
	i := int(math.Floor(h))
	if i >= n-1 {
		return s[n-1]
	}
	if i < 0 {
		return s[0]
	}
	f := h - float64(i)
	if f == 0 {
		return s[i]
	}
	return s[i] + f*(s[i+1]-s[i])
}

// percentileCI returns the equal-tailed percentile interval at level of the
// bootstrap replicates v (v is sorted in place). NaN replicates are
// treated as nanAs (use +Inf or -Inf to make an undefined replicate count
// against a claim, or NaN to make the whole interval undefined).
func percentileCI(v []float64, level, nanAs float64) (lo, hi float64) {
	for i, x := range v {
		if math.IsNaN(x) {
			if math.IsNaN(nanAs) {
				return math.NaN(), math.NaN()
			}
			v[i] = nanAs
		}
	}
	slices.Sort(v)
	a := (1 - level) / 2
	return quantileSorted(v, a), quantileSorted(v, 1-a)
}

// olsSlope is the ordinary least-squares slope of y on x; NaN when fewer
// than two points, x has no spread, or any value is not finite.
func olsSlope(x, y []float64) float64 {
	n := len(x)
	if n < 2 || len(y) != n {
		return math.NaN()
	}
	var mx, my float64
	for i := range n {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy float64
	for i := range n {
		dx := x[i] - mx
		sxx += dx * dx
		sxy += dx * (y[i] - my)
	}
	if sxx == 0 {
		return math.NaN()
	}
	s := sxy / sxx
	if math.IsInf(s, 0) {
		return math.NaN()
	}
	return s
}

// median of finite values (NaN when none); v is not modified.
func median(v []float64) float64 {
	s := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	slices.Sort(s)
	return quantileSorted(s, 0.5)
}

// normalQuantile is the standard normal quantile function.
func normalQuantile(p float64) float64 {
	return -math.Sqrt2 * math.Erfcinv(2*p)
}
