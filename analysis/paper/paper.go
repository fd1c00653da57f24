// Package paper computes the metrics of the paper's own experiments
// (arXiv 2605.22644; protocols in paper-protocols.md) on plain slices, so
// that sgdyn can report them on the paper's direction sets beside its own
// analysis:
//
//   - EXP2: agreement of measured variances m_i with predictions p_i over a
//     direction set ([Compare]: Pearson r of ln m vs ln p, relative error,
//     best scalar, permutation p-value), with the paper's prediction
//     eta c / (2 |lambda|) ([PaperPrediction]) or sgdyn's finite-time ones,
//     and bootstrap intervals over replicas ([CompareBoot]);
//   - EXP5-LR and EXP14: bucket-mean variance curves ([BucketMean]), the
//     late slope over a few logged times ([LateSlope]), and sgdyn's
//     per-direction and bucket slopes with bootstrap intervals
//     ([DirectionSlopes], [BucketSlope]);
//   - the check of the paper's "flat" bucket for symmetry nulls
//     ([CheckNulls]) and drift beside variance ([Drift]).
//
// Everything is deterministic: permutations and resamples are seeded.
package paper

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sgdyn/sgdyn/analysis"
)

// Pearson returns the Pearson correlation coefficient of x and y. It is an
// error when the lengths differ, there are fewer than 2 points, a value is
// not finite, or either vector is constant (r undefined).
func Pearson(x, y []float64) (float64, error) {
	if len(x) != len(y) {
		return math.NaN(), fmt.Errorf("pearson: %d x values for %d y values", len(x), len(y))
	}
	if len(x) < 2 {
		return math.NaN(), fmt.Errorf("pearson: %d points: need at least 2", len(x))
	}
	if err := finite("pearson", x); err != nil {
		return math.NaN(), err
	}
	if err := finite("pearson", y); err != nil {
		return math.NaN(), err
	}
	r := pearson(x, y)
	if math.IsNaN(r) {
		return r, errors.New("pearson: a constant vector has no correlation")
	}
	return r, nil
}

// pearson is Pearson without checks: NaN when a vector is constant.
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, syy, sxy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	// Clamp the rounding of a perfect correlation into [-1, 1].
	return math.Max(-1, math.Min(1, sxy/math.Sqrt(sxx*syy)))
}

func finite(what string, v []float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s: value %d is %g", what, i, x)
		}
	}
	return nil
}

// PaperPrediction returns the paper's EXP2 prediction eta c / (2 |lambda|):
// the Langevin stationary variance with |lambda| for negative eigenvalues
// and no finite-time factor. It is +Inf when lambda == 0.
func PaperPrediction(eta, c, lambda float64) float64 {
	return eta * c / (2 * math.Abs(lambda))
}

// Predictions are the variance predictions for a set of directions.
type Predictions struct {
	// Paper is eta c / (2 |lambda|) ([PaperPrediction]); Discrete and
	// Langevin are sgdyn's finite-time variances at step t from zero
	// ([analysis.DiscreteVariance], [analysis.LangevinVariance]).
	Paper, Discrete, Langevin []float64
}

// Predict returns the three predictions at learning rate eta and step t
// for directions with statistics params (c and s2 at the ensemble's batch
// size).
func Predict(eta float64, params []analysis.DirectionParams, t float64) Predictions {
	n := len(params)
	p := Predictions{Paper: make([]float64, n), Discrete: make([]float64, n), Langevin: make([]float64, n)}
	for i, d := range params {
		p.Paper[i] = PaperPrediction(eta, d.C, d.Lambda)
		p.Discrete[i] = analysis.DiscreteVariance(eta, d, 0, t)
		p.Langevin[i] = analysis.LangevinVariance(eta, d, 0, t)
	}
	return p
}

// DefaultPermutations is the paper's number of shuffles for the p-value.
const DefaultPermutations = 200

