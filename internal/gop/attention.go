package gop

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// attnStage is multi-head causal self-attention of n sequences of t
// positions as Gorgonia ops, given the q, k and v projections (n*t, d),
// which stay denseOps of their own. Gorgonia's composition (models' transformer.go)
// reshapes and transposes q, k, v and the output into (n*heads, t, dh)
// copies, masks the scores with an added -1e9 and runs a full softmax over
// the t*t scores, every node allocating on every step. Here, as in the
// fused kernels, a head is a column slice of the (n*t, d) projections read
// in place with leading dimension d, and the softmax only visits the causal
// half. The forward op keeps the probabilities for the gradient ops.
//
// The gradient is split so that each Gorgonia op returns one value: the
// score gradient op turns the output gradient into ds, the gradient with
// respect to the unscaled scores q k^T (n*heads blocks of (t, t)), shared
// by the dq = ds k and
// dk = ds^T q ops, while dv = p^T dout reads the probabilities directly.
type attnStage[T kern.Float] struct {
	name            string // e.g. "block0.attn"
	n, t, heads, d  int
	parts           int
	p               []T           // (n*heads, t, t) probabilities of the last forward pass
	out             *tensor.Dense // (n*t, d)
	ds, dq, dk, dv  *tensor.Dense
	scale           T
	qShape, dsShape tensor.Shape
}

func newAttnStage[T kern.Float](name string, n, t, heads, d, parts int) *attnStage[T] {
	a := &attnStage[T]{name: name, n: n, t: t, heads: heads, d: d, parts: max(1, parts)}
	a.p = make([]T, n*heads*t*t)
	a.out = Buffer[T](n*t, d)
	a.scale = T(1 / math.Sqrt(float64(d/heads)))
	a.qShape = tensor.Shape{n * t, d}
	a.dsShape = tensor.Shape{n * heads * t, t}
	return a
}

// AttentionParts is how many goroutines attention over n sequences uses.
func AttentionParts(n, t, d, procs int) int { return Workers(n, 4*t*t*d, procs) }

func (a *attnStage[T]) allocGrad() {
	if a.ds != nil {
		return
	}
	a.ds = Buffer[T](a.dsShape...)
	a.dq = Buffer[T](a.qShape...)
	a.dk = Buffer[T](a.qShape...)
	a.dv = Buffer[T](a.qShape...)
}

// each calls fn for every (sequence, head) of sequences [lo, hi) with the
// offset of the head's columns in the (n*t, d) projections and its (t, t)
// probability block.
func (a *attnStage[T]) each(lo, hi int, fn func(o int, pr []T, blk int)) {
	t, dh := a.t, a.d/a.heads
	for s := lo; s < hi; s++ {
		for h := 0; h < a.heads; h++ {
			blk := (s*a.heads + h) * t * t
			fn(s*t*a.d+h*dh, a.p[blk:blk+t*t], blk)
		}
	}
}

// attnOp is causal softmax(q k^T / sqrt(dh)) v per sequence and head, the
// heads' outputs concatenated: q, k, v (n*t, d) to (n*t, d).
type attnOp[T kern.Float] struct{ a *attnStage[T] }

var _ G.SDOp = attnOp[float32]{}

func (op attnOp[T]) Arity() int { return 3 }

func (op attnOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2), TensorType(2))
}

func (op attnOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.a.qShape
	if err := CheckShapes(op, in, s, s, s); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

func (op attnOp[T]) Do(vals ...G.Value) (G.Value, error) {
	a := op.a
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	var qkv [3][]T
	for i, what := range []string{"q", "k", "v"} {
		v, err := Data[T](vals[i], a.n*a.t*a.d, a.name+" "+what)
		if err != nil {
			return nil, err
		}
		qkv[i] = v
	}
	q, k, v := qkv[0], qkv[1], qkv[2]
	out, err := Output[T](a.out, a.qShape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.name, err)
	}
	t, d, dh := a.t, a.d, a.d/a.heads
	Parallel(a.n, a.parts, func(_, lo, hi int) {
		a.each(lo, hi, func(o int, pr []T, _ int) {
			gemm.Gemm(false, true, t, t, dh, a.scale, q[o:], d, k[o:], d, 0, pr, t)
			kern.CausalSoftmax(pr, t)
			gemm.Gemm(false, false, t, dh, t, 1, pr, t, v[o:], d, 0, out[o:], d)
		})
	})
	return a.out, nil
}

func (op attnOp[T]) ReturnsPtr() bool      { return false }
func (op attnOp[T]) CallsExtern() bool     { return false }
func (op attnOp[T]) OverwritesInput() int  { return -1 }
func (op attnOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op attnOp[T]) Hashcode() uint32      { return Hash(op) }

