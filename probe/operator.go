// Package probe measures the local geometry of a loss at a reference point: Hessian-vector products, the extreme eigenpairs of the mean Hessian by Lanczos, its spectral density, and the gradient and curvature noise of minibatches along chosen directions.
package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Operator is a symmetric linear operator on R^Dim, e.g. a Hessian known
// only through Hessian-vector products.
type Operator interface {
	// Dim returns the dimension of the space the operator acts on.
	Dim() int
	// Apply sets dst = A v. dst and v have length Dim and do not alias.
	Apply(dst, v []float64) error
}

// matrixOperator is an Operator backed by an explicit symmetric matrix.
type matrixOperator struct {
	a *mat.SymDense
}

// NewMatrixOperator returns an Operator that multiplies by a. It is meant
// for tests and for models small enough to hold their Hessian explicitly.
func NewMatrixOperator(a *mat.SymDense) Operator {
	return matrixOperator{a: a}
}

// Dim returns the order of the matrix.
func (m matrixOperator) Dim() int { return m.a.SymmetricDim() }

// Apply sets dst = A v.
func (m matrixOperator) Apply(dst, v []float64) error {
	n := m.a.SymmetricDim()
	if len(dst) != n || len(v) != n {
		return fmt.Errorf("matrix operator: dimension %d, got dst %d and v %d", n, len(dst), len(v))
	}
	mat.NewVecDense(n, dst).MulVec(m.a, mat.NewVecDense(n, v))
	return nil
}

// contextOperator is an Operator that refuses to apply once ctx is done, so
// that long computations over many products stop promptly.
type contextOperator struct {
	ctx context.Context
	Operator
}

func (c contextOperator) Apply(dst, v []float64) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.Operator.Apply(dst, v)
}

// CountingOperator wraps an Operator and counts calls to Apply, so callers
// can report the cost of a measurement in Hessian-vector products.
type CountingOperator struct {
	// Op is the wrapped operator.
	Op Operator
	// Calls is the number of Apply calls so far, failed ones included.
	Calls int
	// OnApply, if not nil, is called after each Apply with the updated
	// Calls, e.g. to drive a progress bar.
	OnApply func(calls int)
}

// Dim returns the dimension of the wrapped operator.
func (c *CountingOperator) Dim() int { return c.Op.Dim() }

// Apply calls the wrapped operator's Apply and counts the call.
func (c *CountingOperator) Apply(dst, v []float64) error {
	err := c.Op.Apply(dst, v)
	c.Calls++
	if c.OnApply != nil {
		c.OnApply(c.Calls)
	}
	return err
}

// progressFrom returns an OnApply for a second counter whose calls
// continue c's count in c's progress (nil when c reports none).
func (c *CountingOperator) progressFrom() func(int) {
	if c.OnApply == nil {
		return nil
	}
	return func(calls int) { c.OnApply(c.Calls + calls) }
}

// pcgStream is the second PCG seed word used everywhere in the package, so
// that a single user seed determines every random vector.
const pcgStream = 0xda3e39cb94b95bdb

// newRand returns the package's deterministic generator for seed.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, pcgStream))
}

// apply computes dst = A v for the k-th (1-based) product of a
// computation named by prefix, and rejects errors and non-finite output:
// a NaN from a finite-difference Hessian-vector product would otherwise
// silently poison every later vector.
func apply(op Operator, dst, v []float64, prefix string, k int) error {
	if err := op.Apply(dst, v); err != nil {
		return fmt.Errorf("%s: hessian-vector product %d: %w", prefix, k, err)
	}
	for _, x := range dst {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s: hessian-vector product %d returned %v", prefix, k, x)
		}
	}
	return nil
}

// fixSign flips v so that its largest-magnitude component (the first one,
// on ties) is positive, making eigenvector output deterministic.
func fixSign(v []float64) {
	imax, vmax := 0, -1.0
	for i, x := range v {
		if a := math.Abs(x); a > vmax {
			imax, vmax = i, a
		}
	}
	if len(v) > 0 && v[imax] < 0 {
		for i := range v {
			v[i] = -v[i]
		}
	}
}
