package models_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
)

// The tests of FromGraph define networks as a user would, through the
// exported API only, and check them against the built-in models of the
// same function (whose gradients are themselves checked against finite
// differences), against finite differences of their own loss, and against
// probe's frozen-pattern Hessian.

// customDense declares a dense layer's parameters as the built-in models do.
func customDense(name string, in, out int, gain float64) []models.Param {
	return []models.Param{
		{Name: name + ".weight", Shape: []int{in, out}, Init: models.Init{Std: gain / math.Sqrt(float64(in))}},
		{Name: name + ".bias", Shape: []int{out}},
	}
}

// customMLP is the built-in "mlp" kind with ReLU activations, as a user's
// graph.
func customMLP(inputs int, hidden []int, classes int) models.GraphNet {
	var ps []models.Param
	in := inputs
	for i, h := range hidden {
		ps = append(ps, customDense(fmt.Sprintf("hidden%d", i), in, h, 1)...)
		in = h
	}
	ps = append(ps, customDense("out", in, classes, 1)...)
	return models.GraphNet{
		Name: "relu-mlp", Params: ps, Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			h := g.Input()
			for i := range hidden {
				p := fmt.Sprintf("hidden%d", i)
				if h, err = g.Dense(h, g.Param(p+".weight"), g.Param(p+".bias")); err != nil {
					return nil, nil, err
				}
				if h, err = g.ReLU(h); err != nil {
					return nil, nil, err
				}
			}
			if out, err = g.Dense(h, g.Param("out.weight"), g.Param("out.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}
}

// customCNN is the built-in "cnn" kind (three 3x3 conv, ReLU, 2x2 max-pool
// stages, a ReLU hidden layer) as a user's graph with separate conv, ReLU
// and pool ops.
func customCNN(image []int, width, hidden, classes int) models.GraphNet {
	ch := []int{image[0], width, 2 * width, 4 * width}
	flat := ch[3] * (image[1] / 8) * (image[2] / 8)
	var ps []models.Param
	for i := 0; i < 3; i++ {
		ps = append(ps,
			models.Param{Name: fmt.Sprintf("conv%d.weight", i), Shape: []int{ch[i+1], ch[i], 3, 3},
				Init: models.Init{Std: math.Sqrt(2 / float64(ch[i]*9))}},
			models.Param{Name: fmt.Sprintf("conv%d.bias", i), Shape: []int{ch[i+1]}})
	}
	ps = append(ps, customDense("hidden", flat, hidden, math.Sqrt2)...)
	ps = append(ps, customDense("out", hidden, classes, 1)...)
	return models.GraphNet{
		Name: "relu-cnn", Params: ps, Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			h := g.Input()
			for i := 0; i < 3; i++ {
				p := fmt.Sprintf("conv%d", i)
				if h, err = g.Conv2D(h, g.Param(p+".weight"), g.Param(p+".bias"), 1, 1); err != nil {
					return nil, nil, err
				}
				if h, err = g.ReLU(h); err != nil {
					return nil, nil, err
				}
				if h, err = g.MaxPool2D(h, 2, 2); err != nil {
					return nil, nil, err
				}
			}
			if h, err = G.Reshape(h, tensor.Shape{n, flat}); err != nil {
				return nil, nil, err
			}
			if h, err = g.Dense(h, g.Param("hidden.weight"), g.Param("hidden.bias")); err != nil {
				return nil, nil, err
			}
			if h, err = g.ReLU(h); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(h, g.Param("out.weight"), g.Param("out.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}
}

// customStrided is a net the built-in models have no equivalent of: a
// strided, unpadded 3x3 convolution without bias, overlapping 3x3 max-pools
// of stride 2, a residual ReLU block, a 1x1 convolution and a dense head.
func customStrided(image []int, classes int) (models.GraphNet, int) {
	c := 3
	h1 := (image[1]-3)/2 + 1 // conv, stride 2, no padding
	w1 := (image[2]-3)/2 + 1
	h2, w2 := (h1-3)/2+1, (w1-3)/2+1 // pool 3, stride 2
	flat := c * h2 * w2
	ps := []models.Param{
		{Name: "stem", Shape: []int{c, image[0], 3, 3}, Init: models.Init{Std: 0.4}},
		{Name: "res.weight", Shape: []int{c, c, 3, 3}, Init: models.Init{Std: 0.3}},
		{Name: "res.bias", Shape: []int{c}, Init: models.Init{Bound: 0.1}},
		{Name: "mix.weight", Shape: []int{c, c, 1, 1}, Init: models.Init{Bound: 0.5}},
		{Name: "mix.bias", Shape: []int{c}, Init: models.Init{Value: 0.05}},
		{Name: "head.weight", Shape: []int{flat, classes}, Init: models.Init{Std: 0.5}},
	}
	return models.GraphNet{
		Params: ps, Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			x, err := g.Conv2D(g.Input(), g.Param("stem"), nil, 2, 0)
			if err != nil {
				return nil, nil, err
			}
			if x, err = g.ReLU(x); err != nil {
				return nil, nil, err
			}
			r, err := g.Conv2D(x, g.Param("res.weight"), g.Param("res.bias"), 1, 1)
			if err != nil {
				return nil, nil, err
			}
			if r, err = g.ReLU(r); err != nil {
				return nil, nil, err
			}
			if x, err = G.Add(x, r); err != nil {
				return nil, nil, err
			}
			if x, err = g.MaxPool2D(x, 3, 2); err != nil {
				return nil, nil, err
			}
			if x, err = g.Conv2D(x, g.Param("mix.weight"), g.Param("mix.bias"), 1, 0); err != nil {
				return nil, nil, err
			}
			if x, err = G.Reshape(x, tensor.Shape{n, flat}); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(x, g.Param("head.weight"), nil); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}, flat
}

func customBatch(rng *rand.Rand, n, features, classes int) *data.Batch {
	b := &data.Batch{N: n, X: make([]float64, n*features), Labels: make([]int, n)}
	for i := range b.X {
		b.X[i] = rng.NormFloat64()
	}
	for i := range b.Labels {
		b.Labels[i] = rng.IntN(classes)
	}
	return b
}

func customNew(t *testing.T, net models.GraphNet, s models.Shape, opts models.GraphOptions, seed uint64) models.Model {
	t.Helper()
	m, err := models.FromGraph(net, s, opts, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// customRel is ||a - b|| / ||b||.
func customRel(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}

func customParams(m models.Model) []float64 {
	w := make([]float64, m.NumParams())
	m.Params(w)
	return w
}

// customCompare checks that user and ref compute the same loss, gradient
// and, after a displacement that switches units, the same frozen gradient
// on the pattern of the starting point, to tol relative.
func customCompare(t *testing.T, user, ref models.Model, b *data.Batch, tol float64) {
	t.Helper()
	w := customParams(ref)
	uw := customParams(user)
	if len(uw) != len(w) {
		t.Fatalf("user model has %d parameters, built-in %d", len(uw), len(w))
	}
	for i := range w {
		if uw[i] != w[i] {
			t.Fatalf("initial parameter %d: user %g, built-in %g (same seed and init)", i, uw[i], w[i])
		}
	}
	p := len(w)
	gu, gr := make([]float64, p), make([]float64, p)
	lu, err := user.Grad(b, gu)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := ref.Grad(b, gr)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(lu-lr) > tol*math.Abs(lr) {
		t.Errorf("loss %.12g, built-in %.12g", lu, lr)
	}
	if d := customRel(gu, gr); d > tol {
		t.Errorf("gradient differs from the built-in model's by %.3g relative", d)
	}
	eu, err := user.Eval(b)
	if err != nil {
		t.Fatal(err)
	}
	er, err := ref.Eval(b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(eu.Loss-er.Loss) > tol*er.Loss || eu.Correct != er.Correct || eu.Count != er.Count {
		t.Errorf("Eval %+v, built-in %+v", eu, er)
	}

	pu, pr := user.(models.Piecewise), ref.(models.Piecewise)
	patU, err := pu.RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	patR, err := pr.RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	if patU.Units() == 0 {
		t.Fatal("the user's ReLU network records no pattern")
	}
	// A displacement of 0.05 per coordinate switches many units, so an
	// unfrozen gradient there differs from the frozen one.
	rng := rand.New(rand.NewPCG(9, 9))
	w2 := make([]float64, p)
	for i := range w2 {
		w2[i] = w[i] + 0.05*rng.NormFloat64()
	}
	user.SetParams(w2)
	ref.SetParams(w2)
	if _, err := pu.GradFrozen(b, patU, gu); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.GradFrozen(b, patR, gr); err != nil {
		t.Fatal(err)
	}
	if d := customRel(gu, gr); d > tol {
		t.Errorf("frozen gradient differs from the built-in model's by %.3g relative", d)
	}
	live := make([]float64, p)
	if _, err := user.Grad(b, live); err != nil {
		t.Fatal(err)
	}
	if d := customRel(live, gu); d < 1e-6 {
		t.Errorf("the live gradient at the displaced point equals the frozen one (%.3g): the test switches no units", d)
	}
	user.SetParams(w)
	ref.SetParams(w)
}

// TestFromGraphMLPMatchesBuiltin: a user's ReLU MLP is the built-in ReLU
// MLP (same parameters from the same seed), in loss, gradient, accuracy
// and frozen-pattern gradient, in float64 to 1e-9 and float32 to 1e-4.
func TestFromGraphMLPMatchesBuiltin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := models.Shape{Inputs: 5, Classes: 3}
	b := customBatch(rng, 40, 5, 3)
	for _, c := range []struct {
		dtype string
		tol   float64
	}{{"float64", 1e-9}, {"float32", 1e-4}} {
		t.Run(c.dtype, func(t *testing.T) {
			user := customNew(t, customMLP(5, []int{7, 6}, 3), s, models.GraphOptions{DType: c.dtype}, 4)
			ref, err := models.New(models.Config{Kind: "mlp", Impl: "fused", DType: c.dtype, MLP: models.MLPConfig{Hidden: []int{7, 6}, Activation: "relu"}}, s, 4)
			if err != nil {
				t.Fatal(err)
			}
			if user.DType() != c.dtype {
				t.Errorf("DType %q, want %q", user.DType(), c.dtype)
			}
			customCompare(t, user, ref, b, c.tol)
		})
	}
}

// TestFromGraphCNNMatchesBuiltin: a user's conv/ReLU/max-pool network is
// the built-in CNN (its fused kernels, the implementation that holds
// patterns), whose fused stage applies ReLU after the pool and keeps
// one pattern byte per pool: the frozen gradients agree too, so the two
// patterns select the same smooth piece.
func TestFromGraphCNNMatchesBuiltin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := models.Shape{Image: []int{3, 8, 8}, Classes: 10}
	b := customBatch(rng, 12, 3*64, 10)
	for _, c := range []struct {
		dtype string
		tol   float64
	}{{"float64", 1e-9}, {"float32", 1e-4}} {
		t.Run(c.dtype, func(t *testing.T) {
			user := customNew(t, customCNN(s.Image, 2, 6, 10), s, models.GraphOptions{DType: c.dtype}, 5)
			ref, err := models.New(models.Config{Kind: "cnn", Impl: "fused", DType: c.dtype, CNN: models.CNNConfig{Width: 2, Hidden: 6}}, s, 5)
			if err != nil {
				t.Fatal(err)
			}
			customCompare(t, user, ref, b, c.tol)
		})
	}
}

// frozenLoss is the loss of the smooth piece pat selects, at w.
func frozenLoss(t *testing.T, m models.Model, b *data.Batch, pat *models.Pattern, w []float64) float64 {
	t.Helper()
	m.SetParams(w)
	l, err := m.(models.Piecewise).GradFrozen(b, pat, make([]float64, m.NumParams()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFromGraphStridedGradient checks the general paths of Conv2D (stride,
// no padding, 1x1, no bias), overlapping max-pools and a residual add, which
// no built-in model has, against central differences of the frozen loss: on
// one smooth piece they are exact up to O(h^4) with the fourth-order
// formula.
func TestFromGraphStridedGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := models.Shape{Image: []int{2, 11, 9}, Classes: 4}
	net, _ := customStrided(s.Image, 4)
	m := customNew(t, net, s, models.GraphOptions{DType: "float64"}, 7)
	b := customBatch(rng, 6, 2*11*9, 4)
	w := customParams(m)
	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	g := make([]float64, len(w))
	if _, err := m.Grad(b, g); err != nil {
		t.Fatal(err)
	}
	const h = 1e-3
	wp := make([]float64, len(w))
	at := func(i int, s float64) float64 {
		copy(wp, w)
		wp[i] += s
		return frozenLoss(t, m, b, pat, wp)
	}
	var num, den float64
	for i := range w {
		fd := (-at(i, 2*h) + 8*at(i, h) - 8*at(i, -h) + at(i, -2*h)) / (12 * h)
		num += (fd - g[i]) * (fd - g[i])
		den += g[i] * g[i]
	}
	if d := math.Sqrt(num / den); d > 1e-9 {
		t.Errorf("gradient differs from finite differences of the frozen loss by %.3g relative", d)
	}
	m.SetParams(w)
}

// smoothOnly hides a model's Piecewise methods from probe, so its Hessian
// differences gradients straight through the kinks.
type smoothOnly struct{ models.Model }

// TestFromGraphFrozenHVP: probe's Hessian of a user's ReLU/max-pool graph
// holds the pattern, and its dense matrix matches second differences of the
// frozen loss, entry by entry and along random directions, is symmetric and
// does not depend on the step. Without the pattern the products through the
// kinks are wrong, by the factor logged.
func TestFromGraphFrozenHVP(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := models.Shape{Image: []int{2, 11, 9}, Classes: 4}
	net, _ := customStrided(s.Image, 4)
	m := customNew(t, net, s, models.GraphOptions{DType: "float64", Chunk: 16}, 8)
	b := customBatch(rng, 40, 2*11*9, 4)
	w := customParams(m)
	p := len(w)
	h, err := probe.NewHessian(m, b, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.FrozenPattern() {
		t.Fatal("probe does not hold the user graph's pattern")
	}
	a, asym, err := probe.DenseMatrix(h)
	if err != nil {
		t.Fatal(err)
	}
	scale := mat.Norm(a, 2)
	if asym > 1e-7*scale {
		t.Errorf("asymmetry %.3g > 1e-7 x %.3g", asym, scale)
	}

	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	wp := make([]float64, p)
	loss := func(dirs [][]float64, coef []float64) float64 {
		copy(wp, w)
		for k, d := range dirs {
			for i := range wp {
				wp[i] += coef[k] * d[i]
			}
		}
		return frozenLoss(t, m, b, pat, wp)
	}
	unit := func(i int) []float64 {
		e := make([]float64, p)
		e[i] = 1
		return e
	}
	// Entries from mixed second differences of the loss.
	const e = 1e-3
	for trial := 0; trial < 24; trial++ {
		i, j := rng.IntN(p), rng.IntN(p)
		if trial < 4 {
			j = i
		}
		ei, ej := unit(i), unit(j)
		d := [][]float64{ei, ej}
		want := (loss(d, []float64{e, e}) - loss(d, []float64{e, -e}) - loss(d, []float64{-e, e}) + loss(d, []float64{-e, -e})) / (4 * e * e)
		if got := a.At(i, j); math.Abs(got-want) > 1e-6*scale {
			t.Errorf("H[%d,%d] = %.10g from products, %.10g from second differences of the loss (scale %.3g)", i, j, got, want, scale)
		}
	}
	// Quadratic forms along random directions, fourth order.
	for trial := 0; trial < 6; trial++ {
		v := make([]float64, p)
		for i := range v {
			v[i] = rng.NormFloat64() / math.Sqrt(float64(p))
		}
		d := [][]float64{v}
		l := func(s float64) float64 { return loss(d, []float64{s}) }
		want := (-l(2*e) + 16*l(e) - 30*l(0) + 16*l(-e) - l(-2*e)) / (12 * e * e)
		got := mat.Inner(mat.NewVecDense(p, v), a, mat.NewVecDense(p, v))
		if math.Abs(got-want) > 1e-6*scale {
			t.Errorf("v^T H v = %.10g from products, %.10g from the loss (scale %.3g)", got, want, scale)
		}
	}
	m.SetParams(w)

	// Frozen products do not depend on the step.
	v := make([]float64, p)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	want := make([]float64, p)
	mat.NewVecDense(p, want).MulVec(a, mat.NewVecDense(p, v))
	long, err := probe.NewHessian(m, b, w, 1e-2)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, p)
	if err := long.Apply(got, v); err != nil {
		t.Fatal(err)
	}
	if d := customRel(got, want); d > 1e-4 {
		t.Errorf("frozen product with step 0.01 differs from step 1e-4 by %.3g", d)
	}

	// Plain differences through the kinks: on 40 examples no unit switches
	// within the default step, on 4000 some do, and each adds its gradient
	// jump divided by the step (here off by 0.8 times the product's norm),
	// while the frozen product is unaffected.
	big := customBatch(rng, 4000, 2*11*9, 4)
	frozen, err := probe.NewHessian(m, big, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := probe.NewHessian(smoothOnly{m}, big, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	if plain.FrozenPattern() || !frozen.FrozenPattern() {
		t.Fatal("smoothOnly does not hide the pattern")
	}
	exact, through := make([]float64, p), make([]float64, p)
	if err := frozen.Apply(exact, v); err != nil {
		t.Fatal(err)
	}
	if err := plain.Apply(through, v); err != nil {
		t.Fatal(err)
	}
	d := customRel(through, exact)
	t.Logf("4000 examples, step %g: the plain product is off by %.3g relative", probe.DefaultFDStep, d)
	if d < 0.1 {
		t.Errorf("the plain product is off by only %.3g: the test no longer crosses kinks", d)
	}
	m.SetParams(w)
}

// TestFromGraphChunks: a batch larger than Chunk gives the mean loss,
// gradient, evaluation, pattern and frozen gradient of one pass.
func TestFromGraphChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	s := models.Shape{Image: []int{2, 11, 9}, Classes: 4}
	net, _ := customStrided(s.Image, 4)
	whole := customNew(t, net, s, models.GraphOptions{DType: "float64"}, 3)
	chunked := customNew(t, net, s, models.GraphOptions{DType: "float64", Chunk: 7}, 3)
	b := customBatch(rng, 30, 2*11*9, 4)
	p := whole.NumParams()
	g1, g2 := make([]float64, p), make([]float64, p)
	l1, err := whole.Grad(b, g1)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := chunked.Grad(b, g2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l1-l2) > 1e-12*l1 || customRel(g2, g1) > 1e-12 {
		t.Errorf("chunked loss %.15g, gradient off by %.3g; whole %.15g", l2, customRel(g2, g1), l1)
	}
	e1, _ := whole.Eval(b)
	e2, err := chunked.Eval(b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(e1.Loss-e2.Loss) > 1e-12*e1.Loss || e1.Correct != e2.Correct || e2.Count != 30 {
		t.Errorf("chunked Eval %+v, whole %+v", e2, e1)
	}
	p1, err := whole.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := chunked.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Units() != p2.Units() || p2.Examples() != 30 {
		t.Fatalf("patterns of %d and %d units", p1.Units(), p2.Units())
	}
	// Freeze the chunked model on the whole model's pattern: the bytes
	// mean the same per example however the batch is cut.
	w := customParams(whole)
	for i := range w {
		w[i] += 0.05 * rng.NormFloat64()
	}
	whole.SetParams(w)
	chunked.SetParams(w)
	if _, err := whole.(models.Piecewise).GradFrozen(b, p1, g1); err != nil {
		t.Fatal(err)
	}
	if _, err := chunked.(models.Piecewise).GradFrozen(b, p1, g2); err != nil {
		t.Fatal(err)
	}
	if d := customRel(g2, g1); d > 1e-12 {
		t.Errorf("chunked frozen gradient off by %.3g", d)
	}
}

// TestFromGraphSeeds: equal seeds give equal parameters, others not.
func TestFromGraphSeeds(t *testing.T) {
	s := models.Shape{Inputs: 4, Classes: 2}
	net := customMLP(4, []int{3}, 2)
	a := customParams(customNew(t, net, s, models.GraphOptions{}, 1))
	b := customParams(customNew(t, net, s, models.GraphOptions{}, 1))
	c := customParams(customNew(t, net, s, models.GraphOptions{}, 2))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 1 twice: parameter %d is %g and %g", i, a[i], b[i])
		}
	}
	if customRel(a, c) == 0 {
		t.Error("seeds 1 and 2 give equal parameters")
	}
}

// TestFromGraphText: a one-block attention model over text data, with a
// tanh MLP (no kinks: an empty pattern), against central differences.
func TestFromGraphText(t *testing.T) {
	const vocab, ctx, d = 5, 4, 6
	ps := []models.Param{
		{Name: "emb", Shape: []int{vocab, d}, Init: models.Init{Std: 1}},
		{Name: "q", Shape: []int{d, d}, Init: models.Init{Std: 0.5}},
		{Name: "k", Shape: []int{d, d}, Init: models.Init{Std: 0.5}},
		{Name: "v", Shape: []int{d, d}, Init: models.Init{Std: 0.5}},
		{Name: "head.weight", Shape: []int{d, vocab}, Init: models.Init{Std: 0.5}},
		{Name: "head.bias", Shape: []int{vocab}, Init: models.Init{Bound: 0.2}},
	}
	net := models.GraphNet{Params: ps, Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			x, err := G.Mul(g.Input(), g.Param("emb"))
			if err != nil {
				return nil, nil, err
			}
			var qkv [3]*G.Node
			for i, name := range []string{"q", "k", "v"} {
				if qkv[i], err = g.Dense(x, g.Param(name), nil); err != nil {
					return nil, nil, err
				}
			}
			a, err := g.CausalSelfAttention(qkv[0], qkv[1], qkv[2], 2)
			if err != nil {
				return nil, nil, err
			}
			if a, err = G.Tanh(a); err != nil {
				return nil, nil, err
			}
			if x, err = G.Add(x, a); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(x, g.Param("head.weight"), g.Param("head.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		}}
	s := models.Shape{Vocab: vocab}
	m := customNew(t, net, s, models.GraphOptions{DType: "float64", Context: ctx, Chunk: 2}, 1)
	rng := rand.New(rand.NewPCG(13, 14))
	b := &data.Batch{N: 3, Tokens: make([]int, 3*ctx), Labels: make([]int, 3*ctx)}
	for i := range b.Tokens {
		b.Tokens[i], b.Labels[i] = rng.IntN(vocab), rng.IntN(vocab)
	}
	w := customParams(m)
	g := make([]float64, len(w))
	if _, err := m.Grad(b, g); err != nil {
		t.Fatal(err)
	}
	wp := make([]float64, len(w))
	const h = 1e-3
	at := func(i int, s float64) float64 {
		copy(wp, w)
		wp[i] += s
		m.SetParams(wp)
		e, err := m.Eval(b)
		if err != nil {
			t.Fatal(err)
		}
		return e.Loss
	}
	var num, den float64
	for i := range w {
		fd := (-at(i, 2*h) + 8*at(i, h) - 8*at(i, -h) + at(i, -2*h)) / (12 * h)
		num += (fd - g[i]) * (fd - g[i])
		den += g[i] * g[i]
	}
	if r := math.Sqrt(num / den); r > 1e-9 {
		t.Errorf("gradient differs from finite differences by %.3g relative", r)
	}
	m.SetParams(w)
	e, err := m.Eval(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Count != 3*ctx {
		t.Errorf("Eval scored %d predictions, want one per token (%d)", e.Count, 3*ctx)
	}
	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	if pat.Units() != 0 {
		t.Errorf("a network without ReLU or max-pool records %d units per example", pat.Units())
	}
}

// TestFromGraphErrors: misuse is reported with an error naming the problem.
func TestFromGraphErrors(t *testing.T) {
	s := models.Shape{Inputs: 3, Classes: 2}
	good := customMLP(3, []int{4}, 2)
	withBuild := func(build func(g *models.Graph, n int) (out, loss *G.Node, err error)) models.GraphNet {
		net := good
		net.Build = build
		return net
	}
	withParams := func(ps ...models.Param) models.GraphNet {
		net := good
		net.Params = append(append([]models.Param(nil), good.Params...), ps...)
		return net
	}
	gorgoniaReLU := withBuild(func(g *models.Graph, n int) (out, loss *G.Node, err error) {
		h, err := g.Dense(g.Input(), g.Param("hidden0.weight"), g.Param("hidden0.bias"))
		if err != nil {
			return nil, nil, err
		}
		if h, err = G.Rectify(h); err != nil {
			return nil, nil, err
		}
		if out, err = g.Dense(h, g.Param("out.weight"), g.Param("out.bias")); err != nil {
			return nil, nil, err
		}
		loss, err = g.SoftmaxCrossEntropy(out)
		return out, loss, err
	})
	for _, c := range []struct {
		name string
		net  models.GraphNet
		s    models.Shape
		opts models.GraphOptions
		want string
	}{
		{"undeclared parameter", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			g.Param("hidden0.wieght")
			return nil, nil, nil
		}), s, models.GraphOptions{}, `parameter "hidden0.wieght" is not declared`},
		{"wrong dense shapes", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			_, err := g.Dense(g.Input(), g.Param("out.weight"), nil)
			return nil, nil, err
		}), s, models.GraphOptions{}, "Dense of x (1, 3) and out.weight (4, 2)"},
		{"wrong bias shape", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			_, err := g.Dense(g.Input(), g.Param("hidden0.weight"), g.Param("out.bias"))
			return nil, nil, err
		}), s, models.GraphOptions{}, "Dense bias out.bias has shape (2), want (4)"},
		{"missing loss", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			out, err := g.Dense(g.Input(), g.Param("hidden0.weight"), g.Param("hidden0.bias"))
			return out, nil, err
		}), s, models.GraphOptions{}, "Build returned no loss node"},
		{"matrix loss", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			out, err := g.Dense(g.Input(), g.Param("hidden0.weight"), g.Param("hidden0.bias"))
			return out, out, err
		}), s, models.GraphOptions{}, "want a scalar"},
		{"unused parameter", withParams(models.Param{Name: "spare", Shape: []int{2}}), s, models.GraphOptions{}, `does not depend on parameter "spare"`},
		{"duplicate parameter", withParams(good.Params[0]), s, models.GraphOptions{}, `parameter "hidden0.weight" declared twice`},
		{"bad shape", withParams(models.Param{Name: "z", Shape: []int{2, 0}}), s, models.GraphOptions{}, "shape [2 0] must have positive dimensions"},
		{"two inits", withParams(models.Param{Name: "z", Shape: []int{2}, Init: models.Init{Std: 1, Bound: 1}}), s, models.GraphOptions{}, "choose one"},
		{"no build", models.GraphNet{Params: good.Params}, s, models.GraphOptions{}, "no Build function"},
		{"no params", models.GraphNet{Build: good.Build}, s, models.GraphOptions{}, "declares no parameters"},
		{"bad dtype", good, s, models.GraphOptions{DType: "float16"}, `dtype "float16"`},
		{"no data", good, models.Shape{Classes: 2}, models.GraphOptions{}, "has no inputs"},
		{"one class", good, models.Shape{Inputs: 3, Classes: 1}, models.GraphOptions{}, "at least 2 classes"},
		{"text without context", good, models.Shape{Vocab: 5}, models.GraphOptions{}, "GraphOptions.Context"},
		{"wrong logits", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			h, err := g.Dense(g.Input(), g.Param("hidden0.weight"), g.Param("hidden0.bias"))
			if err != nil {
				return nil, nil, err
			}
			s, err := G.Sum(h)
			if err != nil {
				return nil, nil, err
			}
			s, err = G.Add(s, G.Must(G.Sum(G.Must(G.Add(g.Param("out.bias"), G.Must(G.Sum(g.Param("out.weight"))))))))
			return h, s, err
		}), s, models.GraphOptions{}, "the output has shape (1, 4), want (1, 2)"},
		{"pool of a matrix", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			_, err := g.MaxPool2D(g.Input(), 2, 2)
			return nil, nil, err
		}), s, models.GraphOptions{}, "MaxPool2D of shape (1, 3): want (1, C, H, W)"},
		{"conv of a matrix", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			_, err := g.Conv2D(g.Input(), g.Param("hidden0.weight"), nil, 1, 1)
			return nil, nil, err
		}), s, models.GraphOptions{}, "Conv2D of x (1, 3) and hidden0.weight (3, 4)"},
		{"gorgonia relu", gorgoniaReLU, s, models.GraphOptions{}, `is Gorgonia's ">= true", a kink the model cannot hold fixed`},
		{"attention on tabular data", withBuild(func(g *models.Graph, n int) (*G.Node, *G.Node, error) {
			_, err := g.CausalSelfAttention(g.Input(), g.Input(), g.Input(), 1)
			return nil, nil, err
		}), s, models.GraphOptions{}, "needs text data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := models.FromGraph(c.net, c.s, c.opts, 1)
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "model ") {
				t.Errorf("error %q, want it to start with the model and contain %q", err, c.want)
			}
		})
	}

	// Accepted when asked for, with no pattern to hold.
	m, err := models.FromGraph(gorgoniaReLU, s, models.GraphOptions{UnrecordedKinks: true}, 1)
	if err != nil {
		t.Fatalf("G.Rectify with UnrecordedKinks: %v", err)
	}
	pb := &data.Batch{N: 1, X: []float64{1, 2, 3}, Labels: []int{1}}
	if pat, err := m.(models.Piecewise).RecordPattern(pb); err != nil || pat.Units() != 0 {
		t.Errorf("G.Rectify with UnrecordedKinks: pattern %v, error %v; want no units", pat, err)
	}

	// Bad batches and patterns at run time.
	m = customNew(t, good, s, models.GraphOptions{}, 1)
	g := make([]float64, m.NumParams())
	bad := &data.Batch{N: 2, X: make([]float64, 5), Labels: []int{0, 1}}
	if _, err := m.Grad(bad, g); err == nil || !strings.Contains(err.Error(), "has 5 input values, want 3 per example") {
		t.Errorf("batch of the wrong width: error %v", err)
	}
	b := &data.Batch{N: 2, X: make([]float64, 6), Labels: []int{0, 2}}
	if _, err := m.Grad(b, g); err == nil || !strings.Contains(err.Error(), "id 2 out of range") {
		t.Errorf("label out of range: error %v", err)
	}
	b.Labels[1] = 1
	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	b3 := &data.Batch{N: 3, X: make([]float64, 9), Labels: []int{0, 1, 0}}
	if _, err := m.(models.Piecewise).GradFrozen(b3, pat, g); err == nil || !strings.Contains(err.Error(), "does not fit a batch of 3") {
		t.Errorf("pattern of another batch: error %v", err)
	}
	if _, err := m.Grad(b, g[1:]); err == nil || !strings.Contains(err.Error(), "gradient buffer") {
		t.Errorf("short gradient buffer: error %v", err)
	}
}

