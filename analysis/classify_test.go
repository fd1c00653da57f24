package analysis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// classCases are per-direction parameters at eta = 0.1 with the class the
// discrete theory assigns over a 200-step window.
var classCases = []struct {
	name string
	p    DirectionParams
	want Class
}{
	{"confined a=0.82", DirectionParams{Lambda: 1, C: 1, S2: 1}, Confined},
	{"confined fast a=0.35", DirectionParams{Lambda: 5, C: 2, S2: 10}, Confined},
	{"confined slow a=0.96", DirectionParams{Lambda: 0.2, C: 1}, Confined},
	{"diffusive c=1", DirectionParams{C: 1}, Diffusive},
	{"diffusive c=3", DirectionParams{C: 3}, Diffusive},
	{"unstable eta*lambda=2.1", DirectionParams{Lambda: 21, C: 1}, Unstable},
	{"unstable lambda<0", DirectionParams{Lambda: -0.5, C: 1}, Unstable},
	{"unstable eta*lambda=2.05 with s2", DirectionParams{Lambda: 20.5, C: 1, S2: 1}, Unstable},
}

// TestClassifySynthetic classifies simulated ensembles of the scalar
// linearised SGD (R = 64 and 256 replicas, 200 steps) over many seeds: every
// direction must get its theoretical class in most ensembles and never a
// different definite class. A null direction must pass through.
func TestClassifySynthetic(t *testing.T) {
	const eta, seeds = 0.1, 8
	ps := make([]DirectionParams, len(classCases)+1)
	null := make([]bool, len(ps))
	for i, c := range classCases {
		ps[i] = c.p
	}
	ps[len(classCases)] = DirectionParams{C: 1} // would be diffusive, but flagged null
	null[len(classCases)] = true
	for _, R := range []int{64, 256} {
		correct := make([]int, len(classCases))
		for seed := range seeds {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(R)))
			e := simulate(rng, eta, ps, nil, R, 200, 2)
			g, err := VarianceGrowth(e, GrowthOptions{Resamples: 200, Seed: uint64(seed)})
			if err != nil {
				t.Fatal(err)
			}
			cls, err := Classify(g, null, ClassifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for k, c := range classCases {
				got := cls[k].Class
				switch {
				case got == c.want:
					correct[k]++
				case got != Undetermined:
					t.Errorf("R=%d seed %d %s: class %s, want %s: %s", R, seed, c.name, got, c.want, cls[k].Reason)
				}
			}
			if n := cls[len(classCases)]; n.Class != Null || n.SlopeBoot != nil {
				t.Errorf("R=%d seed %d: flagged direction classified %s", R, seed, n.Class)
			}
		}
		for k, c := range classCases {
			t.Logf("R=%d %s: %d/%d correct", R, c.name, correct[k], seeds)
			if correct[k] < seeds*3/4 {
				t.Errorf("R=%d %s: correct in only %d of %d ensembles", R, c.name, correct[k], seeds)
			}
		}
	}
}

