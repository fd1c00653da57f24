package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/models"
)

// Config is everything that determines a training run. Two runs with equal
// Configs produce bit-identical parameters and metrics.
type Config struct {
	Seed  uint64        `yaml:"seed" json:"seed"`
	Model models.Config `yaml:"model" json:"model"`
	Data  DataConfig    `yaml:"data" json:"data"`
	SGD   SGDConfig     `yaml:"sgd" json:"sgd"`
}

// DataConfig says where the examples come from.
type DataConfig struct {
	// Kind is cifar10, mnist, text, regression (CSV x1..xd,y) or
	// classification (CSV x1..xd,label). Default: cifar10 for cnn, text for
	// transformer, classification for mlp, regression for linreg.
	Kind string `yaml:"kind" json:"kind"`
	// Path is the CIFAR-10 or MNIST directory, or the text or CSV file.
	// Empty for text means the embedded tinyshakespeare corpus.
	Path string `yaml:"path" json:"path"`
	// ValFraction is the share of a text or CSV file held out for
	// validation, taken from its end. Default 0.1; CIFAR-10 and MNIST use
	// their test sets. For CSV and synthetic tables 0 means no split:
	// training uses every row, and the evaluations measure the training rows.
	ValFraction float64 `yaml:"val_fraction" json:"val_fraction"`
	// Limit keeps only the first Limit training examples (0: all).
	Limit int `yaml:"limit" json:"limit"`
	// SkipChecksums skips CIFAR-10's SHA-1 and MNIST's MD5 and SHA-256
	// verification (sizes and headers are still checked).
	SkipChecksums bool `yaml:"skip_checksums" json:"skip_checksums"`
	// Normalize (mnist) standardises pixels with the training-set mean and
	// standard deviation; without it they are byte/255, as in the paper.
	Normalize bool `yaml:"normalize,omitempty" json:"normalize,omitempty"`
	// Pool (mnist) average-pools each image to Pool x Pool with PyTorch's
	// adaptive windows (0: the 28 x 28 pixels); the paper uses 6.
	Pool int `yaml:"pool,omitempty" json:"pool,omitempty"`
	// Text prepares a text corpus (kind text).
	Text TextConfig `yaml:"text,omitempty" json:"text,omitzero"`
	// Synthetic describes generated regression data (kind synthetic).
	Synthetic SyntheticConfig `yaml:"synthetic,omitempty" json:"synthetic,omitzero"`
}

// TextConfig prepares a text corpus before it is windowed (see
// data.PrepareText and data.SplitWindows).
type TextConfig struct {
	// Preprocess is none (default) or paper: lower-case, and every
	// character other than a-y and space becomes a space.
	Preprocess string `yaml:"preprocess,omitempty" json:"preprocess,omitempty"`
	// LimitChars keeps only the first LimitChars characters (0: all).
	LimitChars int `yaml:"limit_chars,omitempty" json:"limit_chars,omitempty"`
	// Split is chars (default: split the text by position, then window each
	// part, so no validation window shares a character with training) or
	// windows (the paper's: window the whole text with stride 1, then split
	// the windows by position).
	Split string `yaml:"split,omitempty" json:"split,omitempty"`
}

// Text split modes of TextConfig.Split.
const (
	TextSplitChars   = "chars"
	TextSplitWindows = "windows"
)

// SyntheticConfig is generated regression data (see data.SyntheticRegression),
// seeded by the run's seed.
type SyntheticConfig struct {
	N      int       `yaml:"n" json:"n"`           // examples, default 1000
	D      int       `yaml:"d" json:"d"`           // features, default 4
	Noise  float64   `yaml:"noise" json:"noise"`   // target noise standard deviation, default 0.5
	Scales []float64 `yaml:"scales" json:"scales"` // feature standard deviations (cycled), default [1.5, 1, 0.6, 0.3]
}

// SGDConfig is plain SGD: constant learning rate, no momentum, no weight
// decay, no clipping. Those three keys exist only to be refused with a
// reason, since each would change the dynamics sgdyn measures.
type SGDConfig struct {
	LR       float64 `yaml:"lr" json:"lr"`
	Batch    int     `yaml:"batch" json:"batch"`
	Steps    int64   `yaml:"steps" json:"steps"`
	Sampling string  `yaml:"sampling" json:"sampling"` // with or without replacement (default without)

	EvalEvery       int64 `yaml:"eval_every" json:"eval_every"`             // default: steps/20
	EvalExamples    int   `yaml:"eval_examples" json:"eval_examples"`       // periodic evaluation subset, default 2048
	CheckpointEvery int64 `yaml:"checkpoint_every" json:"checkpoint_every"` // default: steps/10
	KeepCheckpoints int   `yaml:"keep_checkpoints" json:"keep_checkpoints"` // newest kept besides the final one, default 3

	Momentum    float64 `yaml:"momentum,omitempty" json:"momentum,omitempty"`
	WeightDecay float64 `yaml:"weight_decay,omitempty" json:"weight_decay,omitempty"`
	GradClip    float64 `yaml:"grad_clip,omitempty" json:"grad_clip,omitempty"`
}

