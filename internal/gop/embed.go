package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// embedStage is the transformer's input: row r of the output is the token
// embedding of the r-th token plus the position embedding of position r mod
// t, for n sequences of t tokens given one-hot (n*t, vocab). Gorgonia's
// composition (a one-hot product, Reshape, BroadcastAdd, Reshape) multiplies
// by the one-hot matrix forward and backward and also computes the unused
// gradient of the one-hot input; here forward is a gather and the gradients
// scatter-adds.
type embedStage[T kern.Float] struct {
	m, t, vocab, d  int
	ids             []int
	out, dtok, dpos *tensor.Dense
}

func newEmbedStage[T kern.Float](m, t, vocab, d int) *embedStage[T] {
	return &embedStage[T]{m: m, t: t, vocab: vocab, d: d, ids: make([]int, m), out: Buffer[T](m, d)}
}

func (e *embedStage[T]) tokensShape() tensor.Shape { return tensor.Shape{e.m, e.vocab} }
func (e *embedStage[T]) tokShape() tensor.Shape    { return tensor.Shape{e.vocab, e.d} }
func (e *embedStage[T]) posShape() tensor.Shape    { return tensor.Shape{e.t, e.d} }
func (e *embedStage[T]) outShape() tensor.Shape    { return tensor.Shape{e.m, e.d} }

// embedOp is (one-hot tokens (m, vocab), tok (vocab, d), pos (t, d)) to
// (m, d).
type embedOp[T kern.Float] struct{ e *embedStage[T] }

var _ G.SDOp = embedOp[float32]{}

func (op embedOp[T]) Arity() int { return 3 }

func (op embedOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2), TensorType(2))
}

func (op embedOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	e := op.e
	if err := CheckShapes(op, in, e.tokensShape(), e.tokShape(), e.posShape()); err != nil {
		return nil, err
	}
	return e.outShape(), nil
}

func (op embedOp[T]) Do(vals ...G.Value) (G.Value, error) {
	e := op.e
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	onehot, err := Data[T](vals[0], e.m*e.vocab, "tokens")
	if err != nil {
		return nil, err
	}
	tok, err := Data[T](vals[1], e.vocab*e.d, "token embedding")
	if err != nil {
		return nil, err
	}
	pos, err := Data[T](vals[2], e.t*e.d, "position embedding")
	if err != nil {
		return nil, err
	}
	if err := oneHotIDs(onehot, e.vocab, e.ids); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	out, err := Output[T](e.out, e.outShape())
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	d := e.d
	for r, id := range e.ids {
		o, te, pe := out[r*d:(r+1)*d], tok[id*d:(id+1)*d], pos[(r%e.t)*d:(r%e.t+1)*d]
		for j := range o {
			o[j] = te[j] + pe[j]
		}
	}
	return e.out, nil
}

// oneHotIDs sets ids[i] to the column of the 1 in row i of the one-hot
// (len(ids), width) matrix v.
func oneHotIDs[T kern.Float](v []T, width int, ids []int) error {
	for i := range ids {
		ids[i] = -1
		for j, x := range v[i*width : (i+1)*width] {
			if x == 1 {
				ids[i] = j
				break
			}
		}
		if ids[i] < 0 {
			return fmt.Errorf("row %d is not one-hot", i)
		}
	}
	return nil
}

func (op embedOp[T]) ReturnsPtr() bool      { return false }
func (op embedOp[T]) CallsExtern() bool     { return false }
func (op embedOp[T]) OverwritesInput() int  { return -1 }
func (op embedOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op embedOp[T]) Hashcode() uint32      { return Hash(op) }

func (op embedOp[T]) String() string {
	e := op.e
	return fmt.Sprintf("Embedding{%d rows, context %d, vocab %d, d %d}", e.m, e.t, e.vocab, e.d)
}

// DiffWRT: the two embeddings; the tokens are data.
func (op embedOp[T]) DiffWRT(int) []bool { return []bool{false, true, true} }

func (op embedOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(inputs))
	}
	e := op.e
	if e.dtok == nil {
		e.dtok = Buffer[T](e.tokShape()...)
		e.dpos = Buffer[T](e.posShape()...)
	}
	grads := make(G.Nodes, 3)
	for wrt := 1; wrt < 3; wrt++ {
		g, err := G.ApplyOp(embedGradOp[T]{e, wrt}, inputs[wrt], grad)
		if err != nil {
			return nil, fmt.Errorf("%v gradient %d: %w", op, wrt, err)
		}
		grads[wrt] = g
	}
	return grads, nil
}

// embedGradOp is the gradient with respect to the token (wrt 1) or
// position (wrt 2) embedding, given that embedding (only for its place in
// the graph) and the output gradient, from the ids the forward op read.
type embedGradOp[T kern.Float] struct {
	e   *embedStage[T]
	wrt int
}

func (op embedGradOp[T]) Arity() int { return 2 }

func (op embedGradOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(2), TensorType(2), TensorType(2))
}

func (op embedGradOp[T]) shape() tensor.Shape {
	if op.wrt == 1 {
		return op.e.tokShape()
	}
	return op.e.posShape()
}

func (op embedGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.shape(), op.e.outShape()); err != nil {
		return nil, err
	}
	return op.shape(), nil
}

func (op embedGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	e := op.e
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	dy, err := Data[T](vals[1], e.m*e.d, "embedding output gradient")
	if err != nil {
		return nil, err
	}
	res := e.dtok
	if op.wrt == 2 {
		res = e.dpos
	}
	g, err := Output[T](res, op.shape())
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	clear(g)
	d := e.d
	for r, id := range e.ids {
		row := id
		if op.wrt == 2 {
			row = r % e.t
		}
		kern.Add(g[row*d:(row+1)*d], dy[r*d:(r+1)*d])
	}
	return res, nil
}

func (op embedGradOp[T]) ReturnsPtr() bool      { return false }
func (op embedGradOp[T]) CallsExtern() bool     { return false }
func (op embedGradOp[T]) OverwritesInput() int  { return -1 }
func (op embedGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op embedGradOp[T]) Hashcode() uint32      { return Hash(op) }

func (op embedGradOp[T]) String() string {
	return fmt.Sprintf("∂%v/∂%s", embedOp[T]{op.e}, []string{"", "token", "position"}[op.wrt])
}
