package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// headStage is the transformer's head as one Gorgonia op: the final
// LayerNorm, the output layer and the mean softmax cross-entropy against
// one-hot targets, x (m, d) to the scalar loss, over the fused kernels.
// As a LayerNorm op, a dense op and a loss op it cost three goroutine
// splits forward, three back and eight machine instructions; as one it is
// one split each way, each part a contiguous run of rows. The logits stay
// in the stage for headLogitsOp, the graph's output node, which Eval
// scores; with a gradient they are overwritten by the loss's gradient
// with respect to them, as in the fused model.
type headStage[T kern.Float] struct {
	name       string
	m, d, k    int
	bias       bool
	parts      int
	labels     []int
	xhat, rstd []T
	y          []T // LayerNorm output (m, d)
	logits     *tensor.Dense
	dy         []T       // gradient of y
	probs      []T       // Eval only: the copy of the logits the loss overwrites
	loss       []float64 // per part
	g          [][]T     // per part: gain, bias, weight and output bias gradients
	grads      []*tensor.Dense
	shapes     []tensor.Shape
	hasGrad    bool
	data       [][]T
}

func newHeadStage[T kern.Float](name string, m, d, k int, bias bool, parts int) *headStage[T] {
	s := &headStage[T]{name: name, m: m, d: d, k: k, bias: bias, parts: max(1, min(parts, m))}
	s.shapes = []tensor.Shape{{m, d}, {d}, {d}, {d, k}}
	if bias {
		s.shapes = append(s.shapes, tensor.Shape{k})
	}
	s.shapes = append(s.shapes, tensor.Shape{m, k})
	s.labels = make([]int, m)
	s.xhat, s.rstd, s.y = make([]T, m*d), make([]T, m), make([]T, m*d)
	s.logits = Buffer[T](m, k)
	s.loss = make([]float64, s.parts)
	s.data = make([][]T, len(s.shapes))
	return s
}

// HeadParts is how many goroutines a head over m rows uses.
func HeadParts(m, d, k, procs int) int { return Workers(m, 3*d*k+20*d, procs) }

func (s *headStage[T]) targets() int { return len(s.shapes) - 1 }

func (s *headStage[T]) allocGrad() {
	if s.hasGrad {
		return
	}
	s.hasGrad = true
	for _, sh := range s.shapes[:s.targets()] {
		s.grads = append(s.grads, Buffer[T](sh...))
	}
	s.dy = make([]T, s.m*s.d)
	for range s.parts {
		s.g = append(s.g, make([]T, 2*s.d+s.d*s.k+s.k))
	}
}

// rows calls fn for each part p on rows [lo, hi).
func (s *headStage[T]) rows(fn func(p, lo, hi int)) {
	per := (s.m + s.parts - 1) / s.parts
	Parallel(s.parts, s.parts, func(p, _, _ int) {
		if lo, hi := p*per, min((p+1)*per, s.m); lo < hi {
			fn(p, lo, hi)
		} else {
			s.loss[p] = 0
		}
	})
}

func (s *headStage[T]) operands(vals []G.Value) ([][]T, error) {
	if len(vals) < len(s.shapes) {
		return nil, fmt.Errorf("%s: want %d inputs, got %d", s.name, len(s.shapes), len(vals))
	}
	for i, sh := range s.shapes {
		v, err := Data[T](vals[i], sh.TotalSize(), s.name)
		if err != nil {
			return nil, fmt.Errorf("operand %d: %w", i, err)
		}
		s.data[i] = v
	}
	return s.data, nil
}

// headOp is the forward pass: x (m, d), the LayerNorm's gain and bias (d),
// the output weight (d, k) and, with bias, its bias (k), and the one-hot
// targets (m, k), to the mean cross-entropy.
type headOp[T kern.Float] struct{ s *headStage[T] }

var _ G.SDOp = headOp[float32]{}

func (op headOp[T]) Arity() int { return len(op.s.shapes) }

func (op headOp[T]) Type() hm.Type {
	var ts []hm.Type
	for _, sh := range op.s.shapes {
		ts = append(ts, TensorType(len(sh)))
	}
	return hm.NewFnType(append(ts, hm.TypeVariable('a'))...)
}

func (op headOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.s.shapes...); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

func (op headOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	data, err := s.operands(vals)
	if err != nil {
		return nil, err
	}
	logits, err := Output[T](s.logits, tensor.Shape{s.m, s.k})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	x, gain, bias, w := data[0], data[1], data[2], data[3]
	var ob []T
	if s.bias {
		ob = data[4]
	}
	d, k := s.d, s.k
	if err := oneHotIDs(data[s.targets()], k, s.labels); err != nil {
		return nil, fmt.Errorf("%s targets: %w", s.name, err)
	}
	if !s.hasGrad && s.probs == nil {
		s.probs = make([]T, s.m*k)
	}
	s.rows(func(p, lo, hi int) {
		r := hi - lo
		kern.LayerNormForward(x[lo*d:hi*d], r, d, gain, bias, s.xhat[lo*d:hi*d], s.rstd[lo:hi], s.y[lo*d:hi*d])
		lg := logits[lo*k : hi*k]
		kern.DenseForward(s.y[lo*d:hi*d], r, d, w, ob, k, lg)
		if s.hasGrad {
			// The logits become the loss's gradient with respect to them.
			s.loss[p] = kern.SoftmaxCrossEntropy(lg, r, k, s.labels[lo:hi], 1/T(s.m), true, nil)
			return
		}
		// Eval scores the logits: the loss overwrites a copy.
		pr := s.probs[lo*k : hi*k]
		copy(pr, lg)
		s.loss[p] = kern.SoftmaxCrossEntropy(pr, r, k, s.labels[lo:hi], 1, false, nil)
	})
	var loss float64
	for _, v := range s.loss {
		loss += v
	}
	loss /= float64(s.m)
	if dtypeOf[T]() == tensor.Float32 {
		return G.NewF32(float32(loss)), nil
	}
	return G.NewF64(loss), nil
}

