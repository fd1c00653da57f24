package models

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gop"
)

// erfOp is the error function element-wise, for the plain graph's exact
// GELU: Gorgonia has no erf. Its forward pass is math.Erf element by
// element; its gradient, 2/sqrt(pi) exp(-x^2), is made of Gorgonia's own
// ops, so the plain graph stays a reference built from Gorgonia's
// differentiation.
type erfOp struct{}

var _ G.SDOp = erfOp{}

func (erfOp) Arity() int { return 1 }

func (erfOp) Type() hm.Type { return hm.NewFnType(hm.TypeVariable('a'), hm.TypeVariable('a')) }

func (op erfOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(in))
	}
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: input has no shape (%T)", op, in[0])
	}
	return s.Clone(), nil
}

func (op erfOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(vals))
	}
	x, ok := vals[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%v: want a dense tensor, got %T", op, vals[0])
	}
	y := tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(x.Shape().Clone()...))
	switch d := x.Data().(type) {
	case []float32:
		out := y.Data().([]float32)
		for i, v := range d {
			out[i] = float32(math.Erf(float64(v)))
		}
	case []float64:
		out := y.Data().([]float64)
		for i, v := range d {
			out[i] = math.Erf(v)
		}
	default:
		return nil, fmt.Errorf("%v: want float32 or float64 elements, got %T", op, x.Data())
	}
	return y, nil
}

func (erfOp) ReturnsPtr() bool      { return false }
func (erfOp) CallsExtern() bool     { return false }
func (erfOp) OverwritesInput() int  { return -1 }
func (erfOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "erf") }
func (op erfOp) Hashcode() uint32   { return gop.Hash(op) }
func (erfOp) String() string        { return "Erf" }
func (erfOp) DiffWRT(int) []bool    { return []bool{true} }

func (op erfOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(inputs))
	}
	x := inputs[0]
	c := G.NewConstant(2 / math.Sqrt(math.Pi))
	if x.Dtype() == tensor.Float32 {
		c = G.NewConstant(float32(2 / math.Sqrt(math.Pi)))
	}
	sq, err := G.Square(x)
	if err != nil {
		return nil, err
	}
	neg, err := G.Neg(sq)
	if err != nil {
		return nil, err
	}
	e, err := G.Exp(neg)
	if err != nil {
		return nil, err
	}
	d, err := G.Mul(e, c)
	if err != nil {
		return nil, err
	}
	g, err := G.HadamardProd(grad, d)
	if err != nil {
		return nil, fmt.Errorf("%v gradient: %w", op, err)
	}
	return G.Nodes{g}, nil
}
