package models

import "testing"

// TestPortableFallback runs the exp/tanh tests on the code paths of
// machines without AVX2 (scalar exp32 and tanh32); internal/gemm tests its
// own portable path.
func TestPortableFallback(t *testing.T) {
	if !haveAVX2 {
		t.Skip("this machine already uses the portable paths")
	}
	haveAVX2 = false
	defer func() { haveAVX2 = true }()
	t.Run("exps", TestExpsTanhs)
	t.Run("fused-vs-plain", TestFusedMatchesPlain)
}
