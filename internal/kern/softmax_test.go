package kern

import (
	"math"
	"testing"
)

// BenchmarkSoftmaxCrossEntropy times the loss and gradient of the
// NanoGPT-960's output layer at batch 64 (1024 rows of 25 logits), in
// float32 and float64.
func BenchmarkSoftmaxCrossEntropy(b *testing.B) {
	const m, k = 1024, 25
	labels := make([]int, m)
	for i := range labels {
		labels[i] = (7 * i) % k
	}
	src := make([]float64, m*k)
	for i := range src {
		src[i] = 3 * math.Sin(float64(i))
	}
	b.Run("float32", func(b *testing.B) {
		l, x := make([]float32, m*k), make([]float32, m*k)
		for i, v := range src {
			x[i] = float32(v)
		}
		for b.Loop() {
			copy(l, x)
			SoftmaxCrossEntropy(l, m, k, labels, 1.0/1024, true, nil)
		}
	})
	b.Run("float64", func(b *testing.B) {
		l := make([]float64, m*k)
		for b.Loop() {
			copy(l, src)
			SoftmaxCrossEntropy(l, m, k, labels, 1.0/1024, true, nil)
		}
	})
}
