//go:build openblas

package gemm

import "github.com/sgdyn/sgdyn/internal/gemm/openblas"

// Backend names the code that computes the products in this build.
const Backend = "OpenBLAS through cgo (build tag openblas)"

const useOpenBLAS = true

func init() {
	// The models already run one goroutine per core; OpenBLAS's own threads
	// would compete with them.
	openblas.SetThreads(1)
}

// openblasGemm is Gemm through OpenBLAS. The caller has checked m, n > 0.
func openblasGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if k == 0 {
		scale(m, n, beta, c, ldc)
		return
	}
	switch a := any(a).(type) {
	case []float32:
		openblas.Sgemm(transA, transB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		openblas.Dgemm(transA, transB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