// Agreement is how well predictions p match measurements m over a set of
// directions, by the paper's EXP2 metrics.
type Agreement struct {
	// N is the number of directions.
	N int `json:"n"`
	// LogPearson is the Pearson r of ln m against ln p.
	LogPearson float64 `json:"log_pearson"`
	// RelErr is ||m - p|| / ||m|| (Euclidean norms).
	RelErr float64 `json:"rel_err"`
	// Scale is the a minimising ||m - a p||, m.p / p.p, and RelErrScaled
	// the relative error ||m - a p|| / ||m|| after it: the shape error
	// with the overall level fitted away.
	Scale        float64 `json:"best_scale"`
	RelErrScaled float64 `json:"rel_err_scaled"`
	// PValue is the permutation p-value of LogPearson, (1 + #{r_perm >= r})
	// / (1 + Perms), over Perms shuffles of ln p.
	PValue float64 `json:"p_value"`
	Perms  int     `json:"permutations"`
}

// Compare computes the [Agreement] of predictions p with measurements m.
// Every m and p must be finite and positive (the metrics take logs). The
// permutation test shuffles ln p perms times with a PCG generator seeded
// by seed (perms 0 selects [DefaultPermutations]).
func Compare(m, p []float64, perms int, seed uint64) (Agreement, error) {
	if perms == 0 {
		perms = DefaultPermutations
	}
	if perms < 0 {
		return Agreement{}, fmt.Errorf("compare: %d permutations: must be positive", perms)
	}
	lm, lp, err := logs(m, p)
	if err != nil {
		return Agreement{}, fmt.Errorf("compare: %w", err)
	}
	a := Agreement{N: len(m), Perms: perms}
	if a.LogPearson, err = Pearson(lm, lp); err != nil {
		return Agreement{}, fmt.Errorf("compare: log-log %w", err)
	}
	a.RelErr, a.Scale, a.RelErrScaled = errors3(m, p)
	a.PValue = permutationP(lm, lp, a.LogPearson, perms, seed)
	return a, nil
}

// logs checks m and p and returns their logarithms.
func logs(m, p []float64) (lm, lp []float64, err error) {
	if len(m) != len(p) {
		return nil, nil, fmt.Errorf("%d measurements for %d predictions", len(m), len(p))
	}
	if len(m) < 3 {
		return nil, nil, fmt.Errorf("%d directions: need at least 3", len(m))
	}
	lm, lp = make([]float64, len(m)), make([]float64, len(p))
	for i := range m {
		if !(m[i] > 0) || math.IsInf(m[i], 0) {
			return nil, nil, fmt.Errorf("measured variance %d is %g: need a finite positive value", i, m[i])
		}
		if !(p[i] > 0) || math.IsInf(p[i], 0) {
			return nil, nil, fmt.Errorf("prediction %d is %g: need a finite positive value", i, p[i])
		}
		lm[i], lp[i] = math.Log(m[i]), math.Log(p[i])
	}
	return lm, lp, nil
}

// errors3 returns ||m - p|| / ||m||, the best scale a = m.p / p.p and
// ||m - a p|| / ||m||.
func errors3(m, p []float64) (rel, a, relA float64) {
	var mm, mp, pp, dd float64
	for i := range m {
		mm += m[i] * m[i]
		mp += m[i] * p[i]
		pp += p[i] * p[i]
		d := m[i] - p[i]
		dd += d * d
	}
	a = mp / pp
	var da float64
	for i := range m {
		d := m[i] - a*p[i]
		da += d * d
	}
	return math.Sqrt(dd / mm), a, math.Sqrt(da / mm)
}

// permutationP is (1 + #{r(x, shuffled y) >= r}) / (1 + perms).
func permutationP(x, y []float64, r float64, perms int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 0x9e12_a2d5))
	s := slices.Clone(y)
	hits := 0
	for range perms {
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		if pearson(x, s) >= r {
			hits++
		}
	}
	return float64(1+hits) / float64(1+perms)
}

// AgreementCI holds bootstrap intervals over replicas of the [Agreement]
// metrics that do not depend on the permutation test.
type AgreementCI struct {
	LogPearson   analysis.Interval `json:"log_pearson"`
	RelErr       analysis.Interval `json:"rel_err"`
	Scale        analysis.Interval `json:"best_scale"`
	RelErrScaled analysis.Interval `json:"rel_err_scaled"`
	// Resamples is how many resamples entered (those with every variance
	// positive and finite).
	Resamples int `json:"resamples"`
}

