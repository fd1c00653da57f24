package models

import (
	"fmt"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// fusedTransformer is the hand-written pass of the transformer architecture.
type fusedTransformer[T float] struct {
	d, t, heads, layers, vocab int
	hidden                     int  // the MLP's width
	erf                        bool // exact GELU, else the tanh approximation
	tok, pos                   int  // embedding offsets
	blocks                     []blockOffsets
	lnfG, lnfB, headW, headB   int
}

// blockOffsets locates one block's parameters in the flat vector; the
// bias offsets are -1 in a model without biases.
type blockOffsets struct {
	ln1G, ln1B, q, qb, k, kb, v, vb, proj, projB int
	ln2G, ln2B, fc, fcB, mproj, mprojB           int
}

func newFusedTransformer[T float](tr *transformer) *fusedTransformer[T] {
	c := tr.cfg
	f := &fusedTransformer[T]{d: c.Width, t: c.Context, heads: c.Heads, layers: c.Layers, vocab: tr.vocab,
		hidden: tr.hidden(), erf: c.GELU == "erf"}
	named := paramOffsets(tr.params())
	off := func(name string) int {
		o, ok := named[name]
		if !ok {
			return -1
		}
		return o
	}
	f.tok, f.pos = off("tok.embedding"), off("pos.embedding")
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("block%d.", l)
		f.blocks = append(f.blocks, blockOffsets{
			ln1G: off(p + "ln1.gain"), ln1B: off(p + "ln1.bias"),
			q: off(p + "attn.q.weight"), qb: off(p + "attn.q.bias"),
			k: off(p + "attn.k.weight"), kb: off(p + "attn.k.bias"),
			v: off(p + "attn.v.weight"), vb: off(p + "attn.v.bias"),
			proj: off(p + "attn.proj.weight"), projB: off(p + "attn.proj.bias"),
			ln2G: off(p + "ln2.gain"), ln2B: off(p + "ln2.bias"),
			fc: off(p + "mlp.fc.weight"), fcB: off(p + "mlp.fc.bias"),
			mproj: off(p + "mlp.proj.weight"), mprojB: off(p + "mlp.proj.bias"),
		})
	}
	f.lnfG, f.lnfB = off("lnf.gain"), off("lnf.bias")
	f.headW, f.headB = off("head.weight"), off("head.bias")
	return f
}

// biasOf returns the n parameters (or their gradients) of v at offset off,
// nil for off -1: a layer without a bias.
func biasOf[T float](v []T, off, n int) []T {
	if off < 0 {
		return nil
	}
	return v[off : off+n]
}

func (f *fusedTransformer[T]) check(b *data.Batch) error {
	if len(b.Tokens) != b.N*f.t {
		return fmt.Errorf("batch has %d tokens, transformer wants %d", len(b.Tokens), b.N*f.t)
	}
	if len(b.Labels) != b.N*f.t {
		return fmt.Errorf("batch has %d targets, transformer wants %d", len(b.Labels), b.N*f.t)
	}
	if err := checkLabels(b.Tokens, f.vocab); err != nil {
		return err
	}
	return checkLabels(b.Labels, f.vocab)
}

func (f *fusedTransformer[T]) cost() int {
	d, t := f.d, f.t
	perToken := f.layers*(4*d*d+2*d*f.hidden+2*t*d) + d*f.vocab
	return 3 * perToken * t
}

// blockActs are the activations of one block kept for its gradient.
type blockActs[T float] struct {
	ln1x, ln1r, ln1y []T // LayerNorm 1: xhat, 1/std, output
	qkv, att         []T // projections q|k|v (m, 3d) and the heads' concatenated output
	p                []T // attention probabilities (n*heads, t, t)
	ln2x, ln2r, ln2y []T
	h1, g, th        []T // MLP pre-activation, GELU output and its derivative
}

