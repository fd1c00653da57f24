package models

import (
	"fmt"
	"github.com/sgdyn/sgdyn/internal/gemm"
	"math"

	"github.com/sgdyn/sgdyn/data"
)

// fusedTransformer is the hand-written pass of the transformer architecture.
type fusedTransformer[T float] struct {
	d, t, heads, layers, vocab int
	tok, pos                   int // embedding offsets
	blocks                     []blockOffsets
	lnfG, lnfB, headW, headB   int
}

// blockOffsets locates one block's parameters in the flat vector.
type blockOffsets struct {
	ln1G, ln1B, q, qb, k, kb, v, vb, proj, projB int
	ln2G, ln2B, fc, fcB, mproj, mprojB           int
}

func newFusedTransformer[T float](tr *transformer) *fusedTransformer[T] {
	c := tr.cfg
	f := &fusedTransformer[T]{d: c.Width, t: c.Context, heads: c.Heads, layers: c.Layers, vocab: tr.vocab}
	off := paramOffsets(tr.params())
	f.tok, f.pos = off["tok.embedding"], off["pos.embedding"]
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("block%d.", l)
		f.blocks = append(f.blocks, blockOffsets{
			ln1G: off[p+"ln1.gain"], ln1B: off[p+"ln1.bias"],
			q: off[p+"attn.q.weight"], qb: off[p+"attn.q.bias"],
			k: off[p+"attn.k.weight"], kb: off[p+"attn.k.bias"],
			v: off[p+"attn.v.weight"], vb: off[p+"attn.v.bias"],
			proj: off[p+"attn.proj.weight"], projB: off[p+"attn.proj.bias"],
			ln2G: off[p+"ln2.gain"], ln2B: off[p+"ln2.bias"],
			fc: off[p+"mlp.fc.weight"], fcB: off[p+"mlp.fc.bias"],
			mproj: off[p+"mlp.proj.weight"], mprojB: off[p+"mlp.proj.bias"],
		})
	}
	f.lnfG, f.lnfB = off["lnf.gain"], off["lnf.bias"]
	f.headW, f.headB = off["head.weight"], off["head.bias"]
	return f
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
	perToken := f.layers*(12*d*d+2*t*d) + d*f.vocab
	return 3 * perToken * t
}

// blockActs are the activations of one block kept for its gradient.
type blockActs[T float] struct {
	ln1x, ln1r, ln1y []T // LayerNorm 1: xhat, 1/std, output
	q, k, v, att     []T // projections and the heads' concatenated output
	p                []T // attention probabilities (n*heads, t, t)
	ln2x, ln2r, ln2y []T
	h1, g, th        []T // MLP pre-activation, GELU output and its tanh
}

type transformerWorker[T float] struct {
	f                *fusedTransformer[T]
	max              int
	acts             []blockActs[T]
	x, tmp           []T
	lnfx, lnfr, lnfy []T
	logits           []T
	dx, dq, dk, dv   []T
	datt, dp, dg     []T
}

// patternSize is 0: GELU, softmax and LayerNorm are smooth.
func (f *fusedTransformer[T]) patternSize() int { return 0 }

func (f *fusedTransformer[T]) newWorker(rows int) fusedWorker[T] {
	m, d := rows*f.t, f.d
	w := &transformerWorker[T]{f: f, max: rows}
	md := func() []T { return make([]T, m*d) }
	for range f.layers {
		w.acts = append(w.acts, blockActs[T]{
			ln1x: md(), ln1r: make([]T, m), ln1y: md(),
			q: md(), k: md(), v: md(), att: md(),
			p:    make([]T, rows*f.heads*f.t*f.t),
			ln2x: md(), ln2r: make([]T, m), ln2y: md(),
			h1: make([]T, 4*m*d), g: make([]T, 4*m*d), th: make([]T, 4*m*d),
		})
	}
	w.x, w.tmp = md(), md()
	w.lnfx, w.lnfr, w.lnfy = md(), make([]T, m), md()
	w.logits = make([]T, m*f.vocab)
	w.dx, w.dq, w.dk, w.dv, w.datt = md(), md(), md(), md(), md()
	w.dp = make([]T, f.t*f.t)
	w.dg = make([]T, 4*m*d)
	return w
}