// DefaultConfig is the configuration for a model kind before any user
// setting: sizes that train in minutes on two cores.
func DefaultConfig(kind string) Config {
	// ValFraction is set here, not in WithDefaults, because 0 is a valid
	// setting (no split) that a config file may ask for.
	c := Config{Seed: 1, Model: models.Config{Kind: kind}, Data: DataConfig{ValFraction: 0.1}}
	switch kind {
	case "cnn":
		c.SGD = SGDConfig{LR: 0.05, Batch: 128, Steps: 1950} // 5 epochs of 50,000
	case "transformer":
		c.SGD = SGDConfig{LR: 0.5, Batch: 32, Steps: 6000} // reaches validation loss 1.88 nats/char on tinyshakespeare
	case "mlp":
		c.SGD = SGDConfig{LR: 0.1, Batch: 32, Steps: 2000}
	case "linreg":
		c.SGD = SGDConfig{LR: 0.01, Batch: 32, Steps: 2000}
	}
	return c
}

// WithDefaults fills every unset field with its documented default.
func (c Config) WithDefaults() Config {
	c.Model = c.Model.WithDefaults()
	if c.Data.Kind == "" {
		c.Data.Kind = map[string]string{"cnn": "cifar10", "transformer": "text", "mlp": "classification", "linreg": "regression"}[c.Model.Kind]
	}
	if c.Data.Kind == "synthetic" {
		sy := &c.Data.Synthetic
		if sy.N == 0 {
			sy.N = 1000
		}
		if sy.D == 0 {
			sy.D = 4
		}
		if sy.Noise == 0 {
			sy.Noise = 0.5
		}
		if sy.Scales == nil {
			sy.Scales = []float64{1.5, 1, 0.6, 0.3}
		}
	} else {
		c.Data.Synthetic = SyntheticConfig{}
	}
	if c.Data.Kind == "text" {
		if c.Data.Text.Preprocess == "" {
			c.Data.Text.Preprocess = data.PreprocessNone
		}
		if c.Data.Text.Split == "" {
			c.Data.Text.Split = TextSplitChars
		}
	}
	s := &c.SGD
	if s.Sampling == "" {
		s.Sampling = string(data.WithoutReplacement)
	}
	if s.EvalEvery == 0 {
		s.EvalEvery = max(1, s.Steps/20)
	}
	if s.EvalExamples == 0 {
		s.EvalExamples = 2048
	}
	if s.CheckpointEvery == 0 {
		s.CheckpointEvery = max(1, s.Steps/10)
	}
	if s.KeepCheckpoints == 0 {
		s.KeepCheckpoints = 3
	}
	return c
}

