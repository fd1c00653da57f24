package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/kern"
)

// blockStage is one whole pre-LayerNorm transformer block as a Gorgonia
// op, x -> x + attn(ln1(x)) -> h + mlp(ln2(h)), run by the fused kernels
// of the hand-written model (models, fused_transformer.go): LayerNorm, the q, k, v
// projections in one product of three times the width, causal attention
// with the heads read in place, the output projection, GELU MLP and both
// residual additions. Built of an op per layer, the block costs Gorgonia
// two dozen instructions, as many starts and joins of goroutines each way
// and residual sums it allocates; as one op it is one goroutine split
// forward and one backward, each part a contiguous run of sequences with
// its own activations and gradient accumulators, like the fused model's
// workers. Its gradOp (see gradStage) computes the gradients of x and of
// all the block's parameters in one pass.
type blockStage[T kern.Float] struct {
	name            string // e.g. "block0"
	n, t, d, hidden int
	heads           int
	bias, erf       bool
	parts           []*blockPart[T]
	wqkv, bqkv      []T // q, k, v weights (d, 3d) and biases side by side, packed per forward pass
	out             *tensor.Dense
	grads           []*tensor.Dense // per operand; grads[0] is dx
	shapes          []tensor.Shape
	hasGrad         bool
	data            [][]T // the operands' data of the running op, reused
}

// blockPart is one goroutine's share: sequences [lo, hi).
type blockPart[T kern.Float] struct {
	lo, hi int
	acts   blockActs[T]
	dqkv   []T // the gradient of acts.qkv
	datt   []T // the gradient of acts.att
	dp     []T // CausalAttentionBackward's scratch
	tmp    []T
	dg     []T
	g      []T // the part's parameter gradients in packed order (see blockStage.packedSizes)
}

// blockActs are the activations of one part's block kept for its
// gradient, laid out as the fused transformer's (models).
type blockActs[T kern.Float] struct {
	ln1x, ln1r, ln1y []T // LayerNorm 1: xhat, 1/std, output
	qkv, att         []T // projections q|k|v (m, 3d) and the heads' concatenated output
	p                []T // attention probabilities (n*heads, t, t)
	ln2x, ln2r, ln2y []T
	h1, g, th        []T // MLP pre-activation, GELU output and its derivative
}

// The block's operands after x, in the order of the models transformer's params; the
// biases only with bias.
const (
	blkLn1G = iota
	blkLn1B
	blkQ
	blkK
	blkV
	blkProj
	blkLn2G
	blkLn2B
	blkFc
	blkMproj
	blkParams
)

func newBlockStage[T kern.Float](name string, n, t, d, heads, hidden int, bias, erf bool, parts int) *blockStage[T] {
	s := &blockStage[T]{name: name, n: n, t: t, d: d, heads: heads, hidden: hidden, bias: bias, erf: erf}
	s.shapes = []tensor.Shape{{n * t, d}}
	for _, p := range s.paramShapes() {
		s.shapes = append(s.shapes, p)
	}
	s.wqkv = make([]T, 3*d*d)
	if bias {
		s.bqkv = make([]T, 3*d)
	}
	s.out = Buffer[T](n*t, d)
	parts = max(1, min(parts, n))
	per := (n + parts - 1) / parts
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		rows, m := hi-lo, (hi-lo)*t
		md := func() []T { return make([]T, m*d) }
		mh := m * hidden
		s.parts = append(s.parts, &blockPart[T]{lo: lo, hi: hi,
			acts: blockActs[T]{
				ln1x: md(), ln1r: make([]T, m), ln1y: md(),
				qkv: make([]T, 3*m*d), att: md(),
				p:    make([]T, rows*heads*t*t),
				ln2x: md(), ln2r: make([]T, m), ln2y: md(),
				h1: make([]T, mh), g: make([]T, mh), th: make([]T, mh),
			},
			tmp: md(),
		})
	}
	return s
}

