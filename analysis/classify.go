package analysis

import (
	"fmt"
	"math"
	"strings"
)

// Class is the dynamical class of a direction.
type Class string

// The classes of [Classify]. Null directions are flagged upstream (exact
// symmetries of the loss, where c is at round-off level: THEORY.md
// section 4) and never reported as diffusive.
const (
	Confined     Class = "confined"
	Diffusive    Class = "diffusive"
	Unstable     Class = "unstable"
	Null         Class = "null"
	Undetermined Class = "undetermined"
)

// Rule is the classification rule of [Classify], to be printed verbatim
// in reports.
const Rule = `Classification rule (ensemble variance V(t) of the projections across replicas vs step t; every statistic has an equal-tailed percentile bootstrap interval at the stated level, computed from the same B resamples of replicas at every time).
Window: logged steps with at least MinReplicas live replicas, from the first logged step t0 to the last usable step T.
  Late window: logged steps t >= t0 + LateFrac (T - t0) (default LateFrac 0.5: the last half of the window); it needs at least 4 points, 2 in each of its halves.
  Log window: logged steps t > 0 with t >= t0 + LogFrac (T - t0) (default LogFrac 0.1: the last decade); it needs at least 3 points.
Statistics:
  late slope beta = least-squares slope of V vs t on the late window (variance per step);
  log-log slope alpha = least-squares slope of ln V vs ln t on the log window (1 linear growth, 0 saturated, > 1 accelerating);
  saturation ratio rho = beta / ((V(t_m) - V(t0)) / (t_m - t0)), t_m the first late-window step: the late slope over the mean slope of the initial rise, about a^((T - t0)/2) for the discrete model sigma^2 = sigma_inf^2 (1 - a^t). Reported as a diagnostic only: it is much noisier than alpha;
  growth rate kappa = least-squares slope of ln V vs t on the late window (per step; ln a for geometric growth);
  acceleration dalpha = slope of ln V vs ln t on the second half of the late window minus that on its first half (0 for a power law, > 0 for geometric growth).
Classes (a class is assigned only when its intervals lie inside its own region, so they exclude the alternatives; with AlphaTol default 0.5):
  null: flagged upstream by the probe (gradient-noise variance at round-off level, an exact symmetry); never diffusive.
  unstable: kappa interval above 0, alpha interval above 1, and dalpha interval above 0: geometric growth, faster than any power law.
  confined: alpha interval below 1 - AlphaTol: over the last decade the variance grows far slower than linearly, i.e. it saturates. Stationary is reported true when the beta interval also contains 0; otherwise the direction is still relaxing and only the whole predicted curve, not sigma_inf^2, should be compared with theory.
  diffusive: beta interval above 0 and alpha interval inside (1 - AlphaTol, 1 + AlphaTol): linear growth, excluding saturation (alpha <= 1 - AlphaTol) and acceleration (alpha >= 1 + AlphaTol). A nearly flat direction with |ln a| T << 1 lands here, as THEORY.md section 3 says it should.
  undetermined: none of these, or more than one; the reason names the failing condition (e.g. super-linear power-law growth such as the drift-spreading t^3 term, or intervals too wide).
Epoch reshuffling (sampling without replacement, S steps per epoch) over a window longer than one epoch: the first-order variance along a flat direction is a bridge that peaks mid-epoch and returns at every epoch end (THEORY.md section 9), so the windows and statistics above are computed on a reduced curve instead of every logged step:
  epoch boundaries: t0 and the logged steps that are multiples of S, when the windows above hold enough of them;
  otherwise one-epoch averages: at each logged step t >= t0 + S, the mean of V over the logged steps in (t - S, t], placed at the mean of those steps (the average of an epoch-periodic curve is constant, so a mid-epoch peak does not read as growth; but the bridge's mean stays as an offset, so a growth smaller than the bridge reads as saturating: log at a divisor of S to get the boundaries).
  The reason names the curve used. Sampling with replacement, and a reshuffled window within one epoch, use every logged step.
Replicas that diverged are excluded from the step they diverged on, which biases surviving variances low; the reason says how many. The reason also warns when most late-window variances are heavy-tailed (see HeavyTailRule).`

