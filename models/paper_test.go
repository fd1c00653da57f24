package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// The paper's two tiny models (../shared/paper-protocols.md, "Models") and
// the options they need: silu and PyTorch's init for the MLP; bias-free
// linears, MLP ratio 1, the exact erf GELU, a head without bias and the
// N(0, 0.02) init for the transformer.

// paperTransformer is the NanoGPT options on a transformer of the given
// size.
func paperTransformer(layers, width, heads, context int) TransformerConfig {
	return TransformerConfig{Layers: layers, Width: width, Heads: heads, Context: context,
		Bias: ptr(false), HeadBias: ptr(false), MLPRatio: 1, GELU: "erf", Init: "normal0.02"}
}

// nanoGPT960 and mlp386 are the paper's models, with their data shapes.
var (
	nanoGPT960 = NanoGPT960Config()
	nanoShape  = Shape{Vocab: 25}
	mlp386     = MLP386Config()
	mlpShape   = Shape{Inputs: 36, Classes: 10}
)

// TestPaperConfigs checks the exported paper configs against the options
// spelled out.
func TestPaperConfigs(t *testing.T) {
	if got, want := nanoGPT960.WithDefaults(), (Config{Kind: "transformer", Transformer: paperTransformer(1, 8, 1, 16)}).WithDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("NanoGPT960Config %+v, want %+v", got.Transformer, want.Transformer)
	}
	want := Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{8}, Activation: "silu", Init: "torch"}}
	if got := mlp386; !reflect.DeepEqual(got, want) {
		t.Errorf("MLP386Config %+v, want %+v", got, want)
	}
}

// layout lists a model's tensors as "name shape".
func layout(m Model) []string {
	var l []string
	for _, ti := range m.Tensors() {
		l = append(l, fmt.Sprintf("%s %v", ti.Name, ti.Shape))
	}
	return l
}

