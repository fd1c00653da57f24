package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLayerNorm8T checks the transposed LayerNorm of rows of 8 against
// layerNorm8AVX2, the row-per-vector kernel it replaces, bit for bit in
// xhat, rstd and y, for row counts 0..40 and larger (whole blocks of
// eight and tails), unaligned slices, rows of very different scales and a
// constant row, with the entries past each output untouched: a wrong
// lane in either transpose, a sum in another order or a dropped tail row
// fails.
func TestLayerNorm8T(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	gain, bias := make([]float32, 9), make([]float32, 9)
	for i := range gain {
		gain[i], bias[i] = float32(1+0.3*rng.NormFloat64()), float32(0.2*rng.NormFloat64())
	}
	counts := []int{64, 100, 1024}
	for m := 0; m <= 40; m++ {
		counts = append(counts, m)
	}
	const guard = 777.5
	for _, m := range counts {
		off := rng.IntN(8)
		x := make([]float32, off+m*8)
		for i := off; i < len(x); i++ {
			x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(i/8%5-2)))
		}
		if m > 3 {
			for j := range 8 {
				x[off+3*8+j] = 2.5 // a constant row: variance 0
			}
		}
		outs := func() (xhat, rstd, y []float32) {
			xhat, rstd, y = make([]float32, off+m*8+1), make([]float32, off+m+1), make([]float32, off+m*8+1)
			xhat[off+m*8], rstd[off+m], y[off+m*8] = guard, guard, guard
			return
		}
		xh, rs, y := outs()
		wxh, wrs, wy := outs()
		layerNorm8T(x[off:], gain[1:], bias[1:], xh[off:], rs[off:], y[off:], m)
		layerNorm8AVX2(x[off:], gain[1:], bias[1:], wxh[off:], wrs[off:], wy[off:], m)
		for _, c := range []struct {
			name      string
			got, want []float32
		}{{"xhat", xh, wxh}, {"rstd", rs, wrs}, {"y", y, wy}} {
			for i := range c.got {
				if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
					t.Fatalf("m=%d off %d: %s[%d] = %v, want %v", m, off, c.name, i-off, c.got[i], c.want[i])
				}
			}
		}
	}
}

// BenchmarkLayerNorm8TMin reports minTimes of LayerNorm of the
// NanoGPT-960's 1,024 rows of 8 by the row-per-vector kernel and by
// layerNorm8T.
func BenchmarkLayerNorm8TMin(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	const m = 1024
	rng := rand.New(rand.NewPCG(1, 1))
	x, xhat, y, rstd := make([]float32, m*8), make([]float32, m*8), make([]float32, m*8), make([]float32, m)
	gain, bias := make([]float32, 8), make([]float32, 8)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range gain {
		gain[i] = 1
	}
	for b.Loop() {
		ts := minTimes(30, 50,
			func() { layerNorm8AVX2(x, gain, bias, xhat, rstd, y, m) },
			func() { layerNorm8T(x, gain, bias, xhat, rstd, y, m) })
		b.ReportMetric(ts[0], "ns/rows")
		b.ReportMetric(ts[1], "ns/transposed")
	}
}
