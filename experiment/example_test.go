package experiment_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/models"
)

// An experiment on linear regression with generated data, from a YAML
// config to the report. Options.Out would receive the lines `sgdyn run`
// prints; here they are left out, since they include timings.
func Example() {
	dir, err := os.MkdirTemp("", "sgdyn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := experiment.Parse([]byte(`
seed: 1
model: {kind: linreg, dtype: float64}
data: {kind: synthetic, synthetic: {n: 400}}
sgd: {lr: 0.05, batch: 16, steps: 200}
hessian: {dense: true, top: 2, bottom: 2, bulk: -1, flat: -1, nulls: -1, eval_examples: 400, noise_batches: 8}
ensemble: {replicas: 4, steps: 50, log_every: 10}
`))
	if err != nil {
		log.Fatal(err)
	}
	e, err := experiment.New(c, filepath.Join(dir, "run"), experiment.Options{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("trained %d steps\n", res.Train.Steps)
	// The mean Hessian of the squared loss is the features' second moment,
	// whose largest eigenvalue is near the largest feature variance, 1.5^2.
	fmt.Printf("Hessian: %d parameters, lambda_max %.2f\n", res.Survey.Params, res.Survey.Top[0].Value)
	// 50 steps of 16 examples span more than one epoch of the 360 training
	// rows, so both sampling schemes run.
	for i, ec := range e.EnsembleConfigs() {
		fmt.Printf("ensemble %s: %d replicas x %d steps\n", ec.Name, res.Ensembles[i].Ran, ec.Steps)
	}
	// Output:
	// trained 200 steps
	// Hessian: 4 parameters, lambda_max 2.21
	// ensemble lr0.05-b16-with: 4 replicas x 50 steps
	// ensemble lr0.05-b16-without: 4 replicas x 50 steps
}

// A network of your own, defined as a Gorgonia graph through
// models.FromGraph, runs through every stage: its constructor is the
// experiment's Options.NewModel, and the config names it as model kind
// custom, which the run records.
func Example_customModel() {
	dir, err := os.MkdirTemp("", "sgdyn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	csv := filepath.Join(dir, "xor.csv")
	var rows strings.Builder
	rows.WriteString("x1,x2,label\n")
	for i := range 200 {
		x1, x2 := float64(i%20)/10-0.95, float64(i/20)/5-0.9
		label := 0
		if x1*x2 > 0 {
			label = 1
		}
		fmt.Fprintf(&rows, "%g,%g,%d\n", x1, x2, label)
	}
	if err := os.WriteFile(csv, []byte(rows.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	// A ReLU network with one hidden layer of 16 units, for 2 features and
	// 2 classes. The Graph's ReLU records its activation pattern, so the
	// survey's Hessian is exact.
	net := models.GraphNet{
		Name: "xor-mlp",
		Params: []models.Param{
			{Name: "w1", Shape: []int{2, 16}, Init: models.Init{Std: 1}},
			{Name: "b1", Shape: []int{16}},
			{Name: "w2", Shape: []int{16, 2}, Init: models.Init{Std: 0.25}},
			{Name: "b2", Shape: []int{2}},
		},
		Classifier: true,
		Build: func(g *models.Graph, n int) (out, loss *G.Node, err error) {
			h, err := g.Dense(g.Input(), g.Param("w1"), g.Param("b1"))
			if err != nil {
				return nil, nil, err
			}
			if h, err = g.ReLU(h); err != nil {
				return nil, nil, err
			}
			if out, err = g.Dense(h, g.Param("w2"), g.Param("b2")); err != nil {
				return nil, nil, err
			}
			loss, err = g.SoftmaxCrossEntropy(out)
			return out, loss, err
		},
	}

	c := experiment.Default(models.KindCustom)
	c.Model = models.Config{Kind: models.KindCustom, Name: "xor-mlp"}
	c.Data.Kind, c.Data.Path, c.Data.ValFraction = "classification", csv, 0
	c.SGD.LR, c.SGD.Batch, c.SGD.Steps = 0.5, 20, 300
	c.Hessian.EvalExamples, c.Hessian.Top, c.Hessian.Bottom, c.Hessian.Bulk = 200, 4, 2, 4
	c.Hessian.NoiseBatches, c.Hessian.DensityStarts, c.Hessian.TraceSamples = 8, -1, -1
	c.Ensemble.Replicas, c.Ensemble.Steps, c.Ensemble.LogEvery, c.Ensemble.Sampling = 4, 10, 5, experiment.SamplingList{"with"}

	e, err := experiment.New(c, filepath.Join(dir, "run"), experiment.Options{NewModel: models.GraphModelFunc(net, models.GraphOptions{})})
	if err != nil {
		log.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("model:", res.Report.Config.Model.Kind, res.Report.Config.Model.Name)
	fmt.Println("frozen activation pattern:", res.Survey.FrozenPattern)
	fmt.Println("probed directions:", len(res.Survey.Directions))
	fmt.Println("ensembles:", len(res.Ensembles), res.Report.Ensembles[0].Name)
	// Output:
	// model: custom xor-mlp
	// frozen activation pattern: true
	// probed directions: 10
	// ensembles: 1 lr0.5-b20
}