// Validate reports the first invalid setting, in words a user can act on.
func (c Config) Validate() error {
	if err := c.Model.Validate(); err != nil {
		return err
	}
	switch c.Data.Kind {
	case "cifar10", "mnist", "text", "regression", "classification", "synthetic":
	default:
		return fmt.Errorf("data kind %q: want cifar10, mnist, text, regression, classification or synthetic", c.Data.Kind)
	}
	if err := c.Data.validateKindKeys(); err != nil {
		return err
	}
	if c.Data.Kind != "text" && c.Data.Kind != "synthetic" && c.Data.Path == "" {
		return fmt.Errorf("data path not set: %s data has no embedded default", c.Data.Kind)
	}
	switch v := c.Data.ValFraction; c.Data.Kind {
	case "text":
		if !(v > 0 && v < 1) {
			return fmt.Errorf("data val_fraction %g: must be between 0 and 1 for text", v)
		}
	case "regression", "classification", "synthetic":
		if !(v >= 0 && v < 1) {
			return fmt.Errorf("data val_fraction %g: must be at least 0 (0: no validation split) and below 1", v)
		}
	}
	if c.Data.Limit < 0 {
		return fmt.Errorf("data limit %d: must not be negative", c.Data.Limit)
	}
	s := c.SGD
	switch {
	case !(s.LR > 0) || math.IsInf(s.LR, 0):
		return fmt.Errorf("learning rate %g: must be positive and finite", s.LR)
	case s.Batch < 1:
		return fmt.Errorf("batch size %d: must be positive", s.Batch)
	case s.Steps < 1:
		return fmt.Errorf("steps %d: must be positive", s.Steps)
	case s.EvalEvery < 1 || s.CheckpointEvery < 1 || s.EvalExamples < 1 || s.KeepCheckpoints < 1:
		return fmt.Errorf("eval_every, eval_examples, checkpoint_every and keep_checkpoints must be positive")
	case s.Momentum != 0:
		return fmt.Errorf("momentum %g refused: sgdyn studies plain SGD, and momentum changes its dynamics", s.Momentum)
	case s.WeightDecay != 0:
		return fmt.Errorf("weight_decay %g refused: sgdyn studies plain SGD on the loss itself; add a penalty to the loss instead", s.WeightDecay)
	case s.GradClip != 0:
		return fmt.Errorf("grad_clip %g refused: clipping changes the dynamics sgdyn measures", s.GradClip)
	}
	if _, err := data.ParseSampling(s.Sampling); err != nil {
		return err
	}
	return nil
}

// validateKindKeys refuses the data keys that the data kind does not use,
// so that a key set for another kind never silently does nothing.
func (d DataConfig) validateKindKeys() error {
	if d.Kind != "mnist" {
		switch {
		case d.Normalize:
			return fmt.Errorf("data normalize is for kind mnist, not %s", d.Kind)
		case d.Pool != 0:
			return fmt.Errorf("data pool is for kind mnist, not %s", d.Kind)
		}
	} else if d.Pool < 0 || d.Pool > data.MNISTSide {
		return fmt.Errorf("data pool %d: want 0 (no pooling) or an output size from 1 to %d", d.Pool, data.MNISTSide)
	}
	t := d.Text
	if d.Kind != "text" {
		if t != (TextConfig{}) {
			return fmt.Errorf("data text keys are for kind text, not %s", d.Kind)
		}
		return nil
	}
	switch t.Preprocess {
	case "", data.PreprocessNone, data.PreprocessPaper:
	default:
		return fmt.Errorf("data text.preprocess %q: want %s or %s", t.Preprocess, data.PreprocessNone, data.PreprocessPaper)
	}
	switch t.Split {
	case "", TextSplitChars, TextSplitWindows:
	default:
		return fmt.Errorf("data text.split %q: want %s or %s", t.Split, TextSplitChars, TextSplitWindows)
	}
	if t.LimitChars < 0 {
		return fmt.Errorf("data text.limit_chars %d: must not be negative", t.LimitChars)
	}
	return nil
}

// LoadConfig reads a YAML config. Unknown keys are errors, so a typo never
// silently falls back to a default.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes YAML strictly onto the defaults of its model kind.
func ParseConfig(b []byte) (Config, error) {
	var probe struct {
		Model struct {
			Kind string `yaml:"kind"`
		} `yaml:"model"`
	}
	_ = yaml.Unmarshal(b, &probe) // errors are reported by the strict pass below
	c := DefaultConfig(probe.Model.Kind)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, oneLine(err)
	}
	return c, nil
}

// WithAbsDataPath returns c with a relative data path made absolute, so the
// config a run records finds its data from any working directory.
func (c Config) WithAbsDataPath() (Config, error) {
	if c.Data.Path == "" || filepath.IsAbs(c.Data.Path) {
		return c, nil
	}
	abs, err := filepath.Abs(c.Data.Path)
	if err != nil {
		return c, fmt.Errorf("data path %s: %w", c.Data.Path, err)
	}
	c.Data.Path = abs
	return c, nil
}

// WriteConfig records c, with its defaults, as dir's config.yaml, which
// marks dir as a run directory; Train writes the same file.
func WriteConfig(dir string, c Config) error {
	y, err := encodeConfig(c.WithDefaults())
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, ConfigFile), y, 0o644)
}

// MarshalYAML-free encoding: the resolved config is written with yaml.v3.
func encodeConfig(c Config) ([]byte, error) {
	return yaml.Marshal(c)
}

// oneLine folds yaml.v3's multi-line type errors into one line.
func oneLine(err error) error {
	return errors.New(string(bytes.ReplaceAll([]byte(err.Error()), []byte("\n "), []byte(";"))))
}
