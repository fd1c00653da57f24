package models

import (
	"fmt"
	"runtime"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opsTransformer is the transformer architecture as a Gorgonia graph of
// custom ops, one per stage of the network: the embeddings are one
// embedOp, each transformer block one blockOp (LayerNorms, attention, MLP
// and both residual additions), and the final LayerNorm, output layer and
// loss one headOp. Gorgonia's Grad differentiates it through each op's
// gradOp (see gradStage), and its TapeMachine runs it: four instructions
// forward for two blocks, and one gradient instruction per stage plus a
// pick per parameter backward. Its parameters, their layout and
// initialisation are transformer's (params and classifier are promoted),
// so it computes the same function as the plain graph and the fused
// kernels, with every option of TransformerConfig.
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
	// Each stage's operands after its input are its parameters in the
	// order transformer.params declares them.
	params := func(prefix string) []*G.Node {
		var ps []*G.Node
		for _, p := range t.params() {
			if strings.HasPrefix(p.name, prefix) {
				ps = append(ps, b.param(p.name))
			}
		}
		return ps
	}
	blockParts := blockParts(n, ctx, d, hidden, procs)
	for l := 0; l < t.cfg.Layers; l++ {
		name := fmt.Sprintf("block%d", l)
		s := newBlockStage[T](name, n, ctx, d, H, hidden, bias, t.cfg.GELU == "erf", blockParts)
		if x, err = G.ApplyOp(blockOp[T]{s}, append([]*G.Node{x}, params(name+".")...)...); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	head := newHeadStage[T]("head", m, d, t.vocab, t.cfg.HasHeadBias(), headParts(m, d, t.vocab, procs))
	y := b.input(fromLabels, "targets", tensor.Shape{m, t.vocab}, t.vocab)
	operands := append(append([]*G.Node{x}, params("lnf.")...), params("head.")...)
	if loss, err = G.ApplyOp(headOp[T]{head}, append(operands, y)...); err != nil {
		return nil, nil, fmt.Errorf("head: %w", err)
	}
	if out, err = G.ApplyOp(headLogitsOp[T]{head}, loss); err != nil {
		return nil, nil, fmt.Errorf("head logits: %w", err)
	}
	return out, loss, nil
}
