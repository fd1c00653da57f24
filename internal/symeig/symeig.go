// Package symeig computes every eigenpair of a dense symmetric matrix in
// pure Go, faster than gonum's mat.EigenSym for the matrix sizes of
// sgdyn's dense Hessians (hundreds to several thousand).
//
// mat.EigenSym reduces the matrix to tridiagonal form and then runs the
// implicit QL/QR iteration with the rotations accumulated into the n x n
// eigenvector matrix (LAPACK's dsteqr), which costs about 6n^3 flops of
// poorly vectorised rotation updates and dominates its time. Here the
// reduction to tridiagonal form runs its matrix-vector and rank-2k products
// on two cores (tridiagonalize), the tridiagonal matrix is split where its
// couplings are negligible, the eigenvalues of each piece come from the
// root-free QL/QR iteration (dsterf, O(n^2)), its eigenvectors from
// inverse iteration with reorthogonalisation against the vectors of close
// eigenvalues (the method of LAPACK's dstein), and the back-transformation
// applies the Householder reflectors in blocks (dormqr).
//
// Hessians have wide bands of close eigenvalues (thousands within 1e-3
// ||A|| near zero), where dstein's vector-by-vector reorthogonalisation
// costs O(n k^2) memory-bound operations for a chain of k close values.
// Three changes keep that cost down without losing accuracy: a vector is
// orthogonalised only against the vectors whose eigenvalues lie near its
// own (farther ones are orthogonal to it to about eps ||T|| / distance
// already, by the residual bound); the vectors are computed in panels
// whose orthogonalisation against the earlier vectors is two matrix
// products; and a tight cluster of eigenvalues that the shifts cannot tell
// apart is computed as one invariant subspace by block inverse iteration
// and Rayleigh-Ritz.
package symeig

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"gonum.org/v1/gonum/blas"
	blasgonum "gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// Factorize returns the eigenvalues of a in ascending order and the
// matrix whose column i is the unit eigenvector of eigenvalue i. The
// result depends only on a (not on scheduling).
func Factorize(a mat.Symmetric) (values []float64, vectors *mat.Dense, err error) {
	n := a.SymmetricDim()
	if n == 0 {
		return nil, nil, errors.New("symeig: empty matrix")
	}
	impl := gonum.Implementation{}
	q := make([]float64, n*n) // the lower triangle is referenced
	for i := range n {
		for j := 0; j <= i; j++ {
			v := a.At(i, j)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("symeig: element (%d, %d) is %v", i, j, v)
			}
			q[i*n+j] = v
		}
	}
	if n == 1 {
		return []float64{q[0]}, mat.NewDense(1, 1, []float64{1}), nil
	}
	d, e, tau := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
	tridiagonalize(n, q, d, e, tau)
	work := make([]float64, 1)

	values, z, err := tridiagonalEigen(d, e)
	if err != nil {
		return nil, nil, err
	}
	// Eigenvectors of A are [1 0; 0 Q] z, where Q is the product of the
	// reflectors stored below the subdiagonal of q.
	impl.Dormqr(blas.Left, blas.NoTrans, n-1, n, n-1, q[n:], n, tau, z[n:], n, work, -1)
	if need := int(work[0]); need > len(work) {
		work = make([]float64, need)
	}
	impl.Dormqr(blas.Left, blas.NoTrans, n-1, n, n-1, q[n:], n, tau, z[n:], n, work, len(work))
	return values, mat.NewDense(n, n, z), nil
}

