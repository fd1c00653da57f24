package main

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/models"
)

// resnetMini is a small residual CNN for 32x32 RGB images, 47,370
// parameters, without BatchNorm (it would make each example's loss depend
// on its batch):
//
//	stem   3x3 conv 3->16, ReLU                    32x32
//	block  x + conv(ReLU(conv(x))), ReLU, 16 ch.   32x32
//	pool   2x2 max                                 16x16
//	stage  3x3 conv 16->32, ReLU
//	block  32 channels                             16x16
//	pool   2x2 max                                 8x8
//	stage  3x3 conv 32->64, ReLU                   8x8
//	head   global average, dense 64->classes
//
// Every ReLU and max-pool is the models.Graph op that records its
// pattern, so the survey's Hessian-vector products hold it fixed.
func resnetMini(classes int) models.GraphNet {
	var ps []models.Param
	conv := func(name string, cin, cout int, gain float64) {
		// He initialisation; the second conv of a residual block starts
		// smaller, so that without BatchNorm each block starts near the
		// identity.
		ps = append(ps,
			models.Param{Name: name + ".weight", Shape: []int{cout, cin, 3, 3}, Init: models.Init{Std: gain * math.Sqrt(2/float64(9*cin))}},
			models.Param{Name: name + ".bias", Shape: []int{cout}})
	}
	conv("stem", 3, 16, 1)
	conv("block1.a", 16, 16, 1)
	conv("block1.b", 16, 16, 0.25)
	conv("stage2", 16, 32, 1)
	conv("block2.a", 32, 32, 1)
	conv("block2.b", 32, 32, 0.25)
	conv("stage3", 32, 64, 1)
	ps = append(ps,
		models.Param{Name: "head.weight", Shape: []int{64, classes}, Init: models.Init{Std: 1 / math.Sqrt(64)}},
		models.Param{Name: "head.bias", Shape: []int{classes}})

	return models.GraphNet{
		Name:       "resnet-mini",
		Params:     ps,
		Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			// convReLU is a 3x3 convolution (padding 1) and a ReLU.
			convReLU := func(x *G.Node, name string) (*G.Node, error) {
				y, err := g.Conv2D(x, g.Param(name+".weight"), g.Param(name+".bias"), 1, 1)
				if err != nil {
					return nil, err
				}
				return g.ReLU(y)
			}
			// block is ReLU(x + conv(ReLU(conv(x)))).
			block := func(x *G.Node, name string) (*G.Node, error) {
				h, err := convReLU(x, name+".a")
				if err != nil {
					return nil, err
				}
				if h, err = g.Conv2D(h, g.Param(name+".b.weight"), g.Param(name+".b.bias"), 1, 1); err != nil {
					return nil, err
				}
				if h, err = G.Add(x, h); err != nil {
					return nil, fmt.Errorf("%s residual: %w", name, err)
				}
				return g.ReLU(h)
			}
			x := g.Input()
			steps := []func(*G.Node) (*G.Node, error){
				func(x *G.Node) (*G.Node, error) { return convReLU(x, "stem") },
				func(x *G.Node) (*G.Node, error) { return block(x, "block1") },
				func(x *G.Node) (*G.Node, error) { return g.MaxPool2D(x, 2, 2) },
				func(x *G.Node) (*G.Node, error) { return convReLU(x, "stage2") },
				func(x *G.Node) (*G.Node, error) { return block(x, "block2") },
				func(x *G.Node) (*G.Node, error) { return g.MaxPool2D(x, 2, 2) },
				func(x *G.Node) (*G.Node, error) { return convReLU(x, "stage3") },
			}
			for _, step := range steps {
				if x, err = step(x); err != nil {
					return nil, nil, err
				}
			}
			// Global average pooling: (n, 64, h, w) -> (n, 64).
			s := x.Shape()
			if x, err = G.Reshape(x, tensor.Shape{n, s[1], s[2] * s[3]}); err != nil {
				return nil, nil, err
			}
			if x, err = G.Mean(x, 2); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(x, g.Param("head.weight"), g.Param("head.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}
}
