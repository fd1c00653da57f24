package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// transformer is a causal character-level language model: token and
// position embeddings, pre-LayerNorm blocks of multi-head causal
// self-attention and a GELU MLP (MLPRatio x width), a final LayerNorm and
// the untied output head. The loss is the mean next-character
// cross-entropy over all positions.
type transformer struct {
	cfg   TransformerConfig
	vocab int
}

func newTransformer(c TransformerConfig, s Shape) (*transformer, error) {
	if s.Vocab < 2 {
		return nil, fmt.Errorf("needs a vocabulary of at least 2 symbols, data has %d", s.Vocab)
	}
	return &transformer{cfg: c, vocab: s.Vocab}, nil
}

func (t *transformer) classifier() bool { return true }

// hidden is the MLP's hidden width.
func (t *transformer) hidden() int { return t.cfg.MLPRatio * t.cfg.Width }

func (t *transformer) params() []paramSpec {
	d, T, L := t.cfg.Width, t.cfg.Context, t.cfg.Layers
	gpt := t.cfg.Init == "normal0.02"
	embStd := 1.0
	if gpt {
		embStd = 0.02
	}
	// linear declares a weight (in, out) and, with bias, a bias. The
	// residual projections' weights are scaled down under fanin, since the
	// residual branches sum over 2L terms.
	linear := func(name string, in, out int, bias, residual bool) []paramSpec {
		ps := denseParams(name, in, out)
		switch {
		case gpt:
			ps[0].std = 0.02
		case residual:
			ps[0].std /= math.Sqrt(2 * float64(L))
		}
		if !bias {
			ps = ps[:1]
		}
		return ps
	}
	bias := t.cfg.HasBias()
	ps := []paramSpec{
		{name: "tok.embedding", shape: []int{t.vocab, d}, std: embStd},
		{name: "pos.embedding", shape: []int{T, d}, std: embStd},
	}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("block%d.", l)
		ps = append(ps, layerNormParams(p+"ln1", d)...)
		for _, name := range []string{"q", "k", "v"} {
			ps = append(ps, linear(p+"attn."+name, d, d, bias, false)...)
		}
		ps = append(ps, linear(p+"attn.proj", d, d, bias, true)...)
		ps = append(ps, layerNormParams(p+"ln2", d)...)
		ps = append(ps, linear(p+"mlp.fc", d, t.hidden(), bias, false)...)
		ps = append(ps, linear(p+"mlp.proj", t.hidden(), d, bias, true)...)
	}
	ps = append(ps, layerNormParams("lnf", d)...)
	return append(ps, linear("head", d, t.vocab, t.cfg.HasHeadBias(), false)...)
}

// dense is b.dense or, without biases, b.linear.
func (t *transformer) dense(b *builder, x *G.Node, name string, bias bool) (*G.Node, error) {
	if bias {
		return b.dense(x, name)
	}
	return b.linear(x, name)
}

func (t *transformer) build(b *builder, n int) (out, loss *G.Node, err error) {
	d, T := t.cfg.Width, t.cfg.Context
	m := n * T
	tokens := b.input(fromTokens, "tokens", tensor.Shape{m, t.vocab}, t.vocab)
	x, err := G.Mul(tokens, b.param("tok.embedding"))
	if err != nil {
		return nil, nil, err
	}
	x3 := G.Must(G.Reshape(x, tensor.Shape{n, T, d}))
	if x3, err = G.BroadcastAdd(x3, b.param("pos.embedding"), nil, []byte{0}); err != nil {
		return nil, nil, fmt.Errorf("position embedding: %w", err)
	}
	x = G.Must(G.Reshape(x3, tensor.Shape{m, d}))

	mask := make([]float64, T*T)
	for i := 0; i < T; i++ {
		for j := i + 1; j < T; j++ {
			mask[i*T+j] = -1e9 // exp underflows to exactly 0: no attention to the future
		}
	}
	maskNode := b.constant("causal_mask", tensor.Shape{T, T}, mask)

	for l := 0; l < t.cfg.Layers; l++ {
		p := fmt.Sprintf("block%d.", l)
		h, err := b.layerNorm(x, p+"ln1")
		if err != nil {
			return nil, nil, err
		}
		a, err := t.attention(b, h, p+"attn", n, maskNode)
		if err != nil {
			return nil, nil, fmt.Errorf("%sattn: %w", p, err)
		}
		if x, err = G.Add(x, a); err != nil {
			return nil, nil, err
		}
		if h, err = b.layerNorm(x, p+"ln2"); err != nil {
			return nil, nil, err
		}
		if h, err = t.dense(b, h, p+"mlp.fc", t.cfg.HasBias()); err != nil {
			return nil, nil, err
		}
		if t.cfg.GELU == "erf" {
			h, err = b.geluErf(h)
		} else {
			h, err = b.gelu(h)
		}
		if err != nil {
			return nil, nil, err
		}
		if h, err = t.dense(b, h, p+"mlp.proj", t.cfg.HasBias()); err != nil {
			return nil, nil, err
		}
		if x, err = G.Add(x, h); err != nil {
			return nil, nil, err
		}
	}
	if x, err = b.layerNorm(x, "lnf"); err != nil {
		return nil, nil, err
	}
	logits, err := t.dense(b, x, "head", t.cfg.HasHeadBias())
	if err != nil {
		return nil, nil, err
	}
	y := b.input(fromLabels, "targets", tensor.Shape{m, t.vocab}, t.vocab)
	loss, err = b.crossEntropy(logits, y, m)
	return logits, loss, err
}

// attention is multi-head causal self-attention of h (n*T, d).
func (t *transformer) attention(b *builder, h *G.Node, name string, n int, mask *G.Node) (*G.Node, error) {
	d, T, H := t.cfg.Width, t.cfg.Context, t.cfg.Heads
	dh := d / H
	heads := func(part string) (*G.Node, error) {
		p, err := t.dense(b, h, name+"."+part, t.cfg.HasBias())
		if err != nil {
			return nil, err
		}
		p = G.Must(G.Reshape(p, tensor.Shape{n, T, H, dh}))
		if p, err = G.Transpose(p, 0, 2, 1, 3); err != nil {
			return nil, err
		}
		return G.Reshape(p, tensor.Shape{n * H, T, dh})
	}
	q, err := heads("q")
	if err != nil {
		return nil, err
	}
	k, err := heads("k")
	if err != nil {
		return nil, err
	}
	v, err := heads("v")
	if err != nil {
		return nil, err
	}
	s, err := G.BatchedMatMul(q, k, false, true)
	if err != nil {
		return nil, err
	}
	if s, err = G.Mul(s, b.scalar(1/math.Sqrt(float64(dh)))); err != nil {
		return nil, err
	}
	if s, err = G.BroadcastAdd(s, mask, nil, []byte{0}); err != nil {
		return nil, fmt.Errorf("causal mask: %w", err)
	}
	if s, err = G.SoftMax(s, 2); err != nil {
		return nil, err
	}
	o, err := G.BatchedMatMul(s, v)
	if err != nil {
		return nil, err
	}
	o = G.Must(G.Reshape(o, tensor.Shape{n, H, T, dh}))
	if o, err = G.Transpose(o, 0, 2, 1, 3); err != nil {
		return nil, err
	}
	if o, err = G.Reshape(o, tensor.Shape{n * T, d}); err != nil {
		return nil, err
	}
	return t.dense(b, o, name+".proj", t.cfg.HasBias())
}