// tridiagonalEigen returns the ascending eigenvalues of the symmetric
// tridiagonal matrix T with diagonal d and off-diagonal e, and its unit
// eigenvectors as the columns of the row-major n x n matrix z. T is first
// split into unreduced pieces where |e[i]| <= eps ||T||, which changes it
// by no more than rounding in the tridiagonalisation already did.
func tridiagonalEigen(d, e []float64) (values, z []float64, err error) {
	n := len(d)
	tnorm := tridiagonalNorm(d, e)
	small := 0x1p-52 * tnorm
	type piece struct{ start, size int }
	var pieces []piece
	start := 0
	for i := range n {
		if i == n-1 || math.Abs(e[i]) <= small {
			pieces = append(pieces, piece{start, i + 1 - start})
			start = i + 1
		}
	}
	// An eigenpair by its piece and its index within the piece.
	type pair struct {
		value        float64
		piece, index int
	}
	pairs := make([]pair, 0, n)
	rows := make([][]float64, len(pieces)) // piece p's vectors as rows
	for p, pc := range pieces {
		dp := d[pc.start : pc.start+pc.size]
		ep := e[pc.start : pc.start+pc.size-1]
		w := slices.Clone(dp)
		if !(gonum.Implementation{}).Dsterf(pc.size, w, slices.Clone(ep)) {
			return nil, nil, errors.New("symeig: tridiagonal QL/QR iteration did not converge")
		}
		slices.Sort(w)
		rows[p] = pieceVectors(dp, ep, w, uint64(pc.start))
		for k, v := range w {
			pairs = append(pairs, pair{v, p, k})
		}
	}
	slices.SortStableFunc(pairs, func(a, b pair) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	values = make([]float64, n)
	z = make([]float64, n*n)
	for col, pr := range pairs {
		values[col] = pr.value
		pc := pieces[pr.piece]
		v := rows[pr.piece][pr.index*pc.size : (pr.index+1)*pc.size]
		for i, x := range v {
			z[(pc.start+i)*n+col] = x
		}
	}
	return values, z, nil
}

func tridiagonalNorm(d, e []float64) float64 {
	n := len(d)
	var tnorm float64
	for i := range n {
		r := math.Abs(d[i])
		if i > 0 {
			r += math.Abs(e[i-1])
		}
		if i < n-1 {
			r += math.Abs(e[i])
		}
		tnorm = math.Max(tnorm, r)
	}
	return tnorm
}

// panelRows is the number of vectors computed and orthogonalised together.
const panelRows = 48

// wideTol (times ortol) is the reach of the last orthogonalisation pass.
// Measured on a Hessian spectrum at n = 2000: max |V^T V - I| = 1.2e-12
// without it, 4e-13 with 3, 1.2e-13 with 10, for half again the time of
// the eigenvectors at 3 and twice at 10.
const wideTol = 5

// pieceVectors returns, as the rows of a row-major n x n matrix, the unit
// eigenvectors of the unreduced tridiagonal matrix (d, e) for its ascending
// eigenvalues w, by inverse iteration. As in LAPACK's dstein, eigenvalues
// closer than ortol = 1e-3 ||T|| to each other need explicit
// orthogonalisation; here vector j is orthogonalised against the earlier
// vectors whose eigenvalues lie within ortol of w[j] (plus the rest of its
// panel), and once more at the end against those within wideTol ortol,
// which brings the overlaps of vectors just outside ortol, up to about
// 10 eps ||T|| / ortol from rounding in the solves, down to about a tenth
// of that.
// seed makes the random start vectors differ between pieces.
func pieceVectors(d, e, w []float64, seed uint64) []float64 {
	n := len(d)
	z := make([]float64, n*n)
	if n == 1 {
		z[0] = 1
		return z
	}
	tnorm := tridiagonalNorm(d, e)
	if tnorm == 0 {
		tnorm = 1
	}
	s := &panelSolver{d: d, e: e, n: n, pert: 10 * 0x1p-52 * tnorm, seed: seed}
	ortol := 1e-3 * tnorm
	// The first earlier vectors within ortol and wideTol ortol of the panel's
	// first eigenvalue.
	lo, loWide := 0, 0
	tight := func(j int) bool { return j+1 < n && w[j+1]-w[j] <= tightTol*tnorm }
	for j0 := 0; j0 < n; {
		for lo < j0 && w[j0]-w[lo] > ortol {
			lo++
		}
		for loWide < j0 && w[j0]-w[loWide] > wideTol*ortol {
			loWide++
		}
		j1 := j0 + 1
		if tight(j0) {
			for tight(j1 - 1) {
				j1++
			}
			s.cluster(z, w, j0, j1, lo, loWide)
			j0 = j1
			continue
		}
		for j1 < n && j1-j0 < panelRows && w[j1]-w[j1-1] <= ortol && !tight(j1) {
			j1++
		}
		s.solve(z[j0*n:j1*n], z[lo*n:j0*n], z[loWide*n:j0*n], w[j0:j1], j0)
		j0 = j1
	}
	return z
}

// tightTol (times ||T||) bounds the gaps inside a tight cluster: there the
// eigenvalues are too close for the shifts of inverse iteration to tell
// their vectors apart (vector after vector would converge to the same
// directions, and the orthogonalisation against them would magnify the
// earlier vectors' errors), so the cluster is computed as one invariant
// subspace.
const tightTol = 100 * 0x1p-52

// cluster fills rows j0..j1-1 of z, whose eigenvalues w[j0:j1] form a tight
// cluster, by subspace (block inverse) iteration with one shift just below
// the cluster, so that every direction inside it is magnified about
// equally, followed by Rayleigh-Ritz within the subspace. Rows lo..j0-1 are
// the earlier vectors within ortol, loWide..j0-1 within wideTol ortol.
func (s *panelSolver) cluster(z, w []float64, j0, j1, lo, loWide int) {
	n, m := s.n, j1-j0
	x := z[j0*n : j1*n]
	for r := range m {
		s.randomize(x[r*n:(r+1)*n], j0+r, 0)
	}
	sigma := w[j0] - math.Max(w[j1-1]-w[j0], s.pert)
	// orthonormalize orthonormalises the cluster's rows panel by panel
	// against the earlier rows from first on.
	orthonormalize := func(first int) {
		for p0 := j0; p0 < j1; p0 += panelRows {
			p1 := min(p0+panelRows, j1)
			for r := p0; r < p1; r++ {
				scaleToUnit(z[r*n : (r+1)*n])
			}
			s.orthogonalize(z[p0*n:p1*n], z[first*n:p0*n], p1-p0)
		}
	}
	for range 3 {
		orthonormalize(lo)
		s.forRows(m, func(r int, f *triLU) {
			f.factor(s.d, s.e, sigma, s.pert)
			f.solve(x[r*n : (r+1)*n])
		})
	}
	orthonormalize(lo)
	orthonormalize(loWide)

	// Rayleigh-Ritz: the eigenvectors of H = X T X^T rotate the rows of X
	// into the eigenvectors of T within the subspace.
	y := make([]float64, m*n)
	for r := range m {
		tridiagonalMul(y[r*n:(r+1)*n], s.d, s.e, x[r*n:(r+1)*n])
	}
	bl := blasgonum.Implementation{}
	h := make([]float64, m*m)
	bl.Dgemm(blas.NoTrans, blas.Trans, m, m, n, 1, x, n, y, n, 0, h, m)
	hs := mat.NewSymDense(m, nil)
	for i := range m {
		for j := i; j < m; j++ {
			hs.SetSym(i, j, 0.5*(h[i*m+j]+h[j*m+i]))
		}
	}
	var es mat.EigenSym
	if !es.Factorize(hs, true) {
		return // keep the orthonormal basis of the subspace
	}
	var u mat.Dense
	es.VectorsTo(&u)
	copy(y, x)
	ut := u.RawMatrix()
	bl.Dgemm(blas.Trans, blas.NoTrans, m, n, m, 1, ut.Data, ut.Stride, y, n, 0, x, n)
}

// tridiagonalMul sets y = T x for the tridiagonal T with diagonal d and
// off-diagonal e.
func tridiagonalMul(y, d, e, x []float64) {
	n := len(d)
	for i := range n {
		v := d[i] * x[i]
		if i > 0 {
			v += e[i-1] * x[i-1]
		}
		if i < n-1 {
			v += e[i] * x[i+1]
		}
		y[i] = v
	}
}

// panelSolver computes a panel of eigenvectors of one tridiagonal piece.
type panelSolver struct {
	d, e  []float64
	n     int
	pert  float64
	seed  uint64
	coef  []float64
	lu    [2]*triLU
	norms []float64
}

// solve fills the rows of x with unit eigenvectors for the eigenvalues
// shifts (close to each other), orthogonal to the rows of prevWide (whose
// suffix prev is orthogonalised against in every iteration) and to each
// other. first is the index of the panel's first vector.
func (s *panelSolver) solve(x, prev, prevWide, shifts []float64, first int) {
	n, b := s.n, len(shifts)
	for r := range b {
		s.randomize(x[r*n:(r+1)*n], first+r, 0)
	}
	if cap(s.norms) < b {
		s.norms = make([]float64, b)
	}
	norms := s.norms[:b]
	// Growth of a unit vector by 1/(eps ||T||) means it has converged.
	converged := 1e-1 / s.pert
	for it := range 5 {
		for r := range b {
			scaleToUnit(x[r*n : (r+1)*n])
		}
		s.orthogonalize(x, prev, b)
		done := true
		s.forRows(b, func(r int, f *triLU) {
			xr := x[r*n : (r+1)*n]
			f.factor(s.d, s.e, shifts[r], s.pert)
			f.solve(xr)
			norms[r] = norm(xr)
		})
		for r, nx := range norms {
			switch {
			case !(nx > 0) || math.IsInf(nx, 0):
				s.randomize(x[r*n:(r+1)*n], first+r, it+1)
				done = false
			case nx < converged:
				done = false
			}
		}
		if done {
			break
		}
	}
	for _, p := range [][]float64{prev, prevWide} {
		for r := range b {
			scaleToUnit(x[r*n : (r+1)*n])
		}
		s.orthogonalize(x, p, b)
	}
}

// orthogonalize projects the b rows of x once onto the orthogonal
// complement of the rows of prev (two matrix products), then orthonormalises
// them in order by Gram-Schmidt.
func (s *panelSolver) orthogonalize(x, prev []float64, b int) {
	n := s.n
	bl := blasgonum.Implementation{}
	if m := len(prev) / n; m > 0 {
		if cap(s.coef) < b*m {
			s.coef = make([]float64, b*m)
		}
		c := s.coef[:b*m]
		bl.Dgemm(blas.NoTrans, blas.Trans, b, m, n, 1, x, n, prev, n, 0, c, m)
		bl.Dgemm(blas.NoTrans, blas.NoTrans, b, n, m, -1, c, m, prev, n, 1, x, n)
	}
	if cap(s.coef) < b {
		s.coef = make([]float64, b)
	}
	for r := range b {
		xr := x[r*n : (r+1)*n]
		if r > 0 {
			c := s.coef[:r]
			bl.Dgemv(blas.NoTrans, r, n, 1, x, n, xr, 1, 0, c, 1)
			bl.Dgemv(blas.Trans, r, n, -1, x, n, c, 1, 1, xr, 1)
		}
		scaleToUnit(xr)
	}
}

// forRows runs fn for rows 0..b-1 on two goroutines, each with its own
// factorisation; every row's result depends only on the row.
func (s *panelSolver) forRows(b int, fn func(r int, f *triLU)) {
	for k := range s.lu {
		if s.lu[k] == nil {
			s.lu[k] = newTriLU(s.n)
		}
	}
	if b == 1 {
		fn(0, s.lu[0])
		return
	}
	var wg sync.WaitGroup
	for k := range s.lu {
		wg.Go(func() {
			for r := k; r < b; r += len(s.lu) {
				fn(r, s.lu[k])
			}
		})
	}
	wg.Wait()
}

// randomize fills x with a start vector that depends only on the piece,
// the vector's index and the attempt.
func (s *panelSolver) randomize(x []float64, index, attempt int) {
	rng := rand.New(rand.NewPCG(s.seed<<20|uint64(index), uint64(attempt)))
	for i := range x {
		x[i] = rng.Float64()*2 - 1
	}
}

func norm(x []float64) float64 {
	return blasgonum.Implementation{}.Dnrm2(len(x), x, 1)
}

func scaleToUnit(x []float64) {
	if nx := norm(x); nx > 0 {
		blasgonum.Implementation{}.Dscal(len(x), 1/nx, x, 1)
	}
}

// triLU is the LU factorisation with partial pivoting of T - shift I for a
// tridiagonal T: U has the diagonal u1 and two superdiagonals u2, u3; l
// holds the multipliers and swapped[k] the row interchange at step k.
type triLU struct {
	u1, u2, u3, l []float64
	swapped       []bool
}

func newTriLU(n int) *triLU {
	return &triLU{u1: make([]float64, n), u2: make([]float64, n), u3: make([]float64, n), l: make([]float64, n), swapped: make([]bool, n)}
}

func (f *triLU) factor(d, e []float64, shift, pert float64) {
	n := len(d)
	for i := range n {
		f.u1[i] = d[i] - shift
		f.u3[i] = 0
		if i < n-1 {
			f.u2[i] = e[i]
		} else {
			f.u2[i] = 0
		}
	}
	for k := 0; k < n-1; k++ {
		c := e[k] // the subdiagonal element below u1[k]
		if math.Abs(f.u1[k]) >= math.Abs(c) {
			f.swapped[k] = false
			if f.u1[k] == 0 {
				f.u1[k] = pert
			}
			f.l[k] = c / f.u1[k]
			f.u1[k+1] -= f.l[k] * f.u2[k]
			continue
		}
		// Swap rows k and k+1: row k becomes [c, u1[k+1], u2[k+1]].
		f.swapped[k] = true
		f.l[k] = f.u1[k] / c
		oldU2k, oldU1k1 := f.u2[k], f.u1[k+1]
		next := 0.0
		if k+1 < n-1 {
			next = f.u2[k+1]
		}
		f.u1[k] = c
		f.u2[k] = oldU1k1
		f.u3[k] = next
		f.u1[k+1] = oldU2k - f.l[k]*oldU1k1
		if k+1 < n-1 {
			f.u2[k+1] = -f.l[k] * next
		}
	}
	if f.u1[n-1] == 0 {
		f.u1[n-1] = pert
	}
	for i := range n {
		if math.Abs(f.u1[i]) < pert {
			f.u1[i] = math.Copysign(pert, f.u1[i])
		}
	}
}

// solve overwrites x with (T - shift I)^{-1} x.
func (f *triLU) solve(x []float64) {
	n := len(x)
	for k := 0; k < n-1; k++ {
		if f.swapped[k] {
			x[k], x[k+1] = x[k+1], x[k]
		}
		x[k+1] -= f.l[k] * x[k]
	}
	x[n-1] /= f.u1[n-1]
	if n > 1 {
		x[n-2] = (x[n-2] - f.u2[n-2]*x[n-1]) / f.u1[n-2]
	}
	for k := n - 3; k >= 0; k-- {
		x[k] = (x[k] - f.u2[k]*x[k+1] - f.u3[k]*x[k+2]) / f.u1[k]
	}
}