func (w *transformerWorker[T]) rows() int { return w.max }

func (w *transformerWorker[T]) run(p []T, b *data.Batch, lo, hi int, scale T, grad []T, _ patternUse) (float64, int, int) {
	f := w.f
	d, t, n := f.d, f.t, hi-lo
	m := n * t
	tokens := b.Tokens[lo*t : hi*t]
	x := w.x[:m*d]
	for r, id := range tokens {
		xr := x[r*d : (r+1)*d]
		te := p[f.tok+id*d : f.tok+(id+1)*d]
		pe := p[f.pos+(r%t)*d : f.pos+(r%t+1)*d]
		for j := range xr {
			xr[j] = te[j] + pe[j]
		}
	}
	tmp := w.tmp[:m*d]
	for l := range f.blocks {
		o, a := &f.blocks[l], &w.acts[l]
		layerNormForward(x, m, d, p[o.ln1G:], p[o.ln1B:], a.ln1x, a.ln1r, a.ln1y)
		denseForward(a.ln1y, m, d, p[o.q:], p[o.qb:o.qb+d], d, a.q)
		denseForward(a.ln1y, m, d, p[o.k:], p[o.kb:o.kb+d], d, a.k)
		denseForward(a.ln1y, m, d, p[o.v:], p[o.vb:o.vb+d], d, a.v)
		w.attend(a, n)
		denseForward(a.att, m, d, p[o.proj:], p[o.projB:o.projB+d], d, tmp)
		addTo(x, tmp)
		layerNormForward(x, m, d, p[o.ln2G:], p[o.ln2B:], a.ln2x, a.ln2r, a.ln2y)
		denseForward(a.ln2y, m, d, p[o.fc:], p[o.fcB:o.fcB+4*d], 4*d, a.h1)
		geluForward(a.h1[:4*m*d], a.g, a.th)
		denseForward(a.g, m, 4*d, p[o.mproj:], p[o.mprojB:o.mprojB+d], d, tmp)
		addTo(x, tmp)
	}
	layerNormForward(x, m, d, p[f.lnfG:], p[f.lnfB:], w.lnfx, w.lnfr, w.lnfy)
	logits := w.logits[:m*f.vocab]
	denseForward(w.lnfy, m, d, p[f.headW:], p[f.headB:f.headB+f.vocab], f.vocab, logits)
	var correct int
	loss := softmaxCrossEntropy(logits, m, f.vocab, b.Labels[lo*t:hi*t], scale/T(t), grad != nil, &correct)
	if grad == nil {
		return loss / float64(t), correct, m
	}

	denseBackward(w.lnfy, m, d, p[f.headW:], f.vocab, logits, grad[f.headW:], grad[f.headB:f.headB+f.vocab], tmp)
	dx := w.dx[:m*d]
	clear(dx)
	layerNormBackward(tmp, m, d, p[f.lnfG:], w.lnfx, w.lnfr, grad[f.lnfG:], grad[f.lnfB:], dx)
	for l := len(f.blocks) - 1; l >= 0; l-- {
		o, a := &f.blocks[l], &w.acts[l]
		dg := w.dg[:4*m*d]
		denseBackward(a.g, m, 4*d, p[o.mproj:], d, dx, grad[o.mproj:], grad[o.mprojB:o.mprojB+d], dg)
		geluBackward(a.h1[:4*m*d], a.th, dg)
		denseBackward(a.ln2y, m, d, p[o.fc:], 4*d, dg, grad[o.fc:], grad[o.fcB:o.fcB+4*d], tmp)
		layerNormBackward(tmp, m, d, p[o.ln2G:], a.ln2x, a.ln2r, grad[o.ln2G:], grad[o.ln2B:], dx)
		denseBackward(a.att, m, d, p[o.proj:], d, dx, grad[o.proj:], grad[o.projB:o.projB+d], w.datt)
		w.attendBackward(a, n)
		denseBackward(a.ln1y, m, d, p[o.q:], d, w.dq, grad[o.q:], grad[o.qb:o.qb+d], tmp)
		denseBackwardBeta(a.ln1y, m, d, p[o.k:], d, w.dk, grad[o.k:], grad[o.kb:o.kb+d], tmp, 1)
		denseBackwardBeta(a.ln1y, m, d, p[o.v:], d, w.dv, grad[o.v:], grad[o.vb:o.vb+d], tmp, 1)
		layerNormBackward(tmp, m, d, p[o.ln1G:], a.ln1x, a.ln1r, grad[o.ln1G:], grad[o.ln1B:], dx)
	}
	for r, id := range tokens {
		dxr := dx[r*d : (r+1)*d]
		addTo(grad[f.tok+id*d:f.tok+(id+1)*d], dxr)
		addTo(grad[f.pos+(r%t)*d:f.pos+(r%t+1)*d], dxr)
	}
	return loss / float64(t), correct, m
}

