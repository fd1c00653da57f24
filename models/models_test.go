package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// testCase is a model configuration with a matching random batch.
type testCase struct {
	name  string
	cfg   Config
	shape Shape
	batch *data.Batch
}

// randomData draws reproducible test inputs.
type randomData struct{ rng *rand.Rand }

func (r randomData) normals(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.rng.NormFloat64()
	}
	return v
}

func (r randomData) ints(n, k int) []int {
	v := make([]int, n)
	for i := range v {
		v[i] = r.rng.IntN(k)
	}
	return v
}

// tinyCases are small instances of every model with a matching random batch.
func tinyCases(dtype string) []testCase {
	r := randomData{rand.New(rand.NewPCG(1, 2))}
	normals, ints := r.normals, r.ints
	return []testCase{
		{"linreg", Config{Kind: "linreg", DType: dtype}, Shape{Inputs: 5},
			&data.Batch{N: 7, X: normals(35), Targets: normals(7)}},
		{"mlp-tanh", Config{Kind: "mlp", DType: dtype, MLP: MLPConfig{Hidden: []int{6, 5}, Activation: "tanh"}}, Shape{Inputs: 4, Classes: 3},
			&data.Batch{N: 6, X: normals(24), Labels: ints(6, 3)}},
		{"mlp-relu", Config{Kind: "mlp", DType: dtype, MLP: MLPConfig{Hidden: []int{7}, Activation: "relu"}}, Shape{Inputs: 4, Classes: 3},
			&data.Batch{N: 6, X: normals(24), Labels: ints(6, 3)}},
		{"cnn", Config{Kind: "cnn", DType: dtype, CNN: CNNConfig{Width: 2, Hidden: 4}}, Shape{Image: []int{3, 8, 8}, Classes: 10},
			&data.Batch{N: 3, X: normals(3 * 3 * 64), Labels: ints(3, 10)}},
		{"transformer", Config{Kind: "transformer", DType: dtype, Transformer: TransformerConfig{Layers: 2, Width: 8, Heads: 2, Context: 5}}, Shape{Vocab: 6},
			&data.Batch{N: 2, Tokens: ints(10, 6), Labels: ints(10, 6)}},
		// The options of the paper's tiny models (see paper_test.go).
		{"mlp-silu-torch", Config{Kind: "mlp", DType: dtype, MLP: MLPConfig{Hidden: []int{6, 5}, Activation: "silu", Init: "torch"}}, Shape{Inputs: 4, Classes: 3},
			&data.Batch{N: 6, X: normals(24), Labels: ints(6, 3)}},
		{"transformer-paper", Config{Kind: "transformer", DType: dtype, Transformer: paperTransformer(2, 8, 2, 5)}, Shape{Vocab: 6},
			&data.Batch{N: 2, Tokens: ints(10, 6), Labels: ints(10, 6)}},
	}
}

// TestGradientFiniteDifference checks every coordinate of every model's
// gradient against central differences of the loss in float64.
func TestGradientFiniteDifference(t *testing.T) {
	for _, c := range tinyCases("float64") {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(c.cfg, c.shape, 7)
			if err != nil {
				t.Fatal(err)
			}
			checkGradientFD(t, m, c.batch)
		})
	}
}

// checkGradientFD checks every coordinate of m's gradient on b, at m's
// current parameters, against central differences of its Eval loss.
func checkGradientFD(t *testing.T, m Model, b *data.Batch) {
	t.Helper()
	p := m.NumParams()
	w := make([]float64, p)
	m.Params(w)
	g := make([]float64, p)
	if _, err := m.Grad(b, g); err != nil {
		t.Fatal(err)
	}
	fd := make([]float64, p)
	const h = 1e-5
	for i := range w {
		orig := w[i]
		w[i] = orig + h
		m.SetParams(w)
		up, err := m.Eval(b)
		if err != nil {
			t.Fatal(err)
		}
		w[i] = orig - h
		m.SetParams(w)
		down, _ := m.Eval(b)
		w[i] = orig
		fd[i] = (up.Loss - down.Loss) / (2 * h)
	}
	m.SetParams(w)
	if rel := relErr(g, fd); rel > 1e-6 {
		worst := worstIndex(g, fd)
		t.Errorf("relative gradient error %.3g > 1e-6 over %d params; worst %s[%d]: grad %.8g, finite difference %.8g",
			rel, p, paramAt(m, worst), worst, g[worst], fd[worst])
	}
}

func paramAt(m Model, i int) string {
	for _, ti := range m.Tensors() {
		if i >= ti.Offset && i < ti.Offset+ti.Size {
			return ti.Name
		}
	}
	return "?"
}

// TestLinRegExact compares linreg's loss and gradient with the closed form.
func TestLinRegExact(t *testing.T) {
	c := tinyCases("float64")[0]
	m, err := New(c.cfg, c.shape, 3)
	if err != nil {
		t.Fatal(err)
	}
	theta := []float64{0.5, -1, 2, 0.25, -0.75}
	m.SetParams(theta)
	g := make([]float64, 5)
	loss, err := m.Grad(c.batch, g)
	if err != nil {
		t.Fatal(err)
	}
	b := c.batch
	want := make([]float64, 5)
	var wantLoss float64
	for n := 0; n < b.N; n++ {
		r := -b.Targets[n]
		for j := range theta {
			r += b.X[n*5+j] * theta[j]
		}
		wantLoss += 0.5 * r * r / float64(b.N)
		for j := range theta {
			want[j] += r * b.X[n*5+j] / float64(b.N)
		}
	}
	if math.Abs(loss-wantLoss) > 1e-12*wantLoss {
		t.Errorf("loss %.15g, want %.15g", loss, wantLoss)
	}
	if e := relErr(g, want); e > 1e-12 {
		t.Errorf("gradient %v, want %v (rel err %g)", g, want, e)
	}
}

