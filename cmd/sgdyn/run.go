package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/configs"
	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// experiment is a whole `sgdyn run`: training to a reference point, the
// curvature survey there, and one ensemble per learning rate.
type experiment struct {
	train.Config `yaml:",inline"`
	Hessian      hessianSection  `yaml:"hessian"`
	Ensemble     ensembleSection `yaml:"ensemble"`
}

type hessianSection struct {
	EvalExamples  int     `yaml:"eval_examples" json:"eval_examples"`
	Top           int     `yaml:"top" json:"top"`
	Bottom        int     `yaml:"bottom" json:"bottom"`
	Bulk          int     `yaml:"bulk" json:"bulk"`
	Tol           float64 `yaml:"tol" json:"tol"`
	NoiseBatches  int     `yaml:"noise_batches" json:"noise_batches"`
	DensityStarts int     `yaml:"density_starts" json:"density_starts"`
	DensitySteps  int     `yaml:"density_steps" json:"density_steps"`
	TraceSamples  int     `yaml:"trace_samples" json:"trace_samples"`
	FDStep        float64 `yaml:"fd_step" json:"fd_step"`
	Seed          uint64  `yaml:"seed" json:"seed"`
	// Dense: the whole Hessian and all its eigenpairs (small models).
	Dense bool `yaml:"dense" json:"dense"`
	// Flat certified flat, non-null directions (default 8 with dense or
	// flat_hvps), found within flat_hvps products when not dense.
	Flat     int `yaml:"flat" json:"flat"`
	FlatHVPs int `yaml:"flat_hvps" json:"flat_hvps"`
	// FlatThreshold: window-flat means |lambda| eta T below it, with the
	// largest ensemble eta and its steps T.
	FlatThreshold float64 `yaml:"flat_threshold" json:"flat_threshold"`
	Nulls         int     `yaml:"nulls" json:"nulls"`
	// TopAbs (dense): probe the top_abs largest-|lambda| eigenvectors
	// instead of top and bottom; Smallest: the smallest-|lambda| ones (the
	// paper's direction sets).
	TopAbs   int `yaml:"top_abs" json:"top_abs"`
	Smallest int `yaml:"smallest" json:"smallest"`
}

type ensembleSection struct {
	Replicas int       `yaml:"replicas"`
	Steps    int64     `yaml:"steps"`
	LR       []float64 `yaml:"lr"`    // one ensemble per value; default: sgd.lr
	Batch    int       `yaml:"batch"` // default: sgd.batch; the survey measures the noise at this batch
	// Batches, if set, runs one ensemble per batch size (and learning rate
	// and scheme): a batch scan. The report rescales c and s2 to each.
	Batches  []int `yaml:"batches"`
	LogEvery int64 `yaml:"log_every"`
	// Sampling is one scheme or a list (one ensemble per learning rate and
	// scheme). Default: both when the window spans more than one epoch,
	// else sgd.sampling (see applySamplingDefault).
	Sampling        samplingList `yaml:"sampling"`
	defaultSampling bool
}

// parseExperiment decodes YAML strictly onto the defaults of its model kind.
func parseExperiment(b []byte) (experiment, error) {
	var kind struct {
		Model struct{ Kind string } `yaml:"model"`
	}
	_ = yaml.Unmarshal(b, &kind)
	e := experiment{
		Config:   train.DefaultConfig(kind.Model.Kind),
		Hessian:  hessianSection{EvalExamples: 4096, Top: 20, Bottom: 5, Bulk: 16, Tol: 1e-4, NoiseBatches: 32, DensityStarts: 4, DensitySteps: 30, TraceSamples: 8, FDStep: probe.DefaultFDStep, Seed: 1, FlatThreshold: probe.DefaultFlatThreshold},
		Ensemble: ensembleSection{Replicas: 32, Steps: 1000, LogEvery: 1},
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&e); err != nil && !errors.Is(err, io.EOF) {
		return e, errors.New(strings.ReplaceAll(err.Error(), "\n ", ";"))
	}
	e.Config = e.Config.WithDefaults()
	if len(e.Ensemble.LR) == 0 {
		e.Ensemble.LR = []float64{e.SGD.LR}
	}
	if e.Ensemble.Batch == 0 {
		e.Ensemble.Batch = e.SGD.Batch
	}
	if e.Ensemble.defaultSampling = len(e.Ensemble.Sampling) == 0; e.Ensemble.defaultSampling {
		e.Ensemble.Sampling = samplingList{e.SGD.Sampling} // until the data's size is known
	}
	if err := e.Config.Validate(); err != nil {
		return e, err
	}
	for _, c := range e.ensembleConfigs() {
		// The batch is checked against the data's size once it is loaded.
		if err := c.Validate(math.MaxInt); err != nil {
			return e, fmt.Errorf("ensemble: %w", err)
		}
	}
	h := e.Hessian
	if !(h.FlatThreshold > 0) || h.FlatHVPs < 0 {
		return e, fmt.Errorf("hessian: flat_threshold %g must be positive and flat_hvps %d not negative", h.FlatThreshold, h.FlatHVPs)
	}
	if h.EvalExamples < 1 || h.NoiseBatches < 2 || !(h.Tol > 0) || !(h.FDStep > 0) {
		return e, fmt.Errorf("hessian: eval_examples %d and noise_batches %d must be at least 1 and 2, tol %g and fd_step %g positive", h.EvalExamples, h.NoiseBatches, h.Tol, h.FDStep)
	}
	return e, nil
}

