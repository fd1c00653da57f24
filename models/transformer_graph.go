package models

import (
	"fmt"
	"runtime"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gop"
)

// opsTransformer is the transformer architecture as a Gorgonia graph of
// custom ops (internal/gop), one per stage of the network: the embeddings
// are one op (gop.NewEmbed), each transformer block one (gop.NewBlock:
// LayerNorms, attention, MLP and both residual additions), and the final
// LayerNorm, output layer and loss one (gop.NewHead). Gorgonia's Grad
// differentiates it through each op's gradient op (one per stage for all
// its operands), and its TapeMachine runs it: four instructions
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
	x, err := G.ApplyOp(gop.NewEmbed[T](m, ctx, t.vocab, d), tokens, b.param("tok.embedding"), b.param("pos.embedding"))
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
	parts := gop.BlockParts(n, ctx, d, hidden, procs)
	for l := 0; l < t.cfg.Layers; l++ {
		name := fmt.Sprintf("block%d", l)
		op := gop.NewBlock[T](name, n, ctx, d, H, hidden, bias, t.cfg.GELU == "erf", parts)
		if x, err = G.ApplyOp(op, append([]*G.Node{x}, params(name+".")...)...); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	headLoss, headLogits := gop.NewHead[T]("head", m, d, t.vocab, t.cfg.HasHeadBias(), gop.HeadParts(m, d, t.vocab, procs))
	y := b.input(fromLabels, "targets", tensor.Shape{m, t.vocab}, t.vocab)
	operands := append(append([]*G.Node{x}, params("lnf.")...), params("head.")...)
	if loss, err = G.ApplyOp(headLoss, append(operands, y)...); err != nil {
		return nil, nil, fmt.Errorf("head: %w", err)
	}
	if out, err = G.ApplyOp(headLogits, loss); err != nil {
		return nil, nil, fmt.Errorf("head logits: %w", err)
	}
	return out, loss, nil
}
