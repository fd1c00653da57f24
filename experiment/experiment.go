package experiment

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/sgdyn/sgdyn/analysis/report"
	"github.com/sgdyn/sgdyn/models"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// Options are the parts of an experiment that do not change its results.
type Options struct {
	// Out receives what each stage did (the lines `sgdyn run` prints on
	// stdout); nil discards it.
	Out io.Writer
	// Progress receives progress bars on a terminal and progress lines
	// otherwise (`sgdyn run`'s stderr); nil shows none.
	Progress io.Writer
	// Workers is how many ensemble replicas run at once (0: GOMAXPROCS).
	// Results do not depend on it.
	Workers int
	// NewModel builds the network when the config's model kind is custom
	// (models.KindCustom): a network of the caller's own, for example
	// models.FromGraph of a Gorgonia graph. Training, the survey's
	// instances and every ensemble replica are built with it; it receives
	// the config's model section with the dtype wanted (float64 for the
	// survey). It must be nil for the built-in kinds, and safe to call
	// from several goroutines at once (see train.ModelFunc).
	NewModel train.ModelFunc
	// Command names the holder of the run directory's lock in another
	// process's refusal ("in use by pid N (COMMAND)"); default "sgdyn
	// STAGE", "sgdyn run" for Run.
	Command string
}

// Experiment is a Config bound to its run directory: its stages read and
// write that directory, and each stage that finds its work done skips it.
type Experiment struct {
	cfg  Config
	dir  string
	opts Options
	n    int // training examples
}

// New checks c (defaults filled in), its data and the model constructor,
// everything a stage could refuse, before any stage runs; dir is the run
// directory, created by the first stage if need be.
func New(c Config, dir string, o Options) (*Experiment, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch custom := c.Model.Kind == models.KindCustom; {
	case custom && o.NewModel == nil:
		return nil, fmt.Errorf("model %q is a custom model (kind custom): only a Go program that passes its constructor (experiment.Options.NewModel) can run it", c.Model.Name)
	case !custom && o.NewModel != nil:
		return nil, fmt.Errorf("a model constructor (Options.NewModel) was given for model kind %q: set model kind custom and a name, which the run records", c.Model.Kind)
	}
	ds, err := train.LoadData(c.Config)
	if err != nil {
		return nil, err
	}
	e := &Experiment{cfg: c, dir: dir, opts: o, n: ds.Train.Len()}
	for _, ec := range e.EnsembleConfigs() {
		if err := ec.Validate(e.n); err != nil {
			return nil, fmt.Errorf("ensemble: %w", err)
		}
	}
	if e.opts.Out == nil {
		e.opts.Out = io.Discard
	}
	return e, nil
}

// Config is the experiment's config, with its defaults.
func (e *Experiment) Config() Config { return e.cfg }

// Dir is the run directory.
func (e *Experiment) Dir() string { return e.dir }

// EnsembleConfigs is the ensembles the Ensembles stage runs, in order.
func (e *Experiment) EnsembleConfigs() []train.EnsembleConfig { return e.cfg.Ensembles(e.n) }

// SurveyOptions is the settings of the Survey stage.
func (e *Experiment) SurveyOptions() probe.SurveyOptions { return e.cfg.SurveyOptions(e.n) }

// Result is what Run did.
type Result struct {
	Train *train.Result
	// Survey is nil when the run directory already held a survey of the
	// reference checkpoint with the same settings, which Run kept.
	Survey    *probe.Survey
	Ensembles []*train.EnsembleResult
	Report    *report.Report
}

func (e *Experiment) command(stage string) string {
	if e.opts.Command != "" {
		return e.opts.Command
	}
	return "sgdyn " + stage
}

