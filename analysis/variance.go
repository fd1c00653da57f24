package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Ensemble is R replicas of SGD started at one reference point theta_0,
// projected on K unit directions.
type Ensemble struct {
	// Eta is the learning rate and Batch the minibatch size (metadata
	// for predictions and scans; not used by the statistics).
	Eta   float64
	Batch int
	// Steps are the logged steps, strictly ascending; normally
	// Steps[0] == 0, where every projection is 0.
	Steps []int64
	// Proj[r][i][k] is p_k(t_i) = u_k . (theta_{t_i} - theta_0) for replica
	// r at time index i and direction k.
	Proj [][][]float64
	// Diverged[r] is the step at which replica r diverged, or -1 if it did
	// not. A nil slice means none diverged. A diverged replica is left out
	// of every statistic at steps >= Diverged[r]. A replica with any
	// non-finite projection at a time is also treated as diverged from that
	// time on, whatever Diverged says.
	Diverged []int64
}

// dims checks the shape of e and returns R, the number of times and K.
func (e *Ensemble) dims() (r, nt, k int, err error) {
	r = len(e.Proj)
	nt = len(e.Steps)
	if r == 0 {
		return 0, 0, 0, fmt.Errorf("ensemble: no replicas")
	}
	if nt == 0 {
		return 0, 0, 0, fmt.Errorf("ensemble: no logged steps")
	}
	for i := 1; i < nt; i++ {
		if e.Steps[i] <= e.Steps[i-1] {
			return 0, 0, 0, fmt.Errorf("ensemble: steps not strictly ascending at index %d (%d after %d)", i, e.Steps[i], e.Steps[i-1])
		}
	}
	if e.Diverged != nil && len(e.Diverged) != r {
		return 0, 0, 0, fmt.Errorf("ensemble: %d divergence steps for %d replicas", len(e.Diverged), r)
	}
	k = -1
	for ri, rep := range e.Proj {
		if len(rep) != nt {
			return 0, 0, 0, fmt.Errorf("ensemble: replica %d has %d times, want %d", ri, len(rep), nt)
		}
		for i, p := range rep {
			if k < 0 {
				k = len(p)
			}
			if len(p) != k {
				return 0, 0, 0, fmt.Errorf("ensemble: replica %d time %d has %d directions, want %d", ri, i, len(p), k)
			}
		}
	}
	if k == 0 {
		return 0, 0, 0, fmt.Errorf("ensemble: no directions")
	}
	return r, nt, k, nil
}

// alive returns alive[r][i]: replica r enters the statistics at time i.
// Divergence is absorbing, so a replica never comes back.
func (e *Ensemble) alive() [][]bool {
	out := make([][]bool, len(e.Proj))
	for r, rep := range e.Proj {
		a := make([]bool, len(rep))
		ok := true
		for i, p := range rep {
			if e.Diverged != nil && e.Diverged[r] >= 0 && e.Steps[i] >= e.Diverged[r] {
				ok = false
			}
			for _, x := range p {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					ok = false
				}
			}
			a[i] = ok
		}
		out[r] = a
	}
	return out
}

// GrowthOptions configures [VarianceGrowth]. Zero values select defaults.
type GrowthOptions struct {
	// Resamples is the number B of bootstrap resamples of replicas
	// (default 1000).
	Resamples int
	// Level is the confidence level of the percentile intervals
	// (default 0.95).
	Level float64
	// Seed seeds the PCG generator that draws the resamples.
	Seed uint64
	// KurtosisMax is the excess-kurtosis threshold above which an estimate
	// is marked heavy-tailed (default 3), and MinTailReplicas the number of
	// replicas needed to mark it at all (default 20). See [HeavyTailRule].
	KurtosisMax     float64
	MinTailReplicas int
}

