package models

import (
	"fmt"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opsTransformer is the transformer architecture as a Gorgonia graph of
// custom ops: the embeddings are one embedOp; each LayerNorm is one
// layerNormOp; each attention is one attnOp between the q, k, v and output
// projections; the MLP is a dense layer, a geluOp and a dense layer; the
// loss is one xentOp. Dense layers are splitDenseOps (denseOp with its
// products split across goroutines). Only the residual additions stay
// Gorgonia's own nodes (Add, and the gradient sums Gorgonia makes for the
// residual stream). Its parameters, their layout and initialisation are
// transformer's (params and classifier are promoted), so it computes the
// same function as the plain graph and the fused kernels, with every
// option of TransformerConfig.
type opsTransformer struct{ *transformer }

func (t opsTransformer) build(b *builder, n int) (out, loss *G.Node, err error) {
	if b.dtype == tensor.Float32 {
		return buildOpsTransformer[float32](t.transformer, b, n)
	}
	return buildOpsTransformer[float64](t.transformer, b, n)
}

func buildOpsTransformer[T float](t *transformer, b *builder, n int) (out, loss *G.Node, err error) {
	d, ctx, H, hidden, bias := t.cfg.Width, t.cfg.Context, t.cfg.Heads, t.hidden(), t.cfg.HasBias()
	m := n * ctx
	procs := runtime.GOMAXPROCS(0)
	tokens := b.input(fromTokens, "tokens", tensor.Shape{m, t.vocab}, t.vocab)
	x, err := G.ApplyOp(embedOp[T]{newEmbedStage[T](m, ctx, t.vocab, d)}, tokens, b.param("tok.embedding"), b.param("pos.embedding"))
	if err != nil {
		return nil, nil, fmt.Errorf("embedding: %w", err)
	}

	lnParts := layerNormParts(m, d, procs)
	layerNorm := func(x *G.Node, name string) (*G.Node, error) {
		op := layerNormOp[T]{newLayerNormStage[T](name, m, d, lnParts)}
		y, err := G.ApplyOp(op, x, b.param(name+".gain"), b.param(name+".bias"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return y, nil
	}
	dense := func(x *G.Node, name string, in, out int, bias bool) (*G.Node, error) {
		layer := newDenseLayer[T](name, m, in, out, false)
		layer.noBias = !bias
		op := splitDenseOp[T]{layer, denseParts(m, in, out, procs)}
		operands := []*G.Node{x, b.param(name + ".weight")}
		if bias {
			operands = append(operands, b.param(name+".bias"))
		}
		y, err := G.ApplyOp(op, operands...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return y, nil
	}

	for l := 0; l < t.cfg.Layers; l++ {
		p := fmt.Sprintf("block%d.", l)
		h, err := layerNorm(x, p+"ln1")
		if err != nil {
			return nil, nil, err
		}
		var qkv [3]*G.Node
		for i, part := range []string{"q", "k", "v"} {
			if qkv[i], err = dense(h, p+"attn."+part, d, d, bias); err != nil {
				return nil, nil, err
			}
		}
		attn := attnOp[T]{newAttnStage[T](p+"attn", n, ctx, H, d, attnParts(n, ctx, d, procs))}
		a, err := G.ApplyOp(attn, qkv[0], qkv[1], qkv[2])
		if err != nil {
			return nil, nil, fmt.Errorf("%sattn: %w", p, err)
		}
		if a, err = dense(a, p+"attn.proj", d, d, bias); err != nil {
			return nil, nil, err
		}
		if x, err = G.Add(x, a); err != nil {
			return nil, nil, err
		}
		if h, err = layerNorm(x, p+"ln2"); err != nil {
			return nil, nil, err
		}
		if h, err = dense(h, p+"mlp.fc", d, hidden, bias); err != nil {
			return nil, nil, err
		}
		gs := newGeluStage[T](p+"mlp.gelu", m, hidden, geluParts(m, hidden, procs))
		gs.erf = t.cfg.GELU == "erf"
		gelu := geluOp[T]{gs}
		if h, err = G.ApplyOp(gelu, h); err != nil {
			return nil, nil, fmt.Errorf("%smlp.gelu: %w", p, err)
		}
		if h, err = dense(h, p+"mlp.proj", hidden, d, bias); err != nil {
			return nil, nil, err
		}
		if x, err = G.Add(x, h); err != nil {
			return nil, nil, err
		}
	}
	if x, err = layerNorm(x, "lnf"); err != nil {
		return nil, nil, err
	}
	logits, err := dense(x, "head", d, t.vocab, t.cfg.HasHeadBias())
	if err != nil {
		return nil, nil, err
	}
	y := b.input(fromLabels, "targets", tensor.Shape{m, t.vocab}, t.vocab)
	if loss, err = G.ApplyOp(xentOp[T]{newXentStage[T]("loss", m, t.vocab)}, logits, y); err != nil {
		return nil, nil, fmt.Errorf("loss: %w", err)
	}
	return logits, loss, nil
}