// Run runs the four stages in order under one exclusive lock of the run
// directory, printing a header and the time of each to Options.Out, and
// returns what each did. Run it again after an interruption (ctx
// cancelled: the error is train.ErrInterrupted) and it continues where it
// stopped: training from its last checkpoint, a survey that is not
// complete from the start, each ensemble from its replicas' checkpoints.
// After an error the Result holds what the stages before it did.
func (e *Experiment) Run(ctx context.Context) (*Result, error) {
	// One lock for the whole pipeline: its ensembles run in this process,
	// so they need no lock of their own.
	release, err := LockTraining(e.dir, &e.cfg.Config, e.command("run"))
	if err != nil {
		return nil, err
	}
	defer release()
	out, c := e.opts.Out, e.cfg
	t0 := time.Now()
	stage := func(name string, since time.Time) {
		fmt.Fprintf(out, "  %s done in %s\n", name, time.Since(since).Round(100*time.Millisecond))
	}
	var res Result

	model := c.Model.Kind
	if model == models.KindCustom {
		model += " " + c.Model.Name
	}
	fmt.Fprintf(out, "[1/4] train %s (%s, lr %g, batch %d, %d steps) in %s\n", model, c.Data.Kind, c.SGD.LR, c.SGD.Batch, c.SGD.Steps, e.dir)
	st := time.Now()
	if res.Train, err = e.train(ctx); err != nil {
		return &res, err
	}
	stage("train", st)

	fmt.Fprintln(out, "[2/4] hessian and noise at the reference point")
	st = time.Now()
	ref, err := e.reference()
	if err != nil {
		return &res, err
	}
	if res.Survey, err = e.survey(ctx, ref); err != nil {
		return &res, err
	}
	stage("hessian", st)

	fmt.Fprintf(out, "[3/4] ensembles: %d replicas x %d steps at lr %v\n", c.Ensemble.Replicas, c.Ensemble.Steps, c.Ensemble.LR)
	st = time.Now()
	if res.Ensembles, err = e.ensembles(ctx, ref); err != nil {
		return &res, err
	}
	stage("ensembles", st)

	fmt.Fprintln(out, "[4/4] report")
	st = time.Now()
	if res.Report, err = e.report(); err != nil {
		return &res, err
	}
	stage("report", st)
	fmt.Fprintf(out, "done in %s: open %s\n", time.Since(t0).Round(time.Second), filepath.Join(e.dir, "report", "index.html"))
	return &res, nil
}

// Train trains the reference point, or continues the training from the
// run's last checkpoint; a run already trained to sgd.steps is left as it
// is (Result.Resumed == Result.Steps). It holds the run directory's lock
// exclusively.
func (e *Experiment) Train(ctx context.Context) (*train.Result, error) {
	release, err := LockTraining(e.dir, &e.cfg.Config, e.command("train"))
	if err != nil {
		return nil, err
	}
	defer release()
	return e.train(ctx)
}

func (e *Experiment) train(ctx context.Context) (*train.Result, error) {
	res, err := train.Train(ctx, e.dir, e.cfg.Config, train.Options{Progress: e.opts.Progress, NewModel: e.opts.NewModel})
	if err != nil {
		return res, err
	}
	if res.Resumed >= e.cfg.SGD.Steps {
		fmt.Fprintln(e.opts.Out, "  already trained")
	}
	return res, nil
}

// reference is the trained point at the run's latest checkpoint.
func (e *Experiment) reference() (*train.Reference, error) {
	return train.LoadReferenceWith(e.dir, "", e.opts.NewModel)
}

// Survey measures the curvature and the minibatch noise at the run's
// latest checkpoint (probe.RunSurvey with SurveyOptions) and writes them to
// the run's hessian/ directory (WriteSurvey). It returns nil, and does
// nothing, when that directory already holds a survey of this checkpoint
// with these settings. It holds the run directory's lock exclusively.
func (e *Experiment) Survey(ctx context.Context) (*probe.Survey, error) {
	release, err := LockNew(e.dir, e.command("hessian"))
	if err != nil {
		return nil, err
	}
	defer release()
	ref, err := e.reference()
	if err != nil {
		return nil, err
	}
	return e.survey(ctx, ref)
}

