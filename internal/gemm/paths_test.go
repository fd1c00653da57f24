package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// product is one call of Gemm: op(A) is m x k, op(B) k x n.
type product struct {
	ta, tb        bool
	m, n, k       int
	lda, ldb, ldc int
}

// tinyShapes are the products of the tiny transformer (width 8, context
// 16, 24 = q|k|v, vocabulary 25) and the NanoGPT-960, with the models'
// leading dimensions: dense layers over 1024 rows, and the attention of
// one sequence and head reading q, k and v in place (leading dimension 24).
var tinyShapes = []struct {
	name string
	p    product
}{
	{"fwd-qkv", product{false, false, 1024, 24, 8, 8, 24, 24}},
	{"fwd-8", product{false, false, 1024, 8, 8, 8, 8, 8}},
	{"fwd-head", product{false, false, 1024, 25, 8, 8, 25, 25}},
	{"dx-qkv", product{false, true, 1024, 8, 24, 24, 24, 8}},
	{"dx-head", product{false, true, 1024, 8, 25, 25, 25, 8}},
	{"dw-qkv", product{true, false, 8, 24, 1024, 8, 24, 24}},
	{"dw-head", product{true, false, 8, 25, 1024, 8, 25, 25}},
	{"att-qk", product{false, true, 16, 16, 8, 24, 24, 16}},
	{"att-pv", product{false, false, 16, 8, 16, 16, 24, 8}},
	{"att-dv", product{true, false, 16, 8, 16, 16, 8, 24}},
	{"att-dq", product{false, false, 16, 8, 16, 16, 24, 24}},
}

// operands returns random A, B and C for p, sized by the leading
// dimensions plus one element past the last row, so that an access past
// the matrices does not fault but is caught by the tests.
func operands[T Float](rng *rand.Rand, p product) (a, b, c []T) {
	ar, br := p.m, p.k
	if p.ta {
		ar = p.k
	}
	if p.tb {
		br = p.n
	}
	a, b, c = make([]T, ar*p.lda+1), make([]T, br*p.ldb+1), make([]T, p.m*p.ldc+1)
	for _, v := range [][]T{a, b, c} {
		for i := range v {
			v[i] = T(rng.NormFloat64())
		}
	}
	return a, b, c
}

// naive returns alpha op(A) op(B) + beta C (float64, a triple loop) and,
// per element, the sum of the magnitudes of its terms, the scale of its
// rounding error. beta = 0 ignores C.
func naive[T Float](p product, alpha float64, a, b []T, beta float64, c []T) (want, mag []float64) {
	want, mag = make([]float64, p.m*p.n), make([]float64, p.m*p.n)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.n; j++ {
			var s, sm float64
			for q := 0; q < p.k; q++ {
				ai, bi := i*p.lda+q, q*p.ldb+j
				if p.ta {
					ai = q*p.lda + i
				}
				if p.tb {
					bi = j*p.ldb + q
				}
				x, y := float64(a[ai]), float64(b[bi])
				s += x * y
				sm += math.Abs(x * y)
			}
			w, wm := alpha*s, math.Abs(alpha)*sm
			if beta != 0 {
				w += beta * float64(c[i*p.ldc+j])
				wm += math.Abs(beta * float64(c[i*p.ldc+j]))
			}
			want[i*p.n+j], mag[i*p.n+j] = w, wm
		}
	}
	return want, mag
}

// checkProduct runs Gemm on p with C filled with NaN for beta = 0 and
// compares it with naive, to rel times the magnitude of each element's
// terms. Elements of C outside the m x n product (the padding to ldc and
// one element past the end) must keep their bits.
func checkProduct[T Float](t *testing.T, rng *rand.Rand, p product, alpha, beta float64, rel float64) {
	t.Helper()
	a, b, c := operands[T](rng, p)
	if beta == 0 {
		for i := 0; i < p.m; i++ {
			for j := 0; j < p.n; j++ {
				c[i*p.ldc+j] = T(math.NaN())
			}
		}
	}
	before := append([]T(nil), c...)
	want, mag := naive(p, alpha, a, b, beta, c)
	Gemm(p.ta, p.tb, p.m, p.n, p.k, T(alpha), a, p.lda, b, p.ldb, T(beta), c, p.ldc)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc && i*p.ldc+j < len(c); j++ {
			got := float64(c[i*p.ldc+j])
			if j >= p.n {
				if math.Float64bits(got) != math.Float64bits(float64(before[i*p.ldc+j])) {
					t.Fatalf("%+v alpha %g beta %g: C[%d,%d] outside the product changed from %g to %g", p, alpha, beta, i, j, before[i*p.ldc+j], got)
				}
				continue
			}
			w := want[i*p.n+j]
			if d := math.Abs(got - w); !(d <= rel*(mag[i*p.n+j]+1e-300)) {
				t.Fatalf("%+v alpha %g beta %g: C[%d,%d] = %g, want %g", p, alpha, beta, i, j, got, w)
			}
		}
	}
	if last := len(c) - 1; math.Float64bits(float64(c[last])) != math.Float64bits(float64(before[last])) {
		t.Fatalf("%+v: the element past C changed", p)
	}
}

