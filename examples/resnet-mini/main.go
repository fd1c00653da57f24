// Command resnet-mini runs sgdyn's whole experiment — training to a
// reference point, the curvature and noise survey there, SGD ensembles
// from it and the report — on CIFAR-10 with a network that is not one of
// sgdyn's built-in models: a small residual CNN defined as a Gorgonia graph
// (net.go) and handed to the pipeline through models.FromGraph and
// experiment.Options.NewModel.
//
// Usage:
//
//	go run ./examples/resnet-mini -data DIR [-dir runs/resnet-mini] [-quick]
//
// DIR holds CIFAR-10's binary files (data_batch_1.bin ... test_batch.bin).
// -quick shrinks every stage to a smoke test (minutes on two cores). Run it
// again after an interruption and it continues where it stopped.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/models"
)

// config is the experiment (its data path a %q verb): 5 epochs of plain SGD, as configs/cifar10-cnn.yaml
// for the built-in CNN, then the survey over 2048 training images and an
// ensemble of 16 replicas.
const config = `
seed: 1
model: {kind: custom, name: resnet-mini}
data: {kind: cifar10, path: %q}
sgd: {lr: 0.05, batch: 128, steps: 1950, eval_every: 195, eval_examples: 2000}
hessian: {eval_examples: 2048, top: 10, bottom: 2, bulk: 8, noise_batches: 16, density_starts: 2, density_steps: 20, trace_samples: 4}
ensemble: {replicas: 16, steps: 500, log_every: 5}
`

// quick is config shrunk to a smoke test.
const quick = `
seed: 1
model: {kind: custom, name: resnet-mini}
data: {kind: cifar10, path: %q, limit: 2000}
sgd: {lr: 0.05, batch: 64, steps: 60, eval_every: 30, eval_examples: 256}
hessian: {eval_examples: 64, top: 2, bottom: 1, bulk: 2, noise_batches: 4, density_starts: 1, density_steps: 6, trace_samples: 2}
ensemble: {replicas: 2, steps: 10, log_every: 2}
`

func main() {
	dataDir := flag.String("data", "", "directory of the CIFAR-10 binary files (required)")
	dir := flag.String("dir", "runs/resnet-mini", "run directory")
	small := flag.Bool("quick", false, "a smoke test of every stage (minutes) instead of the full experiment")
	flag.Parse()
	if err := run(*dataDir, *dir, *small); err != nil {
		fmt.Fprintln(os.Stderr, "resnet-mini:", err)
		os.Exit(1)
	}
}

func run(dataDir, dir string, small bool) error {
	if dataDir == "" {
		return fmt.Errorf("-data: the CIFAR-10 directory is required")
	}
	yaml := config
	if small {
		yaml = quick
	}
	// %q quotes the path as a YAML string.
	c, err := experiment.Parse([]byte(fmt.Sprintf(yaml, dataDir)))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	net := resnetMini(10)
	e, err := experiment.New(c, dir, experiment.Options{
		Out:      os.Stdout,
		Progress: os.Stderr,
		NewModel: models.GraphModelFunc(net, models.GraphOptions{}),
		Command:  "resnet-mini",
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err = e.Run(ctx)
	return err
}
