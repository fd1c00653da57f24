package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/train"
)

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", "train [--config FILE] [--run DIR] [flags]", stderr)
	configPath := fs.String("config", "", "YAML config `file` (see configs/README.md); flags override it")
	runDir := runDirFlag(fs, "run `directory`; an existing run is continued (default runs/<model>-<time>)")
	kind := fs.String("model", "", "model: cnn, transformer, mlp or linreg (default transformer)")
	dataPath := fs.String("data", "", "CIFAR-10 `dir`, or text or CSV file (text defaults to the embedded corpus)")
	dataKind := fs.String("data-kind", "", "cifar10, text, regression or classification (default: from the model)")
	dtype := fs.String("dtype", "", "float32 or float64")
	lr := fs.Float64("lr", 0, "learning rate")
	batch := fs.Int("batch", 0, "batch size")
	steps := fs.Int64("steps", 0, "total SGD steps (a continued run may raise it)")
	epochs := fs.Float64("epochs", 0, "total epochs, converted to steps (instead of --steps)")
	sampling := fs.String("sampling", "", "minibatch sampling: with or without replacement")
	seed := fs.Uint64("seed", 0, "seed of the initialisation and the minibatch stream")
	limit := fs.Int("limit", 0, "use only the first N training examples")
	valFraction := fs.Float64("val-fraction", 0, "share of a text or CSV file held out for validation, from its end (default 0.1; CSV: 0 trains on every row)")
	evalEvery := fs.Int64("eval-every", 0, "steps between validation evaluations")
	ckptEvery := fs.Int64("checkpoint-every", 0, "steps between checkpoints")
	skipSums := fs.Bool("skip-checksums", false, "skip CIFAR-10 SHA-1 verification")
	trajDirs := fs.String("directions", "", "log the trajectory's projections on these directions (`file`.npy, k x P, e.g. RUN/hessian/directions.npy) to RUN/trajectory/")
	logEvery := fs.Int64("log-every", 1, "with --directions: steps between logged projections")
	snapEvery := fs.Int64("snapshot-every", 0, "with --directions: steps between full parameter snapshots (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Layers of settings: model defaults, then a --config file or else the
	// run directory's saved config, then flags. Continuing a run with the
	// command that started it works; a different config is refused by
	// train.Train before anything is written.
	var c train.Config
	var err error
	saved := ""
	if *runDir != "" {
		saved = filepath.Join(*runDir, train.ConfigFile)
		if _, statErr := os.Stat(saved); statErr != nil {
			saved = ""
		}
	}
	switch {
	case *configPath != "":
		c, err = train.LoadConfig(*configPath)
	case saved != "":
		c, err = train.LoadConfig(saved)
	default:
		k := *kind
		if k == "" {
			k = "transformer"
		}
		c = train.DefaultConfig(k)
	}
	if err != nil {
		return err
	}
	if set["model"] && *kind != c.Model.Kind {
		if saved != "" || *configPath != "" {
			return fmt.Errorf("--model %s contradicts the config's model %q", *kind, c.Model.Kind)
		}
	}
	if set["data"] {
		c.Data.Path = *dataPath
	}
	if set["data-kind"] {
		c.Data.Kind = *dataKind
	}
	if set["dtype"] {
		c.Model.DType = *dtype
	}
	if set["lr"] {
		c.SGD.LR = *lr
	}
	if set["batch"] {
		c.SGD.Batch = *batch
	}
	if set["steps"] {
		c.SGD.Steps = *steps
	}
	if set["sampling"] {
		c.SGD.Sampling = *sampling
	}
	if set["seed"] {
		c.Seed = *seed
	}
	if set["limit"] {
		c.Data.Limit = *limit
	}
	if set["val-fraction"] {
		c.Data.ValFraction = *valFraction
	}
	if set["eval-every"] {
		c.SGD.EvalEvery = *evalEvery
	}
	if set["checkpoint-every"] {
		c.SGD.CheckpointEvery = *ckptEvery
	}
	if set["skip-checksums"] {
		c.Data.SkipChecksums = *skipSums
	}
	if set["epochs"] {
		if set["steps"] {
			return errors.New("give --steps or --epochs, not both")
		}
		if !(*epochs > 0) {
			return fmt.Errorf("--epochs %g: must be positive", *epochs)
		}
		ds, err := train.LoadData(c.WithDefaults())
		if err != nil {
			return err
		}
		if c.SGD.Batch < 1 {
			return fmt.Errorf("batch size %d: must be positive", c.SGD.Batch)
		}
		c.SGD.Steps = int64(*epochs * float64(ds.Train.Len()) / float64(c.SGD.Batch))
	}
	dir := *runDir
	if dir == "" {
		dir = filepath.Join("runs", fmt.Sprintf("%s-%s", c.Model.Kind, time.Now().Format("20060102-150405")))
	}

	opts := train.Options{Progress: stderr}
	if *trajDirs != "" {
		dirs, err := experiment.ReadDirections(*trajDirs, 0)
		if err != nil {
			return err
		}
		if err := experiment.CheckOrthonormal(*trajDirs, dirs, true); err != nil {
			return err
		}
		if *logEvery < 1 || *snapEvery < 0 {
			return fmt.Errorf("--log-every %d must be positive and --snapshot-every %d not negative", *logEvery, *snapEvery)
		}
		opts.Trajectory = &train.TrajectoryOptions{Directions: dirs, LogEvery: *logEvery, SnapshotEvery: *snapEvery}
	}
	// The header announces a run, so it waits until train.Train has
	// accepted the config, the data and the run directory.
	if err := c.WithDefaults().Validate(); err != nil {
		return err
	}
	release, err := experiment.LockTraining(dir, &c, "sgdyn train")
	if err != nil {
		return err
	}
	defer release()
	opts.OnStart = func(int64) {
		fmt.Fprintf(stdout, "run %s: %s, lr %g, batch %d, %d steps\n", dir, c.Model.Kind, c.SGD.LR, c.SGD.Batch, c.SGD.Steps)
	}
	t0 := time.Now()
	res, err := train.Train(ctx, dir, c, opts)
	if err != nil {
		return err
	}
	if res.Resumed > 0 {
		fmt.Fprintf(stdout, "continued from step %d\n", res.Resumed)
	}
	if res.Resumed >= res.Steps {
		fmt.Fprintf(stdout, "already complete at step %d\n", res.Steps)
		return nil
	}
	line := fmt.Sprintf("done: %d steps in %s; validation loss %.4f", res.Steps, time.Since(t0).Round(time.Second), res.Val.Loss)
	if res.Val.Count > 0 {
		line += fmt.Sprintf(", accuracy %.2f%%", 100*float64(res.Val.Correct)/float64(res.Val.Count))
	}
	fmt.Fprintln(stdout, line)
	fmt.Fprintf(stdout, "checkpoint %s\n", res.Checkpoint.Path())
	return nil
}
