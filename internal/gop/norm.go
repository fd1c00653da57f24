package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// layerNormStage is a LayerNorm of a fixed m rows of width d as Gorgonia
// ops over kern.LayerNormForward/kern.LayerNormBackward. Gorgonia's own composition
// (layers.go: Mean, BroadcastSub, Square, Mean, Add, Sqrt, BroadcastDiv,
// BroadcastMul, BroadcastAdd) is nine nodes, each allocating its output and
// gradient on every step. The forward op keeps xhat and 1/std for the
// gradient ops, which share this struct.
type layerNormStage[T kern.Float] struct {
	name       string // the parameter prefix, e.g. "block0.ln1"
	m, d       int
	parts      int
	xhat, rstd []T
	y          *tensor.Dense
	dx, dg, db *tensor.Dense
	scratch    [][]T // per part: 2d of the gain's and bias's gradients over its rows
}

func newLayerNormStage[T kern.Float](name string, m, d, parts int) *layerNormStage[T] {
	return &layerNormStage[T]{name: name, m: m, d: d, parts: max(1, parts),
		xhat: make([]T, m*d), rstd: make([]T, m), y: Buffer[T](m, d)}
}

func (l *layerNormStage[T]) rowShape() tensor.Shape { return tensor.Shape{l.m, l.d} }
func (l *layerNormStage[T]) vecShape() tensor.Shape { return tensor.Shape{l.d} }

func (l *layerNormStage[T]) allocGrad() {
	if l.dx != nil {
		return
	}
	l.dx = Buffer[T](l.m, l.d)
	l.dg = Buffer[T](l.d)
	l.db = Buffer[T](l.d)
	for range l.parts {
		l.scratch = append(l.scratch, make([]T, 2*l.d))
	}
}

// layerNormOp is y = gain * (x - mean) / std + bias row by row, for x (m,
// d), gain (d) and bias (d).
type layerNormOp[T kern.Float] struct{ l *layerNormStage[T] }

var _ G.SDOp = layerNormOp[float32]{}

func (op layerNormOp[T]) Arity() int { return 3 }

func (op layerNormOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(1), TensorType(1), TensorType(2))
}

func (op layerNormOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	l := op.l
	if err := CheckShapes(op, in, l.rowShape(), l.vecShape(), l.vecShape()); err != nil {
		return nil, err
	}
	return l.rowShape(), nil
}

func (op layerNormOp[T]) Do(vals ...G.Value) (G.Value, error) {
	l := op.l
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	x, err := Data[T](vals[0], l.m*l.d, l.name+" input")
	if err != nil {
		return nil, err
	}
	g, err := Data[T](vals[1], l.d, l.name+" gain")
	if err != nil {
		return nil, err
	}
	b, err := Data[T](vals[2], l.d, l.name+" bias")
	if err != nil {
		return nil, err
	}
	y, err := Output[T](l.y, l.rowShape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	d := l.d
	Parallel(l.m, l.parts, func(_, lo, hi int) {
		kern.LayerNormForward(x[lo*d:hi*d], hi-lo, d, g, b, l.xhat[lo*d:hi*d], l.rstd[lo:hi], y[lo*d:hi*d])
	})
	return l.y, nil
}

func (op layerNormOp[T]) ReturnsPtr() bool      { return false }
func (op layerNormOp[T]) CallsExtern() bool     { return false }
func (op layerNormOp[T]) OverwritesInput() int  { return -1 }
func (op layerNormOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op layerNormOp[T]) Hashcode() uint32      { return Hash(op) }

func (op layerNormOp[T]) String() string {
	return fmt.Sprintf("LayerNorm[%s]{%d, %d}", op.l.name, op.l.m, op.l.d)
}

func (op layerNormOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op layerNormOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.l.allocGrad()
	return gradSymDiff(op.l, inputs, output, grad)
}

// The stage's gradStage methods: one gradOp computes dx, the gain's and
// the bias's gradient, each part's column sums in its own scratch.

func (l *layerNormStage[T]) forwardOp() G.Op { return layerNormOp[T]{l} }

func (l *layerNormStage[T]) operandShapes() []tensor.Shape {
	return []tensor.Shape{l.rowShape(), l.vecShape(), l.vecShape()}
}

func (l *layerNormStage[T]) outShape() tensor.Shape { return l.rowShape() }
func (l *layerNormStage[T]) wrt() []bool            { return []bool{true, true, true} }

func (l *layerNormStage[T]) backward(vals []G.Value) error {
	d := l.d
	g, err := Data[T](vals[1], d, l.name)
	if err != nil {
		return fmt.Errorf("gain: %w", err)
	}
	dy, err := Data[T](vals[4], l.m*d, l.name)
	if err != nil {
		return fmt.Errorf("output gradient: %w", err)
	}
	dx := sliceOf[T](l.dx)
	clear(dx)
	// Cleared here: Parallel may leave a part idle.
	for _, sc := range l.scratch {
		clear(sc)
	}
	Parallel(l.m, l.parts, func(part, lo, hi int) {
		sc := l.scratch[part]
		kern.LayerNormBackward(dy[lo*d:hi*d], hi-lo, d, g, l.xhat[lo*d:hi*d], l.rstd[lo:hi], sc[:d], sc[d:], dx[lo*d:hi*d])
	})
	dg, db := sliceOf[T](l.dg), sliceOf[T](l.db)
	copy(dg, l.scratch[0][:d])
	copy(db, l.scratch[0][d:])
	for _, sc := range l.scratch[1:] {
		kern.Add(dg, sc[:d])
		kern.Add(db, sc[d:])
	}
	return nil
}

func (l *layerNormStage[T]) grad(i int) (*tensor.Dense, error) {
	t := []*tensor.Dense{l.dx, l.dg, l.db}[i]
	if _, err := Output[T](t, l.operandShapes()[i]); err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	return t, nil
}

// geluStage is the tanh-approximation GELU of a fixed (m, k) tensor as
// Gorgonia ops over kern.GELUForward/kern.GELUBackward; Gorgonia's composition
// (layers.go) is seven element-wise nodes. The forward op keeps the tanh
// for the gradient op. With erf, it is the exact GELU over
// kern.GELUErfForward(Deriv), and th holds the derivative instead.
type geluStage[T kern.Float] struct {
	name  string
	m, k  int
	parts int
	erf   bool
	th    []T
	y, dx *tensor.Dense
}

func newGeluStage[T kern.Float](name string, m, k, parts int) *geluStage[T] {
	return &geluStage[T]{name: name, m: m, k: k, parts: max(1, parts), th: make([]T, m*k), y: Buffer[T](m, k)}
}

func (s *geluStage[T]) shape() tensor.Shape { return tensor.Shape{s.m, s.k} }

// geluOp is GELU element-wise.
type geluOp[T kern.Float] struct{ s *geluStage[T] }

var _ G.SDOp = geluOp[float32]{}

func (op geluOp[T]) Arity() int    { return 1 }
func (op geluOp[T]) Type() hm.Type { return hm.NewFnType(TensorType(2), TensorType(2)) }

func (op geluOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.s.shape()); err != nil {
		return nil, err
	}
	return op.s.shape(), nil
}

