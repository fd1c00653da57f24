package probe

import (
	"errors"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// twoClusters returns a dim-200 spectrum with 30% of the eigenvalues near
// -1 and 70% near 5, spread by spread.
func twoClusters(spread float64) []float64 {
	rng := newRand(21)
	d := make([]float64, 200)
	for i := range d {
		c := 5.0
		if i < 60 {
			c = -1
		}
		d[i] = c + spread*rng.NormFloat64()
	}
	return d
}

// massBelow integrates the density over grid points below x (trapezoid).
func massBelow(d *Density, x float64) float64 {
	var k int
	for k < len(d.Grid) && d.Grid[k] < x {
		k++
	}
	return trapezoid(d.Grid[:k], d.Values[:k])
}

func TestSpectralDensityTwoClusters(t *testing.T) {
	spec := twoClusters(0.05)
	a, _ := withSpectrum(spec, 22)
	op := &CountingOperator{Op: NewMatrixOperator(a)}
	d, err := SpectralDensity(op, DensityOptions{Seed: 23})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Grid) != 400 || len(d.Values) != 400 || len(d.Nodes) != 8 || len(d.Weights) != 8 {
		t.Fatalf("sizes: grid %d, values %d, starts %d/%d", len(d.Grid), len(d.Values), len(d.Nodes), len(d.Weights))
	}
	if d.Applies != op.Calls || d.Applies > 8*40 {
		t.Errorf("Applies %d, operator saw %d calls, budget %d", d.Applies, op.Calls, 8*40)
	}
	if s := trapezoid(d.Grid, d.Values); math.Abs(s-1) > 1e-3 {
		t.Errorf("density integrates to %v", s)
	}
	for i, v := range d.Values {
		if !(v >= 0) {
			t.Fatalf("Values[%d] = %v", i, v)
		}
	}
	if m := massBelow(d, 2); math.Abs(m-0.3) > 0.05 {
		t.Errorf("mass below 2 is %v, want 0.3 ± 0.05", m)
	}
	lo, hi := floats.Min(spec), floats.Max(spec)
	for s := range d.Nodes {
		// Gauss weights are a probability vector, and the nodes (Ritz
		// values) lie inside the spectrum.
		if w := floats.Sum(d.Weights[s]); math.Abs(w-1) > 1e-12 {
			t.Errorf("start %d: weights sum to %v", s, w)
		}
		if floats.Min(d.Nodes[s]) < lo-1e-9 || floats.Max(d.Nodes[s]) > hi+1e-9 {
			t.Errorf("start %d: nodes outside [%v, %v]", s, lo, hi)
		}
	}
	// The grid spans the nodes with 3 sigma margins, sigma = 1% of range.
	nlo, nhi := math.Inf(1), math.Inf(-1)
	for _, nodes := range d.Nodes {
		nlo, nhi = min(nlo, floats.Min(nodes)), max(nhi, floats.Max(nodes))
	}
	sigma := 0.01 * (nhi - nlo)
	if math.Abs(d.Grid[0]-(nlo-3*sigma)) > 1e-12 || math.Abs(d.Grid[399]-(nhi+3*sigma)) > 1e-12 {
		t.Errorf("grid [%v, %v], want [%v, %v]", d.Grid[0], d.Grid[399], nlo-3*sigma, nhi+3*sigma)
	}
}

