package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A Gorgonia op returns one value, so a stage differentiated one operand
// per gradient op (as attnGradOp still is) pays a machine instruction, a
// pass over its output gradient and, split across goroutines, a start and
// join of goroutines for every operand. A gradStage instead computes the
// gradients of all its operands in one pass: its gradOp returns the first
// one it is asked for, and a pickOp per other operand hands Gorgonia that
// operand's buffer, already filled. Gorgonia's Grad still builds the whole
// backward graph: the picks are the parameters' gradient nodes, and it
// sums them with any other use of the same node as usual.

// gradStage is a stage whose gradOp computes the gradients with respect to
// all its operands at once.
type gradStage interface {
	// forwardOp is the stage's forward op, which names the gradient ops.
	forwardOp() G.Op
	// operandShapes are the shapes of the forward op's operands.
	operandShapes() []tensor.Shape
	// outShape is the shape of the forward op's output.
	outShape() tensor.Shape
	// wrt reports which operands have a gradient.
	wrt() []bool
	// backward computes the gradient of every operand wrt selects, given
	// the forward operands' values, the output's and the output gradient's.
	// It runs after the forward op of the same step, whose scratch it
	// reads: the output is among its operands so that Gorgonia orders it
	// so even where the output gradient does not depend on the output (a
	// loss's is the constant 1).
	backward(vals []G.Value) error
	// grad returns operand i's gradient buffer, as backward left it.
	grad(i int) (*tensor.Dense, error)
}

// gradSymDiff is the SymDiff of a gradStage's forward op: one gradOp for
// the first operand with a gradient, a pickOp for each other.
func gradSymDiff(s gradStage, inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	wrt := s.wrt()
	if len(inputs) != len(wrt) {
		return nil, fmt.Errorf("%v: want %d inputs, got %d", s.forwardOp(), len(wrt), len(inputs))
	}
	grads := make(G.Nodes, len(inputs))
	var all *G.Node
	for i, need := range wrt {
		if !need {
			continue
		}
		var err error
		if all == nil {
			operands := append(append(G.Nodes(nil), inputs...), output, grad)
			all, err = G.ApplyOp(gradOp{s, i}, operands...)
			grads[i] = all
		} else {
			grads[i], err = G.ApplyOp(pickOp{s, i, firstWRT(wrt)}, all)
		}
		if err != nil {
			return nil, fmt.Errorf("%v gradient %d: %w", s.forwardOp(), i, err)
		}
	}
	return grads, nil
}

// firstWRT is the first operand wrt selects.
func firstWRT(wrt []bool) int {
	for i, w := range wrt {
		if w {
			return i
		}
	}
	return -1
}

// gradOp runs a gradStage's backward pass over (operands..., output,
// output gradient) and returns the gradient of operand first.
type gradOp struct {
	s     gradStage
	first int
}

func (op gradOp) Arity() int { return len(op.s.operandShapes()) + 2 }

func (op gradOp) Type() hm.Type {
	var ts []hm.Type
	for _, s := range op.s.operandShapes() {
		ts = append(ts, shapeType(s))
	}
	out := shapeType(op.s.outShape())
	ts = append(ts, out, out, shapeType(op.s.operandShapes()[op.first]))
	return hm.NewFnType(ts...)
}

// shapeType is the Gorgonia type of a value of shape s: a tensor, or
// the bare element type for a scalar.
func shapeType(s tensor.Shape) hm.Type {
	if s.IsScalar() {
		return hm.TypeVariable('a')
	}
	return TensorType(len(s))
}

func (op gradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	want := append(append([]tensor.Shape(nil), op.s.operandShapes()...), op.s.outShape(), op.s.outShape())
	if err := CheckShapes(op, in, want...); err != nil {
		return nil, err
	}
	return op.s.operandShapes()[op.first].Clone(), nil
}

func (op gradOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("%v: want %d inputs, got %d", op, op.Arity(), len(vals))
	}
	if err := op.s.backward(vals); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	return op.s.grad(op.first)
}

func (op gradOp) ReturnsPtr() bool      { return false }
func (op gradOp) CallsExtern() bool     { return false }
func (op gradOp) OverwritesInput() int  { return -1 }
func (op gradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op gradOp) Hashcode() uint32      { return Hash(op) }
func (op gradOp) String() string        { return fmt.Sprintf("∂%v/∂all", op.s.forwardOp()) }

// pickOp returns the gradient of operand i of a gradStage, which the
// stage's gradOp (its one input) has computed.
type pickOp struct {
	s     gradStage
	i     int
	first int // the operand whose gradient the gradOp returns
}

func (op pickOp) Arity() int { return 1 }

func (op pickOp) Type() hm.Type {
	shapes := op.s.operandShapes()
	return hm.NewFnType(shapeType(shapes[op.first]), shapeType(shapes[op.i]))
}

func (op pickOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	shapes := op.s.operandShapes()
	if err := CheckShapes(op, in, shapes[op.first]); err != nil {
		return nil, err
	}
	return shapes[op.i].Clone(), nil
}

func (op pickOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(vals))
	}
	return op.s.grad(op.i)
}

func (op pickOp) ReturnsPtr() bool      { return false }
func (op pickOp) CallsExtern() bool     { return false }
func (op pickOp) OverwritesInput() int  { return -1 }
func (op pickOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op pickOp) Hashcode() uint32      { return Hash(op) }
func (op pickOp) String() string        { return fmt.Sprintf("∂%v/∂%d", op.s.forwardOp(), op.i) }
