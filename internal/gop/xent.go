package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// xentStage is the mean softmax cross-entropy of m rows of k logits against
// one-hot targets, as Gorgonia ops over kern.SoftmaxCrossEntropy. Gorgonia's
// composition (models' builder.crossEntropy: LogSoftMax, HadamardProd, Sum, Mul)
// allocates per row in its softmax and its softmax gradient, which on the
// transformer's (batch*context, vocab) logits is most of a step's
// allocations and a tenth of its time. The forward op computes the loss
// and, once a gradient op exists, also the gradient (softmax - onehot) / m,
// which the gradient op scales by the loss's incoming gradient.
type xentStage[T kern.Float] struct {
	name   string
	m, k   int
	labels []int
	probs  []T           // logits, overwritten by the scaled gradient
	dl     *tensor.Dense // (m, k) gradient with respect to the logits
}

func newXentStage[T kern.Float](name string, m, k int) *xentStage[T] {
	return &xentStage[T]{name: name, m: m, k: k, labels: make([]int, m), probs: make([]T, m*k)}
}

func (x *xentStage[T]) shape() tensor.Shape { return tensor.Shape{x.m, x.k} }

// xentOp is -mean over rows of log softmax(logits)[label], the labels given
// as a one-hot (m, k) tensor: a scalar.
type xentOp[T kern.Float] struct{ x *xentStage[T] }

var _ G.SDOp = xentOp[float32]{}

func (op xentOp[T]) Arity() int { return 2 }

func (op xentOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), hm.TypeVariable('a'))
}

func (op xentOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.x.shape(), op.x.shape()); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

func (op xentOp[T]) Do(vals ...G.Value) (G.Value, error) {
	x := op.x
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	logits, err := Data[T](vals[0], x.m*x.k, x.name+" logits")
	if err != nil {
		return nil, err
	}
	onehot, err := Data[T](vals[1], x.m*x.k, x.name+" targets")
	if err != nil {
		return nil, err
	}
	if err := oneHotIDs(onehot, x.k, x.labels); err != nil {
		return nil, fmt.Errorf("%s targets: %w", x.name, err)
	}
	copy(x.probs, logits)
	loss := kern.SoftmaxCrossEntropy(x.probs, x.m, x.k, x.labels, 1/T(x.m), x.dl != nil, nil) / float64(x.m)
	if dtypeOf[T]() == tensor.Float32 {
		return G.NewF32(float32(loss)), nil
	}
	return G.NewF64(loss), nil
}

func (op xentOp[T]) ReturnsPtr() bool      { return false }
func (op xentOp[T]) CallsExtern() bool     { return false }
func (op xentOp[T]) OverwritesInput() int  { return -1 }
func (op xentOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op xentOp[T]) Hashcode() uint32      { return Hash(op) }

func (op xentOp[T]) String() string {
	return fmt.Sprintf("SoftmaxCrossEntropy[%s]{%d, %d}", op.x.name, op.x.m, op.x.k)
}

// DiffWRT: the logits; the targets are data.
func (op xentOp[T]) DiffWRT(int) []bool { return []bool{true, false} }

func (op xentOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(inputs))
	}
	if op.x.dl == nil {
		op.x.dl = Buffer[T](op.x.m, op.x.k)
	}
	g, err := G.ApplyOp(xentGradOp[T](op), output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v gradient: %w", op, err)
	}
	return G.Nodes{g, nil}, nil
}

// xentGradOp is the logits' gradient, given the loss (only to order it
// after the forward op, which computes the gradient: the loss's gradient
// is a constant) and the loss's gradient, a scalar.
type xentGradOp[T kern.Float] struct{ x *xentStage[T] }

func (op xentGradOp[T]) Arity() int { return 2 }

func (op xentGradOp[T]) Type() hm.Type {
	return hm.NewFnType(hm.TypeVariable('a'), hm.TypeVariable('a'), TensorType(2))
}

func (op xentGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, tensor.ScalarShape(), tensor.ScalarShape()); err != nil {
		return nil, err
	}
	return op.x.shape(), nil
}

func (op xentGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	x := op.x
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	var g T
	switch v := vals[1].Data().(type) {
	case T:
		g = v
	case []T:
		if len(v) != 1 {
			return nil, fmt.Errorf("%v: want a scalar gradient, got %d elements", op, len(v))
		}
		g = v[0]
	default:
		return nil, fmt.Errorf("%v: want a scalar %T gradient, got %T", op, g, v)
	}
	dl, err := Output[T](x.dl, x.shape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", x.name, err)
	}
	for i, v := range x.probs {
		dl[i] = g * v
	}
	return x.dl, nil
}

func (op xentGradOp[T]) ReturnsPtr() bool      { return false }
func (op xentGradOp[T]) CallsExtern() bool     { return false }
func (op xentGradOp[T]) OverwritesInput() int  { return -1 }
func (op xentGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op xentGradOp[T]) Hashcode() uint32      { return Hash(op) }
func (op xentGradOp[T]) String() string        { return fmt.Sprintf("∂%v", xentOp[T](op)) }
