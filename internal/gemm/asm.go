package gemm

import "sync"

// Gonum's native Gemm runs on SSE (4 floats, no FMA) and was measured at
// ~20 GFLOP/s per core on the CNN's float32 shapes; the AVX2/FMA kernels in
// kern_amd64.s reach ~110. They need no packing: a 4-row block of C
// is accumulated in registers while the kernel walks one row of B and one
// element of each of 4 rows of A per step of k.

// asmKernel is one micro-kernel: C[4 x w] += alpha A[4 x k] B[k x w].
type asmKernel[T Float] func(k int, a *T, rs, ps int, b *T, ldb int, c *T, ldc int, alpha T)

// gemmScratch recycles the scratch of the kernels' tails and transposed
// operands, so that products allocate nothing once warm. Pools rather than
// model fields because gemm is a free function called from every worker
// goroutine; a pool holds no state a caller can observe.
var gemmScratch32, gemmScratch64 = sync.Pool{New: func() any { return new([]float32) }}, sync.Pool{New: func() any { return new([]float64) }}

func scratchPool[T Float]() *sync.Pool {
	var z T
	if _, ok := any(z).(float32); ok {
		return &gemmScratch32
	}
	return &gemmScratch64
}

// gemmAsm is gemm on the AVX2/FMA kernels. A transposed A is read in place
// through the kernels' strides; a transposed B is first copied into plain
// layout, which on the models' shapes (B is a weight matrix or one
// attention head) costs far less than the product. The caller checks
// useAsm.
func gemmAsm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	rs, ps := lda, 1
	if transA {
		rs, ps = 1, lda
	}
	if !transB || k == 0 {
		gemmStrided(m, n, k, alpha, a, rs, ps, b, ldb, beta, c, ldc)
		return
	}
	pool := scratchPool[T]()
	buf := pool.Get().(*[]T)
	*buf = grow(*buf, k*n)
	transposeInto(*buf, b, n, k, ldb) // b is n x k
	gemmStrided(m, n, k, alpha, a, rs, ps, *buf, n, beta, c, ldc)
	pool.Put(buf)
}

