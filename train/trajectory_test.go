package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestProjectionBlock checks the blocked projections against direct dot
// products, and that a row's projections do not depend on where the block
// was flushed: resumed runs flush at other steps than uninterrupted ones.
func TestProjectionBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	const p, k, steps = 1000, 7, 80 // P spans several panels; K is no multiple of 4
	w0 := make([]float64, p)
	dirs := make([][]float64, k)
	for i := range w0 {
		w0[i] = rng.NormFloat64()
	}
	for i := range dirs {
		dirs[i] = make([]float64, p)
		for j := range dirs[i] {
			dirs[i][j] = rng.NormFloat64()
		}
	}
	ws := make([][]float64, steps)
	for s := range ws {
		ws[s] = make([]float64, p)
		for j := range ws[s] {
			ws[s][j] = w0[j] + 1e-3*rng.NormFloat64()
		}
	}
	proj, err := NewProjector(w0, dirs)
	if err != nil {
		t.Fatal(err)
	}
	run := func(flushAt map[int]bool) (rows [][]float64, dists []float64) {
		b := newProjectionBlock(proj)
		collect := func() {
			n := b.project()
			for r := 0; r < n; r++ {
				rows = append(rows, append([]float64(nil), b.out[r*k:(r+1)*k]...))
			}
		}
		for s, w := range ws {
			dists = append(dists, b.add(w))
			if b.full() || flushAt[s] {
				collect()
			}
		}
		collect()
		return rows, dists
	}
	want, wantDist := run(nil)
	if len(want) != steps {
		t.Fatalf("%d rows for %d steps", len(want), steps)
	}
	for s, w := range ws {
		var dist float64
		for j := range w {
			dist += (w[j] - w0[j]) * (w[j] - w0[j])
		}
		if d := math.Abs(wantDist[s] - math.Sqrt(dist)); d > 1e-15 {
			t.Fatalf("step %d: distance %g, want %g", s, wantDist[s], math.Sqrt(dist))
		}
		for i, u := range dirs {
			var dot float64
			for j := range w {
				dot += u[j] * (w[j] - w0[j])
			}
			if d := math.Abs(want[s][i] - dot); d > 1e-12*math.Abs(dot)+1e-16 {
				t.Fatalf("step %d direction %d: projection %.17g, want %.17g", s, i, want[s][i], dot)
			}
		}
	}
	got, _ := run(map[int]bool{0: true, 5: true, 6: true, 40: true, 41: true, 77: true})
	for s := range want {
		for i := range want[s] {
			if got[s][i] != want[s][i] {
				t.Fatalf("step %d direction %d: %.17g after early flushes, %.17g without", s, i, got[s][i], want[s][i])
			}
		}
	}
}
