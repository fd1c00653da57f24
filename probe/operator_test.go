package probe

import (
	"errors"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomOrthogonal returns a random n×n orthogonal matrix, the Q factor of
// a Gaussian matrix.
func randomOrthogonal(n int, seed uint64) *mat.Dense {
	rng := newRand(seed)
	g := mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	return &q
}

// withSpectrum returns Q diag(d) Q^T for a random orthogonal Q, and Q,
// whose columns are the eigenvectors.
func withSpectrum(d []float64, seed uint64) (*mat.SymDense, *mat.Dense) {
	n := len(d)
	q := randomOrthogonal(n, seed)
	a := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			var s float64
			for k := range n {
				s += q.At(i, k) * d[k] * q.At(j, k)
			}
			a.SetSym(i, j, s)
		}
	}
	return a, q
}

// uniform returns n values evenly spread over [lo, hi] by a seeded shuffle
// of a random draw, for a reproducible bulk.
func uniform(n int, lo, hi float64, seed uint64) []float64 {
	rng := newRand(seed)
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float64()
	}
	return v
}

// faultyOperator fails at call failAt (1-based): with an error, or by
// returning NaN in one component.
type faultyOperator struct {
	Operator
	failAt, calls int
	nan           bool
}

var errFault = errors.New("injected fault")

func (f *faultyOperator) Apply(dst, v []float64) error {
	f.calls++
	if err := f.Operator.Apply(dst, v); err != nil {
		return err
	}
	if f.calls == f.failAt {
		if f.nan {
			dst[len(dst)/2] = math.NaN()
			return nil
		}
		return errFault
	}
	return nil
}

func TestMatrixOperatorApply(t *testing.T) {
	a := mat.NewSymDense(3, []float64{
		2, 1, 0,
		1, 3, -1,
		0, -1, 4,
	})
	op := NewMatrixOperator(a)
	if op.Dim() != 3 {
		t.Fatalf("Dim = %d, want 3", op.Dim())
	}
	dst := make([]float64, 3)
	if err := op.Apply(dst, []float64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if want := []float64{4, 4, 10}; !slices.Equal(dst, want) {
		t.Errorf("A v = %v, want %v", dst, want)
	}
	if err := op.Apply(dst, []float64{1, 2}); err == nil {
		t.Error("no error for a short vector")
	}
}

func TestCountingOperator(t *testing.T) {
	var seen []int
	c := &CountingOperator{
		Op:      NewMatrixOperator(mat.NewSymDense(2, []float64{1, 0, 0, 1})),
		OnApply: func(calls int) { seen = append(seen, calls) },
	}
	res, err := Lanczos(c, LanczosOptions{Top: 1, Bottom: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.Calls != res.Applies || c.Calls == 0 {
		t.Errorf("Calls = %d, Lanczos reports %d applies", c.Calls, res.Applies)
	}
	if len(seen) != c.Calls || seen[len(seen)-1] != c.Calls {
		t.Errorf("OnApply saw %v, want 1..%d", seen, c.Calls)
	}
}