// TestPaperModelLayouts checks that the paper's models have exactly 386 and
// 960 parameters in the paper's tensor order, in every implementation.
// Weights are stored (in, out), so the head is 8x25 here where PyTorch's
// nn.Linear stores it 25x8.
func TestPaperModelLayouts(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		shape Shape
		impls []string
		p     int
		want  []string
	}{
		{"MLP-386", mlp386, mlpShape, []string{"fused", "plain"}, 386, []string{
			"hidden0.weight [36 8]", "hidden0.bias [8]", "out.weight [8 10]", "out.bias [10]"}},
		{"NanoGPT-960", nanoGPT960, nanoShape, []string{"fused", "plain", "ops"}, 960, []string{
			"tok.embedding [25 8]", "pos.embedding [16 8]",
			"block0.ln1.gain [8]", "block0.ln1.bias [8]",
			"block0.attn.q.weight [8 8]", "block0.attn.k.weight [8 8]", "block0.attn.v.weight [8 8]", "block0.attn.proj.weight [8 8]",
			"block0.ln2.gain [8]", "block0.ln2.bias [8]",
			"block0.mlp.fc.weight [8 8]", "block0.mlp.proj.weight [8 8]",
			"lnf.gain [8]", "lnf.bias [8]", "head.weight [8 25]"}},
	}
	for _, c := range cases {
		for _, impl := range c.impls {
			cfg := c.cfg
			cfg.Impl = impl
			m, err := New(cfg, c.shape, 1)
			if err != nil {
				t.Fatal(err)
			}
			if m.NumParams() != c.p {
				t.Errorf("%s %s: %d parameters, want %d", c.name, impl, m.NumParams(), c.p)
			}
			if got := layout(m); !slices.Equal(got, c.want) {
				t.Errorf("%s %s: layout\n%s\nwant\n%s", c.name, impl, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		}
	}
}

// TestDefaultModelsUnchanged pins the default transformer and MLP, which
// the new options must leave as they were: 112,577 parameters on 65
// symbols, biased linears, an MLP of 4x width and a biased head, and the
// fan-in init.
func TestDefaultModelsUnchanged(t *testing.T) {
	m, err := New(Config{Kind: "transformer"}, Shape{Vocab: 65}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumParams() != 112_577 {
		t.Errorf("default transformer: %d parameters, want 112,577", m.NumParams())
	}
	l := layout(m)
	for _, want := range []string{"block0.attn.q.bias [64]", "block1.mlp.fc.weight [64 256]", "block1.mlp.fc.bias [256]", "head.bias [65]"} {
		if !slices.Contains(l, want) {
			t.Errorf("default transformer has no %s", want)
		}
	}
	w := make([]float64, m.NumParams())
	m.Params(w)
	stds := tensorStds(m, w)
	for name, want := range map[string]float64{
		"tok.embedding": 1, "block0.attn.q.weight": 1 / 8.0, "block0.attn.proj.weight": 1 / 16.0, "block1.mlp.proj.weight": 1 / 32.0,
	} {
		if got := stds[name]; math.Abs(got-want) > 0.05*want {
			t.Errorf("default transformer %s std %.4g, want %.4g", name, got, want)
		}
	}
	resolved := Config{Kind: "transformer"}.WithDefaults().Transformer
	if !resolved.HasBias() || !resolved.HasHeadBias() || resolved.MLPRatio != 4 || resolved.GELU != "tanh" || resolved.Init != "fanin" {
		t.Errorf("default transformer options %+v", resolved)
	}
	mc := Config{Kind: "mlp"}.WithDefaults().MLP
	if mc.Activation != "tanh" || mc.Init != "fanin" {
		t.Errorf("default mlp options %+v", mc)
	}
}

// tensorStds is the root mean square of each tensor of m in w.
func tensorStds(m Model, w []float64) map[string]float64 {
	out := map[string]float64{}
	for _, ti := range m.Tensors() {
		var s float64
		for _, v := range w[ti.Offset : ti.Offset+ti.Size] {
			s += v * v
		}
		out[ti.Name] = math.Sqrt(s / float64(ti.Size))
	}
	return out
}

// TestTorchInit checks mlp init torch: every weight and bias uniform on
// [-1/sqrt(fan_in), 1/sqrt(fan_in)] (bounded, variance bound^2/3, biases
// not zero), seeded, and the same in fused and plain.
func TestTorchInit(t *testing.T) {
	cfg := Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{50}, Init: "torch"}}
	shape := Shape{Inputs: 400, Classes: 10}
	m, _ := New(cfg, shape, 5)
	w := make([]float64, m.NumParams())
	m.Params(w)
	fanIn := map[string]int{"hidden0.weight": 400, "hidden0.bias": 400, "out.weight": 50, "out.bias": 50}
	for _, ti := range m.Tensors() {
		bound := 1 / math.Sqrt(float64(fanIn[ti.Name]))
		vals := w[ti.Offset : ti.Offset+ti.Size]
		var s2 float64
		for _, v := range vals {
			if math.Abs(v) > bound {
				t.Fatalf("%s: %g outside +-%g", ti.Name, v, bound)
			}
			s2 += v * v
		}
		variance, want := s2/float64(len(vals)), bound*bound/3
		tol := 6 * math.Sqrt(0.8/float64(len(vals))) * want // 6 standard errors
		if math.Abs(variance-want) > tol {
			t.Errorf("%s: variance %.4g, want %.4g +- %.2g", ti.Name, variance, want, tol)
		}
	}
	again, _ := New(cfg, shape, 5)
	other, _ := New(cfg, shape, 6)
	cfg.Impl = "plain"
	plain, _ := New(cfg, shape, 5)
	wa, wo, wp := make([]float64, len(w)), make([]float64, len(w)), make([]float64, len(w))
	again.Params(wa)
	other.Params(wo)
	plain.Params(wp)
	if !slices.Equal(wa, w) || !slices.Equal(wp, w) || slices.Equal(wo, w) {
		t.Errorf("seed 5 twice equal %v, plain equal %v, seed 6 equal %v: want true, true, false",
			slices.Equal(wa, w), slices.Equal(wp, w), slices.Equal(wo, w))
	}
}