func (op geluOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(vals))
	}
	x, err := Data[T](vals[0], s.m*s.k, s.name+" input")
	if err != nil {
		return nil, err
	}
	y, err := Output[T](s.y, s.shape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	k := s.k
	Parallel(s.m, s.parts, func(_, lo, hi int) {
		switch {
		case s.erf && s.dx != nil: // a gradient op will read the derivative
			kern.GELUErfForwardDeriv(x[lo*k:hi*k], y[lo*k:hi*k], s.th[lo*k:hi*k])
		case s.erf:
			kern.GELUErfForward(x[lo*k:hi*k], y[lo*k:hi*k])
		default:
			kern.GELUForward(x[lo*k:hi*k], y[lo*k:hi*k], s.th[lo*k:hi*k])
		}
	})
	return s.y, nil
}

func (op geluOp[T]) ReturnsPtr() bool      { return false }
func (op geluOp[T]) CallsExtern() bool     { return false }
func (op geluOp[T]) OverwritesInput() int  { return -1 }
func (op geluOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op geluOp[T]) Hashcode() uint32      { return Hash(op) }

func (op geluOp[T]) String() string {
	if op.s.erf {
		return fmt.Sprintf("GELU-erf[%s]{%d, %d}", op.s.name, op.s.m, op.s.k)
	}
	return fmt.Sprintf("GELU[%s]{%d, %d}", op.s.name, op.s.m, op.s.k)
}

func (op geluOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op geluOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(inputs))
	}
	if op.s.dx == nil {
		op.s.dx = Buffer[T](op.s.m, op.s.k)
	}
	g, err := G.ApplyOp(geluGradOp[T](op), inputs[0], grad)
	if err != nil {
		return nil, fmt.Errorf("%v gradient: %w", op, err)
	}
	return G.Nodes{g}, nil
}

// geluGradOp is the input gradient of a GELU given its input and output
// gradient, from the tanh the forward op kept on this step.
type geluGradOp[T kern.Float] struct{ s *geluStage[T] }

func (op geluGradOp[T]) Arity() int { return 2 }
func (op geluGradOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2))
}

func (op geluGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.s.shape(), op.s.shape()); err != nil {
		return nil, err
	}
	return op.s.shape(), nil
}

func (op geluGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	x, err := Data[T](vals[0], s.m*s.k, s.name+" input")
	if err != nil {
		return nil, err
	}
	dy, err := Data[T](vals[1], s.m*s.k, s.name+" output gradient")
	if err != nil {
		return nil, err
	}
	dx, err := Output[T](s.dx, s.shape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	k := s.k
	Parallel(s.m, s.parts, func(_, lo, hi int) {
		copy(dx[lo*k:hi*k], dy[lo*k:hi*k])
		if s.erf {
			kern.Mul(dx[lo*k:hi*k], s.th[lo*k:hi*k])
		} else {
			kern.GELUBackward(x[lo*k:hi*k], s.th[lo*k:hi*k], dx[lo*k:hi*k])
		}
	})
	return s.dx, nil
}

func (op geluGradOp[T]) ReturnsPtr() bool      { return false }
func (op geluGradOp[T]) CallsExtern() bool     { return false }
func (op geluGradOp[T]) OverwritesInput() int  { return -1 }
func (op geluGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op geluGradOp[T]) Hashcode() uint32      { return Hash(op) }
func (op geluGradOp[T]) String() string        { return fmt.Sprintf("∂%v", geluOp[T](op)) }
