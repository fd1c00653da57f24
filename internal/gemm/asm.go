package gemm

import "sync"

// Gonum's native Gemm runs on SSE (4 floats, no FMA) and was measured at
// ~20 GFLOP/s per core on the CNN's float32 shapes; the AVX2/FMA kernels in
// kern_amd64.s reach ~110. They need no packing: a 4-row block of C
// is accumulated in registers while the kernel walks one row of B and one
// element of each of 4 rows of A per step of k. Each kernel call covers a
// whole column panel of C (all its 4-row blocks): the tiny transformer's
// blocks (k = 8 or 16) are a few dozen FMAs, too little to pay for a call
// each.

// gemmScratch recycles the scratch of the row tail and of transposed
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

// gemmAsm is gemm on the AVX2/FMA kernels, for m, n > 0. A transposed A
// is read in place through the kernels' strides; a transposed B is first
// copied into plain layout, which on the models' shapes (B is a weight
// matrix or one attention head) costs far less than the product. One
// function rather than a chain of calls: on an attention head's products
// (~100 ns) each call with a dozen arguments showed in the profile. The
// caller checks useAsm.
func gemmAsm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	// The assembly does not check bounds: check the last element once.
	_ = c[(m-1)*ldc+n-1]
	if k == 0 || alpha == 0 {
		scale(m, n, beta, c, ldc)
		return
	}
	rs, ps := lda, 1
	if transA {
		rs, ps = 1, lda
	}
	_ = a[(m-1)*rs+(k-1)*ps]
	var bt *[]T
	if transB {
		_ = b[(n-1)*ldb+k-1]
		bt = scratchPool[T]().Get().(*[]T)
		*bt = grow(*bt, k*n)
		transposeInto(*bt, b, n, k, ldb) // b is n x k
		b, ldb = *bt, n
	} else {
		_ = b[(k-1)*ldb+n-1]
	}
	// beta = 0: the kernels store alpha A B without reading C, so C is
	// neither cleared first nor read (NaNs in it are overwritten).
	store := 0
	if beta == 0 {
		store = 1
	} else {
		scale(m, n, beta, c, ldc)
	}
	m4 := m &^ 3
	if m4 > 0 {
		panels(m4/4, n, k, alpha, a, rs, ps, b, ldb, c, ldc, store)
	}
	if m4 < m {
		rowTail(m4, m-m4, n, k, alpha, a, rs, ps, b, ldb, c, ldc, store)
	}
	if bt != nil {
		scratchPool[T]().Put(bt)
	}
}

// rowTail does the last mt < 4 rows of gemmAsm's product, from row m4:
// it copies them into a zero-padded 4-row panel of A, multiplies it by all
// of B into scratch, and stores or adds its first mt rows into C.
func rowTail[T Float](m4, mt, n, k int, alpha T, a []T, rs, ps int, b []T, ldb int, c []T, ldc int, store int) {
	pool := scratchPool[T]()
	buf := pool.Get().(*[]T)
	*buf = grow(*buf, 4*k+4*n)
	at, cr := (*buf)[:4*k], (*buf)[4*k:4*k+4*n]
	clear(at[mt*k:])
	for r := 0; r < mt; r++ {
		for p, o := 0, (m4+r)*rs; p < k; p, o = p+1, o+ps {
			at[r*k+p] = a[o]
		}
	}
	panels(1, n, k, alpha, at, k, 1, b, ldb, cr, n, 1)
	for r := 0; r < mt; r++ {
		row := c[(m4+r)*ldc : (m4+r)*ldc+n]
		if store != 0 {
			copy(row, cr[r*n:(r+1)*n])
		} else {
			addTo(row, cr[r*n:(r+1)*n])
		}
	}
	pool.Put(buf)
}

// panels runs the panel kernels over the mb 4-row blocks of C and all n
// columns.
func panels[T Float](mb, n, k int, alpha T, a []T, rs, ps int, b []T, ldb int, c []T, ldc int, store int) {
	switch a := any(a).(type) {
	case []float32:
		panels32(mb, n, k, any(alpha).(float32), a, rs, ps, any(b).([]float32), ldb, any(c).([]float32), ldc, store)
	case []float64:
		panels64(mb, n, k, any(alpha).(float64), a, rs, ps, any(b).([]float64), ldb, any(c).([]float64), ldc, store)
	}
}

// mask32 and mask64 hold the lane masks of the Mask kernels: &mask32[8-w]
// starts w all-ones lanes followed by zeros, and so does &mask64[4-w].
var (
	mask32 = [16]int32{-1, -1, -1, -1, -1, -1, -1, -1}
	mask64 = [8]int64{-1, -1, -1, -1}
)

