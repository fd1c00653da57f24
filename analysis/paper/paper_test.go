package paper

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/analysis"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.15g, want %.15g", what, got, want)
	}
}

func TestPearsonHand(t *testing.T) {
	// x = 1,2,3, y = 2,4,7: sxy = 5, sxx = 2, syy = 114/9.
	r, err := Pearson([]float64{1, 2, 3}, []float64{2, 4, 7})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "r", r, 15/math.Sqrt(228), 1e-14)
	r, err = Pearson([]float64{0, 1, 1}, []float64{1, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "r", r, -0.5, 1e-14)
	for name, c := range map[string][2][]float64{
		"constant": {{1, 2, 3}, {4, 4, 4}},
		"length":   {{1, 2, 3}, {1, 2}},
		"short":    {{1}, {2}},
		"nan":      {{1, math.NaN(), 3}, {1, 2, 3}},
	} {
		if _, err := Pearson(c[0], c[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestComparePerfect(t *testing.T) {
	// p = 2m: log-log r = 1, relative error 1, best scale 1/2 removing it
	// all; no shuffle of 10 distinct values beats r = 1, so p = 1/201.
	m := []float64{1, 3, 0.2, 7, 0.05, 11, 2.5, 0.7, 4, 9}
	p := make([]float64, len(m))
	for i := range m {
		p[i] = 2 * m[i]
	}
	a, err := Compare(m, p, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "log r", a.LogPearson, 1, 1e-12)
	near(t, "rel err", a.RelErr, 1, 1e-12)
	near(t, "scale", a.Scale, 0.5, 1e-12)
	near(t, "rel err scaled", a.RelErrScaled, 0, 1e-12)
	if a.Perms != 200 || a.N != 10 {
		t.Errorf("perms %d, n %d", a.Perms, a.N)
	}
	if a.PValue != 1.0/201 {
		t.Errorf("p-value %g, want 1/201", a.PValue)
	}
}

func TestCompareAnti(t *testing.T) {
	// p = 1/m: r = -1, every shuffle has r >= -1, so p = 201/201.
	m := []float64{1, 3, 0.2, 7, 0.05}
	p := make([]float64, len(m))
	for i := range m {
		p[i] = 1 / m[i]
	}
	a, err := Compare(m, p, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "log r", a.LogPearson, -1, 1e-12)
	if a.PValue != 1 {
		t.Errorf("p-value %g, want 1", a.PValue)
	}
}

func TestCompareHand(t *testing.T) {
	// m = 1,2,2, p = 2,2,1: m - p = (-1,0,1), ||m|| = 3; a = m.p/p.p = 8/9,
	// m - a p = (-7,2,10)/9; ln m, ln p are ln2 (0,1,1), ln2 (1,1,0): r = -0.5.
	a, err := Compare([]float64{1, 2, 2}, []float64{2, 2, 1}, 50, 3)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "rel err", a.RelErr, math.Sqrt2/3, 1e-14)
	near(t, "scale", a.Scale, 8.0/9, 1e-14)
	near(t, "rel err scaled", a.RelErrScaled, math.Sqrt(153.0/729), 1e-14)
	near(t, "log r", a.LogPearson, -0.5, 1e-14)
	// The three arrangements of ln p have r = -0.5, -0.5 and 1, all >= r
	// up to rounding: the p-value must be near 1, not the 1/51 of a fit.
	if a.PValue < 0.4 || a.Perms != 50 {
		t.Errorf("p-value %g (perms %d) for an anti-correlated set", a.PValue, a.Perms)
	}
}

func TestComparePermutationUniform(t *testing.T) {
	// Unrelated m and p: the p-value is uniform, so over many seeds about
	// 5% fall at or below 0.05 (a p-value that ignored the shuffles, or
	// counted r_perm <= r, would not).
	rng := rand.New(rand.NewPCG(5, 6))
	low := 0
	const trials = 200
	for trial := range trials {
		m, p := make([]float64, 12), make([]float64, 12)
		for i := range m {
			m[i], p[i] = math.Exp(rng.NormFloat64()), math.Exp(rng.NormFloat64())
		}
		a, err := Compare(m, p, 100, uint64(trial))
		if err != nil {
			t.Fatal(err)
		}
		if a.PValue <= 0.05 {
			low++
		}
	}
	if low < 2 || low > 25 {
		t.Errorf("%d of %d unrelated sets have p <= 0.05, want about 10", low, trials)
	}
}

func TestCompareDeterministicAndErrors(t *testing.T) {
	m := []float64{1, 2, 3, 4, 5, 6}
	p := []float64{2, 1, 4, 3, 6, 5}
	a1, _ := Compare(m, p, 0, 9)
	a2, _ := Compare(m, p, 0, 9)
	if a1 != a2 {
		t.Errorf("same seed, different results: %+v vs %+v", a1, a2)
	}
	bad := map[string][2][]float64{
		"zero m":   {{1, 0, 3}, {1, 2, 3}},
		"neg p":    {{1, 2, 3}, {1, -2, 3}},
		"inf p":    {{1, 2, 3}, {1, math.Inf(1), 3}},
		"length":   {{1, 2, 3}, {1, 2}},
		"too few":  {{1, 2}, {1, 2}},
		"constant": {{1, 1, 1}, {1, 2, 3}},
	}
	for name, c := range bad {
		if _, err := Compare(c[0], c[1], 0, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPredict(t *testing.T) {
	eta := 0.1
	params := []analysis.DirectionParams{{Lambda: 2, C: 3}, {Lambda: -2, C: 3}, {Lambda: 1, C: 4, S2: 0.5}}
	p := Predict(eta, params, 1e6)
	near(t, "paper", p.Paper[0], 0.075, 1e-15)
	near(t, "paper |lambda|", p.Paper[1], 0.075, 1e-15)
	// At t -> infinity Langevin reaches eta c/(2 lambda), the paper's
	// value, and discrete its own stationary value.
	near(t, "langevin", p.Langevin[0], 0.075, 1e-12)
	near(t, "discrete", p.Discrete[2], analysis.DiscreteStationary(eta, params[2]), 1e-12)
	// Negative lambda: geometric growth, eta^2 c (a^t - 1)/(a - 1) with
	// a = (1 + eta 2)^2 = 1.44.
	neg := Predict(eta, params[1:2], 10)
	near(t, "negative lambda", neg.Discrete[0], eta*eta*3*(math.Pow(1.44, 10)-1)/0.44, 1e-12)
	// At a finite time the variance has not saturated.
	q := Predict(eta, params[:1], 1)
	near(t, "one step", q.Discrete[0], eta*eta*3, 1e-15)
}

func TestCompareBoot(t *testing.T) {
	// Resamples that rescale every variance by s_b keep the log-log r and
	// the scaled error, and scale the best scalar by s_b.
	m := []float64{1, 3, 0.2, 7, 0.05}
	p := []float64{1.5, 2, 0.5, 6, 0.1}
	a, err := Compare(m, p, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var boot [][]float64
	for b := range 101 {
		s := 0.5 + float64(b)/100 // 0.5 .. 1.5
		mb := make([]float64, len(m))
		for i := range m {
			mb[i] = s * m[i]
		}
		boot = append(boot, mb)
	}
	boot = append(boot, []float64{1, 0, 1, 1, 1}) // a zero variance: left out
	ci, err := CompareBoot(m, boot, p, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Resamples != 101 {
		t.Errorf("%d resamples used, want 101", ci.Resamples)
	}
	near(t, "r lo", ci.LogPearson.Lo, a.LogPearson, 1e-12)
	near(t, "r hi", ci.LogPearson.Hi, a.LogPearson, 1e-12)
	near(t, "scaled err lo", ci.RelErrScaled.Lo, a.RelErrScaled, 1e-12)
	// 5% and 95% quantiles of s = 0.5 + j/100 are 0.55 and 1.45.
	near(t, "scale lo", ci.Scale.Lo, 0.55*a.Scale, 1e-12)
	near(t, "scale hi", ci.Scale.Hi, 1.45*a.Scale, 1e-12)
	near(t, "scale est", ci.Scale.Est, a.Scale, 1e-12)
	if _, err := CompareBoot(m, boot[:5], p, 0.9); err == nil {
		t.Error("5 resamples: no error")
	}
}

func TestBucketMeanAndLateSlope(t *testing.T) {
	v := [][]float64{{0, 2, 4}, {10, 10, 10}, {0, 4, 8}}
	b, err := BucketMean(v, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{0, 3, 6} {
		near(t, "bucket mean", b[i], want, 0)
	}
	if _, err := BucketMean(v, []int{0, 3}); err == nil {
		t.Error("out-of-range direction: no error")
	}
	if _, err := BucketMean(v, nil); err == nil {
		t.Error("empty bucket: no error")
	}

	// EXP5 logging: every 40 steps to 400; the curve is flat until 280 and
	// then linear with slope 0.5, so only the late times may enter.
	var steps []int64
	var y []float64
	for s := int64(0); s <= 400; s += 40 {
		steps = append(steps, s)
		v := 1000.0
		if s >= 320 {
			v = 3 + 0.5*float64(s)
		}
		y = append(y, v)
	}
	sl, err := LateSlope(steps, y, []int64{320, 360, 400})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "EXP5 slope", sl, 0.5, 1e-13)
	if _, err := LateSlope(steps, y, []int64{320, 350}); err == nil {
		t.Error("unlogged step: no error")
	}
	// EXP14: the last 7 of steps 0, 10, ..., 200 are 140..200.
	var s14 []int64
	var y14 []float64
	for s := int64(0); s <= 200; s += 10 {
		s14 = append(s14, s)
		y14 = append(y14, -2+0.25*float64(s))
	}
	y14[len(y14)-8] = 1e9 // step 130: outside the last 7
	at := LastTimes(s14, 7)
	if len(at) != 7 || at[0] != 140 || at[6] != 200 {
		t.Fatalf("last 7 times %v", at)
	}
	sl, err = LateSlope(s14, y14, at)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "EXP14 slope", sl, 0.25, 1e-13)
	if got := LastTimes(s14[:3], 7); len(got) != 3 {
		t.Errorf("last 7 of 3 steps: %v", got)
	}
}

// linearEnsemble has projections sqrt(t) z_r scale_k, so the variance
// across replicas is exactly t scale_k^2 Var(z) in the full sample and in
// every resample.
func linearEnsemble(scales []float64, reps int) (analysis.Ensemble, float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	z := make([]float64, reps)
	for r := range z {
		z[r] = rng.NormFloat64()
	}
	steps := []int64{0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400}
	e := analysis.Ensemble{Eta: 0.1, Batch: 64, Steps: steps}
	for r := range reps {
		rep := make([][]float64, len(steps))
		for i, s := range steps {
			row := make([]float64, len(scales))
			for k, sc := range scales {
				row[k] = math.Sqrt(float64(s)) * z[r] * sc
			}
			rep[i] = row
		}
		e.Proj = append(e.Proj, rep)
	}
	var mean, v float64
	for _, a := range z {
		mean += a
	}
	mean /= float64(reps)
	for _, a := range z {
		v += (a - mean) * (a - mean)
	}
	return e, v / float64(reps-1)
}

func TestDirectionAndBucketSlopes(t *testing.T) {
	scales := []float64{1, 2, 0.5}
	e, vz := linearEnsemble(scales, 24)
	g, err := analysis.VarianceGrowth(e, analysis.GrowthOptions{Resamples: 200, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := DirectionSlopes(g, []int64{320, 360, 400}, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	for k, sc := range scales {
		want := sc * sc * vz
		near(t, "slope", s.Slope[k].Est, want, 1e-9)
		if !(s.Slope[k].Lo < want && want < s.Slope[k].Hi) {
			t.Errorf("direction %d: interval [%g, %g] excludes %g", k, s.Slope[k].Lo, s.Slope[k].Hi, want)
		}
		// A resample's slope is scale^2 times its Var(z): the ratio of
		// two directions' resamples is fixed.
		near(t, "resample ratio", s.Boot[k][7]/s.Boot[0][7], sc*sc, 1e-9)
	}
	b, err := BucketSlope(s, []int{0, 1}, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "bucket slope", b.Est, 2.5*vz, 1e-9)
	// The bucket interval is the per-direction one scaled by 2.5 (shared
	// resamples), not a combination of independent intervals.
	near(t, "bucket lo", b.Lo, 2.5*s.Slope[0].Lo, 1e-9)
	near(t, "bucket hi", b.Hi, 2.5*s.Slope[0].Hi, 1e-9)
	if _, err := DirectionSlopes(g, []int64{400}, 0.95); err == nil {
		t.Error("one time: no error")
	}
	if _, err := BucketSlope(s, []int{5}, 0.95); err == nil {
		t.Error("out-of-range direction: no error")
	}
}

func TestCheckNulls(t *testing.T) {
	c := []float64{1e-14, 1e-10, 5e-12, 1e-3, 2}
	n, err := CheckNulls(c, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 1e-10 itself is at the bound and counts (c <= tol median).
	if n.Nulls != 3 || !n.Null[0] || !n.Null[1] || !n.Null[2] || n.Null[3] || n.Null[4] {
		t.Errorf("nulls %d %v, want the first 3", n.Nulls, n.Null)
	}
	if n.MinC != 1e-14 || n.MaxC != 2 || n.MaxRatio != 2 || n.Tol != DefaultNullTol {
		t.Errorf("summary %+v", n)
	}
	// The same bucket against a median 1e6 times larger: 1e-3 is now at
	// 1e-9 of the median, still not a null; against 1e8, it is.
	if n, _ := CheckNulls(c, 1e8, 0); n.Nulls != 4 {
		t.Errorf("median 1e8: %d nulls, want 4", n.Nulls)
	}
	if _, err := CheckNulls(c, 0, 0); err == nil {
		t.Error("zero median: no error")
	}
	if _, err := CheckNulls(nil, 1, 0); err == nil {
		t.Error("empty bucket: no error")
	}
}

func TestDrift(t *testing.T) {
	x := [][]float64{{1, 0}, {3, 0}, {5, 2}}
	m, v, r, err := Drift(x)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "mean 0", m[0], 3, 1e-15)
	near(t, "mean 1", m[1], 2.0/3, 1e-15)
	near(t, "var 0", v[0], 4, 1e-15)
	near(t, "var 1", v[1], 4.0/3, 1e-15)
	near(t, "ratio 0", r[0], 9.0/4, 1e-15)
	near(t, "ratio 1", r[1], 1.0/3, 1e-15)
	if q := DriftRatios([]float64{1}, []float64{0}); !math.IsNaN(q[0]) {
		t.Errorf("zero variance ratio %g, want NaN", q[0])
	}
	if _, _, _, err := Drift(x[:1]); err == nil {
		t.Error("one replica: no error")
	}
	if _, _, _, err := Drift([][]float64{{1, 2}, {1}}); err == nil {
		t.Error("ragged: no error")
	}
}