func (e experiment) ensembleConfigs() []train.EnsembleConfig {
	var out []train.EnsembleConfig
	batches := e.Ensemble.Batches
	if len(batches) == 0 {
		batches = []int{e.Ensemble.Batch}
	}
	for _, b := range batches {
		for _, eta := range e.Ensemble.LR {
			for _, s := range e.Ensemble.Sampling {
				c := train.EnsembleConfig{
					Name: schemeName(fmt.Sprintf("lr%g-b%d", eta, b), s, len(e.Ensemble.Sampling)), Replicas: e.Ensemble.Replicas, Steps: e.Ensemble.Steps,
					LR: eta, Batch: b, Sampling: s, LogEvery: e.Ensemble.LogEvery,
					CheckpointEvery: max(1, e.Ensemble.Steps/10), Seed: e.Seed,
				}
				pairSchemes(&c, len(e.Ensemble.Sampling))
				out = append(out, c)
			}
		}
	}
	return out
}

// options are the survey's settings for ensembles of the given batch,
// sampling and window: the flat rule uses the largest learning rate, the
// strictest.
func (h hessianSection) options(batch int, sampling string, lrs []float64, steps int64) probe.SurveyOptions {
	return probe.SurveyOptions{
		EvalExamples: h.EvalExamples, Top: h.Top, Bottom: h.Bottom, Bulk: h.Bulk, Tol: h.Tol,
		DensityStarts: h.DensityStarts, DensitySteps: h.DensitySteps, TraceSamples: h.TraceSamples,
		NoiseBatches: h.NoiseBatches, BatchSize: batch, Sampling: data.Sampling(sampling),
		FDStep: h.FDStep, Seed: h.Seed,
		Dense: h.Dense, Flat: h.Flat, FlatHVPs: h.FlatHVPs, Nulls: h.Nulls, TopAbs: h.TopAbs, Smallest: h.Smallest,
		Window: probe.Window{LR: slices.Max(lrs), Steps: steps, Threshold: h.FlatThreshold},
	}
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run [--config FILE|NAME] [--out DIR]", stderr)
	cfgArg := fs.String("config", "", "experiment config: a YAML `file`, or a shipped name ("+strings.Join(configs.Names(), ", ")+"); default "+configs.Default)
	out := runDirFlag(fs, "run `directory` (default runs/<config name>)")
	dataPath := fs.String("data", "", "override data.path (e.g. the CIFAR-10 directory)")
	workers := fs.Int("workers", 0, "ensemble replicas run concurrently (default GOMAXPROCS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	name, raw, err := readExperiment(*cfgArg)
	if err != nil {
		return err
	}
	e, err := parseExperiment(raw)
	if err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	if *dataPath != "" {
		e.Data.Path = *dataPath
	}
	ens := e.ensembleConfigs()
	dir := *out
	if dir == "" {
		dir = filepath.Join("runs", name)
	}
	// Check everything a stage could refuse before the first one runs.
	ds, err := train.LoadData(e.Config)
	if err != nil {
		return err
	}
	e.applySamplingDefault(ds.Train.Len())
	ens = e.ensembleConfigs()
	for _, c := range ens {
		if err := c.Validate(ds.Train.Len()); err != nil {
			return fmt.Errorf("ensemble: %w", err)
		}
	}
	// One lock for the whole pipeline: its ensembles run in this process,
	// so they need no lock of their own.
	release, err := lockTraining(dir, &e.Config, "sgdyn run")
	if err != nil {
		return err
	}
	defer release()
	t0 := time.Now()
	stage := func(name string, since time.Time) {
		fmt.Fprintf(stdout, "  %s done in %s\n", name, time.Since(since).Round(100*time.Millisecond))
	}

	fmt.Fprintf(stdout, "[1/4] train %s (%s, lr %g, batch %d, %d steps) in %s\n", e.Model.Kind, e.Data.Kind, e.SGD.LR, e.SGD.Batch, e.SGD.Steps, dir)
	st := time.Now()
	res, err := train.Train(ctx, dir, e.Config, train.Options{Progress: stderr})
	if err != nil {
		return err
	}
	if res.Resumed >= e.SGD.Steps {
		fmt.Fprintln(stdout, "  already trained")
	}
	stage("train", st)

	fmt.Fprintln(stdout, "[2/4] hessian and noise at the reference point")
	st = time.Now()
	ref, err := train.LoadReference(dir, "")
	if err != nil {
		return err
	}
	opts := e.Hessian.options(e.Ensemble.Batch, e.Ensemble.surveySampling(e.SGD.Sampling), e.Ensemble.LR, e.Ensemble.Steps)
	if surveyCurrent(dir, ref, opts) {
		fmt.Fprintln(stdout, "  survey up to date")
	} else {
		m, err := ref.NewProbeModel()
		if err != nil {
			return err
		}
		opts.NewModel = ref.NewProbeModel // more instances: the dense Hessian on every core
		s, err := probe.RunSurvey(ctx, m, ref.Data.Train, ref.W, opts, surveyProgress(stderr))
		if err != nil {
			return surveyError(ctx, err)
		}
		if err := writeSurvey(filepath.Join(dir, hessianDir), s, ref); err != nil {
			return err
		}
		printSurvey(indent{stdout}, s)
	}
	stage("hessian", st)

	fmt.Fprintf(stdout, "[3/4] ensembles: %d replicas x %d steps at lr %v\n", e.Ensemble.Replicas, e.Ensemble.Steps, e.Ensemble.LR)
	st = time.Now()
	dirs, sources, err := loadDirections(dir, "", len(ref.W))
	if err != nil {
		return err
	}
	for _, c := range ens {
		r, err := train.RunEnsemble(ctx, ref, dirs, sources, c, train.Shard{Index: 0, Of: 1}, *workers, stderr)
		if err != nil {
			return fmt.Errorf("ensemble %s: %w", c.Name, err)
		}
		if _, err := train.MergeEnsemble(r.Dir); err != nil {
			return err
		}
		if r.Ran > 0 {
			fmt.Fprintf(stdout, "  %s: %.1f replica-steps/s, %d diverged\n", c.Name, r.ReplicaStepsPerSec, r.Diverged)
		}
	}
	if note := schemesNote(ens, ds.Train.Len()); note != "" {
		fmt.Fprintln(stdout, note)
	}
	stage("ensembles", st)

	fmt.Fprintln(stdout, "[4/4] report")
	st = time.Now()
	if err := writeReport(dir, ens[0].Name, stdout); err != nil {
		return err
	}
	stage("report", st)
	fmt.Fprintf(stdout, "done in %s: open %s\n", time.Since(t0).Round(time.Second), filepath.Join(dir, "report", "index.html"))
	return nil
}

// readExperiment resolves --config: a file path, or a shipped config name.
func readExperiment(arg string) (name string, raw []byte, err error) {
	if arg == "" {
		arg = configs.Default
	}
	if _, statErr := os.Stat(arg); statErr == nil || strings.ContainsAny(arg, "/.") {
		raw, err = os.ReadFile(arg)
		if err != nil {
			return "", nil, fmt.Errorf("config: %w", err)
		}
		return strings.TrimSuffix(filepath.Base(arg), filepath.Ext(arg)), raw, nil
	}
	raw, err = configs.Read(arg)
	return arg, raw, err
}

// surveyCurrent reports whether dir already holds a survey of this
// reference checkpoint with these settings.
func surveyCurrent(dir string, ref *train.Reference, o probe.SurveyOptions) bool {
	b, err := os.ReadFile(filepath.Join(dir, hessianDir, spectrumFile))
	if err != nil {
		return false
	}
	var old struct {
		Checkpoint string          `json:"checkpoint"`
		Settings   json.RawMessage `json:"settings"`
	}
	if json.Unmarshal(b, &old) != nil || old.Checkpoint != ref.Checkpoint {
		return false
	}
	// Compare after the same defaulting RunSurvey applies, and in the same
	// (compact) form: the file is indented.
	want, _ := json.Marshal(o.WithDefaults())
	var got bytes.Buffer
	return json.Compact(&got, old.Settings) == nil && bytes.Equal(got.Bytes(), want)
}

// indent writes each line it is given with two leading spaces.
type indent struct{ w io.Writer }

func (in indent) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(in.w, "  "+l); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
