package models_test

import (
	"fmt"
	"log"

	G "gorgonia.org/gorgonia"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// A user's network as a Gorgonia graph: a ReLU MLP for 4 features and 3
// classes. Its ReLU is the Graph's recording op, so the model holds its
// activation pattern for exact Hessian-vector products (models.Piecewise).
func ExampleFromGraph() {
	net := models.GraphNet{
		Name: "tiny-mlp",
		Params: []models.Param{
			{Name: "fc.weight", Shape: []int{4, 8}, Init: models.Init{Std: 0.5}},
			{Name: "fc.bias", Shape: []int{8}},
			{Name: "out.weight", Shape: []int{8, 3}, Init: models.Init{Std: 0.35}},
			{Name: "out.bias", Shape: []int{3}},
		},
		Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			h, err := g.Dense(g.Input(), g.Param("fc.weight"), g.Param("fc.bias"))
			if err != nil {
				return nil, nil, err
			}
			if h, err = g.ReLU(h); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(h, g.Param("out.weight"), g.Param("out.bias")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}
	m, err := models.FromGraph(net, models.Shape{Inputs: 4, Classes: 3}, models.GraphOptions{DType: "float64"}, 1)
	if err != nil {
		log.Fatal(err)
	}
	b := &data.Batch{N: 2, X: []float64{1, 0, -1, 2, 0.5, 0.5, 0, -1}, Labels: []int{0, 2}}
	grad := make([]float64, m.NumParams())
	loss, err := m.Grad(b, grad)
	if err != nil {
		log.Fatal(err)
	}
	pat, err := m.(models.Piecewise).RecordPattern(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d parameters, loss %.3f, %d ReLU units per example\n", m.NumParams(), loss, pat.Units())
	// Output:
	// 67 parameters, loss 1.224, 8 ReLU units per example
}
