package probe

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestProject checks the chunked, parallel Gram-Schmidt pass against the
// textbook one (dots of whole vectors, then the updates) and checks that
// its result is bit for bit the same on one core and on several.
func TestProject(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range []struct{ n, m int }{{10, 3}, {gsChunk + 17, 5}, {5*gsChunk + 3, 40}} {
		basis := make([][]float64, 0, c.m)
		for len(basis) < c.m {
			q := randomUnit(rng, c.n)
			if normalizeAgainst(q, basis) {
				basis = append(basis, q)
			}
		}
		w := make([]float64, c.n)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		want, wantD := slices.Clone(w), make([]float64, c.m)
		for i, q := range basis {
			wantD[i] = dot(q, want)
		}
		for i, q := range basis {
			for k := range want {
				want[k] -= wantD[i] * q[k]
			}
		}
		one := slices.Clone(w)
		prev := runtime.GOMAXPROCS(1)
		dOne := project(one, basis)
		runtime.GOMAXPROCS(max(prev, 3))
		many := slices.Clone(w)
		dMany := project(many, basis)
		runtime.GOMAXPROCS(prev)
		scale := math.Sqrt(dot(w, w))
		for i := range wantD {
			if math.Abs(dOne[i]-wantD[i]) > 1e-12*scale {
				t.Errorf("n %d, m %d: component %d is %.15g, want %.15g", c.n, c.m, i, dOne[i], wantD[i])
			}
		}
		if e := relDiff(one, want); e > 1e-12 {
			t.Errorf("n %d, m %d: projected vector %.3g from the textbook pass", c.n, c.m, e)
		}
		if !slices.Equal(one, many) || !slices.Equal(dOne, dMany) {
			t.Errorf("n %d, m %d: the result depends on the number of workers", c.n, c.m)
		}
		for i, q := range basis {
			if r := dot(q, one); math.Abs(r) > 1e-12*scale {
				t.Errorf("n %d, m %d: %.3g left along basis vector %d", c.n, c.m, r, i)
			}
		}
	}
}