type transformerWorker[T float] struct {
	f   *fusedTransformer[T]
	max int
	// xs holds the residual stream at every point where it changes: xs[2l]
	// enters block l, xs[2l+1] follows its attention and xs[2L] enters the
	// final LayerNorm. Kept apart rather than updated in place, so that a
	// pass can restart at any stage from what an earlier pass left (see
	// forward).
	xs               [][]T
	acts             []blockActs[T]
	tmp              []T
	lnfx, lnfr, lnfy []T
	logits           []T
	dx, dqkv         []T // dqkv is the gradient of qkv
	datt, dp, dg     []T
	wqkv, bqkv       []T // the q, k and v weights (d, 3d) and biases side by side
	gwqkv, gbqkv     []T // their gradients
}

// patternSize is 0: GELU, softmax and LayerNorm are smooth.
func (f *fusedTransformer[T]) patternSize() int { return 0 }

func (f *fusedTransformer[T]) newWorker(rows int) fusedWorker[T] { return f.newTransformerWorker(rows) }

func (f *fusedTransformer[T]) newTransformerWorker(rows int) *transformerWorker[T] {
	m, d, mh := rows*f.t, f.d, rows*f.t*f.hidden
	w := &transformerWorker[T]{f: f, max: rows}
	md := func() []T { return make([]T, m*d) }
	for range f.layers {
		w.acts = append(w.acts, blockActs[T]{
			ln1x: md(), ln1r: make([]T, m), ln1y: md(),
			qkv: make([]T, 3*m*d), att: md(),
			p:    make([]T, rows*f.heads*f.t*f.t),
			ln2x: md(), ln2r: make([]T, m), ln2y: md(),
			h1: make([]T, mh), g: make([]T, mh), th: make([]T, mh),
		})
	}
	for range 2*f.layers + 1 {
		w.xs = append(w.xs, md())
	}
	w.tmp = md()
	w.lnfx, w.lnfr, w.lnfy = md(), make([]T, m), md()
	w.logits = make([]T, m*f.vocab)
	w.dx, w.dqkv, w.datt = md(), make([]T, 3*m*d), md()
	w.dp = make([]T, f.t*f.t)
	w.dg = make([]T, mh)
	w.wqkv, w.gwqkv = make([]T, 3*d*d), make([]T, 3*d*d)
	if f.blocks[0].qb >= 0 { // else nil: no biases
		w.bqkv, w.gbqkv = make([]T, 3*d), make([]T, 3*d)
	}
	return w
}

func (w *transformerWorker[T]) rows() int { return w.max }

// The pass is a sequence of stages, each owning a contiguous range of the
// flat parameters (the layout follows the forward order): stage 0 the
// embeddings; block l's stages 1+6l+op for op in LayerNorm 1, q|k|v (with
// the attention), projection, LayerNorm 2, MLP in (with the GELU), MLP
// out; then the final LayerNorm and the head. The dense Hessian restarts
// the forward pass at a stage and stops the backward pass after it
// (transformer_hessian.go).
const (
	opLN1 = iota
	opQKV
	opProj
	opLN2
	opFC
	opMProj
	opsPerBlock
)

func (f *fusedTransformer[T]) lnfStage() int  { return 1 + f.layers*opsPerBlock }
func (f *fusedTransformer[T]) headStage() int { return 2 + f.layers*opsPerBlock }

func (w *transformerWorker[T]) run(p []T, b *data.Batch, lo, hi int, scale T, grad []T, _ patternUse) (float64, int, int) {
	loss, correct, count := w.forward(p, b, lo, hi, 0, scale, grad != nil)
	if grad != nil {
		w.backward(p, b, lo, hi, grad, 0)
	}
	return loss, correct, count
}

