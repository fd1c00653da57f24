package models

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The ops implementation ("impl: ops") stays inside Gorgonia: the network
// is an ordinary expression graph, differentiated by Gorgonia's symbolic
// Grad and run by its TapeMachine, but the stages Gorgonia computes slowly
// are custom Ops (Gorgonia's Op and SDOp interfaces) built on the fused
// kernels of kern_*.go. Each custom op owns its output and scratch buffers,
// so they are allocated once per compiled graph rather than once per step,
// and its gradient ops, made in SymDiff, read what the forward op
// remembered (e.g. each max-pool's winner) instead of recomputing it.
//
// The ops are coarse, one per stage of the network (a conv stage, a whole
// transformer block, the transformer's head), and each stage's gradient
// is one gradient op for all its operands plus a pick per further operand
// (gradStage, ops_stage.go): every op is a machine instruction and, split
// across goroutines, a start and join of goroutines, which at one op per
// layer cost the transformer 1.7-2.3x the fused step. The finer ops
// (layerNormOp, attnOp, geluOp, splitDenseOp) remain, tested, as building
// blocks for other graphs.
//
// Gorgonia calls an op's Do with the values of its children and stores
// whatever Do returns in a register of the machine. An op that returns a
// buffer it owns must therefore expect later ops to use that buffer freely
// until the next step: Gorgonia's Reshape, for one, reshapes a register it
// may overwrite in place. opsOutput restores the shape on every call.

// newOpsModel builds the custom-op Gorgonia graph of a ("impl: ops"): the
// CNN's (ops_cnn.go) or the transformer's (ops_transformer.go).
// Config.Validate rejects impl ops for other kinds, since silently running
// the plain graph instead would misreport what was run.
func newOpsModel(a arch, dtype string, chunk int, seed uint64) (Model, error) {
	switch a := a.(type) {
	case *cnn:
		return newGraphModel(opsCNN{a}, dtype, chunk, seed)
	case *transformer:
		return newGraphModel(opsTransformer{a}, dtype, chunk, seed)
	}
	return nil, fmt.Errorf("impl ops: no custom-op graph for %T (only cnn and transformer have one)", a)
}

// opsType is the Gorgonia type of a tensor of dims dimensions whose element
// type is the op's type variable a, shared by all its operands.
func opsType(dims int) hm.Type {
	return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')}
}

// opsData returns the elements of v, which must be a contiguous dense
// tensor of want elements of type T.
func opsData[T float](v G.Value, want int, what string) ([]T, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%s: want a dense tensor, got %T", what, v)
	}
	if t.RequiresIterator() {
		return nil, fmt.Errorf("%s: want a contiguous tensor, got a strided view of shape %v", what, t.Shape())
	}
	if t.Dtype() != opsDtype[T]() {
		return nil, fmt.Errorf("%s: want %v elements, got %v", what, opsDtype[T](), t.Dtype())
	}
	d := opsSlice[T](t)
	if len(d) != want {
		return nil, fmt.Errorf("%s: want %d elements, got %d (shape %v)", what, want, len(d), t.Shape())
	}
	return d, nil
}

// opsDtype is the Gorgonia dtype of T.
func opsDtype[T float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// opsBuffer allocates a tensor an op reuses as its output on every step.
func opsBuffer[T float](shape ...int) *tensor.Dense {
	return tensor.New(tensor.Of(opsDtype[T]()), tensor.WithShape(shape...))
}

// opsOutput returns the op-owned tensor t with its data as []T, first
// restoring shape if a consumer reshaped it in place since the last step.
func opsOutput[T float](t *tensor.Dense, shape tensor.Shape) ([]T, error) {
	if !t.Shape().Eq(shape) {
		if err := t.Reshape(shape...); err != nil {
			return nil, fmt.Errorf("restoring output shape %v: %w", shape, err)
		}
	}
	return opsSlice[T](t), nil
}

// opsSlice is t's data as []T, which t's dtype must be. Unlike t.Data(),
// which builds the slice by reflection and boxes it, it does not allocate:
// ops call it for every operand on every step.
func opsSlice[T float](t *tensor.Dense) []T {
	if t.IsScalar() || t.DataSize() == 0 {
		return nil
	}
	if opsDtype[T]() == tensor.Float32 {
		d := t.Float32s()
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
	}
	d := t.Float64s()
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
}

// opsWorkers is how many goroutines an op splits n examples across, given
// a rough count of multiply-adds per example: as many as there are cores,
// unless each would get less than minParallelWork (see fused.go).
func opsWorkers(n, cost, procs int) int {
	return max(1, min(procs, n, n*cost/minParallelWork))
}

// opsParallel runs fn over [0, n) cut into parts contiguous ranges, the
// first on the calling goroutine and each other on its own. fn's part
// argument indexes the per-goroutine scratch.
func opsParallel(n, parts int, fn func(part, lo, hi int)) {
	if parts <= 1 {
		fn(0, 0, n)
		return
	}
	per := (n + parts - 1) / parts
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		lo, hi := p*per, min((p+1)*per, n)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(p, lo, hi)
		}()
	}
	fn(0, 0, min(per, n))
	wg.Wait()
}

// defaultImpl is the implementation a model of kind runs when its config
// leaves Impl unset: the custom-op Gorgonia graph for the CNN and the
// transformer, whose steps it runs within 1.15x of the fused kernels' at
// their default sizes (BENCHMARKS.md); the fused kernels for the rest.
// Gorgonia's machine costs each step a fixed ~0.3 ms, which at the paper's
// 960-parameter transformer is 1.5-1.8x the fused step, so the configs of
// tiny transformers (quick, paper-exp2-nanogpt) ask for impl fused.
func defaultImpl(kind string) string {
	if kind == "cnn" || kind == "transformer" {
		return "ops"
	}
	return "fused"
}
