package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// FlatOptions configures FlatDirections.
type FlatOptions struct {
	// K is the number of directions wanted.
	K int
	// HVPs is the budget of Hessian-vector products, certificates
	// included; the search stops when it is spent.
	HVPs int
	// Delta is the target certificate ||H u|| <= Delta. The search stops
	// as soon as every direction meets it. 0 asks for the lowest delta the
	// budget allows.
	Delta float64
	// Start holds the starting vectors, normally centred minibatch
	// gradients from NoiseStarts. They must be orthogonal to the exact
	// symmetry nulls of the loss (centred gradients are); random vectors
	// are not, and the search then returns nulls (see FlatDirections).
	// Pass about K of them: each contributes its own component in the
	// flat subspace, and more starts lower the polynomial degree a budget
	// reaches.
	Start [][]float64
	// MaxBasis caps the number of stored basis vectors (0: no cap, about
	// HVPs vectors of length Dim; a restart briefly holds 2K more). When
	// the basis reaches it, the search restarts from its K best vectors
	// and their residuals. That costs no products but converges more
	// slowly: on a 965-parameter MLP, 400 products reached delta 1.9e-4
	// uncapped, 3.3e-4 with MaxBasis 200 and 5.2e-4 with 100. It must be
	// at least 2K + len(Start).
	MaxBasis int
	// Certify, if not nil, makes the K certificates instead of the search's
	// operator: e.g. central differences certifying a search run on
	// cheaper forward ones (SurveyOptions.Products). It counts against
	// HVPs like the others.
	Certify Operator
}

// FlatDirection is one certified flat direction.
type FlatDirection struct {
	// Vector is the unit direction u.
	Vector []float64
	// HNorm is ||H u||, measured by one fresh product on the final unit
	// vector: the certificate. Every eigenvector with |lambda| > d then
	// carries weight at most (HNorm/d)^2 in u.
	HNorm float64
	// Rayleigh is u^T H u, from the same product.
	Rayleigh float64
}

// FlatResult is the outcome of FlatDirections.
type FlatResult struct {
	// Directions are orthonormal, in ascending order of HNorm.
	Directions []FlatDirection
	// HVPs is the number of products spent, certificates included.
	HVPs int
	// Delta is the largest HNorm among the directions: the certified
	// delta reached.
	Delta float64
	// Met reports that Delta is within the requested FlatOptions.Delta
	// (always true when none was requested).
	Met bool
	// Basis is the dimension of the space the directions were taken from,
	// Starts the number of independent start vectors, and Restarts the
	// number of restarts forced by FlatOptions.MaxBasis.
	Basis, Starts, Restarts int
	// Method describes the method in one line, for the report.
	Method string
}

// FlatStartStream is the first sampler stream for the minibatches of
// NoiseStarts: far from training (0), the replicas (1..R) and the noise
// probe (NoiseStream onward), so that the noise later measured along the
// directions does not reuse the batches that selected them.
const FlatStartStream = 1 << 41

// flatDeflateTol is the size of a new Krylov vector, relative to the
// largest product norm seen, below which it is dropped as numerically
// dependent. Exact symmetry nulls enter the basis only through rounding of
// the products (of order 1e-16 |g| / FD step for finite differences);
// normalising a residual that is itself near rounding level would turn that
// rounding into a unit null component. Dropping the residual instead
// perturbs H Q = Q T by at most this fraction of ||H||, which the fresh
// certificates measure anyway.
const flatDeflateTol = 1e-7