// forward runs examples [lo, hi) of b from stage from on: the activations
// of the earlier stages are those the last forward over the same examples
// left. With grad, it keeps what backward needs and leaves scale times the
// gradient of the summed loss with respect to the logits in w.logits.
func (w *transformerWorker[T]) forward(p []T, b *data.Batch, lo, hi, from int, scale T, grad bool) (float64, int, int) {
	f := w.f
	d, t, n, hid := f.d, f.t, hi-lo, f.hidden
	m := n * t
	if from == 0 {
		kern.EmbedSum(w.xs[0][:m*d], p[f.tok:f.tok+f.vocab*d], p[f.pos:f.pos+t*d], d, t, b.Tokens[lo*t:hi*t])
	}
	for l := range f.blocks {
		base := 1 + l*opsPerBlock
		if from >= base+opsPerBlock {
			continue
		}
		o, a := &f.blocks[l], &w.acts[l]
		x0, x1, x2 := w.xs[2*l][:m*d], w.xs[2*l+1][:m*d], w.xs[2*l+2][:m*d]
		if from <= base+opLN1 {
			kern.LayerNormForward(x0, m, d, p[o.ln1G:], p[o.ln1B:], a.ln1x, a.ln1r, a.ln1y)
		}
		if from <= base+opQKV {
			// q, k and v in one product of three times the width: a third of
			// the kernel calls, which on the tiny transformer's width of 8 cost
			// more than their arithmetic.
			w.packQKV(p, o)
			kern.DenseForward(a.ln1y, m, d, w.wqkv, w.bqkv, 3*d, a.qkv)
			kern.CausalAttention(a.qkv, n, t, d, f.heads, a.p, a.att)
		}
		if from <= base+opProj {
			kern.DenseForward(a.att, m, d, p[o.proj:], biasOf(p, o.projB, d), d, x1)
			kern.Add(x1, x0)
		}
		if from <= base+opLN2 {
			kern.LayerNormForward(x1, m, d, p[o.ln2G:], p[o.ln2B:], a.ln2x, a.ln2r, a.ln2y)
		}
		if from <= base+opFC {
			kern.DenseForward(a.ln2y, m, d, p[o.fc:], biasOf(p, o.fcB, hid), hid, a.h1)
			switch {
			case f.erf && grad:
				kern.GELUErfForwardDeriv(a.h1[:m*hid], a.g, a.th)
			case f.erf:
				kern.GELUErfForward(a.h1[:m*hid], a.g)
			case grad:
				kern.GELUForwardDeriv(a.h1[:m*hid], a.g, a.th)
			default:
				kern.GELUForward(a.h1[:m*hid], a.g, a.th)
			}
		}
		kern.DenseForward(a.g, m, hid, p[o.mproj:], biasOf(p, o.mprojB, d), d, x2)
		kern.Add(x2, x1)
	}
	if from <= f.lnfStage() {
		kern.LayerNormForward(w.xs[2*f.layers][:m*d], m, d, p[f.lnfG:], p[f.lnfB:], w.lnfx, w.lnfr, w.lnfy)
	}
	logits := w.logits[:m*f.vocab]
	kern.DenseForward(w.lnfy, m, d, p[f.headW:], biasOf(p, f.headB, f.vocab), f.vocab, logits)
	var correct int
	loss := kern.SoftmaxCrossEntropy(logits, m, f.vocab, b.Labels[lo*t:hi*t], scale/T(t), grad, &correct)
	return loss / float64(t), correct, m
}

