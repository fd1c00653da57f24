package probe

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// denseOperator multiplies by a general, possibly asymmetric matrix.
type denseOperator struct{ a *mat.Dense }

func (d denseOperator) Dim() int { r, _ := d.a.Dims(); return r }

func (d denseOperator) Apply(dst, v []float64) error {
	mat.NewVecDense(len(dst), dst).MulVec(d.a, mat.NewVecDense(len(v), v))
	return nil
}

func TestDenseMatrix(t *testing.T) {
	a, _ := withSpectrum(uniform(30, -3, 3, 41), 42)
	op := &CountingOperator{Op: NewMatrixOperator(a)}
	got, asym, err := DenseMatrix(op)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.EqualApprox(got, a, 1e-14) {
		t.Error("DenseMatrix does not reproduce the matrix")
	}
	if asym > 1e-14 || op.Calls != 30 {
		t.Errorf("asymmetry %v, %d products; want 0 and 30", asym, op.Calls)
	}
}

func TestDenseMatrixAsymmetric(t *testing.T) {
	op := denseOperator{mat.NewDense(3, 3, []float64{
		1, 2, 0,
		2.5, 3, -1,
		0, -1, 4,
	})}
	got, asym, err := DenseMatrix(op)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(asym-0.5) > 1e-15 {
		t.Errorf("asymmetry %v, want 0.5", asym)
	}
	if got.At(0, 1) != 2.25 || got.At(1, 0) != 2.25 || got.At(1, 2) != -1 {
		t.Errorf("symmetrised matrix %v", mat.Formatted(got))
	}
}

func TestDenseMatrixErrors(t *testing.T) {
	op := NewMatrixOperator(mat.NewSymDense(4, []float64{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}))
	_, _, err := DenseMatrix(&faultyOperator{Operator: op, failAt: 3})
	if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "dense: hessian-vector product 3: ") {
		t.Errorf("Apply error: got %v", err)
	}
	_, _, err = DenseMatrix(&faultyOperator{Operator: op, failAt: 2, nan: true})
	if err == nil || err.Error() != "dense: hessian-vector product 2 returned NaN" {
		t.Errorf("NaN product: got %v", err)
	}
}

func TestDenseEigen(t *testing.T) {
	d := []float64{4, -2, 0.5, 7, -3, 1}
	a, _ := withSpectrum(d, 43)
	vals, vecs, err := DenseEigen(a)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(d)
	slices.Sort(want)
	if !floats.EqualApprox(vals, want, 1e-12) {
		t.Errorf("values %v, want %v", vals, want)
	}
	av := make([]float64, len(d))
	for i, v := range vecs {
		mat.NewVecDense(len(av), av).MulVec(a, mat.NewVecDense(len(v), v))
		floats.AddScaled(av, -vals[i], v)
		if r := floats.Norm(av, 2); r > 1e-12 {
			t.Errorf("pair %d: residual %v", i, r)
		}
		if j := floats.MinIdx(v); -v[j] > floats.Max(v) {
			t.Errorf("pair %d: largest-magnitude component %v is negative", i, v[j])
		}
	}
}