// ClassifyOptions configures [Classify]. Zero values select defaults.
type ClassifyOptions struct {
	// LateFrac is the fraction of the window before the late window starts
	// (default 0.5) and LogFrac that before the log window (default 0.1).
	LateFrac, LogFrac float64
	// AlphaTol is the half-width of the band around 1 that the log-log
	// slope interval must lie in for a diffusive class; below 1 - AlphaTol
	// is confined (default 0.5).
	AlphaTol float64
	// MinReplicas is the number of live replicas a time needs to enter the
	// window (default 8).
	MinReplicas int
	// StepsPerEpoch, when positive, says the ensemble was sampled with
	// epoch reshuffling, S steps per epoch. A window longer than one epoch
	// is then classified on epoch-boundary samples or one-epoch averages
	// (see [Rule]); 0 (with replacement) uses every logged step.
	StepsPerEpoch int64
}

func (o *ClassifyOptions) defaults() error {
	if o.LateFrac == 0 {
		o.LateFrac = 0.5
	}
	if o.LogFrac == 0 {
		o.LogFrac = 0.1
	}
	if o.AlphaTol == 0 {
		o.AlphaTol = 0.5
	}
	if o.MinReplicas == 0 {
		o.MinReplicas = 8
	}
	if !(o.LateFrac > 0 && o.LateFrac < 1) || !(o.LogFrac >= 0 && o.LogFrac < 1) {
		return fmt.Errorf("classify: window fractions late %g, log %g not in (0, 1)", o.LateFrac, o.LogFrac)
	}
	if !(o.AlphaTol > 0 && o.AlphaTol < 1) {
		return fmt.Errorf("classify: log-log tolerance %g not in (0, 1)", o.AlphaTol)
	}
	if o.MinReplicas < 2 {
		return fmt.Errorf("classify: minimum of %d replicas: need at least 2", o.MinReplicas)
	}
	if o.StepsPerEpoch < 0 {
		return fmt.Errorf("classify: %d steps per epoch: must not be negative", o.StepsPerEpoch)
	}
	return nil
}

// Classification is the class of one direction and the statistics behind it.
// Each Interval holds the full-sample estimate and the bootstrap interval at
// the growth's level.
type Classification struct {
	Direction int
	Class     Class
	// Reason says in words why the class was assigned or not.
	Reason string
	// LateSlope is beta, the variance growth per step on the late window.
	LateSlope Interval
	// LogLogSlope is alpha, the slope of ln V vs ln t on the log window.
	LogLogSlope Interval
	// Saturation is rho, the late slope over the mean initial-rise slope
	// (a diagnostic, about a^((T-t0)/2)).
	Saturation Interval
	// GrowthRate is kappa, the slope of ln V vs t on the late window (per
	// step).
	GrowthRate Interval
	// Acceleration is dalpha, the change of the log-log slope across the
	// late window.
	Acceleration Interval
	// VarFinal is the variance at the last usable step End.
	VarFinal Interval
	// Stationary reports that the late-slope interval contains 0.
	Stationary bool
	// LateStart, LogStart and End are the first steps of the late and log
	// windows and the last usable step; Points is the number of logged
	// steps in the late window.
	LateStart, LogStart, End int64
	Points                   int
	// HeavyTail reports that most late-window variances were marked
	// heavy-tailed.
	HeavyTail bool
	// Curve is the curve the statistics were computed on: FitLogged (every
	// logged step), FitEpochBoundaries or FitEpochAverages.
	Curve string
	// SlopeBoot[b] is the late slope in bootstrap resample b (the same
	// resamples for every direction), for curve-level statistics across
	// directions such as [DiffusiveRate]. Nil for null and too-short
	// directions.
	SlopeBoot []float64
}

// The curves a classification can be computed on (Classification.Curve).
const (
	FitLogged          = "logged steps"
	FitEpochBoundaries = "epoch boundaries"
	FitEpochAverages   = "one-epoch averages"
)

