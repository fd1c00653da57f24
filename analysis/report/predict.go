package report

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// surveyNoiseArrays are the survey's inputs of the subspace recursion
// (hessian/noise.npz): hv = V^T H V, cov = Cov_B(V^T g_B) and, per noise
// batch, curv = V^T H_B V.
type surveyNoiseArrays struct {
	k    int
	hv   *mat.SymDense
	cov  *mat.SymDense
	curv []*mat.SymDense
	// gram is V V^T of the probed directions (nil if directions.npy is
	// unreadable): the recursion assumes the directions it runs over are
	// orthonormal.
	gram *mat.SymDense
}

// orthonormal reports whether the directions keep are orthonormal to tol.
// Only those the recursion runs over matter: an unconverged bottom Ritz
// vector, excluded for its negative curvature, may overlap the others.
func (n *surveyNoiseArrays) orthonormal(keep []int, tol float64) bool {
	if n.gram == nil {
		return false
	}
	for a, i := range keep {
		for _, j := range keep[a:] {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(n.gram.At(i, j)-want) > tol {
				return false
			}
		}
	}
	return true
}

// readSurveyNoise loads hessian/noise.npz and checks that the probed
// directions are orthonormal. A survey written before the file existed
// has none: nil, nil.
func readSurveyNoise(dir string) (*surveyNoiseArrays, error) {
	path := filepath.Join(dir, "noise.npz")
	arrays, err := npy.ReadNPZ(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	byName := map[string]npy.Array{}
	for _, a := range arrays {
		byName[a.Name] = a
	}
	hv, ok := byName["hv"]
	if !ok || len(hv.Shape) != 2 || hv.Shape[0] != hv.Shape[1] {
		return nil, fmt.Errorf("%s: no (K, K) array hv", path)
	}
	k := hv.Shape[0]
	sym := func(x []float64) *mat.SymDense {
		s := mat.NewSymDense(k, nil)
		for i := range k {
			for j := i; j < k; j++ {
				s.SetSym(i, j, 0.5*(x[i*k+j]+x[j*k+i]))
			}
		}
		return s
	}
	n := &surveyNoiseArrays{k: k, hv: sym(hv.F64)}
	if c, ok := byName["cov"]; ok && len(c.F64) == k*k {
		n.cov = sym(c.F64)
	}
	if c, ok := byName["curv"]; ok && len(c.Shape) == 3 && c.Shape[1] == k && c.Shape[2] == k {
		for m := range c.Shape[0] {
			n.curv = append(n.curv, sym(c.F64[m*k*k:(m+1)*k*k]))
		}
	}
	shape, raw, err := npy.ReadNPY(filepath.Join(dir, "directions.npy"))
	if err == nil && len(shape) == 2 && shape[0] == k {
		v, _ := raw.([]float64)
		if v != nil {
			n.gram = gramRows(v, k, shape[1])
		}
	}
	return n, nil
}

// gramRows is V V^T for the k rows of length p in v.
func gramRows(v []float64, k, p int) *mat.SymDense {
	g := mat.NewSymDense(k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			var s float64
			for r := range p {
				s += v[i*p+r] * v[j*p+r]
			}
			g.SetSym(i, j, s)
		}
	}
	return g
}

