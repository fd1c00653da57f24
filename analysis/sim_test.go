package analysis

import (
	"math"
	"math/rand/v2"
)

// simulate runs R replicas of the scalar processes
// x_{t+1} = (1 - eta h_t) x_t - eta (gbar + g_t), h_t ~ N(lambda, s2),
// g_t ~ N(0, c), independently for each direction in ps, logging every
// `every` steps up to T. It is the per-direction linearised SGD of
// THEORY.md section 3 with Gaussian batch statistics.
func simulate(rng *rand.Rand, eta float64, ps []DirectionParams, gbar []float64, R, T, every int) Ensemble {
	var steps []int64
	for t := 0; t <= T; t += every {
		steps = append(steps, int64(t))
	}
	e := Ensemble{Eta: eta, Steps: steps, Proj: make([][][]float64, R)}
	for r := range R {
		x := make([]float64, len(ps))
		rep := make([][]float64, 0, len(steps))
		for t := 0; t <= T; t++ {
			if t%every == 0 {
				rep = append(rep, append([]float64(nil), x...))
			}
			for k, p := range ps {
				h := p.Lambda + math.Sqrt(p.S2)*rng.NormFloat64()
				g := math.Sqrt(p.C) * rng.NormFloat64()
				if gbar != nil {
					g += gbar[k]
				}
				x[k] = (1-eta*h)*x[k] - eta*g
			}
		}
		e.Proj[r] = rep
	}
	return e
}
