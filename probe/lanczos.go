package probe

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// LanczosOptions configures Lanczos.
type LanczosOptions struct {
	// Top and Bottom are how many of the largest and of the smallest
	// (most negative) eigenpairs to compute.
	Top, Bottom int
	// MaxIter caps the Krylov dimension, i.e. the number of
	// Hessian-vector products. The default, used when MaxIter is 0, is
	// min(Dim, max(3*(Top+Bottom)+20, 60)); larger values are capped at Dim.
	MaxIter int
	// Tol is the convergence tolerance: every wanted Ritz pair must have
	// residual ||A v - theta v|| <= Tol * max|theta|. The default, used when
	// Tol is 0, is 1e-6.
	Tol float64
	// Seed seeds the PCG generator that draws the start vector and any
	// restart vectors.
	Seed uint64
}

// Eigenpair is an approximate eigenpair of an Operator.
type Eigenpair struct {
	// Value is the Ritz value.
	Value float64
	// Vector is the unit-norm Ritz vector, signed so that its
	// largest-magnitude component is positive.
	Vector []float64
	// Residual is the Lanczos estimate of ||A v - Value v||, obtained
	// without extra products from the last components of the tridiagonal
	// eigenvectors. With full reorthogonalisation it equals the true
	// residual up to rounding; RitzResidual computes the true one at the
	// cost of one product.
	Residual float64
}

// LanczosResult is the outcome of Lanczos.
type LanczosResult struct {
	// Top holds the largest eigenpairs, in descending order of Value.
	Top []Eigenpair
	// Bottom holds the smallest eigenpairs, in ascending order of Value
	// (most negative first).
	Bottom []Eigenpair
	// Iterations is the final Krylov dimension.
	Iterations int
	// Applies is the number of Hessian-vector products used; Lanczos uses
	// exactly one per iteration.
	Applies int
	// Converged reports whether every wanted pair met the tolerance before
	// MaxIter was reached.
	Converged bool
}

// breakdownTol is the relative size of the new Lanczos residual, compared
// with the largest product norm seen, below which the Krylov space is taken
// to be invariant. The discarded coupling still enters the residual
// estimates, so this choice affects cost, never the reported accuracy.
const breakdownTol = 1e-10

// Lanczos computes the opts.Top largest and opts.Bottom smallest
// eigenpairs of the symmetric operator op by the Lanczos method with full
// reorthogonalisation (classical Gram-Schmidt applied twice against every
// previous Lanczos vector), so no spurious copies of converged eigenvalues
// appear. It stores the whole Krylov basis: MaxIter vectors of length Dim.
//
// Convergence is checked every few iterations from the Ritz residual
// estimates |beta_m s_{m,i}|, which cost no products. If the Krylov space
// becomes invariant (beta ~ 0), the iteration continues from a fresh random
// vector orthogonal to the basis, so low-rank operators and clusters are
// handled. A single start vector sees only its projection onto each
// eigenspace, however: an exactly repeated eigenvalue is normally found
// once, and its other copies appear only if rounding or a restart
// introduces them. The eigenpairs returned are then accurate but may skip
// copies of a repeated eigenvalue.
//
// Reaching MaxIter before convergence is not an error: the best
// approximations are returned with Converged false and their residuals.
func Lanczos(op Operator, opts LanczosOptions) (*LanczosResult, error) {
	n := op.Dim()
	want := opts.Top + opts.Bottom
	switch {
	case opts.Top < 0 || opts.Bottom < 0:
		return nil, fmt.Errorf("lanczos: negative pair count: Top %d, Bottom %d", opts.Top, opts.Bottom)
	case want == 0:
		return nil, errors.New("lanczos: no eigenpairs requested (Top+Bottom == 0)")
	case want > n:
		return nil, fmt.Errorf("lanczos: Top+Bottom = %d exceeds dimension %d", want, n)
	case opts.MaxIter < 0:
		return nil, fmt.Errorf("lanczos: negative MaxIter %d", opts.MaxIter)
	case opts.MaxIter > 0 && opts.MaxIter < want:
		return nil, fmt.Errorf("lanczos: MaxIter %d is below Top+Bottom = %d", opts.MaxIter, want)
	case opts.Tol < 0 || math.IsNaN(opts.Tol):
		return nil, fmt.Errorf("lanczos: invalid Tol %v", opts.Tol)
	}
	maxIter := opts.MaxIter
	if maxIter == 0 {
		maxIter = max(3*want+20, 60)
	}
	maxIter = min(maxIter, n)
	tol := opts.Tol
	if tol == 0 {
		tol = 1e-6
	}

	rng := newRand(opts.Seed)
	k := newKrylov(op, "lanczos", maxIter)
	start := make([]float64, n)
	for i := range start {
		start[i] = rng.NormFloat64()
	}
	floats.Scale(1/floats.Norm(start, 2), start)
	k.q = append(k.q, start)

	lastCheck := 0
	for {
		broke, err := k.step()
		if err != nil {
			return nil, err
		}
		m := len(k.alpha)
		if m == maxIter || m == n {
			break
		}
		if broke && !k.restart(rng) {
			break // the basis spans the whole space
		}
		// Checking costs an m×m eigendecomposition and no products; a
		// geometric schedule keeps the total check cost near that of the
		// last one while wasting at most ~5% extra products.
		if m >= want && m-lastCheck >= max(1, m/20) {
			lastCheck = m
			ritz, err := k.ritz()
			if err != nil {
				return nil, err
			}
			if ritz.converged(opts.Top, opts.Bottom, tol) {
				break
			}
		}
	}

	m := len(k.alpha)
	if m < want {
		return nil, fmt.Errorf("lanczos: internal error: Krylov dimension %d below %d wanted pairs", m, want)
	}
	ritz, err := k.ritz()
	if err != nil {
		return nil, err
	}
	res := &LanczosResult{
		Iterations: m,
		Applies:    k.applies,
		Converged:  ritz.converged(opts.Top, opts.Bottom, tol),
	}
	for i := range opts.Top {
		res.Top = append(res.Top, k.pair(ritz, m-1-i))
	}
	for i := range opts.Bottom {
		res.Bottom = append(res.Bottom, k.pair(ritz, i))
	}
	return res, nil
}