// TestNormal002Init checks transformer init normal0.02: every linear and
// embedding weight (the residual projections too) N(0, 0.02^2), LayerNorm
// gains 1 and shifts 0, biases 0.
func TestNormal002Init(t *testing.T) {
	tr := TransformerConfig{Layers: 2, Width: 64, Heads: 4, Context: 64, Init: "normal0.02"}
	m, err := New(Config{Kind: "transformer", Transformer: tr}, Shape{Vocab: 65}, 3)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float64, m.NumParams())
	m.Params(w)
	stds := tensorStds(m, w)
	for _, ti := range m.Tensors() {
		vals := w[ti.Offset : ti.Offset+ti.Size]
		switch {
		case strings.HasSuffix(ti.Name, ".weight") || strings.HasSuffix(ti.Name, ".embedding"):
			if s := stds[ti.Name]; math.Abs(s-0.02) > 0.05*0.02 {
				t.Errorf("%s: std %.4g, want 0.02", ti.Name, s)
			}
		case strings.HasSuffix(ti.Name, ".gain"):
			if slices.ContainsFunc(vals, func(v float64) bool { return v != 1 }) {
				t.Errorf("%s: not all 1", ti.Name)
			}
		default:
			if slices.ContainsFunc(vals, func(v float64) bool { return v != 0 }) {
				t.Errorf("%s: not all 0", ti.Name)
			}
		}
	}
}

// transformerOptionCases are small transformers with one paper option
// each, then all of them.
func transformerOptionCases() []testCase {
	r := randomData{rand.New(rand.NewPCG(41, 42))}
	base := TransformerConfig{Layers: 1, Width: 8, Heads: 2, Context: 5}
	with := func(f func(*TransformerConfig)) Config {
		tr := base
		f(&tr)
		return Config{Kind: "transformer", Transformer: tr}
	}
	batch := func() *data.Batch { return &data.Batch{N: 3, Tokens: r.ints(15, 6), Labels: r.ints(15, 6)} }
	return []testCase{
		{"no-bias", with(func(t *TransformerConfig) { t.Bias = ptr(false) }), Shape{Vocab: 6}, batch()},
		{"head-no-bias", with(func(t *TransformerConfig) { t.HeadBias = ptr(false) }), Shape{Vocab: 6}, batch()},
		{"ratio1", with(func(t *TransformerConfig) { t.MLPRatio = 1 }), Shape{Vocab: 6}, batch()},
		{"ratio3", with(func(t *TransformerConfig) { t.MLPRatio = 3 }), Shape{Vocab: 6}, batch()},
		{"gelu-erf", with(func(t *TransformerConfig) { t.GELU = "erf" }), Shape{Vocab: 6}, batch()},
		{"normal0.02", with(func(t *TransformerConfig) { t.Init = "normal0.02" }), Shape{Vocab: 6}, batch()},
		{"paper", Config{Kind: "transformer", Transformer: paperTransformer(2, 8, 2, 5)}, Shape{Vocab: 6}, batch()},
		{"nanogpt-960", nanoGPT960, nanoShape, &data.Batch{N: 2, Tokens: r.ints(32, 25), Labels: r.ints(32, 25)}},
	}
}

