// Package models defines the networks sgdyn trains — a CIFAR-10 CNN, a causal
// character transformer, an MLP and linear regression — behind one
// flat-parameter interface. The CNN and the transformer run by default as
// Gorgonia graphs whose stages are custom Gorgonia ops over hand-written
// kernels ("ops", see ops.go); every network also exists as those kernels
// alone ("fused", see fused.go: the default of the MLP and linear
// regression, and what the curvature probes use, since it holds the CNN's
// ReLU and max-pool pattern fixed) and as a plain Gorgonia graph ("plain",
// the reference the others are tested against).
//
// Probes and ensembles see a model only as a point w in R^P: they read and
// write the parameters as one []float64 and ask for the gradient of the mean
// loss over any batch. How the model is built in Gorgonia stays in here.
//
// A network of one's own, written as a Gorgonia graph, becomes a Model
// through FromGraph (see GraphNet and Graph): its ReLU and max-pool ops
// record their pattern, so it is Piecewise like the built-in CNN.
package models

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
)

// Model is a differentiable loss over a flat parameter vector.
//
// A Model is not safe for concurrent use: each replica of an ensemble owns
// its own Model.
type Model interface {
	// NumParams is P, the length of the flat parameter vector.
	NumParams() int
	// Tensors lists the parameter tensors in flat-vector order.
	Tensors() []TensorInfo
	// Params copies the current parameters into dst (len P).
	Params(dst []float64)
	// SetParams replaces the parameters with src (len P), rounding to the
	// model's float type.
	SetParams(src []float64)
	// Grad returns the mean loss over b and writes its gradient into grad
	// (len P). Large batches are processed in chunks; the result is the
	// exact mean over all of b.
	Grad(b *data.Batch, grad []float64) (float64, error)
	// Eval returns the mean loss over b and, for classifiers, the number of
	// correct predictions.
	Eval(b *data.Batch) (Eval, error)
	// DType is "float32" or "float64".
	DType() string
}

// DenseHessianer is a model that builds the Hessian of its mean loss over a
// batch in one sweep, with the same central differences as P products
// (probe.Hessian on the coordinate vectors) but a fraction of their work.
type DenseHessianer interface {
	Model
	// DenseHessian returns the Hessian at the current parameters of the
	// mean loss over b: column i is (g(w + step e_i) - g(w - step e_i)) /
	// (2 step). It also returns the largest |H_ij - H_ji| over the pairs it
	// measures both ways, before symmetrising. The work is split over
	// workers goroutines; done, if not nil, is called with the number of
	// columns' worth of work finished, never concurrently. Once ctx is
	// done it stops with ctx's error.
	DenseHessian(ctx context.Context, b *data.Batch, step float64, workers int, done func(cols int)) (*mat.SymDense, float64, error)
}

// Eval is the result of evaluating a model on a batch.
type Eval struct {
	Loss    float64 // mean loss per example (per token for text)
	Correct int     // correct argmax predictions (0 for regression)
	Count   int     // predictions scored (0 for regression)
}

// TensorInfo describes one parameter tensor's place in the flat vector.
type TensorInfo struct {
	Name   string
	Shape  []int
	Offset int // index of its first element in the flat vector
	Size   int
}

