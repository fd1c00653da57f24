package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/internal/npy"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// Files of a run's hessian/ directory.
const (
	hessianDir     = "hessian"
	spectrumFile   = "spectrum.json"
	directionsNPY  = "directions.npy"
	directionsJSON = "directions.json"
	noiseNPZ       = "noise.npz"
	// Dense path: every eigenvalue (ascending), c along its eigenvector,
	// and its class code (probe.ClassCode: 0 null, 1 window-flat,
	// 2 confined candidate, 3 negative).
	eigenvaluesNPY = "eigenvalues.npy"
	eigenCNPY      = "eigen_c.npy"
	eigenClassNPY  = "eigen_class.npy"
)

// writeNoise saves the inputs of the subspace recursion: hv (K, K) =
// V^T H V over the evaluation set, cov (K, K) = Cov_B(V^T g_B) from the
// per-example gradients, and per noise batch grad (M, K) =
// V^T g_B and curv (M, K, K) = V^T H_B V.
func writeNoise(path string, s *probe.Survey) error {
	k := len(s.Vectors)
	hv := make([]float64, 0, k*k)
	for _, row := range s.HV {
		hv = append(hv, row...)
	}
	cov := make([]float64, 0, k*k)
	for _, row := range s.CV {
		cov = append(cov, row...)
	}
	arrays := []npy.Array{{Name: "hv", Shape: []int{k, k}, F64: hv}, {Name: "cov", Shape: []int{k, k}, F64: cov}}
	if nz := s.Noise; nz != nil {
		g := make([]float64, 0, nz.Batches*k)
		c := make([]float64, 0, nz.Batches*k*k)
		for m := range nz.Batches {
			g = append(g, nz.Grad[m]...)
			c = append(c, nz.Curv[m]...)
		}
		arrays = append(arrays, npy.Array{Name: "grad", Shape: []int{nz.Batches, k}, F64: g}, npy.Array{Name: "curv", Shape: []int{nz.Batches, k, k}, F64: c})
	}
	return npy.WriteNPZ(path, arrays)
}

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
	fs.IntVar(&o.Flat, "flat", 0, "certified flat, non-null directions to probe (default 8 with --dense or --flat-hvps; -1: none)")
	fs.IntVar(&o.FlatHVPs, "flat-hvps", 0, "product budget of the matrix-free flat search (without --dense)")
	fs.IntVar(&o.TopAbs, "top-abs", 0, "with --dense: probe the N largest-|lambda| eigenvectors instead of --top and --bottom")
	fs.IntVar(&o.Smallest, "smallest", 0, "with --dense: probe the N smallest-|lambda| eigenvectors (the paper's flat bucket; usually nulls)")
	fs.IntVar(&o.Nulls, "nulls", 0, "with --dense: exact symmetry nulls probed as controls (default 2; -1: none)")
	fs.Float64Var(&o.Window.Threshold, "flat-threshold", probe.DefaultFlatThreshold, "window-flat: |lambda| * lr * steps below this")
	fs.Float64Var(&o.Window.LR, "lr", 0, "the ensemble's learning rate eta for the window-flat rule (default sgd.lr)")
	fs.Int64Var(&o.Window.Steps, "steps", 1000, "the ensemble's steps T for the window-flat rule")
	batch := fs.Int("batch", 0, "batch size whose noise c, s2 is measured (default sgd.batch; use the ensemble's)")
	fs.IntVar(&o.Workers, "workers", 0, "model instances sharing the dense Hessian and per-example gradients (0: one per core, at most 4; results do not depend on it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var ref *train.Reference
	var err error
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
		if o.User, err = readDirections(*userDirs, len(ref.W)); err != nil {
			return err
		}
		if err := checkOrthonormal(*userDirs, o.User, true); err != nil {
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
	release, err := lockNewDir(*runDir, "sgdyn hessian")
	if err != nil {
		return err
	}
	defer release()
	fmt.Fprintf(stdout, "hessian of %s at %s (%d parameters, %d evaluation examples)\n", *runDir, ref.Checkpoint, len(ref.W), min(o.EvalExamples, ref.Data.Train.Len()))
	s, err := probe.RunSurvey(ctx, m, ref.Data.Train, ref.W, o, surveyProgress(stderr))
	if err != nil {
		return surveyError(ctx, err)
	}
	out := filepath.Join(*runDir, hessianDir)
	if err := writeSurvey(out, s, ref); err != nil {
		return err
	}
	printSurvey(stdout, s)
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

// printSurvey prints the survey's headline: the spectrum, the classes of
// the probed directions, what the flat search spent, and the warnings.
func printSurvey(w io.Writer, s *probe.Survey) {
	if len(s.Top) > 0 {
		fmt.Fprintf(w, "lambda_max %.6g (residual %.2g), ", s.Top[0].Value, s.Top[0].Residual)
	}
	fmt.Fprintf(w, "%d HVPs in all (%d Lanczos), %.1fs\n", s.HVPs, s.LanczosHVPs, s.Seconds)
	if d := s.Dense; d != nil {
		fmt.Fprintf(w, "dense: %d eigenpairs, asymmetry %.2g (%.2g lambda_max); window eta %g x T %d, flat if |lambda| < %.3g: %d null, %d window-flat, %d confined candidates, %d negative; window-flat share of the noise %.1f%%\n",
			d.Params, d.Asymmetry, d.RelAsymmetry, d.Window.LR, d.Window.Steps, d.Window.FlatBound(),
			d.Counts[probe.ClassNull], d.Counts[probe.ClassWindowFlat], d.Counts[probe.ClassConfined], d.Counts[probe.ClassNegative], 100*d.FlatNoiseShare)
	}
	if f := s.Flat; f != nil {
		fmt.Fprintf(w, "flat search: %d directions certified to delta %.3g (target %.3g) with %d of %d products\n", len(s.Directions), f.Delta, f.Target, f.HVPs, f.Budget)
	}
	classes := map[string]int{}
	for _, d := range s.Directions {
		classes[d.Class]++
	}
	fmt.Fprintf(w, "%d probed directions: %d null, %d window-flat, %d confined candidates, %d negative\n", len(s.Directions),
		classes[probe.ClassNull], classes[probe.ClassWindowFlat], classes[probe.ClassConfined], classes[probe.ClassNegative])
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// surveyFile is spectrum.json: the survey plus where it was measured.
type surveyFile struct {
	*probe.Survey
	Run        string `json:"run"`
	Checkpoint string `json:"checkpoint"`
	Step       int64  `json:"step"`
}

func writeSurvey(dir string, s *probe.Survey, ref *train.Reference) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flat := make([]float64, 0, len(s.Vectors)*len(ref.W))
	for _, v := range s.Vectors {
		flat = append(flat, v...)
	}
	// Directions first, the spectrum last: spectrum.json marks a complete survey.
	if err := npy.WriteNPY(filepath.Join(dir, directionsNPY), []int{len(s.Vectors), len(ref.W)}, flat); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, directionsJSON), s.Directions); err != nil {
		return err
	}
	if err := writeNoise(filepath.Join(dir, noiseNPZ), s); err != nil {
		return err
	}
	if d := s.Dense; d != nil {
		codes := make([]float64, len(d.Classes))
		for i, c := range d.Classes {
			codes[i] = probe.ClassCode(c)
		}
		for _, a := range []struct {
			name string
			v    []float64
		}{{eigenvaluesNPY, d.Values}, {eigenCNPY, d.C}, {eigenClassNPY, codes}} {
			if err := npy.WriteNPY(filepath.Join(dir, a.name), []int{len(a.v)}, a.v); err != nil {
				return err
			}
		}
	}
	return atomicfile.WriteJSON(filepath.Join(dir, spectrumFile), surveyFile{Survey: s, Run: ref.Dir, Checkpoint: ref.Checkpoint, Step: ref.Step})
}