// FlatDirections searches, matrix-free, for K orthonormal directions u with
// small ||H u|| that are not exact symmetry nulls, and certifies each with
// one fresh product.
//
// Method: a block Krylov space K_m(H, R) is grown from the start block R
// (Arnoldi with one new vector per product, Ruhe's variant of block
// Lanczos, with full reorthogonalisation by classical Gram-Schmidt applied
// twice). The products satisfy H Q_m = Q_{m+b} T for a small (m+b) x m
// matrix T of orthogonalisation coefficients, so the unit vectors
// minimising ||H u|| over span(Q_m) are Q_m y for the smallest right
// singular vectors y of T: the minimal-residual extraction toward
// lambda = 0. Every filtered start p(H) r_i of degree below m/b lies in
// span(Q_m), so this is at least as good as any polynomial filter of that
// degree, Chebyshev filters in H^2 included (THEORY.md section 6), and it
// adapts to the spectrum instead of needing lambda_max and delta in
// advance; a block gives a whole near-null subspace from one run, with one
// independent noise component per start. Only Q and T are stored: (m+b)
// vectors of length Dim, unless o.MaxBasis caps them and forces thick
// restarts.
//
// Measured on a trained 965-parameter tanh MLP (lambda_max 0.13, 33 exact
// nulls, BenchmarkFlatDirections) with K = 8 and 8 starts: 100, 200 and
// 400 products certify delta = 1.5e-3, 6.3e-4 and 1.9e-4 (1.2%, 0.48% and
// 0.14% of lambda_max), and more than 99% of each direction lies in the
// eigenvectors with |lambda| <= 3 delta. Fewer starts reach a slightly
// lower delta (one start: 1.5e-4 at 400) but give directions with less
// gradient noise, since they share one noise sample.
//
// Exact symmetry nulls (H u = 0) are the best possible minimisers, so the
// space must not contain them: the Krylov space of a start block
// orthogonal to the null space stays orthogonal to it, because H maps
// into its range. Centred minibatch gradients are such starts (along a
// symmetry every per-example gradient has zero component); random starts
// are not, and the result is then mostly null. Rounding re-enters null
// components; flatDeflateTol keeps it from being amplified when the space
// becomes nearly invariant. Nothing here can tell a null from a flat
// direction: the caller should still measure the gradient noise c along
// each direction and flag nulls with FlagNulls.
//
// The search uses at most o.HVPs products. With o.Delta > 0 it checks the
// singular values every ~10% of growth and stops once the K-th smallest is
// within o.Delta; if a fresh certificate then exceeds o.Delta (finite
// differences are not exactly linear) it tightens the target and goes on
// while the budget lasts. Cancelling ctx stops it at the next product with
// an error wrapping ctx.Err().
func FlatDirections(ctx context.Context, h Operator, o FlatOptions) (*FlatResult, error) {
	n := h.Dim()
	switch {
	case n < 1:
		return nil, fmt.Errorf("flat: operator dimension %d", n)
	case o.K < 1:
		return nil, fmt.Errorf("flat: %d directions requested, want at least 1", o.K)
	case o.K > n:
		return nil, fmt.Errorf("flat: %d directions requested in dimension %d", o.K, n)
	case o.HVPs < 0:
		return nil, fmt.Errorf("flat: negative product budget %d", o.HVPs)
	case o.K > o.HVPs:
		return nil, fmt.Errorf("flat: %d directions need at least %d certifying products, budget is %d", o.K, o.K, o.HVPs)
	case !(o.Delta >= 0) || math.IsInf(o.Delta, 0):
		return nil, fmt.Errorf("flat: invalid target delta %v", o.Delta)
	case o.MaxBasis < 0:
		return nil, fmt.Errorf("flat: negative MaxBasis %d", o.MaxBasis)
	case len(o.Start) == 0:
		return nil, errors.New("flat: no start vectors (pass centred minibatch gradients, see NoiseStarts)")
	}
	if o.Certify != nil && o.Certify.Dim() != n {
		return nil, fmt.Errorf("flat: certifying operator has dimension %d, the search's %d", o.Certify.Dim(), n)
	}
	s := &flatSpace{op: contextOperator{ctx, h}, n: n}
	certify := s.op
	if o.Certify != nil {
		certify = contextOperator{ctx, o.Certify}
	}
	for i, v := range o.Start {
		if len(v) != n {
			return nil, fmt.Errorf("flat: start %d has length %d, operator dimension is %d", i, len(v), n)
		}
		nrm := floats.Norm(v, 2)
		if nrm == 0 || math.IsNaN(nrm) || math.IsInf(nrm, 0) {
			return nil, fmt.Errorf("flat: start %d is zero or not finite (norm %v)", i, nrm)
		}
		v = slices.Clone(v)
		if normalizeAgainst(v, s.basis) { // dependent starts add nothing
			s.basis = append(s.basis, v)
		}
	}
	b := len(s.basis)
	if need := max(b, o.K) + o.K; o.HVPs < need {
		return nil, fmt.Errorf("flat: budget of %d products is below the %d needed for a Krylov space of %d vectors (%d independent starts, %d directions) and %d certificates",
			o.HVPs, need, max(b, o.K), b, o.K, o.K)
	}
	// A restart keeps the K best vectors and their residual block, and
	// must leave room to grow. Keeping more was measured to converge more
	// slowly: their residual blocks crowd out the growth.
	keep := o.K
	if o.MaxBasis > 0 && o.MaxBasis < 2*keep+b {
		return nil, fmt.Errorf("flat: MaxBasis %d is below %d: a restart keeps %d vectors and their residuals, plus a block of %d to grow",
			o.MaxBasis, 2*keep+b, keep, b)
	}

	target := o.Delta
	lastCheck := 0
	var res *FlatResult
	for {
		// Grow the space while a product and the K certificates fit.
		for len(s.cols) < len(s.basis) && s.used+1+o.K <= o.HVPs {
			if o.MaxBasis > 0 && len(s.basis) >= o.MaxBasis {
				if err := s.restart(keep); err != nil {
					return nil, err
				}
				lastCheck = len(s.cols)
				continue
			}
			if err := s.grow(); err != nil {
				return nil, err
			}
			m := len(s.cols)
			if target > 0 && m >= o.K && m-lastCheck >= max(b, m/10) {
				lastCheck = m
				sv, err := smallSingular(s.cols, len(s.basis), o.K, false)
				if err != nil {
					return nil, err
				}
				if sv.values[o.K-1] <= target {
					break
				}
			}
		}
		m := len(s.cols)
		if m < o.K {
			return nil, fmt.Errorf("flat: the Krylov space became invariant at dimension %d, below the %d directions wanted", m, o.K)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("flat: %w", err)
		}
		us, err := s.smallest(o.K)
		if err != nil {
			return nil, err
		}
		dirs := make([]FlatDirection, o.K)
		for i, u := range us {
			// u is unit and orthogonal to the others up to rounding;
			// make it so exactly before certifying it.
			if !normalizeAgainst(u, us[:i]) {
				return nil, fmt.Errorf("flat: direction %d lost orthogonality", i)
			}
			fixSign(u)
			hu := make([]float64, n)
			s.used++
			if err := apply(certify, hu, u, "flat: certificate", s.used); err != nil {
				return nil, err
			}
			dirs[i] = FlatDirection{Vector: u, HNorm: floats.Norm(hu, 2), Rayleigh: dot(u, hu)}
		}
		slices.SortStableFunc(dirs, func(a, b FlatDirection) int { return cmp.Compare(a.HNorm, b.HNorm) })
		res = &FlatResult{Directions: dirs, HVPs: s.used, Delta: dirs[o.K-1].HNorm, Basis: m, Starts: b, Restarts: s.restarts}
		res.Met = o.Delta == 0 || res.Delta <= o.Delta
		canGrow := len(s.cols) < len(s.basis) && s.used+1+o.K <= o.HVPs
		if res.Met || !canGrow {
			break
		}
		// The estimate met the target but a certificate did not: aim
		// lower by the observed ratio and keep growing.
		target *= 0.9 * o.Delta / res.Delta
		lastCheck = m
	}
	res.Method = fmt.Sprintf("block Krylov space from %d start vectors (full reorthogonalisation, %d restarts), "+
		"the %d directions minimising ||H u|| over its final %d dimensions (smallest singular vectors of H Q), each certified by one fresh product",
		res.Starts, res.Restarts, o.K, res.Basis)
	return res, nil
}