// TestChunkingIsExact checks that a batch split into chunks gives the same
// mean loss and gradient as one pass, and that Eval agrees with Grad.
func TestChunkingIsExact(t *testing.T) {
	for _, c := range tinyCases("float64") {
		t.Run(c.name, func(t *testing.T) {
			whole, _ := New(c.cfg, c.shape, 11)
			cfg := c.cfg
			cfg.Chunk = 2
			chunked, _ := New(cfg, c.shape, 11)
			g1 := make([]float64, whole.NumParams())
			g2 := make([]float64, whole.NumParams())
			l1, err := whole.Grad(c.batch, g1)
			if err != nil {
				t.Fatal(err)
			}
			l2, err := chunked.Grad(c.batch, g2)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(l1-l2) > 1e-12*math.Abs(l1) || relErr(g2, g1) > 1e-12 {
				t.Errorf("chunked loss %.15g vs %.15g, gradient rel err %g", l2, l1, relErr(g2, g1))
			}
			e, err := chunked.Eval(c.batch)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(e.Loss-l1) > 1e-12*math.Abs(l1) {
				t.Errorf("Eval loss %.15g, Grad loss %.15g", e.Loss, l1)
			}
		})
	}
}

// TestFloat32MatchesFloat64 checks that the float32 models compute the same
// function as the float64 ones, to float32 accuracy.
func TestFloat32MatchesFloat64(t *testing.T) {
	c32, c64 := tinyCases("float32"), tinyCases("float64")
	for i := range c32 {
		t.Run(c32[i].name, func(t *testing.T) {
			m32, _ := New(c32[i].cfg, c32[i].shape, 5)
			m64, _ := New(c64[i].cfg, c64[i].shape, 5)
			w := make([]float64, m64.NumParams())
			m64.Params(w)
			m32.SetParams(w) // same point, rounded
			m32.Params(w)
			m64.SetParams(w)
			g32 := make([]float64, len(w))
			g64 := make([]float64, len(w))
			l32, err := m32.Grad(c32[i].batch, g32)
			if err != nil {
				t.Fatal(err)
			}
			l64, _ := m64.Grad(c64[i].batch, g64)
			if math.Abs(l32-l64) > 1e-5*math.Abs(l64) || relErr(g32, g64) > 1e-4 {
				t.Errorf("float32 loss %g vs float64 %g; gradient rel err %g", l32, l64, relErr(g32, g64))
			}
		})
	}
}

// TestSeededInit checks that initialisation depends on the seed alone.
func TestSeededInit(t *testing.T) {
	c := tinyCases("float32")[4]
	a, _ := New(c.cfg, c.shape, 42)
	b, _ := New(c.cfg, c.shape, 42)
	d, _ := New(c.cfg, c.shape, 43)
	wa, wb, wd := make([]float64, a.NumParams()), make([]float64, a.NumParams()), make([]float64, a.NumParams())
	a.Params(wa)
	b.Params(wb)
	d.Params(wd)
	same, differ := true, false
	for i := range wa {
		same = same && wa[i] == wb[i]
		differ = differ || wa[i] != wd[i]
	}
	if !same || !differ {
		t.Errorf("seed 42 twice equal: %v (want true); seed 43 differs: %v (want true)", same, differ)
	}
}

// TestSymmetryNull checks the softmax shift symmetry the probes rely on:
// adding c to every output bias leaves the loss unchanged.
func TestSymmetryNull(t *testing.T) {
	c := tinyCases("float64")[1]
	m, _ := New(c.cfg, c.shape, 9)
	w := make([]float64, m.NumParams())
	m.Params(w)
	before, _ := m.Eval(c.batch)
	for _, ti := range m.Tensors() {
		if ti.Name == "out.bias" {
			for i := ti.Offset; i < ti.Offset+ti.Size; i++ {
				w[i] += 3.7
			}
		}
	}
	m.SetParams(w)
	after, _ := m.Eval(c.batch)
	if math.Abs(after.Loss-before.Loss) > 1e-12 {
		t.Errorf("loss changed from %.15g to %.15g under a uniform output-bias shift", before.Loss, after.Loss)
	}
}

func TestParamCounts(t *testing.T) {
	cases := []struct {
		cfg   Config
		shape Shape
		lo    int
		hi    int
	}{
		{Config{Kind: "cnn"}, Shape{Image: []int{3, 32, 32}, Classes: 10}, 50_000, 100_000},
		{Config{Kind: "transformer"}, Shape{Vocab: 65}, 100_000, 200_000},
	}
	for _, c := range cases {
		m, err := New(c.cfg, c.shape, 1)
		if err != nil {
			t.Fatal(err)
		}
		if p := m.NumParams(); p < c.lo || p > c.hi {
			t.Errorf("default %s has %d parameters, want %d..%d", c.cfg.Kind, p, c.lo, c.hi)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []Config{
		{Kind: "resnet"},
		{},
		{Kind: "mlp", DType: "float16"},
		{Kind: "transformer", Transformer: TransformerConfig{Width: 10, Heads: 3}},
		{Kind: "mlp", MLP: MLPConfig{Activation: "sigmoid"}},
	}
	for _, c := range bad {
		if _, err := New(c, Shape{Inputs: 3, Classes: 2, Vocab: 5, Image: []int{3, 8, 8}}, 1); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", c)
		}
	}
}
