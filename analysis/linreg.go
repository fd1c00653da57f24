package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Sampling says how a minibatch is drawn; the values match the training
// configuration's "with" and "without".
type Sampling string

// Minibatch sampling modes.
const (
	// WithReplacement draws b examples i.i.d. uniformly.
	WithReplacement Sampling = "with"
	// WithoutReplacement draws b distinct examples uniformly, independently
	// at every step. (An epoch shuffle makes consecutive batches
	// dependent; the recursion ignores that correlation.)
	WithoutReplacement Sampling = "without"
)

// LinReg is the exact theory of SGD on linear regression, per-example loss
// 0.5 (a_n . theta - y_n)^2 (THEORY.md section 2), around the least-squares
// solution theta*.
type LinReg struct {
	// A is the N x d data matrix and Y the targets.
	A *mat.Dense
	Y []float64
	// Theta is the least-squares solution theta*.
	Theta []float64
	// H is the mean Hessian A^T A / N.
	H *mat.SymDense
	// C1 is the covariance of the per-example gradients
	// g_n = a_n (a_n . theta* - y_n) over the data set (denominator N).
	C1 *mat.SymDense
}

// NewLinReg computes theta*, H and C1 for the data (A, y). A must have full
// column rank.
func NewLinReg(a *mat.Dense, y []float64) (*LinReg, error) {
	n, d := a.Dims()
	if n != len(y) {
		return nil, fmt.Errorf("linreg: %d rows for %d targets", n, len(y))
	}
	if n < d || d == 0 {
		return nil, fmt.Errorf("linreg: %d examples in dimension %d: need n >= d > 0", n, d)
	}
	var qr mat.QR
	qr.Factorize(a)
	var th mat.Dense
	if err := qr.SolveTo(&th, false, mat.NewDense(n, 1, append([]float64(nil), y...))); err != nil {
		return nil, fmt.Errorf("linreg: least squares: %w", err)
	}
	theta := mat.Col(nil, 0, &th)
	h := mat.NewSymDense(d, nil)
	h.SymOuterK(1/float64(n), a.T())
	// Per-example gradients g_n = r_n a_n; their mean is grad L(theta*) = 0
	// up to rounding, subtracted anyway.
	var res mat.VecDense
	res.MulVec(a, mat.NewVecDense(d, theta))
	g := mat.NewDense(n, d, nil)
	mean := make([]float64, d)
	for i := range n {
		r := res.AtVec(i) - y[i]
		for j := range d {
			v := r * a.At(i, j)
			g.Set(i, j, v)
			mean[j] += v / float64(n)
		}
	}
	for i := range n {
		for j := range d {
			g.Set(i, j, g.At(i, j)-mean[j])
		}
	}
	c1 := mat.NewSymDense(d, nil)
	c1.SymOuterK(1/float64(n), g.T())
	return &LinReg{A: mat.DenseCopyOf(a), Y: append([]float64(nil), y...), Theta: theta, H: h, C1: c1}, nil
}

// batchFactor returns f with Cov(batch mean) = f * population covariance:
// 1/b with replacement, (N-b)/(b(N-1)) without (finite-population
// correction). The same f multiplies C1 and the per-example fluctuation of
// H_B S H_B.
func (lr *LinReg) batchFactor(b int, s Sampling) (float64, error) {
	n, _ := lr.A.Dims()
	switch s {
	case WithReplacement:
		if b < 1 {
			return 0, fmt.Errorf("linreg: batch size %d", b)
		}
		return 1 / float64(b), nil
	case WithoutReplacement:
		if b < 1 || b > n {
			return 0, fmt.Errorf("linreg: batch size %d without replacement from %d examples", b, n)
		}
		if n == 1 {
			return 0, nil
		}
		return float64(n-b) / (float64(b) * float64(n-1)), nil
	default:
		return 0, fmt.Errorf("linreg: unknown sampling %q", s)
	}
}

// NoiseCov returns C, the covariance of the minibatch gradient at theta*:
// f C1 with f = 1/b (with replacement) or (N-b)/(b(N-1)) (without).
func (lr *LinReg) NoiseCov(b int, s Sampling) (*mat.SymDense, error) {
	f, err := lr.batchFactor(b, s)
	if err != nil {
		return nil, err
	}
	d := lr.H.SymmetricDim()
	c := mat.NewSymDense(d, nil)
	c.ScaleSym(f, lr.C1)
	return c, nil
}

// Params returns lambda, c and s2 (THEORY.md section 3) of the unit
// direction u at batch size b: lambda = u^T H u, c = u^T C u and
// s2 = Var_B(u^T H_B u) = f (E_n[(u . a_n)^4] - lambda^2).
func (lr *LinReg) Params(u []float64, b int, s Sampling) (DirectionParams, error) {
	f, err := lr.batchFactor(b, s)
	if err != nil {
		return DirectionParams{}, err
	}
	n, d := lr.A.Dims()
	if len(u) != d {
		return DirectionParams{}, fmt.Errorf("linreg: direction of length %d in dimension %d", len(u), d)
	}
	uv := mat.NewVecDense(d, u)
	var au mat.VecDense
	au.MulVec(lr.A, uv)
	var m4 float64
	for i := range n {
		x := au.AtVec(i)
		m4 += x * x * x * x / float64(n)
	}
	lam := mat.Inner(uv, lr.H, uv)
	return DirectionParams{Lambda: lam, C: f * mat.Inner(uv, lr.C1, uv), S2: f * (m4 - lam*lam)}, nil
}

