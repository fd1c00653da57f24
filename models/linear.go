package models

import (
	"fmt"

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

// mlp is input -> hidden layers (tanh or relu) -> class logits.
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
	for i, h := range m.cfg.Hidden {
		ps = append(ps, denseParams(fmt.Sprintf("hidden%d", i), in, h)...)
		in = h
	}
	return append(ps, denseParams("out", in, m.classes)...)
}

func (m *mlp) build(b *builder, n int) (out, loss *G.Node, err error) {
	h := b.input(fromX, "x", tensor.Shape{n, m.inputs}, 0)
	for i := range m.cfg.Hidden {
		if h, err = b.dense(h, fmt.Sprintf("hidden%d", i)); err != nil {
			return nil, nil, err
		}
		if m.cfg.Activation == "relu" {
			h, err = G.Rectify(h)
		} else {
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
