package models

import (
	"fmt"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gop"
)

// opsCNN is the cnn architecture with each conv stage one op
// (gop.NewConvPool, with one gradient op computing the stage's input,
// weight and bias gradients in one pass), each dense layer one op
// (gop.NewDense) and the loss one (gop.NewCrossEntropy). Its parameters,
// their layout and initialisation are cnn's (params and classifier are
// promoted), so it computes the same function as the plain graph and the
// fused kernels.
type opsCNN struct{ *cnn }

func (c opsCNN) build(b *builder, n int) (out, loss *G.Node, err error) {
	h := b.input(fromX, "x", tensor.Shape{n, c.image[0], c.image[1], c.image[2]}, 0)
	ch := c.channels()
	procs := runtime.GOMAXPROCS(0)
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("conv%d", i)
		// The first stage reads the data, whose gradient nobody wants; the
		// last one emits (n, flat) for the dense layer.
		h0, w0 := c.image[1]>>i, c.image[2]>>i
		parts := gop.ConvPoolParts(n, ch[i], ch[i+1], h0, w0, procs)
		op := gop.NewConvPool(b.dtype, name, n, ch[i], ch[i+1], h0, w0, i > 0, i == 2, parts)
		if h, err = G.ApplyOp(op, h, b.param(name+".weight"), b.param(name+".bias")); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Dense, bias and ReLU in one op, and the output layer without the ReLU.
	if h, err = G.ApplyOp(gop.NewDense(b.dtype, "hidden", n, c.flat(), c.cfg.Hidden, true, true), h, b.param("hidden.weight"), b.param("hidden.bias")); err != nil {
		return nil, nil, fmt.Errorf("hidden: %w", err)
	}
	logits, err := G.ApplyOp(gop.NewDense(b.dtype, "out", n, c.cfg.Hidden, c.classes, false, true), h, b.param("out.weight"), b.param("out.bias"))
	if err != nil {
		return nil, nil, fmt.Errorf("out: %w", err)
	}
	// The loss is the transformer's cross-entropy op: on (n, classes) Gorgonia's
	// own composition is under 1% of a step's time, but its softmax and
	// softmax gradient allocate ~30 KB per step, most of what remained.
	y := b.input(fromLabels, "labels", tensor.Shape{n, c.classes}, c.classes)
	if loss, err = G.ApplyOp(gop.NewCrossEntropy(b.dtype, "loss", n, c.classes), logits, y); err != nil {
		return nil, nil, fmt.Errorf("loss: %w", err)
	}
	return logits, loss, nil
}
