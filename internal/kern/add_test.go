package kern

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// addCase checks Add on n entries at offsets off of dst and src against
// the scalar sum, bit for bit, and the guard entries either side of dst
// untouched: a kernel that dropped its scalar tail, its 8-at-a-time loop,
// read src from the wrong offset or wrote past dst fails.
func addCase[T Float](t *testing.T, rng *rand.Rand, n, doff, soff int) {
	const guard = 1234.5
	dbuf, sbuf := make([]T, doff+n+1), make([]T, soff+n+3)
	for i := range dbuf {
		dbuf[i] = T(rng.NormFloat64())
	}
	for i := range sbuf {
		sbuf[i] = T(rng.NormFloat64())
	}
	if doff > 0 {
		dbuf[doff-1] = guard
	}
	dbuf[doff+n] = guard
	want := append([]T(nil), dbuf...)
	for i := range n {
		want[doff+i] += sbuf[soff+i]
	}
	Add(dbuf[doff:doff+n], sbuf[soff:]) // src longer than dst: its first n
	for i := range dbuf {
		if dbuf[i] != want[i] {
			t.Fatalf("%T n=%d offsets %d %d: entry %d %v, want %v", dbuf, n, doff, soff, i-doff, dbuf[i], want[i])
		}
	}
}

// TestAdd checks Add in float32 and float64 against the scalar sum for
// every length 0..80 (both sides of addVecMin and every tail), longer
// slices and unaligned offsets, and for a named float type, which takes
// addLong's reflection path.
func TestAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lengths := []int{100, 127, 128, 1000, 8192}
	for n := 0; n <= 80; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, off := range [][2]int{{0, 0}, {1, 3}, {5, 2}, {7, 7}} {
			addCase[float32](t, rng, n, off[0], off[1])
			addCase[float64](t, rng, n, off[0], off[1])
		}
	}
	type named float32
	for _, n := range []int{3, addVecMin, 41} {
		addCase[named](t, rng, n, 1, 2)
	}
}

// TestAddShortSrc checks that Add panics, as it always has, when src is
// shorter than dst, on the scalar and on the vector path.
func TestAddShortSrc(t *testing.T) {
	for _, n := range []int{8, 40} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(toString(r), "out of range") {
					t.Errorf("n=%d: recovered %v, want an index out of range panic", n, r)
				}
			}()
			Add(make([]float32, n), make([]float32, n-1))
		}()
	}
}

func toString(r any) string {
	if e, ok := r.(error); ok {
		return e.Error()
	}
	s, _ := r.(string)
	return s
}
