// Package kern holds the numeric kernels of sgdyn's models: the forward
// and backward passes of the stages the hand-written ("fused") models and
// the Gorgonia custom ops are built from.
//
// It covers dense layers (DenseForward, DenseBackward, SumRows), the 3x3
// convolution as one product per image (Im2Col3x3, Col2Im3x3) with the
// fused bias, ReLU and 2x2 max-pool and its pattern bytes (BiasReLUPool2,
// BiasPool2Frozen, BiasReLUPool2Grad), LayerNorm (LayerNormForward,
// LayerNormBackward), the softmax cross-entropy and the causal attention
// softmax (SoftmaxCrossEntropy, CausalSoftmax, CausalSoftmaxGrad), the
// transformer's multi-head causal attention over packed q|k|v rows
// (CausalAttention, CausalAttentionBackward), the activations (ReLU masks,
// tanh, the tanh and the exact erf GELU, SiLU), a vectorised exponential
// (ExpSum) and small row and matrix helpers (Add, Mul, Transpose).
//
// Every kernel is generic over float32 and float64 (Float). On amd64 with
// AVX2 and FMA the hot loops run in assembly (math_amd64.s for float32,
// math64_amd64.s for float64; gelu32_amd64.s, the float32 exact GELU;
// softmax_amd64.s, the cross-entropy's last pass; attention_amd64.s, the
// float32 products of attention heads of width 8), each tested against the
// portable Go code it replaces, which runs elsewhere; GODEBUG=cpu.avx2=off forces the portable
// paths on amd64 too. Matrix products go through internal/gemm.
//
// The kernels write into slices the caller owns: they allocate nothing
// (internal/gemm's packing scratch is pooled, so warm products do not
// either), start no goroutines and keep no state between calls, so callers
// may run them on disjoint data in parallel.
package kern

// Float is the element type of every kernel.
type Float interface{ ~float32 | ~float64 }
