package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// linReg is least squares with loss mean 0.5 (a . theta - y)^2 and no bias
// (add a constant feature for one). Its Hessian is the data's second-moment
// matrix, which makes it the exact oracle for the probes and the theory.
type linReg struct{ inputs int }

func newLinReg(s Shape) (*linReg, error) {
	if s.Inputs < 1 {
		return nil, fmt.Errorf("needs at least one input feature, data has %d", s.Inputs)
	}
	return &linReg{inputs: s.Inputs}, nil
}

func (l *linReg) classifier() bool { return false }

func (l *linReg) params() []paramSpec {
	return []paramSpec{{name: "theta", shape: []int{l.inputs}}}
}

func (l *linReg) build(b *builder, n int) (out, loss *G.Node, err error) {
	x := b.input(fromX, "x", tensor.Shape{n, l.inputs}, 0)
	y := b.input(fromTargets, "y", tensor.Shape{n}, 0)
	pred, err := G.Mul(x, b.param("theta"))
	if err != nil {
		return nil, nil, err
	}
	r, err := G.Sub(pred, y)
	if err != nil {
		return nil, nil, err
	}
	sq, err := G.Square(r)
	if err != nil {
		return nil, nil, err
	}
	s, err := G.Sum(sq)
	if err != nil {
		return nil, nil, err
	}
	loss, err = G.Mul(s, b.scalar(0.5/float64(n)))
	return pred, loss, err
}

// mlp is input -> hidden layers (tanh, relu or silu) -> class logits.
type mlp struct {
	cfg     MLPConfig
	inputs  int
	classes int
}

func newMLP(c MLPConfig, s Shape) (*mlp, error) {
	if s.Inputs < 1 || s.Classes < 2 {
		return nil, fmt.Errorf("needs inputs >= 1 and classes >= 2, data has %d and %d", s.Inputs, s.Classes)
	}
	return &mlp{cfg: c, inputs: s.Inputs, classes: s.Classes}, nil
}

func (m *mlp) classifier() bool { return true }

func (m *mlp) params() []paramSpec {
	var ps []paramSpec
	in := m.inputs
	dense := denseParams
	if m.cfg.Init == "torch" {
		dense = torchDenseParams
	}
	for i, h := range m.cfg.Hidden {
		ps = append(ps, dense(fmt.Sprintf("hidden%d", i), in, h)...)
		in = h
	}
	return append(ps, dense("out", in, m.classes)...)
}

// torchDenseParams are denseParams initialised as PyTorch's nn.Linear:
// weights and bias uniform with bound 1/sqrt(fan_in).
func torchDenseParams(name string, in, out int) []paramSpec {
	ps := denseParams(name, in, out)
	for i := range ps {
		ps[i].std, ps[i].uniform = 0, 1/math.Sqrt(float64(in))
	}
	return ps
}

func (m *mlp) build(b *builder, n int) (out, loss *G.Node, err error) {
	h := b.input(fromX, "x", tensor.Shape{n, m.inputs}, 0)
	for i := range m.cfg.Hidden {
		if h, err = b.dense(h, fmt.Sprintf("hidden%d", i)); err != nil {
			return nil, nil, err
		}
		switch m.cfg.Activation {
		case "relu":
			h, err = G.Rectify(h)
		case "silu":
			h, err = b.silu(h)
		default:
			h, err = G.Tanh(h)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	logits, err := b.dense(h, "out")
	if err != nil {
		return nil, nil, err
	}
	y := b.input(fromLabels, "labels", tensor.Shape{n, m.classes}, m.classes)
	loss, err = b.crossEntropy(logits, y, n)
	return logits, loss, err
}
