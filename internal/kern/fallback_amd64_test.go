package kern

import "testing"

// TestPortableFallback runs the tests that compare the kernels with
// plain references once more on the code paths of machines without AVX2
// (scalar exp32 and tanh32, the Go row loops); internal/gemm tests its own
// portable path, and models runs its fused-versus-plain comparison on
// these paths too (GODEBUG=cpu.avx2=off).
func TestPortableFallback(t *testing.T) {
	if !haveAVX2 {
		t.Skip("this machine already uses the portable paths")
	}
	haveAVX2 = false
	defer func() { haveAVX2 = true }()
	t.Run("exps", TestExpsTanhs)
	t.Run("exps64", TestExps64)
	t.Run("column-sums", TestColumnSumsAVX2)
	t.Run("cross-entropy", TestSoftmaxCrossEntropyAVX2)
	t.Run("causal-softmax", TestCausalSoftmaxAVX2)
	t.Run("causal-softmax64", TestCausalSoftmax64AVX2)
	t.Run("gelu-erf32", TestGeluErf32)
	t.Run("attention32", TestCausalAttentionFloat32)
}
