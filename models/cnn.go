package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cnn is the CIFAR-10 network: three stages of 3x3 convolution (padding 1),
// bias, ReLU and 2x2 max-pooling, then a ReLU hidden layer and the output.
type cnn struct {
	cfg     CNNConfig
	image   []int // C, H, W
	classes int
}

func newCNN(c CNNConfig, s Shape) (*cnn, error) {
	if len(s.Image) != 3 {
		return nil, fmt.Errorf("needs image data (C, H, W), data has shape %v", s.Image)
	}
	if s.Image[1]%8 != 0 || s.Image[2]%8 != 0 {
		return nil, fmt.Errorf("image height and width must be multiples of 8 (three 2x2 pools), got %dx%d", s.Image[1], s.Image[2])
	}
	if s.Classes < 2 {
		return nil, fmt.Errorf("needs at least 2 classes, data has %d", s.Classes)
	}
	return &cnn{cfg: c, image: s.Image, classes: s.Classes}, nil
}

func (c *cnn) classifier() bool { return true }

func (c *cnn) channels() []int {
	return []int{c.image[0], c.cfg.Width, 2 * c.cfg.Width, 4 * c.cfg.Width}
}

func (c *cnn) flat() int {
	return c.channels()[3] * (c.image[1] / 8) * (c.image[2] / 8)
}

func (c *cnn) params() []paramSpec {
	var ps []paramSpec
	ch := c.channels()
	for i := 0; i < 3; i++ {
		fanIn := ch[i] * 9
		ps = append(ps,
			paramSpec{name: fmt.Sprintf("conv%d.weight", i), shape: []int{ch[i+1], ch[i], 3, 3}, std: math.Sqrt(2 / float64(fanIn))},
			paramSpec{name: fmt.Sprintf("conv%d.bias", i), shape: []int{ch[i+1]}})
	}
	hidden := denseParams("hidden", c.flat(), c.cfg.Hidden)
	hidden[0].std *= math.Sqrt2 // He initialisation for the ReLU layer
	ps = append(ps, hidden...)
	return append(ps, denseParams("out", c.cfg.Hidden, c.classes)...)
}

func (c *cnn) build(b *builder, n int) (out, loss *G.Node, err error) {
	h := b.input(fromX, "x", tensor.Shape{n, c.image[0], c.image[1], c.image[2]}, 0)
	for i := 0; i < 3; i++ {
		if h, err = G.Conv2d(h, b.param(fmt.Sprintf("conv%d.weight", i)), tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}); err != nil {
			return nil, nil, fmt.Errorf("conv%d: %w", i, err)
		}
		if h, err = G.BroadcastAdd(h, b.param(fmt.Sprintf("conv%d.bias", i)), nil, []byte{0, 2, 3}); err != nil {
			return nil, nil, fmt.Errorf("conv%d bias: %w", i, err)
		}
		if h, err = G.Rectify(h); err != nil {
			return nil, nil, err
		}
		if h, err = G.MaxPool2D(h, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
			return nil, nil, fmt.Errorf("pool%d: %w", i, err)
		}
	}
	if h, err = G.Reshape(h, tensor.Shape{n, c.flat()}); err != nil {
		return nil, nil, err
	}
	if h, err = b.dense(h, "hidden"); err != nil {
		return nil, nil, err
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, nil, err
	}
	logits, err := b.dense(h, "out")
	if err != nil {
		return nil, nil, err
	}
	y := b.input(fromLabels, "labels", tensor.Shape{n, c.classes}, c.classes)
	loss, err = b.crossEntropy(logits, y, n)
	return logits, loss, err
}