// addSubspace gives every direction of e the subspace recursion's curve
// (THEORY.md section 7: every coupling among the probed directions kept),
// and every window-flat direction the coupled growth rate with the
// transfer from the stiff probed modes. scale converts the survey's noise
// to the ensemble's batch and sampling. It then counts, per class, how
// often each theory lies inside the measured interval of var(T).
func addSubspace(r *Report, e *Ensemble, man *train.EnsembleManifest, scale float64) {
	nz := r.Survey.noise
	if nz == nil || nz.cov == nil || len(nz.curv) < 2 || nz.k != len(e.Directions) {
		return
	}
	// The coupled rate needs only the per-batch curvatures, not an
	// orthonormal set.
	all := make([]int, nz.k)
	for i := range all {
		all[i] = i
	}
	addCoupled(r, e, man, scaledBatches(nz, all, scale))
	defer countHits(r, e)
	// Negative-curvature directions grow geometrically in the linearised
	// theory (to +Inf over long windows), and nulls do not move: the
	// recursion runs over the others, whose couplings it keeps.
	var keep []int
	for i := range e.Directions {
		if i < len(r.Survey.Directions) {
			sd := r.Survey.Directions[i]
			if sd.Null || sd.Class == probe.ClassNull || sd.Lambda < 0 && !e.Directions[i].WindowFlat {
				continue
			}
		}
		keep = append(keep, i)
	}
	if len(keep) == 0 {
		return
	}
	if !nz.orthonormal(keep, 1e-6) {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: the probed directions the subspace recursion would run over are not orthonormal, so it (which assumes they are) is not shown", man.Name))
		return
	}
	k := len(keep)
	sub := func(a *mat.SymDense, f func(i, j int, x float64) float64) *mat.SymDense {
		out := mat.NewSymDense(k, nil)
		for i, ii := range keep {
			for j := i; j < k; j++ {
				out.SetSym(i, j, f(ii, keep[j], a.At(ii, keep[j])))
			}
		}
		return out
	}
	hv := sub(nz.hv, func(_, _ int, x float64) float64 { return x })
	cov := sub(nz.cov, func(_, _ int, x float64) float64 { return scale * x })
	batches := scaledBatches(nz, keep, scale)
	noise, err := analysis.SampledCurvatureNoise(batches, hv)
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: no subspace prediction: %v", man.Name, err))
		return
	}
	model := analysis.SubspaceModel{Eta: man.LR, H: hv, C: cov, Noise: noise}
	steps := append([]int64{0}, e.Steps...)
	vars, err := analysis.SubspaceVariance(model, steps, analysis.SubspaceOptions{})
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: no subspace prediction: %v", man.Name, err))
		return
	}
	for a, i := range keep {
		d := &e.Directions[i]
		xs := make([]float64, len(steps))
		ys := make([]float64, len(steps))
		for j, s := range steps {
			xs[j], ys[j] = float64(s), vars[j][a]
		}
		d.Curves[TheorySubspace] = interpolated(xs, ys)
		if j := indexOfStep(e.Steps, d.FinalStep); j >= 0 {
			d.PredSubspace = num(vars[j+1][a])
		}
	}
	if k < len(e.Directions) {
		r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: the subspace recursion runs over the %d probed directions that are neither null nor of negative curvature (the linearised theory of a negative direction grows without bound)", man.Name, k))
	}
}

// scaledBatches returns the survey's per-batch V^T H_B V restricted to the
// directions keep, with every deviation A_m - H_V stretched by sqrt(scale):
// the curvature noise scales with the batch like the gradient noise.
func scaledBatches(nz *surveyNoiseArrays, keep []int, scale float64) []*mat.SymDense {
	k := len(keep)
	out := make([]*mat.SymDense, len(nz.curv))
	for m, a := range nz.curv {
		b := mat.NewSymDense(k, nil)
		for i, ii := range keep {
			for j := i; j < k; j++ {
				h := nz.hv.At(ii, keep[j])
				b.SetSym(i, j, h+math.Sqrt(scale)*(a.At(ii, keep[j])-h))
			}
		}
		out[m] = b
	}
	return out
}

// interpolated is the piecewise-linear curve through (xs, ys), held
// constant outside them.
func interpolated(xs, ys []float64) Curve {
	return func(t float64) float64 {
		switch {
		case t <= xs[0]:
			return ys[0]
		case t >= xs[len(xs)-1]:
			return ys[len(ys)-1]
		}
		lo, hi := 0, len(xs)-1
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if xs[mid] <= t {
				lo = mid
			} else {
				hi = mid
			}
		}
		f := (t - xs[lo]) / (xs[hi] - xs[lo])
		return ys[lo] + f*(ys[hi]-ys[lo])
	}
}

