package models

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/data"
)

// opsGraph is a float64 test graph around one custom op: the scalar
// L = sum(r * op(inputs...)) for fixed random r, so that Gorgonia's
// gradient of L with respect to each input can be compared with central
// differences of L. Everything runs through Gorgonia (ApplyOp, Grad, a
// TapeMachine), as in the model.
type opsGraph struct {
	vm     G.VM
	inputs []*G.Node
	data   [][]float64 // each input's elements, bound to its node
	loss   G.Value
}

// opsOperand names an input of a custom op under test and gives its shape.
type opsOperand struct {
	name  string
	shape tensor.Shape
}

// newOpsGraph applies op to random inputs and differentiates L with
// respect to the inputs wrt selects.
func newOpsGraph(t *testing.T, rng *rand.Rand, op G.Op, wrt []bool, operands ...opsOperand) *opsGraph {
	t.Helper()
	g := G.NewGraph()
	og := &opsGraph{}
	for _, o := range operands {
		s := o.shape
		v := randn(rng, s.TotalSize())
		n := G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(o.name),
			G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(v))))
		og.inputs = append(og.inputs, n)
		og.data = append(og.data, v)
	}
	out, err := G.ApplyOp(op, og.inputs...)
	if err != nil {
		t.Fatal(err)
	}
	rs := out.Shape()
	r := G.NewTensor(g, tensor.Float64, len(rs), G.WithShape(rs...), G.WithName("r"),
		G.WithValue(tensor.New(tensor.WithShape(rs...), tensor.WithBacking(randn(rng, rs.TotalSize())))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, r))))
	G.Read(loss, &og.loss)
	var diff G.Nodes
	for i, n := range og.inputs {
		if wrt[i] {
			diff = append(diff, n)
		}
	}
	if _, err := G.Grad(loss, diff...); err != nil {
		t.Fatal(err)
	}
	og.vm = G.NewTapeMachine(g)
	return og
}

// run returns L at the current inputs.
func (og *opsGraph) run(t *testing.T) float64 {
	t.Helper()
	if err := og.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	og.vm.Reset()
	return og.loss.Data().(float64)
}

// check compares the gradient of L with respect to each input wrt selects
// with central differences.
func (og *opsGraph) check(t *testing.T, name string, wrt []bool) {
	t.Helper()
	og.run(t)
	grads := make([][]float64, len(og.inputs))
	for i, n := range og.inputs {
		if !wrt[i] {
			continue
		}
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: gradient of input %d: %v", name, i, err)
		}
		// Copied: the op reuses its buffer on the runs below.
		grads[i] = append([]float64(nil), gv.Data().([]float64)...)
	}
	for i := range og.inputs {
		if wrt[i] {
			checkFD(t, name+" "+og.inputs[i].Name(), og.data[i], func() float64 { return og.run(t) }, grads[i])
		}
	}
}

// TestConvPoolOpGradient checks the conv stage op's gradient ops against
// finite differences: with and without the input gradient, with the
// flattened output, and split across goroutines, including a split that
// leaves one goroutine without images.
func TestConvPoolOpGradient(t *testing.T) {
	const cin, cout, h, w = 2, 3, 4, 6
	cases := []struct {
		name         string
		n, parts     int
		needDX, flat bool
	}{
		{"one", 1, 1, true, false},
		{"batch", 3, 1, true, false},
		{"no-dx", 3, 1, false, false},
		{"flat", 3, 1, true, true},
		{"split", 5, 3, true, false},
		{"split-idle", 4, 3, true, true}, // parts of 2, 2 and 0 images
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(k), 7))
			s := newConvPool[float64]("conv", c.n, cin, cout, h, w, c.needDX, c.flat, c.parts)
			op := convPoolOp[float64]{s}
			wrt := op.DiffWRT(3)
			og := newOpsGraph(t, rng, op, wrt, opsOperand{"x", s.inShape()}, opsOperand{"weight", s.weightShape()}, opsOperand{"bias", s.biasShape()})
			og.check(t, c.name, wrt)
			// Run twice more: the reused buffers must give the same
			// gradient again (nothing accumulates across steps).
			l1 := og.run(t)
			gw1 := append([]float64(nil), s.dw.Data().([]float64)...)
			l2 := og.run(t)
			if l1 != l2 || relErr(s.dw.Data().([]float64), gw1) != 0 {
				t.Errorf("second run differs: loss %g vs %g, weight gradient rel diff %g", l2, l1, relErr(s.dw.Data().([]float64), gw1))
			}
		})
	}
}

// TestDenseOpGradient checks the dense op's gradient ops, with and without
// the ReLU, against finite differences.
func TestDenseOpGradient(t *testing.T) {
	for k, relu := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(uint64(k), 8))
		d := newDenseLayer[float64]("dense", 5, 7, 4, relu)
		op := denseOp[float64]{d}
		wrt := op.DiffWRT(3)
		og := newOpsGraph(t, rng, op, wrt, opsOperand{"x", d.inShape()}, opsOperand{"weight", d.weightShape()}, opsOperand{"bias", d.biasShape()})
		name := "linear"
		if relu {
			name = "relu"
		}
		og.check(t, name, wrt)
		if relu {
			var on int
			for _, m := range d.mask {
				on += int(m)
			}
			if on == 0 || on == len(d.mask) {
				t.Errorf("%d of %d ReLUs pass: the test does not exercise the mask", on, len(d.mask))
			}
		}
	}
}

