package models

import (
	"fmt"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// fusedMLP is the hand-written pass of the mlp architecture.
type fusedMLP[T float] struct {
	sizes      []int // inputs, hidden..., classes
	relu, silu bool  // neither: tanh
	w, bias    []int // parameter offsets per layer
}

func newFusedMLP[T float](m *mlp) *fusedMLP[T] {
	f := &fusedMLP[T]{relu: m.cfg.Activation == "relu", silu: m.cfg.Activation == "silu"}
	f.sizes = append(append([]int{m.inputs}, m.cfg.Hidden...), m.classes)
	off := paramOffsets(m.params())
	for i := range m.cfg.Hidden {
		f.w = append(f.w, off[fmt.Sprintf("hidden%d.weight", i)])
		f.bias = append(f.bias, off[fmt.Sprintf("hidden%d.bias", i)])
	}
	f.w = append(f.w, off["out.weight"])
	f.bias = append(f.bias, off["out.bias"])
	return f
}

func (f *fusedMLP[T]) check(b *data.Batch) error {
	if want := b.N * f.sizes[0]; len(b.X) != want {
		return fmt.Errorf("batch has %d input values, mlp wants %d", len(b.X), want)
	}
	if len(b.Labels) != b.N {
		return fmt.Errorf("batch has %d labels for %d examples", len(b.Labels), b.N)
	}
	return checkLabels(b.Labels, f.sizes[len(f.sizes)-1])
}

// patternSize is one byte per hidden ReLU unit, 0 for the smooth tanh and
// silu.
func (f *fusedMLP[T]) patternSize() int {
	if !f.relu {
		return 0
	}
	n := 0
	for _, s := range f.sizes[1 : len(f.sizes)-1] {
		n += s
	}
	return n
}

func (f *fusedMLP[T]) cost() int {
	c := 0
	for i := 1; i < len(f.sizes); i++ {
		c += f.sizes[i-1] * f.sizes[i]
	}
	return 3 * c
}

type mlpWorker[T float] struct {
	f    *fusedMLP[T]
	max  int
	act  [][]T     // act[0] input, act[i] output of layer i (logits last)
	d    [][]T     // gradients of act
	mask [][]uint8 // which ReLUs of hidden layer i are active (relu only)
	dd   [][]T     // silu's derivative at hidden layer i's inputs (silu only)
}

func (f *fusedMLP[T]) newWorker(rows int) fusedWorker[T] {
	w := &mlpWorker[T]{f: f, max: rows}
	for _, s := range f.sizes {
		w.act = append(w.act, make([]T, rows*s))
		w.d = append(w.d, make([]T, rows*s))
		w.mask = append(w.mask, make([]uint8, rows*s))
		if f.silu {
			w.dd = append(w.dd, make([]T, rows*s))
		}
	}
	return w
}

func (w *mlpWorker[T]) rows() int { return w.max }

// patternOffset is where hidden layer l's bytes start in an example's
// pattern.
func (w *mlpWorker[T]) patternOffset(l int) int {
	off := 0
	for _, s := range w.f.sizes[1:l] {
		off += s
	}
	return off
}

func (w *mlpWorker[T]) run(p []T, b *data.Batch, lo, hi int, scale T, grad []T, pat patternUse) (float64, int, int) {
	f := w.f
	n := hi - lo
	L := len(f.sizes) - 1
	x := w.act[0][:n*f.sizes[0]]
	for i, v := range b.X[lo*f.sizes[0] : hi*f.sizes[0]] {
		x[i] = T(v)
	}
	for l := 0; l < L; l++ {
		in, out := f.sizes[l], f.sizes[l+1]
		y := w.act[l+1][:n*out]
		kern.DenseForward(w.act[l][:n*in], n, in, p[f.w[l]:], p[f.bias[l]:f.bias[l]+out], out, y)
		if l < L-1 {
			if f.relu {
				mask := w.mask[l+1][:n*out]
				if pat.frozen {
					kern.CopyPattern(mask, pat.bytes, n, f.patternSize(), w.patternOffset(l+1), out, false)
					kern.ApplyMask(y, mask)
				} else {
					kern.ReLUMask(y, mask)
					if pat.bytes != nil {
						kern.CopyPattern(mask, pat.bytes, n, f.patternSize(), w.patternOffset(l+1), out, true)
					}
				}
			} else if f.silu {
				kern.SiLUForwardDeriv(y, w.dd[l+1][:n*out])
			} else {
				kern.TanhInPlace(y)
			}
		}
	}
	k := f.sizes[L]
	logits := w.act[L][:n*k]
	var correct int
	loss := kern.SoftmaxCrossEntropy(logits, n, k, b.Labels[lo:hi], scale, grad != nil, &correct)
	if grad == nil {
		return loss, correct, n
	}
	dy := logits
	for l := L - 1; l >= 0; l-- {
		in, out := f.sizes[l], f.sizes[l+1]
		var dx []T
		if l > 0 {
			dx = w.d[l][:n*in]
		}
		kern.DenseBackward(w.act[l][:n*in], n, in, p[f.w[l]:], out, dy, grad[f.w[l]:], grad[f.bias[l]:f.bias[l]+out], dx)
		if l > 0 {
			if f.relu {
				kern.ApplyMask(dx, w.mask[l][:n*in])
			} else if f.silu {
				kern.Mul(dx, w.dd[l][:n*in])
			} else {
				kern.TanhGrad(w.act[l][:n*in], dx)
			}
		}
		dy = dx
	}
	return loss, correct, n
}

// fusedLinReg is the hand-written pass of linear regression.
type fusedLinReg[T float] struct{ inputs int }

func (f *fusedLinReg[T]) check(b *data.Batch) error {
	if want := b.N * f.inputs; len(b.X) != want {
		return fmt.Errorf("batch has %d input values, linreg wants %d", len(b.X), want)
	}
	if len(b.Targets) != b.N {
		return fmt.Errorf("batch has %d targets for %d examples", len(b.Targets), b.N)
	}
	return nil
}

func (f *fusedLinReg[T]) cost() int                         { return 2 * f.inputs }
func (f *fusedLinReg[T]) patternSize() int                  { return 0 }
func (f *fusedLinReg[T]) newWorker(rows int) fusedWorker[T] { return &linRegWorker[T]{f: f, max: rows} }

type linRegWorker[T float] struct {
	f   *fusedLinReg[T]
	max int
}

func (w *linRegWorker[T]) rows() int { return w.max }

// run computes the loss 0.5 (x . theta - y)^2 per example in T, as the
// plain graph does.
func (w *linRegWorker[T]) run(p []T, b *data.Batch, lo, hi int, scale T, grad []T, _ patternUse) (float64, int, int) {
	d := w.f.inputs
	var loss T
	for i := lo; i < hi; i++ {
		x := b.X[i*d : (i+1)*d]
		var r T
		for j, v := range x {
			r += T(v) * p[j]
		}
		r -= T(b.Targets[i])
		loss += r * r
		if grad != nil {
			for j, v := range x {
				grad[j] += scale * r * T(v)
			}
		}
	}
	return 0.5 * float64(loss), 0, 0
}