// addCoupled sets the coupled flat-direction rate (THEORY.md section 7)
// for each direction window-flat for this ensemble's window, with the stiff
// probed eigendirections (top-i, bottom-i) as the modes that feed it.
func addCoupled(r *Report, e *Ensemble, man *train.EnsembleManifest, batches []*mat.SymDense) {
	s2, err := analysis.CrossCurvatureNoise(batches, r.Survey.noise.hv)
	if err != nil {
		return
	}
	var stiff []int
	for k, d := range e.Directions {
		// The stiff modes that saturate: positive curvature (a negative
		// mode's linearised variance has no bound to feed from).
		if d.params != nil && strings.HasPrefix(d.Source, "top-") && d.params.Lambda > 0 {
			stiff = append(stiff, k)
		}
	}
	for _, k := range stiff {
		// A stiff mode past the linear stability edge (its variance grows
		// geometrically in the linearised theory) would feed the flat
		// directions without bound: the coupled rate means nothing then.
		if p := e.Directions[k].params; analysis.Regime(man.LR, *p) == analysis.Unstable {
			r.Notes = append(r.Notes, fmt.Sprintf("ensemble %s: no coupled flat-direction rate: the stiff mode %s (eta lambda %.3g) is unstable in the linearised theory, which would feed the flat directions without bound",
				man.Name, e.Directions[k].Source, man.LR*p.Lambda))
			return
		}
	}
	for u := range e.Directions {
		d := &e.Directions[u]
		if !d.WindowFlat || d.params == nil {
			continue
		}
		var modes []analysis.DirectionParams
		var su2 []float64
		for _, k := range stiff {
			modes = append(modes, *e.Directions[k].params)
			su2 = append(su2, s2.At(k, u))
		}
		rate, err := analysis.CoupledFlatRate(man.LR, d.params.C, modes, su2, float64(d.FinalStep))
		if err == nil {
			d.CoupledSlope = num(rate.Coupled)
		}
	}
}

// countHits counts, per measured class, the directions whose var(T)
// interval contains each theory's prediction, and for window-flat
// directions whose late-slope interval contains eta^2 c and the coupled
// rate, and writes one note per ensemble.
func countHits(r *Report, e *Ensemble) {
	type tally struct{ n, disc, lang, sub int }
	byClass := map[string]*tally{}
	var flat, flatDiag, flatCoupled int
	in := func(p *float64, ci []*float64) bool {
		return p != nil && len(ci) == 2 && ci[0] != nil && ci[1] != nil && *ci[0] <= *p && *p <= *ci[1]
	}
	for _, d := range e.Directions {
		if d.Class == string(analysis.Null) {
			continue
		}
		t := byClass[d.Class]
		if t == nil {
			t = &tally{}
			byClass[d.Class] = t
		}
		t.n++
		if in(d.PredDiscrete, d.VarFinalCI) {
			t.disc++
		}
		if in(d.PredLangevin, d.VarFinalCI) {
			t.lang++
		}
		if in(d.PredSubspace, d.VarFinalCI) {
			t.sub++
		}
		if d.WindowFlat {
			flat++
			if in(d.FlatSlope, d.LateSlopeCI) {
				flatDiag++
			}
			if in(d.CoupledSlope, d.LateSlopeCI) {
				flatCoupled++
			}
		}
	}
	var parts []string
	for _, cl := range []string{"confined", "diffusive", "unstable", "undetermined"} {
		if t := byClass[cl]; t != nil {
			parts = append(parts, fmt.Sprintf("%s %d: discrete %d, Langevin %d, subspace %d", cl, t.n, t.disc, t.lang, t.sub))
		}
	}
	note := fmt.Sprintf("ensemble %s: predictions of var(T) inside its interval, by measured class — %s", e.Name, strings.Join(parts, "; "))
	if flat > 0 {
		note += fmt.Sprintf(". Window-flat directions: late slope interval contains eta^2 c for %d of %d, the coupled rate for %d", flatDiag, flat, flatCoupled)
	}
	e.PredictionHits = note
	r.Notes = append(r.Notes, note)
}
