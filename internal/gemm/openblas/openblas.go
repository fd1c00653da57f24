//go:build openblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas-openblas.h>
*/
import "C"

// SetThreads sets how many threads OpenBLAS uses.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

func trans(t bool) uint32 {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

// checkBounds panics unless A, B and C hold the elements a row-major
// product reads: the C side does not check.
func checkBounds(transA, transB bool, m, n, k, lda, ldb, ldc, la, lb, lc int) {
	ar, br := m, k
	if transA {
		ar = k
	}
	if transB {
		br = n
	}
	if m < 1 || n < 1 || k < 1 || la < (ar-1)*lda+1 || lb < (br-1)*ldb+1 || lc < (m-1)*ldc+n {
		panic("openblas: matrix shapes do not fit their slices")
	}
}

// Sgemm computes C = alpha op(A) op(B) + beta C in float32 for row-major
// matrices; m, n and k must be positive.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkBounds(transA, transB, m, n, k, lda, ldb, ldc, len(a), len(b), len(c))
	C.cblas_sgemm(C.CblasRowMajor, trans(transA), trans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

// Dgemm is Sgemm in float64.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	checkBounds(transA, transB, m, n, k, lda, ldb, ldc, len(a), len(b), len(c))
	C.cblas_dgemm(C.CblasRowMajor, trans(transA), trans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(&a[0]), C.blasint(lda), (*C.double)(&b[0]), C.blasint(ldb),
		C.double(beta), (*C.double)(&c[0]), C.blasint(ldc))
}