func (op attnOp[T]) String() string {
	a := op.a
	return fmt.Sprintf("CausalAttention[%s]{n %d, t %d, heads %d, d %d}", a.name, a.n, a.t, a.heads, a.d)
}

func (op attnOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op attnOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(inputs))
	}
	op.a.allocGrad()
	q, k, v := inputs[0], inputs[1], inputs[2]
	ds, err := G.ApplyOp(attnGradOp[T]{op.a, attnScores}, v, grad)
	if err != nil {
		return nil, fmt.Errorf("%v score gradient: %w", op, err)
	}
	dq, err := G.ApplyOp(attnGradOp[T]{op.a, attnQ}, ds, k)
	if err != nil {
		return nil, fmt.Errorf("%v q gradient: %w", op, err)
	}
	dk, err := G.ApplyOp(attnGradOp[T]{op.a, attnK}, ds, q)
	if err != nil {
		return nil, fmt.Errorf("%v k gradient: %w", op, err)
	}
	dv, err := G.ApplyOp(attnGradOp[T]{op.a, attnV}, grad, v)
	if err != nil {
		return nil, fmt.Errorf("%v v gradient: %w", op, err)
	}
	return G.Nodes{dq, dk, dv}, nil
}

// What an attnGradOp computes, and from which two inputs.
const (
	attnScores = iota // (v, dout) -> ds (n*heads*t, t)
	attnQ             // (ds, k) -> dq = ds k
	attnK             // (ds, q) -> dk = ds^T q
	attnV             // (dout, v) -> dv = p^T dout; v only fixes the node's place
)

// attnGradOp is one step of the attention gradient (see attnStage).
type attnGradOp[T kern.Float] struct {
	a    *attnStage[T]
	what int
}

func (op attnGradOp[T]) Arity() int { return 2 }

func (op attnGradOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2))
}

func (op attnGradOp[T]) inShapes() []tensor.Shape {
	a := op.a
	if op.what == attnQ || op.what == attnK {
		return []tensor.Shape{a.dsShape, a.qShape}
	}
	return []tensor.Shape{a.qShape, a.qShape}
}

func (op attnGradOp[T]) outShape() tensor.Shape {
	if op.what == attnScores {
		return op.a.dsShape.Clone()
	}
	return op.a.qShape.Clone()
}

func (op attnGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.inShapes()...); err != nil {
		return nil, err
	}
	return op.outShape(), nil
}

func (op attnGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	a := op.a
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	shapes := op.inShapes()
	var in [2][]T
	for i := range in {
		v, err := Data[T](vals[i], shapes[i].TotalSize(), fmt.Sprintf("%v input %d", op, i))
		if err != nil {
			return nil, err
		}
		in[i] = v
	}
	t, d, dh := a.t, a.d, a.d/a.heads
	var res *tensor.Dense
	switch op.what {
	case attnScores:
		res = a.ds
	case attnQ:
		res = a.dq
	case attnK:
		res = a.dk
	default:
		res = a.dv
	}
	out, err := Output[T](res, op.outShape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.name, err)
	}
	Parallel(a.n, a.parts, func(_, lo, hi int) {
		a.each(lo, hi, func(o int, pr []T, blk int) {
			switch op.what {
			case attnScores:
				v, dout, ds := in[0], in[1], out[blk:blk+t*t]
				gemm.Gemm(false, true, t, t, dh, 1, dout[o:], d, v[o:], d, 0, ds, t)
				kern.CausalSoftmaxGrad(pr, ds, t, a.scale)
			case attnQ:
				ds, k := in[0][blk:blk+t*t], in[1]
				gemm.Gemm(false, false, t, dh, t, 1, ds, t, k[o:], d, 0, out[o:], d)
			case attnK:
				ds, q := in[0][blk:blk+t*t], in[1]
				gemm.Gemm(true, false, t, dh, t, 1, ds, t, q[o:], d, 0, out[o:], d)
			default:
				dout := in[0]
				gemm.Gemm(true, false, t, dh, t, 1, pr, t, dout[o:], d, 0, out[o:], d)
			}
		})
	})
	return res, nil
}

func (op attnGradOp[T]) ReturnsPtr() bool      { return false }
func (op attnGradOp[T]) CallsExtern() bool     { return false }
func (op attnGradOp[T]) OverwritesInput() int  { return -1 }
func (op attnGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op attnGradOp[T]) Hashcode() uint32      { return Hash(op) }

func (op attnGradOp[T]) String() string {
	return fmt.Sprintf("∂%v/∂%s", attnOp[T]{op.a}, []string{"scores", "q", "k", "v"}[op.what])
}
