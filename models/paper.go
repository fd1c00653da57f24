package models

// The paper's two network models (../shared/paper-protocols.md, "Models"),
// as configs; the data give the shapes (36 inputs and 10 classes, a
// vocabulary of 25).

// MLP386Config is the paper's MNIST MLP: 36 -> Linear(8) -> SiLU ->
// Linear(10), PyTorch's Linear init; 386 parameters on 6x6 inputs.
func MLP386Config() Config {
	return Config{Kind: "mlp", MLP: MLPConfig{Hidden: []int{8}, Activation: "silu", Init: "torch"}}
}

// NanoGPT960Config is the paper's character transformer: width 8, 1 head,
// 1 layer, context 16, MLP ratio 1, no biases but LayerNorm's, exact GELU,
// untied head without bias, N(0, 0.02) init; 960 parameters on 25 symbols.
func NanoGPT960Config() Config {
	no := false
	return Config{Kind: "transformer", Transformer: TransformerConfig{Layers: 1, Width: 8, Heads: 1, Context: 16,
		Bias: &no, HeadBias: &no, MLPRatio: 1, GELU: "erf", Init: "normal0.02"}}
}
