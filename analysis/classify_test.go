package analysis

import (
	"math/rand/v2"
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