// Classify assigns a class to each direction of g by [Rule]. null[k] marks
// directions flagged upstream as exact symmetries; nil means none.
func Classify(g *Growth, null []bool, opts ClassifyOptions) ([]Classification, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if g == nil || len(g.Dirs) == 0 {
		return nil, fmt.Errorf("classify: no directions")
	}
	if null != nil && len(null) != len(g.Dirs) {
		return nil, fmt.Errorf("classify: %d null flags for %d directions", len(null), len(g.Dirs))
	}
	// The usable window ends at the last time with enough live replicas.
	last := -1
	for i, n := range g.Used {
		if n >= opts.MinReplicas {
			last = i
		}
	}
	curve, note := FitLogged, ""
	if spe := opts.StepsPerEpoch; spe > 0 && last >= 1 && g.Steps[last]-g.Steps[0] > spe {
		gb, lb := epochBoundaries(g, last, spe)
		if _, ok := makeWindow(&Classification{}, gb.Steps, lb, opts); ok {
			g, last, curve = gb, lb, FitEpochBoundaries
			note = fmt.Sprintf("fitted on the variance at %d epoch boundaries (%d steps per epoch)", lb+1, spe)
		} else {
			g, last = epochAverages(g, last, spe)
			curve = FitEpochAverages
			note = fmt.Sprintf("fitted on one-epoch averages (%d steps per epoch; too few logged epoch boundaries for the windows)", spe)
		}
	}
	out := make([]Classification, len(g.Dirs))
	for k := range g.Dirs {
		out[k].Curve = curve
		c := &out[k]
		c.Direction = k
		if null != nil && null[k] {
			c.Class = Null
			c.Reason = "flagged null upstream (gradient-noise variance at round-off level: an exact symmetry direction)"
			continue
		}
		if last < 1 {
			c.Class = Undetermined
			c.Reason = fmt.Sprintf("fewer than 2 logged steps with at least %d live replicas", opts.MinReplicas)
			continue
		}
		classifyOne(c, g, k, last, opts)
		if note != "" {
			c.Reason += "; " + note
		}
	}
	return out, nil
}

// subGrowth returns the curve of g at time indices idx: the statistics
// [classifyOne] reads (Steps, Used, Var, HeavyTail, Boot).
func subGrowth(g *Growth, idx []int) *Growth {
	s := &Growth{Replicas: g.Replicas, Level: g.Level, Resamples: g.Resamples, Dirs: make([]DirectionGrowth, len(g.Dirs))}
	for _, i := range idx {
		s.Steps = append(s.Steps, g.Steps[i])
		s.Used = append(s.Used, g.Used[i])
	}
	for k, d := range g.Dirs {
		sd := DirectionGrowth{Var: make([]float64, len(idx)), HeavyTail: make([]bool, len(idx)), Boot: make([][]float64, len(d.Boot))}
		for j, i := range idx {
			sd.Var[j], sd.HeavyTail[j] = d.Var[i], d.HeavyTail[i]
		}
		for b, curve := range d.Boot {
			sd.Boot[b] = make([]float64, len(idx))
			for j, i := range idx {
				sd.Boot[b][j] = curve[i]
			}
		}
		s.Dirs[k] = sd
	}
	return s
}

// epochBoundaries returns g reduced to its first time and the logged
// multiples of spe up to index last, and the new last index.
func epochBoundaries(g *Growth, last int, spe int64) (*Growth, int) {
	idx := []int{0}
	for i := 1; i <= last; i++ {
		if g.Steps[i]%spe == 0 {
			idx = append(idx, i)
		}
	}
	return subGrowth(g, idx), len(idx) - 1
}

// epochAverages returns g's first time followed by one-epoch running
// averages: at each index i <= last with Steps[i] >= Steps[0] + spe, the
// mean over the logged steps in (Steps[i] - spe, Steps[i]] of the variance
// (and of every bootstrap curve), at the rounded mean of those steps.
func epochAverages(g *Growth, last int, spe int64) (*Growth, int) {
	type span struct{ lo, hi int } // indices [lo, hi]
	var spans []span
	var at []int64
	lo := 0
	var sum int64
	for i := 0; i <= last; i++ {
		sum += g.Steps[i]
		for g.Steps[lo] <= g.Steps[i]-spe {
			sum -= g.Steps[lo]
			lo++
		}
		if g.Steps[i] < g.Steps[0]+spe {
			continue
		}
		t := int64(math.Round(float64(sum) / float64(i-lo+1)))
		if len(at) > 0 && t <= at[len(at)-1] {
			continue // irregular logging: keep the abscissas strictly ascending
		}
		spans = append(spans, span{lo, i})
		at = append(at, t)
	}
	s := &Growth{Replicas: g.Replicas, Level: g.Level, Resamples: g.Resamples, Dirs: make([]DirectionGrowth, len(g.Dirs))}
	s.Steps = append([]int64{g.Steps[0]}, at...)
	s.Used = []int{g.Used[0]}
	for _, sp := range spans {
		s.Used = append(s.Used, g.Used[sp.hi]) // divergence is absorbing: the fewest
	}
	avg := func(v []float64) []float64 {
		prefix := make([]float64, last+2)
		for i := 0; i <= last; i++ {
			prefix[i+1] = prefix[i] + v[i]
		}
		out := []float64{v[0]}
		for _, sp := range spans {
			out = append(out, (prefix[sp.hi+1]-prefix[sp.lo])/float64(sp.hi-sp.lo+1))
		}
		return out
	}
	for k, d := range g.Dirs {
		sd := DirectionGrowth{Var: avg(d.Var), HeavyTail: []bool{d.HeavyTail[0]}, Boot: make([][]float64, len(d.Boot))}
		for _, sp := range spans {
			sd.HeavyTail = append(sd.HeavyTail, d.HeavyTail[sp.hi])
		}
		for b, curve := range d.Boot {
			sd.Boot[b] = avg(curve)
		}
		s.Dirs[k] = sd
	}
	return s, len(s.Steps) - 1
}

