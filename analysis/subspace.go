package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// SamplingFactor returns f with Cov(batch mean) = f * per-example
// covariance for batches of b drawn from n examples: 1/b with replacement,
// (n-b)/(b(n-1)) without (finite-population correction). The same f scales
// the per-example curvature fluctuation in [PerExampleCurvatureNoise].
func SamplingFactor(n, b int, s Sampling) (float64, error) {
	switch s {
	case WithReplacement:
		if b < 1 || n < 1 {
			return 0, fmt.Errorf("sampling factor: batch %d from %d examples", b, n)
		}
		return 1 / float64(b), nil
	case WithoutReplacement:
		if b < 1 || b > n {
			return 0, fmt.Errorf("sampling factor: batch %d without replacement from %d examples", b, n)
		}
		if n == 1 {
			return 0, nil
		}
		return float64(n-b) / (float64(b) * float64(n-1)), nil
	default:
		return 0, fmt.Errorf("sampling factor: unknown sampling %q", s)
	}
}

// CurvatureNoise is an estimate of the curvature-noise map of the subspace
// covariance recursion (THEORY.md section 7),
//
//	X -> E[Delta X Delta],  Delta = H_{B,V} - H_V,
//
// stored as sum_i w_i E_i X E_i over symmetric K x K matrices E_i. The
// constructors say where the expectation comes from: sampled noise batches
// ([SampledCurvatureNoise]), exact per-example terms with a sampling
// weight ([PerExampleCurvatureNoise]), or any deviations with a weight
// ([NewCurvatureNoise]). It is immutable once built.
type CurvatureNoise struct {
	k int
	// eh is the K x rK row-major matrix [E_1 | E_2 | ... | E_r].
	eh []float64
	w  []float64
}

