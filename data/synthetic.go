package data

import (
	"fmt"
	"math/rand/v2"
)

// SyntheticRegression generates a regression table with no file: n examples
// of d independent Gaussian features with standard deviations scales
// (cycled), and targets y = sum_j w_j x_j + noise * N(0, 1) with fixed
// weights w_j = (-1)^j (1 + j/2). Equal arguments give equal tables, so a
// config can name its data by these numbers alone.
func SyntheticRegression(n, d int, scales []float64, noise float64, seed uint64) (*Table, error) {
	if n < 2 || d < 1 {
		return nil, fmt.Errorf("synthetic regression: need n >= 2 and d >= 1, got n %d, d %d", n, d)
	}
	if len(scales) == 0 {
		return nil, fmt.Errorf("synthetic regression: no feature scales")
	}
	for _, s := range scales {
		if !(s >= 0) {
			return nil, fmt.Errorf("synthetic regression: feature scale %g must not be negative", s)
		}
	}
	if !(noise >= 0) {
		return nil, fmt.Errorf("synthetic regression: noise %g must not be negative", noise)
	}
	rng := rand.New(rand.NewPCG(seed, 0x73796e7468))
	t := &Table{Dim: d, X: make([]float64, n*d), Targets: make([]float64, n)}
	for i := 0; i < n; i++ {
		var y float64
		for j := 0; j < d; j++ {
			x := scales[j%len(scales)] * rng.NormFloat64()
			t.X[i*d+j] = x
			w := 1 + float64(j)/2
			if j%2 == 1 {
				w = -w
			}
			y += w * x
		}
		t.Targets[i] = y + noise*rng.NormFloat64()
	}
	return t, nil
}