// panels32 is panels in float32: panels of 24 columns (3 YMM registers a
// row; measured faster than 16 + 8 on the transformer's 24 and 25), of 16
// and 8, and for the last n%8 either dot products (see below) or a masked
// panel. 32 columns are cut 16 + 16, two two-register panels.
func panels32(mb, n, k int, alpha float32, a []float32, rs, ps int, b []float32, ldb int, c []float32, ldc int, store int) {
	j := 0
	for ; n-j >= 24 && n-j != 32; j += 24 {
		sgemmPanel24(mb, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
	}
	for ; n-j >= 16; j += 16 {
		sgemmPanel16(mb, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
	}
	// One register a row: blocks of 8 rows, then one of 4 if mb is odd.
	tall, o := mb/2, mb/2*8
	if n-j >= 8 {
		if tall > 0 {
			sgemmPanel8Tall(tall, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
		}
		if mb%2 != 0 {
			sgemmPanel8(1, k, &a[o*rs], rs, ps, &b[j], ldb, &c[o*ldc+j], ldc, alpha, store)
		}
		j += 8
	}
	if j < n && ps == 1 && n-j <= 3 && k <= 64 {
		// A few columns (a vocabulary of 25) of a product with
		// contiguous rows of A: dot products over whole registers of A
		// rather than the masked kernel, mostly idle lanes.
		// x is B's column, zero-padded to a whole register.
		var x [64]float32
		for ; j < n; j++ {
			for p := 0; p < k; p++ {
				x[p] = b[p*ldb+j]
			}
			sdotCol(mb, k, &a[0], rs, &x[0], &c[j], ldc, alpha, store, &mask32[(8-k%8)%8])
		}
	}
	if j < n && rs == 1 && n-j <= 3 && tall > 0 {
		// The same with A read transposed (a weight gradient): a
		// register of 8 rows of A times an element of B a step.
		for jj := j; jj < n; jj++ {
			saxpyCol(tall, k, &a[0], ps, &b[jj], ldb, &c[jj], ldc, alpha, store)
		}
		if mb%2 != 0 {
			sgemmPanelMask(1, k, &a[o*rs], rs, ps, &b[j], ldb, &c[o*ldc+j], ldc, alpha, store, &mask32[8-(n-j)])
		}
		j = n
	}
	if j < n {
		mask := &mask32[8-(n-j)]
		if tall > 0 {
			sgemmPanelMaskTall(tall, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store, mask)
		}
		if mb%2 != 0 {
			sgemmPanelMask(1, k, &a[o*rs], rs, ps, &b[j], ldb, &c[o*ldc+j], ldc, alpha, store, mask)
		}
	}
}

// panels64 is panels in float64: panels of 12 columns (3 YMM registers a
// row) when there are at least 4 blocks and k >= panel12MinK, then of 8,
// 4 and a masked one for the last n%4. The 12-column kernel keeps 12
// accumulators, enough to cover the FMA latency where the 8-column one's
// 8 are not: on the CNN's float64 products (BenchmarkCNNShapes, k 27 to
// 1024) it ran 8-56% faster. On the transformer's (k = 8 or 16, or only
// 2 blocks: BenchmarkTinyShapes) it was slower, hence the bounds.
func panels64(mb, n, k int, alpha float64, a []float64, rs, ps int, b []float64, ldb int, c []float64, ldc int, store int) {
	j := 0
	if mb >= 4 && k >= panel12MinK {
		for ; n-j >= 12; j += 12 {
			dgemmPanel12(mb, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
		}
	}
	for ; n-j >= 8; j += 8 {
		dgemmPanel8(mb, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
	}
	tall, o := mb/2, mb/2*8
	if n-j >= 4 {
		if tall > 0 {
			dgemmPanel4Tall(tall, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store)
		}
		if mb%2 != 0 {
			dgemmPanel4(1, k, &a[o*rs], rs, ps, &b[j], ldb, &c[o*ldc+j], ldc, alpha, store)
		}
		j += 4
	}
	if j < n && ps == 1 && n-j <= 2 && k <= 32 {
		// As in panels32.
		var x [32]float64
		for ; j < n; j++ {
			for p := 0; p < k; p++ {
				x[p] = b[p*ldb+j]
			}
			ddotCol(mb, k, &a[0], rs, &x[0], &c[j], ldc, alpha, store, &mask64[(4-k%4)%4])
		}
	}
	if j < n && rs == 1 && n-j == 1 {
		daxpyCol(mb, k, &a[0], ps, &b[j], ldb, &c[j], ldc, alpha, store)
		j = n
	}
	if j < n {
		mask := &mask64[4-(n-j)]
		if tall > 0 {
			dgemmPanelMaskTall(tall, k, &a[0], rs, ps, &b[j], ldb, &c[j], ldc, alpha, store, mask)
		}
		if mb%2 != 0 {
			dgemmPanelMask(1, k, &a[o*rs], rs, ps, &b[j], ldb, &c[o*ldc+j], ldc, alpha, store, mask)
		}
	}
}

// panel12MinK is the smallest k for which panels64 uses 12-column panels.
const panel12MinK = 24

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
// dimension lda) into dst (cols x rows, leading dimension rows): the 4 x 4
// blocks in assembly, the last rows%4 rows and cols%4 columns here. The
// transposed operands are small (a weight matrix, an attention head of
// 16 x 8), where a loop a element at a time cost as much as the product.
func transposeInto[T Float](dst []T, a []T, rows, cols, lda int) {
	r4, c4 := rows&^3, cols&^3
	if r4 > 0 && c4 > 0 {
		_ = a[(r4-1)*lda+c4-1]
		_ = dst[(c4-1)*rows+r4-1]
		switch d := any(dst).(type) {
		case []float32:
			stranspose4(r4/4, c4/4, &d[0], rows, &any(a).([]float32)[0], lda)
		case []float64:
			dtranspose4(r4/4, c4/4, &d[0], rows, &any(a).([]float64)[0], lda)
		}
	}
	for i := 0; i < r4; i++ {
		row := a[i*lda+c4 : i*lda+cols]
		for j, v := range row {
			dst[(c4+j)*rows+i] = v
		}
	}
	for i := r4; i < rows; i++ {
		row := a[i*lda : i*lda+cols]
		for j, v := range row {
			dst[j*rows+i] = v
		}
	}
}
