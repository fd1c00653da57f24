package probe

import (
	"context"
	"fmt"
	"math"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// NoiseOptions configures the minibatch noise measurement.
type NoiseOptions struct {
	Batches   int           // M independent minibatches, default 32
	BatchSize int           // the training batch size b
	Sampling  data.Sampling // how each minibatch is drawn (default without replacement)
	Seed      uint64
	Stream    uint64  // sampler stream; keep it distinct from training and replica streams
	Step      float64 // finite-difference displacement, default DefaultFDStep
}

// NoiseStream is the sampler stream the noise probe uses by default: far
// from the training run (0) and the ensemble replicas (1..R).
const NoiseStream = 1 << 40

// DirectionNoise is the minibatch statistics of one unit direction u at the
// reference point (THEORY.md section 3).
type DirectionNoise struct {
	// C is Var_B(u . g_B), the gradient-noise variance along u, and CErr
	// its standard error.
	C, CErr float64
	// S2 is Var_B(u^T H_B u), the curvature-noise variance, and S2Err its
	// standard error.
	S2, S2Err float64
	// MeanGrad is the mean over minibatches of u . g_B and MeanCurv of
	// u^T H_B u (estimates of u . grad L and u^T H u).
	MeanGrad, MeanCurv float64
}

// MinibatchNoise measures, for each unit direction in dirs, the variance
// across M random minibatches of the gradient and of the curvature along
// it, at the point w0. Each minibatch costs one gradient plus two per
// direction. progress, if not nil, is called after each minibatch.
// Cancelling ctx stops it at the next product with ctx's error.
func MinibatchNoise(ctx context.Context, m models.Model, ds data.Dataset, w0 []float64, dirs [][]float64, opts NoiseOptions, progress func(done, total int)) ([]DirectionNoise, error) {
	if opts.Batches == 0 {
		opts.Batches = 32
	}
	if opts.Batches < 2 {
		return nil, fmt.Errorf("noise: %d minibatches: need at least 2 for a variance", opts.Batches)
	}
	if opts.Sampling == "" {
		opts.Sampling = data.WithoutReplacement
	}
	p := m.NumParams()
	for i, u := range dirs {
		if len(u) != p {
			return nil, fmt.Errorf("noise: direction %d has %d entries, model has %d parameters", i, len(u), p)
		}
	}
	sampler, err := data.NewSampler(ds.Len(), opts.BatchSize, opts.Sampling, opts.Seed, opts.Stream)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	M, K := opts.Batches, len(dirs)
	grads := make([][]float64, K) // u_i . g_B per minibatch
	curvs := make([][]float64, K) // u_i^T H_B u_i per minibatch
	for i := range dirs {
		grads[i] = make([]float64, M)
		curvs[i] = make([]float64, M)
	}
	var batch data.Batch
	idx := make([]int, opts.BatchSize)
	g := make([]float64, p)
	hv := make([]float64, p)
	for j := 0; j < M; j++ {
		// The j-th minibatch is step j of the probe's own sampler stream,
		// drawn exactly as training draws its batches.
		idx = sampler.Indices(int64(j), idx)
		ds.Fill(&batch, idx)
		h, err := NewHessian(m, &batch, w0, opts.Step)
		if err != nil {
			return nil, fmt.Errorf("noise: minibatch %d: %w", j, err)
		}
		copy(g, h.Grad0)
		op := contextOperator{ctx, h}
		for i, u := range dirs {
			grads[i][j] = dot(u, g)
			if err := op.Apply(hv, u); err != nil {
				return nil, fmt.Errorf("noise: minibatch %d, direction %d: %w", j, i, err)
			}
			curvs[i][j] = dot(u, hv)
		}
		if progress != nil {
			progress(j+1, M)
		}
	}
	out := make([]DirectionNoise, K)
	for i := range dirs {
		var d DirectionNoise
		d.MeanGrad, d.C, d.CErr = varianceWithError(grads[i])
		d.MeanCurv, d.S2, d.S2Err = varianceWithError(curvs[i])
		out[i] = d
	}
	return out, nil
}

// varianceWithError returns the mean, the unbiased sample variance, and the
// variance's standard error sqrt((m4 - s^4 (n-3)/(n-1)) / n), which holds
// for any distribution with a finite fourth moment.
func varianceWithError(x []float64) (mean, variance, stderr float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v
	}
	mean /= n
	var m2, m4 float64
	for _, v := range x {
		d := (v - mean) * (v - mean)
		m2 += d
		m4 += d * d
	}
	variance = m2 / (n - 1)
	m4 /= n
	se2 := (m4 - variance*variance*(n-3)/(n-1)) / n
	return mean, variance, math.Sqrt(math.Max(se2, 0))
}

// Curvatures returns lambda_i = u_i^T H u_i for each direction, with H the
// mean Hessian (one Hessian-vector product each).
func Curvatures(h Operator, dirs [][]float64) ([]float64, error) {
	out := make([]float64, len(dirs))
	hv := make([]float64, h.Dim())
	for i, u := range dirs {
		if err := h.Apply(hv, u); err != nil {
			return nil, fmt.Errorf("curvature of direction %d: %w", i, err)
		}
		out[i] = dot(u, hv)
	}
	return out, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}
