package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMSD: a long confined run plateaus at 2 sigma_inf^2 and a flat one
// grows linearly with slope eta^2 c per step.
func TestMSD(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const eta = 0.1
	pc := DirectionParams{Lambda: 2, C: 1, S2: 1}
	pd := DirectionParams{C: 1}
	e := simulate(rng, eta, []DirectionParams{pc, pd}, nil, 1, 200000, 1)
	steps := e.Steps
	xc := make([]float64, len(steps))
	xd := make([]float64, len(steps))
	for i := range steps {
		xc[i], xd[i] = e.Proj[0][i][0], e.Proj[0][i][1]
	}
	lags := LogLags(2000, 20)
	if lags[0] != 1 || lags[len(lags)-1] != 2000 {
		t.Fatalf("lags %v", lags)
	}
	mc, _, err := MSD(steps, xc, lags)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := SummarizeMSD(lags, mc)
	if err != nil {
		t.Fatal(err)
	}
	inf := DiscreteStationary(eta, pc)
	if sc.Kind != "plateau" || math.Abs(sc.SigmaInf2/inf-1) > 0.05 {
		t.Errorf("confined MSD: %+v, want plateau with sigma_inf^2 %g", sc, inf)
	}
	// Lags up to 200 so that many independent windows average.
	lags = LogLags(200, 12)
	md, _, _ := MSD(steps, xd, lags)
	sd, _ := SummarizeMSD(lags, md)
	if sd.Kind != "linear" || math.Abs(sd.SlopePerStep/FlatSlope(eta, 1)-1) > 0.1 {
		t.Errorf("flat MSD: %+v, want linear with slope %g", sd, FlatSlope(eta, 1))
	}
}

// TestMSDIrregularSteps: pairs are matched by step difference, not index.
func TestMSDIrregularSteps(t *testing.T) {
	steps := []int64{0, 1, 3, 4, 10}
	p := []float64{0, 1, 3, 4, 10}
	m, n, err := MSD(steps, p, []int64{1, 3, 6, 8})
	if err != nil {
		t.Fatal(err)
	}
	// lag 1: (0,1),(3,4) -> 1; lag 3: (0,3),(1,4) -> 9; lag 6: (4,10) -> 36; lag 8: none.
	if m[0] != 1 || m[1] != 9 || m[2] != 36 || !math.IsNaN(m[3]) || n[0] != 2 || n[3] != 0 {
		t.Errorf("msd %v pairs %v", m, n)
	}
}
