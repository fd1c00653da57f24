package probe

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// BatchFactor converts S^2, the variance (ddof 1) of a per-example
// quantity over a population of n examples, into the variance of its mean
// over a minibatch of b examples drawn from that population: (n-1)/(n b)
// with replacement, (n-b)/(n b) for a simple random sample without
// replacement (THEORY.md section 2: C_1/b and C_1 (N-b)/(b (N-1)) with C_1
// the population covariance).
func BatchFactor(n, b int, s data.Sampling) (float64, error) {
	if n < 2 || b < 1 || b > n {
		return 0, fmt.Errorf("batch factor: batch %d of a population of %d", b, n)
	}
	fn, fb := float64(n), float64(b)
	switch s {
	case data.WithReplacement:
		return (fn - 1) / (fn * fb), nil
	case data.WithoutReplacement, "":
		return (fn - fb) / (fn * fb), nil
	}
	return 0, fmt.Errorf("batch factor: unknown sampling %q", s)
}

// ExampleNoise is the gradient noise along directions computed from
// per-example gradients: exact for the population when the examples are
// all of it, and with a small, honest error otherwise. It needs no
// Hessian-vector products, so it is far cheaper and more accurate than
// the variance over M minibatches.
type ExampleNoise struct {
	Examples   int     // n examples whose gradients were taken
	Population int     // N, the training set the batches are drawn from
	Batch      int     // b
	Factor     float64 // BatchFactor(N, b, sampling)
	// C[i] = Factor * S_i^2 is the batch gradient-noise variance along
	// direction i, CErr[i] its standard error (0 when n = N).
	C, CErr []float64
	// Mean[i] is the mean of u_i . g_n over the examples; Kurtosis[i]
	// the (non-excess) kurtosis of the per-example projections.
	Mean, Kurtosis []float64
}

// PerExampleGradients returns the n x P matrix of per-example gradients
// at w0 of the examples idx of ds. ms are independent instances of one
// model (one goroutine each; a model is not safe for concurrent use), and
// each row is one gradient by one of them, so the matrix does not depend
// on len(ms). It leaves every instance at w0 and stops at the next example
// once ctx is done, with ctx's error.
func PerExampleGradients(ctx context.Context, ms []models.Model, ds data.Dataset, idx []int, w0 []float64) (*mat.Dense, error) {
	if err := checkInstances(ms, idx, w0); err != nil {
		return nil, fmt.Errorf("per-example gradients: %w", err)
	}
	g := mat.NewDense(len(idx), len(w0), nil)
	err := eachExample(ctx, ms, ds, idx, w0, func(_, r int, grad func([]float64) error) error {
		return grad(g.RawRowView(r))
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// ExampleProjections returns proj[r][i] = u_i . g_{idx[r]}, the per-example
// gradient projections on dirs, without storing the gradients. ms are
// as for PerExampleGradients; the result does not depend on len(ms).
func ExampleProjections(ctx context.Context, ms []models.Model, ds data.Dataset, idx []int, w0 []float64, dirs [][]float64) (*mat.Dense, error) {
	if err := checkInstances(ms, idx, w0); err != nil {
		return nil, fmt.Errorf("example projections: %w", err)
	}
	p := len(w0)
	for i, u := range dirs {
		if len(u) != p {
			return nil, fmt.Errorf("example projections: direction %d has %d entries, model has %d parameters", i, len(u), p)
		}
	}
	out := mat.NewDense(len(idx), max(len(dirs), 1), nil)
	gs := make([][]float64, len(ms))
	for k := range gs {
		gs[k] = make([]float64, p)
	}
	err := eachExample(ctx, ms, ds, idx, w0, func(k, r int, grad func([]float64) error) error {
		if err := grad(gs[k]); err != nil {
			return err
		}
		row := out.RawRowView(r)
		for i, u := range dirs {
			row[i] = dot(u, gs[k])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkInstances reports an empty example list, a missing model instance
// or one whose size is not that of w0.
func checkInstances(ms []models.Model, idx []int, w0 []float64) error {
	if len(idx) == 0 {
		return fmt.Errorf("no examples")
	}
	if len(ms) == 0 {
		return fmt.Errorf("no model")
	}
	for k, m := range ms {
		if m.NumParams() != len(w0) {
			return fmt.Errorf("model instance %d has %d parameters, the point has %d", k, m.NumParams(), len(w0))
		}
	}
	return nil
}

// eachExample sets every instance in ms to w0 and calls row(k, r, grad)
// for every example idx[r], spread over the instances: grad(dst) writes
// the gradient of that example by instance k into dst.
func eachExample(ctx context.Context, ms []models.Model, ds data.Dataset, idx []int, w0 []float64, row func(k, r int, grad func(dst []float64) error) error) error {
	ones := make([]data.Batch, len(ms))
	for _, m := range ms {
		m.SetParams(w0)
	}
	return forEachIndex(ctx, len(idx), len(ms), func(k, r int) error {
		ds.Fill(&ones[k], idx[r:r+1])
		return row(k, r, func(dst []float64) error {
			if _, err := ms[k].Grad(&ones[k], dst); err != nil {
				return fmt.Errorf("per-example gradient of example %d: %w", idx[r], err)
			}
			return nil
		})
	}, nil)
}

// NoiseFromProjections turns per-example projections (n x K, rows are
// examples drawn evenly or at random from a training set of population
// examples) into the batch gradient-noise variance along each direction.
func NoiseFromProjections(proj *mat.Dense, population, batch int, s data.Sampling) (*ExampleNoise, error) {
	n, k := proj.Dims()
	if n < 2 {
		return nil, fmt.Errorf("example noise: %d examples: need at least 2", n)
	}
	if population < n {
		return nil, fmt.Errorf("example noise: %d examples of a population of %d", n, population)
	}
	f, err := BatchFactor(population, batch, s)
	if err != nil {
		return nil, fmt.Errorf("example noise: %w", err)
	}
	e := &ExampleNoise{Examples: n, Population: population, Batch: batch, Factor: f,
		C: make([]float64, k), CErr: make([]float64, k), Mean: make([]float64, k), Kurtosis: make([]float64, k)}
	// The error of S^2 from n of N examples shrinks to 0 as n reaches N
	// (finite-population correction).
	fpc := 1.0
	if population > 1 {
		fpc = float64(population-n) / float64(population-1)
	}
	col := make([]float64, n)
	for i := range k {
		mat.Col(col, i, proj)
		mean, v, se := varianceWithError(col)
		var m4 float64
		for _, x := range col {
			d := (x - mean) * (x - mean)
			m4 += d * d
		}
		m4 /= float64(n)
		e.Mean[i], e.C[i], e.CErr[i] = mean, f*v, f*se*math.Sqrt(fpc)
		if v > 0 {
			pv := v * float64(n-1) / float64(n)
			e.Kurtosis[i] = m4 / (pv * pv)
		}
	}
	return e, nil
}
