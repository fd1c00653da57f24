package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// linregData builds an anisotropic regression problem: a_n ~ N(0, diag(scale)),
// y = a . w + noise, so that theta* has non-zero residuals (C1 != 0).
func linregData(rng *rand.Rand, n int, scale []float64) *LinReg {
	d := len(scale)
	a := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	for i := range n {
		for j := range d {
			a.Set(i, j, math.Sqrt(scale[j])*rng.NormFloat64())
			y[i] += a.At(i, j) * float64(j+1)
		}
		y[i] += 0.7 * rng.NormFloat64()
	}
	lr, err := NewLinReg(a, y)
	if err != nil {
		panic(err)
	}
	return lr
}

// mcSGD runs R replicas of minibatch SGD on lr from theta* for T steps and
// returns, for each step in steps, the projections [replica][direction] of
// theta_t - theta*.
func mcSGD(rng *rand.Rand, lr *LinReg, eta float64, b int, s Sampling, R, T int, steps []int, dirs [][]float64) [][][]float64 {
	n, d := lr.A.Dims()
	out := make([][][]float64, len(steps))
	for i := range out {
		out[i] = make([][]float64, R)
	}
	x := make([]float64, d)
	grad := make([]float64, d)
	perm := make([]int, n)
	batch := make([]int, b)
	for r := range R {
		copy(x, lr.Theta)
		si := 0
		for t := 0; t <= T; t++ {
			if si < len(steps) && steps[si] == t {
				p := make([]float64, len(dirs))
				for k, u := range dirs {
					for j := range d {
						p[k] += u[j] * (x[j] - lr.Theta[j])
					}
				}
				out[si][r] = p
				si++
			}
			if t == T {
				break
			}
			if s == WithReplacement {
				for i := range batch {
					batch[i] = rng.IntN(n)
				}
			} else {
				// Partial Fisher-Yates: b distinct examples.
				for i := range perm {
					perm[i] = i
				}
				for i := range b {
					j := i + rng.IntN(n-i)
					perm[i], perm[j] = perm[j], perm[i]
				}
				copy(batch, perm[:b])
			}
			clear(grad)
			for _, e := range batch {
				res := -lr.Y[e]
				for j := range d {
					res += lr.A.At(e, j) * x[j]
				}
				for j := range d {
					grad[j] += res * lr.A.At(e, j) / float64(b)
				}
			}
			for j := range d {
				x[j] -= eta * grad[j]
			}
		}
	}
	return out
}

// testDirs returns the eigenvectors of H (descending eigenvalue) and two
// fixed oblique unit directions, and lambda_max.
func testDirs(lr *LinReg) ([][]float64, float64) {
	var es mat.EigenSym
	es.Factorize(lr.H, true)
	var q mat.Dense
	es.VectorsTo(&q)
	vals := es.Values(nil)
	d := len(vals)
	var dirs [][]float64
	for k := d - 1; k >= 0; k-- {
		dirs = append(dirs, mat.Col(nil, k, &q))
	}
	for _, v := range [][]float64{{1, 1, 1, 1}, {1, -2, 0.5, 3}} {
		n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2] + v[3]*v[3])
		u := make([]float64, d)
		for j := range d {
			u[j] = v[j] / n
		}
		dirs = append(dirs, u)
	}
	return dirs, vals[d-1]
}

// sampleVar returns the sample variance, its kurtosis-aware standard error
// and the excess kurtosis of the k-th projection across replicas.
func sampleVar(ps [][]float64, k int) (v, se, kurt float64) {
	x := make([]float64, len(ps))
	for r, p := range ps {
		x[r] = p[k]
	}
	_, v, kurt = moments(x)
	n := float64(len(x))
	return v, v * math.Sqrt(2/(n-1)+math.Max(kurt, 0)/n), kurt
}

// TestRecursionMonteCarlo checks the exact covariance recursion against a
// Monte-Carlo ensemble of SGD on linear regression (R = 4000 replicas from
// theta*, 50 steps, eta lambda_max = 0.9), with and without replacement.
// b = 16 is the strict check (4 standard errors); b = 4 has heavier tails
// (THEORY.md section 4) and gets 5.
func TestRecursionMonteCarlo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	lr := linregData(rng, 64, []float64{1, 0.5, 0.2, 0.05})
	dirs, lmax := testDirs(lr)
	eta := 0.9 / lmax
	steps := []int{1, 2, 5, 10, 20, 50}
	const R = 4000
	for _, tc := range []struct {
		b    int
		s    Sampling
		nsig float64
	}{
		{16, WithReplacement, 4},
		{16, WithoutReplacement, 4},
		{4, WithReplacement, 5},
	} {
		covs, err := lr.Recursion(eta, tc.b, tc.s, steps)
		if err != nil {
			t.Fatal(err)
		}
		pred, err := ProjectCov(covs, dirs)
		if err != nil {
			t.Fatal(err)
		}
		mc := mcSGD(rng, lr, eta, tc.b, tc.s, R, steps[len(steps)-1], steps, dirs)
		worst := 0.0
		for i := range steps {
			for k := range dirs {
				v, se, kurt := sampleVar(mc[i], k)
				z := (v - pred[i][k]) / se
				worst = max(worst, math.Abs(z))
				if math.Abs(z) > tc.nsig {
					t.Errorf("b=%d %s step %d dir %d: MC variance %.5g +- %.2g (kurtosis %.2g), recursion %.5g: %.1f standard errors",
						tc.b, tc.s, steps[i], k, v, se, kurt, pred[i][k], z)
				}
			}
		}
		t.Logf("b=%d %s: worst deviation %.2f standard errors", tc.b, tc.s, worst)
	}
}