// RitzResidual returns the true residual ||A v - Value v|| of p, at the
// cost of one product.
func RitzResidual(op Operator, p Eigenpair) (float64, error) {
	n := op.Dim()
	if len(p.Vector) != n {
		return 0, fmt.Errorf("ritz residual: vector length %d, operator dimension %d", len(p.Vector), n)
	}
	av := make([]float64, n)
	if err := apply(op, av, p.Vector, "ritz residual", 1); err != nil {
		return 0, err
	}
	floats.AddScaled(av, -p.Value, p.Vector)
	return floats.Norm(av, 2), nil
}

// krylov is the state of a Lanczos iteration with full reorthogonalisation,
// shared by Lanczos and SpectralDensity.
type krylov struct {
	op     Operator
	prefix string // for error messages
	// q holds the orthonormal Lanczos vectors; after a step it holds one
	// more vector than alpha, unless the step broke down.
	q [][]float64
	// alpha and beta are the diagonal and the computed couplings
	// beta_j = ||r_j||. coupled[j] is false where beta_j was dropped at a
	// breakdown, making the tridiagonal matrix block diagonal there.
	alpha, beta []float64
	coupled     []bool
	applies     int
	anorm       float64 // largest ||A q_j|| seen, a lower bound on ||A||
}

func newKrylov(op Operator, prefix string, capacity int) *krylov {
	return &krylov{
		op:      op,
		prefix:  prefix,
		q:       make([][]float64, 0, capacity+1),
		alpha:   make([]float64, 0, capacity),
		beta:    make([]float64, 0, capacity),
		coupled: make([]bool, 0, capacity),
	}
}