// BenchmarkFromGraphCNNStep times a training step (Grad and SetParams) of
// the default CNN (width 16, hidden 64, batch 128, float32) as a user's
// graph of separate conv, ReLU and pool ops, beside the built-in fused
// kernels and custom-op graph of the same network.
func BenchmarkFromGraphCNNStep(b *testing.B) {
	s := models.Shape{Image: []int{3, 32, 32}, Classes: 10}
	batch := customBatch(rand.New(rand.NewPCG(1, 1)), 128, 3*32*32, 10)
	build := map[string]func() (models.Model, error){
		"graph": func() (models.Model, error) {
			return models.FromGraph(customCNN(s.Image, 16, 64, 10), s, models.GraphOptions{}, 1)
		},
		"fused": func() (models.Model, error) { return models.New(models.Config{Kind: "cnn", Impl: "fused"}, s, 1) },
		"ops":   func() (models.Model, error) { return models.New(models.Config{Kind: "cnn", Impl: "ops"}, s, 1) },
	}
	for _, name := range []string{"graph", "fused", "ops"} {
		b.Run(name, func(b *testing.B) {
			m, err := build[name]()
			if err != nil {
				b.Fatal(err)
			}
			w, g := customParams(m), make([]float64, m.NumParams())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Grad(batch, g); err != nil {
					b.Fatal(err)
				}
				for i := range w {
					w[i] -= 0.01 * g[i]
				}
				m.SetParams(w)
			}
		})
	}
}

// TestGraphModelFunc: the constructor for runs of model kind custom takes
// the dtype and chunk from the config and refuses another network's name.
func TestGraphModelFunc(t *testing.T) {
	s := models.Shape{Inputs: 3, Classes: 2}
	fn := models.GraphModelFunc(customMLP(3, []int{4}, 2), models.GraphOptions{Chunk: 8})
	m, err := fn(models.Config{Kind: models.KindCustom, Name: "relu-mlp", DType: "float64"}, s, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.DType() != "float64" {
		t.Errorf("dtype %s, want the config's float64", m.DType())
	}
	direct := customNew(t, customMLP(3, []int{4}, 2), s, models.GraphOptions{DType: "float64"}, 2)
	if d := customRel(customParams(m), customParams(direct)); d != 0 {
		t.Errorf("parameters differ from FromGraph's with the same seed by %.3g", d)
	}
	if _, err := fn(models.Config{Kind: models.KindCustom, Name: "other"}, s, 2); err == nil || !strings.Contains(err.Error(), `the config's model is "other", this constructor builds "relu-mlp"`) {
		t.Errorf("another network's name: error %v", err)
	}
}
