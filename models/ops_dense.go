package models

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// denseLayer is a fully connected layer y = x W + bias of a fixed m rows,
// optionally followed by a ReLU, as Gorgonia ops. Gorgonia composes it of
// Mul, BroadcastAdd and Rectify, each allocating its output and gradient on
// every step and multiplying with gonum's SSE kernels; the layer's
// forward op and gradient ops share this struct: the shape, which ReLUs
// passed on the last forward pass, and the buffers reused on every step.
type denseLayer[T float] struct {
	name       string // the parameter prefix, e.g. "hidden"
	m, in, out int
	relu       bool
	noBias     bool    // y = x W: the ops take (x, weight) only
	mask       []uint8 // (m, out): 1 where the ReLU passed
	y          *tensor.Dense
	dx, dw, db *tensor.Dense
	dy         []T // the output gradient through the ReLU (relu only)
	wT         []T // transposed weights (out, in) for the input gradient
}

func newDenseLayer[T float](name string, m, in, out int, relu bool) *denseLayer[T] {
	d := &denseLayer[T]{name: name, m: m, in: in, out: out, relu: relu}
	d.y = opsBuffer[T](m, out)
	if relu {
		d.mask = make([]uint8, m*out)
	}
	return d
}

func (d *denseLayer[T]) inShape() tensor.Shape     { return tensor.Shape{d.m, d.in} }
func (d *denseLayer[T]) weightShape() tensor.Shape { return tensor.Shape{d.in, d.out} }
func (d *denseLayer[T]) biasShape() tensor.Shape   { return tensor.Shape{d.out} }
func (d *denseLayer[T]) outShape() tensor.Shape    { return tensor.Shape{d.m, d.out} }

// arity is the number of operands of the forward op: x, weight and, with
// a bias, the bias.
func (d *denseLayer[T]) arity() int {
	if d.noBias {
		return 2
	}
	return 3
}

// allocGrad allocates the gradient buffers, once a gradient op is made.
func (d *denseLayer[T]) allocGrad() {
	if d.dw != nil {
		return
	}
	d.dx = opsBuffer[T](d.inShape()...)
	d.dw = opsBuffer[T](d.weightShape()...)
	d.db = opsBuffer[T](d.biasShape()...)
	d.wT = make([]T, d.in*d.out)
	if d.relu {
		d.dy = make([]T, d.m*d.out)
	}
}

// through returns the gradient of the pre-activation given dout, the
// gradient of the output: dout itself without a ReLU, else dout with the
// units whose ReLU did not pass zeroed (in d.dy; dout stays as it is, since
// it is Gorgonia's value).
func (d *denseLayer[T]) through(dout []T) []T {
	if !d.relu {
		return dout
	}
	copy(d.dy, dout)
	applyMask(d.dy, d.mask)
	return d.dy
}

// denseOp is a dense layer's forward pass: x (m, in), weight (in, out) and
// bias (out), the plain graph's parameter shapes, to y (m, out).
type denseOp[T float] struct{ d *denseLayer[T] }

var _ G.SDOp = denseOp[float32]{}

func (op denseOp[T]) Arity() int { return op.d.arity() }

func (op denseOp[T]) Type() hm.Type {
	if op.d.noBias {
		return hm.NewFnType(opsType(2), opsType(2), opsType(2))
	}
	return hm.NewFnType(opsType(2), opsType(2), opsType(1), opsType(2))
}

func (op denseOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	d := op.d
	want := []tensor.Shape{d.inShape(), d.weightShape(), d.biasShape()}[:d.arity()]
	if err := opsCheckShapes(op, in, want...); err != nil {
		return nil, err
	}
	return d.outShape(), nil
}

// forwardOperands checks the forward pass's inputs (x, weight, bias) and
// returns their data and that of the layer's output buffer; b is nil for
// a layer without bias.
func (d *denseLayer[T]) forwardOperands(op G.Op, vals []G.Value) (x, w, b, y []T, err error) {
	if len(vals) != d.arity() {
		return nil, nil, nil, nil, fmt.Errorf("%v: want %d inputs, got %d", op, d.arity(), len(vals))
	}
	if x, err = opsData[T](vals[0], d.m*d.in, d.name+" input"); err != nil {
		return nil, nil, nil, nil, err
	}
	if w, err = opsData[T](vals[1], d.in*d.out, d.name+" weight"); err != nil {
		return nil, nil, nil, nil, err
	}
	if !d.noBias {
		if b, err = opsData[T](vals[2], d.out, d.name+" bias"); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if y, err = opsOutput[T](d.y, d.outShape()); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%s: %w", d.name, err)
	}
	return x, w, b, y, nil
}

func (op denseOp[T]) Do(vals ...G.Value) (G.Value, error) {
	d := op.d
	x, w, b, y, err := d.forwardOperands(op, vals)
	if err != nil {
		return nil, err
	}
	denseForward(x, d.m, d.in, w, b, d.out, y)
	if d.relu {
		reluMask(y, d.mask)
	}
	return d.y, nil
}

