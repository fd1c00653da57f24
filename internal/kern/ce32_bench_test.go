package kern

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkSoftmaxCE32 times the float32 cross-entropy with its gradient
// at the NanoGPT-960's step (1,024 rows of 25) in the one-pass kernel and
// in the three-pass order it replaces.
func BenchmarkSoftmaxCE32(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	const m, k = 1024, 25
	rng := rand.New(rand.NewPCG(1, 1))
	src, labels := ceCase(rng, m, k, 0, 1)
	x := make([]float32, len(src))
	for _, c := range []struct {
		name string
		f    func([]float32, int, int, []int, float32, bool, *int) float64
	}{{"onepass", softmaxCE32}, {"threepass", threePassCE32}} {
		b.Run(c.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				copy(x, src)
				c.f(x, m, k, labels, 1.0/16, true, &n)
			}
		})
	}
}

// minTimes runs each of fs reps times for n calls, interleaved, and
// returns each one's fastest n calls' mean in ns: on a machine shared with
// other jobs the minimum is what the code costs.
func minTimes(reps, n int, fs ...func()) []float64 {
	best := make([]float64, len(fs))
	for r := 0; r < reps; r++ {
		for i, f := range fs {
			t0 := time.Now()
			for range n {
				f()
			}
			if d := float64(time.Since(t0)) / float64(n); r == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	return best
}

// BenchmarkSoftmaxCE32Min reports minTimes of the one-pass and
// three-pass cross-entropy (with the copy of the logits they overwrite)
// as ns/onepass and ns/threepass.
func BenchmarkSoftmaxCE32Min(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	const m, k = 1024, 25
	rng := rand.New(rand.NewPCG(1, 1))
	src, labels := ceCase(rng, m, k, 0, 1)
	x := make([]float32, len(src))
	var n int
	for b.Loop() {
		t := minTimes(30, 20,
			func() { copy(x, src); softmaxCE32(x, m, k, labels, 1.0/16, true, &n) },
			func() { copy(x, src); threePassCE32(x, m, k, labels, 1.0/16, true, &n) },
			func() { copy(x, src) })
		b.ReportMetric(t[0], "ns/onepass")
		b.ReportMetric(t[1], "ns/threepass")
		b.ReportMetric(t[2], "ns/copy")
	}
}

// BenchmarkSoftmaxCE32Parts reports minTimes of the three-pass order's
// parts at 1,024 rows of 25: the row shift, the exponentials, the sums
// and scaling, each after the copy of its input (also timed alone).
func BenchmarkSoftmaxCE32Parts(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	const m, k = 1024, 25
	rng := rand.New(rand.NewPCG(1, 1))
	src, labels := ceCase(rng, m, k, 0, 1)
	x := make([]float32, len(src))
	var sums [64]float32
	for b.Loop() {
		t := minTimes(30, 20,
			func() { copy(x, src) },
			func() { copy(x, src); rowShiftAVX2(x, m, k) },
			func() { copy(x, src); expSumAVX2(x, 0) },
			func() {
				copy(x, src)
				for i0 := 0; i0 < m; i0 += 64 {
					softmaxNormAVX2(x[i0*k:(i0+64)*k], sums[:], 64, k, 1, 0.5)
				}
			},
			func() { copy(x, src); softmaxCE32(x, m, k, labels, 1.0/16, true, nil) })
		b.ReportMetric(t[0], "ns/copy")
		b.ReportMetric(t[1], "ns/shift")
		b.ReportMetric(t[2], "ns/exp")
		b.ReportMetric(t[3], "ns/norm")
		b.ReportMetric(t[4], "ns/onepass")
	}
}

// BenchmarkSoftmaxCE32Widths reports minTimes of the one-pass kernel and
// the three-pass order for the MLP's and CNN's 10 classes (64 and 2,048
// rows) and for 25 and 64 classes at 1,024 rows, copy included.
func BenchmarkSoftmaxCE32Widths(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct{ m, k int }{{64, 10}, {2048, 10}, {1024, 25}, {1024, 64}} {
		src, labels := ceCase(rng, c.m, c.k, 0, 1)
		x := make([]float32, len(src))
		b.Run(fmt.Sprintf("m=%d/k=%d", c.m, c.k), func(b *testing.B) {
			for b.Loop() {
				t := minTimes(30, 20,
					func() { copy(x, src); softmaxCE32(x, c.m, c.k, labels, 0.5, true, nil) },
					func() { copy(x, src); threePassCE32(x, c.m, c.k, labels, 0.5, true, nil) })
				b.ReportMetric(t[0], "ns/onepass")
				b.ReportMetric(t[1], "ns/threepass")
			}
		})
	}
}
