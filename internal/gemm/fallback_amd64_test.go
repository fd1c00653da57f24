package gemm

import "testing"

// TestPortableFallback runs the product tests on the path of machines
// without AVX2: gonum's BLAS.
func TestPortableFallback(t *testing.T) {
	if !useAsm {
		t.Skip("this machine already uses the portable path")
	}
	useAsm = false
	defer func() { useAsm = true }()
	TestGemm(t)
	TestGemmPaths(t)
}