// flatSpace is the state of the search: an orthonormal basis Q and the
// products of its first len(cols) vectors, H q_j = sum_i cols[j][i] q_i,
// i.e. H Q_m = Q T with T's column j equal to cols[j] (zero below).
type flatSpace struct {
	op       Operator
	n        int
	basis    [][]float64
	cols     [][]float64
	anorm    float64 // largest product norm seen, a lower bound on ||H||
	used     int     // products made
	restarts int
}

// grow applies H to the next basis vector, records its coefficients and
// appends the normalised residual unless it is negligible.
func (s *flatSpace) grow() error {
	w := make([]float64, s.n)
	s.used++
	if err := apply(s.op, w, s.basis[len(s.cols)], "flat", s.used); err != nil {
		return err
	}
	s.anorm = max(s.anorm, floats.Norm(w, 2))
	c := make([]float64, len(s.basis)+1)
	addCoefficients(c, w, s.basis)
	addCoefficients(c, w, s.basis)
	if nrm := floats.Norm(w, 2); nrm > flatDeflateTol*s.anorm {
		floats.Scale(1/nrm, w)
		s.basis = append(s.basis, w)
		c[len(c)-1] = nrm
	} else {
		c = c[:len(c)-1]
	}
	s.cols = append(s.cols, c)
	return nil
}

