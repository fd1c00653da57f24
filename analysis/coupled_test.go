package analysis

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestCoupledFlatRateNoCoupling: with s_uk = 0 the coupled rate is the
// diagonal eta^2 c_u exactly, whatever the stiff modes.
func TestCoupledFlatRateNoCoupling(t *testing.T) {
	stiff := []DirectionParams{{Lambda: 1, C: 0.5, S2: 0.2}, {Lambda: 4, C: 1}}
	for _, st := range []float64{math.Inf(1), 0, 37} {
		r, err := CoupledFlatRate(0.1, 2, stiff, []float64{0, 0}, st)
		if err != nil {
			t.Fatal(err)
		}
		if r.Coupled != FlatSlope(0.1, 2) || r.Diagonal != r.Coupled || r.Transfer != 0 || math.Abs(r.Coupled-0.02) > 1e-17 {
			t.Errorf("t = %g: rate %+v, want coupled = diagonal = eta^2 c_u = 0.02 and no transfer", st, r)
		}
	}
}

// TestCoupledFlatRateHandComputed checks a case worked by hand:
// eta = 0.1, c_u = 2, stiff modes (lambda, c, s2) = (1, 0.5, 0.2) and
// (4, 1, 0), cross-curvature noise s_uk^2 = (0.3, 0.05). Saturated
// variances sigma_k^2 = eta c / (2 lambda - eta lambda^2 - eta s2):
// 0.05 / 1.88 and 0.1 / 6.4 = 0.015625, so the rate is
// 0.01 (2 + 0.3 * 0.05/1.88 + 0.05 * 0.015625) = 0.0200877622...
func TestCoupledFlatRateHandComputed(t *testing.T) {
	stiff := []DirectionParams{{Lambda: 1, C: 0.5, S2: 0.2}, {Lambda: 4, C: 1}}
	su2 := []float64{0.3, 0.05}
	r, err := CoupledFlatRate(0.1, 2, stiff, su2, math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	want := 0.01 * (2 + 0.3*0.05/1.88 + 0.05*0.015625)
	if math.Abs(r.Coupled-want) > 1e-15 || math.Abs(r.Diagonal-0.02) > 1e-16 {
		t.Errorf("coupled %.15g (diagonal %.15g), want %.15g (0.02)", r.Coupled, r.Diagonal, want)
	}
	if math.Abs(r.Sigma2[0]-0.05/1.88) > 1e-16 || math.Abs(r.Sigma2[1]-0.015625) > 1e-17 {
		t.Errorf("stiff variances %v, want [%g 0.015625]", r.Sigma2, 0.05/1.88)
	}
	if math.Abs(r.Terms[0]+r.Terms[1]-r.Transfer) > 1e-18 || math.Abs(r.Terms[1]-0.01*0.05*0.015625) > 1e-18 {
		t.Errorf("terms %v, transfer %g", r.Terms, r.Transfer)
	}
	// At step 3 the stiff variances are the discrete recursion's third
	// iterate from 0: sigma^2(3) = eta^2 c (1 + a + a^2).
	r3, err := CoupledFlatRate(0.1, 2, stiff, su2, 3)
	if err != nil {
		t.Fatal(err)
	}
	a := 0.9*0.9 + 0.01*0.2
	if w := 0.01 * 0.5 * (1 + a + a*a); math.Abs(r3.Sigma2[0]-w) > 1e-15 {
		t.Errorf("sigma_0^2(3) = %.15g, want %.15g", r3.Sigma2[0], w)
	}
}

// TestCoupledFlatVariance compares the closed-form curve with the scalar
// recursions iterated step by step: sigma_k^2(t+1) = a_k sigma_k^2 + eta^2
// c_k and V(t+1) = V + eta^2 (c_u + sum_k s_uk^2 sigma_k^2(t)), including a
// nearly flat "stiff" mode where the closed form uses its series. Its late
// slope must approach CoupledFlatRate.
func TestCoupledFlatVariance(t *testing.T) {
	const eta, cu, var0 = 0.2, 0.7, 0.05
	stiff := []DirectionParams{{Lambda: 2, C: 0.5, S2: 0.3}, {Lambda: 0.3, C: 1.5, S2: 0.01}, {Lambda: 1e-9, C: 3}}
	su2 := []float64{0.4, 0.2, 0.1}
	sig := make([]float64, len(stiff))
	v := var0
	for step := 0; step <= 400; step++ {
		got, err := CoupledFlatVariance(eta, cu, stiff, su2, var0, float64(step))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-v) > 1e-12*v {
			t.Fatalf("step %d: closed form %.15g, iterated %.15g", step, got, v)
		}
		inc := cu
		for k, p := range stiff {
			inc += su2[k] * sig[k]
			sig[k] = DiscreteFactor(eta, p)*sig[k] + eta*eta*p.C
		}
		v += eta * eta * inc
	}
	// Without the nearly flat mode the late slope is the saturated rate.
	late := func(t float64) float64 {
		v, _ := CoupledFlatVariance(eta, cu, stiff[:2], su2[:2], var0, t)
		return v
	}
	r, _ := CoupledFlatRate(eta, cu, stiff[:2], su2[:2], math.Inf(1))
	if slope := late(5001) - late(5000); math.Abs(slope-r.Coupled) > 1e-9*r.Coupled {
		t.Errorf("late slope %.12g, coupled rate %.12g", slope, r.Coupled)
	}
	if r.Coupled <= r.Diagonal {
		t.Errorf("coupled rate %g not above the diagonal %g with non-zero cross-curvature noise", r.Coupled, r.Diagonal)
	}
}

