package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomOrthogonal returns a d x d orthogonal matrix (Q of a Gaussian
// matrix).
func randomOrthogonal(rng *rand.Rand, d int) *mat.Dense {
	g := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	return &q
}

// project returns V^T S V.
func project(v *mat.Dense, s mat.Matrix) *mat.SymDense {
	var tmp, r mat.Dense
	tmp.Mul(v.T(), s)
	r.Mul(&tmp, v)
	_, k := v.Dims()
	out := mat.NewSymDense(k, nil)
	for a := range k {
		for b := a; b < k; b++ {
			out.SetSym(a, b, 0.5*(r.At(a, b)+r.At(b, a)))
		}
	}
	return out
}

// eigenBasis returns the eigenvectors of the symmetric h as columns.
func eigenBasis(h *mat.SymDense) *mat.Dense {
	var es mat.EigenSym
	es.Factorize(h, true)
	var q mat.Dense
	es.VectorsTo(&q)
	return &q
}

// linregSubspace builds the subspace model of lr over the orthonormal basis
// v (d x d) with exact per-example curvature terms.
func linregSubspace(t *testing.T, lr *LinReg, v *mat.Dense, eta float64, b int, s Sampling) SubspaceModel {
	t.Helper()
	n, d := lr.A.Dims()
	ex := make([]*mat.SymDense, n)
	for i := range n {
		var z mat.VecDense
		z.MulVec(v.T(), lr.A.RowView(i))
		a := mat.NewSymDense(d, nil)
		a.SymRankOne(a, 1, &z)
		ex[i] = a
	}
	noise, err := PerExampleCurvatureNoise(ex, b, s)
	if err != nil {
		t.Fatal(err)
	}
	if r := noise.Terms(); r > d*(d+1)/2 {
		t.Fatalf("%d per-example terms compressed to %d, want at most %d", n, r, d*(d+1)/2)
	}
	c, err := lr.NoiseCov(b, s)
	if err != nil {
		t.Fatal(err)
	}
	return SubspaceModel{Eta: eta, H: project(v, lr.H), C: project(v, c), Noise: noise}
}

// maxRelDiff returns max over entries of |got - want| / sqrt(want_aa want_bb).
func maxRelDiff(got, want *mat.SymDense) float64 {
	k := want.SymmetricDim()
	worst := 0.0
	for a := range k {
		for b := a; b < k; b++ {
			scale := math.Sqrt(math.Abs(want.At(a, a) * want.At(b, b)))
			diff := math.Abs(got.At(a, b) - want.At(a, b))
			if diff == 0 {
				continue
			}
			worst = max(worst, diff/scale) // scale 0 with diff > 0: +Inf
		}
	}
	return worst
}

// TestSubspaceMatchesLinRegRecursion: over a full basis of R^d the subspace
// recursion with exact per-example curvature terms is the exact d x d
// recursion of SGD on linear regression, projected. It must agree to 1e-10
// relative in both bases (eigenvectors of H, and a random rotation where
// H_V is not diagonal), both samplings and both methods. A wrong sampling
// factor, a dropped H S H term, a wrong eigenbasis rotation or a wrong
// compression of the per-example terms each break it by far more.
func TestSubspaceMatchesLinRegRecursion(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	lr := linregData(rng, 120, []float64{1, 0.5, 0.2, 0.05})
	_, d := lr.A.Dims()
	var es mat.EigenSym
	es.Factorize(lr.H, false)
	eta := 0.9 / es.Values(nil)[d-1]
	steps := []int{0, 1, 3, 20, 150, 600}
	steps64 := make([]int64, len(steps))
	for i, s := range steps {
		steps64[i] = int64(s)
	}
	bases := map[string]*mat.Dense{"eigenvectors": eigenBasis(lr.H), "rotated": randomOrthogonal(rng, d)}
	for _, s := range []Sampling{WithReplacement, WithoutReplacement} {
		const b = 8
		exact, err := lr.Recursion(eta, b, s, steps)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range bases {
			m := linregSubspace(t, lr, v, eta, b, s)
			for _, method := range []SubspaceMethod{SubspaceIterate, SubspaceSpectral, SubspaceAuto} {
				got, err := SubspaceRecursion(m, steps64, SubspaceOptions{Method: method})
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for i := range steps {
					worst = max(worst, maxRelDiff(got[i], project(v, exact[i])))
				}
				if worst > 1e-10 {
					t.Errorf("%s, %s basis, method %d: largest relative difference from the exact recursion %.3g, want <= 1e-10", s, name, method, worst)
				}
				t.Logf("%s, %s basis, method %d: largest relative difference %.2g", s, name, method, worst)
			}
		}
	}
}

// TestSubspaceReducesToDiagonal: with every K x K input diagonal the
// recursion is K independent scalar recursions, whose closed form is
// DiscreteVariance; all three methods (the closure is exact here) must give
// it. The directions cover flat (lambda = 0, multiplicative
// growth from s2), nearly flat, confined, overshooting (eta lambda = 1.5)
// and unstable (eta lambda = 2.02), started from non-zero variances.
func TestSubspaceReducesToDiagonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const eta = 0.5
	lam := []float64{0, 2e-4, 0.6, 3, 4.04}
	c := []float64{1, 0.3, 2, 0.5, 0.1}
	var0 := []float64{0.2, 0, 1, 0.01, 0.003}
	k := len(lam)
	const M = 7
	batches := make([]*mat.SymDense, M)
	for m := range batches {
		a := mat.NewSymDense(k, nil)
		for j := range k {
			a.SetSym(j, j, lam[j]+0.3*math.Sqrt(float64(j+1))*rng.NormFloat64())
		}
		batches[m] = a
	}
	noise, err := SampledCurvatureNoise(batches, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := CrossCurvatureNoise(batches, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := mat.NewSymDense(k, nil)
	cv := mat.NewSymDense(k, nil)
	s0 := mat.NewSymDense(k, nil)
	for j := range k {
		h.SetSym(j, j, lam[j])
		cv.SetSym(j, j, c[j])
		s0.SetSym(j, j, var0[j])
	}
	m := SubspaceModel{Eta: eta, H: h, C: cv, Noise: noise}
	steps := []int64{0, 1, 7, 100, 2000}
	for _, method := range []SubspaceMethod{SubspaceIterate, SubspaceSpectral, SubspaceClosure} {
		got, err := SubspaceRecursion(m, steps, SubspaceOptions{S0: s0, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range steps {
			for j := range k {
				p := DirectionParams{Lambda: lam[j], C: c[j], S2: s2.At(j, j)}
				want := DiscreteVariance(eta, p, var0[j], float64(st))
				if rel := math.Abs(got[i].At(j, j)-want) / want; rel > 1e-10 {
					t.Errorf("method %d, step %d, direction %d (eta lambda %g): subspace %.12g, diagonal theory %.12g (relative %.2g)", method, st, j, eta*lam[j], got[i].At(j, j), want, rel)
				}
				for l := j + 1; l < k; l++ {
					if off := math.Abs(got[i].At(j, l)); off > 1e-12*math.Sqrt(got[i].At(j, j)*got[i].At(l, l)) {
						t.Errorf("method %d, step %d: off-diagonal (%d, %d) = %.3g, want 0", method, st, j, l, off)
					}
				}
			}
		}
	}
}

// randomModel is a dense K x K model with M sampled noise batches.
func randomModel(rng *rand.Rand, k, M int, eta float64) (SubspaceModel, []*mat.SymDense, *mat.SymDense) {
	q := randomOrthogonal(rng, k)
	d := mat.NewDiagDense(k, nil)
	for j := range k {
		d.SetDiag(j, 2*float64(j*j)/float64(k*k)) // 0 .. ~2: flat to eta lambda ~ 0.8
	}
	var tmp, hd mat.Dense
	tmp.Mul(q, d)
	hd.Mul(&tmp, q.T())
	h := mat.NewSymDense(k, nil)
	for a := range k {
		for b := a; b < k; b++ {
			h.SetSym(a, b, 0.5*(hd.At(a, b)+hd.At(b, a)))
		}
	}
	batches := make([]*mat.SymDense, M)
	g := make([][]float64, M)
	for m := range M {
		a := mat.NewSymDense(k, nil)
		for i := range k {
			for j := i; j < k; j++ {
				a.SetSym(i, j, h.At(i, j)+0.15*rng.NormFloat64())
			}
		}
		batches[m] = a
		g[m] = make([]float64, k)
		for i := range k {
			g[m][i] = rng.NormFloat64() * (1 + float64(i%3))
		}
	}
	noise, err := SampledCurvatureNoise(batches, h)
	if err != nil {
		panic(err)
	}
	c, err := SampledNoiseCov(g, nil)
	if err != nil {
		panic(err)
	}
	return SubspaceModel{Eta: eta, H: h, C: c, Noise: noise}, batches, h
}

// TestSubspaceClosureNearDiagonal: on linear regression with independent
// features (S' nearly diagonal in the eigenbasis) the diagonal closure stays
// within 2% of the exact recursion along the eigenvectors, and it is not
// the plain diagonal theory: it keeps the transfer through E[Delta_jl^2].
func TestSubspaceClosureNearDiagonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	lr := linregData(rng, 400, []float64{1, 0.5, 0.2, 0.001})
	_, d := lr.A.Dims()
	var es mat.EigenSym
	es.Factorize(lr.H, false)
	eta := 0.9 / es.Values(nil)[d-1]
	v := eigenBasis(lr.H)
	m := linregSubspace(t, lr, v, eta, 4, WithReplacement)
	steps := []int64{10, 100, 2000}
	exact, err := SubspaceVariance(m, steps, SubspaceOptions{Method: SubspaceSpectral})
	if err != nil {
		t.Fatal(err)
	}
	clo, err := SubspaceVariance(m, steps, SubspaceOptions{Method: SubspaceClosure})
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range steps {
		for j := range d {
			worst = max(worst, math.Abs(clo[i][j]-exact[i][j])/exact[i][j])
		}
	}
	t.Logf("closure vs exact: largest relative difference %.2g", worst)
	if worst > 0.02 {
		t.Errorf("closure differs from the exact recursion by %.3g relative, want < 0.02 on nearly diagonal data", worst)
	}
	// The flattest mode (index 0, ascending eigenvalues of H_V = V^T H V with
	// V the eigenvectors in ascending order) gains from the stiff ones.
	p, err := lr.Params(mat.Col(nil, 0, v), 4, WithReplacement)
	if err != nil {
		t.Fatal(err)
	}
	diag := DiscreteVariance(eta, p, 0, float64(steps[2]))
	if !(clo[2][0] > diag*1.001) {
		t.Errorf("flat mode: closure %.6g not above the diagonal theory %.6g", clo[2][0], diag)
	}
	t.Logf("flat mode at step %d: exact %.6g, closure %.6g, diagonal theory %.6g", steps[2], exact[2][0], clo[2][0], diag)
}

// TestSubspaceMethodsAgree checks both methods against a naive dense
// implementation of the recursion written straight from THEORY.md section 7
// (no eigenbasis, E[A S A] = H S H + mean_m (A_m - H) S (A_m - H)), from a
// non-zero S0, on a dense model with sampled batches; and the two methods
// against each other at long times.
func TestSubspaceMethodsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	const k, M, eta = 7, 12, 0.4
	m, batches, h := randomModel(rng, k, M, eta)
	s0 := mat.NewSymDense(k, nil)
	x := mat.NewVecDense(k, nil)
	for range 3 {
		for i := range k {
			x.SetVec(i, rng.NormFloat64())
		}
		s0.SymRankOne(s0, 0.1, x)
	}
	// Naive reference.
	steps := []int64{1, 2, 10, 200}
	var ref []*mat.SymDense
	s := mat.DenseCopyOf(s0)
	for st := int64(1); st <= steps[len(steps)-1]; st++ {
		var hs, sh, hsh, next mat.Dense
		hs.Mul(h, s)
		sh.Mul(s, h)
		hsh.Mul(&hs, h)
		next.Add(&hs, &sh)
		next.Scale(-eta, &next)
		next.Add(s, &next)
		extra := mat.NewDense(k, k, nil)
		extra.Add(extra, &hsh)
		for _, a := range batches {
			var dlt, ds, dsd mat.Dense
			dlt.Sub(a, h)
			ds.Mul(&dlt, s)
			dsd.Mul(&ds, &dlt)
			dsd.Scale(1/float64(M), &dsd)
			extra.Add(extra, &dsd)
		}
		extra.Add(extra, m.C)
		extra.Scale(eta*eta, extra)
		next.Add(&next, extra)
		s = &next
		for _, want := range steps {
			if st == want {
				ref = append(ref, project(eyeDense(k), s))
			}
		}
	}
	for _, method := range []SubspaceMethod{SubspaceIterate, SubspaceSpectral} {
		got, err := SubspaceRecursion(m, steps, SubspaceOptions{S0: s0, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		for i := range steps {
			if d := maxRelDiff(got[i], ref[i]); d > 1e-10 {
				t.Errorf("method %d step %d: relative difference %.3g from the naive recursion", method, steps[i], d)
			}
		}
	}
	long := []int64{3000, 20000}
	it, err := SubspaceRecursion(m, long, SubspaceOptions{S0: s0, Method: SubspaceIterate})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := SubspaceRecursion(m, long, SubspaceOptions{S0: s0, Method: SubspaceSpectral})
	if err != nil {
		t.Fatal(err)
	}
	for i := range long {
		if d := maxRelDiff(sp[i], it[i]); d > 1e-9 {
			t.Errorf("step %d: spectral and iterated differ by %.3g relative", long[i], d)
		}
	}
	v, err := SubspaceVariance(m, long[:1], SubspaceOptions{S0: s0})
	if err != nil {
		t.Fatal(err)
	}
	for j := range k {
		if v[0][j] != sp[0].At(j, j) && math.Abs(v[0][j]-sp[0].At(j, j)) > 1e-10*sp[0].At(j, j) {
			t.Errorf("SubspaceVariance direction %d: %g, diagonal of the recursion %g", j, v[0][j], sp[0].At(j, j))
		}
	}
}

func eyeDense(k int) *mat.Dense {
	e := mat.NewDense(k, k, nil)
	for i := range k {
		e.Set(i, i, 1)
	}
	return e
}

// TestCurvatureNoiseEstimators checks the estimators against direct sums:
// known and sample mean, the compression of many terms, and the noise
// covariance.
func TestCurvatureNoiseEstimators(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const k = 4
	x := mat.NewSymDense(k, nil)
	for i := range k {
		for j := i; j < k; j++ {
			x.SetSym(i, j, rng.NormFloat64())
		}
	}
	direct := func(a []*mat.SymDense, mean mat.Matrix, w float64) *mat.SymDense {
		sum := mat.NewDense(k, k, nil)
		for _, am := range a {
			var dl, dx, dxd mat.Dense
			dl.Sub(am, mean)
			dx.Mul(&dl, x)
			dxd.Mul(&dx, &dl)
			sum.Add(sum, &dxd)
		}
		sum.Scale(w, sum)
		return project(eyeDense(k), sum)
	}
	for _, M := range []int{3, 40} { // 40 > K(K+1)/2 = 10: compressed
		a := make([]*mat.SymDense, M)
		mean := mat.NewDense(k, k, nil)
		for m := range a {
			a[m] = mat.NewSymDense(k, nil)
			for i := range k {
				for j := i; j < k; j++ {
					a[m].SetSym(i, j, float64(i-j)+rng.NormFloat64())
				}
			}
			mean.Add(mean, a[m])
		}
		mean.Scale(1/float64(M), mean)
		h := mat.NewSymDense(k, nil)
		for i := range k {
			for j := i; j < k; j++ {
				h.SetSym(i, j, float64(i-j)+0.1)
			}
		}
		known, err := SampledCurvatureNoise(a, h)
		if err != nil {
			t.Fatal(err)
		}
		sample, err := SampledCurvatureNoise(a, nil)
		if err != nil {
			t.Fatal(err)
		}
		if M > 10 && (known.Terms() > 10 || sample.Terms() > 10) {
			t.Errorf("M = %d: %d and %d terms, want at most K(K+1)/2 = 10", M, known.Terms(), sample.Terms())
		}
		for _, tc := range []struct {
			name string
			cn   *CurvatureNoise
			want *mat.SymDense
		}{
			{"known mean", known, direct(a, h, 1/float64(M))},
			{"sample mean", sample, direct(a, mean, 1/float64(M-1))},
		} {
			var got mat.SymDense
			tc.cn.Apply(&got, x)
			if d := maxAbsDiff(&got, tc.want); d > 1e-12*normInf(tc.want) {
				t.Errorf("M = %d, %s: E[D X D] differs from the direct sum by %.3g", M, tc.name, d)
			}
		}
		// s2 along the diagonal is the sample variance of the entries.
		s2, err := CrossCurvatureNoise(a, nil)
		if err != nil {
			t.Fatal(err)
		}
		col := make([]float64, M)
		for m := range a {
			col[m] = a[m].At(0, 1)
		}
		_, v, _ := moments(col)
		if math.Abs(s2.At(0, 1)-v) > 1e-12*v {
			t.Errorf("M = %d: cross-curvature noise (0, 1) %.12g, sample variance %.12g", M, s2.At(0, 1), v)
		}
	}
	// Gradient-noise covariance: around the sample mean (ddof 1) and a
	// known mean (denominator M).
	g := [][]float64{{1, 2}, {3, -1}, {-1, 0}}
	c, err := SampledNoiseCov(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	// mean (1, 1/3): deviations (0, 5/3), (2, -4/3), (-2, -1/3).
	if want := []float64{4, (0 - 8.0/3 + 2.0/3) / 2, (25.0/9 + 16.0/9 + 1.0/9) / 2}; math.Abs(c.At(0, 0)-want[0]) > 1e-14 || math.Abs(c.At(0, 1)-want[1]) > 1e-14 || math.Abs(c.At(1, 1)-want[2]) > 1e-14 {
		t.Errorf("noise covariance %v, want %v", mat.Formatted(c), want)
	}
	c, _ = SampledNoiseCov(g, []float64{0, 0})
	if want := (1.0 + 9 + 1) / 3; math.Abs(c.At(0, 0)-want) > 1e-14 {
		t.Errorf("noise covariance around 0: %g, want %g", c.At(0, 0), want)
	}
}

func maxAbsDiff(a, b *mat.SymDense) float64 {
	k := a.SymmetricDim()
	w := 0.0
	for i := range k {
		for j := range k {
			w = max(w, math.Abs(a.At(i, j)-b.At(i, j)))
		}
	}
	return w
}

func normInf(a *mat.SymDense) float64 { return maxAbsDiff(a, mat.NewSymDense(a.SymmetricDim(), nil)) }

// TestSubspaceErrors: bad input gets a one-line error naming the problem.
func TestSubspaceErrors(t *testing.T) {
	h := mat.NewSymDense(2, []float64{1, 0, 0, 2})
	h3 := mat.NewSymDense(3, nil)
	n3, _ := NewCurvatureNoise([]*mat.SymDense{h3}, 1)
	big := mat.NewSymDense(78, nil) // K(K+1)/2 = 3081 > MaxSpectralDim
	for _, tc := range []struct {
		m     SubspaceModel
		steps []int64
		opts  SubspaceOptions
		want  string
	}{
		{SubspaceModel{Eta: 0, H: h}, []int64{1}, SubspaceOptions{}, "learning rate"},
		{SubspaceModel{Eta: 0.1}, []int64{1}, SubspaceOptions{}, "no H_V"},
		{SubspaceModel{Eta: 0.1, H: h, C: h3}, []int64{1}, SubspaceOptions{}, "C_V"},
		{SubspaceModel{Eta: 0.1, H: h, Noise: n3}, []int64{1}, SubspaceOptions{}, "curvature noise is 3 x 3"},
		{SubspaceModel{Eta: 0.1, H: h}, []int64{3, 2}, SubspaceOptions{}, "ascending"},
		{SubspaceModel{Eta: 0.1, H: h}, []int64{1}, SubspaceOptions{S0: h3}, "S0"},
		{SubspaceModel{Eta: 0.1, H: big}, []int64{1}, SubspaceOptions{Method: SubspaceSpectral}, "limit"},
	} {
		_, err := SubspaceRecursion(tc.m, tc.steps, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want a one-line error mentioning %q", err, tc.want)
		}
	}
	if _, err := NewCurvatureNoise([]*mat.SymDense{h, h3}, 1); err == nil {
		t.Error("deviations of two sizes accepted")
	}
	if _, err := NewCurvatureNoise([]*mat.SymDense{h}, -1); err == nil {
		t.Error("negative weight accepted")
	}
	if _, err := SampledCurvatureNoise([]*mat.SymDense{h}, nil); err == nil {
		t.Error("a sample mean of one batch accepted")
	}
	if _, err := PerExampleCurvatureNoise([]*mat.SymDense{h, h}, 3, WithoutReplacement); err == nil {
		t.Error("batch 3 without replacement from 2 examples accepted")
	}
	if _, err := SampledNoiseCov([][]float64{{1, 2}, {1}}, nil); err == nil {
		t.Error("gradients of two lengths accepted")
	}
}

// BenchmarkSubspaceIterate measures one step of plain iteration at K = 100
// with M = 32 sampled batches (run with -benchtime=10x; see the report).
func BenchmarkSubspaceIterate(b *testing.B) {
	rng := rand.New(rand.NewPCG(71, 72))
	m, _, _ := randomModel(rng, 100, 32, 0.4)
	b.ResetTimer()
	for b.Loop() {
		if _, err := SubspaceRecursion(m, []int64{10}, SubspaceOptions{Method: SubspaceIterate}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubspaceSpectral measures the closed-form solution at K = 30
// (K(K+1)/2 = 465) with M = 32 sampled batches, 100 requested steps.
func BenchmarkSubspaceSpectral(b *testing.B) {
	rng := rand.New(rand.NewPCG(73, 74))
	m, _, _ := randomModel(rng, 30, 32, 0.4)
	steps := make([]int64, 100)
	for i := range steps {
		steps[i] = int64(1000 * (i + 1))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := SubspaceRecursion(m, steps, SubspaceOptions{Method: SubspaceSpectral}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubspaceClosure measures the diagonal closure at K = 100 with
// M = 32 sampled batches and 100 requested steps up to 1e5.
func BenchmarkSubspaceClosure(b *testing.B) {
	rng := rand.New(rand.NewPCG(75, 76))
	m, _, _ := randomModel(rng, 100, 32, 0.4)
	steps := make([]int64, 100)
	for i := range steps {
		steps[i] = int64(1000 * (i + 1))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := SubspaceRecursion(m, steps, SubspaceOptions{Method: SubspaceClosure}); err != nil {
			b.Fatal(err)
		}
	}
}