// TestPaperOptionsFiniteDifference checks the gradient of every option, in
// every implementation, against central differences in float64, at a
// point moved off the initialisation (zero biases, unit gains, tiny 0.02
// weights) so every path carries gradient: every coordinate in fused; in
// the graphs, whose steps are slower, every coordinate of the paper's two
// models (every option at once; ops also of the two-layer paper case) and
// 12 random directions of each single option.
func TestPaperOptionsFiniteDifference(t *testing.T) {
	r := randomData{rand.New(rand.NewPCG(43, 44))}
	mlpBatch := &data.Batch{N: 5, X: r.normals(5 * 36), Labels: r.ints(5, 10)}
	cases := append(transformerOptionCases(),
		testCase{"mlp-386", mlp386, mlpShape, mlpBatch},
		testCase{"mlp-silu-deep", Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{5, 4}, Activation: "silu"}}, Shape{Inputs: 3, Classes: 4},
			&data.Batch{N: 4, X: r.normals(12), Labels: r.ints(4, 4)}})
	for _, c := range cases {
		impls := []string{"fused", "plain"}
		if c.cfg.Kind == "transformer" {
			impls = append(impls, "ops")
		}
		for _, impl := range impls {
			t.Run(c.name+"/"+impl, func(t *testing.T) {
				cfg := c.cfg
				cfg.DType, cfg.Impl = "float64", impl
				m, err := New(cfg, c.shape, 7)
				if err != nil {
					t.Fatal(err)
				}
				w := make([]float64, m.NumParams())
				m.Params(w)
				rng := rand.New(rand.NewPCG(45, 46))
				for i := range w {
					w[i] += 0.2 * rng.NormFloat64()
				}
				m.SetParams(w)
				full := impl == "fused" || c.name == "nanogpt-960" || c.name == "mlp-386" || (impl == "ops" && c.name == "paper")
				if !full {
					checkDirectionalFD(t, m, c.batch, 12, rng)
					return
				}
				checkGradientFD(t, m, c.batch)
			})
		}
	}
}

// checkDirectionalFD checks m's gradient g on b along k random unit
// directions u: g.u against the central difference of the loss along u.
// A wrong gradient coordinate shows in almost every direction.
func checkDirectionalFD(t *testing.T, m Model, b *data.Batch, k int, rng *rand.Rand) {
	t.Helper()
	p := m.NumParams()
	w, g := make([]float64, p), make([]float64, p)
	m.Params(w)
	if _, err := m.Grad(b, g); err != nil {
		t.Fatal(err)
	}
	var gnorm float64
	for _, v := range g {
		gnorm += v * v
	}
	gnorm = math.Sqrt(gnorm)
	const h = 1e-5
	u, wu := make([]float64, p), make([]float64, p)
	for range k {
		var n float64
		for i := range u {
			u[i] = rng.NormFloat64()
			n += u[i] * u[i]
		}
		var gu float64
		for i := range u {
			u[i] /= math.Sqrt(n)
			gu += g[i] * u[i]
		}
		loss := func(s float64) float64 {
			for i := range wu {
				wu[i] = w[i] + s*u[i]
			}
			m.SetParams(wu)
			e, err := m.Eval(b)
			if err != nil {
				t.Fatal(err)
			}
			return e.Loss
		}
		fd := (loss(h) - loss(-h)) / (2 * h)
		if math.Abs(fd-gu) > 1e-7*gnorm {
			t.Errorf("directional derivative %.12g, finite difference %.12g (|grad| %.3g)", gu, fd, gnorm)
		}
	}
	m.SetParams(w)
}

// TestPaperOptionsMatchPlain checks that fused and ops compute the plain
// graph's loss and gradient with every option (1e-9 in float64, 1e-4 in
// float32), MLP-386 included.
func TestPaperOptionsMatchPlain(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // ops split across goroutines
	r := randomData{rand.New(rand.NewPCG(47, 48))}
	rng := rand.New(rand.NewPCG(49, 50))
	cases := append(transformerOptionCases(),
		testCase{"mlp-386", mlp386, mlpShape, &data.Batch{N: 300, X: r.normals(300 * 36), Labels: r.ints(300, 10)}},
		// Enough rows that the fused transformer and the ops split across
		// goroutines.
		testCase{"nanogpt-960-wide-batch", nanoGPT960, nanoShape, &data.Batch{N: 300, Tokens: r.ints(300*16, 25), Labels: r.ints(300*16, 25)}})
	for _, c := range cases {
		impls := []string{"fused"}
		if c.cfg.Kind == "transformer" {
			impls = append(impls, "ops")
		}
		for _, impl := range impls {
			for _, dt := range []struct {
				dtype string
				tol   float64
			}{{"float64", 1e-9}, {"float32", 1e-4}} {
				t.Run(c.name+"/"+impl+"/"+dt.dtype, func(t *testing.T) { matchesPlain(t, c, impl, dt.dtype, dt.tol, rng) })
			}
		}
	}
}

