package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/experiment"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

func runHessian(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hessian", "hessian --run DIR [--checkpoint FILE] [flags]\n       sgdyn hessian --weights FILE.npz (--config FILE | --model KIND [--data PATH]) --out DIR [flags]", stderr)
	runDir := runDirFlag(fs, "run `directory` (with --weights: the directory for the hessian/ outputs)")
	ckpt := fs.String("checkpoint", "", "parameter `file` (.npz) to probe instead of the run's latest checkpoint")
	weights := fs.String("weights", "", "parameter `file` (.npz) to probe without a run directory")
	cfgPath := fs.String("config", "", "with --weights: training config `file` describing the model and data")
	kind := fs.String("model", "", "with --weights: model kind (default sizes)")
	dataPath := fs.String("data", "", "with --weights: data path")
	outDir := runDir // --out is the other spelling of --run (runDirFlag)
	var o probe.SurveyOptions
	fs.IntVar(&o.EvalExamples, "eval-examples", 4096, "training examples defining the mean Hessian")
	fs.IntVar(&o.Top, "top", 20, "largest eigenpairs")
	fs.IntVar(&o.Bottom, "bottom", 5, "most negative eigenpairs")
	fs.IntVar(&o.Bulk, "bulk", 16, "random bulk directions orthogonal to the eigenvectors")
	fs.Float64Var(&o.Tol, "tol", 1e-4, "Lanczos tolerance on residuals, relative to max |lambda|")
	fs.IntVar(&o.MaxIter, "max-iter", 0, "Lanczos Krylov dimension cap (0: automatic)")
	fs.IntVar(&o.DensityStarts, "density-starts", 4, "spectral density starts (-1 skips)")
	fs.IntVar(&o.DensitySteps, "density-steps", 30, "Lanczos steps per density start")
	fs.IntVar(&o.TraceSamples, "trace-samples", 8, "Hutchinson trace samples (-1 skips)")
	fs.IntVar(&o.NoiseBatches, "noise-batches", 32, "minibatches for the gradient and curvature noise")
	fs.Float64Var(&o.FDStep, "fd-step", probe.DefaultFDStep, "finite-difference displacement of Hessian-vector products")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of Lanczos, bulk directions and noise batches")
	userDirs := fs.String("directions", "", "extra directions: `file`.npy of shape (k, P)")
	fs.BoolVar(&o.Dense, "dense", false, "compute the whole Hessian (P products) and all its eigenpairs, with c along every eigenvector (models up to a few thousand parameters)")
	fs.BoolVar(&o.DenseByProducts, "dense-by-products", false, "with --dense: build the Hessian from P products even where the model has its own cheaper sweep of the same differences (the fused float64 transformer), to check one against the other")
	fs.IntVar(&o.Flat, "flat", 0, "certified flat, non-null directions to probe (default 8 with --dense or --flat-hvps; -1: none)")
	fs.IntVar(&o.FlatHVPs, "flat-hvps", 0, "product budget of the matrix-free flat search (without --dense)")
	products := fs.String("products", string(probe.ForwardProducts), "how Lanczos, the flat search, the density, the trace and the noise batches make their products: forward (float64 forward differences, one gradient a product) or central (two); every eigenpair and direction reported is measured by a central product either way")
	fs.IntVar(&o.TopAbs, "top-abs", 0, "with --dense: probe the N largest-|lambda| eigenvectors instead of --top and --bottom")
	fs.IntVar(&o.Smallest, "smallest", 0, "with --dense: probe the N smallest-|lambda| eigenvectors (the paper's flat bucket; usually nulls)")
	fs.IntVar(&o.Nulls, "nulls", 0, "with --dense: exact symmetry nulls probed as controls (default 2; -1: none)")
	fs.Float64Var(&o.Window.Threshold, "flat-threshold", probe.DefaultFlatThreshold, "window-flat: |lambda| * lr * steps below this")
	fs.Float64Var(&o.Window.LR, "lr", 0, "the ensemble's learning rate eta for the window-flat rule (default sgd.lr)")
	fs.Int64Var(&o.Window.Steps, "steps", 1000, "the ensemble's steps T for the window-flat rule")
	batch := fs.Int("batch", 0, "batch size whose noise c, s2 is measured (default sgd.batch; use the ensemble's)")
	fs.BoolVar(&o.NoiseOnEval, "noise-on-eval", false, "measure c on the evaluation set itself, not on a held-out sample of its size (the directions are chosen on the evaluation set, which biases c along them)")
	fs.IntVar(&o.Workers, "workers", 0, "model instances sharing the dense Hessian and per-example gradients (0: one per core, at most 4; results do not depend on it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if o.Products, err = probe.ParseProducts(*products); err != nil {
		return err
	}
	var ref *train.Reference
	switch {
	case *runDir != "" && *weights == "":
		ref, err = train.LoadReference(*runDir, *ckpt)
	case *weights != "":
		if *outDir == "" {
			return fmt.Errorf("--weights needs --out DIR (or --run DIR)")
		}
		var c train.Config
		switch {
		case *cfgPath != "":
			c, err = train.LoadConfig(*cfgPath)
		case *kind != "":
			c = train.DefaultConfig(*kind)
		default:
			return fmt.Errorf("--weights needs --config or --model")
		}
		if err != nil {
			return err
		}
		if *dataPath != "" {
			c.Data.Path = *dataPath
		}
		ref, err = train.ReferenceFromWeights(*outDir, c, *weights)
		*runDir = *outDir
	default:
		return fmt.Errorf("give --run DIR, or --weights FILE with --out DIR")
	}
	if err != nil {
		return err
	}
	if *userDirs != "" {
		if o.User, err = experiment.ReadDirections(*userDirs, len(ref.W)); err != nil {
			return err
		}
		if err := experiment.CheckOrthonormal(*userDirs, o.User, true); err != nil {
			return err
		}
	}
	o.BatchSize = ref.Config.SGD.Batch
	if *batch != 0 {
		o.BatchSize = *batch
	}
	if o.BatchSize < 1 || o.BatchSize > ref.Data.Train.Len() {
		return fmt.Errorf("--batch %d: want 1 to %d (the training examples)", o.BatchSize, ref.Data.Train.Len())
	}
	if o.Window.LR == 0 {
		o.Window.LR = ref.Config.SGD.LR
	}
	if !(o.Window.LR > 0) || o.Window.Steps < 1 || !(o.Window.Threshold > 0) {
		return fmt.Errorf("--lr %g, --steps %d and --flat-threshold %g must be positive", o.Window.LR, o.Window.Steps, o.Window.Threshold)
	}
	o.Sampling = data.Sampling(ref.Config.SGD.Sampling)
	m, err := ref.NewProbeModel()
	if err != nil {
		return err
	}
	o.NewModel = ref.NewProbeModel
	release, err := experiment.LockNew(*runDir, "sgdyn hessian")
	if err != nil {
		return err
	}
	defer release()
	fmt.Fprintf(stdout, "hessian of %s at %s (%d parameters, %d evaluation examples)\n", *runDir, ref.Checkpoint, len(ref.W), min(o.EvalExamples, ref.Data.Train.Len()))
	s, err := probe.RunSurvey(ctx, m, ref.Data.Train, ref.W, o, experiment.SurveyProgress(stderr))
	if err != nil {
		return experiment.SurveyError(ctx, err)
	}
	out := filepath.Join(*runDir, experiment.HessianDir)
	if err := experiment.WriteSurvey(out, s, ref); err != nil {
		return err
	}
	experiment.PrintSurvey(stdout, s)
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}
