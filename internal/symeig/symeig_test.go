package symeig

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// withSpectrum returns Q diag(lambda) Q^T for a random orthogonal Q.
func withSpectrum(lambda []float64, seed uint64) *mat.SymDense {
	n := len(lambda)
	rng := rand.New(rand.NewPCG(seed, seed))
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
	var qd mat.Dense
	qd.Mul(&q, mat.NewDiagDense(n, lambda))
	var a mat.Dense
	a.Mul(&qd, q.T())
	s := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			s.SetSym(i, j, 0.5*(a.At(i, j)+a.At(j, i)))
		}
	}
	return s
}

// check verifies residuals, orthonormality and the eigenvalues.
func check(t *testing.T, name string, a *mat.SymDense, want []float64) {
	t.Helper()
	n := a.SymmetricDim()
	vals, vecs, err := Factorize(a)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	anorm := mat.Norm(a, 2)
	var av, lv mat.Dense
	av.Mul(a, vecs)
	lv.Mul(vecs, mat.NewDiagDense(n, vals))
	av.Sub(&av, &lv)
	if r := mat.Norm(&av, math.Inf(1)) / anorm; r > 1e-11 {
		t.Errorf("%s: residual max ||A v - lambda v|| = %.3g ||A||", name, r)
	}
	var vtv mat.Dense
	vtv.Mul(vecs.T(), vecs)
	for i := range n {
		vtv.Set(i, i, vtv.At(i, i)-1)
	}
	if o := mat.Norm(&vtv, math.Inf(1)); o > 1e-10 {
		t.Errorf("%s: ||V^T V - I|| = %.3g", name, o)
	}
	for i, w := range want {
		if math.Abs(vals[i]-w) > 1e-12*anorm {
			t.Errorf("%s: eigenvalue %d = %.17g, want %.17g", name, i, vals[i], w)
			break
		}
	}
}

func TestFactorize(t *testing.T) {
	// A Hessian-like spectrum: exact nulls (a repeated 0), a cluster of
	// tiny values just above them, a bulk, a few outliers, negatives.
	var lam []float64
	for range 30 {
		lam = append(lam, 0)
	}
	for i := range 60 {
		lam = append(lam, 1e-6*float64(i+1))
	}
	for i := range 100 {
		lam = append(lam, 0.01*float64(i)-0.3)
	}
	lam = append(lam, 5, 9, 9, 40, -2)
	a := withSpectrum(lam, 3)
	sorted := append([]float64(nil), lam...)
	sortFloats(sorted)
	check(t, "hessian-like", a, sorted)

	// Random symmetric, and tiny sizes.
	rng := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{1, 2, 3, 17, 120} {
		r := mat.NewSymDense(n, nil)
		for i := range n {
			for j := i; j < n; j++ {
				r.SetSym(i, j, rng.NormFloat64())
			}
		}
		var es mat.EigenSym
		es.Factorize(r, false)
		check(t, "random", r, es.Values(nil))
	}
	// Already diagonal and already tridiagonal with zero couplings.
	check(t, "diagonal", mat.NewSymDense(4, []float64{3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}), []float64{-1, 0, 3, 3})
}

// TestNullsStaySeparate: the eigenvectors of exact nulls must carry no
// weight of a flat direction just above them, since sgdyn tells the two
// apart by their noise.
func TestNullsStaySeparate(t *testing.T) {
	lam := []float64{0, 0, 0, 1e-6, 2e-6, 1, 2, 3, 4, 10}
	a := withSpectrum(lam, 9)
	vals, vecs, err := Factorize(a)
	if err != nil {
		t.Fatal(err)
	}
	var es mat.EigenSym
	es.Factorize(a, true)
	var ref mat.Dense
	es.VectorsTo(&ref)
	// Projector onto the true null space from the reference solver.
	for j := range 3 {
		v := mat.Col(nil, j, vecs)
		var w float64
		for k := range 3 {
			c := mat.Dot(mat.NewVecDense(10, v), ref.ColView(k))
			w += c * c
		}
		if w < 1-1e-9 {
			t.Errorf("null eigenvector %d (lambda %g) has weight %.12f in the null space", j, vals[j], w)
		}
	}
}

func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// BenchmarkFactorize compares with mat.EigenSym: go test -bench . ./internal/symeig
func BenchmarkFactorize(b *testing.B) {
	for _, n := range []int{500, 1000} {
		lam := make([]float64, n)
		for i := range lam {
			lam[i] = math.Pow(float64(i)/float64(n), 4) * 10
		}
		a := withSpectrum(lam, 1)
		b.Run("symeig/"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := Factorize(a); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("gonum/"+itoa(n), func(b *testing.B) {
			for b.Loop() {
				var es mat.EigenSym
				es.Factorize(a, true)
			}
		})
	}
	_ = time.Now
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
