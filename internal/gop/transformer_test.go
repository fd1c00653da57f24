package gop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestLayerNormOpGradient checks the LayerNorm op's gradient ops against
// finite differences, on one goroutine and split across three.
func TestLayerNormOpGradient(t *testing.T) {
	for k, parts := range []int{1, 3} {
		rng := rand.New(rand.NewPCG(uint64(k), 21))
		l := newLayerNormStage[float64]("ln", 7, 5, parts)
		op := layerNormOp[float64]{l}
		wrt := op.DiffWRT(3)
		og := newOpsGraph(t, rng, op, wrt, opsOperand{"x", l.rowShape()}, opsOperand{"gain", l.vecShape()}, opsOperand{"bias", l.vecShape()})
		og.check(t, "layernorm", wrt)
		l1 := og.run(t)
		dx1 := append([]float64(nil), l.dx.Data().([]float64)...)
		if l2 := og.run(t); l1 != l2 || relErr(l.dx.Data().([]float64), dx1) != 0 {
			t.Errorf("second run differs: loss %g vs %g", l2, l1)
		}
	}
}

// TestGeluOpGradient checks the GELU op's gradient op against finite
// differences, on one goroutine and split across two.
func TestGeluOpGradient(t *testing.T) {
	for k, parts := range []int{1, 2} {
		rng := rand.New(rand.NewPCG(uint64(k), 22))
		s := newGeluStage[float64]("gelu", 5, 6, parts)
		op := geluOp[float64]{s}
		wrt := op.DiffWRT(1)
		og := newOpsGraph(t, rng, op, wrt, opsOperand{"x", s.shape()})
		og.check(t, "gelu", wrt)
	}
}

// TestAttnOpGradient checks the attention op's gradient ops (score, q, k
// and v gradients) against finite differences: one head and several, one
// goroutine and sequences split across goroutines, including an idle one.
func TestAttnOpGradient(t *testing.T) {
	cases := []struct {
		name                  string
		n, ctx, heads, d, pts int
	}{
		{"one-head", 2, 4, 1, 3, 1},
		{"heads", 3, 5, 3, 6, 1},
		{"split", 4, 3, 2, 4, 3}, // parts of 2, 2 and 0 sequences
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(k), 23))
			a := newAttnStage[float64]("attn", c.n, c.ctx, c.heads, c.d, c.pts)
			op := attnOp[float64]{a}
			wrt := op.DiffWRT(3)
			s := a.qShape
			og := newOpsGraph(t, rng, op, wrt, opsOperand{"q", s}, opsOperand{"k", s}, opsOperand{"v", s})
			og.check(t, c.name, wrt)
			l1 := og.run(t)
			dq1 := append([]float64(nil), a.dq.Data().([]float64)...)
			if l2 := og.run(t); l1 != l2 || relErr(a.dq.Data().([]float64), dq1) != 0 {
				t.Errorf("second run differs: loss %g vs %g", l2, l1)
			}
		})
	}
}

// TestAttnOpIsCausal checks that no output position depends on a later
// one: changing the last position's k and v leaves the other positions'
// outputs as they were.
func TestAttnOpIsCausal(t *testing.T) {
	const n, ctx, heads, d = 2, 4, 2, 4
	rng := rand.New(rand.NewPCG(1, 24))
	a := newAttnStage[float64]("attn", n, ctx, heads, d, 1)
	q, k, v := randn(rng, n*ctx*d), randn(rng, n*ctx*d), randn(rng, n*ctx*d)
	val := func(x []float64) G.Value { return tensor.New(tensor.WithShape(n*ctx, d), tensor.WithBacking(x)) }
	run := func() []float64 {
		out, err := attnOp[float64]{a}.Do(val(q), val(k), val(v))
		if err != nil {
			t.Fatal(err)
		}
		return append([]float64(nil), out.Data().([]float64)...)
	}
	before := run()
	for s := 0; s < n; s++ {
		last := (s*ctx + ctx - 1) * d
		for j := 0; j < d; j++ {
			k[last+j] += 1
			v[last+j] -= 2
		}
	}
	after := run()
	for s := 0; s < n; s++ {
		for i := 0; i < (ctx-1)*d; i++ {
			if o := s*ctx*d + i; before[o] != after[o] {
				t.Fatalf("sequence %d, output %d changed with the last position: %g -> %g", s, i, before[o], after[o])
			}
		}
	}
}

