package gop

import (
	"fmt"
	"hash/fnv"
	"sync"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// TensorType is the Gorgonia type of a tensor of dims dimensions whose element
// type is the op's type variable a, shared by all its operands.
func TensorType(dims int) hm.Type {
	return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')}
}

// Data returns the elements of v, which must be a contiguous dense
// tensor of want elements of type T.
func Data[T kern.Float](v G.Value, want int, what string) ([]T, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%s: want a dense tensor, got %T", what, v)
	}
	if t.RequiresIterator() {
		return nil, fmt.Errorf("%s: want a contiguous tensor, got a strided view of shape %v", what, t.Shape())
	}
	if t.Dtype() != dtypeOf[T]() {
		return nil, fmt.Errorf("%s: want %v elements, got %v", what, dtypeOf[T](), t.Dtype())
	}
	d := sliceOf[T](t)
	if len(d) != want {
		return nil, fmt.Errorf("%s: want %d elements, got %d (shape %v)", what, want, len(d), t.Shape())
	}
	return d, nil
}

// dtypeOf is the Gorgonia dtype of T.
func dtypeOf[T kern.Float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// Buffer allocates a tensor an op reuses as its output on every step.
func Buffer[T kern.Float](shape ...int) *tensor.Dense {
	return tensor.New(tensor.Of(dtypeOf[T]()), tensor.WithShape(shape...))
}

// Output returns the op-owned tensor t with its data as []T, first
// restoring shape if a consumer reshaped it in place since the last step.
func Output[T kern.Float](t *tensor.Dense, shape tensor.Shape) ([]T, error) {
	if !t.Shape().Eq(shape) {
		if err := t.Reshape(shape...); err != nil {
			return nil, fmt.Errorf("restoring output shape %v: %w", shape, err)
		}
	}
	return sliceOf[T](t), nil
}

// sliceOf is t's data as []T, which t's dtype must be. Unlike t.Data(),
// which builds the slice by reflection and boxes it, it does not allocate:
// ops call it for every operand on every step.
func sliceOf[T kern.Float](t *tensor.Dense) []T {
	if t.IsScalar() || t.DataSize() == 0 {
		return nil
	}
	if dtypeOf[T]() == tensor.Float32 {
		d := t.Float32s()
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
	}
	d := t.Float64s()
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(d))), len(d))
}

// MinParallelWork is the least number of multiply-adds a goroutine must
// get before work is split: below it, starting and joining goroutines and
// waiting for the slower half costs more than it saves (measured on the
// tiny transformer, ~2M multiply-adds per step, on a busy machine).
const MinParallelWork = 4 << 20

// Workers is how many goroutines an op (or a fused model's step) splits n
// examples across, given a rough count of multiply-adds per example: as
// many as there are cores procs, unless each would get less than
// MinParallelWork.
func Workers(n, cost, procs int) int {
	return max(1, min(procs, n, n*cost/MinParallelWork))
}

// Parallel runs fn over [0, n) cut into parts contiguous ranges, the
// first on the calling goroutine and each other on its own. fn's part
// argument indexes the per-goroutine scratch.
func Parallel(n, parts int, fn func(part, lo, hi int)) {
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

// CheckShapes reports the first operand of op whose shape is not want.
func CheckShapes(op G.Op, in []G.DimSizer, want ...tensor.Shape) error {
	if len(in) != len(want) {
		return fmt.Errorf("%v: want %d inputs, got %d", op, len(want), len(in))
	}
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return fmt.Errorf("%v: input %d has no shape (%T)", op, i, d)
		}
		if !s.Eq(want[i]) {
			return fmt.Errorf("%v: input %d has shape %v, want %v", op, i, s, want[i])
		}
	}
	return nil
}

// Hash is the FNV-1a hash of op's WriteHash, the hash Gorgonia uses to
// merge equal nodes, so it must tell apart every op that computes
// something else.
func Hash(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
