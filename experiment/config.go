package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/analysis"
	"github.com/sgdyn/sgdyn/configs"
	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/probe"
	"github.com/sgdyn/sgdyn/train"
)

// Config is a whole experiment: the training run to a reference point (the
// inlined train.Config: seed, model, data, sgd), the curvature survey there
// (hessian) and the ensembles of SGD from it (ensemble). Its YAML is that of
// the files in configs/.
type Config struct {
	train.Config `yaml:",inline"`
	Hessian      HessianSection  `yaml:"hessian"`
	Ensemble     EnsembleSection `yaml:"ensemble"`
}

// HessianSection is the survey's part of a Config (probe.SurveyOptions
// names what each setting does).
type HessianSection struct {
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
	// DenseByProducts (dense) builds the Hessian from P products even for
	// a model with its own sweep, the same differences: a cross-check.
	DenseByProducts bool `yaml:"dense_by_products,omitempty" json:"dense_by_products,omitempty"`
	// Flat certified flat, non-null directions (default 8 with dense or
	// flat_hvps), found within flat_hvps products when not dense.
	Flat     int `yaml:"flat" json:"flat"`
	FlatHVPs int `yaml:"flat_hvps" json:"flat_hvps"`
	// Products is how the Krylov searches and stochastic estimates make
	// their products: forward (default) or central; what the survey
	// reports is certified by central products either way
	// (probe.SurveyOptions.Products).
	Products string `yaml:"products,omitempty" json:"products,omitempty"`
	// FlatThreshold: window-flat means |lambda| eta T below it, with the
	// largest ensemble eta and its steps T.
	FlatThreshold float64 `yaml:"flat_threshold" json:"flat_threshold"`
	Nulls         int     `yaml:"nulls" json:"nulls"`
	// TopAbs (dense): probe the top_abs largest-|lambda| eigenvectors
	// instead of top and bottom; Smallest: the smallest-|lambda| ones (the
	// paper's direction sets).
	TopAbs   int `yaml:"top_abs" json:"top_abs"`
	Smallest int `yaml:"smallest" json:"smallest"`
	// NoiseOnEval measures c on the evaluation set itself rather than on
	// a held-out sample of its size (probe.SurveyOptions.NoiseOnEval).
	NoiseOnEval bool `yaml:"noise_on_eval" json:"noise_on_eval"`
}

// EnsembleSection is the ensembles' part of a Config: one ensemble per
// batch size, learning rate and sampling scheme, each of Replicas replicas
// of Steps steps from the reference point.
type EnsembleSection struct {
	Replicas int       `yaml:"replicas"`
	Steps    int64     `yaml:"steps"`
	LR       []float64 `yaml:"lr"`    // one ensemble per value; default: sgd.lr
	Batch    int       `yaml:"batch"` // default: sgd.batch; the survey measures the noise at this batch
	// Batches, if set, runs one ensemble per batch size (and learning rate
	// and scheme): a batch scan. The report rescales c and s2 to each.
	Batches  []int `yaml:"batches"`
	LogEvery int64 `yaml:"log_every"`
	// Sampling is one scheme or a list (one ensemble per learning rate and
	// scheme). Empty (the default): both when the window spans more than
	// one epoch of the training set, else sgd.sampling (see Ensembles).
	Sampling SamplingList `yaml:"sampling"`
}

// Default is the Config that a YAML file of model kind kind is decoded
// onto: train.DefaultConfig and the survey and ensemble defaults.
func Default(kind string) Config {
	return Config{
		Config: train.DefaultConfig(kind),
		Hessian: HessianSection{EvalExamples: 4096, Top: 20, Bottom: 5, Bulk: 16, Tol: 1e-4, NoiseBatches: 32, DensityStarts: 4,
			DensitySteps: 30, TraceSamples: 8, FDStep: probe.DefaultFDStep, Seed: 1, FlatThreshold: probe.DefaultFlatThreshold},
		Ensemble: EnsembleSection{Replicas: 32, Steps: 1000, LogEvery: 1},
	}
}