// TestSpectralDensityQuadrature checks the quadrature against moments: the
// first moment sum_k w_k theta_k of each start is v·Av, so n times their
// mean estimates the trace, within the Rademacher standard error.
func TestSpectralDensityQuadrature(t *testing.T) {
	a, _ := withSpectrum(separated(), 1)
	n := 200.0
	starts := 30
	d, err := SpectralDensity(NewMatrixOperator(a), DensityOptions{Starts: starts, Steps: 10, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var est float64
	for s := range d.Nodes {
		est += n * floats.Dot(d.Nodes[s], d.Weights[s]) / float64(starts)
	}
	tr := mat.Trace(a)
	se := math.Sqrt(rademacherVariance(a) / float64(starts))
	if math.Abs(est-tr) > 4*se {
		t.Errorf("SLQ trace %v, true %v, 4 standard errors %v", est, tr, 4*se)
	}
}

// TestSpectralDensityBreakdown: with two distinct eigenvalues each start's
// Krylov space is invariant after two steps, where its quadrature is exact;
// the starts must stop there instead of spending 40 products.
func TestSpectralDensityBreakdown(t *testing.T) {
	a, _ := withSpectrum(twoClusters(0), 24)
	d, err := SpectralDensity(NewMatrixOperator(a), DensityOptions{Starts: 4, Seed: 25})
	if err != nil {
		t.Fatal(err)
	}
	if d.Applies != 8 {
		t.Errorf("used %d products, want 2 per start", d.Applies)
	}
	for s, nodes := range d.Nodes {
		if len(nodes) != 2 || math.Abs(nodes[0]+1) > 1e-10 || math.Abs(nodes[1]-5) > 1e-10 {
			t.Errorf("start %d: nodes %v, want [-1 5]", s, nodes)
		}
	}
	if m := massBelow(d, 2); math.Abs(m-0.3) > 0.05 {
		t.Errorf("mass below 2 is %v, want 0.3 ± 0.05", m)
	}
}

func TestSpectralDensityErrors(t *testing.T) {
	a, _ := withSpectrum(separated(), 1)
	op := NewMatrixOperator(a)
	_, err := SpectralDensity(&faultyOperator{Operator: op, failAt: 45, nan: true}, DensityOptions{})
	if err == nil || err.Error() != "density: hessian-vector product 45 returned NaN" {
		t.Errorf("NaN product: got %v", err)
	}
	_, err = SpectralDensity(&faultyOperator{Operator: op, failAt: 3}, DensityOptions{})
	if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "density: hessian-vector product 3: ") {
		t.Errorf("Apply error: got %v", err)
	}
	for _, opts := range []DensityOptions{{Starts: -1}, {GridPoints: 1}, {Sigma: -1}} {
		if _, err := SpectralDensity(op, opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}

// rademacherVariance is the variance of z·Az for a Rademacher z:
// 2 (||A||_F^2 - sum_i a_ii^2).
func rademacherVariance(a *mat.SymDense) float64 {
	n := a.SymmetricDim()
	var off float64
	for i := range n {
		for j := range n {
			if i != j {
				off += a.At(i, j) * a.At(i, j)
			}
		}
	}
	return 2 * off
}

func TestHutchinsonTrace(t *testing.T) {
	a, _ := withSpectrum(separated(), 1)
	const samples = 200
	est, err := HutchinsonTrace(NewMatrixOperator(a), samples, 31)
	if err != nil {
		t.Fatal(err)
	}
	tr := mat.Trace(a)
	if est.Samples != samples || math.Abs(est.Mean-tr) > 3*est.StdErr {
		t.Errorf("estimate %v ± %v from %d samples, true trace %v", est.Mean, est.StdErr, est.Samples, tr)
	}
	want := math.Sqrt(rademacherVariance(a) / samples)
	if r := est.StdErr / want; r < 0.75 || r > 1.25 {
		t.Errorf("standard error %v, analytic %v", est.StdErr, want)
	}
	t.Logf("trace %v, estimate %v ± %v (analytic SE %v)", tr, est.Mean, est.StdErr, want)
}

func TestHutchinsonTraceErrors(t *testing.T) {
	a, _ := withSpectrum(separated(), 1)
	op := NewMatrixOperator(a)
	if _, err := HutchinsonTrace(op, 1, 0); err == nil {
		t.Error("no error for 1 sample")
	}
	_, err := HutchinsonTrace(&faultyOperator{Operator: op, failAt: 7}, 10, 0)
	if !errors.Is(err, errFault) || !strings.HasPrefix(err.Error(), "hutchinson: hessian-vector product 7: ") {
		t.Errorf("Apply error: got %v", err)
	}
	_, err = HutchinsonTrace(&faultyOperator{Operator: op, failAt: 7, nan: true}, 10, 0)
	if err == nil || err.Error() != "hutchinson: hessian-vector product 7 returned NaN" {
		t.Errorf("NaN product: got %v", err)
	}
}