// TestConvPoolOpRejectsShapes checks that a stage refuses operands of the
// wrong shape when the graph is built, not when it runs.
func TestConvPoolOpRejectsShapes(t *testing.T) {
	g := G.NewGraph()
	s := newConvPool[float64]("conv", 2, 3, 4, 8, 8, true, false, 1)
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 8, 8), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float64, 4, G.WithShape(4, 2, 3, 3), G.WithName("w")) // cin 2, not 3
	b := G.NewTensor(g, tensor.Float64, 1, G.WithShape(4), G.WithName("b"))
	if _, err := G.ApplyOp(convPoolOp[float64]{s}, x, w, b); err == nil {
		t.Error("ApplyOp accepted a weight of shape (4, 2, 3, 3) for 3 input channels")
	}
}

// opsCases are CNN configurations and batches on which ops must equal plain.
func opsCases() []testCase {
	r := randomData{rand.New(rand.NewPCG(5, 6))}
	img := Shape{Image: []int{3, 16, 16}, Classes: 10}
	cnn := CNNConfig{Width: 3, Hidden: 8}
	return []testCase{
		{"small", Config{Kind: "cnn", CNN: cnn}, img, &data.Batch{N: 5, X: r.normals(5 * 3 * 256), Labels: r.ints(5, 10)}},
		// Chunks of 4, 4 and 2, each a graph of its own.
		{"chunked", Config{Kind: "cnn", CNN: cnn, Chunk: 4}, img, &data.Batch{N: 10, X: r.normals(10 * 3 * 256), Labels: r.ints(10, 10)}},
		{"rect", Config{Kind: "cnn", CNN: CNNConfig{Width: 2, Hidden: 5}}, Shape{Image: []int{2, 8, 16}, Classes: 3},
			&data.Batch{N: 4, X: r.normals(4 * 2 * 128), Labels: r.ints(4, 3)}},
	}
}

// TestOpsMatchesPlain checks that impl ops computes the plain graph's loss,
// gradient and Eval (see matchesPlain). The plain reference runs the whole
// batch at once, so the chunked case also checks that ops chunks exactly.
func TestOpsMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, c := range opsCases() {
		for _, dt := range []struct {
			dtype string
			tol   float64
		}{{"float64", 1e-9}, {"float32", 1e-4}} {
			t.Run(c.name+"/"+dt.dtype, func(t *testing.T) { matchesPlain(t, c, "ops", dt.dtype, dt.tol, rng) })
		}
	}
}

// worstIndex is where a and b differ most.
func worstIndex(a, b []float64) int {
	worst := 0
	for i := range a {
		if math.Abs(a[i]-b[i]) > math.Abs(a[worst]-b[worst]) {
			worst = i
		}
	}
	return worst
}

// TestOpsConfig checks that impl ops is accepted for the CNN and the
// transformer and refused, with an error naming it, for the other kinds.
func TestOpsConfig(t *testing.T) {
	if _, err := New(Config{Kind: "cnn", Impl: "ops", CNN: CNNConfig{Width: 2, Hidden: 3}}, Shape{Image: []int{3, 8, 8}, Classes: 2}, 1); err != nil {
		t.Errorf("cnn with impl ops: %v", err)
	}
	if _, err := New(Config{Kind: "transformer", Impl: "ops", Transformer: TransformerConfig{Layers: 1, Width: 4, Heads: 2, Context: 3}}, Shape{Vocab: 4}, 1); err != nil {
		t.Errorf("transformer with impl ops: %v", err)
	}
	for _, kind := range []string{"mlp", "linreg"} {
		err := Config{Kind: kind, Impl: "ops"}.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), "impl ops") {
			t.Errorf("%s with impl ops: Validate gave %v, want an error about impl ops", kind, err)
		}
	}
	if _, err := New(Config{Kind: "mlp", Impl: "ops"}, Shape{Inputs: 3, Classes: 2}, 1); err == nil {
		t.Error("mlp with impl ops succeeded, want an error")
	}
}

// TestOpsStepAllocations checks that, once warm, a training step of the ops
// CNN allocates far less than its activations and gradients: the custom
// ops reuse their buffers, and only Gorgonia's machine allocates.
func TestOpsStepAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count needs a few full steps, without the race detector")
	}
	// Each goroutine an op starts allocates a little: pin their number.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const n = 32
	r := randomData{rand.New(rand.NewPCG(2, 3))}
	b := &data.Batch{N: n, X: r.normals(n * 3 * 32 * 32), Labels: r.ints(n, 10)}
	cfg := Config{Kind: "cnn", Impl: "ops"}
	m, err := New(cfg, Shape{Image: []int{3, 32, 32}, Classes: 10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// What remains is the tape machine's instructions, its per-run
	// goroutine and channels and gemm's pooled scratch, ~9 KB here (~30 KB
	// with Gorgonia's own loss nodes). Every buffer an op reuses is larger
	// than the limit except the biases', the output layer's, the loss's
	// and the first stage's weight gradient: re-allocating any of the
	// others on every step fails.
	checkWarmStepAllocations(t, m, b, 24<<10)
}

// checkWarmStepAllocations fails t if m allocates more than limit bytes
// per gradient step on b once warm (two steps in), averaged over five.
func checkWarmStepAllocations(t *testing.T, m Model, b *data.Batch, limit uint64) {
	t.Helper()
	g := make([]float64, m.NumParams())
	step := func() {
		if _, err := m.Grad(b, g); err != nil {
			t.Fatal(err)
		}
	}
	step()
	step()
	const steps = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range steps {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	t.Logf("%d bytes per step (limit %d)", perStep, limit)
	if perStep > limit {
		t.Errorf("a warm step allocates %d bytes, want < %d", perStep, limit)
	}
}
