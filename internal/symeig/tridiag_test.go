package symeig

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack/gonum"
)

// TestTridiagonalizeMatchesDsytrd: the two-core reduction must give LAPACK's
// tridiagonal matrix and reflectors (gonum's Dsytrd, lower), up to rounding,
// on a size with several panels, several update row blocks and the
// two-goroutine matrix-vector product.
func TestTridiagonalizeMatchesDsytrd(t *testing.T) {
	n := 333
	rng := rand.New(rand.NewPCG(11, 11))
	a := make([]float64, n*n)
	for i := range n {
		for j := 0; j <= i; j++ {
			v := rng.NormFloat64()
			a[i*n+j], a[j*n+i] = v, v
		}
	}
	ref := append([]float64(nil), a...)
	d, e, tau := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
	tridiagonalize(n, a, d, e, tau)
	dr, er, taur := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
	work := make([]float64, 64*n)
	gonum.Implementation{}.Dsytrd(blas.Lower, n, ref, n, dr, er, taur, work, len(work))
	const tol = 1e-10
	for i := range n {
		if math.Abs(d[i]-dr[i]) > tol {
			t.Fatalf("d[%d] = %v, Dsytrd gives %v", i, d[i], dr[i])
		}
		if i == n-1 {
			break
		}
		if math.Abs(e[i]-er[i]) > tol || math.Abs(tau[i]-taur[i]) > tol {
			t.Fatalf("e, tau[%d] = %v, %v; Dsytrd gives %v, %v", i, e[i], tau[i], er[i], taur[i])
		}
		for r := i + 2; r < n; r++ { // the reflectors
			if math.Abs(a[r*n+i]-ref[r*n+i]) > tol {
				t.Fatalf("reflector %d element %d = %v, Dsytrd gives %v", i, r, a[r*n+i], ref[r*n+i])
			}
		}
	}
}
