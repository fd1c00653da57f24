package models

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// opsTransformerCases are transformer configurations and batches on which
// ops must equal plain.
func opsTransformerCases() []testCase {
	r := randomData{rand.New(rand.NewPCG(25, 26))}
	tr := func(layers, width, heads, ctx int) TransformerConfig {
		return TransformerConfig{Layers: layers, Width: width, Heads: heads, Context: ctx}
	}
	batch := func(n, ctx, vocab int) *data.Batch {
		return &data.Batch{N: n, Tokens: r.ints(n*ctx, vocab), Labels: r.ints(n*ctx, vocab)}
	}
	return []testCase{
		{"tiny", Config{Kind: "transformer", Transformer: tr(1, 4, 1, 3)}, Shape{Vocab: 5}, batch(2, 3, 5)},
		{"heads", Config{Kind: "transformer", Transformer: tr(2, 8, 2, 5)}, Shape{Vocab: 6}, batch(3, 5, 6)},
		// Chunks of 3, 3 and 1, each a graph of its own.
		{"chunked", Config{Kind: "transformer", Transformer: tr(2, 12, 3, 6), Chunk: 3}, Shape{Vocab: 7}, batch(7, 6, 7)},
		// Large enough that the dense, attention and GELU ops split their
		// work across goroutines (with GOMAXPROCS >= 2).
		{"split", Config{Kind: "transformer", Transformer: tr(1, 64, 4, 64)}, Shape{Vocab: 9}, batch(8, 64, 9)},
		// The block op's other options: no biases (its operand list
		// shrinks) and the exact GELU.
		{"nobias-erf", Config{Kind: "transformer", Transformer: TransformerConfig{Layers: 2, Width: 8, Heads: 2, Context: 4,
			Bias: ptr(false), HeadBias: ptr(false), GELU: "erf", MLPRatio: 2}}, Shape{Vocab: 5}, batch(3, 4, 5)},
	}
}

// TestOpsTransformerMatchesPlain checks that the ops transformer computes
// the plain graph's loss, gradient and Eval (see matchesPlain).
func TestOpsTransformerMatchesPlain(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	rng := rand.New(rand.NewPCG(27, 28))
	for _, c := range opsTransformerCases() {
		for _, dt := range []struct {
			dtype string
			tol   float64
		}{{"float64", 1e-9}, {"float32", 1e-4}} {
			t.Run(c.name+"/"+dt.dtype, func(t *testing.T) { matchesPlain(t, c, "ops", dt.dtype, dt.tol, rng) })
		}
	}
}

// TestOpsTransformerStepAllocations checks that, once warm, a training
// step of the ops transformer allocates far less than its activations and
// gradients: the custom ops reuse their buffers, and what remains is
// Gorgonia's machine.
func TestOpsTransformerStepAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count needs a few full steps, without the race detector")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const n, ctx, vocab = 8, 32, 20
	cfg := Config{Kind: "transformer", Impl: "ops", Transformer: TransformerConfig{Layers: 2, Width: 32, Heads: 4, Context: ctx}}
	r := randomData{rand.New(rand.NewPCG(29, 30))}
	b := &data.Batch{N: n, Tokens: r.ints(n*ctx, vocab), Labels: r.ints(n*ctx, vocab)}
	m, err := New(cfg, Shape{Vocab: vocab}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Measured ~13 KB here (float32, m = 256 rows of width d = 32), the
	// tape machine's instructions (it was ~42 KB with an op per layer and
	// Gorgonia's residual Add nodes). Re-allocating any op-owned buffer of
	// (m, d) (32 KB) or larger on every step fails.
	checkWarmStepAllocations(t, m, b, 24<<10)
}
