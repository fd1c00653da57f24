package probe

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

func randomBatch(rng *rand.Rand, n, d, classes int) *data.Batch {
	b := &data.Batch{N: n, X: make([]float64, n*d), Labels: make([]int, n), Targets: make([]float64, n)}
	for i := range b.X {
		b.X[i] = rng.NormFloat64()
	}
	for i := range b.Labels {
		b.Labels[i] = rng.IntN(classes)
		b.Targets[i] = rng.NormFloat64()
	}
	return b
}

func randomUnit(rng *rand.Rand, p int) []float64 {
	v := make([]float64, p)
	var s float64
	for i := range v {
		v[i] = rng.NormFloat64()
		s += v[i] * v[i]
	}
	for i := range v {
		v[i] /= math.Sqrt(s)
	}
	return v
}

func newModel(t *testing.T, c models.Config, s models.Shape) (models.Model, []float64) {
	t.Helper()
	c.DType = "float64"
	m, err := models.New(c, s, 3)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float64, m.NumParams())
	m.Params(w)
	return m, w
}

// TestHessianLinRegExact compares the finite-difference HVP of least squares
// with its exact Hessian X^T X / n.
func TestHessianLinRegExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n, d = 50, 8
	b := randomBatch(rng, n, d, 2)
	m, w := newModel(t, models.Config{Kind: "linreg"}, models.Shape{Inputs: d})
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	h, err := NewHessian(m, b, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(n, d, b.X)
	var exact mat.Dense
	exact.Mul(x.T(), x)
	exact.Scale(1/float64(n), &exact)
	for trial := 0; trial < 5; trial++ {
		v := randomUnit(rng, d)
		for i := range v {
			v[i] *= 3 // the step must scale with ||v||
		}
		got := make([]float64, d)
		if err := h.Apply(got, v); err != nil {
			t.Fatal(err)
		}
		want := mat.NewVecDense(d, nil)
		want.MulVec(&exact, mat.NewVecDense(d, v))
		if e := relDiff(got, want.RawVector().Data); e > 1e-8 {
			t.Errorf("HVP relative error %g > 1e-8", e)
		}
	}
	// Apply must leave the model at the reference point.
	now := make([]float64, d)
	m.Params(now)
	if relDiff(now, w) != 0 {
		t.Error("Apply moved the model's parameters")
	}
}

// TestHessianMLPAgainstHigherOrder builds the dense Hessian of a tanh MLP
// from central-difference HVPs and compares it with a fourth-order stencil
// of exact gradients, then checks Lanczos against the dense spectrum.
func TestHessianMLPAgainstHigherOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	b := randomBatch(rng, 40, 6, 4)
	m, w := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{12, 8}}}, models.Shape{Inputs: 6, Classes: 4})
	p := m.NumParams()
	if p < 150 {
		t.Fatalf("want a few hundred parameters, have %d", p)
	}
	h, err := NewHessian(m, b, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, asym, err := DenseMatrix(h)
	if err != nil {
		t.Fatal(err)
	}
	// Fourth-order stencil: (-g(2e) + 8 g(e) - 8 g(-e) + g(-2e)) / (12 e).
	const e = 1e-3
	ref := mat.NewDense(p, p, nil)
	g := make([]float64, p)
	wp := make([]float64, p)
	for j := 0; j < p; j++ {
		col := make([]float64, p)
		for _, s := range []struct{ k, c float64 }{{2, -1}, {1, 8}, {-1, -8}, {-2, 1}} {
			copy(wp, w)
			wp[j] += s.k * e
			m.SetParams(wp)
			if _, err := m.Grad(b, g); err != nil {
				t.Fatal(err)
			}
			for i := range col {
				col[i] += s.c * g[i] / (12 * e)
			}
		}
		ref.SetCol(j, col)
	}
	m.SetParams(w)
	var diff mat.Dense
	diff.Sub(a, ref)
	rel := mat.Norm(&diff, 2) / mat.Norm(ref, 2)
	if rel > 1e-6 {
		t.Errorf("dense Hessian from HVPs differs from the 4th-order stencil by %g (relative, Frobenius) > 1e-6", rel)
	}
	if asym > 1e-6*mat.Norm(ref, math.Inf(1)) {
		t.Errorf("HVP Hessian asymmetry %g is too large", asym)
	}

	res := checkLanczosAgainstDense(t, h, a)
	t.Logf("P=%d, Lanczos used %d HVPs (dense: %d)", p, res.Applies, p)
}