// paramShapes are the shapes of the block's parameters, as operands.
func (s *blockStage[T]) paramShapes() []tensor.Shape {
	d, h := s.d, s.hidden
	var out []tensor.Shape
	lin := func(in, o int) {
		out = append(out, tensor.Shape{in, o})
		if s.bias {
			out = append(out, tensor.Shape{o})
		}
	}
	out = append(out, tensor.Shape{d}, tensor.Shape{d})
	lin(d, d)
	lin(d, d)
	lin(d, d)
	lin(d, d)
	out = append(out, tensor.Shape{d}, tensor.Shape{d})
	lin(d, h)
	lin(h, d)
	return out
}

// operand returns the index among the op's operands of parameter p (a
// blk constant), or of its bias with isBias.
func (s *blockStage[T]) operand(p int, isBias bool) int {
	i := 1 // x
	for q := 0; q < p; q++ {
		i++
		if s.bias && q != blkLn1G && q != blkLn1B && q != blkLn2G && q != blkLn2B {
			i++
		}
	}
	if isBias {
		if !s.bias {
			return -1
		}
		i++
	}
	return i
}

// BlockParts is how many goroutines a block over n sequences uses.
func BlockParts(n, t, d, hidden, procs int) int {
	return Workers(n, 3*t*(4*d*d+2*d*hidden+2*t*d), procs)
}

// allocGrad allocates the gradient buffers, once a gradient op is made.
// Each part's flat gradient vector g holds the parameters' gradients in
// operand order, except that q, k and v's weights are one (d, 3d) block,
// as packQKV lays them out, and their biases one 3d vector (see
// packedOffsets).
func (s *blockStage[T]) allocGrad() {
	if s.hasGrad {
		return
	}
	s.hasGrad = true
	for _, sh := range s.shapes {
		s.grads = append(s.grads, Buffer[T](sh...))
	}
	size := 0
	for _, sh := range s.shapes[1:] {
		size += sh.TotalSize()
	}
	for _, p := range s.parts {
		m := (p.hi - p.lo) * s.t
		p.g = make([]T, size)
		p.dqkv, p.datt = make([]T, 3*m*s.d), make([]T, m*s.d)
		p.dp = make([]T, s.t*s.t)
		p.dg = make([]T, m*s.hidden)
	}
}

// blockOp is the forward pass: x (n*t, d) and the block's parameters (see
// blockStage.paramShapes) to the block's output (n*t, d).
type blockOp[T kern.Float] struct{ s *blockStage[T] }

var _ G.SDOp = blockOp[float32]{}

func (op blockOp[T]) Arity() int { return len(op.s.shapes) }

func (op blockOp[T]) Type() hm.Type {
	var ts []hm.Type
	for _, sh := range op.s.shapes {
		ts = append(ts, TensorType(len(sh)))
	}
	return hm.NewFnType(append(ts, TensorType(2))...)
}

func (op blockOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := CheckShapes(op, in, op.s.shapes...); err != nil {
		return nil, err
	}
	return op.s.shapes[0].Clone(), nil
}

// operands checks the values of the op's operands and returns their data.
func (s *blockStage[T]) operands(vals []G.Value) ([][]T, error) {
	if len(vals) < len(s.shapes) {
		return nil, fmt.Errorf("%s: want %d inputs, got %d", s.name, len(s.shapes), len(vals))
	}
	if s.data == nil {
		s.data = make([][]T, len(s.shapes))
	}
	data := s.data
	for i, sh := range s.shapes {
		v, err := Data[T](vals[i], sh.TotalSize(), s.name)
		if err != nil {
			return nil, fmt.Errorf("operand %d: %w", i, err)
		}
		data[i] = v
	}
	return data, nil
}

// param returns parameter p's data (or its bias's, nil without biases)
// from the operands' data.
func (s *blockStage[T]) param(data [][]T, p int, isBias bool) []T {
	i := s.operand(p, isBias)
	if i < 0 {
		return nil
	}
	return data[i]
}

// packQKV lays the q, k and v weights side by side, row i of the (d, 3d)
// result being q's row i, k's and v's, as the fused transformer's packQKV does (models).
func (s *blockStage[T]) packQKV(data [][]T) {
	d := s.d
	for j, p := range [3]int{blkQ, blkK, blkV} {
		w := s.param(data, p, false)
		for i := 0; i < d; i++ {
			copy(s.wqkv[i*3*d+j*d:][:d], w[i*d:][:d])
		}
		if s.bias {
			copy(s.bqkv[j*d:][:d], s.param(data, p, true))
		}
	}
}

