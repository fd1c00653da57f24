package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemm checks the products (AVX2 kernels where available) in float32
// and float64 against a float64 triple loop, over shapes that hit every
// kernel and tail, with transposes, strided operands, alpha and beta.
func TestGemm(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testGemm[float32](t, 1e-5) })
	t.Run("float64", func(t *testing.T) { testGemm[float64](t, 1e-13) })
}

func testGemm[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int{{1, 1, 1}, {4, 16, 3}, {5, 17, 9}, {7, 27, 33}, {5, 4, 300}, {6, 13, 20}, {9, 29, 11}, {3, 6, 5}, {16, 1024, 27}, {27, 256, 32}, {64, 65, 70}, {3, 8, 0}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			ta, tb := tr[0], tr[1]
			const pad = 3 // leading dimensions larger than the rows
			ar, ac := m, k
			if ta {
				ar, ac = k, m
			}
			br, bc := k, n
			if tb {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+pad, bc+pad, n+pad
			a := make([]T, ar*lda+1)
			b := make([]T, br*ldb+1)
			c := make([]T, m*ldc)
			for _, v := range [][]T{a, b, c} {
				for i := range v {
					v[i] = T(rng.NormFloat64())
				}
			}
			at := func(i, p int) float64 {
				if ta {
					return float64(a[p*lda+i])
				}
				return float64(a[i*lda+p])
			}
			bt := func(p, j int) float64 {
				if tb {
					return float64(b[j*ldb+p])
				}
				return float64(b[p*ldb+j])
			}
			const alpha, beta = 0.75, -0.5
			want := make([]float64, m*ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for p := 0; p < k; p++ {
						s += at(i, p) * bt(p, j)
					}
					want[i*ldc+j] = alpha*s + beta*float64(c[i*ldc+j])
				}
			}
			Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if d := math.Abs(float64(c[i*ldc+j]) - want[i*ldc+j]); d > tol*math.Sqrt(float64(k+1))*4 {
						t.Fatalf("m,n,k=%d,%d,%d trans %v,%v: C[%d,%d] = %g, want %g", m, n, k, ta, tb, i, j, c[i*ldc+j], want[i*ldc+j])
					}
				}
			}
		}
	}
}

// BenchmarkSgemm times the float32 product on the CNN's shapes.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range []struct {
		name    string
		m, n, k int
	}{{"conv1", 16, 1024, 27}, {"conv2", 32, 256, 144}, {"conv3", 64, 64, 288}, {"dw2", 144, 32, 256}, {"dcol2", 144, 256, 32}, {"dense", 128, 64, 1024}} {
		b.Run(s.name, func(b *testing.B) {
			a := make([]float32, s.m*s.k)
			bb := make([]float32, s.k*s.n)
			c := make([]float32, s.m*s.n)
			for b.Loop() {
				Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
			}
			b.ReportMetric(float64(2*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
