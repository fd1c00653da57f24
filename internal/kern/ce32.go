package kern

import (
	"fmt"
	"math"
)

// ceRowsMax is the widest row softmaxCE32 takes, for the size of its
// transposition buffer on the stack.
const ceRowsMax = 64

// softmaxCE32 is SoftmaxCrossEntropy for float32 rows of 8 to ceRowsMax
// in AVX2: softmaxCEAVX2 on 64 rows at a time, eight rows transposed to
// one per lane, where the three-pass order (shift, exponentiate,
// normalise, each over all rows) spent most of its time in per-row
// horizontal reductions and scalar tails. Its float32 operations are
// that order's, in the same order, so that the loss, gradient and count
// are the same bit for bit, but for the last m*k%8 entries, which ExpSum
// exponentiated in Go (within 2 ulp). The float64 sums keep that order
// too: the labels' shifted logits first, then the logs of products of 16
// row sums. The last m%8 rows go through a padded copy.
func softmaxCE32(x []float32, m, k int, labels []int, scale float32, grad bool, correct *int) float64 {
	g := 0
	if grad {
		g = 1
	}
	x, labels = x[:m*k], labels[:m]
	var lab, logs float64
	prod := 1.0
	count := 0
	var sums, lvs [64]float32
	var lab32 [64]int32
	var buf [8*ceRowsMax + 8]float32
	var padBuf [8 * ceRowsMax]float32 // the last m%8 rows, padded with zeros
	for i0 := 0; i0 < m; i0 += len(sums) {
		n := min(len(sums), m-i0)
		for j, y := range labels[i0 : i0+n] {
			if uint(y) >= uint(k) {
				panic(fmt.Sprintf("kern: label %d of row %d outside [0, %d)", y, i0+j, k))
			}
			lab32[j] = int32(y)
		}
		rows := x[i0*k : (i0+n)*k]
		n8 := n &^ 7
		if n8 < n {
			pad := padBuf[:8*k]
			clear(pad)
			copy(pad, rows[n8*k:])
			for j := n; j < n8+8; j++ {
				lab32[j] = 1 // a zero row's first argmax is 0: not counted
			}
		}
		count += softmaxCEAVX2(rows[:n8*k], lab32[:n8], sums[:n8], lvs[:n8], buf[:], n8, k, g, scale)
		if n8 < n {
			pad := padBuf[:8*k]
			count += softmaxCEAVX2(pad, lab32[n8:n8+8], sums[n8:n8+8], lvs[n8:n8+8], buf[:], 8, k, g, scale)
			copy(rows[n8*k:], pad)
		}
		for j, s := range sums[:n] { // one loop: the two chains overlap
			i := i0 + j
			lab -= float64(lvs[j])
			prod *= float64(s)
			if i%16 == 15 || i == m-1 {
				logs += math.Log(prod)
				prod = 1
			}
		}
	}
	if correct != nil {
		*correct += count
	}
	return lab + logs
}