// Config selects and sizes a model. Dimensions that the data determine
// (input size, classes, vocabulary) come from Shape instead.
type Config struct {
	Kind        string            `yaml:"kind" json:"kind"`                     // cnn, transformer, mlp, linreg or custom
	Name        string            `yaml:"name,omitempty" json:"name,omitempty"` // kind custom: which one (KindCustom)
	DType       string            `yaml:"dtype" json:"dtype"`                   // float32 (default) or float64
	CNN         CNNConfig         `yaml:"cnn,omitempty" json:"cnn,omitzero"`
	Transformer TransformerConfig `yaml:"transformer,omitempty" json:"transformer,omitzero"`
	MLP         MLPConfig         `yaml:"mlp,omitempty" json:"mlp,omitzero"`
	// Chunk is the largest number of examples run through the graph at
	// once; bigger batches are split so memory stays bounded. 0 means 256.
	Chunk int `yaml:"chunk" json:"chunk"`
	// Impl selects how the network is computed. "ops" (cnn and
	// transformer; the CNN's default) runs a Gorgonia graph, differentiated
	// by Gorgonia, whose stages (a conv stage, a transformer block, the
	// transformer's head; dense layers) are custom ops over the fused
	// kernels (see ops.go); "fused" (the default of the other kinds, and
	// what the curvature probes use, since it holds the CNN's ReLU and
	// max-pool pattern fixed) runs hand-written forward and backward
	// kernels that reuse their buffers and use every core; "plain" runs
	// the straightforward Gorgonia graph, kept as the reference the others
	// are tested against. All compute the same function of the same
	// parameters.
	Impl string `yaml:"impl,omitempty" json:"impl,omitempty"`
}

// CNNConfig sizes the CIFAR-10 CNN: three 3x3 conv+ReLU+2x2-max-pool stages
// of Width, 2*Width and 4*Width channels, then a ReLU hidden layer of Hidden
// units and the 10-way output. No BatchNorm: it would make each example's
// loss depend on the rest of its batch.
type CNNConfig struct {
	Width  int `yaml:"width" json:"width"`   // default 16
	Hidden int `yaml:"hidden" json:"hidden"` // default 64
}

// TransformerConfig sizes the causal character transformer. The defaults
// of the options after Context give the original model; the paper's tiny
// NanoGPT sets bias and head_bias false, mlp_ratio 1, gelu erf and init
// normal0.02.
type TransformerConfig struct {
	Layers  int `yaml:"layers" json:"layers"`   // default 2
	Width   int `yaml:"width" json:"width"`     // model width d, default 64
	Heads   int `yaml:"heads" json:"heads"`     // default 4; must divide Width
	Context int `yaml:"context" json:"context"` // sequence length T, default 64
	// Bias gives the q, k, v and output projections of the attention and
	// the two MLP layers biases. Default true.
	Bias *bool `yaml:"bias,omitempty" json:"bias,omitempty"`
	// HeadBias gives the (untied) output head a bias. Default true.
	HeadBias *bool `yaml:"head_bias,omitempty" json:"head_bias,omitempty"`
	// MLPRatio is the MLP's hidden width in multiples of Width. Default 4.
	MLPRatio int `yaml:"mlp_ratio,omitempty" json:"mlp_ratio,omitempty"`
	// GELU is "tanh" (the tanh approximation, default) or "erf" (exact,
	// x Phi(x), PyTorch's nn.GELU()).
	GELU string `yaml:"gelu,omitempty" json:"gelu,omitempty"`
	// Init is "fanin" (default: linear weights N(0, 1/fan_in), the
	// residual projections' divided by sqrt(2 layers), embeddings N(0, 1))
	// or "normal0.02" (every linear and embedding weight N(0, 0.02^2)).
	// Biases start at 0, LayerNorm gains at 1 and shifts at 0 in both.
	Init string `yaml:"init,omitempty" json:"init,omitempty"`
}

// MLPConfig sizes the multi-layer perceptron.
type MLPConfig struct {
	Hidden     []int  `yaml:"hidden" json:"hidden"`         // default [64]
	Activation string `yaml:"activation" json:"activation"` // tanh (default), relu or silu (x sigmoid(x))
	// Init is "fanin" (default: weights N(0, 1/fan_in), biases 0) or
	// "torch" (PyTorch's nn.Linear default: weights and biases uniform on
	// [-1/sqrt(fan_in), 1/sqrt(fan_in)]).
	Init string `yaml:"init,omitempty" json:"init,omitempty"`
}

// HasBias reports whether the attention and MLP linears have biases.
func (t TransformerConfig) HasBias() bool { return t.Bias == nil || *t.Bias }

// HasHeadBias reports whether the output head has a bias.
func (t TransformerConfig) HasHeadBias() bool { return t.HeadBias == nil || *t.HeadBias }

