package kern

import (
	"math"
	"testing"
)

// TestSoftmaxNormRows checks SoftmaxCrossEntropy's AVX2 last pass
// (softmaxNormAVX2, softmaxNorm64AVX2) against the portable loop, for
// row widths with and without a scalar tail and more rows than one call's
// buffer of 64: the whole loss and gradient against the portable path
// within a few roundings (the portable exponentials differ from the
// vector ones by as much), the loss without the gradient bit for bit the
// loss with it, the rows left unscaled without the gradient, and in
// float64 the last pass alone bit for bit the portable loop's.
func TestSoftmaxNormRows(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	const m = 150
	labels := make([]int, m)
	for _, k := range []int{4, 8, 25} {
		for i := range labels {
			labels[i] = (5 * i) % k
		}
		src := make([]float64, m*k)
		for i := range src {
			src[i] = 4 * math.Sin(float64(3*i+k))
		}
		run := func(avx2 bool, l64 []float64, l32 []float32, grad bool) (float64, float64) {
			defer func(h bool) { haveAVX2 = h }(haveAVX2)
			haveAVX2 = avx2
			copy(l64, src)
			for i, v := range src {
				l32[i] = float32(v)
			}
			a := SoftmaxCrossEntropy(l64, m, k, labels, 0.25, grad, nil)
			b := SoftmaxCrossEntropy(l32, m, k, labels, 0.25, grad, nil)
			return a, b
		}
		g64, g32 := make([]float64, m*k), make([]float32, m*k)
		w64, w32 := make([]float64, m*k), make([]float32, m*k)
		loss64, loss32 := run(true, g64, g32, true)
		want64, want32 := run(false, w64, w32, true)
		if math.Abs(loss32-want32) > 1e-6*want32 {
			t.Errorf("k=%d: loss %.17g, %.9g; portable %.17g, %.9g", k, loss64, loss32, want64, want32)
		}
		for i := range g64 {
			if math.Abs(g64[i]-w64[i]) > 1e-15*math.Abs(w64[i])+1e-17 || (k >= 8 && math.Abs(float64(g32[i]-w32[i])) > 4e-7*math.Abs(float64(w32[i]))+1e-9) {
				t.Fatalf("k=%d: gradient %d: %.17g, %.9g; portable %.17g, %.9g", k, i, g64[i], g32[i], w64[i], w32[i])
			}
		}
		e64, e32 := make([]float64, m*k), make([]float32, m*k)
		l64, l32 := run(true, e64, e32, false)
		if l64 != loss64 || l32 != loss32 {
			t.Errorf("k=%d: loss without the gradient %.17g, %.9g; with it %.17g, %.9g", k, l64, l32, loss64, loss32)
		}
		for i := range e64 {
			if e64[i] <= 0 || e64[i] > 1 || (k >= 8 && (e32[i] <= 0 || e32[i] > 1)) {
				t.Fatalf("k=%d: entry %d without the gradient %g, %g: want an exponential of a shifted logit", k, i, e64[i], e32[i])
			}
		}
		// float64: the last pass alone, on the same exponentials, bit for
		// bit the portable loop (rowSum, then the scaling).
		x, y := make([]float64, m*k), make([]float64, m*k)
		for i := range x {
			x[i] = math.Exp(src[i])
			y[i] = x[i]
		}
		got := softmaxNormRows(x, m, k, labels, 0.25, true)
		var want float64
		prod := 1.0
		for i := 0; i < m; i++ {
			row := y[i*k : (i+1)*k]
			s := rowSum(row)
			prod *= s
			if i%16 == 15 || i == m-1 {
				want += math.Log(prod)
				prod = 1
			}
			for j := range row {
				row[j] *= 0.25 / s
			}
			row[labels[i]] -= 0.25
		}
		if got != want {
			t.Errorf("k=%d: float64 last pass %.17g, portable %.17g", k, got, want)
		}
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("k=%d: float64 last pass entry %d %.17g, portable %.17g", k, i, x[i], y[i])
			}
		}
	}
}