func (op headOp[T]) ReturnsPtr() bool      { return false }
func (op headOp[T]) CallsExtern() bool     { return false }
func (op headOp[T]) OverwritesInput() int  { return -1 }
func (op headOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op headOp[T]) Hashcode() uint32      { return Hash(op) }

func (op headOp[T]) String() string {
	s := op.s
	return fmt.Sprintf("TransformerHead[%s]{m %d, d %d, k %d, bias %t, parts %d}", s.name, s.m, s.d, s.k, s.bias, s.parts)
}

func (op headOp[T]) DiffWRT(int) []bool { return op.s.wrt() }

func (op headOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.s.allocGrad()
	return gradSymDiff(op.s, inputs, output, grad)
}

// The stage's gradStage methods.

func (s *headStage[T]) forwardOp() G.Op               { return headOp[T]{s} }
func (s *headStage[T]) operandShapes() []tensor.Shape { return s.shapes }
func (s *headStage[T]) outShape() tensor.Shape        { return tensor.ScalarShape() }

// wrt: everything but the targets, which are data.
func (s *headStage[T]) wrt() []bool {
	w := make([]bool, len(s.shapes))
	for i := range w {
		w[i] = i != s.targets()
	}
	return w
}

func (s *headStage[T]) backward(vals []G.Value) error {
	data, err := s.operands(vals)
	if err != nil {
		return err
	}
	var up T // the loss's incoming gradient, 1 unless the graph scales it
	switch v := vals[len(s.shapes)+1].Data().(type) {
	case T:
		up = v
	case []T:
		if len(v) != 1 {
			return fmt.Errorf("%s: want a scalar loss gradient, got %d elements", s.name, len(v))
		}
		up = v[0]
	default:
		return fmt.Errorf("%s: want a scalar %T loss gradient, got %T", s.name, up, v)
	}
	gain, w := data[1], data[3]
	dl := sliceOf[T](s.logits) // the forward pass left the gradient here
	d, k := s.d, s.k
	dx := sliceOf[T](s.grads[0])
	for _, g := range s.g {
		clear(g)
	}
	s.rows(func(p, lo, hi int) {
		r := hi - lo
		g := s.g[p]
		var gob []T
		if s.bias {
			gob = g[2*d+d*k:]
		}
		lg := dl[lo*k : hi*k]
		if up != 1 {
			for i := range lg {
				lg[i] *= up
			}
		}
		dy := s.dy[lo*d : hi*d]
		kern.DenseBackward(s.y[lo*d:hi*d], r, d, w, k, lg, g[2*d:2*d+d*k], gob, dy)
		dxp := dx[lo*d : hi*d]
		clear(dxp)
		kern.LayerNormBackward(dy, r, d, gain, s.xhat[lo*d:hi*d], s.rstd[lo:hi], g[:d], g[d:2*d], dxp)
	})
	g := s.g[0]
	for _, o := range s.g[1:] {
		kern.Add(g, o)
	}
	copy(sliceOf[T](s.grads[1]), g[:d])
	copy(sliceOf[T](s.grads[2]), g[d:2*d])
	copy(sliceOf[T](s.grads[3]), g[2*d:2*d+d*k])
	if s.bias {
		copy(sliceOf[T](s.grads[4]), g[2*d+d*k:])
	}
	return nil
}

func (s *headStage[T]) grad(i int) (*tensor.Dense, error) {
	if _, err := Output[T](s.grads[i], s.shapes[i]); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return s.grads[i], nil
}

// headLogitsOp is the head's logits (m, k), which its forward op (the one
// input, the loss) left in the stage: the graph's output node, scored by
// Eval. It has no gradient: nothing downstream of it is differentiated.
type headLogitsOp[T kern.Float] struct{ s *headStage[T] }

func (op headLogitsOp[T]) Arity() int { return 1 }

func (op headLogitsOp[T]) Type() hm.Type {
	return hm.NewFnType(hm.TypeVariable('a'), TensorType(2))
}

func (op headLogitsOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, tensor.ScalarShape()); err != nil {
		return nil, err
	}
	return tensor.Shape{op.s.m, op.s.k}, nil
}

func (op headLogitsOp[T]) Do(vals ...G.Value) (G.Value, error) {
	if _, err := Output[T](op.s.logits, tensor.Shape{op.s.m, op.s.k}); err != nil {
		return nil, fmt.Errorf("%s: %w", op.s.name, err)
	}
	return op.s.logits, nil
}

func (op headLogitsOp[T]) ReturnsPtr() bool      { return false }
func (op headLogitsOp[T]) CallsExtern() bool     { return false }
func (op headLogitsOp[T]) OverwritesInput() int  { return -1 }
func (op headLogitsOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op headLogitsOp[T]) Hashcode() uint32      { return Hash(op) }
func (op headLogitsOp[T]) String() string        { return fmt.Sprintf("Logits[%v]", headOp[T](op)) }
