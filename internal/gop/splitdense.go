package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// splitDenseOp is denseOp (same denseLayer, shapes, buffers and gradient
// arithmetic) with its products split across goroutines. The CNN's dense
// layers are small beside its conv stages, so denseOp runs on one
// goroutine; the transformer's dense layers (q, k, v, the attention and
// MLP projections, the head) over batch*context rows are most of its step,
// and internal/gemm never starts goroutines itself. The forward product
// and the input gradient are split by rows of x, the weight gradient by
// rows of W (see denseGrads).
type splitDenseOp[T kern.Float] struct {
	d     *denseLayer[T]
	parts int
}

var _ G.SDOp = splitDenseOp[float32]{}

func (op splitDenseOp[T]) plain() denseOp[T] { return denseOp[T]{op.d} }

func (op splitDenseOp[T]) Arity() int    { return op.d.arity() }
func (op splitDenseOp[T]) Type() hm.Type { return op.plain().Type() }

func (op splitDenseOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return op.plain().InferShape(in...)
}

func (op splitDenseOp[T]) Do(vals ...G.Value) (G.Value, error) {
	d := op.d
	if op.parts <= 1 {
		return op.plain().Do(vals...)
	}
	x, w, b, y, err := d.forwardOperands(op, vals)
	if err != nil {
		return nil, err
	}
	in, out := d.in, d.out
	Parallel(d.m, op.parts, func(_, lo, hi int) {
		kern.DenseForward(x[lo*in:hi*in], hi-lo, in, w, b, out, y[lo*out:hi*out])
		if d.relu {
			kern.ReLUMask(y[lo*out:hi*out], d.mask[lo*out:hi*out])
		}
	})
	return d.y, nil
}

func (op splitDenseOp[T]) ReturnsPtr() bool      { return false }
func (op splitDenseOp[T]) CallsExtern() bool     { return false }
func (op splitDenseOp[T]) OverwritesInput() int  { return -1 }
func (op splitDenseOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op splitDenseOp[T]) Hashcode() uint32      { return Hash(op) }

func (op splitDenseOp[T]) String() string {
	return fmt.Sprintf("Split%v/%d", op.plain(), op.parts)
}

func (op splitDenseOp[T]) DiffWRT(int) []bool { return op.d.diffWRT() }

func (op splitDenseOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.d.allocGrad()
	return gradSymDiff(denseGrads[T]{op.d, op.parts}, inputs, output, grad)
}