// TestSiluKernel checks kern.SiLUForwardDeriv against x / (1 + e^-x) and its
// derivative in float64 and float32, out to where e^-x overflows.
func TestSiluKernel(t *testing.T) {
	xs := []float64{-1000, -90, -20, -3, -0.5, 0, 1e-8, 0.7, 4, 30, 1000}
	for len(xs) < 37 { // 37: the float32 kernel's vector body and its tail
		xs = append(xs, float64(len(xs))/4-5)
	}
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	deriv := func(x float64) float64 {
		s := 1 / (1 + math.Exp(-x))
		return s + x*s*(1-s)
	}
	v64, d64 := slices.Clone(xs), make([]float64, len(xs))
	kern.SiLUForwardDeriv(v64, d64)
	v32, d32 := make([]float32, len(xs)), make([]float32, len(xs))
	for i, x := range xs {
		v32[i] = float32(x)
	}
	kern.SiLUForwardDeriv(v32, d32)
	for i, x := range xs {
		y, d := silu(x), deriv(x)
		if math.Abs(v64[i]-y) > 1e-15*(1+math.Abs(y)) || math.Abs(d64[i]-d) > 1e-15*(1+math.Abs(d)) {
			t.Errorf("float64 silu(%g) = %g, %g; want %g, %g", x, v64[i], d64[i], y, d)
		}
		if math.Abs(float64(v32[i])-y) > 1e-6*(1+math.Abs(y)) || math.Abs(float64(d32[i])-d) > 1e-6*(1+math.Abs(d)) {
			t.Errorf("float32 silu(%g) = %g, %g; want %g, %g", x, v32[i], d32[i], y, d)
		}
	}
}

// TestGeluErfKernel checks the exact GELU against x Phi(x) from math.Erfc,
// its derivative against central differences, and that it differs from
// the tanh approximation (which is off by up to ~5e-4).
func TestGeluErfKernel(t *testing.T) {
	xs := []float64{-40, -6, -2.5, -1, -0.3, 0, 0.2, 1, 1.7, 3, 8}
	y, dd := make([]float64, len(xs)), make([]float64, len(xs))
	kern.GELUErfForwardDeriv(xs, y, dd)
	y2 := make([]float64, len(xs))
	kern.GELUErfForward(xs, y2)
	yt, th := make([]float64, len(xs)), make([]float64, len(xs))
	kern.GELUForward(xs, yt, th)
	var maxDiff float64
	for i, x := range xs {
		want := x * 0.5 * math.Erfc(-x/math.Sqrt2)
		if math.Abs(y[i]-want) > 1e-15*(1+math.Abs(want)) || y2[i] != y[i] {
			t.Errorf("gelu(%g) = %.17g (forward-only %.17g), want %.17g", x, y[i], y2[i], want)
		}
		const h = 1e-6
		in, out := []float64{x + h, x - h}, make([]float64, 2)
		kern.GELUErfForward(in, out)
		if fd := (out[0] - out[1]) / (2 * h); math.Abs(dd[i]-fd) > 1e-8 {
			t.Errorf("gelu'(%g) = %.12g, finite difference %.12g", x, dd[i], fd)
		}
		maxDiff = max(maxDiff, math.Abs(yt[i]-y[i]))
	}
	if maxDiff < 1e-5 {
		t.Errorf("erf and tanh GELU differ by at most %g: the erf path is not the exact GELU", maxDiff)
	}

	// float32 (geluErf32): a grid over [-12, 12], 37 + 8k points so that
	// the vectorised kern.ExpSum has a tail, against the float64 GELU.
	var x32 []float32
	for v := float32(-12); v <= 12; v += 0.0625 {
		x32 = append(x32, v)
	}
	x32 = append(x32, 1e-6, -1e-6, 100, -100)
	x64 := make([]float64, len(x32))
	for i, v := range x32 {
		x64[i] = float64(v)
	}
	want, wantD := make([]float64, len(x32)), make([]float64, len(x32))
	kern.GELUErfForwardDeriv(x64, want, wantD)
	y32, d32, f32 := make([]float32, len(x32)), make([]float32, len(x32)), make([]float32, len(x32))
	kern.GELUErfForwardDeriv(x32, y32, d32)
	kern.GELUErfForward(x32, f32)
	for i, v := range x32 {
		// Relative 1e-6 or, near zero, absolute 1e-7 * |x|.
		if e := math.Abs(float64(y32[i]) - want[i]); e > 1e-6*math.Abs(want[i]) && e > 1e-7*math.Abs(float64(v)) {
			t.Errorf("float32 gelu(%g) = %.9g, want %.9g", v, y32[i], want[i])
		}
		if math.Abs(float64(d32[i])-wantD[i]) > 1e-6 || f32[i] != y32[i] {
			t.Errorf("float32 gelu'(%g) = %.9g, want %.9g (forward-only value %.9g vs %.9g)", v, d32[i], wantD[i], f32[i], y32[i])
		}
	}
}