// TestTransformerOpsRejectShapes checks that the ops refuse operands of the
// wrong shape when the graph is built.
func TestTransformerOpsRejectShapes(t *testing.T) {
	g := G.NewGraph()
	node := func(name string, s ...int) *G.Node {
		return G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(name))
	}
	l := newLayerNormStage[float64]("ln", 6, 4, 1)
	if _, err := G.ApplyOp(layerNormOp[float64]{l}, node("x", 6, 4), node("g", 5), node("b", 4)); err == nil {
		t.Error("LayerNorm accepted a gain of 5 for width 4")
	}
	a := newAttnStage[float64]("attn", 2, 3, 2, 4, 1)
	if _, err := G.ApplyOp(attnOp[float64]{a}, node("q", 6, 4), node("k", 6, 4), node("v", 5, 4)); err == nil {
		t.Error("attention accepted v of 5 rows for 2 sequences of 3")
	}
	s := newGeluStage[float64]("gelu", 3, 8, 1)
	if _, err := G.ApplyOp(geluOp[float64]{s}, node("h", 3, 4)); err == nil {
		t.Error("GELU accepted (3, 4) for (3, 8)")
	}
}

// TestSplitDenseOpGradient checks the split dense op's gradient ops against
// finite differences, on one goroutine (denseOp's code) and three, with
// splits that leave the last goroutine fewer rows (5 = 2+2+1 rows of x, 7 =
// 3+3+1 rows of W).
func TestSplitDenseOpGradient(t *testing.T) {
	for k, parts := range []int{1, 3} {
		rng := rand.New(rand.NewPCG(uint64(k), 32))
		d := newDenseLayer[float64]("dense", 5, 7, 4, false)
		op := splitDenseOp[float64]{d, parts}
		wrt := op.DiffWRT(3)
		og := newOpsGraph(t, rng, op, wrt, opsOperand{"x", d.inShape()}, opsOperand{"weight", d.weightShape()}, opsOperand{"bias", d.biasShape()})
		og.check(t, "split dense", wrt)
	}
}

// TestEmbedOpGradient checks the embedding op's gradient ops (token and
// position embeddings) against finite differences, with repeated tokens.
func TestEmbedOpGradient(t *testing.T) {
	const n, ctx, vocab, d = 3, 4, 5, 3
	rng := rand.New(rand.NewPCG(1, 33))
	e := newEmbedStage[float64](n*ctx, ctx, vocab, d)
	op := embedOp[float64]{e}
	wrt := op.DiffWRT(3)
	og := newOpsGraph(t, rng, op, wrt, opsOperand{"tokens", e.tokensShape()}, opsOperand{"tok", e.tokShape()}, opsOperand{"pos", e.posShape()})
	onehot := og.data[0]
	clear(onehot)
	for r := 0; r < n*ctx; r++ {
		onehot[r*vocab+rng.IntN(vocab)] = 1
	}
	og.check(t, "embedding", wrt)
}

// TestXentOpGradient checks the cross-entropy op's loss against a direct
// computation and its gradient op against finite differences, through a
// graph that scales the loss by 3 so that the incoming gradient is not 1.
func TestXentOpGradient(t *testing.T) {
	const m, k = 6, 5
	rng := rand.New(rand.NewPCG(1, 31))
	g := G.NewGraph()
	logits := randn(rng, m*k)
	onehot := make([]float64, m*k)
	labels := make([]int, m)
	for i := range labels {
		labels[i] = rng.IntN(k)
		onehot[i*k+labels[i]] = 1
	}
	ln := G.NewTensor(g, tensor.Float64, 2, G.WithShape(m, k), G.WithName("logits"),
		G.WithValue(tensor.New(tensor.WithShape(m, k), tensor.WithBacking(logits))))
	yn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(m, k), G.WithName("targets"),
		G.WithValue(tensor.New(tensor.WithShape(m, k), tensor.WithBacking(onehot))))
	x := newXentStage[float64]("loss", m, k)
	loss, err := G.ApplyOp(xentOp[float64]{x}, ln, yn)
	if err != nil {
		t.Fatal(err)
	}
	scaled := G.Must(G.Mul(loss, G.NewConstant(3.0)))
	var lv G.Value
	G.Read(scaled, &lv)
	if _, err := G.Grad(scaled, ln); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	run := func() float64 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		return lv.Data().(float64)
	}
	l := run()
	var want float64
	for i, y := range labels {
		row := logits[i*k : (i+1)*k]
		var s float64
		for _, v := range row {
			s += math.Exp(v)
		}
		want += 3 * (math.Log(s) - row[y]) / m
	}
	if math.Abs(l-want) > 1e-12*math.Abs(want) {
		t.Errorf("loss %.15g, want %.15g", l, want)
	}
	gv, err := ln.Grad()
	if err != nil {
		t.Fatal(err)
	}
	grad := append([]float64(nil), gv.Data().([]float64)...)
	checkFD(t, "cross-entropy logits", logits, run, grad)
}