// step performs one Lanczos step from the last basis vector. It reports
// breakdown, when the new residual is negligible: no vector is appended
// then, and the caller either restarts or stops.
func (k *krylov) step() (breakdown bool, err error) {
	j := len(k.alpha)
	qj := k.q[j]
	w := make([]float64, len(qj))
	k.applies++
	if err := apply(k.op, w, qj, k.prefix, k.applies); err != nil {
		return false, err
	}
	k.anorm = max(k.anorm, floats.Norm(w, 2))
	a := floats.Dot(qj, w)
	floats.AddScaled(w, -a, qj)
	if j > 0 && k.coupled[j-1] {
		floats.AddScaled(w, -k.beta[j-1], k.q[j-1])
	}
	// Twice is enough (Kahan, Parlett): a second pass restores
	// orthogonality to working precision. The correction along q_j is
	// folded into alpha to keep the recurrence consistent.
	a += orthogonalize(w, k.q[:j+1], j)
	a += orthogonalize(w, k.q[:j+1], j)
	b := floats.Norm(w, 2)
	k.alpha = append(k.alpha, a)
	k.beta = append(k.beta, b)
	if b <= breakdownTol*k.anorm {
		k.coupled = append(k.coupled, false)
		return true, nil
	}
	k.coupled = append(k.coupled, true)
	floats.Scale(1/b, w)
	k.q = append(k.q, w)
	return false, nil
}

// restart appends a random unit vector orthogonal to the basis after a
// breakdown. It returns false if none can be found because the basis spans
// the space.
func (k *krylov) restart(rng *rand.Rand) bool {
	n := len(k.q[0])
	v := make([]float64, n)
	for range 3 {
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		before := floats.Norm(v, 2)
		orthogonalize(v, k.q, -1)
		orthogonalize(v, k.q, -1)
		if after := floats.Norm(v, 2); after > 1e-6*before {
			floats.Scale(1/after, v)
			k.q = append(k.q, v)
			return true
		}
	}
	return false
}

// orthogonalize removes from w its components along the orthonormal
// vectors basis by classical Gram-Schmidt and returns the component that
// was removed along basis[track] (0 if track is out of range).
func orthogonalize(w []float64, basis [][]float64, track int) float64 {
	c := project(w, basis)
	if track >= 0 && track < len(c) {
		return c[track]
	}
	return 0
}

// ritzSet is the eigendecomposition of the current tridiagonal matrix.
type ritzSet struct {
	values []float64 // ascending
	vecs   *mat.Dense
	resid  []float64 // residual estimate for each value
}

// ritz computes the Ritz values, the tridiagonal eigenvectors and the
// residual estimates. The estimate for Ritz pair i is the norm of the
// dropped couplings weighted by the eigenvector components:
// sqrt(sum_j (beta_j s_{j,i})^2) over the last step and every breakdown.
func (k *krylov) ritz() (*ritzSet, error) {
	m := len(k.alpha)
	t := mat.NewSymDense(m, nil)
	for j := range m {
		t.SetSym(j, j, k.alpha[j])
		if j+1 < m && k.coupled[j] {
			t.SetSym(j, j+1, k.beta[j])
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(t, true) {
		return nil, fmt.Errorf("%s: eigendecomposition of the %d×%d tridiagonal matrix failed", k.prefix, m, m)
	}
	rs := &ritzSet{values: eig.Values(nil), vecs: new(mat.Dense), resid: make([]float64, m)}
	eig.VectorsTo(rs.vecs)
	for i := range m {
		var s2 float64
		for j := range m {
			if j == m-1 || !k.coupled[j] {
				s := k.beta[j] * rs.vecs.At(j, i)
				s2 += s * s
			}
		}
		rs.resid[i] = math.Sqrt(s2)
	}
	return rs, nil
}

// converged reports whether the top and bottom wanted Ritz pairs all have
// residual estimates within tol times the largest |theta|.
func (rs *ritzSet) converged(top, bottom int, tol float64) bool {
	m := len(rs.values)
	if top+bottom > m {
		return false
	}
	scale := max(math.Abs(rs.values[0]), math.Abs(rs.values[m-1]))
	for i := range m {
		if (i < bottom || i >= m-top) && rs.resid[i] > tol*scale {
			return false
		}
	}
	return true
}

// pair assembles Ritz pair i as an Eigenpair.
func (k *krylov) pair(rs *ritzSet, i int) Eigenpair {
	v := make([]float64, len(k.q[0]))
	for j := range rs.values {
		floats.AddScaled(v, rs.vecs.At(j, i), k.q[j])
	}
	// The Ritz vector is unit in exact arithmetic; renormalise against
	// rounding.
	floats.Scale(1/floats.Norm(v, 2), v)
	fixSign(v)
	return Eigenpair{Value: rs.values[i], Vector: v, Residual: rs.resid[i]}
}