// readDirections loads a (k, P) direction file and checks P (params 0:
// the caller checks it).
func readDirections(path string, params int) ([][]float64, error) {
	shape, raw, err := npy.ReadNPY(path)
	if err != nil {
		return nil, err
	}
	var vals []float64
	switch d := raw.(type) {
	case []float64:
		vals = d
	case []float32:
		vals = make([]float64, len(d))
		for i, x := range d {
			vals[i] = float64(x)
		}
	}
	if len(shape) == 1 {
		shape = []int{1, shape[0]}
	}
	if len(shape) != 2 || (params > 0 && shape[1] != params) || shape[0] < 1 || shape[1] < 1 {
		return nil, fmt.Errorf("directions %s: shape %v, want (k, %d) for this model", path, shape, params)
	}
	p := shape[1]
	out := make([][]float64, shape[0])
	for i := range out {
		out[i] = vals[i*p : (i+1)*p]
	}
	return out, nil
}

// surveyProgress shows one progress bar per survey stage on a terminal,
// and a plain line per stage (and every ten seconds) otherwise.
func surveyProgress(w io.Writer) func(stage string, done, total int) {
	var bar *progressbar.ProgressBar
	last, lastLine := "", time.Now()
	f, ok := w.(*os.File)
	tty := ok && term.IsTerminal(int(f.Fd()))
	return func(stage string, done, total int) {
		if !tty {
			if stage != last || time.Since(lastLine) > 10*time.Second {
				fmt.Fprintf(w, "  %s: %d\n", stage, done)
				last, lastLine = stage, time.Now()
			}
			return
		}
		if stage != last {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
			bar = progressbar.NewOptions(max(total, -1), progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(stage),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
			last = stage
		}
		_ = bar.Set(done)
	}
}

// surveyError is err, or, when the survey stopped because of a signal,
// train.ErrInterrupted (exit 130): a survey keeps no partial state, and the
// next run starts it again.
func surveyError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: survey stopped; it starts again from the beginning next time", train.ErrInterrupted)
	}
	return err
}