// CompareBoot returns percentile intervals at level for the agreement of p
// with measurements whose bootstrap replicates over replicas are
// mBoot[b][i] (resample b, direction i; one replica resample shared by
// every direction, as [analysis.Growth] provides) and whose full-sample
// values are m. A resample in which some variance is not positive is left
// out; it is an error when fewer than 10 remain.
func CompareBoot(m []float64, mBoot [][]float64, p []float64, level float64) (AgreementCI, error) {
	if !(level > 0 && level < 1) {
		return AgreementCI{}, fmt.Errorf("compare bootstrap: level %g not in (0, 1)", level)
	}
	lm, lp, err := logs(m, p)
	if err != nil {
		return AgreementCI{}, fmt.Errorf("compare bootstrap: %w", err)
	}
	r0 := pearson(lm, lp)
	rel0, a0, relA0 := errors3(m, p)
	var rs, rels, as, relAs []float64
	lb := make([]float64, len(m))
	for b, mb := range mBoot {
		if len(mb) != len(m) {
			return AgreementCI{}, fmt.Errorf("compare bootstrap: resample %d has %d directions, want %d", b, len(mb), len(m))
		}
		ok := true
		for i, v := range mb {
			if !(v > 0) || math.IsInf(v, 0) {
				ok = false
				break
			}
			lb[i] = math.Log(v)
		}
		if !ok {
			continue
		}
		r := pearson(lb, lp)
		if math.IsNaN(r) {
			continue
		}
		rel, a, relA := errors3(mb, p)
		rs, rels, as, relAs = append(rs, r), append(rels, rel), append(as, a), append(relAs, relA)
	}
	if len(rs) < 10 {
		return AgreementCI{}, fmt.Errorf("compare bootstrap: %d of %d resamples usable: need at least 10", len(rs), len(mBoot))
	}
	return AgreementCI{
		LogPearson: interval(r0, rs, level), RelErr: interval(rel0, rels, level),
		Scale: interval(a0, as, level), RelErrScaled: interval(relA0, relAs, level),
		Resamples: len(rs),
	}, nil
}

// interval is est with the equal-tailed percentile interval of v at level
// (v is sorted in place); quantiles are type 7, as in package analysis.
func interval(est float64, v []float64, level float64) analysis.Interval {
	slices.Sort(v)
	a := (1 - level) / 2
	return analysis.Interval{Est: est, Lo: quantile(v, a), Hi: quantile(v, 1-a)}
}

func quantile(s []float64, p float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	h := p * float64(n-1)
	i := int(math.Floor(h))
	if i >= n-1 {
		return s[n-1]
	}
	return s[i] + (h-float64(i))*(s[i+1]-s[i])
}

// BucketMean returns the paper's bucket curve: at each time i, the mean
// over the directions idx of v[k][i] (v[k] is direction k's variance
// curve).
func BucketMean(v [][]float64, idx []int) ([]float64, error) {
	if len(idx) == 0 {
		return nil, errors.New("bucket mean: empty bucket")
	}
	nt := -1
	for _, k := range idx {
		if k < 0 || k >= len(v) {
			return nil, fmt.Errorf("bucket mean: direction %d out of range [0, %d)", k, len(v))
		}
		if nt >= 0 && len(v[k]) != nt {
			return nil, fmt.Errorf("bucket mean: direction %d has %d times, want %d", k, len(v[k]), nt)
		}
		nt = len(v[k])
	}
	out := make([]float64, nt)
	for _, k := range idx {
		for i, x := range v[k] {
			out[i] += x
		}
	}
	for i := range out {
		out[i] /= float64(len(idx))
	}
	return out, nil
}

// LastTimes returns the last n of the logged steps (all of them when there
// are fewer): EXP14's "last 7 logged times".
func LastTimes(steps []int64, n int) []int64 {
	return slices.Clone(steps[max(0, len(steps)-n):])
}

// timeIndex returns the indices in steps of the times at, or an error
// naming a time that was not logged.
func timeIndex(steps []int64, at []int64) ([]int, error) {
	if len(at) < 2 {
		return nil, fmt.Errorf("late slope: %d times: need at least 2", len(at))
	}
	idx := make([]int, len(at))
	for j, t := range at {
		i := slices.Index(steps, t)
		if i < 0 {
			return nil, fmt.Errorf("late slope: step %d was not logged", t)
		}
		idx[j] = i
	}
	return idx, nil
}

