package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gaussEnsemble returns R replicas at steps 0 and 1 with one direction:
// p = 0 at step 0 and N(mu, sd^2) at step 1.
func gaussEnsemble(rng *rand.Rand, R int, mu, sd float64) Ensemble {
	e := Ensemble{Steps: []int64{0, 1}, Proj: make([][][]float64, R)}
	for r := range R {
		e.Proj[r] = [][]float64{{0}, {mu + sd*rng.NormFloat64()}}
	}
	return e
}

// TestBootstrapCoverage: over many independent Gaussian ensembles the 90%
// percentile intervals of the variance and mean must contain the true
// values about 90% of the time (the percentile bootstrap of a variance
// under-covers slightly at R = 100).
func TestBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const trials, R = 300, 100
	hitV, hitM := 0, 0
	for i := range trials {
		e := gaussEnsemble(rng, R, 1.5, 2)
		g, err := VarianceGrowth(e, GrowthOptions{Resamples: 400, Level: 0.9, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		d := g.Dirs[0]
		if d.VarLo[1] <= 4 && 4 <= d.VarHi[1] {
			hitV++
		}
		if d.MeanLo[1] <= 1.5 && 1.5 <= d.MeanHi[1] {
			hitM++
		}
	}
	cv, cm := float64(hitV)/trials, float64(hitM)/trials
	t.Logf("coverage of 90%% intervals: variance %.3f, mean %.3f", cv, cm)
	// Binomial sd at 0.9 and 300 trials is 0.017.
	if cv < 0.83 || cv > 0.96 || cm < 0.84 || cm > 0.96 {
		t.Errorf("coverage variance %.3f, mean %.3f: want about 0.9", cv, cm)
	}
}

// TestVarianceGrowthStatistics checks the point statistics, the shared
// resamples and the step-0 row on a small hand-made ensemble.
func TestVarianceGrowthStatistics(t *testing.T) {
	x := []float64{1, 2, 4, 7, -3}
	e := Ensemble{Steps: []int64{0, 5}, Proj: make([][][]float64, len(x))}
	for r, v := range x {
		e.Proj[r] = [][]float64{{0, 0}, {v, 2 * v}}
	}
	g, err := VarianceGrowth(e, GrowthOptions{Resamples: 50, Seed: 1, MinTailReplicas: 4})
	if err != nil {
		t.Fatal(err)
	}
	// mean 2.2, sum of squares 54.8, variance 13.7.
	d0, d1 := g.Dirs[0], g.Dirs[1]
	if !approxEq(d0.Mean[1], 2.2, 1e-14) || !approxEq(d0.Var[1], 13.7, 1e-14) || !approxEq(d1.Var[1], 4*13.7, 1e-14) {
		t.Errorf("mean %g var %g var2 %g", d0.Mean[1], d0.Var[1], d1.Var[1])
	}
	if d0.Var[0] != 0 || d0.VarLo[0] != 0 || d0.VarHi[0] != 0 {
		t.Errorf("step 0 variance %g [%g, %g], want 0", d0.Var[0], d0.VarLo[0], d0.VarHi[0])
	}
	if !approxEq(d0.RelSE[1], math.Sqrt(0.5), 1e-14) || g.Used[1] != 5 {
		t.Errorf("relative se %g, used %d", d0.RelSE[1], g.Used[1])
	}
	for b := range d0.Boot {
		// Same resample in both directions: the variances scale by 4.
		if !approxEq(d1.Boot[b][1], 4*d0.Boot[b][1], 1e-12) {
			t.Fatalf("resample %d: directions use different replicas", b)
		}
	}
}

// TestHeavyTailFlag: Student-t with 3 degrees of freedom has an infinite
// fourth moment and must be flagged; a Gaussian must not.
func TestHeavyTailFlag(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const R = 2000
	e := Ensemble{Steps: []int64{0, 1}, Proj: make([][][]float64, R)}
	for r := range R {
		var chi float64
		for range 3 {
			z := rng.NormFloat64()
			chi += z * z
		}
		e.Proj[r] = [][]float64{{0, 0}, {rng.NormFloat64() / math.Sqrt(chi/3), rng.NormFloat64()}}
	}
	g, err := VarianceGrowth(e, GrowthOptions{Resamples: 20})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Dirs[0].HeavyTail[1] || g.Dirs[1].HeavyTail[1] {
		t.Errorf("heavy-tail flags t3 %v (kurtosis %.3g), gauss %v (kurtosis %.3g)",
			g.Dirs[0].HeavyTail[1], g.Dirs[0].Kurtosis[1], g.Dirs[1].HeavyTail[1], g.Dirs[1].Kurtosis[1])
	}
	if k := g.Dirs[1].Kurtosis[1]; math.Abs(k) > 0.5 {
		t.Errorf("Gaussian excess kurtosis %g", k)
	}
	if d := g.Dirs[0]; !(d.RelSEKurt[1] > 2*d.RelSE[1]) {
		t.Errorf("t3 kurtosis-aware error %g not above the Gaussian %g", d.RelSEKurt[1], d.RelSE[1])
	}
}

// TestDivergedReplicas: replicas are dropped from their divergence step on,
// explicitly or through a non-finite projection, and the counts say so.
func TestDivergedReplicas(t *testing.T) {
	e := Ensemble{Steps: []int64{0, 10, 20, 30}, Proj: make([][][]float64, 4), Diverged: []int64{-1, 20, -1, -1}}
	for r := range 4 {
		e.Proj[r] = [][]float64{{0}, {float64(r)}, {float64(r)}, {float64(r)}}
	}
	e.Proj[1][2][0], e.Proj[1][3][0] = 1e300, math.Inf(1)
	e.Proj[2][3][0] = math.NaN()
	g, err := VarianceGrowth(e, GrowthOptions{Resamples: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{4, 4, 3, 2}
	for i, n := range g.Used {
		if n != want[i] {
			t.Errorf("time %d: %d replicas used, want %d", i, n, want[i])
		}
	}
	// At step 30: replicas 0 and 3 only.
	if v := g.Dirs[0].Var[3]; !approxEq(v, 4.5, 1e-14) {
		t.Errorf("variance over survivors %g, want 4.5", v)
	}
	if _, err := VarianceGrowth(Ensemble{Steps: []int64{0, 0}, Proj: [][][]float64{{{0}, {0}}}}, GrowthOptions{}); err == nil {
		t.Error("repeated steps accepted")
	}
}