// Shape is what the data set tells a model about its inputs and outputs.
type Shape struct {
	Inputs  int   // features per example (mlp, linreg)
	Image   []int // C, H, W (cnn)
	Classes int   // output classes (cnn, mlp)
	Vocab   int   // vocabulary size (transformer)
}

// WithDefaults returns c with every unset field of its kind at its
// documented default. The sections of other kinds are cleared, so a
// resolved config says only what the model uses.
func (c Config) WithDefaults() Config {
	if c.DType == "" {
		c.DType = "float32"
	}
	if c.Chunk == 0 {
		c.Chunk = 256
	}
	if c.Impl == "" && c.Kind != KindCustom {
		c.Impl = defaultImpl(c.Kind)
	}
	cnn, tr, mlp := c.CNN, c.Transformer, c.MLP
	c.CNN, c.Transformer, c.MLP = CNNConfig{}, TransformerConfig{}, MLPConfig{}
	switch c.Kind {
	case "cnn":
		c.CNN = cnn
		if c.CNN.Width == 0 {
			c.CNN.Width = 16
		}
		if c.CNN.Hidden == 0 {
			c.CNN.Hidden = 64
		}
	case "transformer":
		c.Transformer = tr
		t := &c.Transformer
		if t.Layers == 0 {
			t.Layers = 2
		}
		if t.Width == 0 {
			t.Width = 64
		}
		if t.Heads == 0 {
			t.Heads = 4
		}
		if t.Context == 0 {
			t.Context = 64
		}
		// Fresh pointers, so the resolved config shares nothing with c.
		t.Bias, t.HeadBias = ptr(t.HasBias()), ptr(t.HasHeadBias())
		if t.MLPRatio == 0 {
			t.MLPRatio = 4
		}
		if t.GELU == "" {
			t.GELU = "tanh"
		}
		if t.Init == "" {
			t.Init = "fanin"
		}
	case "mlp":
		c.MLP = mlp
		if c.MLP.Hidden == nil {
			c.MLP.Hidden = []int{64}
		}
		if c.MLP.Activation == "" {
			c.MLP.Activation = "tanh"
		}
		if c.MLP.Init == "" {
			c.MLP.Init = "fanin"
		}
	}
	return c
}

// Validate reports the first invalid setting in c (after defaults).
func (c Config) Validate() error {
	switch c.Kind {
	case "cnn", "transformer", "mlp", "linreg":
	case KindCustom:
		return c.validateCustom()
	case "":
		return fmt.Errorf("model kind not set (want cnn, transformer, mlp or linreg)")
	default:
		return fmt.Errorf("unknown model kind %q (want cnn, transformer, mlp or linreg)", c.Kind)
	}
	if c.Name != "" {
		return fmt.Errorf("model name %q is for kind custom, not %s", c.Name, c.Kind)
	}
	if c.DType != "float32" && c.DType != "float64" {
		return fmt.Errorf("model dtype %q: want float32 or float64", c.DType)
	}
	if c.Impl != "fused" && c.Impl != "plain" && c.Impl != "ops" {
		return fmt.Errorf("model impl %q: want fused, plain or ops", c.Impl)
	}
	if c.Impl == "ops" && c.Kind != "cnn" && c.Kind != "transformer" {
		return fmt.Errorf("model impl ops exists only for kinds cnn and transformer, not %s (use fused or plain)", c.Kind)
	}
	if c.Chunk < 1 {
		return fmt.Errorf("model chunk %d: must be positive", c.Chunk)
	}
	switch c.Kind {
	case "cnn":
		if c.CNN.Width < 1 || c.CNN.Hidden < 1 {
			return fmt.Errorf("cnn width %d and hidden %d must be positive", c.CNN.Width, c.CNN.Hidden)
		}
	case "transformer":
		t := c.Transformer
		if t.Layers < 1 || t.Width < 1 || t.Heads < 1 || t.Context < 1 {
			return fmt.Errorf("transformer layers, width, heads and context must be positive (got %d, %d, %d, %d)", t.Layers, t.Width, t.Heads, t.Context)
		}
		if t.Width%t.Heads != 0 {
			return fmt.Errorf("transformer width %d is not divisible by heads %d", t.Width, t.Heads)
		}
		if t.MLPRatio < 1 {
			return fmt.Errorf("transformer mlp_ratio %d: must be positive", t.MLPRatio)
		}
		if t.GELU != "tanh" && t.GELU != "erf" {
			return fmt.Errorf("transformer gelu %q: want tanh or erf", t.GELU)
		}
		if t.Init != "fanin" && t.Init != "normal0.02" {
			return fmt.Errorf("transformer init %q: want fanin or normal0.02", t.Init)
		}
	case "mlp":
		for _, h := range c.MLP.Hidden {
			if h < 1 {
				return fmt.Errorf("mlp hidden sizes %v must be positive", c.MLP.Hidden)
			}
		}
		switch c.MLP.Activation {
		case "tanh", "relu", "silu":
		default:
			return fmt.Errorf("mlp activation %q: want tanh, relu or silu", c.MLP.Activation)
		}
		if c.MLP.Init != "fanin" && c.MLP.Init != "torch" {
			return fmt.Errorf("mlp init %q: want fanin or torch", c.MLP.Init)
		}
	}
	return nil
}