// TestCoupledMatchesSubspace: a flat direction coupled to two stiff modes
// only through off-diagonal curvature noise Delta = x (e_k e_u^T + e_u
// e_k^T). S then stays diagonal and the exact recursion is three scalar
// ones: S_kk' = a_k S_kk + eta^2 (s_uk^2 S_uu + c_k) (the back-transfer
// from u into k) and S_uu' = S_uu + eta^2 (c_u + sum_k s_uk^2 S_kk). The
// subspace recursion must equal them to rounding; CoupledFlatVariance
// (no back-transfer) must agree while S_uu is small and stay below it; and
// the cross-curvature noise estimated from the batches must be the s_uk^2.
func TestCoupledMatchesSubspace(t *testing.T) {
	const eta = 0.1
	lam := []float64{1.5, 0.7, 0}
	c := []float64{0.4, 0.9, 0.05}
	const u = 2
	h := mat.NewSymDense(3, nil)
	cv := mat.NewSymDense(3, nil)
	for j := range 3 {
		h.SetSym(j, j, lam[j])
		cv.SetSym(j, j, c[j])
	}
	// Four batches: +-x on (0, u) and +-y on (1, u), around H.
	x, y := 0.5, 0.8
	var batches []*mat.SymDense
	for _, e := range []struct {
		k int
		v float64
	}{{0, x}, {0, -x}, {1, y}, {1, -y}} {
		a := mat.NewSymDense(3, nil)
		a.CopySym(h)
		a.SetSym(e.k, u, e.v)
		batches = append(batches, a)
	}
	noise, err := SampledCurvatureNoise(batches, h)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := CrossCurvatureNoise(batches, h)
	if err != nil {
		t.Fatal(err)
	}
	su2 := []float64{s2.At(0, u), s2.At(1, u)}
	if math.Abs(su2[0]-x*x/2) > 1e-15 || math.Abs(su2[1]-y*y/2) > 1e-15 || s2.At(u, u) != 0 || s2.At(0, 0) != 0 {
		t.Fatalf("cross-curvature noise %v, want [%g %g] and s_u^2 = s_0^2 = 0", su2, x*x/2, y*y/2)
	}
	stiff := []DirectionParams{{Lambda: lam[0], C: c[0]}, {Lambda: lam[1], C: c[1]}}
	steps := []int64{10, 100, 1000}
	sub, err := SubspaceVariance(SubspaceModel{Eta: eta, H: h, C: cv, Noise: noise}, steps, SubspaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sk := []float64{0, 0}
	var suu float64
	si := 0
	for st := int64(1); st <= steps[len(steps)-1]; st++ {
		nu := suu + eta*eta*(c[u]+su2[0]*sk[0]+su2[1]*sk[1])
		for k := range sk {
			sk[k] = DiscreteFactor(eta, stiff[k])*sk[k] + eta*eta*(su2[k]*suu+c[k])
		}
		suu = nu
		if st != steps[si] {
			continue
		}
		if rel := math.Abs(sub[si][u]-suu) / suu; rel > 1e-12 {
			t.Errorf("step %d: subspace %.15g, three scalar recursions %.15g", st, sub[si][u], suu)
		}
		want, err := CoupledFlatVariance(eta, c[u], stiff, su2, 0, float64(st))
		if err != nil {
			t.Fatal(err)
		}
		diag := FlatSlope(eta, c[u]) * float64(st)
		rel := (sub[si][u] - want) / want
		t.Logf("step %d: subspace %.6g, coupled closed form %.6g (relative %.2g), diagonal %.6g", st, sub[si][u], want, rel, diag)
		if rel < -1e-12 || (st <= 100 && rel > 5e-3) {
			t.Errorf("step %d: subspace %.8g, coupled closed form %.8g: relative %.2g, want in [0, 5e-3] while S_uu is small", st, sub[si][u], want, rel)
		}
		if want <= diag {
			t.Errorf("step %d: coupled %.8g not above the diagonal theory %.8g", st, want, diag)
		}
		si++
	}
}

func TestCoupledErrors(t *testing.T) {
	ok := []DirectionParams{{Lambda: 1, C: 1}}
	for _, tc := range []struct {
		eta, cu float64
		stiff   []DirectionParams
		su2     []float64
		t       float64
		want    string
	}{
		{0, 1, ok, []float64{0}, 1, "learning rate"},
		{0.1, -1, ok, []float64{0}, 1, "gradient-noise"},
		{0.1, 1, ok, nil, 1, "1 stiff"},
		{0.1, 1, ok, []float64{-1}, 1, "cross-curvature"},
		{0.1, 1, []DirectionParams{{Lambda: -1, C: 1}}, []float64{1}, math.Inf(1), "does not saturate"},
		{0.1, 1, ok, []float64{1}, -2, "step"},
	} {
		_, err := CoupledFlatRate(tc.eta, tc.cu, tc.stiff, tc.su2, tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error mentioning %q", err, tc.want)
		}
	}
	if _, err := CoupledFlatVariance(0.1, 1, ok, []float64{1}, 0, math.Inf(1)); err == nil {
		t.Error("infinite step accepted")
	}
}