// TestSiluHasNoPattern checks that the silu MLP, smooth, records an empty
// activation pattern, whose frozen gradient is the gradient.
func TestSiluHasNoPattern(t *testing.T) {
	r := randomData{rand.New(rand.NewPCG(51, 52))}
	b := &data.Batch{N: 9, X: r.normals(9 * 36), Labels: r.ints(9, 10)}
	cfg := mlp386
	cfg.DType = "float64"
	m, _ := New(cfg, mlpShape, 1)
	pw := m.(Piecewise)
	pat, err := pw.RecordPattern(b)
	if err != nil {
		t.Fatal(err)
	}
	if pat.Units() != 0 {
		t.Fatalf("silu MLP records %d pattern units per example, want 0", pat.Units())
	}
	g, gf := make([]float64, m.NumParams()), make([]float64, m.NumParams())
	l, _ := m.Grad(b, g)
	lf, err := pw.GradFrozen(b, pat, gf)
	if err != nil || l != lf || !slices.Equal(g, gf) {
		t.Errorf("frozen loss %v err %v, gradient equal %v; want loss %v and the same gradient", lf, err, slices.Equal(g, gf), l)
	}
}

// TestPaperOptionErrors checks that bad option values are refused with an
// error naming the key.
func TestPaperOptionErrors(t *testing.T) {
	shape := Shape{Inputs: 3, Classes: 2, Vocab: 5}
	tr := func(f func(*TransformerConfig)) Config {
		c := Config{Kind: "transformer"}
		f(&c.Transformer)
		return c
	}
	cases := map[string]Config{
		"gelu":       tr(func(t *TransformerConfig) { t.GELU = "sigmoid" }),
		"init":       tr(func(t *TransformerConfig) { t.Init = "gpt3" }),
		"mlp_ratio":  tr(func(t *TransformerConfig) { t.MLPRatio = -1 }),
		"activation": {Kind: "mlp", MLP: MLPConfig{Activation: "gelu"}},
		"mlp init":   {Kind: "mlp", MLP: MLPConfig{Init: "xavier"}},
	}
	for key, c := range cases {
		_, err := New(c, shape, 1)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want one naming %q", key, err, key)
		}
	}
}

// TestResolvedOptionsShareNothing checks that WithDefaults copies the bias
// switches: changing the resolved config leaves the original alone.
func TestResolvedOptionsShareNothing(t *testing.T) {
	c := Config{Kind: "transformer", Transformer: TransformerConfig{Bias: ptr(false)}}
	r := c.WithDefaults()
	*r.Transformer.Bias = true
	if *c.Transformer.Bias || !reflect.DeepEqual(c.WithDefaults().Transformer.Bias, ptr(false)) {
		t.Error("the resolved config shares its bias switch with the original")
	}
}