// gemmStrided computes C = alpha A B + beta C for A (m x k) with element
// (i, p) at a[i*rs + p*ps], row-major B (k x n) and C (m x n).
func gemmStrided[T Float](m, n, k int, alpha T, a []T, rs, ps int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// The assembly does not check bounds: check the last element once.
	_ = c[(m-1)*ldc+n-1]
	if k > 0 {
		_ = a[(m-1)*rs+(k-1)*ps]
		_ = b[(k-1)*ldb+n-1]
	}
	scale(m, n, beta, c, ldc)
	if k == 0 || alpha == 0 {
		return
	}
	// The wide kernel covers two YMM registers per row of C, the narrow
	// one one register: 16 and 8 float32 columns, 8 and 4 float64.
	var wide, narrow asmKernel[T]
	var ww int
	switch any(alpha).(type) {
	case float32:
		wide, narrow = any(asmKernel[float32](sgemmKern4x16)).(asmKernel[T]), any(asmKernel[float32](sgemmKern4x8)).(asmKernel[T])
		ww = 16
	default:
		wide, narrow = any(asmKernel[float64](dgemmKern4x8)).(asmKernel[T]), any(asmKernel[float64](dgemmKern4x4)).(asmKernel[T])
		ww = 8
	}
	nw := ww / 2
	m4, nn := m&^3, n-n%nw
	j := 0
	for ; j+ww <= n; j += ww {
		for i := 0; i < m4; i += 4 {
			wide(k, &a[i*rs], rs, ps, &b[j], ldb, &c[i*ldc+j], ldc, alpha)
		}
	}
	for ; j < nn; j += nw {
		for i := 0; i < m4; i += 4 {
			narrow(k, &a[i*rs], rs, ps, &b[j], ldb, &c[i*ldc+j], ldc, alpha)
		}
	}
	if ww == 16 && n-nn >= 4 {
		// Four float32 columns left (an attention head of width 4): the
		// XMM kernel does them without packing.
		a32, b32, c32, alpha32 := any(a).([]float32), any(b).([]float32), any(c).([]float32), any(alpha).(float32)
		for i := 0; i < m4; i += 4 {
			sgemmKern4x4(k, &a32[i*rs], rs, ps, &b32[nn], ldb, &c32[i*ldc+nn], ldc, alpha32)
		}
		nn += 4
	}
	mt, nt := m-m4, n-nn
	if mt == 0 && nt == 0 {
		return
	}
	// Tails. The last nt < nw columns of the first m4 rows: copy them into
	// a zero-padded nw-column panel of B and add the kernel's 4 x nw
	// results into C. The last mt < 4 rows: copy them into a zero-padded
	// 4-row panel of A, multiply it by all of B (a product without row
	// tail) into scratch, and add its first mt rows into C.
	pool := scratchPool[T]()
	buf := pool.Get().(*[]T)
	*buf = grow(*buf, 4*k+nw*k+4*nw+4*n)
	at, bt := (*buf)[:4*k], (*buf)[4*k:(4+nw)*k]
	ct, cr := (*buf)[(4+nw)*k:(4+nw)*k+4*nw], (*buf)[(4+nw)*k+4*nw:(4+nw)*k+4*nw+4*n]
	if nt > 0 && m4 > 0 && 4*nt <= nw {
		// One or two columns (a vocabulary of 25): dot products in
		// scalar code cost less than copying them into a panel a row of
		// B at a time and running the kernel mostly on zeros.
		for jj := nn; jj < n; jj++ {
			for i := 0; i < m4; i += 4 {
				var s0, s1, s2, s3 T
				for p, o := 0, i*rs; p < k; p, o = p+1, o+ps {
					bv := b[p*ldb+jj]
					s0 += a[o] * bv
					s1 += a[o+rs] * bv
					s2 += a[o+2*rs] * bv
					s3 += a[o+3*rs] * bv
				}
				c[i*ldc+jj] += alpha * s0
				c[(i+1)*ldc+jj] += alpha * s1
				c[(i+2)*ldc+jj] += alpha * s2
				c[(i+3)*ldc+jj] += alpha * s3
			}
		}
	} else if nt > 0 && m4 > 0 {
		for p := 0; p < k; p++ {
			clear(bt[p*nw+nt : (p+1)*nw])
			copy(bt[p*nw:p*nw+nt], b[p*ldb+nn:p*ldb+n])
		}
		for i := 0; i < m4; i += 4 {
			clear(ct)
			narrow(k, &a[i*rs], rs, ps, &bt[0], nw, &ct[0], nw, alpha)
			for r := 0; r < 4; r++ {
				addTo(c[(i+r)*ldc+nn:(i+r)*ldc+n], ct[r*nw:r*nw+nt])
			}
		}
	}
	if mt > 0 {
		clear(at)
		for r := 0; r < mt; r++ {
			for p := 0; p < k; p++ {
				at[r*k+p] = a[(m4+r)*rs+p*ps]
			}
		}
		gemmStrided(4, n, k, alpha, at, k, 1, b, ldb, 0, cr, n)
		for r := 0; r < mt; r++ {
			addTo(c[(m4+r)*ldc:(m4+r)*ldc+n], cr[r*n:(r+1)*n])
		}
	}
	pool.Put(buf)
}

// scale multiplies the m x n matrix C by beta; beta = 0 clears it, NaNs
// included.
func scale[T Float](m, n int, beta T, c []T, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// addTo adds src into dst element-wise.
func addTo[T Float](dst, src []T) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// grow returns a slice of length n, reusing buf's storage when it is large
// enough.
func grow[T any](buf []T, n int) []T {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]T, n)
}

// transposeInto writes the transpose of the rows x cols matrix a (leading
// dimension lda) into dst (cols x rows, leading dimension rows).
func transposeInto[T Float](dst []T, a []T, rows, cols, lda int) {
	const blk = 32 // cache blocking: both sides of a tile stay in L1
	for i0 := 0; i0 < rows; i0 += blk {
		i1 := min(i0+blk, rows)
		for j0 := 0; j0 < cols; j0 += blk {
			j1 := min(j0+blk, cols)
			for i := i0; i < i1; i++ {
				row := a[i*lda : i*lda+j1]
				for j := j0; j < j1; j++ {
					dst[j*rows+i] = row[j]
				}
			}
		}
	}
}
