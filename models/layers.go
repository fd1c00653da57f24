package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/data"
)

// builder assembles one graph: it hands out the shared parameter nodes and
// records how each input node is filled from a data.Batch.
type builder struct {
	g      *G.ExprGraph
	dtype  tensor.Dtype
	params map[string]*G.Node
	inputs []*input
}

type inputSource int

const (
	fromX       inputSource = iota // dense features
	fromTokens                     // one-hot of Batch.Tokens
	fromLabels                     // one-hot of Batch.Labels
	fromTargets                    // regression targets
)

// input is a graph input bound to a tensor that fill overwrites in place.
type input struct {
	source inputSource
	t      *tensor.Dense
	width  int // one-hot width
}

func (b *builder) param(name string) *G.Node {
	n, ok := b.params[name]
	if !ok {
		panic("models: undeclared parameter " + name) // a bug in an arch, not bad input
	}
	return n
}

func (b *builder) input(src inputSource, name string, shape tensor.Shape, width int) *G.Node {
	t := tensor.New(tensor.Of(b.dtype), tensor.WithShape(shape...))
	b.inputs = append(b.inputs, &input{source: src, t: t, width: width})
	return G.NewTensor(b.g, b.dtype, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(t))
}

// constant is a fixed tensor bound as a graph input (BroadcastAdd needs a
// node, not a raw constant).
func (b *builder) constant(name string, shape tensor.Shape, vals []float64) *G.Node {
	t := tensor.New(tensor.Of(b.dtype), tensor.WithShape(shape...))
	setData(t, vals)
	return G.NewTensor(b.g, b.dtype, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(t))
}

func (b *builder) scalar(v float64) *G.Node {
	if b.dtype == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

func (in *input) fill(batch *data.Batch) error {
	want := in.t.Shape().TotalSize()
	switch in.source {
	case fromX:
		if len(batch.X) != want {
			return fmt.Errorf("batch has %d input values, graph wants %d", len(batch.X), want)
		}
		setData(in.t, batch.X)
	case fromTargets:
		if len(batch.Targets) != want {
			return fmt.Errorf("batch has %d targets, graph wants %d", len(batch.Targets), want)
		}
		setData(in.t, batch.Targets)
	case fromTokens, fromLabels:
		ids := batch.Tokens
		if in.source == fromLabels {
			ids = batch.Labels
		}
		if len(ids)*in.width != want {
			return fmt.Errorf("batch has %d ids, graph wants %d", len(ids), want/in.width)
		}
		for _, id := range ids {
			if id < 0 || id >= in.width {
				return fmt.Errorf("id %d out of range [0, %d)", id, in.width)
			}
		}
		oneHot(in.t, ids, in.width)
	}
	return nil
}

func oneHot(t *tensor.Dense, ids []int, width int) {
	switch d := t.Data().(type) {
	case []float32:
		clear(d)
		for i, id := range ids {
			d[i*width+id] = 1
		}
	case []float64:
		clear(d)
		for i, id := range ids {
			d[i*width+id] = 1
		}
	}
}

// dense is x W + bias for x of shape (m, in), W (in, out), bias (out).
func (b *builder) dense(x *G.Node, name string) (*G.Node, error) {
	y, err := G.Mul(x, b.param(name+".weight"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return G.BroadcastAdd(y, b.param(name+".bias"), nil, []byte{0})
}

// linear is x W, a dense layer without a bias.
func (b *builder) linear(x *G.Node, name string) (*G.Node, error) {
	y, err := G.Mul(x, b.param(name+".weight"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return y, nil
}

func denseParams(name string, in, out int) []paramSpec {
	return []paramSpec{
		{name: name + ".weight", shape: []int{in, out}, std: 1 / math.Sqrt(float64(in))},
		{name: name + ".bias", shape: []int{out}},
	}
}

// layerNorm normalises each row of x (m, d) to zero mean and unit variance,
// then scales and shifts it.
func (b *builder) layerNorm(x *G.Node, name string) (*G.Node, error) {
	mu, err := G.Mean(x, 1)
	if err != nil {
		return nil, err
	}
	xc, err := G.BroadcastSub(x, mu, nil, []byte{1})
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(xc)
	if err != nil {
		return nil, err
	}
	v, err := G.Mean(sq, 1)
	if err != nil {
		return nil, err
	}
	v, err = G.Add(v, b.scalar(1e-5))
	if err != nil {
		return nil, err
	}
	sd, err := G.Sqrt(v)
	if err != nil {
		return nil, err
	}
	xn, err := G.BroadcastHadamardDiv(xc, sd, nil, []byte{1})
	if err != nil {
		return nil, err
	}
	y, err := G.BroadcastHadamardProd(xn, b.param(name+".gain"), nil, []byte{0})
	if err != nil {
		return nil, err
	}
	return G.BroadcastAdd(y, b.param(name+".bias"), nil, []byte{0})
}

func layerNormParams(name string, d int) []paramSpec {
	return []paramSpec{
		{name: name + ".gain", shape: []int{d}, fill: 1},
		{name: name + ".bias", shape: []int{d}},
	}
}

// gelu is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
func (b *builder) gelu(x *G.Node) (*G.Node, error) {
	x3, err := G.Cube(x)
	if err != nil {
		return nil, err
	}
	inner, err := G.Add(x, G.Must(G.Mul(x3, b.scalar(0.044715))))
	if err != nil {
		return nil, err
	}
	th, err := G.Tanh(G.Must(G.Mul(inner, b.scalar(math.Sqrt(2/math.Pi)))))
	if err != nil {
		return nil, err
	}
	onePlus, err := G.Add(th, b.scalar(1))
	if err != nil {
		return nil, err
	}
	return G.HadamardProd(G.Must(G.Mul(x, b.scalar(0.5))), onePlus)
}

// geluErf is the exact GELU x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
func (b *builder) geluErf(x *G.Node) (*G.Node, error) {
	z, err := G.Mul(x, b.scalar(1/math.Sqrt2))
	if err != nil {
		return nil, err
	}
	e, err := G.ApplyOp(erfOp{}, z)
	if err != nil {
		return nil, err
	}
	onePlus, err := G.Add(e, b.scalar(1))
	if err != nil {
		return nil, err
	}
	return G.HadamardProd(G.Must(G.Mul(x, b.scalar(0.5))), onePlus)
}

// silu is x sigmoid(x).
func (b *builder) silu(x *G.Node) (*G.Node, error) {
	s, err := G.Sigmoid(x)
	if err != nil {
		return nil, err
	}
	return G.HadamardProd(x, s)
}

// crossEntropy is the mean over rows of -log softmax(logits)[label], with the
// labels given as a one-hot matrix of the same shape as logits (m, k).
func (b *builder) crossEntropy(logits, oneHot *G.Node, m int) (*G.Node, error) {
	logp, err := G.LogSoftMax(logits, 1)
	if err != nil {
		return nil, err
	}
	picked, err := G.HadamardProd(logp, oneHot)
	if err != nil {
		return nil, err
	}
	s, err := G.Sum(picked)
	if err != nil {
		return nil, err
	}
	return G.Mul(s, b.scalar(-1/float64(m)))
}
