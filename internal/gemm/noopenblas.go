//go:build !openblas

package gemm

// Backend names the code that computes the products in this build.
const Backend = "sgdyn AVX2/FMA kernels, gonum native BLAS without AVX2"

const useOpenBLAS = false

func openblasGemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	panic("unreachable: built without the openblas tag")
}