// smallest returns the k unit vectors Q_m y of the processed space with
// the smallest ||H Q_m y|| = ||T y||.
func (s *flatSpace) smallest(k int) ([][]float64, error) {
	sv, err := smallSingular(s.cols, len(s.basis), k, true)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, k)
	for i := range out {
		u := make([]float64, s.n)
		for j := range s.cols {
			floats.AddScaled(u, sv.vectors.At(j, i), s.basis[j])
		}
		out[i] = u
	}
	return out, nil
}

// restart shrinks the space to its keep best vectors V and the residual
// block of H V, a thick restart that bounds memory and costs no product:
// H V = Q T Y is known from the stored coefficients. The kept vectors lie
// in the old space, so the restart brings in no null components.
func (s *flatSpace) restart(keep int) error {
	m := len(s.cols)
	keep = min(keep, m)
	sv, err := smallSingular(s.cols, len(s.basis), keep, true)
	if err != nil {
		return err
	}
	basis := make([][]float64, keep)
	hv := make([][]float64, keep)
	ty := make([]float64, len(s.basis))
	for i := range keep {
		basis[i] = make([]float64, s.n)
		hv[i] = make([]float64, s.n)
		clear(ty)
		for j, c := range s.cols {
			y := sv.vectors.At(j, i)
			floats.AddScaled(basis[i], y, s.basis[j])
			floats.AddScaled(ty[:len(c)], y, c)
		}
		for l, t := range ty {
			floats.AddScaled(hv[i], t, s.basis[l])
		}
	}
	for i := range keep {
		r := slices.Clone(hv[i])
		orthogonalize(r, basis, -1)
		orthogonalize(r, basis, -1)
		if nrm := floats.Norm(r, 2); nrm > flatDeflateTol*s.anorm {
			floats.Scale(1/nrm, r)
			basis = append(basis, r)
		}
	}
	cols := make([][]float64, keep)
	for i := range keep {
		cols[i] = make([]float64, len(basis))
		for l, q := range basis {
			cols[i][l] = floats.Dot(q, hv[i])
		}
	}
	s.basis, s.cols = basis, cols
	s.restarts++
	return nil
}

// addCoefficients removes from w its components along the orthonormal
// basis by classical Gram-Schmidt and adds them to c[:len(basis)].
func addCoefficients(c, w []float64, basis [][]float64) {
	floats.Add(c[:len(basis)], project(w, basis))
}

// flatSingular holds the k smallest singular values of T, ascending, and,
// when asked, the corresponding right singular vectors as columns.
type flatSingular struct {
	values  []float64
	vectors *mat.Dense
}

// smallSingular returns the k smallest singular values (and vectors) of
// the rows x len(cols) matrix T whose column j is cols[j] (zero below its
// length). T is padded with zero rows to be at least square, which leaves
// its right singular vectors and values unchanged.
func smallSingular(cols [][]float64, rows, k int, vectors bool) (*flatSingular, error) {
	m := len(cols)
	r := max(rows, m)
	t := mat.NewDense(r, m, nil)
	for j, c := range cols {
		for i, x := range c {
			t.Set(i, j, x)
		}
	}
	var svd mat.SVD
	kind := mat.SVDNone
	if vectors {
		kind = mat.SVDThinV
	}
	if !svd.Factorize(t, kind) {
		return nil, fmt.Errorf("flat: singular value decomposition of the %d×%d coefficient matrix failed", r, m)
	}
	all := svd.Values(nil) // descending
	s := &flatSingular{values: make([]float64, k)}
	for i := range k {
		s.values[i] = all[m-1-i]
	}
	if vectors {
		var v mat.Dense
		svd.VTo(&v)
		s.vectors = mat.NewDense(m, k, nil)
		for i := range k {
			for j := range m {
				s.vectors.Set(j, i, v.At(j, m-1-i))
			}
		}
	}
	return s, nil
}

