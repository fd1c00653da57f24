package models

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/sgdyn/sgdyn/data"
)

// opsCases are CNN configurations and batches on which ops must equal plain.
func opsCases() []testCase {
	r := randomData{rand.New(rand.NewPCG(5, 6))}
	img := Shape{Image: []int{3, 16, 16}, Classes: 10}
	cnn := CNNConfig{Width: 3, Hidden: 8}
	return []testCase{
		{"small", Config{Kind: "cnn", CNN: cnn}, img, &data.Batch{N: 5, X: r.normals(5 * 3 * 256), Labels: r.ints(5, 10)}},
		// Chunks of 4, 4 and 2, each a graph of its own.
		{"chunked", Config{Kind: "cnn", CNN: cnn, Chunk: 4}, img, &data.Batch{N: 10, X: r.normals(10 * 3 * 256), Labels: r.ints(10, 10)}},
		{"rect", Config{Kind: "cnn", CNN: CNNConfig{Width: 2, Hidden: 5}}, Shape{Image: []int{2, 8, 16}, Classes: 3},
			&data.Batch{N: 4, X: r.normals(4 * 2 * 128), Labels: r.ints(4, 3)}},
	}
}

// TestOpsMatchesPlain checks that impl ops computes the plain graph's loss,
// gradient and Eval (see matchesPlain). The plain reference runs the whole
// batch at once, so the chunked case also checks that ops chunks exactly.
func TestOpsMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, c := range opsCases() {
		for _, dt := range []struct {
			dtype string
			tol   float64
		}{{"float64", 1e-9}, {"float32", 1e-4}} {
			t.Run(c.name+"/"+dt.dtype, func(t *testing.T) { matchesPlain(t, c, "ops", dt.dtype, dt.tol, rng) })
		}
	}
}

// worstIndex is where a and b differ most.
func worstIndex(a, b []float64) int {
	worst := 0
	for i := range a {
		if math.Abs(a[i]-b[i]) > math.Abs(a[worst]-b[worst]) {
			worst = i
		}
	}
	return worst
}

// TestOpsConfig checks that impl ops is accepted for the CNN and the
// transformer and refused, with an error naming it, for the other kinds.
func TestOpsConfig(t *testing.T) {
	if _, err := New(Config{Kind: "cnn", Impl: "ops", CNN: CNNConfig{Width: 2, Hidden: 3}}, Shape{Image: []int{3, 8, 8}, Classes: 2}, 1); err != nil {
		t.Errorf("cnn with impl ops: %v", err)
	}
	if _, err := New(Config{Kind: "transformer", Impl: "ops", Transformer: TransformerConfig{Layers: 1, Width: 4, Heads: 2, Context: 3}}, Shape{Vocab: 4}, 1); err != nil {
		t.Errorf("transformer with impl ops: %v", err)
	}
	for _, kind := range []string{"mlp", "linreg"} {
		err := Config{Kind: kind, Impl: "ops"}.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), "impl ops") {
			t.Errorf("%s with impl ops: Validate gave %v, want an error about impl ops", kind, err)
		}
	}
	if _, err := New(Config{Kind: "mlp", Impl: "ops"}, Shape{Inputs: 3, Classes: 2}, 1); err == nil {
		t.Error("mlp with impl ops succeeded, want an error")
	}
}

// TestOpsStepAllocations checks that, once warm, a training step of the ops
// CNN allocates far less than its activations and gradients: the custom
// ops reuse their buffers, and only Gorgonia's machine allocates.
func TestOpsStepAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count needs a few full steps, without the race detector")
	}
	// Each goroutine an op starts allocates a little: pin their number.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const n = 32
	r := randomData{rand.New(rand.NewPCG(2, 3))}
	b := &data.Batch{N: n, X: r.normals(n * 3 * 32 * 32), Labels: r.ints(n, 10)}
	cfg := Config{Kind: "cnn", Impl: "ops"}
	m, err := New(cfg, Shape{Image: []int{3, 32, 32}, Classes: 10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// What remains is the tape machine's instructions, its per-run
	// goroutine and channels and gemm's pooled scratch, ~9 KB here (~30 KB
	// with Gorgonia's own loss nodes). Every buffer an op reuses is larger
	// than the limit except the biases', the output layer's, the loss's
	// and the first stage's weight gradient: re-allocating any of the
	// others on every step fails.
	checkWarmStepAllocations(t, m, b, 24<<10)
}

// checkWarmStepAllocations fails t if m allocates more than limit bytes
// per gradient step on b once warm (two steps in), averaged over five.
func checkWarmStepAllocations(t *testing.T, m Model, b *data.Batch, limit uint64) {
	t.Helper()
	g := make([]float64, m.NumParams())
	step := func() {
		if _, err := m.Grad(b, g); err != nil {
			t.Fatal(err)
		}
	}
	step()
	step()
	const steps = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range steps {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	t.Logf("%d bytes per step (limit %d)", perStep, limit)
	if perStep > limit {
		t.Errorf("a warm step allocates %d bytes, want < %d", perStep, limit)
	}
}