// New builds the model c describes for data of the given shape, with
// parameters initialised from seed. Equal arguments give equal parameters.
func New(c Config, s Shape, seed uint64) (Model, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Kind == KindCustom {
		return nil, fmt.Errorf("model %q is a custom model (kind custom): only the Go program that defines it can build it", c.Name)
	}
	var a arch
	var err error
	switch c.Kind {
	case "cnn":
		a, err = newCNN(c.CNN, s)
	case "transformer":
		a, err = newTransformer(c.Transformer, s)
	case "mlp":
		a, err = newMLP(c.MLP, s)
	case "linreg":
		a, err = newLinReg(s)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Kind, err)
	}
	switch c.Impl {
	case "plain":
		return newGraphModel(a, c.DType, c.Chunk, seed)
	case "ops":
		return newOpsModel(a, c.DType, c.Chunk, seed)
	}
	if c.DType == "float32" {
		return newFused[float32](a, c.Chunk, seed), nil
	}
	return newFused[float64](a, c.Chunk, seed), nil
}

// newFused builds the fused implementation of a.
func newFused[T float](a arch, chunk int, seed uint64) Model {
	var net fusedNet[T]
	switch a := a.(type) {
	case *cnn:
		net = newFusedCNN[T](a)
	case *transformer:
		tr := newFusedTransformer[T](a)
		return &stagedTransformer[T]{fusedModel: newFusedModel[T](tr, a.params(), chunk, seed), net: tr}
	case *mlp:
		net = newFusedMLP[T](a)
	case *linReg:
		net = &fusedLinReg[T]{inputs: a.inputs}
	default:
		panic(fmt.Sprintf("models: no fused implementation of %T", a)) // a bug: every arch has one
	}
	return newFusedModel(net, a.params(), chunk, seed)
}

// KindCustom is the model kind of a network that a Go program builds
// itself rather than from the config (train.ModelFunc); New refuses it.
// Config.Name says which network it is: the run records it, so that a run
// of one network is never continued with another.
const KindCustom = "custom"

// validateCustom checks the settings a custom model records: its name and
// dtype, and the chunk its constructor receives.
func (c Config) validateCustom() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("model kind custom needs a name (model: {kind: custom, name: NAME})")
	case c.DType != "float32" && c.DType != "float64":
		return fmt.Errorf("model dtype %q: want float32 or float64", c.DType)
	case c.Impl != "":
		return fmt.Errorf("model impl %q: a custom model is computed by its own constructor; leave impl out", c.Impl)
	case c.Chunk < 1:
		return fmt.Errorf("model chunk %d: must be positive", c.Chunk)
	}
	return nil
}

func ptr[V any](v V) *V { return &v }