// TestMinibatchNoiseMatchesExact compares the minibatch noise estimates with
// their exact values: with replacement, a batch of b examples has
// Var(u . g_B) = Var_n(u . g_n) / b and likewise for the curvature.
func TestMinibatchNoiseMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const n, batch = 16, 3
	full := randomBatch(rng, n, 5, 3)
	ds := &batchDataset{full}
	m, w := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{6}}}, models.Shape{Inputs: 5, Classes: 3})
	p := m.NumParams()
	u := randomUnit(rng, p)
	// The softmax shift symmetry: the uniform output-bias direction.
	null := make([]float64, p)
	for _, ti := range m.Tensors() {
		if ti.Name == "out.bias" {
			for i := ti.Offset; i < ti.Offset+ti.Size; i++ {
				null[i] = 1 / math.Sqrt(float64(ti.Size))
			}
		}
	}
	dirs := [][]float64{u, null}

	// Exact population values from per-example quantities.
	gs, cs := make([]float64, n), make([]float64, n)
	var one data.Batch
	hv := make([]float64, p)
	for k := 0; k < n; k++ {
		ds.Fill(&one, []int{k})
		h, err := NewHessian(m, &one, w, 0)
		if err != nil {
			t.Fatal(err)
		}
		gs[k] = dot(u, h.Grad0)
		h.Apply(hv, u)
		cs[k] = dot(u, hv)
	}
	popVar := func(x []float64) float64 {
		_, v, _ := varianceWithError(x)
		return v * float64(len(x)-1) / float64(len(x))
	}
	wantC, wantS2 := popVar(gs)/batch, popVar(cs)/batch

	opts := NoiseOptions{Batches: 800, BatchSize: batch, Sampling: data.WithReplacement, Seed: 9}
	got, central, err := MinibatchNoise(context.Background(), []models.Model{m}, ds, w, dirs, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Forward products see the same batches and gradients, and curvatures
	// within round-off and first-order truncation of the central ones.
	opts.Forward = true
	fwd, forward, err := MinibatchNoise(context.Background(), []models.Model{m}, ds, w, dirs, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var curvScale float64
	for _, c := range central.Curv {
		curvScale = max(curvScale, math.Abs(c[0]))
	}
	for j := range central.Curv {
		if e := relDiff(forward.Grad[j], central.Grad[j]); e != 0 {
			t.Fatalf("batch %d: forward products changed the gradients by %g", j, e)
		}
		if d := math.Abs(forward.Curv[j][0] - central.Curv[j][0]); d > 1e-5*curvScale {
			t.Fatalf("batch %d: u^T H_B u = %.10g forward, %.10g central", j, forward.Curv[j][0], central.Curv[j][0])
		}
	}
	if d := math.Abs(fwd[0].S2 - got[0].S2); d > 1e-4*got[0].S2 {
		t.Errorf("s2 = %.8g forward, %.8g central", fwd[0].S2, got[0].S2)
	}
	if d := math.Abs(got[0].C - wantC); d > 4*got[0].CErr {
		t.Errorf("c = %g +- %g, exact %g", got[0].C, got[0].CErr, wantC)
	}
	if d := math.Abs(got[0].S2 - wantS2); d > 4*got[0].S2Err {
		t.Errorf("s2 = %g +- %g, exact %g", got[0].S2, got[0].S2Err, wantS2)
	}
	if got[0].CErr > 0.2*wantC || got[0].CErr <= 0 {
		t.Errorf("standard error %g implausible for c = %g over 800 batches", got[0].CErr, wantC)
	}
	flags, _ := FlagNulls([]float64{got[0].C, got[1].C}, 0)
	if !flags[1] || flags[0] {
		t.Errorf("null flags %v for c = %g (random) and %g (output-bias shift), want [false true]", flags, got[0].C, got[1].C)
	}
}

// batchDataset serves the examples of one pre-filled batch.
type batchDataset struct{ b *data.Batch }

func (d *batchDataset) Len() int { return d.b.N }
func (d *batchDataset) Fill(dst *data.Batch, idx []int) {
	k := len(d.b.X) / d.b.N
	dst.N = len(idx)
	dst.X = dst.X[:0]
	dst.Labels = dst.Labels[:0]
	dst.Targets = dst.Targets[:0]
	for _, i := range idx {
		dst.X = append(dst.X, d.b.X[i*k:(i+1)*k]...)
		dst.Labels = append(dst.Labels, d.b.Labels[i])
		dst.Targets = append(dst.Targets, d.b.Targets[i])
	}
}

func relDiff(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}

// smoothOnly hides a model's Piecewise methods, so that the Hessian falls
// back to plain central differences through the kinks.
type smoothOnly struct{ models.Model }

// TestHessianReLUCNN checks the products of a small ReLU/max-pool CNN, the
// case where plain central differences of gradients fail: the dense Hessian
// from frozen-pattern products must match second differences of the frozen
// loss (a forward-only computation, independent of the backward pass), be
// symmetric, not depend on the step, and give Lanczos the dense spectrum.
func TestHessianReLUCNN(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	b := &data.Batch{N: 48, X: make([]float64, 48*3*64), Labels: make([]int, 48)}
	for i := range b.X {
		b.X[i] = rng.NormFloat64()
	}
	for i := range b.Labels {
		b.Labels[i] = rng.IntN(10)
	}
	// Impl fused, the probe path's: the default ops graph holds no pattern.
	m, w := newModel(t, models.Config{Kind: "cnn", Impl: "fused", CNN: models.CNNConfig{Width: 2, Hidden: 6}}, models.Shape{Image: []int{3, 8, 8}, Classes: 10})
	p := m.NumParams()
	h, err := NewHessian(m, b, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.FrozenPattern() {
		t.Fatal("the CNN's products do not hold its activation pattern")
	}
	a, asym, err := DenseMatrix(h)
	if err != nil {
		t.Fatal(err)
	}
	scale := mat.Norm(a, 2)
	if asym > 1e-7*scale {
		t.Errorf("frozen-pattern Hessian asymmetry %.3g > 1e-7 x %.3g", asym, scale)
	}

	// v^T H v from a fourth-order second difference of the frozen loss.
	pw := m.(models.Piecewise)
	pat, err := pw.RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	g := make([]float64, p)
	wp := make([]float64, p)
	loss := func(v []float64, s float64) float64 {
		for i := range wp {
			wp[i] = w[i] + s*v[i]
		}
		m.SetParams(wp)
		l, err := pw.GradFrozen(b, pat, g)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const e = 1e-3
	for trial := 0; trial < 8; trial++ {
		v := randomUnit(rng, p)
		want := (-loss(v, 2*e) + 16*loss(v, e) - 30*loss(v, 0) + 16*loss(v, -e) - loss(v, -2*e)) / (12 * e * e)
		got := mat.Inner(mat.NewVecDense(p, v), a, mat.NewVecDense(p, v))
		if math.Abs(got-want) > 1e-6*scale {
			t.Errorf("v^T H v = %.10g from products, %.10g from the loss (scale %.3g)", got, want, scale)
		}
	}
	m.SetParams(w)

	// A step 100 times longer switches many units; frozen products do not
	// notice, plain differences through the kinks do.
	long, err := NewHessian(m, b, w, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewHessian(smoothOnly{m}, b, w, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	v := randomUnit(rng, p)
	want := make([]float64, p)
	mat.NewVecDense(p, want).MulVec(a, mat.NewVecDense(p, v))
	for _, c := range []struct {
		name string
		h    *Hessian
		ok   bool
	}{{"frozen", long, true}, {"plain", plain, false}} {
		got := make([]float64, p)
		if err := c.h.Apply(got, v); err != nil {
			t.Fatal(err)
		}
		d := relDiff(got, want)
		if c.ok && d > 1e-4 {
			t.Errorf("frozen product with step 0.01 differs from step 1e-4 by %.3g", d)
		}
		if !c.ok && d < 1e-3 {
			t.Errorf("plain product with step 0.01 differs by only %.3g: the test no longer crosses kinks", d)
		}
		t.Logf("%s, step 0.01: relative difference %.3g", c.name, d)
	}

	res := checkLanczosAgainstDense(t, h, a)
	vals := res.Top
	t.Logf("P=%d, lambda_max %.4g, lambda_min %.4g, asymmetry %.3g", p, vals[0].Value, res.Bottom[0].Value, asym)
}

// checkLanczosAgainstDense checks the top 5 and bottom 2 Lanczos
// eigenvalues of h against the dense eigenvalues of its matrix a, to 1e-6
// of the largest magnitude.
func checkLanczosAgainstDense(t *testing.T, h Operator, a *mat.SymDense) *LanczosResult {
	t.Helper()
	vals, _, err := DenseEigen(a)
	if err != nil {
		t.Fatal(err)
	}
	scale := math.Max(math.Abs(vals[0]), math.Abs(vals[len(vals)-1]))
	res, err := Lanczos(h, LanczosOptions{Top: 5, Bottom: 2, Seed: 1, Tol: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	for i, pair := range res.Top {
		if want := vals[len(vals)-1-i]; math.Abs(pair.Value-want) > 1e-6*scale {
			t.Errorf("Lanczos top %d = %.10g, dense %.10g", i, pair.Value, want)
		}
	}
	for i, pair := range res.Bottom {
		if math.Abs(pair.Value-vals[i]) > 1e-6*scale {
			t.Errorf("Lanczos bottom %d = %.10g, dense %.10g", i, pair.Value, vals[i])
		}
	}
	return res
}

// TestHessianRefusesUnholdablePattern checks that NewHessian refuses a
// model with ReLU or max-pool kinks that cannot hold its activation
// pattern (the plain and ops Gorgonia graphs), whose central differences
// would cross kinks, and accepts the fused one and smooth plain models.
func TestHessianRefusesUnholdablePattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	img := models.Shape{Image: []int{3, 8, 8}, Classes: 10}
	cnnBatch := &data.Batch{N: 4, X: make([]float64, 4*3*8*8), Labels: []int{0, 1, 2, 3}}
	for i := range cnnBatch.X {
		cnnBatch.X[i] = rng.NormFloat64()
	}
	tab := models.Shape{Inputs: 5, Classes: 3}
	tabBatch := randomBatch(rng, 12, 5, 3)
	for _, c := range []struct {
		name   string
		cfg    models.Config
		shape  models.Shape
		b      *data.Batch
		refuse bool
	}{
		{"cnn ops", models.Config{Kind: "cnn", Impl: "ops", CNN: models.CNNConfig{Width: 2, Hidden: 6}}, img, cnnBatch, true},
		{"cnn plain", models.Config{Kind: "cnn", Impl: "plain", CNN: models.CNNConfig{Width: 2, Hidden: 6}}, img, cnnBatch, true},
		{"cnn fused", models.Config{Kind: "cnn", Impl: "fused", CNN: models.CNNConfig{Width: 2, Hidden: 6}}, img, cnnBatch, false},
		{"relu mlp plain", models.Config{Kind: "mlp", Impl: "plain", MLP: models.MLPConfig{Hidden: []int{4}, Activation: "relu"}}, tab, tabBatch, true},
		{"relu mlp fused", models.Config{Kind: "mlp", Impl: "fused", MLP: models.MLPConfig{Hidden: []int{4}, Activation: "relu"}}, tab, tabBatch, false},
		{"tanh mlp plain", models.Config{Kind: "mlp", Impl: "plain", MLP: models.MLPConfig{Hidden: []int{4}}}, tab, tabBatch, false},
	} {
		m, w := newModel(t, c.cfg, c.shape)
		_, err := NewHessian(m, c.b, w, 0)
		switch {
		case c.refuse && err == nil:
			t.Errorf("%s: NewHessian accepted a kinked model that cannot hold its pattern", c.name)
		case c.refuse && !strings.Contains(err.Error(), "cannot hold its activation pattern"):
			t.Errorf("%s: error %q does not say why", c.name, err)
		case !c.refuse && err != nil:
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestForwardHessian checks the forward-difference products: exact (up to
// round-off) on least squares, whose gradient is linear; within 1e-6 of
// the central products on a tanh MLP and a ReLU/max-pool CNN with its
// pattern held; and with a truncation error that scales with the step, as
// (e/2) D^3L[v, v] does: a product divided by 2e, or differenced against
// the wrong base gradient, fails one of the three.
func TestForwardHessian(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	lin, wl := newModel(t, models.Config{Kind: "linreg"}, models.Shape{Inputs: 8})
	for i := range wl {
		wl[i] = rng.NormFloat64()
	}
	mlp, wm := newModel(t, models.Config{Kind: "mlp", MLP: models.MLPConfig{Hidden: []int{12, 8}}}, models.Shape{Inputs: 6, Classes: 4})
	cnn, wc := newModel(t, models.Config{Kind: "cnn", Impl: "fused", CNN: models.CNNConfig{Width: 2, Hidden: 6}}, models.Shape{Image: []int{3, 8, 8}, Classes: 10})
	img := &data.Batch{N: 24, X: make([]float64, 24*3*64), Labels: make([]int, 24)}
	for i := range img.X {
		img.X[i] = rng.NormFloat64()
	}
	for i := range img.Labels {
		img.Labels[i] = rng.IntN(10)
	}
	for _, c := range []struct {
		name      string
		m         models.Model
		b         *data.Batch
		w         []float64
		tol       float64
		quadratic bool
	}{
		{"linreg", lin, randomBatch(rng, 50, 8, 2), wl, 1e-7, true},
		{"tanh MLP", mlp, randomBatch(rng, 40, 6, 4), wm, 1e-6, false},
		{"ReLU CNN", cnn, img, wc, 1e-6, false},
	} {
		h, err := NewHessian(c.m, c.b, c.w, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := len(c.w)
		want, got, coarse := make([]float64, p), make([]float64, p), make([]float64, p)
		for trial := range 3 {
			v := randomUnit(rng, p)
			for i := range v {
				v[i] *= 2 // the step must scale with ||v||
			}
			if err := h.Apply(want, v); err != nil {
				t.Fatal(err)
			}
			if err := h.Forward(0).Apply(got, v); err != nil {
				t.Fatal(err)
			}
			if e := relDiff(got, want); e > c.tol {
				t.Errorf("%s, vector %d: forward product %.3g from the central one (relative), want below %g", c.name, trial, e, c.tol)
			}
			if c.quadratic {
				continue
			}
			// At steps 1e-3 and 1e-2 truncation dominates round-off and
			// grows tenfold with the step.
			if err := h.Forward(1e-3).Apply(got, v); err != nil {
				t.Fatal(err)
			}
			if err := h.Forward(1e-2).Apply(coarse, v); err != nil {
				t.Fatal(err)
			}
			if r := relDiff(coarse, want) / relDiff(got, want); r < 7 || r > 13 {
				t.Errorf("%s, vector %d: the forward error grew %.3g-fold from step 1e-3 to 1e-2, want about 10 (first order)", c.name, trial, r)
			}
		}
		now := make([]float64, p)
		c.m.Params(now)
		if relDiff(now, c.w) != 0 {
			t.Errorf("%s: forward products moved the model's parameters", c.name)
		}
	}
}