// attend computes causal softmax(q k^T / sqrt(dh)) v for every sequence and
// head of a block. A head is a column slice of the (m, d) projections, read
// in place with leading dimension d: no transposes or copies.
func (w *transformerWorker[T]) attend(a *blockActs[T], n int) {
	f := w.f
	d, t, dh := f.d, f.t, f.d/f.heads
	scale := T(1 / math.Sqrt(float64(dh)))
	// The products accumulate (beta = 1) into outputs cleared here in one
	// call each: with beta = 0, gemm clears its output row by row, a call
	// per row of a head, which costs more than the tiny products.
	ps, att := a.p[:n*f.heads*t*t], a.att[:n*t*d]
	clear(ps)
	clear(att)
	for s := 0; s < n; s++ {
		for h := 0; h < f.heads; h++ {
			o := s*t*d + h*dh
			pr := ps[(s*f.heads+h)*t*t : (s*f.heads+h+1)*t*t]
			gemm.Gemm(false, true, t, t, dh, scale, a.q[o:], d, a.k[o:], d, 1, pr, t)
		}
	}
	// All heads at once: one long exps call instead of t short ones each.
	causalSoftmax(ps, t)
	for s := 0; s < n; s++ {
		for h := 0; h < f.heads; h++ {
			o := s*t*d + h*dh
			pr := ps[(s*f.heads+h)*t*t : (s*f.heads+h+1)*t*t]
			gemm.Gemm(false, false, t, dh, t, 1, pr, t, a.v[o:], d, 1, att[o:], d)
		}
	}
}

// attendBackward turns w.datt, the gradient of the heads' output, into the
// gradients w.dq, w.dk and w.dv of the projections.
func (w *transformerWorker[T]) attendBackward(a *blockActs[T], n int) {
	f := w.f
	d, t, dh := f.d, f.t, f.d/f.heads
	scale := T(1 / math.Sqrt(float64(dh)))
	dp := w.dp
	// Accumulating into outputs cleared in bulk, as in attend.
	dq, dk, dv := w.dq[:n*t*d], w.dk[:n*t*d], w.dv[:n*t*d]
	clear(dq)
	clear(dk)
	clear(dv)
	for s := 0; s < n; s++ {
		for h := 0; h < f.heads; h++ {
			o := s*t*d + h*dh
			pr := a.p[(s*f.heads+h)*t*t : (s*f.heads+h+1)*t*t]
			clear(dp)
			gemm.Gemm(false, true, t, t, dh, 1, w.datt[o:], d, a.v[o:], d, 1, dp, t)
			gemm.Gemm(true, false, t, dh, t, 1, pr, t, w.datt[o:], d, 1, dv[o:], d)
			causalSoftmaxGrad(pr, dp, t, scale)
			gemm.Gemm(false, false, t, dh, t, 1, dp, t, a.k[o:], d, 1, dq[o:], d)
			gemm.Gemm(true, false, t, dh, t, 1, dp, t, a.q[o:], d, 1, dk[o:], d)
		}
	}
}
