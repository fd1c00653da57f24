package symeig

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	blasgonum "gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack/gonum"
)

// tridiagonalBlock is the number of columns reduced per panel (LAPACK's
// and gonum's choice for dsytrd).
const tridiagonalBlock = 32

// tridiagonalize reduces the symmetric n x n matrix held in the lower
// triangle of the row-major a to tridiagonal form Q^T A Q with diagonal
// d and off-diagonal e, and stores Q as reflectors below the subdiagonal
// of a with factors tau, exactly as LAPACK's dsytrd with uplo = 'L'.
//
// It follows gonum's Dsytrd and Dlatrd, with the two parts that dominate
// the reduction on both cores: the symmetric matrix-vector products split
// over two goroutines, and the rank-2k update of the trailing matrix as
// (parallel) matrix products. Only the lower triangle is referenced. Every
// output element is summed in a fixed order, so the result is
// deterministic.
func tridiagonalize(n int, a, d, e, tau []float64) {
	const nb = tridiagonalBlock
	lda := n
	w := make([]float64, n*nb)
	v := make([]float64, 3*n)
	lr := make([]float64, 4*nb*n)
	bl := blasgonum.Implementation{}
	i := 0
	for ; i < n-nb; i += nb {
		latrd(n-i, a[i*lda+i:], lda, e[i:], tau[i:], w, v)
		// A22 -= [V W] [W V]^T on the lower triangle (and the upper
		// parts of its diagonal blocks), by products whose inner loops run
		// along rows.
		m := n - i - nb
		left, right := lr[:m*2*nb], lr[m*2*nb:2*m*2*nb]
		for r := range m {
			copy(left[r*2*nb:r*2*nb+nb], a[(i+nb+r)*lda+i:(i+nb+r)*lda+i+nb])
			copy(left[r*2*nb+nb:(r+1)*2*nb], w[(nb+r)*nb:(nb+r+1)*nb])
			for k := range nb {
				right[k*m+r] = w[(nb+r)*nb+k]
				right[(nb+k)*m+r] = a[(i+nb+r)*lda+i+k]
			}
		}
		a22 := a[(i+nb)*lda+i+nb:]
		for r0 := 0; r0 < m; r0 += updateRows {
			r1 := min(r0+updateRows, m)
			bl.Dgemm(blas.NoTrans, blas.NoTrans, r1-r0, r1, 2*nb, -1, left[r0*2*nb:], 2*nb, right, m, 1, a22[r0*lda:], lda)
		}
		for j := i; j < i+nb; j++ {
			a[(j+1)*lda+j] = e[j]
			d[j] = a[j*lda+j]
		}
	}
	gonum.Implementation{}.Dsytd2(blas.Lower, n-i, a[i*lda+i:], lda, d[i:], e[i:], tau[i:])
}

// updateRows is the height of the row blocks of the trailing update.
const updateRows = 128

// latrd reduces the first tridiagonalBlock columns of the n x n trailing
// matrix a (LAPACK's dlatrd, lower) and returns in the n x nb matrix w the
// factor of the update A - V W^T - W V^T. v is scratch of length 3n.
func latrd(n int, a []float64, lda int, e, tau, w, v []float64) {
	const nb = tridiagonalBlock
	ldw := nb
	bl := blasgonum.Implementation{}
	impl := gonum.Implementation{}
	for i := range nb {
		// Update A(i:n, i).
		bl.Dgemv(blas.NoTrans, n-i, i, -1, a[i*lda:], lda, w[i*ldw:], 1, 1, a[i*lda+i:], lda)
		bl.Dgemv(blas.NoTrans, n-i, i, -1, w[i*ldw:], ldw, a[i*lda:], 1, 1, a[i*lda+i:], lda)
		// Generate the reflector H_i annihilating A(i+2:n, i).
		e[i], tau[i] = impl.Dlarfg(n-i-1, a[(i+1)*lda+i], a[min(i+2, n-1)*lda+i:], lda)
		a[(i+1)*lda+i] = 1
		// W(i+1:n, i) = A(i+1:n, i+1:n) v with v = A(i+1:n, i), A22 as
		// it was at the start of the panel (both triangles).
		m := n - i - 1
		x := v[:m]
		for r := range m {
			x[r] = a[(i+1+r)*lda+i]
		}
		y := v[m : 2*m]
		symv(m, a[(i+1)*lda+i+1:], lda, x, y, v[2*m:3*m])
		for r := range m {
			w[(i+1+r)*ldw+i] = y[r]
		}
		bl.Dgemv(blas.Trans, m, i, 1, w[(i+1)*ldw:], ldw, a[(i+1)*lda+i:], lda, 0, w[i:], ldw)
		bl.Dgemv(blas.NoTrans, m, i, -1, a[(i+1)*lda:], lda, w[i:], ldw, 1, w[(i+1)*ldw+i:], ldw)
		bl.Dgemv(blas.Trans, m, i, 1, a[(i+1)*lda:], lda, a[(i+1)*lda+i:], lda, 0, w[i:], ldw)
		bl.Dgemv(blas.NoTrans, m, i, -1, w[(i+1)*ldw:], ldw, w[i:], ldw, 1, w[(i+1)*ldw+i:], ldw)
		bl.Dscal(m, tau[i], w[(i+1)*ldw+i:], ldw)
		alpha := -0.5 * tau[i] * bl.Ddot(m, w[(i+1)*ldw+i:], ldw, a[(i+1)*lda+i:], lda)
		bl.Daxpy(m, alpha, a[(i+1)*lda+i:], lda, w[(i+1)*ldw+i:], ldw)
	}
}

// symv sets y = A x for the symmetric m x m matrix a, reading only its
// lower triangle (half the memory traffic of a full product): row r adds
// its dot product with x[:r+1] to y[r] and x[r] times itself to y[:r]. The
// rows are split between two goroutines with equal work, each adding into
// its own buffer, and the buffers are summed in a fixed order.
func symv(m int, a []float64, lda int, x, y, buf []float64) {
	split := int(float64(m) / math.Sqrt2)
	if m < 256 {
		split = m
	}
	bl := blasgonum.Implementation{}
	rows := func(r0, r1 int, acc []float64) {
		clear(acc[:r1])
		for r := r0; r < r1; r++ {
			row := a[r*lda : r*lda+r]
			acc[r] = bl.Ddot(r, row, 1, x, 1) + a[r*lda+r]*x[r]
			bl.Daxpy(r, x[r], row, 1, acc, 1)
		}
	}
	if split == m {
		rows(0, m, y)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { rows(split, m, buf) })
	rows(0, split, y)
	wg.Wait()
	for r := range split {
		y[r] += buf[r]
	}
	copy(y[split:m], buf[split:m])
}
