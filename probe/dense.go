package probe

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
)

// DenseMatrix builds the full matrix of op column by column from Dim
// products, the validation path for models up to a few thousand
// parameters. The result is symmetrised as (A + A^T)/2; maxAsym is the
// largest |A_ij - A_ji| before symmetrising, a quality diagnostic for
// finite-difference products (0 for an exact symmetric operator).
func DenseMatrix(op Operator) (a *mat.SymDense, maxAsym float64, err error) {
	return DenseMatrixParallel(context.Background(), []Operator{op}, nil)
}

// DenseMatrixParallel builds the matrix DenseMatrix builds with the Dim
// products split over ops, one goroutine each. The operators must be
// independent instances of the same operator (e.g. one Hessian per model
// instance, all on the same batch at the same point), since none is used
// by two goroutines. Every column is one product by one operator, taken in
// column order, so when the instances agree bit for bit the matrix does
// not depend on len(ops); a failed product is reported as the lowest
// failing column, as DenseMatrix would. Once ctx is done it stops before
// the next product with ctx's error. done, if not nil, is called after
// each column with the number of columns finished, never concurrently.
func DenseMatrixParallel(ctx context.Context, ops []Operator, done func(cols int)) (a *mat.SymDense, maxAsym float64, err error) {
	if len(ops) == 0 {
		return nil, 0, fmt.Errorf("dense: no operator")
	}
	n := ops[0].Dim()
	if n < 1 {
		return nil, 0, fmt.Errorf("dense: operator dimension %d", n)
	}
	for k, op := range ops {
		if op.Dim() != n {
			return nil, 0, fmt.Errorf("dense: operator %d has dimension %d, operator 0 has %d", k, op.Dim(), n)
		}
	}
	cols := mat.NewDense(n, n, nil) // row j holds column j of A
	unit := make([][]float64, len(ops))
	for k := range unit {
		unit[k] = make([]float64, n)
	}
	err = forEachIndex(ctx, n, len(ops), func(k, j int) error {
		e := unit[k]
		e[j] = 1
		defer func() { e[j] = 0 }()
		return apply(ops[k], cols.RawRowView(j), e, "dense", j+1)
	}, done)
	if err != nil {
		return nil, 0, err
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

// forEachIndex calls do(k, i) for i = 0, ..., n-1 on workers goroutines,
// worker k making its calls in turn, and handing out the indices in
// increasing order. Once a call fails or ctx is done no further index is
// handed out; it returns ctx's error if ctx is done and a call failed or
// was not made, or else the error of the lowest failing index: indices are handed out in order and every
// handed-out call finishes, so that error does not depend on workers.
// done, if not nil, is called after each successful call with the number
// of successful calls so far, never concurrently.
func forEachIndex(ctx context.Context, n, workers int, do func(k, i int) error, done func(count int)) error {
	var (
		next     atomic.Int64 // the next index to hand out
		stop     atomic.Bool
		mu       sync.Mutex // guards finished, errAt, firstErr and done
		finished int
		errAt    = n
		firstErr error
	)
	work := func(k int) {
		for !stop.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			err := ctx.Err()
			if err == nil {
				err = do(k, i)
			}
			mu.Lock()
			if err != nil {
				if i < errAt {
					errAt, firstErr = i, err
				}
				stop.Store(true)
			} else {
				finished++
				if done != nil {
					done(finished)
				}
			}
			mu.Unlock()
		}
	}
	workers = max(1, min(workers, n))
	if workers == 1 {
		work(0)
	} else {
		var wg sync.WaitGroup
		for k := range workers {
			wg.Go(func() { work(k) })
		}
		wg.Wait()
	}
	if firstErr != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return firstErr
}
