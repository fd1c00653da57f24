package symeig

import (
	"flag"
	"math"
	"math/rand/v2"
	"slices"
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

// hessianSpectrum mimics a network Hessian of dimension n: a few percent
// numerically null values, a quarter in a dense band of tiny values of both
// signs within 1e-3 of zero (one long chain of close eigenvalues), and a
// power-law bulk up to 1.
func hessianSpectrum(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	lam := make([]float64, n)
	for i := range lam {
		switch u := float64(i) / float64(n); {
		case u < 0.04:
			lam[i] = 1e-15 * rng.NormFloat64()
		case u < 0.3:
			lam[i] = math.Pow(10, -3-9*rng.Float64())
			if rng.Float64() < 0.4 {
				lam[i] = -lam[i]
			}
		default:
			lam[i] = math.Pow(rng.Float64(), 3)
		}
	}
	return lam
}

// clusteredSpectrum has 2n/5 eigenvalues within 1e-12 of 0.3 and the rest
// spread over [-1, 1].
func clusteredSpectrum(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	lam := make([]float64, n)
	for i := range lam {
		if i < 2*n/5 {
			lam[i] = 0.3 + 1e-12*rng.Float64()
		} else {
			lam[i] = 2*rng.Float64() - 1
		}
	}
	return lam
}

// checkTight verifies every pair's residual ||A v - lambda v|| <= 1e-12 ||A||
// and max |V^T V - I| <= 1e-12.
func checkTight(t *testing.T, name string, a *mat.SymDense, vals []float64, vecs *mat.Dense) {
	t.Helper()
	n := a.SymmetricDim()
	anorm := math.Max(math.Abs(vals[0]), math.Abs(vals[n-1]))
	var av mat.Dense
	av.Mul(a, vecs)
	worst := 0.0
	for j := range n {
		var r float64
		for i := range n {
			d := av.At(i, j) - vals[j]*vecs.At(i, j)
			r += d * d
		}
		worst = math.Max(worst, math.Sqrt(r)/anorm)
	}
	if worst > 1e-12 {
		t.Errorf("%s: largest residual ||A v - lambda v|| = %.3g ||A||", name, worst)
	}
	var vtv mat.Dense
	vtv.Mul(vecs.T(), vecs)
	worst = 0
	for i := range n {
		for j := range n {
			d := vtv.At(i, j)
			if i == j {
				d--
			}
			worst = math.Max(worst, math.Abs(d))
		}
	}
	if worst > 1e-12 {
		t.Errorf("%s: max |V^T V - I| = %.3g", name, worst)
	}
}

// TestLargeClusters: a tight cluster bigger than a panel (subspace
// iteration), exact nulls, and a long chain of close eigenvalues (windowed
// orthogonalisation) must keep residuals and orthogonality at rounding
// level, and the result must not depend on goroutine scheduling.
func TestLargeClusters(t *testing.T) {
	n := 400
	lam := append(clusteredSpectrum(n/2, 4), hessianSpectrum(n/2, 5)...)
	for i := range 20 {
		lam[i] = 0
	}
	a := withSpectrum(lam, 6)
	vals, vecs, err := Factorize(a)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(lam)
	slices.Sort(sorted)
	for i, w := range sorted {
		if math.Abs(vals[i]-w) > 1e-13 {
			t.Fatalf("eigenvalue %d = %.17g, want %.17g", i, vals[i], w)
		}
	}
	checkTight(t, "clusters", a, vals, vecs)
	for range 2 {
		vals2, vecs2, err := Factorize(a)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(vals, vals2) || !slices.Equal(vecs.RawMatrix().Data, vecs2.RawMatrix().Data) {
			t.Fatal("two runs on the same matrix differ")
		}
	}
}

// TestSplitTridiagonal: a block-diagonal matrix of two equal blocks
// reduces to a tridiagonal matrix with an exact zero coupling, and every
// eigenvalue comes twice, once from each piece.
func TestSplitTridiagonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	k := 40
	a := mat.NewSymDense(2*k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			v := rng.NormFloat64()
			a.SetSym(i, j, v)
			a.SetSym(k+i, k+j, v)
		}
	}
	vals, vecs, err := Factorize(a)
	if err != nil {
		t.Fatal(err)
	}
	var es mat.EigenSym
	es.Factorize(a, false)
	want := es.Values(nil)
	for i, w := range want {
		if math.Abs(vals[i]-w) > 1e-12*math.Abs(want[2*k-1]) {
			t.Fatalf("eigenvalue %d = %.17g, want %.17g", i, vals[i], w)
		}
	}
	checkTight(t, "split", a, vals, vecs)
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

var large = flag.Bool("symeig.large", false, "also benchmark n = 5000 in BenchmarkFactorizeClustered")

// BenchmarkFactorizeClustered times spectra with large clusters: a
// Hessian-like one (a dense near-null band of thousands at n = 5000) and one
// with 2n/5 eigenvalues within 1e-12 of each other.
//
//	go test ./internal/symeig -run XXX -bench Clustered [-symeig.large]
func BenchmarkFactorizeClustered(b *testing.B) {
	ns := []int{1000, 2000}
	if *large {
		ns = append(ns, 5000)
	}
	for _, n := range ns {
		for _, kind := range []string{"hessian", "tight"} {
			lam := hessianSpectrum(n, 1)
			if kind == "tight" {
				lam = clusteredSpectrum(n, 1)
			}
			a := withSpectrum(lam, 1)
			b.Run(kind+"/"+itoa(n), func(b *testing.B) {
				for b.Loop() {
					if _, _, err := Factorize(a); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