func (op blockOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	data, err := s.operands(vals)
	if err != nil {
		return nil, err
	}
	out, err := Output[T](s.out, s.shapes[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	s.packQKV(data)
	prm := func(p int) []T { return s.param(data, p, false) }
	bias := func(p int) []T { return s.param(data, p, true) }
	d, t, hid := s.d, s.t, s.hidden
	Parallel(len(s.parts), len(s.parts), func(i, _, _ int) {
		p := s.parts[i]
		n := p.hi - p.lo
		m := n * t
		a := &p.acts
		x, y := data[0][p.lo*t*d:p.hi*t*d], out[p.lo*t*d:p.hi*t*d]
		kern.LayerNormForward(x, m, d, prm(blkLn1G), prm(blkLn1B), a.ln1x, a.ln1r, a.ln1y)
		kern.DenseForward(a.ln1y, m, d, s.wqkv, s.bqkv, 3*d, a.qkv)
		kern.CausalAttention(a.qkv, n, t, d, s.heads, a.p, a.att)
		kern.DenseForward(a.att, m, d, prm(blkProj), bias(blkProj), d, p.tmp)
		copy(y, x)
		kern.Add(y, p.tmp)
		kern.LayerNormForward(y, m, d, prm(blkLn2G), prm(blkLn2B), a.ln2x, a.ln2r, a.ln2y)
		kern.DenseForward(a.ln2y, m, d, prm(blkFc), bias(blkFc), hid, a.h1)
		switch {
		case s.erf && s.hasGrad:
			kern.GELUErfForwardDeriv(a.h1[:m*hid], a.g, a.th)
		case s.erf:
			kern.GELUErfForward(a.h1[:m*hid], a.g)
		case s.hasGrad:
			kern.GELUForwardDeriv(a.h1[:m*hid], a.g, a.th)
		default:
			kern.GELUForward(a.h1[:m*hid], a.g, a.th)
		}
		kern.DenseForward(a.g, m, hid, prm(blkMproj), bias(blkMproj), d, p.tmp)
		kern.Add(y, p.tmp)
	})
	return s.out, nil
}

func (op blockOp[T]) ReturnsPtr() bool      { return false }
func (op blockOp[T]) CallsExtern() bool     { return false }
func (op blockOp[T]) OverwritesInput() int  { return -1 }
func (op blockOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op blockOp[T]) Hashcode() uint32      { return Hash(op) }

func (op blockOp[T]) String() string {
	s := op.s
	return fmt.Sprintf("TransformerBlock[%s]{n %d, t %d, d %d, heads %d, hidden %d, bias %t, erf %t, parts %d}",
		s.name, s.n, s.t, s.d, s.heads, s.hidden, s.bias, s.erf, len(s.parts))
}

func (op blockOp[T]) DiffWRT(int) []bool { return op.s.wrt() }

func (op blockOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.s.allocGrad()
	return gradSymDiff(op.s, inputs, output, grad)
}

// The stage's gradStage methods.

func (s *blockStage[T]) forwardOp() G.Op               { return blockOp[T]{s} }
func (s *blockStage[T]) operandShapes() []tensor.Shape { return s.shapes }
func (s *blockStage[T]) outShape() tensor.Shape        { return s.shapes[0] }

func (s *blockStage[T]) wrt() []bool {
	w := make([]bool, len(s.shapes))
	for i := range w {
		w[i] = true
	}
	return w
}

// packedOffsets returns the offset in a part's flat gradient of each
// parameter p's weight (or gain) and bias, q, k and v sharing blkQ's.
func (s *blockStage[T]) packedOffsets() (w, b [blkParams]int) {
	d, h := s.d, s.hidden
	for i := range b {
		b[i] = -1 // no bias: the LayerNorms' shifts are parameters of their own
	}
	off := 0
	take := func(n int) int { o := off; off += n; return o }
	w[blkLn1G], w[blkLn1B] = take(d), take(d)
	w[blkQ] = take(3 * d * d)
	if s.bias {
		b[blkQ] = take(3 * d)
	}
	lin := func(p, in, o int) {
		w[p] = take(in * o)
		if s.bias {
			b[p] = take(o)
		}
	}
	lin(blkProj, d, d)
	w[blkLn2G], w[blkLn2B] = take(d), take(d)
	lin(blkFc, d, h)
	lin(blkMproj, h, d)
	return w, b
}

func (s *blockStage[T]) backward(vals []G.Value) error {
	data, err := s.operands(vals)
	if err != nil {
		return err
	}
	dout, err := Data[T](vals[len(s.shapes)+1], s.shapes[0].TotalSize(), s.name+" output gradient")
	if err != nil {
		return err
	}
	prm := func(p int) []T { return s.param(data, p, false) }
	wo, bo := s.packedOffsets()
	d, t, hid := s.d, s.t, s.hidden
	dxAll := sliceOf[T](s.grads[0])
	Parallel(len(s.parts), len(s.parts), func(i, _, _ int) {
		p := s.parts[i]
		n := p.hi - p.lo
		m := n * t
		a, g := &p.acts, p.g
		clear(g)
		gw := func(q, size int) []T { return g[wo[q]:][:size] }
		gb := func(q, size int) []T {
			if bo[q] < 0 {
				return nil
			}
			return g[bo[q]:][:size]
		}
		dx := dxAll[p.lo*t*d : p.hi*t*d]
		copy(dx, dout[p.lo*t*d:p.hi*t*d]) // through the second residual
		dg := p.dg[:m*hid]
		kern.DenseBackward(a.g, m, hid, prm(blkMproj), d, dx, gw(blkMproj, hid*d), gb(blkMproj, d), dg)
		kern.Mul(dg, a.th[:m*hid]) // a.th holds the GELU derivative
		kern.DenseBackward(a.ln2y, m, d, prm(blkFc), hid, dg, gw(blkFc, d*hid), gb(blkFc, hid), p.tmp)
		kern.LayerNormBackward(p.tmp, m, d, prm(blkLn2G), a.ln2x, a.ln2r, gw(blkLn2G, d), gw(blkLn2B, d), dx)
		kern.DenseBackward(a.att, m, d, prm(blkProj), d, dx, gw(blkProj, d*d), gb(blkProj, d), p.datt)
		kern.CausalAttentionBackward(a.qkv, a.p, n, t, d, s.heads, p.datt, p.dp, p.dqkv)
		kern.DenseBackward(a.ln1y, m, d, s.wqkv, 3*d, p.dqkv, gw(blkQ, 3*d*d), gb(blkQ, 3*d), p.tmp)
		kern.LayerNormBackward(p.tmp, m, d, prm(blkLn1G), a.ln1x, a.ln1r, gw(blkLn1G, d), gw(blkLn1B, d), dx)
	})
	// Sum the parts' gradients into the first's, then hand each operand
	// its share, unpacking q, k and v.
	g := s.parts[0].g
	for _, p := range s.parts[1:] {
		kern.Add(g, p.g)
	}
	for q := blkLn1G; q < blkParams; q++ {
		switch q {
		case blkK, blkV:
			continue
		case blkQ:
			for j, r := range [3]int{blkQ, blkK, blkV} {
				dst := sliceOf[T](s.grads[s.operand(r, false)])
				for i := 0; i < d; i++ {
					copy(dst[i*d:][:d], g[wo[blkQ]+i*3*d+j*d:][:d])
				}
				if s.bias {
					copy(sliceOf[T](s.grads[s.operand(r, true)]), g[bo[blkQ]+j*d:][:d])
				}
			}
			continue
		}
		dst := sliceOf[T](s.grads[s.operand(q, false)])
		copy(dst, g[wo[q]:][:len(dst)])
		if bo[q] >= 0 {
			dst := sliceOf[T](s.grads[s.operand(q, true)])
			copy(dst, g[bo[q]:][:len(dst)])
		}
	}
	return nil
}

func (s *blockStage[T]) grad(i int) (*tensor.Dense, error) {
	if _, err := Output[T](s.grads[i], s.shapes[i]); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return s.grads[i], nil
}
