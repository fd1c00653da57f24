package models

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
)

// splitDenseOp is denseOp (same denseLayer, shapes, buffers and gradient
// arithmetic) with its products split across goroutines. The CNN's dense
// layers are small beside its conv stages, so denseOp runs on one
// goroutine; the transformer's dense layers (q, k, v, the attention and
// MLP projections, the head) over batch*context rows are most of its step,
// and internal/gemm never starts goroutines itself. The forward product
// and the input gradient are split by rows of x, the weight gradient by
// rows of W; the bias gradient stays denseGradOp's.
type splitDenseOp[T float] struct {
	d     *denseLayer[T]
	parts int
}

var _ G.SDOp = splitDenseOp[float32]{}

// denseParts is how many goroutines a dense layer of m rows uses.
func denseParts(m, in, out, procs int) int { return opsWorkers(m, in*out, procs) }

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
	opsParallel(d.m, op.parts, func(_, lo, hi int) {
		denseForward(x[lo*in:hi*in], hi-lo, in, w, b, out, y[lo*out:hi*out])
		if d.relu {
			reluMask(y[lo*out:hi*out], d.mask[lo*out:hi*out])
		}
	})
	return d.y, nil
}

func (op splitDenseOp[T]) ReturnsPtr() bool      { return false }
func (op splitDenseOp[T]) CallsExtern() bool     { return false }
func (op splitDenseOp[T]) OverwritesInput() int  { return -1 }
func (op splitDenseOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op splitDenseOp[T]) Hashcode() uint32      { return opsHash(op) }

func (op splitDenseOp[T]) String() string {
	return fmt.Sprintf("Split%v/%d", op.plain(), op.parts)
}

func (op splitDenseOp[T]) DiffWRT(int) []bool { return op.d.diffWRT() }

func (op splitDenseOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return denseSymDiff(op, op.d, inputs, grad, func(wrt int) G.Op {
		return splitDenseGradOp[T]{denseGradOp[T]{op.d, wrt}, op.parts}
	})
}

// splitDenseGradOp is denseGradOp with the input and weight gradients'
// products split across goroutines.
type splitDenseGradOp[T float] struct {
	denseGradOp[T]
	parts int
}

func (op splitDenseGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	d := op.d
	if op.parts <= 1 || op.wrt == 2 {
		return op.denseGradOp.Do(vals...)
	}
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	dout, err := opsData[T](vals[2], d.m*d.out, d.name+" output gradient")
	if err != nil {
		return nil, err
	}
	dy := d.through(dout)
	in, out := d.in, d.out
	if op.wrt == 0 {
		w, err := opsData[T](vals[1], in*out, d.name+" weight")
		if err != nil {
			return nil, err
		}
		dx, err := opsOutput[T](d.dx, d.inShape())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		transposeGeneric(d.wT, w, in, out)
		opsParallel(d.m, op.parts, func(_, lo, hi int) {
			gemm.Gemm(false, false, hi-lo, in, out, 1, dy[lo*out:], out, d.wT, in, 0, dx[lo*in:], in)
		})
		return d.dx, nil
	}
	x, err := opsData[T](vals[0], d.m*in, d.name+" input")
	if err != nil {
		return nil, err
	}
	dw, err := opsOutput[T](d.dw, d.weightShape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	opsParallel(in, op.parts, func(_, lo, hi int) {
		gemm.Gemm(true, false, hi-lo, out, d.m, 1, x[lo:], in, dy, out, 0, dw[lo*out:], out)
	})
	return d.dw, nil
}

func (op splitDenseGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op splitDenseGradOp[T]) Hashcode() uint32      { return opsHash(op) }

func (op splitDenseGradOp[T]) String() string {
	return fmt.Sprintf("Split%v/%d", op.denseGradOp, op.parts)
}
