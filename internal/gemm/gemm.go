// Package gemm computes dense row-major matrix products C = alpha op(A)
// op(B) + beta C in float32 and float64: on AVX2/FMA micro-kernels where the
// CPU has them (about five times gonum's native Sgemm here), through gonum's
// BLAS elsewhere. It allocates nothing once warm and never starts
// goroutines, so callers that already run one goroutine per core keep
// control of the cores.
package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Float is the element type of a product.
type Float interface{ ~float32 | ~float64 }

// gemmTile bounds the rows and columns of one call into gonum's Gemm. Gonum
// goes parallel (spawning goroutines and allocating) once a product spans
// four 64x64 blocks; the fused models already run one goroutine per core, so
// each call is cut into tiles of at most 64 x 192 to stay on gonum's serial,
// allocation-free path.
const (
	gemmTileM = 64
	gemmTileN = 192
)

// Gemm computes C = alpha op(A) op(B) + beta C for row-major matrices,
// where op(A) is m x k and op(B) is k x n and lda, ldb, ldc are the leading
// dimensions of A, B and C as stored. With beta = 0, C need not be
// initialised (NaNs in it are overwritten).
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if useOpenBLAS {
		openblasGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if useAsm {
		gemmAsm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := 0; i < m; i += gemmTileM {
		mi := min(gemmTileM, m-i)
		for j := 0; j < n; j += gemmTileN {
			nj := min(gemmTileN, n-j)
			// Offsets of the tile's first element in A, B and C.
			ao := i * lda
			if transA {
				ao = i
			}
			bo := j
			if transB {
				bo = j * ldb
			}
			gemmCall(transA, transB, mi, nj, k, alpha, a[ao:], lda, b[bo:], ldb, beta, c[i*ldc+j:], ldc)
		}
	}
}

func gemmCall[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	tA, tB := blas.NoTrans, blas.NoTrans
	if transA {
		tA = blas.Trans
	}
	if transB {
		tB = blas.Trans
	}
	var impl gonum.Implementation
	switch a := any(a).(type) {
	case []float32:
		impl.Sgemm(tA, tB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		impl.Dgemm(tA, tB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