// LateSlope returns the paper's late slope: the least-squares slope of y
// (a curve at the logged steps) against t over the times at (EXP5: 320,
// 360, 400; EXP14: the last 7 logged times).
func LateSlope(steps []int64, y []float64, at []int64) (float64, error) {
	if len(y) != len(steps) {
		return math.NaN(), fmt.Errorf("late slope: %d values for %d steps", len(y), len(steps))
	}
	idx, err := timeIndex(steps, at)
	if err != nil {
		return math.NaN(), err
	}
	s := slopeAt(steps, y, idx)
	if math.IsNaN(s) {
		return s, fmt.Errorf("late slope: undefined over steps %v (repeated times or values not finite)", at)
	}
	return s, nil
}

// slopeAt is the OLS slope of y[i] against steps[i] over i in idx; NaN
// when undefined.
func slopeAt(steps []int64, y []float64, idx []int) float64 {
	n := float64(len(idx))
	var mx, my float64
	for _, i := range idx {
		mx += float64(steps[i])
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, sxy float64
	for _, i := range idx {
		dx := float64(steps[i]) - mx
		sxx += dx * dx
		sxy += dx * (y[i] - my)
	}
	s := sxy / sxx
	if sxx == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return math.NaN()
	}
	return s
}

// Slopes are late slopes over the paper's times with bootstrap intervals
// over replicas.
type Slopes struct {
	// Slope[k] is direction k's late slope and Boot[k][b] its value in
	// resample b (the resamples of the growth, shared by every direction).
	Slope []analysis.Interval
	Boot  [][]float64
}

// DirectionSlopes returns, for every direction of g, the late slope of its
// variance over the times at, with the percentile interval at level from
// g's bootstrap curves. A resample whose slope is undefined makes the
// interval undefined (NaN).
func DirectionSlopes(g *analysis.Growth, at []int64, level float64) (*Slopes, error) {
	if g == nil || len(g.Dirs) == 0 {
		return nil, errors.New("direction slopes: no directions")
	}
	if !(level > 0 && level < 1) {
		return nil, fmt.Errorf("direction slopes: level %g not in (0, 1)", level)
	}
	idx, err := timeIndex(g.Steps, at)
	if err != nil {
		return nil, fmt.Errorf("direction slopes: %w", err)
	}
	s := &Slopes{Slope: make([]analysis.Interval, len(g.Dirs)), Boot: make([][]float64, len(g.Dirs))}
	for k, d := range g.Dirs {
		b := make([]float64, len(d.Boot))
		for j, curve := range d.Boot {
			b[j] = slopeAt(g.Steps, curve, idx)
		}
		s.Boot[k] = b
		s.Slope[k] = intervalNaN(slopeAt(g.Steps, d.Var, idx), b, level)
	}
	return s, nil
}

// intervalNaN is interval on a copy of v, NaN when any replicate is NaN or
// there are none.
func intervalNaN(est float64, v []float64, level float64) analysis.Interval {
	if len(v) == 0 || slices.ContainsFunc(v, math.IsNaN) {
		return analysis.Interval{Est: est, Lo: math.NaN(), Hi: math.NaN()}
	}
	return interval(est, slices.Clone(v), level)
}

// BucketSlope returns the late slope of the bucket-mean curve (the
// paper's statistic: the slope of the mean equals the mean of the slopes)
// over the directions idx, with the percentile interval at level over the
// shared replica resamples of s.
func BucketSlope(s *Slopes, idx []int, level float64) (analysis.Interval, error) {
	if len(idx) == 0 {
		return analysis.Interval{}, errors.New("bucket slope: empty bucket")
	}
	var est float64
	nb := -1
	for _, k := range idx {
		if k < 0 || k >= len(s.Slope) {
			return analysis.Interval{}, fmt.Errorf("bucket slope: direction %d out of range [0, %d)", k, len(s.Slope))
		}
		if nb >= 0 && len(s.Boot[k]) != nb {
			return analysis.Interval{}, errors.New("bucket slope: directions have different numbers of resamples")
		}
		nb = len(s.Boot[k])
		est += s.Slope[k].Est
	}
	boot := make([]float64, nb)
	for _, k := range idx {
		for b, x := range s.Boot[k] {
			boot[b] += x
		}
	}
	for b := range boot {
		boot[b] /= float64(len(idx))
	}
	return intervalNaN(est/float64(len(idx)), boot, level), nil
}

