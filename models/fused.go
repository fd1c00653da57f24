package models

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/gop"
)

// The fused implementation computes each network's forward and backward
// pass by hand over one flat parameter slice, with the kernels of internal/kern:
// a 3x3 convolution as one im2col product per image, max-pooling that
// remembers its argmax, fused bias+ReLU, softmax cross-entropy, LayerNorm,
// GELU and causal attention with hand-written gradients. Every buffer is
// kept between calls, so a training step allocates almost nothing, and a
// batch is split across one goroutine per core, each with its own buffers
// and gradient accumulator. It computes the same function, with the same
// parameter layout and initialisation, as the Gorgonia graph ("plain").

// float is the element type of the fused kernels: float32 on the hot path,
// float64 for the finite-difference and exactness tests.
type float interface{ ~float32 | ~float64 }

// fusedNet is an architecture with a hand-written forward and backward pass.
type fusedNet[T float] interface {
	// check reports whether b has the inputs the network needs.
	check(b *data.Batch) error
	// cost is a rough count of multiply-adds per example; it decides how
	// many goroutines a chunk is worth.
	cost() int
	// newWorker returns a worker with buffers for up to rows examples.
	newWorker(rows int) fusedWorker[T]
	// patternSize is the number of activation-pattern bytes per example
	// (0 for a network without kinks).
	patternSize() int
}

// fusedWorker runs the network on a slice of a batch with its own buffers.
type fusedWorker[T float] interface {
	// run returns the summed loss and the number of correct predictions
	// over examples [lo, hi) of b. With grad != nil it adds scale times the
	// gradient of that summed loss to grad. pat holds the activation
	// pattern bytes of those examples, to record or to hold (see Pattern).
	run(w []T, b *data.Batch, lo, hi int, scale T, grad []T, pat patternUse) (loss float64, correct, count int)
	rows() int
}

type fusedModel[T float] struct {
	net     fusedNet[T]
	chunk   int
	info    []TensorInfo
	nparams int
	w       []T
	slots   []*fusedSlot[T]
	active  int // slots used by the last pass
}

// fusedSlot is one goroutine's worker, gradient accumulator and results.
type fusedSlot[T float] struct {
	worker  fusedWorker[T]
	grad    []T
	loss    float64
	correct int
	count   int
}

func newFusedModel[T float](net fusedNet[T], specs []paramSpec, chunk int, seed uint64) *fusedModel[T] {
	m := &fusedModel[T]{net: net, chunk: chunk}
	vals := initialParams(specs, seed)
	off := 0
	for _, p := range specs {
		m.info = append(m.info, TensorInfo{Name: p.name, Shape: append([]int(nil), p.shape...), Offset: off, Size: p.size()})
		off += p.size()
	}
	m.nparams = off
	m.w = make([]T, off)
	m.SetParams(vals)
	return m
}

func (m *fusedModel[T]) NumParams() int        { return m.nparams }
func (m *fusedModel[T]) Tensors() []TensorInfo { return m.info }

func (m *fusedModel[T]) DType() string {
	var z T
	if _, ok := any(z).(float32); ok {
		return "float32"
	}
	return "float64"
}

func (m *fusedModel[T]) Params(dst []float64) {
	for i, v := range m.w {
		dst[i] = float64(v)
	}
}

func (m *fusedModel[T]) SetParams(src []float64) {
	for i, v := range src[:len(m.w)] {
		m.w[i] = T(v)
	}
}

func (m *fusedModel[T]) Grad(b *data.Batch, grad []float64) (float64, error) {
	return m.grad(b, grad, nil)
}

func (m *fusedModel[T]) grad(b *data.Batch, grad []float64, frozen *Pattern) (float64, error) {
	if len(grad) != m.nparams {
		return 0, fmt.Errorf("gradient buffer has %d entries, model has %d parameters", len(grad), m.nparams)
	}
	loss, _, _, err := m.pass(b, true, frozen, true)
	if err != nil {
		return 0, err
	}
	clear(grad)
	for _, s := range m.slots[:m.active] {
		for i, v := range s.grad {
			grad[i] += float64(v)
		}
	}
	return loss, nil
}

func (m *fusedModel[T]) Eval(b *data.Batch) (Eval, error) {
	loss, correct, count, err := m.pass(b, false, nil, false)
	return Eval{Loss: loss, Correct: correct, Count: count}, err
}

// pass runs the network over b in chunks, each split across goroutines,
// and returns the mean loss. With grad, each slot's accumulator holds its
// share of the mean loss's gradient afterwards. With pat, the activation
// pattern is held at pat (frozen) or recorded into it.
func (m *fusedModel[T]) pass(b *data.Batch, grad bool, pat *Pattern, frozen bool) (float64, int, int, error) {
	if b.N < 1 {
		return 0, 0, 0, fmt.Errorf("empty batch")
	}
	if err := m.net.check(b); err != nil {
		return 0, 0, 0, err
	}
	chunk := min(m.chunk, b.N)
	parts := gop.Workers(chunk, m.net.cost(), runtime.GOMAXPROCS(0))
	per := (chunk + parts - 1) / parts
	for len(m.slots) < parts {
		m.slots = append(m.slots, &fusedSlot[T]{})
	}
	m.active = parts
	for _, s := range m.slots[:parts] {
		s.loss, s.correct, s.count = 0, 0, 0
		if s.worker == nil || s.worker.rows() < per {
			s.worker = m.net.newWorker(per)
		}
		if grad {
			if s.grad == nil {
				s.grad = make([]T, m.nparams)
			}
			clear(s.grad)
		}
	}
	scale := 1 / T(b.N)
	var wg sync.WaitGroup
	for lo := 0; lo < b.N; lo += chunk {
		hi := min(lo+chunk, b.N)
		for p := 1; p < parts; p++ {
			plo, phi := lo+p*per, min(lo+(p+1)*per, hi)
			if plo >= phi {
				break
			}
			wg.Add(1)
			go func(s *fusedSlot[T]) {
				defer wg.Done()
				m.runSlot(s, b, plo, phi, scale, grad, pat, frozen)
			}(m.slots[p])
		}
		m.runSlot(m.slots[0], b, lo, min(lo+per, hi), scale, grad, pat, frozen)
		wg.Wait()
	}
	var loss float64
	var correct, count int
	for _, s := range m.slots[:parts] {
		loss += s.loss
		correct += s.correct
		count += s.count
	}
	return loss / float64(b.N), correct, count, nil
}

func (m *fusedModel[T]) runSlot(s *fusedSlot[T], b *data.Batch, lo, hi int, scale T, grad bool, pat *Pattern, frozen bool) {
	var g []T
	if grad {
		g = s.grad
	}
	var use patternUse
	if pat != nil && pat.per > 0 {
		use = patternUse{bytes: pat.bytes[lo*pat.per : hi*pat.per], frozen: frozen}
	}
	l, c, n := s.worker.run(m.w, b, lo, hi, scale, g, use)
	s.loss += l
	s.correct += c
	s.count += n
}

// checkLabels reports the first label outside [0, k).
func checkLabels(labels []int, k int) error {
	for _, y := range labels {
		if y < 0 || y >= k {
			return fmt.Errorf("id %d out of range [0, %d)", y, k)
		}
	}
	return nil
}

// paramOffsets maps each parameter name to its offset in the flat vector.
func paramOffsets(specs []paramSpec) map[string]int {
	off := map[string]int{}
	o := 0
	for _, p := range specs {
		off[p.name] = o
		o += p.size()
	}
	return off
}
