// Package symeig computes every eigenpair of a dense symmetric matrix in
// pure Go, faster than gonum's mat.EigenSym for the matrix sizes of
// sgdyn's dense Hessians (hundreds to several thousand): 1.6-2.1x at
// n = 500-1000 (BenchmarkFactorize, both measured in one run).
//
// mat.EigenSym reduces the matrix to tridiagonal form and then runs the
// implicit QL/QR iteration with the rotations accumulated into the n x n
// eigenvector matrix (LAPACK's dsteqr), which costs about 6n^3 flops of
// poorly vectorised rotation updates and dominates its time. Here the
// eigenvalues of the tridiagonal matrix come from the root-free QL/QR
// iteration (dsterf, O(n^2)), its eigenvectors from inverse iteration with
// reorthogonalisation inside clusters of close eigenvalues (the method of
// LAPACK's dstein), and the back-transformation is one matrix product.
package symeig

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// Factorize returns the eigenvalues of a in ascending order and the
// matrix whose column i is the unit eigenvector of eigenvalue i.
func Factorize(a mat.Symmetric) (values []float64, vectors *mat.Dense, err error) {
	n := a.SymmetricDim()
	if n == 0 {
		return nil, nil, errors.New("symeig: empty matrix")
	}
	impl := gonum.Implementation{}
	q := make([]float64, n*n)
	for i := range n {
		for j := i; j < n; j++ {
			v := a.At(i, j)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("symeig: element (%d, %d) is %v", i, j, v)
			}
			q[i*n+j], q[j*n+i] = v, v
		}
	}
	if n == 1 {
		return []float64{q[0]}, mat.NewDense(1, 1, []float64{1}), nil
	}
	d, e, tau := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
	work := make([]float64, 1)
	impl.Dsytrd(blas.Upper, n, q, n, d, e, tau, work, -1)
	work = make([]float64, int(work[0]))
	impl.Dsytrd(blas.Upper, n, q, n, d, e, tau, work, len(work))

	values = append([]float64(nil), d...)
	scratch := append([]float64(nil), e...)
	if !impl.Dsterf(n, values, scratch) {
		return nil, nil, errors.New("symeig: tridiagonal QL/QR iteration did not converge")
	}
	z := tridiagonalVectors(d, e, values)

	impl.Dorgtr(blas.Upper, n, q, n, tau, work, -1)
	if need := int(work[0]); need > len(work) {
		work = make([]float64, need)
	}
	impl.Dorgtr(blas.Upper, n, q, n, tau, work, len(work))
	vectors = mat.NewDense(n, n, nil)
	vectors.Mul(mat.NewDense(n, n, q), z)
	return values, vectors, nil
}

// tridiagonalVectors returns the n x n matrix whose column j is the unit
// eigenvector of the tridiagonal matrix (diagonal d, off-diagonal e) for
// eigenvalue w[j] (ascending), by inverse iteration. Eigenvalues closer
// than 1e-3 ||T|| form a cluster, inside which each new vector is
// orthogonalised against the previous ones at every iteration, as in
// LAPACK's dstein.
func tridiagonalVectors(d, e, w []float64) *mat.Dense {
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
	if tnorm == 0 {
		tnorm = 1
	}
	eps := 0x1p-52
	ortol := 1e-3 * tnorm
	pert := 10 * eps * tnorm
	rng := rand.New(rand.NewPCG(1, 2))
	// Vectors are built as rows, then transposed once.
	rows := make([][]float64, n)
	f := newTriLU(n)
	clusterStart := 0
	for j := range n {
		if j > 0 && w[j]-w[j-1] > ortol {
			clusterStart = j
		}
		shift := w[j]
		// Equal eigenvalues get slightly separated shifts so that inverse
		// iteration does not return the same vector twice.
		if j > clusterStart && w[j]-w[j-1] < pert {
			shift = w[j-1] + pert
			w[j] = shift
		}
		f.factor(d, e, shift, pert)
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.Float64()*2 - 1
		}
		for range 5 {
			floats.Scale(1/floats.Norm(x, 2), x)
			for k := clusterStart; k < j; k++ {
				floats.AddScaled(x, -floats.Dot(x, rows[k]), rows[k])
			}
			f.solve(x)
			nx := floats.Norm(x, 2)
			if !(nx > 0) || math.IsInf(nx, 0) {
				for i := range x {
					x[i] = rng.Float64()*2 - 1
				}
				continue
			}
			// Growth by 1/(eps ||T||) means the vector has converged.
			if nx*pert > 1e-1 {
				floats.Scale(1/nx, x)
				break
			}
		}
		for range 2 {
			for k := clusterStart; k < j; k++ {
				floats.AddScaled(x, -floats.Dot(x, rows[k]), rows[k])
			}
			floats.Scale(1/floats.Norm(x, 2), x)
		}
		rows[j] = x
	}
	z := mat.NewDense(n, n, nil)
	for j, r := range rows {
		z.SetCol(j, r)
	}
	return z
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