// DefaultNullTol is the symmetry-null rule of the probe: c <= 1e-10 times
// the median c over every eigenvector.
const DefaultNullTol = 1e-10

// NullCheck is the check of a direction bucket for exact symmetry nulls.
type NullCheck struct {
	// N is the bucket size and Nulls how many have c <= Tol * Median.
	N     int     `json:"n"`
	Nulls int     `json:"nulls"`
	Tol   float64 `json:"tol"`
	// Median is the median c of all eigenvectors the rule compares with.
	Median float64 `json:"median_c"`
	// MinC and MaxC are the bucket's smallest and largest c, and MaxRatio
	// MaxC / Median: far below 1 means the whole bucket is noise-free.
	MinC     float64 `json:"min_c"`
	MaxC     float64 `json:"max_c"`
	MaxRatio float64 `json:"max_c_over_median"`
	// Null[i] flags bucket direction i.
	Null []bool `json:"null"`
}

// CheckNulls counts the directions of a bucket with noise c[i] at
// round-off, c <= tol * median, where median is the median c over every
// eigenvector of the Hessian (tol 0 selects [DefaultNullTol]).
func CheckNulls(c []float64, median, tol float64) (NullCheck, error) {
	if tol == 0 {
		tol = DefaultNullTol
	}
	if len(c) == 0 {
		return NullCheck{}, errors.New("null check: empty bucket")
	}
	if !(median > 0) || math.IsInf(median, 0) {
		return NullCheck{}, fmt.Errorf("null check: median c %g: need a finite positive value", median)
	}
	if !(tol > 0) {
		return NullCheck{}, fmt.Errorf("null check: tolerance %g: need a positive value", tol)
	}
	if err := finite("null check: c", c); err != nil {
		return NullCheck{}, err
	}
	nc := NullCheck{N: len(c), Tol: tol, Median: median, MinC: slices.Min(c), MaxC: slices.Max(c), Null: make([]bool, len(c))}
	for i, x := range c {
		if x <= tol*median {
			nc.Null[i] = true
			nc.Nulls++
		}
	}
	nc.MaxRatio = nc.MaxC / median
	return nc, nil
}

// DriftRatios returns drift^2 / variance for each direction: above 1 the
// mean displacement (the reference point is not critical) outweighs the
// spread the variance measures. NaN where the variance is not positive.
func DriftRatios(mean, variance []float64) []float64 {
	out := make([]float64, len(mean))
	for i := range out {
		out[i] = math.NaN()
		if i < len(variance) && variance[i] > 0 {
			out[i] = mean[i] * mean[i] / variance[i]
		}
	}
	return out
}

// Drift returns, for projections x[r][k] (replica r, direction k) at one
// time, the drift (mean over replicas), the variance across replicas
// (denominator R-1) and drift^2 / variance per direction.
func Drift(x [][]float64) (mean, variance, ratio []float64, err error) {
	if len(x) < 2 {
		return nil, nil, nil, fmt.Errorf("drift: %d replicas: need at least 2", len(x))
	}
	k := len(x[0])
	for r, row := range x {
		if len(row) != k {
			return nil, nil, nil, fmt.Errorf("drift: replica %d has %d directions, want %d", r, len(row), k)
		}
		if err := finite(fmt.Sprintf("drift: replica %d", r), row); err != nil {
			return nil, nil, nil, err
		}
	}
	n := float64(len(x))
	mean, variance = make([]float64, k), make([]float64, k)
	for _, row := range x {
		for j, v := range row {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= n
	}
	for _, row := range x {
		for j, v := range row {
			d := v - mean[j]
			variance[j] += d * d
		}
	}
	for j := range variance {
		variance[j] /= n - 1
	}
	return mean, variance, DriftRatios(mean, variance), nil
}