func (op denseOp[T]) ReturnsPtr() bool      { return false }
func (op denseOp[T]) CallsExtern() bool     { return false }
func (op denseOp[T]) OverwritesInput() int  { return -1 }
func (op denseOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op denseOp[T]) Hashcode() uint32      { return opsHash(op) }

func (op denseOp[T]) String() string {
	d := op.d
	if d.noBias {
		return fmt.Sprintf("Dense[%s]{%d, %d->%d, relu %t, no bias}", d.name, d.m, d.in, d.out, d.relu)
	}
	return fmt.Sprintf("Dense[%s]{%d, %d->%d, relu %t}", d.name, d.m, d.in, d.out, d.relu)
}

func (op denseOp[T]) DiffWRT(int) []bool { return op.d.diffWRT() }

// diffWRT is DiffWRT of the layer's forward ops: every operand.
func (d *denseLayer[T]) diffWRT() []bool { return []bool{true, true, true}[:d.arity()] }

func (op denseOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return denseSymDiff(op, op.d, inputs, grad, func(wrt int) G.Op { return denseGradOp[T]{op.d, wrt} })
}

// denseSymDiff applies gradOp(wrt) to (input, weight, output gradient) for
// each of a dense layer's three operands: the SymDiff of denseOp and
// splitDenseOp, which differ only in their gradient ops.
func denseSymDiff[T float](op G.Op, d *denseLayer[T], inputs G.Nodes, grad *G.Node, gradOp func(wrt int) G.Op) (G.Nodes, error) {
	if len(inputs) != d.arity() {
		return nil, fmt.Errorf("%v: want %d inputs, got %d", op, d.arity(), len(inputs))
	}
	d.allocGrad()
	grads := make(G.Nodes, d.arity())
	for wrt := range grads {
		g, err := G.ApplyOp(gradOp(wrt), inputs[0], inputs[1], grad)
		if err != nil {
			return nil, fmt.Errorf("%v gradient %d: %w", op, wrt, err)
		}
		grads[wrt] = g
	}
	return grads, nil
}

// denseGradOp is the gradient of a dense layer with respect to its operand
// wrt (0 input, 1 weight, 2 bias), given the input, the weight and the
// gradient of the output, routed through the ReLU pattern the forward op
// recorded on this step.
type denseGradOp[T float] struct {
	d   *denseLayer[T]
	wrt int
}

func (op denseGradOp[T]) Arity() int { return 3 }

func (op denseGradOp[T]) shape() tensor.Shape {
	return []tensor.Shape{op.d.inShape(), op.d.weightShape(), op.d.biasShape()}[op.wrt]
}

func (op denseGradOp[T]) Type() hm.Type {
	return hm.NewFnType(opsType(2), opsType(2), opsType(2), opsType(len(op.shape())))
}

func (op denseGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	d := op.d
	if err := opsCheckShapes(op, in, d.inShape(), d.weightShape(), d.outShape()); err != nil {
		return nil, err
	}
	return op.shape(), nil
}

func (op denseGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	d := op.d
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	dout, err := opsData[T](vals[2], d.m*d.out, d.name+" output gradient")
	if err != nil {
		return nil, err
	}
	dy := d.through(dout)
	switch op.wrt {
	case 0:
		w, err := opsData[T](vals[1], d.in*d.out, d.name+" weight")
		if err != nil {
			return nil, err
		}
		dx, err := opsOutput[T](d.dx, d.inShape())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		// Transposed here rather than by Gemm, which would copy W into a
		// pooled buffer that each garbage collection empties.
		transposeGeneric(d.wT, w, d.in, d.out)
		gemm.Gemm(false, false, d.m, d.in, d.out, 1, dy, d.out, d.wT, d.in, 0, dx, d.in)
		return d.dx, nil
	case 1:
		x, err := opsData[T](vals[0], d.m*d.in, d.name+" input")
		if err != nil {
			return nil, err
		}
		dw, err := opsOutput[T](d.dw, d.weightShape())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		gemm.Gemm(true, false, d.in, d.out, d.m, 1, x, d.in, dy, d.out, 0, dw, d.out)
		return d.dw, nil
	default:
		db, err := opsOutput[T](d.db, d.biasShape())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		clear(db)
		for i := 0; i < d.m; i++ {
			addTo(db, dy[i*d.out:(i+1)*d.out])
		}
		return d.db, nil
	}
}

func (op denseGradOp[T]) ReturnsPtr() bool      { return false }
func (op denseGradOp[T]) CallsExtern() bool     { return false }
func (op denseGradOp[T]) OverwritesInput() int  { return -1 }
func (op denseGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op denseGradOp[T]) Hashcode() uint32      { return opsHash(op) }

func (op denseGradOp[T]) String() string {
	return fmt.Sprintf("∂%v/∂%s", denseOp[T]{op.d}, []string{"input", "weight", "bias"}[op.wrt])
}
