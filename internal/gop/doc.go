// Package gop holds Gorgonia custom ops (Gorgonia's Op and SDOp
// interfaces) over sgdyn's numeric kernels (internal/kern): the stages of
// the models' "impl: ops" graphs and of models.Graph, for Gorgonia graphs
// that stay ordinary expression graphs, differentiated by Gorgonia's
// symbolic Grad and run by its TapeMachine, but whose slow stages run the
// kernels. Each custom op owns its output and scratch buffers, so they are
// allocated once per compiled graph rather than once per step, and its
// gradient ops, made in SymDiff, read what the forward op remembered (e.g.
// each max-pool's winner) instead of recomputing it.
//
// The ops are coarse, one per stage of a network (a conv stage, a whole
// transformer block, the transformer's head), and each stage's gradient
// is one gradient op for all its operands plus a pick per further operand
// (gradStage, stage.go): every op is a machine instruction and, split
// across goroutines, a start and join of goroutines, which at one op per
// layer cost the transformer 1.7-2.3x the fused step. The finer ops
// (layerNormOp, attnOp, geluOp, splitDenseOp) remain, tested, as building
// blocks for other graphs.
//
// Gorgonia calls an op's Do with the values of its children and stores
// whatever Do returns in a register of the machine. An op that returns a
// buffer it owns must therefore expect later ops to use that buffer freely
// until the next step: Gorgonia's Reshape, for one, reshapes a register it
// may overwrite in place. Output restores the shape on every call.
//
// The helpers TensorType, Data, Buffer, Output, CheckShapes, Hash, Workers
// and Parallel are for writing further ops of the same kind, as the
// models.Graph API's own ops (models, custom_ops.go) are written.
package gop