// TestRecursionFiniteBatchCorrection: without replacement with b = N/4 the
// finite-population factor (N-b)/(b(N-1)) differs from 1/b by 24%; the
// Monte-Carlo ensemble must reject the with-replacement recursion.
func TestRecursionFiniteBatchCorrection(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	lr := linregData(rng, 64, []float64{1, 0.5, 0.2, 0.05})
	dirs, lmax := testDirs(lr)
	eta := 0.5 / lmax
	steps := []int{50}
	wrongCov, _ := lr.Recursion(eta, 16, WithReplacement, steps)
	rightCov, _ := lr.Recursion(eta, 16, WithoutReplacement, steps)
	wrong, _ := ProjectCov(wrongCov, dirs)
	right, _ := ProjectCov(rightCov, dirs)
	mc := mcSGD(rng, lr, eta, 16, WithoutReplacement, 4000, 50, steps, dirs)
	for k := range dirs {
		v, se, _ := sampleVar(mc[0], k)
		if z := (v - right[0][k]) / se; math.Abs(z) > 4 {
			t.Errorf("dir %d: MC %.4g, corrected recursion %.4g: %.1f standard errors", k, v, right[0][k], z)
		}
		if z := (v - wrong[0][k]) / se; math.Abs(z) < 5 {
			t.Errorf("dir %d: MC %.4g does not reject the uncorrected recursion %.4g (%.1f standard errors)", k, v, wrong[0][k], z)
		}
	}
}

// TestLangevinFailsAtLargeStep: with eta lambda_max = 1.2 the measured
// variance along the top eigenvector matches the discrete recursion but
// lies far outside the band around the Langevin prediction, which misses the
// eta^2 terms (THEORY.md section 3).
func TestLangevinFailsAtLargeStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	lr := linregData(rng, 64, []float64{1, 0.5, 0.2, 0.05})
	dirs, lmax := testDirs(lr)
	eta := 1.2 / lmax
	const b = 32
	steps := []int{10, 30}
	disc, _ := lr.Recursion(eta, b, WithReplacement, steps)
	lang, err := lr.Langevin(eta, b, WithReplacement, steps)
	if err != nil {
		t.Fatal(err)
	}
	dp, _ := ProjectCov(disc, dirs[:1])
	lp, _ := ProjectCov(lang, dirs[:1])
	mc := mcSGD(rng, lr, eta, b, WithReplacement, 4000, steps[len(steps)-1], steps, dirs[:1])
	for i, st := range steps {
		v, se, _ := sampleVar(mc[i], 0)
		zd := (v - dp[i][0]) / se
		zl := (v - lp[i][0]) / se
		t.Logf("step %d: MC %.4g +- %.2g, discrete %.4g (%.1f se), Langevin %.4g (%.1f se)", st, v, se, dp[i][0], zd, lp[i][0], zl)
		if math.Abs(zd) > 4 {
			t.Errorf("step %d: discrete prediction %.4g is %.1f standard errors from MC %.4g", st, dp[i][0], zd, v)
		}
		if math.Abs(zl) < 10 {
			t.Errorf("step %d: Langevin prediction %.4g only %.1f standard errors from MC %.4g", st, lp[i][0], zl, v)
		}
	}
}

// TestLangevinCovarianceLimits: the matrix Langevin solution projected on
// an eigenvector equals the scalar LangevinVariance, and the recursion on a
// one-dimensional problem equals DiscreteVariance with the measured
// lambda, c, s2 (the diagonal approximation is exact in d = 1).
func TestLangevinCovarianceLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	lr := linregData(rng, 64, []float64{1, 0.5, 0.2, 0.05})
	dirs, lmax := testDirs(lr)
	eta := 0.7 / lmax
	steps := []int{0, 3, 40}
	lang, _ := lr.Langevin(eta, 8, WithReplacement, steps)
	lp, _ := ProjectCov(lang, dirs[:4])
	for k := range 4 {
		p, _ := lr.Params(dirs[k], 8, WithReplacement)
		for i, st := range steps {
			want := LangevinVariance(eta, p, 0, float64(st))
			if !approxEq(lp[i][k], want, 1e-9) {
				t.Errorf("eigendirection %d step %d: matrix Langevin %.10g, scalar %.10g", k, st, lp[i][k], want)
			}
		}
	}

	one := linregData(rng, 50, []float64{2})
	u := []float64{1}
	for _, s := range []Sampling{WithReplacement, WithoutReplacement} {
		p, _ := one.Params(u, 5, s)
		eta := 0.8 / p.Lambda
		covs, _ := one.Recursion(eta, 5, s, []int{1, 7, 60})
		for i, st := range []int{1, 7, 60} {
			got := covs[i].At(0, 0)
			want := DiscreteVariance(eta, p, 0, float64(st))
			if !approxEq(got, want, 1e-10) {
				t.Errorf("d=1 %s step %d: recursion %.12g, scalar theory %.12g", s, st, got, want)
			}
		}
	}
}

func approxEq(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}