// window holds the time indices the statistics use.
type window struct {
	first, late, half, logw, last int // t0, late start, late second half, log start, T
}

// curveStats are the statistics of [Rule] for one variance curve (the full
// sample or one resample).
type curveStats struct {
	beta, alpha, rho, kappa, dalpha, vfinal float64
}

func computeStats(steps []int64, v []float64, w window) curveStats {
	var s curveStats
	s.vfinal = v[w.last]
	t := make([]float64, 0, w.last+1)
	lt := make([]float64, 0, w.last+1)
	y := make([]float64, 0, w.last+1)
	ly := make([]float64, 0, w.last+1)
	for i := range w.last + 1 {
		x := float64(steps[i])
		t = append(t, x)
		lt = append(lt, math.Log(x)) // -Inf at t = 0, never inside a fit window
		y = append(y, v[i])
		l := math.NaN() // a zero variance has no logarithm: undefined fits
		if v[i] > 0 {
			l = math.Log(v[i])
		}
		ly = append(ly, l)
	}
	l, h, e := w.late, w.half, w.last+1
	s.beta = olsSlope(t[l:e], y[l:e])
	s.kappa = olsSlope(t[l:e], ly[l:e])
	s.alpha = olsSlope(lt[w.logw:e], ly[w.logw:e])
	s.dalpha = olsSlope(lt[h:e], ly[h:e]) - olsSlope(lt[l:h], ly[l:h])
	rise := (v[l] - v[w.first]) / (t[l] - t[w.first])
	switch {
	case math.IsNaN(rise) || math.IsNaN(s.beta):
		s.rho = math.NaN()
	case rise > 0:
		s.rho = s.beta / rise
	default:
		s.rho = math.Inf(1)
	}
	return s
}

// firstAtOrAfter returns the first index in [from, last] whose step is >= x
// and > 0, or last+1.
func firstAtOrAfter(steps []int64, from, last int, x float64) int {
	for i := from; i <= last; i++ {
		if float64(steps[i]) >= x && steps[i] > 0 {
			return i
		}
	}
	return last + 1
}

// makeWindow sets the window fields of c and reports whether the windows
// hold enough logged steps for the statistics.
func makeWindow(c *Classification, steps []int64, last int, opts ClassifyOptions) (window, bool) {
	t0, tEnd := steps[0], steps[last]
	span := float64(tEnd - t0)
	w := window{first: 0, last: last}
	w.late = firstAtOrAfter(steps, 1, last, float64(t0)+opts.LateFrac*span)
	w.logw = firstAtOrAfter(steps, 1, last, float64(t0)+opts.LogFrac*span)
	c.End = tEnd
	c.Points = last - w.late + 1
	if w.late <= last {
		c.LateStart = steps[w.late]
		w.half = firstAtOrAfter(steps, w.late, last, 0.5*float64(steps[w.late]+tEnd))
	}
	if w.logw <= last {
		c.LogStart = steps[w.logw]
	}
	return w, !(c.Points < 4 || w.half-w.late < 2 || last-w.half+1 < 2 || last-w.logw+1 < 3)
}

