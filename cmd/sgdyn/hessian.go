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
)

func runHessian(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hessian", "hessian --run DIR [--checkpoint FILE] [flags]\n       sgdyn hessian --weights FILE.npz (--config FILE | --model KIND [--data PATH]) --out DIR [flags]", stderr)
	runDir := fs.String("run", "", "run `directory`")
	ckpt := fs.String("checkpoint", "", "parameter `file` (.npz) to probe instead of the run's latest checkpoint")
	weights := fs.String("weights", "", "parameter `file` (.npz) to probe without a run directory")
	cfgPath := fs.String("config", "", "with --weights: training config `file` describing the model and data")
	kind := fs.String("model", "", "with --weights: model kind (default sizes)")
	dataPath := fs.String("data", "", "with --weights: data path")
	outDir := fs.String("out", "", "with --weights: `directory` for the hessian/ outputs")
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var ref *train.Reference
	var err error
	switch {
	case *runDir != "" && *weights == "":
		ref, err = train.LoadReference(*runDir, *ckpt)
	case *weights != "" && *runDir == "":
		if *outDir == "" {
			return fmt.Errorf("--weights needs --out")
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
	}
	o.BatchSize = ref.Config.SGD.Batch
	o.Sampling = data.Sampling(ref.Config.SGD.Sampling)
	m, err := ref.NewProbeModel()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hessian of %s at %s (%d parameters, %d evaluation examples)\n", *runDir, ref.Checkpoint, len(ref.W), min(o.EvalExamples, ref.Data.Train.Len()))
	s, err := probe.RunSurvey(ctx, m, ref.Data.Train, ref.W, o, surveyProgress(stderr))
	if err != nil {
		return surveyError(ctx, err)
	}
	out := filepath.Join(*runDir, hessianDir)
	if err := writeSurvey(out, s, ref); err != nil {
		return err
	}
	nulls := 0
	for _, d := range s.Directions {
		if d.Null {
			nulls++
		}
	}
	fmt.Fprintf(stdout, "lambda_max %.6g (residual %.2g), %d Lanczos HVPs, %d HVPs in all, %.1fs; %d directions (%d null)\n",
		s.Top[0].Value, s.Top[0].Residual, s.LanczosHVPs, s.HVPs, s.Seconds, len(s.Directions), nulls)
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
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
