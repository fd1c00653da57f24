package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/internal/floatlist"
	"github.com/sgdyn/sgdyn/train"
)

func runEnsemble(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "merge" {
		return runEnsembleMerge(args[1:], stdout, stderr)
	}
	fs := newFlagSet("ensemble", "ensemble --run DIR --replicas R --steps T --lr ETA[,ETA...] [flags]\n       sgdyn ensemble merge --run DIR --name NAME", stderr)
	runDir := runDirFlag(fs, "run `directory` whose checkpoint is the reference point (required)")
	ckpt := fs.String("checkpoint", "", "reference parameter `file` (.npz) instead of the run's latest checkpoint")
	dirsFile := fs.String("directions", "", "direction `file` (.npy, k x P); default: the run's hessian/directions.npy")
	name := fs.String("name", "", "ensemble name (default lr<ETA>-b<B>); with several --lr values, a prefix")
	replicas := fs.Int("replicas", 32, "number of replicas R")
	steps := fs.Int64("steps", 0, "SGD steps per replica (required)")
	lrs := fs.String("lr", "", "learning rate, or a comma-separated list for a scan (default: the run's)")
	batch := fs.Int("batch", 0, "batch size (default: the run's)")
	sampling := fs.String("sampling", "", "with or without replacement, or with,without for one ensemble of each (common random numbers, names ending -with and -without) (default: the run's)")
	logEvery := fs.Int64("log-every", 1, "steps between logged projections")
	snapEvery := fs.Int64("snapshot-every", 0, "steps between full parameter snapshots (0: none)")
	ckptEvery := fs.Int64("checkpoint-every", 0, "steps between replica checkpoints (default steps/10)")
	ckptAfter := fs.Duration("checkpoint-after", train.DefaultCheckpointAfter, "hold a replica's periodic checkpoint back until this long after its start or last checkpoint (0: write every one; an interrupted replica always checkpoints)")
	seed := fs.Uint64("seed", 0, "seed of the replica streams (default: the run's)")
	shardFlag := fs.String("shard", "0/1", "run only replicas r with r mod n == i, as `i/n`")
	workers := fs.Int("workers", 0, "replicas run concurrently (default GOMAXPROCS)")
	surrogate := fs.String("surrogate", "", "simulate a Gaussian surrogate of SGD instead: langevin (noise of the measured minibatch covariance, low rank) or langevin-diag (the paper's per-parameter variant)")
	surBatches := fs.Int("surrogate-batches", train.DefaultSurrogateBatches, "with --surrogate: minibatch gradients M whose covariance the noise has")
	surEval := fs.Int("surrogate-eval", 0, "with --surrogate: evaluation examples of the drift's full gradient (default: the run's survey's, else 4096)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *runDir == "" || *steps == 0 {
		return errors.New("--run and --steps are required")
	}
	shard, err := parseShard(*shardFlag)
	if err != nil {
		return err
	}
	ref, err := train.LoadReference(*runDir, *ckpt)
	if err != nil {
		return err
	}
	dirs, sources, err := experiment.LoadDirections(*runDir, *dirsFile, len(ref.W))
	if err != nil {
		return err
	}
	base := train.EnsembleConfig{
		Replicas: *replicas, Steps: *steps, LR: ref.Config.SGD.LR, Batch: ref.Config.SGD.Batch,
		Sampling: ref.Config.SGD.Sampling, LogEvery: *logEvery, SnapshotEvery: *snapEvery,
		CheckpointEvery: max(1, *steps/10), CheckpointAfter: *ckptAfter, Seed: ref.Config.Seed,
	}
	if set["batch"] {
		base.Batch = *batch
	}
	schemes := experiment.SamplingList{base.Sampling}
	if set["sampling"] {
		if schemes, err = experiment.ParseSamplingList(*sampling); err != nil {
			return fmt.Errorf("--sampling: %w", err)
		}
	}
	if set["checkpoint-every"] {
		base.CheckpointEvery = *ckptEvery
	}
	if set["seed"] {
		base.Seed = *seed
	}
	if *surrogate != "" {
		base.Surrogate = train.SurrogateConfig{Kind: *surrogate, Batches: *surBatches, EvalExamples: *surEval}
		if !set["surrogate-eval"] {
			base.Surrogate.EvalExamples = surveyEvalExamples(*runDir)
		}
	} else if set["surrogate-batches"] || set["surrogate-eval"] {
		return errors.New("--surrogate-batches and --surrogate-eval need --surrogate")
	}
	etas := []float64{base.LR}
	if *lrs != "" {
		if etas, err = floatlist.Parse(*lrs); err != nil {
			return fmt.Errorf("--lr: %w", err)
		}
	}
	// Validate every ensemble of a scan before running the first.
	var cfgs []train.EnsembleConfig
	for _, eta := range etas {
		for _, sc := range schemes {
			c := base
			c.LR = eta
			c.Sampling = sc
			c.Paired = experiment.Paired(sc, len(schemes))
			c.Name = fmt.Sprintf("lr%g-b%d", eta, c.Batch)
			if c.Surrogate.Kind != "" {
				c.Name = c.Surrogate.Kind + "-" + c.Name
			}
			if *name != "" {
				c.Name = *name
				if len(etas) > 1 {
					c.Name = fmt.Sprintf("%s-lr%g", *name, eta)
				}
			}
			c.Name = experiment.SchemeName(c.Name, sc, len(schemes))
			if err := c.Validate(ref.Data.Train.Len()); err != nil {
				return err
			}
			cfgs = append(cfgs, c)
		}
	}
	// Shared: the shards of one ensemble run side by side (each replica has
	// its own lock), but not beside train, hessian or run on this directory.
	release, err := experiment.LockShared(*runDir, "sgdyn ensemble")
	if err != nil {
		return err
	}
	defer release()
	if note := experiment.SchemesNote(cfgs, ref.Data.Train.Len()); note != "" && len(schemes) > 1 {
		fmt.Fprintln(stdout, strings.TrimSpace(note))
	}
	for _, c := range cfgs {
		fmt.Fprintf(stdout, "ensemble %s: %d replicas x %d steps, lr %g, batch %d, sampling %s, %d directions, shard %d/%d\n",
			c.Name, c.Replicas, c.Steps, c.LR, c.Batch, c.Sampling, len(dirs), shard.Index, shard.Of)
		res, err := train.RunEnsemble(ctx, ref, dirs, sources, c, shard, *workers, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  ran %d replicas (%d already done, %d diverged): %d replica-steps in %.1fs, %.1f replica-steps/s\n",
			res.Ran, res.Skipped, res.Diverged, res.ReplicaSteps, res.Seconds, res.ReplicaStepsPerSec)
		if shard.Of == 1 {
			if _, err := train.MergeEnsemble(res.Dir); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  merged into %s\n", res.Dir)
		}
	}
	return nil
}

