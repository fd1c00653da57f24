package probe

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// DenseMatrix builds the full matrix of op column by column from Dim
// products, the validation path for models up to a few thousand
// parameters. The result is symmetrised as (A + A^T)/2; maxAsym is the
// largest |A_ij - A_ji| before symmetrising, a quality diagnostic for
// finite-difference products (0 for an exact symmetric operator).
func DenseMatrix(op Operator) (a *mat.SymDense, maxAsym float64, err error) {
	n := op.Dim()
	if n < 1 {
		return nil, 0, fmt.Errorf("dense: operator dimension %d", n)
	}
	cols := mat.NewDense(n, n, nil) // row j holds column j of A
	e := make([]float64, n)
	for j := range n {
		e[j] = 1
		if err := apply(op, cols.RawRowView(j), e, "dense", j+1); err != nil {
			return nil, 0, err
		}
		e[j] = 0
	}
	a = mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			aij, aji := cols.At(j, i), cols.At(i, j)
			maxAsym = max(maxAsym, math.Abs(aij-aji))
			a.SetSym(i, j, 0.5*(aij+aji))
		}
	}
	return a, maxAsym, nil
}

// DenseEigen returns all eigenvalues of a in ascending order and the
// corresponding unit eigenvectors as rows, signed like Lanczos output (the
// largest-magnitude component positive).
func DenseEigen(a *mat.SymDense) (values []float64, vectors [][]float64, err error) {
	var eig mat.EigenSym
	if !eig.Factorize(a, true) {
		return nil, nil, fmt.Errorf("dense eigen: eigendecomposition of %d×%d matrix failed", a.SymmetricDim(), a.SymmetricDim())
	}
	values = eig.Values(nil)
	var q mat.Dense
	eig.VectorsTo(&q)
	vectors = make([][]float64, len(values))
	for i := range values {
		v := mat.Col(nil, i, &q)
		fixSign(v)
		vectors[i] = v
	}
	return values, vectors, nil
}