// NewCurvatureNoise returns the map X -> weight * sum_m dev_m X dev_m. The
// K x K deviations dev_m must share one size. When there are more of them
// than K(K+1)/2 (e.g. exact per-example terms) they are compressed, exactly
// up to rounding, to at most K(K+1)/2 terms: sum_m dev_m (x) dev_m realigns
// to the Gram matrix sum_m vec(dev_m) vec(dev_m)^T, whose eigenvectors give
// the new terms.
func NewCurvatureNoise(dev []*mat.SymDense, weight float64) (*CurvatureNoise, error) {
	if len(dev) == 0 {
		return nil, fmt.Errorf("curvature noise: no deviation matrices")
	}
	if !(weight >= 0) || math.IsInf(weight, 0) {
		return nil, fmt.Errorf("curvature noise: weight %g must be finite and not negative", weight)
	}
	k := dev[0].SymmetricDim()
	if k == 0 {
		return nil, fmt.Errorf("curvature noise: empty matrices")
	}
	for m, d := range dev {
		if d.SymmetricDim() != k {
			return nil, fmt.Errorf("curvature noise: matrix %d is %d x %d, want %d x %d", m, d.SymmetricDim(), d.SymmetricDim(), k, k)
		}
		if !finiteSym(d) {
			return nil, fmt.Errorf("curvature noise: matrix %d has a non-finite entry", m)
		}
	}
	n := k * (k + 1) / 2
	if len(dev) <= n {
		c := &CurvatureNoise{k: k, eh: make([]float64, k*k*len(dev)), w: make([]float64, len(dev))}
		for i, d := range dev {
			c.setTerm(i, len(dev), func(a, b int) float64 { return d.At(a, b) })
			c.w[i] = weight
		}
		return c, nil
	}
	// Compress: coordinates in the orthonormal basis of symmetric matrices
	// (e_a e_a^T, (e_a e_b^T + e_b e_a^T)/sqrt 2), Gram matrix, eigenvectors.
	gram := mat.NewSymDense(n, nil)
	x := make([]float64, n)
	xv := mat.NewVecDense(n, x)
	for _, d := range dev {
		symCoords(x, d, k)
		gram.SymRankOne(gram, 1, xv)
	}
	var es mat.EigenSym
	if !es.Factorize(gram, true) {
		return nil, fmt.Errorf("curvature noise: eigendecomposition of the %d x %d Gram matrix failed", n, n)
	}
	mu := es.Values(nil)
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	top := mu[n-1]
	var keep []int
	for i := n - 1; i >= 0; i-- {
		// Eigenvalues at rounding level of the largest carry no term.
		if mu[i] > 1e-13*top {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		keep = []int{n - 1} // all deviations zero: one zero-weight term keeps the shape
	}
	c := &CurvatureNoise{k: k, eh: make([]float64, k*k*len(keep)), w: make([]float64, len(keep))}
	for j, i := range keep {
		col := mat.Col(nil, i, &vecs)
		c.setTerm(j, len(keep), func(a, b int) float64 { return symEntry(col, a, b, k) })
		c.w[j] = weight * math.Max(mu[i], 0)
	}
	return c, nil
}

// SampledCurvatureNoise estimates E[Delta X Delta] from the projected
// Hessians A_m = V^T H_{B_m} V of M independently drawn noise batches.
// With mean = nil the deviations are taken from the sample mean and the
// sum divided by M - 1; with a known mean (H_V of the evaluation set the
// batches are drawn from) from that mean, divided by M. Both are unbiased
// for independent batches (THEORY.md section 8); disjoint slices of one
// shuffle are not independent.
func SampledCurvatureNoise(batches []*mat.SymDense, mean *mat.SymDense) (*CurvatureNoise, error) {
	dev, w, err := deviations(batches, mean)
	if err != nil {
		return nil, fmt.Errorf("sampled curvature noise: %w", err)
	}
	return NewCurvatureNoise(dev, w)
}

// PerExampleCurvatureNoise returns the exact curvature-noise map for
// batches of b drawn from the N examples whose projected Hessians
// V^T H_n V are given: E[Delta_B X Delta_B] = f mean_n (A_n - H) X (A_n - H)
// with H = mean_n A_n and f = [SamplingFactor](N, b, s) (1/b with
// replacement, (N-b)/(b(N-1)) without).
func PerExampleCurvatureNoise(examples []*mat.SymDense, b int, s Sampling) (*CurvatureNoise, error) {
	f, err := SamplingFactor(len(examples), b, s)
	if err != nil {
		return nil, fmt.Errorf("per-example curvature noise: %w", err)
	}
	dev, _, err := deviations(examples, nil)
	if err != nil {
		return nil, fmt.Errorf("per-example curvature noise: %w", err)
	}
	return NewCurvatureNoise(dev, f/float64(len(examples)))
}

// deviations returns A_m - mean (the sample mean when mean is nil) and the
// unbiased weight 1/M (known mean) or 1/(M-1) (sample mean).
func deviations(a []*mat.SymDense, mean *mat.SymDense) ([]*mat.SymDense, float64, error) {
	m := len(a)
	if m == 0 {
		return nil, 0, fmt.Errorf("no matrices")
	}
	k := a[0].SymmetricDim()
	for i, x := range a {
		if x.SymmetricDim() != k {
			return nil, 0, fmt.Errorf("matrix %d is %d x %d, want %d x %d", i, x.SymmetricDim(), x.SymmetricDim(), k, k)
		}
	}
	w := 1 / float64(m)
	if mean == nil {
		if m < 2 {
			return nil, 0, fmt.Errorf("1 matrix: a sample mean needs at least 2")
		}
		mean = mat.NewSymDense(k, nil)
		for _, x := range a {
			mean.AddSym(mean, x)
		}
		mean.ScaleSym(1/float64(m), mean)
		w = 1 / float64(m-1)
	} else if mean.SymmetricDim() != k {
		return nil, 0, fmt.Errorf("mean is %d x %d, matrices %d x %d", mean.SymmetricDim(), mean.SymmetricDim(), k, k)
	}
	dev := make([]*mat.SymDense, m)
	for i, x := range a {
		d := mat.NewSymDense(k, nil)
		for r := range k {
			for c := r; c < k; c++ {
				d.SetSym(r, c, x.At(r, c)-mean.At(r, c))
			}
		}
		dev[i] = d
	}
	return dev, w, nil
}

// SampledNoiseCov estimates C_V = Cov_B(V^T g_B) from the projected
// gradients g[m] = V^T g_{B_m} of M independently drawn noise batches:
// around the sample mean with denominator M - 1 when mean is nil, around
// a known mean (V^T grad L of the evaluation set) with denominator M.
func SampledNoiseCov(g [][]float64, mean []float64) (*mat.SymDense, error) {
	m := len(g)
	if m == 0 {
		return nil, fmt.Errorf("sampled noise covariance: no gradients")
	}
	k := len(g[0])
	if k == 0 {
		return nil, fmt.Errorf("sampled noise covariance: empty gradients")
	}
	for i, x := range g {
		if len(x) != k {
			return nil, fmt.Errorf("sampled noise covariance: gradient %d has %d entries, want %d", i, len(x), k)
		}
	}
	den := float64(m)
	mu := mean
	if mu == nil {
		if m < 2 {
			return nil, fmt.Errorf("sampled noise covariance: 1 gradient: a sample mean needs at least 2")
		}
		mu = make([]float64, k)
		for _, x := range g {
			for j, v := range x {
				mu[j] += v / float64(m)
			}
		}
		den = float64(m - 1)
	} else if len(mu) != k {
		return nil, fmt.Errorf("sampled noise covariance: mean has %d entries, gradients %d", len(mu), k)
	}
	c := mat.NewSymDense(k, nil)
	d := mat.NewVecDense(k, nil)
	for _, x := range g {
		for j, v := range x {
			d.SetVec(j, v-mu[j])
		}
		c.SymRankOne(c, 1/den, d)
	}
	return c, nil
}

// Dim returns K, the size of the matrices the map acts on.
func (c *CurvatureNoise) Dim() int { return c.k }

// Terms returns the number of terms w_i E_i X E_i the map is stored as.
func (c *CurvatureNoise) Terms() int { return len(c.w) }

// Apply sets dst = E[Delta X Delta]. dst must be K x K (or empty, when it
// is allocated) and must not be x.
func (c *CurvatureNoise) Apply(dst *mat.SymDense, x mat.Symmetric) {
	k := c.k
	if x.SymmetricDim() != k {
		panic(fmt.Sprintf("curvature noise: apply to a %d x %d matrix, want %d x %d", x.SymmetricDim(), x.SymmetricDim(), k, k))
	}
	xs := mat.NewDense(k, k, nil)
	for i := range k {
		for j := range k {
			xs.Set(i, j, x.At(i, j))
		}
	}
	ws := newNoiseWork(k, len(c.w))
	out := make([]float64, k*k)
	c.apply(out, xs.RawMatrix().Data, ws)
	if dst.IsEmpty() {
		dst.ReuseAsSym(k)
	}
	for i := range k {
		for j := i; j < k; j++ {
			dst.SetSym(i, j, 0.5*(out[i*k+j]+out[j*k+i]))
		}
	}
}

// noiseWork is scratch space for apply: Y = X [E_1 | ... | E_r].
type noiseWork struct{ y []float64 }

func newNoiseWork(k, r int) *noiseWork { return &noiseWork{y: make([]float64, k*k*r)} }

// apply sets out = sum_i w_i E_i X E_i for row-major K x K x: one product
// Y = X [E_1 | ... | E_r] (K x rK), then out += w_i E_i Y_i block by
// block, 4 r K^3 flops in all.
func (c *CurvatureNoise) apply(out, x []float64, ws *noiseWork) {
	k, r := c.k, len(c.w)
	if k <= smallK {
		c.applySmall(out, x, ws)
		return
	}
	// internal/gemm's AVX2 kernels: several times gonum's native Dgemm
	// on these shapes, and without its goroutines.
	gemm.Gemm(false, false, k, r*k, k, 1, x, k, c.eh, r*k, 0, ws.y, r*k)
	clear(out)
	for i := range r {
		if c.w[i] == 0 {
			continue
		}
		gemm.Gemm(false, false, k, k, k, c.w[i], c.eh[i*k:], r*k, ws.y[i*k:], r*k, 1, out, k)
	}
}

// smallK is the size below which plain loops beat BLAS calls, whose
// per-call overhead dominates for tiny matrices.
const smallK = 16

// applySmall is apply with plain loops.
func (c *CurvatureNoise) applySmall(out, x []float64, ws *noiseWork) {
	k, r := c.k, len(c.w)
	clear(out)
	y := ws.y[:k*k]
	for i := range r {
		w := c.w[i]
		if w == 0 {
			continue
		}
		e := c.eh[i*k:]
		// y = X E_i
		for a := range k {
			ya := y[a*k : a*k+k]
			clear(ya)
			for m := range k {
				xam := x[a*k+m]
				em := e[m*r*k : m*r*k+k]
				for b, v := range em {
					ya[b] += xam * v
				}
			}
		}
		// out += w E_i y
		for a := range k {
			oa := out[a*k : a*k+k]
			ea := e[a*r*k : a*r*k+k]
			for m, v := range ea {
				wv := w * v
				ym := y[m*k : m*k+k]
				for b := range oa {
					oa[b] += wv * ym[b]
				}
			}
		}
	}
}

// setTerm writes term i of r from the entry function.
func (c *CurvatureNoise) setTerm(i, r int, at func(a, b int) float64) {
	k := c.k
	for a := range k {
		for b := range k {
			c.eh[a*r*k+i*k+b] = at(a, b)
		}
	}
}

// term returns entry (a, b) of E_i.
func (c *CurvatureNoise) term(i, a, b int) float64 {
	return c.eh[a*len(c.w)*c.k+i*c.k+b]
}

// rotated returns the map in the basis Q: terms Q^T E_i Q (same weights).
func (c *CurvatureNoise) rotated(q *mat.Dense) *CurvatureNoise {
	k, r := c.k, len(c.w)
	out := &CurvatureNoise{k: k, eh: make([]float64, len(c.eh)), w: append([]float64(nil), c.w...)}
	e := mat.NewDense(k, k, nil)
	var tmp, rot mat.Dense
	for i := range r {
		for a := range k {
			for b := range k {
				e.Set(a, b, c.term(i, a, b))
			}
		}
		tmp.Mul(q.T(), e)
		rot.Mul(&tmp, q)
		out.setTerm(i, r, func(a, b int) float64 { return 0.5 * (rot.At(a, b) + rot.At(b, a)) })
	}
	return out
}

// symIndex is the position of (a, b), a <= b, in the packed coordinates of
// a symmetric K x K matrix: row-major upper triangle.
func symIndex(a, b, k int) int {
	if a > b {
		a, b = b, a
	}
	return a*k - a*(a-1)/2 + (b - a)
}

// symCoords writes the coordinates of the symmetric matrix s in the
// orthonormal basis e_a e_a^T, (e_a e_b^T + e_b e_a^T)/sqrt 2 (a < b).
func symCoords(dst []float64, s mat.Symmetric, k int) {
	for a := range k {
		for b := a; b < k; b++ {
			v := s.At(a, b)
			if a != b {
				v *= math.Sqrt2
			}
			dst[symIndex(a, b, k)] = v
		}
	}
}

// symEntry is entry (a, b) of the symmetric matrix with coordinates x.
func symEntry(x []float64, a, b, k int) float64 {
	v := x[symIndex(a, b, k)]
	if a != b {
		v /= math.Sqrt2
	}
	return v
}

func finiteSym(s mat.Symmetric) bool {
	k := s.SymmetricDim()
	for a := range k {
		for b := a; b < k; b++ {
			if v := s.At(a, b); math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// SubspaceMethod selects how [SubspaceRecursion] evaluates the recursion.
// Both methods are exact up to rounding.
type SubspaceMethod int

const (
	// SubspaceAuto picks whichever of the two costs fewer flops by the
	// estimates given for each.
	SubspaceAuto SubspaceMethod = iota
	// SubspaceIterate runs the recursion step by step in the eigenbasis of
	// H_V, where the drift part is elementwise: about 4 r K^3 flops per step
	// for a curvature-noise map of r terms (r <= min(M, K(K+1)/2)).
	SubspaceIterate
	// SubspaceSpectral diagonalises the linear map of the recursion on the
	// K(K+1)/2-dimensional space of symmetric matrices (it is self-adjoint
	// in the Frobenius inner product) and evaluates the geometric sums in
	// closed form: about 10 (K(K+1)/2)^3 flops once, then (K(K+1)/2)^2 per
	// requested step, whatever the step. Limited to K(K+1)/2 <=
	// MaxSpectralDim.
	SubspaceSpectral
	// SubspaceClosure is an approximation for large K, never chosen by
	// SubspaceAuto: in the eigenbasis of H_V it keeps only the diagonal of
	// S' (the variances of the eigenmodes) and drops their
	// cross-covariances, so the noise term becomes
	// E[Delta S' Delta]_jj = sum_l E[Delta_jl^2] S'_ll, a K x K symmetric
	// linear recursion solved in closed form (K^3 flops plus 4 r K^3 to
	// rotate the noise terms, whatever the steps). It keeps the transfer
	// between modes through the (cross-)curvature noise E[Delta_jl^2] and
	// the discrete step-size effects, and is exact when S' stays diagonal
	// in that basis (every input diagonal there, S'_0 included); the result
	// is diagonal in the eigenbasis of H_V.
	SubspaceClosure
)

// MaxSpectralDim is the largest K(K+1)/2 the spectral method accepts (its
// operator matrix takes 8 (K(K+1)/2)^2 bytes: 72 MB at K = 77).
const MaxSpectralDim = 3003

// SubspaceModel is the K x K covariance recursion over K orthonormal probed
// directions V (THEORY.md section 7):
//
//	S'_{t+1} = S' - eta (H_V S' + S' H_V) + eta^2 (H_V S' H_V + E[Delta S' Delta]) + eta^2 C_V.
type SubspaceModel struct {
	Eta float64
	// H is H_V = V^T H V from the evaluation-set Hessian.
	H *mat.SymDense
	// C is C_V = Cov_B(V^T g_B), e.g. from [SampledNoiseCov]; nil means 0.
	C *mat.SymDense
	// Noise is the curvature-noise map E[Delta X Delta]; nil means none
	// (every batch has the mean Hessian).
	Noise *CurvatureNoise
}

// SubspaceOptions configures [SubspaceRecursion]. The zero value starts
// from S'_0 = 0 and picks the method automatically.
type SubspaceOptions struct {
	// S0 is the starting covariance (nil: 0).
	S0     *mat.SymDense
	Method SubspaceMethod
}

// subspaceSetup is a model in the eigenbasis of H_V.
type subspaceSetup struct {
	k     int
	eta   float64
	q     *mat.Dense // eigenvectors of H_V (columns)
	drift []float64  // row-major K x K: a_jk - 1 = eta (eta l_j l_k - l_j - l_k)
	c     []float64  // eta^2 C_V in the eigenbasis, row-major
	s0    []float64  // S'_0 in the eigenbasis, row-major
	noise *CurvatureNoise
}

func (m SubspaceModel) setup(s0 *mat.SymDense) (*subspaceSetup, error) {
	if !(m.Eta > 0) || math.IsInf(m.Eta, 0) {
		return nil, fmt.Errorf("subspace recursion: learning rate %g must be positive and finite", m.Eta)
	}
	if m.H == nil || m.H.SymmetricDim() == 0 {
		return nil, fmt.Errorf("subspace recursion: no H_V")
	}
	k := m.H.SymmetricDim()
	if !finiteSym(m.H) {
		return nil, fmt.Errorf("subspace recursion: H_V has a non-finite entry")
	}
	if m.C != nil && (m.C.SymmetricDim() != k || !finiteSym(m.C)) {
		return nil, fmt.Errorf("subspace recursion: C_V must be a finite %d x %d matrix (is %d x %d)", k, k, m.C.SymmetricDim(), m.C.SymmetricDim())
	}
	if m.Noise != nil && m.Noise.k != k {
		return nil, fmt.Errorf("subspace recursion: curvature noise is %d x %d, H_V %d x %d", m.Noise.k, m.Noise.k, k, k)
	}
	if s0 != nil && (s0.SymmetricDim() != k || !finiteSym(s0)) {
		return nil, fmt.Errorf("subspace recursion: S0 must be a finite %d x %d matrix", k, k)
	}
	var es mat.EigenSym
	if !es.Factorize(m.H, true) {
		return nil, fmt.Errorf("subspace recursion: eigendecomposition of H_V failed")
	}
	l := es.Values(nil)
	q := new(mat.Dense)
	es.VectorsTo(q)
	st := &subspaceSetup{k: k, eta: m.Eta, q: q, drift: make([]float64, k*k)}
	for j := range k {
		for i := range k {
			st.drift[j*k+i] = m.Eta * (m.Eta*l[j]*l[i] - l[j] - l[i])
		}
	}
	rot := func(s *mat.SymDense, scale float64) []float64 {
		out := make([]float64, k*k)
		if s == nil {
			return out
		}
		var tmp, r mat.Dense
		tmp.Mul(q.T(), s)
		r.Mul(&tmp, q)
		for a := range k {
			for b := range k {
				out[a*k+b] = scale * 0.5 * (r.At(a, b) + r.At(b, a))
			}
		}
		return out
	}
	st.c = rot(m.C, m.Eta*m.Eta)
	st.s0 = rot(s0, 1)
	if m.Noise != nil {
		st.noise = m.Noise.rotated(q)
	}
	return st, nil
}

// back returns Q X Q^T for row-major eigenbasis x, symmetrised.
func (st *subspaceSetup) back(x []float64) *mat.SymDense {
	k := st.k
	var tmp, r mat.Dense
	tmp.Mul(st.q, mat.NewDense(k, k, x))
	r.Mul(&tmp, st.q.T())
	out := mat.NewSymDense(k, nil)
	for a := range k {
		for b := a; b < k; b++ {
			out.SetSym(a, b, 0.5*(r.At(a, b)+r.At(b, a)))
		}
	}
	return out
}

// SubspaceRecursion returns S'_t (K x K, in the basis of the probed
// directions) at each of steps (ascending, >= 0) of the recursion of m. It
// works in the eigenbasis of H_V; opts.Method chooses between stepping
// (cost proportional to the last step) and the closed-form spectral
// solution (cost independent of the steps), both exact up to rounding.
func SubspaceRecursion(m SubspaceModel, steps []int64, opts SubspaceOptions) ([]*mat.SymDense, error) {
	for i, t := range steps {
		if t < 0 || (i > 0 && t < steps[i-1]) {
			return nil, fmt.Errorf("subspace recursion: steps must be ascending and >= 0 (index %d: %d)", i, t)
		}
	}
	st, err := m.setup(opts.S0)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, nil
	}
	method := opts.Method
	n := st.k * (st.k + 1) / 2
	if method == SubspaceAuto {
		method = SubspaceIterate
		r := 0
		if st.noise != nil {
			r = len(st.noise.w)
		}
		k := float64(st.k)
		iter := float64(steps[len(steps)-1]) * (4*float64(r)*k*k*k + 4*k*k)
		nf := float64(n)
		spec := 10*nf*nf*nf + float64(r)*nf*nf*4 + float64(len(steps))*nf*nf*2
		if n <= MaxSpectralDim && spec < iter {
			method = SubspaceSpectral
		}
	}
	switch method {
	case SubspaceIterate:
		return st.iterate(steps), nil
	case SubspaceSpectral:
		if n > MaxSpectralDim {
			return nil, fmt.Errorf("subspace recursion: spectral method on K = %d directions needs a %d x %d operator (limit %d)", st.k, n, n, MaxSpectralDim)
		}
		return st.spectral(steps)
	case SubspaceClosure:
		return st.closure(steps)
	default:
		return nil, fmt.Errorf("subspace recursion: unknown method %d", method)
	}
}

// SubspaceVariance returns the predicted variance along each probed
// direction, the diagonal of S'_t, indexed [step][direction].
func SubspaceVariance(m SubspaceModel, steps []int64, opts SubspaceOptions) ([][]float64, error) {
	s, err := SubspaceRecursion(m, steps, opts)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(s))
	for i, x := range s {
		k := x.SymmetricDim()
		out[i] = make([]float64, k)
		for j := range k {
			out[i][j] = x.At(j, j)
		}
	}
	return out, nil
}

// iterate steps X_{t+1} = X + drift o X + eta^2 N(X) + eta^2 C in the
// eigenbasis, where the drift part (1 - eta l_j)(1 - eta l_k) - 1 is
// elementwise and formed without cancellation.
func (st *subspaceSetup) iterate(steps []int64) []*mat.SymDense {
	k := st.k
	x := append([]float64(nil), st.s0...)
	next := make([]float64, k*k)
	nx := make([]float64, k*k)
	var ws *noiseWork
	if st.noise != nil {
		ws = newNoiseWork(k, len(st.noise.w))
	}
	e2 := st.eta * st.eta
	out := make([]*mat.SymDense, 0, len(steps))
	var t int64
	for _, want := range steps {
		for ; t < want; t++ {
			if st.noise != nil {
				st.noise.apply(nx, x, ws)
			}
			for a := range k {
				for b := a; b < k; b++ {
					i := a*k + b
					v := x[i] + st.drift[i]*x[i] + st.c[i]
					if st.noise != nil {
						v += e2 * 0.5 * (nx[i] + nx[b*k+a])
					}
					next[i], next[b*k+a] = v, v
				}
			}
			x, next = next, x
		}
		out = append(out, st.back(x))
	}
	return out
}

// spectral evaluates S'_t = L^t S'_0 + sum_{j<t} L^j (eta^2 C) from the
// eigendecomposition of the map L - I on the orthonormal coordinates of
// symmetric matrices: with (L - I) v_i = delta_i v_i,
//
//	S'_t = sum_i [(1 + delta_i)^t <v_i, S'_0> + g_t(delta_i) <v_i, eta^2 C>] v_i,
//	g_t(delta) = ((1 + delta)^t - 1) / delta  (t at delta = 0),
//
// with the powers formed as exp(t log1p(delta)) as in [DiscreteVariance],
// so that nearly flat modes (delta near 0) keep full precision.
func (st *subspaceSetup) spectral(steps []int64) ([]*mat.SymDense, error) {
	k := st.k
	n := k * (k + 1) / 2
	op := mat.NewSymDense(n, nil)
	e2 := st.eta * st.eta
	if nz := st.noise; nz != nil {
		r := len(nz.w)
		// ev[(a*k+j)*r+i] = E_i[a, j]; entry ((j,k'),(a,b)) of the noise
		// part is 2 c_jk' c_ab sum_i w_i (E_ja E_k'b + E_jb E_k'a) with
		// c = 1/2 on the diagonal and 1/sqrt 2 off it.
		ev := make([]float64, k*k*r)
		wev := make([]float64, k*k*r)
		for i := range r {
			for a := range k {
				for j := range k {
					e := nz.term(i, a, j)
					ev[(a*k+j)*r+i] = e
					wev[(a*k+j)*r+i] = nz.w[i] * e
				}
			}
		}
		dot := func(ja, kb int) float64 {
			x, y := wev[ja*r:ja*r+r], ev[kb*r:kb*r+r]
			var s float64
			for i := range x {
				s += x[i] * y[i]
			}
			return s
		}
		cf := func(a, b int) float64 {
			if a == b {
				return 0.5
			}
			return 1 / math.Sqrt2
		}
		for j := range k {
			for kk := j; kk < k; kk++ {
				p := symIndex(j, kk, k)
				for a := range k {
					for b := a; b < k; b++ {
						q := symIndex(a, b, k)
						if q < p {
							continue
						}
						v := dot(j*k+a, kk*k+b) + dot(j*k+b, kk*k+a)
						op.SetSym(p, q, e2*2*cf(j, kk)*cf(a, b)*v)
					}
				}
			}
		}
	}
	for a := range k {
		for b := a; b < k; b++ {
			p := symIndex(a, b, k)
			op.SetSym(p, p, op.At(p, p)+st.drift[a*k+b])
		}
	}
	var es mat.EigenSym
	if !es.Factorize(op, true) {
		return nil, fmt.Errorf("subspace recursion: eigendecomposition of the %d x %d recursion operator failed", n, n)
	}
	delta := es.Values(nil)
	var v mat.Dense
	es.VectorsTo(&v)
	cq := make([]float64, n)
	s0q := make([]float64, n)
	symCoords(cq, mat.NewSymDense(k, symmetricCopy(st.c, k)), k)
	symCoords(s0q, mat.NewSymDense(k, symmetricCopy(st.s0, k)), k)
	var pc, ps mat.VecDense
	pc.MulVec(v.T(), mat.NewVecDense(n, cq))
	ps.MulVec(v.T(), mat.NewVecDense(n, s0q))
	coef := mat.NewVecDense(n, nil)
	var y mat.VecDense
	x := make([]float64, k*k)
	out := make([]*mat.SymDense, 0, len(steps))
	for _, t := range steps {
		tf := float64(t)
		for i, d := range delta {
			pow, geo := powerSum(d, tf)
			coef.SetVec(i, pow*ps.AtVec(i)+geo*pc.AtVec(i))
		}
		y.MulVec(&v, coef)
		yr := y.RawVector().Data
		for a := range k {
			for b := range k {
				x[a*k+b] = symEntry(yr, a, b, k)
			}
		}
		out = append(out, st.back(x))
	}
	return out, nil
}

// powerSum returns (1+d)^t and ((1+d)^t - 1)/d (t when d == 0), accurate
// for d near 0.
func powerSum(d, t float64) (pow, geo float64) {
	switch {
	case t == 0:
		return 1, 0
	case d == 0:
		return 1, t
	case d > -1:
		l := math.Log1p(d)
		return math.Exp(t * l), math.Expm1(t*l) / d
	default: // 1 + d <= 0: |d| >= 1, no cancellation; t is an integer
		p := math.Pow(1+d, t)
		return p, (p - 1) / d
	}
}

// symmetricCopy returns the dense data of a K x K row-major matrix for
// mat.NewSymDense (which reads the upper triangle).
func symmetricCopy(x []float64, k int) []float64 { return append([]float64(nil), x[:k*k]...) }

// closure evaluates the diagonal closure of [SubspaceClosure]: with
// s_j = S'_jj in the eigenbasis, s_{t+1} = s + (M - I) s + eta^2 c,
// (M - I)_jl = drift_jj [j == l] + eta^2 sum_i w_i (E_i)_jl^2, solved from
// the eigendecomposition of the symmetric M - I as in spectral.
func (st *subspaceSetup) closure(steps []int64) ([]*mat.SymDense, error) {
	k := st.k
	op := mat.NewSymDense(k, nil)
	e2 := st.eta * st.eta
	if nz := st.noise; nz != nil {
		for i, w := range nz.w {
			for j := range k {
				for l := j; l < k; l++ {
					e := nz.term(i, j, l)
					op.SetSym(j, l, op.At(j, l)+e2*w*e*e)
				}
			}
		}
	}
	for j := range k {
		op.SetSym(j, j, op.At(j, j)+st.drift[j*k+j])
	}
	var es mat.EigenSym
	if !es.Factorize(op, true) {
		return nil, fmt.Errorf("subspace recursion: eigendecomposition of the %d x %d closure operator failed", k, k)
	}
	delta := es.Values(nil)
	var v mat.Dense
	es.VectorsTo(&v)
	cd := make([]float64, k)
	s0d := make([]float64, k)
	for j := range k {
		cd[j], s0d[j] = st.c[j*k+j], st.s0[j*k+j]
	}
	var pc, ps, y mat.VecDense
	pc.MulVec(v.T(), mat.NewVecDense(k, cd))
	ps.MulVec(v.T(), mat.NewVecDense(k, s0d))
	coef := mat.NewVecDense(k, nil)
	x := make([]float64, k*k)
	out := make([]*mat.SymDense, 0, len(steps))
	for _, t := range steps {
		for i, d := range delta {
			pow, geo := powerSum(d, float64(t))
			coef.SetVec(i, pow*ps.AtVec(i)+geo*pc.AtVec(i))
		}
		y.MulVec(&v, coef)
		for j := range k {
			x[j*k+j] = y.AtVec(j)
		}
		out = append(out, st.back(x))
	}
	return out, nil
}