// backward adds to grad the gradient the last forward (with grad) over
// examples [lo, hi) of b set up, for the parameters of stage to and the
// later ones: it stops after stage to.
func (w *transformerWorker[T]) backward(p []T, b *data.Batch, lo, hi int, grad []T, to int) {
	f := w.f
	d, t, hid := f.d, f.t, f.hidden
	m := (hi - lo) * t
	logits := w.logits[:m*f.vocab]
	tmp := w.tmp[:m*d]
	if to == f.headStage() {
		tmp = nil // the head's input gradient is not needed
	}
	kern.DenseBackward(w.lnfy, m, d, p[f.headW:], f.vocab, logits, grad[f.headW:], biasOf(grad, f.headB, f.vocab), tmp)
	if tmp == nil {
		return
	}
	dx := w.dx[:m*d]
	clear(dx)
	kern.LayerNormBackward(tmp, m, d, p[f.lnfG:], w.lnfx, w.lnfr, grad[f.lnfG:], grad[f.lnfB:], dx)
	if to == f.lnfStage() {
		return
	}
	for l := len(f.blocks) - 1; l >= 0; l-- {
		base := 1 + l*opsPerBlock
		o, a := &f.blocks[l], &w.acts[l]
		dg := w.dg[:m*hid]
		if to == base+opMProj {
			dg = nil
		}
		kern.DenseBackward(a.g, m, hid, p[o.mproj:], d, dx, grad[o.mproj:], biasOf(grad, o.mprojB, d), dg)
		if dg == nil {
			return
		}
		kern.Mul(dg, a.th[:m*hid]) // a.th holds the GELU derivative
		kern.DenseBackward(a.ln2y, m, d, p[o.fc:], hid, dg, grad[o.fc:], biasOf(grad, o.fcB, hid), tmp)
		if to == base+opFC {
			return
		}
		kern.LayerNormBackward(tmp, m, d, p[o.ln2G:], a.ln2x, a.ln2r, grad[o.ln2G:], grad[o.ln2B:], dx)
		if to == base+opLN2 {
			return
		}
		kern.DenseBackward(a.att, m, d, p[o.proj:], d, dx, grad[o.proj:], biasOf(grad, o.projB, d), w.datt)
		if to == base+opProj {
			return
		}
		kern.CausalAttentionBackward(a.qkv, a.p, hi-lo, t, d, f.heads, w.datt, w.dp, w.dqkv)
		w.packQKV(p, o)
		clear(w.gwqkv)
		clear(w.gbqkv)
		kern.DenseBackward(a.ln1y, m, d, w.wqkv, 3*d, w.dqkv, w.gwqkv, w.gbqkv, tmp)
		w.unpackQKVGrad(grad, o)
		if to == base+opQKV {
			return
		}
		kern.LayerNormBackward(tmp, m, d, p[o.ln1G:], a.ln1x, a.ln1r, grad[o.ln1G:], grad[o.ln1B:], dx)
		if to == base+opLN1 {
			return
		}
	}
	kern.EmbedGrad(grad[f.tok:f.tok+f.vocab*d], grad[f.pos:f.pos+t*d], d, t, b.Tokens[lo*t:hi*t], dx)
}

// packQKV copies block o's q, k and v weights side by side into w.wqkv,
// row i being q's row i, k's and v's, and their biases (if any) into
// w.bqkv.
func (w *transformerWorker[T]) packQKV(p []T, o *blockOffsets) {
	d := w.f.d
	for j, off := range [3]int{o.q, o.k, o.v} {
		for i := 0; i < d; i++ {
			copy(w.wqkv[i*3*d+j*d:][:d], p[off+i*d:][:d])
		}
	}
	if w.bqkv == nil {
		return
	}
	for j, off := range [3]int{o.qb, o.kb, o.vb} {
		copy(w.bqkv[j*d:][:d], p[off:][:d])
	}
}

// unpackQKVGrad adds w.gwqkv and w.gbqkv, laid out as packQKV lays out the
// weights, into block o's gradients.
func (w *transformerWorker[T]) unpackQKVGrad(grad []T, o *blockOffsets) {
	d := w.f.d
	for j, off := range [3]int{o.q, o.k, o.v} {
		for i := 0; i < d; i++ {
			kern.Add(grad[off+i*d:][:d], w.gwqkv[i*3*d+j*d:][:d])
		}
	}
	if w.gbqkv == nil {
		return
	}
	for j, off := range [3]int{o.qb, o.kb, o.vb} {
		kern.Add(grad[off:][:d], w.gbqkv[j*d:][:d])
	}
}