// TestGemmPaths compares every kernel, tail and transpose path with the
// triple loop: the models' tiny shapes, the CNN's, and all m, n in 1..33 with k in a
// spread over 1..33, both transposes, beta 0 (C full of NaN, which must
// be overwritten), 1 and 0.5, alpha 1 and 0.5, leading dimensions wider
// than the matrices.
func TestGemmPaths(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testGemmPaths[float32](t, 1e-5) })
	t.Run("float64", func(t *testing.T) { testGemmPaths[float64](t, 1e-12) })
}

func testGemmPaths[T Float](t *testing.T, rel float64) {
	rng := rand.New(rand.NewPCG(7, 8))
	ab := [][2]float64{{1, 0}, {0.5, 0}, {1, 1}, {0.5, 1}, {1, 0.5}, {0.5, 0.5}}
	for _, s := range tinyShapes {
		for _, x := range ab {
			checkProduct[T](t, rng, s.p, x[0], x[1], rel)
		}
	}
	for _, s := range cnnShapes {
		checkProduct[T](t, rng, s.p, 1, s.beta, rel)
	}
	for m := 1; m <= 33; m++ {
		for n := 1; n <= 33; n++ {
			for _, k := range []int{1, 3, 8, 16, 33} {
				for tr := 0; tr < 4; tr++ {
					p := product{ta: tr&1 != 0, tb: tr&2 != 0, m: m, n: n, k: k}
					// Leading dimensions 0 to 2 wider than the stored rows.
					p.lda, p.ldb, p.ldc = k+(m+n)%3, n+(n+k)%3, n+(m+k)%3
					if p.ta {
						p.lda = m + (n+k)%3
					}
					if p.tb {
						p.ldb = k + (m+n)%3
					}
					x := ab[(m+n+k+tr)%len(ab)]
					checkProduct[T](t, rng, p, x[0], x[1], rel)
				}
			}
		}
	}
}

// TestGemmDeterministic checks that a product does not depend on the
// garbage in C for beta = 0, nor on what ran before it (scratch reuse):
// the ensembles rely on bit-identical reruns.
func TestGemmDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range tinyShapes {
		p := s.p
		p.m += 3 // a row tail too
		if p.ta {
			p.lda += 3
		}
		a, b, _ := operands[float32](rng, p)
		c1, c2 := make([]float32, p.m*p.ldc), make([]float32, p.m*p.ldc)
		for i := range c2 {
			c2[i] = float32(rng.NormFloat64())
		}
		Gemm(p.ta, p.tb, p.m, p.n, p.k, 0.5, a, p.lda, b, p.ldb, 0, c1, p.ldc)
		Gemm(p.ta, p.tb, p.m, p.n, p.k, 0.5, a, p.lda, b, p.ldb, 0, c2, p.ldc)
		for i := 0; i < p.m; i++ {
			for j := 0; j < p.n; j++ {
				if math.Float32bits(c1[i*p.ldc+j]) != math.Float32bits(c2[i*p.ldc+j]) {
					t.Fatalf("%s: C[%d,%d] = %g then %g", s.name, i, j, c1[i*p.ldc+j], c2[i*p.ldc+j])
				}
			}
		}
	}
}

// BenchmarkTinyShapes times the tiny transformer's products (tinyShapes)
// in both precisions with beta = 1 (as the models call them, into cleared
// or bias-filled outputs) and, for the dense products, beta = 0.
func BenchmarkTinyShapes(b *testing.B) {
	b.Run("f32", func(b *testing.B) { benchTiny[float32](b) })
	b.Run("f64", func(b *testing.B) { benchTiny[float64](b) })
}

func benchTiny[T Float](b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range tinyShapes {
		for _, beta := range []T{1, 0} {
			if beta == 0 && s.p.m < 1024 {
				continue
			}
			p := s.p
			x, y, z := operands[T](rng, p)
			b.Run(fmt.Sprintf("%s/beta%g", s.name, float64(beta)), func(b *testing.B) {
				for b.Loop() {
					Gemm(p.ta, p.tb, p.m, p.n, p.k, 1, x, p.lda, y, p.ldb, beta, z, p.ldc)
				}
			})
		}
	}
}

