package gop

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// The constructors of the ops models' graphs are built of. Those of the
// CNN's stages and of models.Graph's take the graph's element type dt
// (tensor.Float32 or tensor.Float64); those of the transformer's stages are
// generic in it. Each op owns its buffers: a graph needs an op of its own
// per use.

// NewConvPool returns the forward op of a conv stage: a 3x3 convolution
// (stride 1, padding 1) of x (n, cin, h, w) with weight (cout, cin, 3, 3),
// bias, ReLU and 2x2 max-pooling, to (n, cout, h/2, w/2), or to (n,
// cout*h/2*w/2) if flat. Its operands are x, weight and bias; without
// needDX, x has no gradient. It runs on parts goroutines (ConvPoolParts).
func NewConvPool(dt tensor.Dtype, name string, n, cin, cout, h, w int, needDX, flat bool, parts int) G.Op {
	if dt == tensor.Float32 {
		return convPoolOp[float32]{newConvPool[float32](name, n, cin, cout, h, w, needDX, flat, parts)}
	}
	return convPoolOp[float64]{newConvPool[float64](name, n, cin, cout, h, w, needDX, flat, parts)}
}

// NewDense returns the op of a dense layer y = x weight + bias, x (m, in)
// and weight (in, out), followed by a ReLU if relu. Its operands are x,
// weight and, if bias, the bias (out).
func NewDense(dt tensor.Dtype, name string, m, in, out int, relu, bias bool) G.Op {
	if dt == tensor.Float32 {
		d := newDenseLayer[float32](name, m, in, out, relu)
		d.noBias = !bias
		return denseOp[float32]{d}
	}
	d := newDenseLayer[float64](name, m, in, out, relu)
	d.noBias = !bias
	return denseOp[float64]{d}
}

// NewCrossEntropy returns the op of the mean softmax cross-entropy of the
// m rows of logits (m, k) against one-hot targets (m, k), its operands.
func NewCrossEntropy(dt tensor.Dtype, name string, m, k int) G.Op {
	if dt == tensor.Float32 {
		return xentOp[float32]{newXentStage[float32](name, m, k)}
	}
	return xentOp[float64]{newXentStage[float64](name, m, k)}
}

// NewAttention returns the op of multi-head causal attention of q, k and v
// (n*t, d), its operands, n sequences of t positions and heads heads, to
// (n*t, d), on parts goroutines (AttentionParts).
func NewAttention(dt tensor.Dtype, name string, n, t, heads, d, parts int) G.Op {
	if dt == tensor.Float32 {
		return attnOp[float32]{newAttnStage[float32](name, n, t, heads, d, parts)}
	}
	return attnOp[float64]{newAttnStage[float64](name, n, t, heads, d, parts)}
}

// NewEmbed returns the op of a transformer's embedding: the one-hot tokens
// (m, vocab) times the token embedding (vocab, d) plus the position
// embedding (t, d) of each row's position in its sequence of t, its three
// operands, to (m, d).
func NewEmbed[T kern.Float](m, t, vocab, d int) G.Op {
	return embedOp[T]{newEmbedStage[T](m, t, vocab, d)}
}

// NewBlock returns the op of one pre-LayerNorm transformer block of n
// sequences of t positions, width d, heads heads and MLP width hidden,
// with biases in its linears if bias and the exact erf GELU if erf (else
// the tanh approximation), on parts goroutines (BlockParts). Its operands
// are x (n*t, d) and the block's parameters in the order of blkLn1G...
// blkMproj (each linear's bias after its weight, with bias).
func NewBlock[T kern.Float](name string, n, t, d, heads, hidden int, bias, erf bool, parts int) G.Op {
	return blockOp[T]{newBlockStage[T](name, n, t, d, heads, hidden, bias, erf, parts)}
}

// NewHead returns the ops of a transformer's head of m rows of width d and
// k classes, on parts goroutines (HeadParts): loss, whose operands are x
// (m, d), the final LayerNorm's gain and bias, the output weight (d, k),
// its bias if bias, and the one-hot targets (m, k), computes the final
// LayerNorm, the logits and their mean softmax cross-entropy; logits,
// applied to loss's node, returns the logits that loss computed.
func NewHead[T kern.Float](name string, m, d, k int, bias bool, parts int) (loss, logits G.Op) {
	s := newHeadStage[T](name, m, d, k, bias, parts)
	return headOp[T]{s}, headLogitsOp[T]{s}
}