// TestBlockOpGradient checks the whole-block op's one gradient op and its
// picks (x and every parameter) against finite differences, with and
// without biases, both GELUs, and sequences split unevenly across parts.
// The parameters are fed in the order blockStage.paramShapes declares, as
// models' transformer graph feeds the transformer's params.
func TestBlockOpGradient(t *testing.T) {
	cases := []struct {
		name                          string
		n, ctx, d, heads, hidden, pts int
		bias, erf                     bool
	}{
		{"one", 1, 3, 4, 1, 8, 1, true, false},
		{"heads-erf", 2, 4, 6, 2, 12, 1, true, true},
		{"nobias", 2, 3, 4, 2, 8, 1, false, false},
		{"split", 3, 3, 4, 2, 8, 2, true, true}, // parts of 2 and 1 sequences
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(k), 29))
			s := newBlockStage[float64]("block", c.n, c.ctx, c.d, c.heads, c.hidden, c.bias, c.erf, c.pts)
			op := blockOp[float64]{s}
			wrt := op.DiffWRT(len(s.shapes))
			var operands []opsOperand
			for i, sh := range s.shapes {
				operands = append(operands, opsOperand{fmt.Sprintf("operand%d", i), sh})
			}
			og := newOpsGraph(t, rng, op, wrt, operands...)
			// The k bias shifts each query's scores by a constant, which
			// the softmax ignores: its gradient is zero, where a relative
			// error compares rounding noise. It is checked on its own.
			fd := append([]bool(nil), wrt...)
			kb := s.operand(blkK, true)
			if kb >= 0 {
				fd[kb] = false
			}
			og.check(t, c.name, fd)
			if kb >= 0 {
				for i, v := range s.grads[kb].Data().([]float64) {
					if math.Abs(v) > 1e-12 {
						t.Errorf("k bias gradient %d is %g, want 0", i, v)
					}
				}
			}
			l1 := og.run(t)
			g1 := append([]float64(nil), s.grads[3].Data().([]float64)...)
			if l2 := og.run(t); l1 != l2 || relErr(s.grads[3].Data().([]float64), g1) != 0 {
				t.Errorf("second run differs: loss %g vs %g", l2, l1)
			}
		})
	}
}

// TestHeadOpGradient checks the head op's one gradient op and its picks
// (x, the final LayerNorm's gain and bias, the output weight and bias)
// against finite differences of 2.5 times its loss, so that the loss's
// incoming gradient is not 1; with and without the output bias, on one
// goroutine and rows split unevenly across three.
func TestHeadOpGradient(t *testing.T) {
	cases := []struct {
		name        string
		m, d, k, pt int
		bias        bool
	}{
		{"one", 5, 4, 3, 1, true},
		{"nobias", 5, 4, 3, 1, false},
		{"split", 7, 6, 9, 3, true}, // parts of 3, 3 and 1 rows
	}
	for c0, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c0), 31))
			s := newHeadStage[float64]("head", c.m, c.d, c.k, c.bias, c.pt)
			g := G.NewGraph()
			og := &opsGraph{}
			for i, sh := range s.shapes {
				v := randn(rng, sh.TotalSize())
				if i == s.targets() {
					clear(v)
					for r := 0; r < c.m; r++ {
						v[r*c.k+rng.IntN(c.k)] = 1
					}
				}
				n := G.NewTensor(g, tensor.Float64, len(sh), G.WithShape(sh...), G.WithName(fmt.Sprintf("operand%d", i)),
					G.WithValue(tensor.New(tensor.WithShape(sh...), tensor.WithBacking(v))))
				og.inputs = append(og.inputs, n)
				og.data = append(og.data, v)
			}
			out, err := G.ApplyOp(headOp[float64]{s}, og.inputs...)
			if err != nil {
				t.Fatal(err)
			}
			loss := G.Must(G.Mul(out, G.NewConstant(2.5)))
			G.Read(loss, &og.loss)
			wrt := s.wrt()
			if _, err := G.Grad(loss, og.inputs[:s.targets()]...); err != nil {
				t.Fatal(err)
			}
			og.vm = G.NewTapeMachine(g)
			og.check(t, c.name, wrt)
			l1 := og.run(t)
			g1 := append([]float64(nil), s.grads[3].Data().([]float64)...)
			if l2 := og.run(t); l1 != l2 || relErr(s.grads[3].Data().([]float64), g1) != 0 {
				t.Errorf("second run differs: loss %g vs %g", l2, l1)
			}
		})
	}
}
