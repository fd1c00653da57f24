package probe

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/floats"
)

// gsChunk is how many entries of the vectors one worker takes at a time
// in project: 32 KB of w, which stays in L1 while the chunks of the basis
// stream past it.
const gsChunk = 4096

// gsMinWork is the size of a projection (basis vectors x entries) below
// which project runs on one goroutine: starting workers costs more than
// the arithmetic.
const gsMinWork = 1 << 18

// project removes from w its components along the orthonormal basis by one
// pass of classical Gram-Schmidt and returns them: d[i] = q_i . w before
// the pass, w -= sum_i d[i] q_i.
//
// With full reorthogonalisation the projections dominate a long Krylov
// run's own arithmetic: at step m they read m basis vectors twice a pass,
// so the flat search's 600-vector CNN basis (430 MB) streams through
// memory some 500 GB over a run (counted, not measured). The entries are
// split into fixed chunks spread over the cores, and each d[i] is the sum
// of its chunks' partial dots in chunk order, so the result does not
// depend on the number of workers.
func project(w []float64, basis [][]float64) []float64 {
	n, m := len(w), len(basis)
	d := make([]float64, m)
	if m == 0 {
		return d
	}
	chunks := (n + gsChunk - 1) / gsChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if m*n < gsMinWork {
		workers = 1
	}
	// parallel runs f on every chunk [lo, hi), chunk c on worker c % workers.
	parallel := func(f func(c, lo, hi int)) {
		if workers == 1 {
			for c := range chunks {
				f(c, c*gsChunk, min(n, (c+1)*gsChunk))
			}
			return
		}
		var wg sync.WaitGroup
		for k := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := k; c < chunks; c += workers {
					f(c, c*gsChunk, min(n, (c+1)*gsChunk))
				}
			}()
		}
		wg.Wait()
	}
	partial := make([]float64, chunks*m)
	parallel(func(c, lo, hi int) {
		p := partial[c*m : (c+1)*m]
		for i, q := range basis {
			p[i] = floats.Dot(q[lo:hi], w[lo:hi])
		}
	})
	for c := range chunks {
		floats.Add(d, partial[c*m:(c+1)*m])
	}
	parallel(func(_, lo, hi int) {
		for i, q := range basis {
			floats.AddScaled(w[lo:hi], -d[i], q[lo:hi])
		}
	})
	return d
}
