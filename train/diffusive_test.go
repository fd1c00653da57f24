package train

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/configs"
	"github.com/sgdyn/sgdyn/data"
)

// diffusiveExperiment is the part of the shipped linreg-diffusive config
// this test uses: the training config (data and model) and the ensemble
// section. The hessian section is `sgdyn run`'s and is ignored here.
type diffusiveExperiment struct {
	Config   `yaml:",inline"`
	Ensemble struct {
		Replicas int       `yaml:"replicas"`
		Steps    int64     `yaml:"steps"`
		LR       []float64 `yaml:"lr"`
		Batch    int       `yaml:"batch"`
		Sampling string    `yaml:"sampling"`
		LogEvery int64     `yaml:"log_every"`
	} `yaml:"ensemble"`
}

// TestLinregDiffusiveOracle is the ground truth for the classifier and the
// learning-rate scan in the diffusive regime (issue 12, section 3). On the
// shipped linreg-diffusive data, ensembles of the real replica code
// (RunEnsemble) start at the exact least-squares solution, where the
// covariance recursion is exact, and are projected on the Hessian's
// eigenvectors. At every learning rate of the config:
//   - the two nearly flat directions (eta lambda T < 0.05) are classified
//     diffusive, and their late-slope interval contains the exact eta^2 c
//     (c from the data by LinReg.Params), and also the exact expected
//     late slope: the slope of the exact subspace recursion over the full
//     eigenbasis (per-example curvature terms), fitted on the same window;
//     the coupled rate of THEORY.md section 7 is logged beside it;
//   - the stiff directions are not diffusive.
//
// Across the four learning rates, the fitted exponent of the flat
// directions' growth is 2 per step and 1 per unit time (D ~ eta) within its
// interval. As in `sgdyn run`, every learning rate uses the same replica
// streams (the config's seed), so the scan's points share their sampling
// noise and its chi^2 is near 0.
func TestLinregDiffusiveOracle(t *testing.T) {
	raw, err := configs.Read("linreg-diffusive")
	if err != nil {
		t.Fatal(err)
	}
	ex := diffusiveExperiment{Config: DefaultConfig("linreg")}
	if err := yaml.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	c := ex.Config.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ens := ex.Ensemble
	if len(ens.LR) != 4 || ens.Sampling != "with" {
		t.Fatalf("config has learning rates %v and sampling %q: want a scan of 4 with replacement", ens.LR, ens.Sampling)
	}
	ds, err := LoadData(c)
	if err != nil {
		t.Fatal(err)
	}
	n := ds.Train.Len()
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	var b data.Batch
	ds.Train.Fill(&b, all)
	d := len(b.X) / n
	lr, err := analysis.NewLinReg(mat.NewDense(n, d, b.X), b.Targets)
	if err != nil {
		t.Fatal(err)
	}
	ref := &Reference{Dir: t.TempDir(), Config: c, Data: ds, Checkpoint: "exact least-squares solution", W: lr.Theta}

	// Eigenvectors of H, descending; the last two are the flat ones.
	var es mat.EigenSym
	if !es.Factorize(lr.H, true) {
		t.Fatal("eigendecomposition failed")
	}
	vals := es.Values(nil)
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	dirs := make([][]float64, d)
	lam := make([]float64, d)
	for k := range d {
		dirs[k] = mat.Col(nil, d-1-k, &vecs)
		lam[k] = vals[d-1-k]
	}
	flat := []int{d - 2, d - 1}
	etaMax, T := slices.Max(ens.LR), float64(ens.Steps)
	for _, k := range flat {
		if w := etaMax * lam[k] * T; !(w < 0.05) || lam[k] <= 0 {
			t.Fatalf("direction %d: eta lambda T = %.3g, want in (0, 0.05): the config is not in the diffusive regime", k, w)
		}
	}

	// The exact subspace model over the full eigenbasis: per-example
	// curvature terms A_n = (V^T a_n)(V^T a_n)^T, C_V = V^T C V.
	vm := mat.NewDense(d, d, nil)
	for k := range d {
		vm.SetCol(k, dirs[k])
	}
	sandwich := func(s mat.Symmetric) *mat.SymDense {
		var tmp, r mat.Dense
		tmp.Mul(vm.T(), s)
		r.Mul(&tmp, vm)
		out := mat.NewSymDense(d, nil)
		for a := range d {
			for b := a; b < d; b++ {
				out.SetSym(a, b, 0.5*(r.At(a, b)+r.At(b, a)))
			}
		}
		return out
	}
	perEx := make([]*mat.SymDense, n)
	for i := range n {
		var z mat.VecDense
		z.MulVec(vm.T(), lr.A.RowView(i))
		perEx[i] = mat.NewSymDense(d, nil)
		perEx[i].SymRankOne(perEx[i], 1, &z)
	}
	noise, err := analysis.PerExampleCurvatureNoise(perEx, ens.Batch, analysis.WithReplacement)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := lr.NoiseCov(ens.Batch, analysis.WithReplacement)
	if err != nil {
		t.Fatal(err)
	}
	hv, cv := sandwich(lr.H), sandwich(cov)
	// Cross-curvature noise s_uk^2 = f Var_n((A_n)_uk), f = 1/b.
	s2, err := analysis.CrossCurvatureNoise(perEx, hv)
	if err != nil {
		t.Fatal(err)
	}
	s2.ScaleSym(1/float64(ens.Batch), s2)
	var stiff []analysis.DirectionParams
	for k := range d - 2 {
		p, err := lr.Params(dirs[k], ens.Batch, analysis.WithReplacement)
		if err != nil {
			t.Fatal(err)
		}
		stiff = append(stiff, p)
	}

	const level = 0.95
	var points []analysis.ScanPoint
	for i, eta := range ens.LR {
		ec := EnsembleConfig{Name: fmt.Sprintf("lr%g", eta), Replicas: ens.Replicas, Steps: ens.Steps, LR: eta, Batch: ens.Batch,
			Sampling: ens.Sampling, LogEvery: ens.LogEvery, CheckpointEvery: ens.Steps, Seed: c.Seed}
		if _, err := RunEnsemble(context.Background(), ref, dirs, nil, ec, Shard{0, 1}, 2, nil); err != nil {
			t.Fatal(err)
		}
		e, err := MergeEnsemble(EnsembleDir(ref.Dir, ec.Name))
		if err != nil {
			t.Fatal(err)
		}
		g, err := analysis.VarianceGrowth(analysis.Ensemble{Eta: eta, Batch: ens.Batch, Steps: e.Steps, Proj: e.Proj, Diverged: e.Diverged},
			analysis.GrowthOptions{Resamples: 400, Level: level, Seed: uint64(100 + i)})
		if err != nil {
			t.Fatal(err)
		}
		cls, err := analysis.Classify(g, nil, analysis.ClassifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		exact, err := analysis.SubspaceVariance(analysis.SubspaceModel{Eta: eta, H: hv, C: cv, Noise: noise}, e.Steps, analysis.SubspaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range d {
			p, err := lr.Params(dirs[k], ens.Batch, analysis.WithReplacement)
			if err != nil {
				t.Fatal(err)
			}
			want := analysis.FlatSlope(eta, p.C)
			s := cls[k].LateSlope
			t.Logf("eta %g dir %d (eta lambda T %.3g): %s; late slope %.4g [%.4g, %.4g], exact eta^2 c %.4g (ratio %.3f)",
				eta, k, eta*lam[k]*T, cls[k].Class, s.Est, s.Lo, s.Hi, want, s.Est/want)
			if !slices.Contains(flat, k) {
				if cls[k].Class == analysis.Diffusive {
					t.Errorf("eta %g: stiff direction %d (eta lambda T %.3g) classified diffusive: %s", eta, k, eta*lam[k]*T, cls[k].Reason)
				}
				continue
			}
			// The exact expected late slope: the least-squares slope of the
			// exact variance curve over the classifier's late window.
			var ts, vs []float64
			for j, st := range e.Steps {
				if st >= cls[k].LateStart && st <= cls[k].End {
					ts = append(ts, float64(st))
					vs = append(vs, exact[j][k])
				}
			}
			exactSlope := olsSlopeTest(ts, vs)
			su2 := make([]float64, d-2)
			for j := range su2 {
				su2[j] = s2.At(j, k)
			}
			cr, err := analysis.CoupledFlatRate(eta, p.C, stiff, su2, math.Inf(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("    exact subspace-recursion late slope %.4g (%.4f x eta^2 c); coupled rate %.4g (%.4f x eta^2 c)",
				exactSlope, exactSlope/want, cr.Coupled, cr.Coupled/want)
			if !s.Contains(exactSlope) {
				t.Errorf("eta %g: flat direction %d late slope %.4g [%.4g, %.4g] excludes the exact recursion's %.4g", eta, k, s.Est, s.Lo, s.Hi, exactSlope)
			}
			if cls[k].Class != analysis.Diffusive {
				t.Errorf("eta %g: flat direction %d classified %s, want diffusive: %s", eta, k, cls[k].Class, cls[k].Reason)
			}
			if !s.Contains(want) {
				t.Errorf("eta %g: flat direction %d late slope %.4g [%.4g, %.4g] excludes the exact eta^2 c = %.4g", eta, k, s.Est, s.Lo, s.Hi, want)
			}
		}
		use := make([]bool, d)
		for _, k := range flat {
			use[k] = true
		}
		pt, err := analysis.MedianRate(eta, cls, use, level)
		if err != nil {
			t.Fatal(err)
		}
		points = append(points, pt)
	}
	fit, err := analysis.FitScan(points, level)
	if err != nil {
		t.Fatal(err)
	}
	st, tau := fit.PerStep.Slope, fit.PerTau.Slope
	t.Logf("scan: per-step exponent %.3f [%.3f, %.3f] (theory 2), D exponent %.3f [%.3f, %.3f] (theory 1), chi2 %.2f on %d dof",
		st.Est, st.Lo, st.Hi, tau.Est, tau.Lo, tau.Hi, fit.PerStep.Chi2, fit.PerStep.DoF)
	if !tau.Contains(1) || !st.Contains(2) {
		t.Errorf("exponent of D against eta %.3f [%.3f, %.3f] excludes 1 (per step %.3f [%.3f, %.3f])", tau.Est, tau.Lo, tau.Hi, st.Est, st.Lo, st.Hi)
	}
	if w := tau.Hi - tau.Lo; !(w < 0.5) || math.IsNaN(w) {
		t.Errorf("exponent interval [%.3f, %.3f] is %.2f wide: too wide to test anything", tau.Lo, tau.Hi, w)
	}
}

// olsSlopeTest is the least-squares slope of y on x.
func olsSlopeTest(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(x))
	}
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	return sxy / sxx
}