// fourthMoment returns E_n[a_n a_n^T S a_n a_n^T] = (1/N) sum_n (a_n^T S a_n)
// a_n a_n^T in O(N d^2).
func (lr *LinReg) fourthMoment(dst *mat.SymDense, s *mat.SymDense, as, w *mat.Dense) {
	n, d := lr.A.Dims()
	as.Mul(lr.A, s) // row n is a_n^T S
	for i := range n {
		q := 0.0
		for j := range d {
			q += as.At(i, j) * lr.A.At(i, j)
		}
		for j := range d {
			w.Set(i, j, q*lr.A.At(i, j))
		}
	}
	// A^T diag(q) A / N, symmetrised.
	var m mat.Dense
	m.Mul(lr.A.T(), w)
	for i := range d {
		for j := i; j < d; j++ {
			dst.SetSym(i, j, 0.5*(m.At(i, j)+m.At(j, i))/float64(n))
		}
	}
}

// Recursion iterates the exact covariance recursion of SGD started at theta*
// (S_0 = 0, mean 0 for ever):
//
//	S_{t+1} = S_t - eta (H S_t + S_t H) + eta^2 E[H_B S_t H_B] + eta^2 C,
//	E[H_B S H_B] = H S H + f (E_n[a_n a_n^T S a_n a_n^T] - H S H),
//
// with f = 1/b with replacement and (N-b)/(b(N-1)) without (the pairwise
// covariance of distinct draws is -1/(N-1) of the per-example one), and
// C = f C1. It returns S_t at each of steps (ascending, >= 0).
func (lr *LinReg) Recursion(eta float64, b int, s Sampling, steps []int) ([]*mat.SymDense, error) {
	f, err := lr.batchFactor(b, s)
	if err != nil {
		return nil, err
	}
	for i, t := range steps {
		if t < 0 || (i > 0 && t < steps[i-1]) {
			return nil, fmt.Errorf("linreg recursion: steps must be ascending and >= 0 (index %d: %d)", i, t)
		}
	}
	n, d := lr.A.Dims()
	c, _ := lr.NoiseCov(b, s)
	cur := mat.NewSymDense(d, nil)
	next := mat.NewSymDense(d, nil)
	m4 := mat.NewSymDense(d, nil)
	as := mat.NewDense(n, d, nil)
	w := mat.NewDense(n, d, nil)
	var hs, hsh mat.Dense
	out := make([]*mat.SymDense, 0, len(steps))
	t := 0
	for _, want := range steps {
		for ; t < want; t++ {
			hs.Mul(lr.H, cur)
			hsh.Mul(&hs, lr.H)
			lr.fourthMoment(m4, cur, as, w)
			for i := range d {
				for j := i; j < d; j++ {
					v := cur.At(i, j) - eta*(hs.At(i, j)+hs.At(j, i)) +
						eta*eta*((1-f)*0.5*(hsh.At(i, j)+hsh.At(j, i))+f*m4.At(i, j)) +
						eta*eta*c.At(i, j)
					next.SetSym(i, j, v)
				}
			}
			cur, next = next, cur
		}
		out = append(out, mat.NewSymDense(d, append([]float64(nil), cur.RawSymmetric().Data...)))
	}
	return out, nil
}

// Langevin returns the covariance of the standard Fokker-Planck (Langevin)
// model dS/dtau = -(H S + S H) + eta C at tau = eta t for each t in steps,
// solved exactly in the eigenbasis of H:
// S_jk = eta C_jk (1 - exp(-(l_j + l_k) tau)) / (l_j + l_k), with the limit
// eta C_jk tau when l_j + l_k = 0.
func (lr *LinReg) Langevin(eta float64, b int, s Sampling, steps []int) ([]*mat.SymDense, error) {
	c, err := lr.NoiseCov(b, s)
	if err != nil {
		return nil, err
	}
	d := lr.H.SymmetricDim()
	var es mat.EigenSym
	if !es.Factorize(lr.H, true) {
		return nil, fmt.Errorf("linreg langevin: eigendecomposition of H failed")
	}
	l := es.Values(nil)
	var q, cq, tmp, sq mat.Dense
	es.VectorsTo(&q)
	tmp.Mul(q.T(), c)
	cq.Mul(&tmp, &q) // C in the eigenbasis
	out := make([]*mat.SymDense, 0, len(steps))
	for _, t := range steps {
		tau := eta * float64(t)
		se := mat.NewDense(d, d, nil)
		for j := range d {
			for k := range d {
				x := l[j] + l[k]
				g := tau
				if x != 0 {
					g = -math.Expm1(-x*tau) / x
				}
				se.Set(j, k, eta*cq.At(j, k)*g)
			}
		}
		tmp.Mul(&q, se)
		sq.Mul(&tmp, q.T())
		sym := mat.NewSymDense(d, nil)
		for i := range d {
			for j := i; j < d; j++ {
				sym.SetSym(i, j, 0.5*(sq.At(i, j)+sq.At(j, i)))
			}
		}
		out = append(out, sym)
	}
	return out, nil
}

// ProjectCov returns u^T S u for each covariance in s and direction in
// dirs, indexed [covariance][direction].
func ProjectCov(s []*mat.SymDense, dirs [][]float64) ([][]float64, error) {
	out := make([][]float64, len(s))
	for i, m := range s {
		d := m.SymmetricDim()
		out[i] = make([]float64, len(dirs))
		for k, u := range dirs {
			if len(u) != d {
				return nil, fmt.Errorf("project covariance: direction %d has length %d, want %d", k, len(u), d)
			}
			v := mat.NewVecDense(d, u)
			out[i][k] = mat.Inner(v, m, v)
		}
	}
	return out, nil
}