// Parse decodes YAML strictly (an unknown key is an error) onto the
// defaults of its model kind, fills the remaining defaults and validates
// the result. Errors are one line.
func Parse(b []byte) (Config, error) {
	var kind struct {
		Model struct{ Kind string } `yaml:"model"`
	}
	_ = yaml.Unmarshal(b, &kind) // errors are reported by the strict pass below
	c := Default(kind.Model.Kind)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, errors.New(strings.ReplaceAll(err.Error(), "\n ", ";"))
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

// Load reads the config arg names: a YAML file, or the name of a config
// shipped in configs/ ("" for configs.Default). name is the file's base
// name without extension, or the shipped name: `sgdyn run` puts the run in
// runs/NAME by default.
func Load(arg string) (name string, c Config, err error) {
	name, raw, err := read(arg)
	if err != nil {
		return "", Config{}, err
	}
	if c, err = Parse(raw); err != nil {
		return name, c, fmt.Errorf("config %s: %w", name, err)
	}
	return name, c, nil
}

// read resolves a config argument: a file path, or a shipped config name.
func read(arg string) (name string, raw []byte, err error) {
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

// WithDefaults fills every unset setting with its default: the training
// run's (train.Config.WithDefaults), and the ensembles' learning rates and
// batch from sgd. An empty ensemble sampling stays empty: its default
// depends on the data (see Ensembles).
func (c Config) WithDefaults() Config {
	c.Config = c.Config.WithDefaults()
	if len(c.Ensemble.LR) == 0 {
		c.Ensemble.LR = []float64{c.SGD.LR}
	}
	if c.Ensemble.Batch == 0 {
		c.Ensemble.Batch = c.SGD.Batch
	}
	return c
}

// Validate reports the first invalid setting of c (after WithDefaults).
// Batch sizes are checked against the data's size when it is loaded (New).
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	for _, e := range c.Ensembles(0) {
		if err := e.Validate(math.MaxInt); err != nil {
			return fmt.Errorf("ensemble: %w", err)
		}
	}
	h := c.Hessian
	if !(h.FlatThreshold > 0) || h.FlatHVPs < 0 {
		return fmt.Errorf("hessian: flat_threshold %g must be positive and flat_hvps %d not negative", h.FlatThreshold, h.FlatHVPs)
	}
	if h.EvalExamples < 1 || h.NoiseBatches < 2 || !(h.Tol > 0) || !(h.FDStep > 0) {
		return fmt.Errorf("hessian: eval_examples %d and noise_batches %d must be at least 1 and 2, tol %g and fd_step %g positive", h.EvalExamples, h.NoiseBatches, h.Tol, h.FDStep)
	}
	if _, err := probe.ParseProducts(h.Products); err != nil {
		return fmt.Errorf("hessian: %w", err)
	}
	return nil
}

// Schemes is the sampling schemes of the ensembles for a training set of n
// examples: the ensemble section's, or by default both schemes when the
// ensemble window spans more than one epoch (reshuffling then departs from
// the with-replacement theory, THEORY.md section 9), else sgd.sampling.
// n < 1 means the size is not known yet: then the default is sgd.sampling.
func (c Config) Schemes(n int) SamplingList {
	if len(c.Ensemble.Sampling) > 0 {
		return c.Ensemble.Sampling
	}
	if n > 0 && analysis.EpochsSpanned(n, c.Ensemble.Batch, c.Ensemble.Steps) > 1 {
		return SamplingList{string(data.WithReplacement), string(data.WithoutReplacement)}
	}
	return SamplingList{c.SGD.Sampling}
}

// Ensembles is the ensembles the experiment runs on a training set of n
// examples (n < 1: not known yet, see Schemes), in order: for each batch
// size, each learning rate, each scheme. They are named lrETA-bB, with
// -with or -without appended when there are several schemes.
func (c Config) Ensembles(n int) []train.EnsembleConfig {
	var out []train.EnsembleConfig
	batches := c.Ensemble.Batches
	if len(batches) == 0 {
		batches = []int{c.Ensemble.Batch}
	}
	schemes := c.Schemes(n)
	for _, b := range batches {
		for _, eta := range c.Ensemble.LR {
			for _, s := range schemes {
				out = append(out, train.EnsembleConfig{
					Name: SchemeName(fmt.Sprintf("lr%g-b%d", eta, b), s, len(schemes)), Replicas: c.Ensemble.Replicas, Steps: c.Ensemble.Steps,
					LR: eta, Batch: b, Sampling: s, LogEvery: c.Ensemble.LogEvery,
					CheckpointEvery: max(1, c.Ensemble.Steps/10), CheckpointAfter: train.DefaultCheckpointAfter, Seed: c.Seed,
					Paired: Paired(s, len(schemes)),
				})
			}
		}
	}
	return out
}

// SurveyOptions is the survey's settings for the ensembles on a training
// set of n examples: the noise is measured at the ensemble batch and under
// the survey scheme (the training run's when the ensembles use it, else
// their first), and the flat rule uses the largest learning rate, the
// strictest.
func (c Config) SurveyOptions(n int) probe.SurveyOptions {
	h := c.Hessian
	return probe.SurveyOptions{
		EvalExamples: h.EvalExamples, Top: h.Top, Bottom: h.Bottom, Bulk: h.Bulk, Tol: h.Tol,
		DensityStarts: h.DensityStarts, DensitySteps: h.DensitySteps, TraceSamples: h.TraceSamples,
		NoiseBatches: h.NoiseBatches, BatchSize: c.Ensemble.Batch, Sampling: data.Sampling(surveySampling(c.Schemes(n), c.SGD.Sampling)),
		FDStep: h.FDStep, Seed: h.Seed,
		Dense: h.Dense, DenseByProducts: h.DenseByProducts, Flat: h.Flat, FlatHVPs: h.FlatHVPs, Products: probe.Products(h.Products), Nulls: h.Nulls, TopAbs: h.TopAbs, Smallest: h.Smallest, NoiseOnEval: h.NoiseOnEval,
		Window: probe.Window{LR: slices.Max(c.Ensemble.LR), Steps: c.Ensemble.Steps, Threshold: h.FlatThreshold},
	}
}

// surveySampling is the scheme the survey measures c and s2 under: the
// training run's when the ensembles use it, else the first ensemble
// scheme. The report converts c to each ensemble's scheme.
func surveySampling(schemes SamplingList, training string) string {
	if slices.Contains(schemes, training) {
		return training
	}
	if len(schemes) > 0 {
		return schemes[0]
	}
	return training
}

// SamplingList is ensemble.sampling: one scheme (`with`), a list
// (`[with, without]`) or a comma-separated string (`with,without`). With
// more than one, every learning rate gets one ensemble per scheme, from the
// same reference and directions, with common random numbers.
type SamplingList []string

// UnmarshalYAML accepts a scheme, a list of schemes or a comma-separated
// string of them.
func (s *SamplingList) UnmarshalYAML(n *yaml.Node) error {
	var one string
	if n.Kind == yaml.ScalarNode && n.Decode(&one) == nil {
		l, err := ParseSamplingList(one)
		*s = l
		return err
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		return fmt.Errorf("ensemble sampling: want with, without or a list of them")
	}
	l, err := ParseSamplingList(strings.Join(many, ","))
	*s = l
	return err
}

// ParseSamplingList parses "with", "without" or "with,without", refusing
// unknown and repeated schemes.
func ParseSamplingList(v string) (SamplingList, error) {
	var out SamplingList
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if _, err := data.ParseSampling(f); err != nil {
			return nil, err
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("sampling %q listed twice", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// SchemeName is the ensemble name base for scheme s of a set of schemes:
// the scheme is appended only when the ensembles run under several, so
// single-scheme names (and the runs that have them) stay as they were.
func SchemeName(base, s string, schemes int) string {
	if schemes > 1 {
		return base + "-" + s
	}
	return base
}

// Paired reports whether the ensemble of scheme s in a set of schemes
// shares its random numbers with the with-replacement one (common random
// numbers): the without-replacement ensembles of a multi-scheme set.
func Paired(s string, schemes int) bool {
	return schemes > 1 && s == string(data.WithoutReplacement)
}

// SchemesNote says which of the ensembles ens the paper's theory describes
// when they span more than one epoch of n examples ("" when none does).
func SchemesNote(ens []train.EnsembleConfig, n int) string {
	var with, without []string
	epochs := 0.0
	for _, c := range ens {
		epochs = max(epochs, analysis.EpochsSpanned(n, c.Batch, c.Steps))
		if c.Sampling == string(data.WithReplacement) {
			with = append(with, c.Name)
		} else {
			without = append(without, c.Name)
		}
	}
	if epochs <= 1 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  the ensembles span %.3g epochs of %d examples: ", epochs, n)
	if len(with) > 0 {
		fmt.Fprintf(&b, "the paper's theory (THEORY.md sections 2-3, eta^2 c t along flat directions) describes the with-replacement ensembles (%s)", strings.Join(with, ", "))
	} else {
		b.WriteString("the paper's theory (THEORY.md sections 2-3) describes sampling with replacement, which none of these ensembles uses")
	}
	if len(without) > 0 {
		fmt.Fprintf(&b, "; under epoch reshuffling (%s) it holds only within a fraction of an epoch: the first-order prediction there is the bridge of section 9 and the long-time growth is measured, not predicted", strings.Join(without, ", "))
	}
	return b.String()
}