// TestTransposeInto checks the blocked transpose of gemmAsm's B, edges
// included, against the definition.
func TestTransposeInto(t *testing.T) {
	if !useAsm {
		t.Skip("the transpose runs only on the assembly path")
	}
	for rows := 1; rows <= 13; rows++ {
		for cols := 1; cols <= 13; cols++ {
			lda := cols + rows%3
			a := make([]float64, rows*lda)
			for i := range a {
				a[i] = float64(i)
			}
			a32 := make([]float32, len(a))
			for i, v := range a {
				a32[i] = float32(v)
			}
			d, d32 := make([]float64, rows*cols+1), make([]float32, rows*cols+1)
			d[len(d)-1], d32[len(d32)-1] = -1, -1
			transposeInto(d, a, rows, cols, lda)
			transposeInto(d32, a32, rows, cols, lda)
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					if w := a[i*lda+j]; d[j*rows+i] != w || d32[j*rows+i] != float32(w) {
						t.Fatalf("%d x %d: dst[%d,%d] = %g, %g, want %g", rows, cols, j, i, d[j*rows+i], d32[j*rows+i], w)
					}
				}
			}
			if d[len(d)-1] != -1 || d32[len(d32)-1] != -1 {
				t.Fatalf("%d x %d: wrote past the transpose", rows, cols)
			}
		}
	}
}

// cnnShapes are the per-image products of the CIFAR-10 CNN (width 16:
// channels 3, 16, 32, 64 on 32x32, 16x16 and 8x8 images), as
// models/fused_cnn.go calls them: the forward product W col, the weight
// gradient col dy^T and the input gradient W^T dy.
var cnnShapes = []struct {
	name string
	p    product
	beta float64
}{
	{"fwd0", product{false, false, 16, 1024, 27, 27, 1024, 1024}, 0},
	{"fwd1", product{false, false, 32, 256, 144, 144, 256, 256}, 0},
	{"fwd2", product{false, false, 64, 64, 288, 288, 64, 64}, 0},
	{"dw0", product{false, false, 27, 16, 1024, 1024, 16, 16}, 1},
	{"dw1", product{false, false, 144, 32, 256, 256, 32, 32}, 1},
	{"dw2", product{false, false, 288, 64, 64, 64, 64, 64}, 1},
	{"dx1", product{false, false, 144, 256, 32, 32, 256, 256}, 0},
	{"dx2", product{false, false, 288, 64, 64, 64, 64, 64}, 0},
}

// BenchmarkCNNShapes times the CNN's per-image products (cnnShapes) in
// both precisions; the float64 ones are the survey's Hessian-vector
// products' main cost.
func BenchmarkCNNShapes(b *testing.B) {
	b.Run("f32", func(b *testing.B) { benchCNN[float32](b) })
	b.Run("f64", func(b *testing.B) { benchCNN[float64](b) })
}

func benchCNN[T Float](b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range cnnShapes {
		p := s.p
		x, y, z := operands[T](rng, p)
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				Gemm(p.ta, p.tb, p.m, p.n, p.k, 1, x, p.lda, y, p.ldb, T(s.beta), z, p.ldc)
			}
			b.ReportMetric(float64(2*p.m*p.n*p.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestPanelsFMAOrder checks, bit for bit, that the float64 panel kernels
// compute each element of C as one FMA chain over k in order, whatever
// the panel width: so the choice of kernel (12, 8 or 4 columns, by shape)
// changes speed, never results. The CNN's products cover every width.
func TestPanelsFMAOrder(t *testing.T) {
	if !useAsm {
		t.Skip("no AVX2/FMA: the products go through gonum")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range cnnShapes {
		p := s.p
		a, b, c := operands[float64](rng, p)
		Gemm(p.ta, p.tb, p.m, p.n, p.k, 1, a, p.lda, b, p.ldb, 0, c, p.ldc)
		for i := 0; i < p.m; i++ {
			for j := 0; j < p.n; j++ {
				var acc float64
				for q := 0; q < p.k; q++ {
					acc = math.FMA(a[i*p.lda+q], b[q*p.ldb+j], acc)
				}
				if got := c[i*p.ldc+j]; math.Float64bits(got) != math.Float64bits(acc) {
					t.Fatalf("%s: C[%d,%d] = %v, the FMA chain gives %v", s.name, i, j, got, acc)
				}
			}
		}
	}
}