func (o *GrowthOptions) defaults() error {
	if o.Resamples == 0 {
		o.Resamples = 1000
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	if o.KurtosisMax == 0 {
		o.KurtosisMax = 3
	}
	if o.MinTailReplicas == 0 {
		o.MinTailReplicas = 20
	}
	if o.Resamples < 10 {
		return fmt.Errorf("variance growth: %d bootstrap resamples: need at least 10", o.Resamples)
	}
	if !(o.Level > 0 && o.Level < 1) {
		return fmt.Errorf("variance growth: confidence level %g not in (0, 1)", o.Level)
	}
	return nil
}

// HeavyTailRule states when [VarianceGrowth] marks a variance estimate as
// heavy-tailed (THEORY.md section 4).
const HeavyTailRule = `An estimate is marked heavy-tailed when at least MinTailReplicas (default 20) replicas are used and the sample excess kurtosis of the projections across replicas exceeds KurtosisMax (default 3, a Laplace distribution; its sampling error for Gaussian data is about sqrt(24/R), so 3 is over 5 standard errors at R >= 64). With an unbounded fourth moment the sample kurtosis grows without limit with R, and the sample variance is dominated by a few replicas and usually comes out low; the Gaussian relative standard error sqrt(2/(R-1)) then understates the error. RelSEKurt = sqrt(2/(R-1) + kurtosis/R) is the moment-based error for finite kurtosis.`

// Growth is the ensemble variance growth of every direction.
type Growth struct {
	Steps []int64
	// Used[i] is the number of replicas entering the statistics at time i.
	Used []int
	// Replicas is R, the number of replicas in the ensemble.
	Replicas int
	// Level is the confidence level of every interval; Resamples is B.
	Level     float64
	Resamples int
	Dirs      []DirectionGrowth
}

// DirectionGrowth is the variance growth of one direction. Every slice is
// indexed by time.
type DirectionGrowth struct {
	// Var is the centered sample variance (denominator n-1) of the
	// projections over the replicas used, with its bootstrap percentile
	// interval [VarLo, VarHi].
	Var, VarLo, VarHi []float64
	// Mean is the mean projection (the drift), with interval.
	Mean, MeanLo, MeanHi []float64
	// Kurtosis is the sample excess kurtosis across replicas (NaN with
	// fewer than 4 replicas or zero variance); HeavyTail marks it by
	// [HeavyTailRule].
	Kurtosis  []float64
	HeavyTail []bool
	// RelSE is the Gaussian relative standard error sqrt(2/(n-1)) of Var;
	// RelSEKurt adds the kurtosis term, sqrt(2/(n-1) + kurtosis/n).
	RelSE, RelSEKurt []float64
	// Boot[b][i] is the variance at time i in bootstrap resample b. The
	// same replica resamples are used at every time and for every
	// direction, so curve-level statistics computed per resample are
	// consistent.
	Boot [][]float64
}

// VarianceGrowth computes, for each direction and logged step, the ensemble
// variance and mean of the projections, bootstrap intervals over replicas,
// and a tail diagnostic.
//
// The bootstrap draws B resamples of the R replica indices with
// replacement (seeded PCG). In a resample, the statistic at time i uses the
// resampled replicas alive at i; one resample serves every time and
// direction. Intervals are equal-tailed percentile intervals.
func VarianceGrowth(e Ensemble, opts GrowthOptions) (*Growth, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	nr, nt, nk, err := e.dims()
	if err != nil {
		return nil, fmt.Errorf("variance growth: %w", err)
	}
	alive := e.alive()
	g := &Growth{
		Steps:     append([]int64(nil), e.Steps...),
		Used:      make([]int, nt),
		Replicas:  nr,
		Level:     opts.Level,
		Resamples: opts.Resamples,
		Dirs:      make([]DirectionGrowth, nk),
	}
	for i := range nt {
		for r := range nr {
			if alive[r][i] {
				g.Used[i]++
			}
		}
	}

	// Resample counts: counts[b][r] is how often replica r is drawn.
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed_b007))
	counts := make([][]float64, opts.Resamples)
	for b := range counts {
		c := make([]float64, nr)
		for range nr {
			c[rng.IntN(nr)]++
		}
		counts[b] = c
	}

	// Directions are independent given the resample counts: each worker
	// takes every workers-th one with scratch of its own, so the result
	// does not depend on the number of workers.
	workers := max(1, min(runtime.GOMAXPROCS(0), nk))
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Go(func() {
			sc := newGrowthScratch(nr, opts.Resamples)
			for k := wk; k < nk; k += workers {
				g.Dirs[k] = directionGrowth(e, k, alive, counts, opts, sc)
			}
		})
	}
	wg.Wait()
	return g, nil
}

