package kern

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// threePassCE32 is SoftmaxCrossEntropy's float32 AVX2 order before
// softmaxCE32: every row shifted by its max, all rows exponentiated in one
// ExpSum, then summed and scaled (softmaxNormRows). softmaxCE32 must
// match it bit for bit where ExpSum runs wholly in the vector kernel.
func threePassCE32(l []float32, m, k int, labels []int, scale float32, grad bool, correct *int) float64 {
	rowShiftAVX2(l[:m*k], m, k)
	var loss float64
	for i := 0; i < m; i++ {
		row := l[i*k : (i+1)*k]
		y := labels[i]
		if correct != nil && row[y] == 0 {
			best := 0
			for row[best] != 0 {
				best++
			}
			if best == y {
				*correct++
			}
		}
		loss -= float64(row[y])
	}
	ExpSum(l[:m*k], 0)
	return loss + softmaxNormRows(l, m, k, labels, scale, grad)
}

// ulps32 is the distance of a and b in units in the last place, 0 for
// two NaNs.
func ulps32(a, b float32) int64 {
	if a != a && b != b {
		return 0
	}
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

// ceCase fills m rows of k logits at offset off of a buffer with a guard
// entry on either side, in one of three kinds: small integers (many ties
// for the argmax), wide normals, and normals with NaN and infinite
// entries.
func ceCase(rng *rand.Rand, m, k, off, kind int) (buf []float32, labels []int) {
	buf = make([]float32, off+m*k+1)
	for i := range buf {
		switch kind {
		case 0:
			buf[i] = float32(rng.IntN(5) - 2)
		default:
			buf[i] = float32(8 * rng.NormFloat64())
		}
	}
	if kind == 2 && m*k > 0 {
		for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), -200} {
			buf[off+rng.IntN(m*k)] = v
		}
	}
	labels = make([]int, m)
	for i := range labels {
		labels[i] = rng.IntN(k)
	}
	return buf, labels
}

// TestSoftmaxCE32 checks the one-pass kernel against the three-pass
// order it replaces, for every row width it takes and row counts on
// either side of its 64-row chunks, at unaligned offsets: the loss, the
// count of first argmaxes and every overwritten entry bit for bit (within
// 4 ulp where m*k%8 != 0 and the old order's last exponentials were
// scalar), the guard entries around the rows untouched. A kernel that
// dropped or double-scaled the last k%8 entries, shifted the wrong lanes'
// zeros into the argmax mask or wrote past a row fails here.
func TestSoftmaxCE32(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(17, 2))
	const guard = 12345.5
	for k := 8; k <= ceRowsMax; k++ {
		for _, m := range []int{0, 1, 3, 16, 63, 64, 65, 130} {
			if k > 40 && m > 3 && m != 65 {
				continue // keep the test short
			}
			for kind := range 3 {
				for _, grad := range []bool{true, false} {
					off := rng.IntN(8)
					buf, labels := ceCase(rng, m, k, off, kind)
					buf[off+m*k] = guard
					if off > 0 {
						buf[off-1] = guard
					}
					ref := append([]float32(nil), buf...)
					var c, wc int
					loss := softmaxCE32(buf[off:off+m*k], m, k, labels, 0.37, grad, &c)
					want := threePassCE32(ref[off:off+m*k], m, k, labels, 0.37, grad, &wc)
					exact := m*k%8 == 0
					if c != wc {
						t.Fatalf("k=%d m=%d kind %d grad %v: correct %d, want %d", k, m, kind, grad, c, wc)
					}
					if exact && !(loss == want || loss != loss && want != want) ||
						!exact && !(math.Abs(loss-want) <= 1e-6*math.Abs(want) || loss != loss && want != want) {
						t.Fatalf("k=%d m=%d kind %d grad %v: loss %.17g, want %.17g", k, m, kind, grad, loss, want)
					}
					for i := range buf {
						tol := int64(0)
						if !exact {
							tol = 4
						}
						if d := ulps32(buf[i], ref[i]); d > tol {
							t.Fatalf("k=%d m=%d kind %d grad %v: entry %d (row %d col %d) %v, want %v (%d ulp)",
								k, m, kind, grad, i-off, (i-off)/k, (i-off)%k, buf[i], ref[i], d)
						}
					}
					if buf[off+m*k] != guard || off > 0 && buf[off-1] != guard {
						t.Fatalf("k=%d m=%d: guard overwritten", k, m)
					}
				}
			}
		}
	}
}

// TestSoftmaxCE32Dispatch checks that SoftmaxCrossEntropy's float32 rows
// of 8 to ceRowsMax give softmaxCE32's results, with the count left alone
// for a nil pointer and added to, not set, otherwise.
func TestSoftmaxCE32Dispatch(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{8, 25, 63, 64} {
		const m = 72                           // m*k%8 == 0: the old order's exponentials all in AVX2
		buf, labels := ceCase(rng, m, k, 0, 0) // small integers: some rows correct
		ref := append([]float32(nil), buf...)
		c, wc := 5, 5
		loss := SoftmaxCrossEntropy(buf, m, k, labels, 0.5, true, &c)
		want := threePassCE32(ref, m, k, labels, 0.5, true, &wc)
		if loss != want || c != wc {
			t.Errorf("k=%d: loss %v correct %d, want %v %d", k, loss, c, want, wc)
		}
		for i := range buf {
			if buf[i] != ref[i] {
				t.Fatalf("k=%d entry %d: %v, want %v", k, i, buf[i], ref[i])
			}
		}
		buf, _ = ceCase(rng, m, k, 0, 1)
		ref = append(ref[:0], buf...)
		loss = SoftmaxCrossEntropy(buf, m, k, labels, 0.5, false, nil)
		if want := threePassCE32(ref, m, k, labels, 0.5, false, nil); loss != want {
			t.Errorf("k=%d without the gradient: loss %v, want %v", k, loss, want)
		}
	}
}

// TestSoftmaxCE32BadLabel checks that a label outside [0, k) panics with
// a message naming it, rather than the kernel reading or writing outside
// its row.
func TestSoftmaxCE32BadLabel(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2")
	}
	for _, y := range []int{-1, 25, 1 << 40} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, "outside [0, 25)") || !strings.Contains(s, "row 66") {
					t.Errorf("label %d: recovered %v, want a panic naming label and row", y, r)
				}
			}()
			labels := make([]int, 70)
			labels[66] = y
			softmaxCE32(make([]float32, 70*25), 70, 25, labels, 1, true, nil)
		}()
	}
}
