// Package fdcheck checks analytic gradients against central finite
// differences in float64, for the tests of the kernels, the Gorgonia ops
// and the models. A test contracts the function's output with fixed random
// weights r, so that the scalar L = <r, f(x)> has gradient backward(r), and
// compares that with central differences of L in each input coordinate.
package fdcheck

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Step is the central-difference displacement and Tol the largest
// relative error Gradient accepts: float64 central differences of smooth
// functions at this step are good to about 1e-9 relative.
const (
	Step = 1e-6
	Tol  = 1e-7
)

// Randn returns n standard normal draws from rng.
func Randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// Dot returns the inner product of a and b.
func Dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// RelErr returns |a - b| / |b| in the Euclidean norm.
func RelErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}

// Gradient compares grad with central differences of loss in each
// coordinate of x (which loss reads), and fails t when they differ by more
// than Tol relative (or either is NaN).
func Gradient(t testing.TB, name string, x []float64, loss func() float64, grad []float64) {
	t.Helper()
	fd := make([]float64, len(x))
	for i := range x {
		orig := x[i]
		x[i] = orig + Step
		up := loss()
		x[i] = orig - Step
		down := loss()
		x[i] = orig
		fd[i] = (up - down) / (2 * Step)
	}
	if e := RelErr(grad, fd); e > Tol || math.IsNaN(e) {
		t.Errorf("%s: relative gradient error %.3g", name, e)
	}
}