// NoiseStarts returns k centred minibatch gradients g_{B_j} - g(w0), the
// natural starts for FlatDirections. g(w0) is the mean gradient over all of
// ds (one pass, in chunks). B_j is a fresh minibatch of batch examples,
// the first batch of the data.NewSampler stream (seed, stream+j), as
// MinibatchNoise draws its batches; keep [stream, stream+k) apart from
// the noise probe's streams (FlatStartStream does), so that the noise
// measured along the directions is not measured on the batches that
// selected them.
//
// Along an exact symmetry null every per-example gradient has zero
// component, so these vectors are orthogonal to the null space, and so is
// any filter p(H) applied to them; their components in the flat subspace
// are the gradient noise that makes a flat direction diffuse. The model is
// left at w0.
func NoiseStarts(m models.Model, ds data.Dataset, w0 []float64, k, batch int, sampling data.Sampling, seed, stream uint64) ([][]float64, error) {
	if len(w0) != m.NumParams() {
		return nil, fmt.Errorf("noise starts: point has %d parameters, model has %d", len(w0), m.NumParams())
	}
	centre, err := meanGradient(m, ds, w0)
	if err != nil {
		return nil, fmt.Errorf("noise starts: %w", err)
	}
	return CentredGradients(m, ds, w0, centre, k, batch, sampling, seed, stream)
}

// CentredGradients is NoiseStarts with the centre given, e.g. the mean
// gradient over the evaluation set that the Hessian already computed,
// which spares the pass over a large ds. Any centre that is a mean of
// per-example gradients keeps the starts orthogonal to the symmetry nulls.
func CentredGradients(m models.Model, ds data.Dataset, w0, centre []float64, k, batch int, sampling data.Sampling, seed, stream uint64) ([][]float64, error) {
	p := m.NumParams()
	switch {
	case len(w0) != p:
		return nil, fmt.Errorf("noise starts: point has %d parameters, model has %d", len(w0), p)
	case len(centre) != p:
		return nil, fmt.Errorf("noise starts: centre has %d entries, model has %d parameters", len(centre), p)
	case k < 1:
		return nil, fmt.Errorf("noise starts: %d starts requested, want at least 1", k)
	}
	if sampling == "" {
		sampling = data.WithoutReplacement
	}
	m.SetParams(w0)
	defer m.SetParams(w0)
	var b data.Batch
	var idx []int
	out := make([][]float64, k)
	for j := range out {
		sampler, err := data.NewSampler(ds.Len(), batch, sampling, seed, stream+uint64(j))
		if err != nil {
			return nil, fmt.Errorf("noise starts: %w", err)
		}
		idx = sampler.Indices(0, idx)
		ds.Fill(&b, idx)
		g := make([]float64, p)
		if _, err := m.Grad(&b, g); err != nil {
			return nil, fmt.Errorf("noise starts: gradient of minibatch %d: %w", j, err)
		}
		floats.Sub(g, centre)
		out[j] = g
	}
	return out, nil
}

// meanGradientChunk bounds the examples filled into one batch by
// meanGradient, so that a large data set is never held in memory at once.
const meanGradientChunk = 1024

// meanGradient is the gradient at w0 of the mean loss over all of ds.
func meanGradient(m models.Model, ds data.Dataset, w0 []float64) ([]float64, error) {
	n, p := ds.Len(), m.NumParams()
	if n < 1 {
		return nil, errors.New("mean gradient: empty data set")
	}
	m.SetParams(w0)
	mean := make([]float64, p)
	g := make([]float64, p)
	var b data.Batch
	idx := make([]int, 0, meanGradientChunk)
	for lo := 0; lo < n; lo += meanGradientChunk {
		hi := min(lo+meanGradientChunk, n)
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		ds.Fill(&b, idx)
		if _, err := m.Grad(&b, g); err != nil {
			return nil, fmt.Errorf("mean gradient over examples %d..%d: %w", lo, hi-1, err)
		}
		floats.AddScaled(mean, float64(hi-lo)/float64(n), g)
	}
	return mean, nil
}
