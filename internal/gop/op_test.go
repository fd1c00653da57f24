package gop

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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
