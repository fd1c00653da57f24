package gop

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference helpers of the gradient tests: each test contracts its
// stage's output with fixed random weights r, so the scalar L = <r, f(x)>
// has gradient backward(r), and compares that with central differences of L
// in each input coordinate.

func randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkFD compares grad with central differences of loss in each
// coordinate of x (which loss reads).
func checkFD(t *testing.T, name string, x []float64, loss func() float64, grad []float64) {
	t.Helper()
	const h = 1e-6
	fd := make([]float64, len(x))
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		up := loss()
		x[i] = orig - h
		down := loss()
		x[i] = orig
		fd[i] = (up - down) / (2 * h)
	}
	if e := relErr(grad, fd); e > 1e-7 || math.IsNaN(e) {
		t.Errorf("%s: relative gradient error %.3g", name, e)
	}
}

// relErr returns |a - b| / |b| in the Euclidean norm.
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}
