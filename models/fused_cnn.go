package models

import (
	"fmt"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// fusedCNN is the hand-written pass of the cnn architecture.
type fusedCNN[T float] struct {
	ch      [4]int // channels in and out of each stage
	hs, ws  [4]int // height and width entering each stage; [3] is after the last pool
	hidden  int
	classes int
	flat    int
	// Offsets of the parameters in the flat vector.
	convW, convB [3]int
	hidW, hidB   int
	outW, outB   int
}

func newFusedCNN[T float](c *cnn) *fusedCNN[T] {
	ch := c.channels()
	f := &fusedCNN[T]{hidden: c.cfg.Hidden, classes: c.classes, flat: c.flat()}
	copy(f.ch[:], ch)
	for l := 0; l < 4; l++ {
		f.hs[l] = c.image[1] >> l
		f.ws[l] = c.image[2] >> l
	}
	off := paramOffsets(c.params())
	for l := 0; l < 3; l++ {
		f.convW[l] = off[fmt.Sprintf("conv%d.weight", l)]
		f.convB[l] = off[fmt.Sprintf("conv%d.bias", l)]
	}
	f.hidW, f.hidB = off["hidden.weight"], off["hidden.bias"]
	f.outW, f.outB = off["out.weight"], off["out.bias"]
	return f
}

func (f *fusedCNN[T]) check(b *data.Batch) error {
	if want := b.N * f.ch[0] * f.hs[0] * f.ws[0]; len(b.X) != want {
		return fmt.Errorf("batch has %d input values, cnn wants %d", len(b.X), want)
	}
	if len(b.Labels) != b.N {
		return fmt.Errorf("batch has %d labels for %d examples", len(b.Labels), b.N)
	}
	return checkLabels(b.Labels, f.classes)
}

// patternSize is one byte per pool of each stage (winner and ReLU, see
// kern.BiasReLUPool2) and one per hidden ReLU unit, in that order.
func (f *fusedCNN[T]) patternSize() int {
	n := f.hidden
	for l := 1; l < 4; l++ {
		n += f.ch[l] * f.hs[l] * f.ws[l]
	}
	return n
}

// patternOffset is where stage l's pool bytes start in an example's
// pattern; stage 3 is the hidden layer.
func (f *fusedCNN[T]) patternOffset(l int) int {
	off := 0
	for s := 1; s <= l; s++ {
		off += f.ch[s] * f.hs[s] * f.ws[s]
	}
	return off
}

func (f *fusedCNN[T]) cost() int {
	c := f.flat*f.hidden + f.hidden*f.classes
	for l := 0; l < 3; l++ {
		c += f.ch[l+1] * f.ch[l] * 9 * f.hs[l] * f.ws[l]
	}
	return 3 * c
}

// cnnWorker holds one goroutine's activations and scratch.
type cnnWorker[T float] struct {
	f     *fusedCNN[T]
	max   int
	act   [4][]T     // act[0] is the input, act[l+1] the pooled output of stage l
	arg   [3][]uint8 // pattern byte of each pool: winner and ReLU
	hmask []uint8    // which hidden ReLUs are active
	col   []T        // one image's patch matrix
	y     []T        // one image's convolution output, or its gradient
	yT    []T        // the transposed gradient of the convolution output
	wT    [3][]T     // transposed conv weights (C*9, Cout)
	dwT   [3][]T     // transposed conv weight gradients, summed over images
	dout  [4][]T     // one image's gradient w.r.t. act[l]; dout[3] holds all rows
	hid   []T        // hidden activations (rows, hidden)
	dhid  []T
	out   []T // logits, then their gradient
}

func (f *fusedCNN[T]) newWorker(rows int) fusedWorker[T] {
	w := &cnnWorker[T]{f: f, max: rows}
	maxCol, maxY := 0, 0
	for l := 0; l < 4; l++ {
		size := f.ch[l] * f.hs[l] * f.ws[l]
		if l == 3 {
			size = f.flat
		}
		w.act[l] = make([]T, rows*size)
		if l < 3 {
			w.arg[l] = make([]uint8, rows*f.ch[l+1]*f.hs[l+1]*f.ws[l+1])
			maxCol = max(maxCol, f.ch[l]*9*f.hs[l]*f.ws[l])
			maxY = max(maxY, f.ch[l+1]*f.hs[l]*f.ws[l])
			w.dout[l] = make([]T, size)
		}
	}
	w.col = make([]T, maxCol)
	w.y = make([]T, maxY)
	w.yT = make([]T, maxY)
	for l := 0; l < 3; l++ {
		w.wT[l] = make([]T, f.ch[l]*9*f.ch[l+1])
		w.dwT[l] = make([]T, f.ch[l]*9*f.ch[l+1])
	}
	w.dout[3] = make([]T, rows*f.flat)
	w.hid = make([]T, rows*f.hidden)
	w.hmask = make([]uint8, rows*f.hidden)
	w.dhid = make([]T, rows*f.hidden)
	w.out = make([]T, rows*f.classes)
	return w
}

func (w *cnnWorker[T]) rows() int { return w.max }

func (w *cnnWorker[T]) run(p []T, b *data.Batch, lo, hi int, scale T, grad []T, pat patternUse) (float64, int, int) {
	f := w.f
	n := hi - lo
	in := f.ch[0] * f.hs[0] * f.ws[0]
	x := w.act[0][:n*in]
	for i, v := range b.X[lo*in : hi*in] {
		x[i] = T(v)
	}
	per := f.patternSize()
	for i := 0; i < n; i++ {
		for l := 0; l < 3; l++ {
			outsz := f.ch[l+1] * f.hs[l+1] * f.ws[l+1]
			arg := w.arg[l][i*outsz : (i+1)*outsz]
			var stored []uint8
			if pat.bytes != nil {
				stored = pat.bytes[i*per+f.patternOffset(l):][:outsz]
			}
			if pat.frozen {
				copy(arg, stored)
			}
			w.convForward(p, l, i, pat.frozen)
			if stored != nil && !pat.frozen {
				copy(stored, arg)
			}
		}
	}
	hid := w.hid[:n*f.hidden]
	hmask := w.hmask[:n*f.hidden]
	kern.DenseForward(w.act[3][:n*f.flat], n, f.flat, p[f.hidW:], p[f.hidB:f.hidB+f.hidden], f.hidden, hid)
	switch {
	case pat.frozen:
		kern.CopyPattern(hmask, pat.bytes, n, per, f.patternOffset(3), f.hidden, false)
		kern.ApplyMask(hid, hmask)
	case pat.bytes != nil:
		kern.ReLUMask(hid, hmask)
		kern.CopyPattern(hmask, pat.bytes, n, per, f.patternOffset(3), f.hidden, true)
	default:
		kern.ReLUMask(hid, hmask)
	}
	out := w.out[:n*f.classes]
	kern.DenseForward(hid, n, f.hidden, p[f.outW:], p[f.outB:f.outB+f.classes], f.classes, out)
	var correct int
	loss := kern.SoftmaxCrossEntropy(out, n, f.classes, b.Labels[lo:hi], scale, grad != nil, &correct)
	if grad == nil {
		return loss, correct, n
	}

	dhid := w.dhid[:n*f.hidden]
	kern.DenseBackward(hid, n, f.hidden, p[f.outW:], f.classes, out, grad[f.outW:], grad[f.outB:f.outB+f.classes], dhid)
	kern.ApplyMask(dhid, hmask)
	dflat := w.dout[3][:n*f.flat]
	kern.DenseBackward(w.act[3][:n*f.flat], n, f.flat, p[f.hidW:], f.hidden, dhid, grad[f.hidW:], grad[f.hidB:f.hidB+f.hidden], dflat)
	// The weight gradients are accumulated transposed, (C*9, Cout), so that
	// both backward products read their operands in plain layout.
	for l := 0; l < 3; l++ {
		k := f.ch[l] * 9
		kern.Transpose(w.wT[l], p[f.convW[l]:f.convW[l]+f.ch[l+1]*k], f.ch[l+1], k)
		clear(w.dwT[l])
	}
	for i := 0; i < n; i++ {
		w.convBackward(grad, 2, i, dflat[i*f.flat:(i+1)*f.flat])
		w.convBackward(grad, 1, i, w.dout[2])
		w.convBackward(grad, 0, i, w.dout[1])
	}
	for l := 0; l < 3; l++ {
		k, cout := f.ch[l]*9, f.ch[l+1]
		g := grad[f.convW[l] : f.convW[l]+cout*k]
		for r := 0; r < k; r++ {
			for c, v := range w.dwT[l][r*cout : (r+1)*cout] {
				g[c*k+r] += v
			}
		}
	}
	return loss, correct, n
}

// convForward runs stage l (convolution, bias, ReLU, pool) on image i;
// frozen, it holds the pools' pattern bytes already in w.arg[l].
func (w *cnnWorker[T]) convForward(p []T, l, i int, frozen bool) {
	f := w.f
	cin, cout, h, wd := f.ch[l], f.ch[l+1], f.hs[l], f.ws[l]
	hw := h * wd
	insz, outsz := cin*hw, cout*hw/4
	col := w.col[:cin*9*hw]
	kern.Im2Col3x3(w.act[l][i*insz:(i+1)*insz], cin, h, wd, col)
	y := w.y[:cout*hw]
	gemm.Gemm(false, false, cout, hw, cin*9, 1, p[f.convW[l]:], cin*9, col, hw, 0, y, hw)
	out, arg := w.act[l+1][i*outsz:(i+1)*outsz], w.arg[l][i*outsz:(i+1)*outsz]
	if frozen {
		kern.BiasPool2Frozen(y, p[f.convB[l]:f.convB[l]+cout], cout, h, wd, out, arg)
		return
	}
	kern.BiasReLUPool2(y, p[f.convB[l]:f.convB[l]+cout], cout, h, wd, out, arg)
}

// convBackward adds stage l's weight gradient for image i into w.dwT[l]
// and its bias gradient into grad, given the gradient dout of its pooled
// output, and for l > 0 writes the gradient of its input into w.dout[l].
func (w *cnnWorker[T]) convBackward(grad []T, l, i int, dout []T) {
	f := w.f
	cin, cout, h, wd := f.ch[l], f.ch[l+1], f.hs[l], f.ws[l]
	hw := h * wd
	insz, outsz := cin*hw, cout*hw/4
	dy, dyT := w.y[:cout*hw], w.yT[:cout*hw]
	kern.BiasReLUPool2Grad(w.arg[l][i*outsz:(i+1)*outsz], dout, cout, h, wd, dy, dyT, grad[f.convB[l]:f.convB[l]+cout])
	col := w.col[:cin*9*hw]
	kern.Im2Col3x3(w.act[l][i*insz:(i+1)*insz], cin, h, wd, col)
	gemm.Gemm(false, false, cin*9, cout, hw, 1, col, hw, dyT, cout, 1, w.dwT[l], cout)
	if l == 0 {
		return
	}
	gemm.Gemm(false, false, cin*9, hw, cout, 1, w.wT[l], cout, dy, hw, 0, col, hw)
	kern.Col2Im3x3(col, cin, h, wd, w.dout[l])
}