func runEnsembleMerge(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ensemble merge", "ensemble merge --run DIR --name NAME", stderr)
	runDir := runDirFlag(fs, "run `directory` (required)")
	name := fs.String("name", "", "ensemble `name` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runDir == "" || *name == "" {
		return errors.New("--run and --name are required")
	}
	// Shared, like the shards: a merge writes only its ensemble's merged
	// files, the same bytes whoever writes them.
	release, err := experiment.LockShared(*runDir, "sgdyn ensemble merge")
	if err != nil {
		return err
	}
	defer release()
	e, err := train.MergeEnsemble(train.EnsembleDir(*runDir, *name))
	if err != nil {
		return err
	}
	div := 0
	for _, s := range e.Status {
		if s == train.StatusDiverged {
			div++
		}
	}
	fmt.Fprintf(stdout, "merged %s: %d replicas (%d diverged) x %d logged steps x %d directions\n", e.Dir, len(e.Status), div, len(e.Steps), e.Manifest.Directions)
	return nil
}

// surveyEvalExamples is the evaluation-set size of the run's curvature
// survey, so a surrogate's drift is the gradient of the same mean loss; 0
// (the default) when the run has no survey.
func surveyEvalExamples(runDir string) int {
	b, err := os.ReadFile(filepath.Join(runDir, experiment.HessianDir, experiment.SpectrumFile))
	if err != nil {
		return 0
	}
	var s struct {
		EvalExamples int `json:"eval_examples"`
	}
	if json.Unmarshal(b, &s) != nil {
		return 0
	}
	return s.EvalExamples
}

func parseShard(s string) (train.Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	a, err1 := strconv.Atoi(i)
	b, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || b < 1 || a < 0 || a >= b {
		return train.Shard{}, fmt.Errorf("--shard %q: want i/n with 0 <= i < n", s)
	}
	return train.Shard{Index: a, Of: b}, nil
}