// growthScratch is one worker's buffers for directionGrowth. dev[r] is the
// projection minus the full-sample mean, 0 for replicas not alive (with
// weight live[r] = 0), laid out contiguously for the inner loop.
type growthScratch struct {
	x, dev, live, col, colM []float64
}

func newGrowthScratch(replicas, resamples int) *growthScratch {
	return &growthScratch{x: make([]float64, replicas), dev: make([]float64, replicas), live: make([]float64, replicas),
		col: make([]float64, resamples), colM: make([]float64, resamples)}
}

// directionGrowth is VarianceGrowth for direction k, with the resample
// counts shared by every direction.
func directionGrowth(e Ensemble, k int, alive [][]bool, counts [][]float64, opts GrowthOptions, sc *growthScratch) DirectionGrowth {
	nr, nt := len(e.Proj), len(e.Steps)
	d := DirectionGrowth{
		Var: make([]float64, nt), VarLo: make([]float64, nt), VarHi: make([]float64, nt),
		Mean: make([]float64, nt), MeanLo: make([]float64, nt), MeanHi: make([]float64, nt),
		Kurtosis: make([]float64, nt), HeavyTail: make([]bool, nt),
		RelSE: make([]float64, nt), RelSEKurt: make([]float64, nt),
		Boot: make([][]float64, opts.Resamples),
	}
	for b := range d.Boot {
		d.Boot[b] = make([]float64, nt)
	}
	for i := range nt {
		n := 0
		for r := range nr {
			if alive[r][i] {
				sc.x[n] = e.Proj[r][i][k]
				n++
			}
		}
		m, v, kurt := moments(sc.x[:n])
		d.Mean[i], d.Var[i], d.Kurtosis[i] = m, v, kurt
		d.HeavyTail[i] = n >= opts.MinTailReplicas && kurt > opts.KurtosisMax
		d.RelSE[i] = math.Sqrt(2 / float64(n-1))
		d.RelSEKurt[i] = math.Sqrt(2/float64(n-1) + math.Max(kurt, 0)/float64(n))
		if n < 2 {
			d.RelSE[i], d.RelSEKurt[i] = math.NaN(), math.NaN()
		}
		// Shift by the full-sample mean so the one-pass sums below do
		// not cancel catastrophically.
		for r := range nr {
			sc.dev[r], sc.live[r] = 0, 0
			if alive[r][i] {
				sc.dev[r], sc.live[r] = e.Proj[r][i][k]-m, 1
			}
		}
		for b, c := range counts {
			var w, s1, s2 float64
			for r, dx := range sc.dev {
				cw := c[r] * sc.live[r]
				w += cw
				s1 += cw * dx
				s2 += cw * dx * dx
			}
			vb, mb := math.NaN(), math.NaN()
			if w >= 2 {
				vb = math.Max((s2-s1*s1/w)/(w-1), 0)
			}
			if w >= 1 {
				mb = m + s1/w
			}
			d.Boot[b][i] = vb
			sc.col[b], sc.colM[b] = vb, mb
		}
		d.VarLo[i], d.VarHi[i] = percentileCI(sc.col, opts.Level, math.NaN())
		d.MeanLo[i], d.MeanHi[i] = percentileCI(sc.colM, opts.Level, math.NaN())
	}
	return d
}

// moments returns the mean, the sample variance (n-1) and the sample
// excess kurtosis (bias-adjusted G2) of x; NaN where undefined.
func moments(x []float64) (mean, variance, kurt float64) {
	n := float64(len(x))
	if len(x) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	for _, v := range x {
		mean += v
	}
	mean /= n
	if len(x) < 2 {
		return mean, math.NaN(), math.NaN()
	}
	var m2, m4 float64
	for _, v := range x {
		d := (v - mean) * (v - mean)
		m2 += d
		m4 += d * d
	}
	variance = m2 / (n - 1)
	if len(x) < 4 || m2 == 0 {
		return mean, variance, math.NaN()
	}
	m2 /= n
	m4 /= n
	g2 := m4/(m2*m2) - 3
	kurt = ((n+1)*g2 + 6) * (n - 1) / ((n - 2) * (n - 3))
	return mean, variance, kurt
}
