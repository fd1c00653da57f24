package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// denseLayer is a fully connected layer y = x W + bias of a fixed m rows,
// optionally followed by a ReLU, as Gorgonia ops. Gorgonia composes it of
// Mul, BroadcastAdd and Rectify, each allocating its output and gradient on
// every step and multiplying with gonum's SSE kernels; the layer's
// forward op and gradient ops share this struct: the shape, which ReLUs
// passed on the last forward pass, and the buffers reused on every step.
type denseLayer[T kern.Float] struct {
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

func newDenseLayer[T kern.Float](name string, m, in, out int, relu bool) *denseLayer[T] {
	d := &denseLayer[T]{name: name, m: m, in: in, out: out, relu: relu}
	d.y = Buffer[T](m, out)
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
	d.dx = Buffer[T](d.inShape()...)
	d.dw = Buffer[T](d.weightShape()...)
	d.db = Buffer[T](d.biasShape()...)
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
	kern.ApplyMask(d.dy, d.mask)
	return d.dy
}

// denseOp is a dense layer's forward pass: x (m, in), weight (in, out) and
// bias (out), the plain graph's parameter shapes, to y (m, out).
type denseOp[T kern.Float] struct{ d *denseLayer[T] }

var _ G.SDOp = denseOp[float32]{}

func (op denseOp[T]) Arity() int { return op.d.arity() }

func (op denseOp[T]) Type() hm.Type {
	if op.d.noBias {
		return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2))
	}
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(1), TensorType(2))
}

func (op denseOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	d := op.d
	want := []tensor.Shape{d.inShape(), d.weightShape(), d.biasShape()}[:d.arity()]
	if err := CheckShapes(op, in, want...); err != nil {
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
	if x, err = Data[T](vals[0], d.m*d.in, d.name+" input"); err != nil {
		return nil, nil, nil, nil, err
	}
	if w, err = Data[T](vals[1], d.in*d.out, d.name+" weight"); err != nil {
		return nil, nil, nil, nil, err
	}
	if !d.noBias {
		if b, err = Data[T](vals[2], d.out, d.name+" bias"); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if y, err = Output[T](d.y, d.outShape()); err != nil {
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
	kern.DenseForward(x, d.m, d.in, w, b, d.out, y)
	if d.relu {
		kern.ReLUMask(y, d.mask)
	}
	return d.y, nil
}

func (op denseOp[T]) ReturnsPtr() bool      { return false }
func (op denseOp[T]) CallsExtern() bool     { return false }
func (op denseOp[T]) OverwritesInput() int  { return -1 }
func (op denseOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op denseOp[T]) Hashcode() uint32      { return Hash(op) }

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
	op.d.allocGrad()
	return gradSymDiff(denseGrads[T]{op.d, 1}, inputs, output, grad)
}

// denseGrads is a dense layer as a gradStage: one gradOp computes the
// input, weight and bias gradients, the products split across parts
// goroutines in one go (the input gradient by rows of x, the weight
// gradient by rows of W).
type denseGrads[T kern.Float] struct {
	d     *denseLayer[T]
	parts int
}

func (g denseGrads[T]) forwardOp() G.Op {
	if g.parts > 1 {
		return splitDenseOp[T]{g.d, g.parts}
	}
	return denseOp[T]{g.d}
}

func (g denseGrads[T]) operandShapes() []tensor.Shape {
	d := g.d
	return []tensor.Shape{d.inShape(), d.weightShape(), d.biasShape()}[:d.arity()]
}

func (g denseGrads[T]) outShape() tensor.Shape { return g.d.outShape() }
func (g denseGrads[T]) wrt() []bool            { return g.d.diffWRT() }

func (g denseGrads[T]) backward(vals []G.Value) error {
	d := g.d
	in, out := d.in, d.out
	x, err := Data[T](vals[0], d.m*in, d.name+" input")
	if err != nil {
		return err
	}
	w, err := Data[T](vals[1], in*out, d.name+" weight")
	if err != nil {
		return err
	}
	dout, err := Data[T](vals[len(vals)-1], d.m*out, d.name+" output gradient")
	if err != nil {
		return err
	}
	dy := d.through(dout)
	dx, dw := sliceOf[T](d.dx), sliceOf[T](d.dw)
	// Transposed here rather than by Gemm, which would copy W into a
	// pooled buffer that each garbage collection empties.
	kern.Transpose(d.wT, w, in, out)
	parts := max(1, g.parts)
	xPer, wPer := (d.m+parts-1)/parts, (in+parts-1)/parts
	Parallel(parts, parts, func(p, _, _ int) {
		if lo, hi := p*xPer, min((p+1)*xPer, d.m); lo < hi {
			gemm.Gemm(false, false, hi-lo, in, out, 1, dy[lo*out:], out, d.wT, in, 0, dx[lo*in:], in)
		}
		if lo, hi := p*wPer, min((p+1)*wPer, in); lo < hi {
			gemm.Gemm(true, false, hi-lo, out, d.m, 1, x[lo:], in, dy, out, 0, dw[lo*out:], out)
		}
	})
	if !d.noBias {
		db := sliceOf[T](d.db)
		clear(db)
		kern.SumRows(db, dy[:d.m*out])
	}
	return nil
}

func (g denseGrads[T]) grad(i int) (*tensor.Dense, error) {
	t := []*tensor.Dense{g.d.dx, g.d.dw, g.d.db}[i]
	if _, err := Output[T](t, g.operandShapes()[i]); err != nil {
		return nil, fmt.Errorf("%s: %w", g.d.name, err)
	}
	return t, nil
}