func classifyOne(c *Classification, g *Growth, k, last int, opts ClassifyOptions) {
	d := g.Dirs[k]
	steps := g.Steps
	tEnd := steps[last]
	w, ok := makeWindow(c, steps, last, opts)
	if !ok {
		c.Class = Undetermined
		c.Reason = fmt.Sprintf("too few logged steps: late window [%d, %d] has %d (need 4, 2 in each half), log window from %d has %d (need 3)",
			c.LateStart, c.End, c.Points, c.LogStart, last-w.logw+1)
		return
	}
	heavy := 0
	for i := w.late; i <= last; i++ {
		if d.HeavyTail[i] {
			heavy++
		}
	}
	c.HeavyTail = 2*heavy > c.Points

	full := computeStats(steps, d.Var, w)
	nb := len(d.Boot)
	bs := make([][]float64, 6)
	for j := range bs {
		bs[j] = make([]float64, nb)
	}
	for b, curve := range d.Boot {
		s := computeStats(steps, curve, w)
		bs[0][b], bs[1][b], bs[2][b], bs[3][b], bs[4][b], bs[5][b] = s.beta, s.alpha, s.rho, s.kappa, s.dalpha, s.vfinal
	}
	c.SlopeBoot = append([]float64(nil), bs[0]...)
	iv := func(est float64, v []float64, nanAs float64) Interval {
		lo, hi := percentileCI(v, g.Level, nanAs)
		return Interval{Est: est, Lo: lo, Hi: hi}
	}
	// An undefined log (zero variance in a resample) makes the log-based
	// intervals undefined; an undefined ratio counts against saturation.
	c.LateSlope = iv(full.beta, bs[0], math.NaN())
	c.LogLogSlope = iv(full.alpha, bs[1], math.NaN())
	c.Saturation = iv(full.rho, bs[2], math.Inf(1))
	c.GrowthRate = iv(full.kappa, bs[3], math.NaN())
	c.Acceleration = iv(full.dalpha, bs[4], math.NaN())
	c.VarFinal = iv(full.vfinal, bs[5], math.NaN())
	c.Stationary = c.LateSlope.Contains(0)

	b, a, r, kp, da := c.LateSlope, c.LogLogSlope, c.Saturation, c.GrowthRate, c.Acceleration
	isUnstable := kp.Lo > 0 && a.Lo > 1 && da.Lo > 0
	isConfined := a.Hi < 1-opts.AlphaTol
	isDiffusive := b.Lo > 0 && a.Lo > 1-opts.AlphaTol && a.Hi < 1+opts.AlphaTol

	f := func(x Interval) string { return fmt.Sprintf("%.3g [%.3g, %.3g]", x.Est, x.Lo, x.Hi) }
	var why []string
	n := 0
	for _, ok := range []bool{isUnstable, isConfined, isDiffusive} {
		if ok {
			n++
		}
	}
	switch {
	case n > 1:
		c.Class = Undetermined
		why = append(why, fmt.Sprintf("criteria of more than one class hold (late slope %s, log-log slope %s, acceleration %s)", f(b), f(a), f(da)))
	case isUnstable:
		c.Class = Unstable
		why = append(why, fmt.Sprintf("geometric growth: ln-variance rate %s per step > 0, log-log slope %s > 1, accelerating (%s > 0)", f(kp), f(a), f(da)))
	case isConfined:
		c.Class = Confined
		s := "stationary: late slope " + f(b) + " contains 0"
		if !c.Stationary {
			s = "still relaxing: late slope " + f(b) + " excludes 0, compare the whole predicted curve"
		}
		why = append(why, fmt.Sprintf("saturated: log-log slope %s below %g (late-to-initial slope ratio %s); %s", f(a), 1-opts.AlphaTol, f(r), s))
	case isDiffusive:
		c.Class = Diffusive
		why = append(why, fmt.Sprintf("linear growth: late slope %s per step > 0, log-log slope %s within 1 +- %g", f(b), f(a), opts.AlphaTol))
	default:
		c.Class = Undetermined
		switch {
		case math.IsNaN(a.Lo) || math.IsNaN(kp.Lo):
			why = append(why, "variance is zero in the window of the sample or of a resample (an unflagged null direction?)")
		case a.Lo > 1 && !(da.Lo > 0):
			why = append(why, fmt.Sprintf("super-linear growth (log-log slope %s) without significant acceleration (%s): power law, e.g. drift spreading, not geometric", f(a), f(da)))
		case a.Lo > 0 && a.Hi < 1:
			why = append(why, fmt.Sprintf("sub-linear growth, log-log slope %s, between saturated and linear: a relaxation time comparable to the window", f(a)))
		case !(b.Lo > 0) && a.Lo > 1-opts.AlphaTol:
			why = append(why, fmt.Sprintf("log-log slope %s but late slope %s does not exclude 0", f(a), f(b)))
		default:
			why = append(why, fmt.Sprintf("intervals too wide to exclude the alternatives: late slope %s, log-log slope %s, rate %s, acceleration %s", f(b), f(a), f(kp), f(da)))
		}
	}
	why[0] += fmt.Sprintf(" (%g%% bootstrap intervals)", 100*g.Level)
	if lost := g.Replicas - g.Used[last]; lost > 0 {
		why = append(why, fmt.Sprintf("%d of %d replicas diverged by step %d and are excluded (biases the variance low)", lost, g.Replicas, tEnd))
	}
	if c.HeavyTail {
		why = append(why, "most late-window variances look heavy-tailed (see HeavyTailRule): likely underestimated")
	}
	c.Reason = strings.Join(why, "; ")
}