func (e *Experiment) survey(ctx context.Context, ref *train.Reference) (*probe.Survey, error) {
	opts := e.SurveyOptions()
	if surveyCurrent(e.dir, ref, opts) {
		fmt.Fprintln(e.opts.Out, "  survey up to date")
		return nil, nil
	}
	m, err := ref.NewProbeModel()
	if err != nil {
		return nil, err
	}
	opts.NewModel = ref.NewProbeModel // more instances: the dense Hessian on every core
	s, err := probe.RunSurvey(ctx, m, ref.Data.Train, ref.W, opts, SurveyProgress(e.opts.Progress))
	if err != nil {
		return nil, SurveyError(ctx, err)
	}
	if err := WriteSurvey(filepath.Join(e.dir, HessianDir), s, ref); err != nil {
		return nil, err
	}
	PrintSurvey(indent{e.opts.Out}, s)
	return s, nil
}

// Ensembles runs the ensembles of EnsembleConfigs from the run's latest
// checkpoint, projecting on the survey's directions, and merges each
// (train.RunEnsemble, train.MergeEnsemble; read one back with
// train.ReadEnsemble). Finished replicas are skipped, interrupted ones
// continue from their checkpoints. It shares the run directory's lock
// with other ensembles and reports.
func (e *Experiment) Ensembles(ctx context.Context) ([]*train.EnsembleResult, error) {
	release, err := LockShared(e.dir, e.command("ensemble"))
	if err != nil {
		return nil, err
	}
	defer release()
	ref, err := e.reference()
	if err != nil {
		return nil, err
	}
	return e.ensembles(ctx, ref)
}

func (e *Experiment) ensembles(ctx context.Context, ref *train.Reference) ([]*train.EnsembleResult, error) {
	dirs, sources, err := LoadDirections(e.dir, "", len(ref.W))
	if err != nil {
		return nil, err
	}
	ens := e.EnsembleConfigs()
	var out []*train.EnsembleResult
	for _, c := range ens {
		r, err := train.RunEnsemble(ctx, ref, dirs, sources, c, train.Shard{Index: 0, Of: 1}, e.opts.Workers, e.opts.Progress)
		if err != nil {
			return out, fmt.Errorf("ensemble %s: %w", c.Name, err)
		}
		if _, err := train.MergeEnsemble(r.Dir); err != nil {
			return out, err
		}
		out = append(out, r)
		if r.Ran > 0 {
			fmt.Fprintf(e.opts.Out, "  %s: %.1f replica-steps/s, %d diverged\n", c.Name, r.ReplicaStepsPerSec, r.Diverged)
		}
	}
	if note := SchemesNote(ens, e.n); note != "" {
		fmt.Fprintln(e.opts.Out, note)
	}
	return out, nil
}

// Report builds the variance-growth report of the run directory and
// writes it to its report/ directory (analysis/report), headed by the
// first ensemble. It holds the report lock, and shares the run
// directory's lock with ensembles.
func (e *Experiment) Report(ctx context.Context) (*report.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	release, err := LockReport(e.dir, e.command("report"))
	if err != nil {
		return nil, err
	}
	defer release()
	return e.report()
}

func (e *Experiment) report() (*report.Report, error) {
	return WriteReport(e.dir, report.Options{Primary: e.EnsembleConfigs()[0].Name}, e.opts.Out)
}

// WriteReport builds the report of the run directory dir with o, writes
// it to dir/report and prints its notes and each ensemble's classes to
// out. It takes no lock (see LockReport).
func WriteReport(dir string, o report.Options, out io.Writer) (*report.Report, error) {
	r, err := report.Build(dir, o)
	if err != nil {
		return nil, err
	}
	page := filepath.Join(dir, "report")
	if err := report.Write(r, page); err != nil {
		return nil, err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(out, "  note: %s\n", n)
	}
	for _, e := range r.Ensembles {
		fmt.Fprintf(out, "  %s: ", e.Name)
		first := true
		for _, c := range []string{"confined", "diffusive", "unstable", "null", "undetermined"} {
			if n := e.Counts[c]; n > 0 {
				if !first {
					fmt.Fprint(out, ", ")
				}
				fmt.Fprintf(out, "%d %s", n, c)
				first = false
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "wrote %s\n", filepath.Join(page, "index.html"))
	return r, nil
}

// indent writes each line it is given with two leading spaces.
type indent struct{ w io.Writer }

func (in indent) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(in.w, "  "+l); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