// TestClassifyDriftSpreading: a flat direction with a large mean gradient
// and curvature noise grows like t^3 (THEORY.md section 4): it is neither
// linear nor geometric and must not be called diffusive or unstable.
func TestClassifyDriftSpreading(t *testing.T) {
	const eta = 0.1
	p := DirectionParams{C: 1, S2: 0.1}
	gbar := 5.0
	if on := DriftSpreadingOnset(eta, p.C, p.S2, gbar, 1); on > 20 {
		t.Fatalf("test setup: t^3 term matters only after %g steps", on)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	e := simulate(rng, eta, []DirectionParams{p}, []float64{gbar}, 256, 200, 2)
	g, err := VarianceGrowth(e, GrowthOptions{Resamples: 300, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cls, err := Classify(g, nil, ClassifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := cls[0]
	if c.Class != Undetermined || !strings.Contains(c.Reason, "power law") {
		t.Errorf("drift spreading: class %s (%s), want undetermined power law", c.Class, c.Reason)
	}
	if !(c.LogLogSlope.Lo > 2) {
		t.Errorf("drift spreading: log-log slope %+v, want above 2", c.LogLogSlope)
	}
}

// simulateReshuffled runs R replicas of two directions under epoch
// reshuffling of n fixed per-example values (b per batch, so n/b steps per
// epoch, logged every `every` steps up to T): direction 0 is a flat bridge
// plus a slow independent random walk of q per step (long-time diffusion
// under a large epoch-periodic bridge); direction 1 is the same bridge plus
// a confined AR(1) process. It returns the ensemble, the steps per epoch and
// the bridge's peak variance.
func simulateReshuffled(rng *rand.Rand, R, n, b, T, every int, walkFrac float64) (Ensemble, int64, float64, float64) {
	const eta = 0.1
	g := make([]float64, n)
	var mean, sigma2 float64
	for i := range g {
		g[i] = rng.NormFloat64()
		mean += g[i] / float64(n)
	}
	for _, x := range g {
		sigma2 += (x - mean) * (x - mean) / float64(n)
	}
	spe := n / b
	peak := BridgeVariance(eta, sigma2, n, b, float64(spe/2))
	q := walkFrac * peak / float64(T) // the walk reaches walkFrac of the bridge's peak by T
	q2 := 0.1 * peak * (1 - 0.8*0.8)
	var steps []int64
	for t := 0; t <= T; t += every {
		steps = append(steps, int64(t))
	}
	e := Ensemble{Eta: eta, Batch: b, Steps: steps, Proj: make([][][]float64, R)}
	perm := make([]int, n)
	for r := range R {
		var br, walk, ar float64
		rep := make([][]float64, 0, len(steps))
		for t := 0; t <= T; t++ {
			if t%every == 0 {
				rep = append(rep, []float64{br + walk, br + ar})
			}
			pos := t % spe
			if pos == 0 {
				for i := range perm {
					perm[i] = i
				}
				rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			}
			var m float64
			for _, i := range perm[pos*b : (pos+1)*b] {
				m += g[i] / float64(b)
			}
			br -= eta * (m - mean)
			walk += math.Sqrt(q) * rng.NormFloat64()
			ar = 0.8*ar + math.Sqrt(q2)*rng.NormFloat64()
		}
		e.Proj[r] = rep
	}
	return e, int64(spe), peak, q
}

// TestClassifyReshuffled: under a large epoch-periodic bridge, a slow walk
// must be classified diffusive with the late slope of the walk, and a
// confined process confined, when the fits use epoch boundaries (logged
// every step) or one-epoch averages (logged off the boundaries). Fitted on
// every logged step, the walk is not recognised: that is what the option
// is for. A window within one epoch keeps the plain fit.
func TestClassifyReshuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	// The averages keep the bridge's mean as an offset, so their walk must
	// outgrow the bridge to read as linear; boundaries see none of it.
	for _, tc := range []struct {
		every    int
		walkFrac float64
		curve    string
	}{{1, 0.3, FitEpochBoundaries}, {7, 3, FitEpochAverages}} {
		e, spe, peak, q := simulateReshuffled(rng, 256, 40, 4, 400, tc.every, tc.walkFrac) // 10 steps per epoch, 40 epochs
		g, err := VarianceGrowth(e, GrowthOptions{Resamples: 300, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		cls, err := Classify(g, nil, ClassifyOptions{StepsPerEpoch: spe})
		if err != nil {
			t.Fatal(err)
		}
		walk, conf := cls[0], cls[1]
		if walk.Curve != tc.curve || conf.Curve != tc.curve || !strings.Contains(walk.Reason, tc.curve) {
			t.Errorf("logged every %d: fitted on %q (%s), want %q", tc.every, walk.Curve, walk.Reason, tc.curve)
		}
		if walk.Class != Diffusive || !walk.LateSlope.Contains(q) {
			t.Errorf("logged every %d: walk under the bridge: %s, late slope %+v (walk %g per step): %s", tc.every, walk.Class, walk.LateSlope, q, walk.Reason)
		}
		if conf.Class != Confined {
			t.Errorf("logged every %d: AR(1) under the bridge: %s: %s", tc.every, conf.Class, conf.Reason)
		}
		plain, err := Classify(g, nil, ClassifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if (tc.walkFrac < 1 && plain[0].Class == Diffusive) || plain[0].Curve != FitLogged {
			t.Errorf("logged every %d: the plain fit recognised the walk under a bridge of peak %g (%s): the test cannot show the option matters", tc.every, peak, plain[0].Reason)
		}
	}
	// Within one epoch: the plain fit, whatever the option says.
	e, spe, _, _ := simulateReshuffled(rng, 64, 400, 4, 80, 1, 0.3) // 100 steps per epoch
	g, err := VarianceGrowth(e, GrowthOptions{Resamples: 100, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Classify(g, nil, ClassifyOptions{StepsPerEpoch: spe})
	b, _ := Classify(g, nil, ClassifyOptions{})
	for k := range a {
		if a[k].Curve != FitLogged || a[k].Class != b[k].Class || a[k].LateSlope != b[k].LateSlope {
			t.Errorf("direction %d within one epoch: %s %+v, plain %s %+v", k, a[k].Curve, a[k].LateSlope, b[k].Class, b[k].LateSlope)
		}
	}
	if _, err := Classify(g, nil, ClassifyOptions{StepsPerEpoch: -1}); err == nil {
		t.Error("negative steps per epoch accepted")
	}
}

// TestEpochCurves checks the reduced curves exactly: boundaries keep t0 and
// the logged multiples of S; one-epoch averages of V(t) = t over the logged
// steps in (t - S, t] are t - (S-1)/2 for unit logging, placed at the
// rounded mean step, and average every bootstrap curve the same way.
func TestEpochCurves(t *testing.T) {
	var steps []int64
	for s := int64(0); s <= 20; s++ {
		steps = append(steps, s)
	}
	v := make([]float64, len(steps))
	boot := make([]float64, len(steps))
	used := make([]int, len(steps))
	for i, s := range steps {
		v[i], boot[i], used[i] = float64(s), 2*float64(s), 10
	}
	used[20] = 9
	g := &Growth{Steps: steps, Used: used, Replicas: 10, Level: 0.9, Resamples: 1,
		Dirs: []DirectionGrowth{{Var: v, HeavyTail: make([]bool, len(steps)), Boot: [][]float64{boot}}}}
	gb, lb := epochBoundaries(g, 20, 4)
	if lb != 5 || fmt.Sprint(gb.Steps) != "[0 4 8 12 16 20]" || gb.Dirs[0].Boot[0][5] != 40 || gb.Used[5] != 9 {
		t.Errorf("boundaries: steps %v, last %d, boot %v, used %v", gb.Steps, lb, gb.Dirs[0].Boot[0], gb.Used)
	}
	ga, la := epochAverages(g, 20, 4)
	if la != 17 || ga.Steps[0] != 0 || ga.Steps[1] != 3 || ga.Steps[la] != 19 {
		t.Fatalf("averages: steps %v, last %d", ga.Steps, la)
	}
	for j := 1; j <= la; j++ {
		end := float64(j + 3) // the window (end-4, end]
		if ga.Dirs[0].Var[j] != end-1.5 || ga.Dirs[0].Boot[0][j] != 2*(end-1.5) {
			t.Errorf("average ending at %g: %g (boot %g), want %g", end, ga.Dirs[0].Var[j], ga.Dirs[0].Boot[0][j], end-1.5)
		}
	}
	if ga.Used[la] != 9 {
		t.Errorf("averages keep the fewest live replicas of the window: %d", ga.Used[la])
	}
}

// TestVarianceGrowthWorkers: the directions are spread over GOMAXPROCS
// workers; the result must not depend on how many.
func TestVarianceGrowthWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	e, _, _, _ := simulateReshuffled(rng, 32, 400, 4, 60, 1, 0.3)
	// Five directions, so that three workers get unequal shares.
	for r := range e.Proj {
		for i := range e.Proj[r] {
			p := e.Proj[r][i]
			e.Proj[r][i] = []float64{p[0], 2 * p[0], -p[0] + 1, 0.5 * p[0], 3}
		}
	}
	var got []*Growth
	for _, procs := range []int{1, 3} {
		old := runtime.GOMAXPROCS(procs)
		g, err := VarianceGrowth(e, GrowthOptions{Resamples: 50, Seed: 7})
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g)
	}
	// Printed, so that NaNs (the constant direction's kurtosis) compare
	// equal.
	if a, b := fmt.Sprintf("%+v", *got[0]), fmt.Sprintf("%+v", *got[1]); a != b {
		t.Errorf("1 and 3 workers give different growth")
	}
	if v := got[0].Dirs[1].Var[10]; math.Abs(v-4*got[0].Dirs[0].Var[10]) > 1e-12*v {
		t.Errorf("direction 1 (twice direction 0): variance %g, want 4 x %g", v, got[0].Dirs[0].Var[10])
	}
}
