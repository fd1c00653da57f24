package models

import "fmt"

// The ops implementation ("impl: ops") stays inside Gorgonia: the network
// is an ordinary expression graph, differentiated by Gorgonia's symbolic
// Grad and run by its TapeMachine, but the stages Gorgonia computes slowly
// are the custom ops of internal/gop, one per stage of the network (a conv
// stage, a whole transformer block, the transformer's head).

// newOpsModel builds the custom-op Gorgonia graph of a ("impl: ops"): the
// CNN's (cnn_graph.go) or the transformer's (transformer_graph.go).
// Config.Validate rejects impl ops for other kinds, since silently running
// the plain graph instead would misreport what was run.
func newOpsModel(a arch, dtype string, chunk int, seed uint64) (Model, error) {
	switch a := a.(type) {
	case *cnn:
		return newGraphModel(opsCNN{a}, dtype, chunk, seed)
	case *transformer:
		return newGraphModel(opsTransformer{a}, dtype, chunk, seed)
	}
	return nil, fmt.Errorf("impl ops: no custom-op graph for %T (only cnn and transformer have one)", a)
}

// defaultImpl is the implementation a model of kind runs when its config
// leaves Impl unset: the custom-op Gorgonia graph for the CNN and the
// transformer, whose steps it runs within 1.15x of the fused kernels' at
// their default sizes (BENCHMARKS.md); the fused kernels for the rest.
// Gorgonia's machine costs each step a fixed ~0.3 ms, which at the paper's
// 960-parameter transformer is 1.5-1.8x the fused step, so the configs of
// tiny transformers (quick, paper-exp2-nanogpt) ask for impl fused.
func defaultImpl(kind string) string {
	if kind == "cnn" || kind == "transformer" {
		return "ops"
	}
	return "fused"
}
