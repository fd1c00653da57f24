package probe

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// NoiseOptions configures the minibatch noise measurement.
type NoiseOptions struct {
	Batches   int           // M independent minibatches, default 32
	BatchSize int           // the batch size b whose noise is measured
	Sampling  data.Sampling // how each minibatch is drawn (default without replacement)
	Seed      uint64
	// Stream is the first sampler stream; batch j uses stream Stream+j.
	// Keep the range distinct from training (0) and replica (1..R) streams.
	Stream uint64
	Step   float64 // central-difference displacement, default DefaultFDStep
	// Forward measures u^T H_B u by forward differences (ForwardHessian,
	// at DefaultForwardStep) from the batch gradient the gradient noise
	// needs anyway: a batch then costs 1 + K gradients instead of 1 + 2K.
	Forward bool
	// Boot is the number of bootstrap resamples of the batches behind the
	// intervals of c and s2 (default 1000; -1: none).
	Boot int
	// Level is the bootstrap intervals' coverage (default 0.95).
	Level float64
}

// NoiseStream is the first sampler stream the noise probe uses by default:
// far from the training run (0) and the ensemble replicas (1..R).
const NoiseStream = 1 << 40

// DirectionNoise is the minibatch statistics of one unit direction u at the
// reference point (THEORY.md section 3), estimated from M minibatches.
type DirectionNoise struct {
	// C is Var_B(u . g_B), the gradient-noise variance along u; CErr is its
	// kurtosis-aware standard error and [CLo, CHi] a percentile bootstrap
	// interval over the batches (NaN when Boot < 0).
	C, CErr, CLo, CHi float64
	// S2 is Var_B(u^T H_B u), the curvature-noise variance, with its
	// standard error and bootstrap interval.
	S2, S2Err, S2Lo, S2Hi float64
	// MeanGrad is the mean over minibatches of u . g_B and MeanCurv of
	// u^T H_B u (estimates of u . grad L and u^T H u).
	MeanGrad, MeanCurv float64
}

// NoiseSamples holds the raw per-batch statistics behind DirectionNoise,
// the inputs of the coupled and subspace predictions (THEORY.md section 7):
// for batch m, Grad[m][i] = u_i . g_{B_m} and Curv[m][i*K+j] =
// u_i^T H_{B_m} u_j (symmetrised).
type NoiseSamples struct {
	Batches, Directions int
	Grad                [][]float64
	Curv                [][]float64
}

// MinibatchNoise measures, for each unit direction in dirs, the variance
// across M random minibatches of the gradient and of the curvature along
// it, at the point w0, and returns the per-batch values as well. Each
// minibatch costs one gradient plus two per direction (one with
// opts.Forward). ms are independent instances of one model (models are
// not safe for concurrent use); the batches are spread over them, and
// every batch is computed exactly as on one instance, so the results do
// not depend on len(ms).
//
// Every minibatch is a fresh sample, the first batch of its own sampler
// stream, never a slice of a permutation shared with the other batches:
// disjoint slices of one shuffle have negatively correlated means, which
// biases the sample variance up by N / (N - b) (THEORY.md section 8).
//
// progress, if not nil, is called after each minibatch. Cancelling ctx
// stops it at the next product with ctx's error.
func MinibatchNoise(ctx context.Context, ms []models.Model, ds data.Dataset, w0 []float64, dirs [][]float64, opts NoiseOptions, progress func(done, total int)) ([]DirectionNoise, *NoiseSamples, error) {
	if opts.Batches == 0 {
		opts.Batches = 32
	}
	if opts.Batches < 2 {
		return nil, nil, fmt.Errorf("noise: %d minibatches: need at least 2 for a variance", opts.Batches)
	}
	if opts.Sampling == "" {
		opts.Sampling = data.WithoutReplacement
	}
	if opts.Boot == 0 {
		opts.Boot = 1000
	}
	if opts.Level == 0 {
		opts.Level = 0.95
	}
	if len(ms) == 0 {
		return nil, nil, fmt.Errorf("noise: no model instance")
	}
	p := ms[0].NumParams()
	for i, u := range dirs {
		if len(u) != p {
			return nil, nil, fmt.Errorf("noise: direction %d has %d entries, model has %d parameters", i, len(u), p)
		}
	}
	M, K := opts.Batches, len(dirs)
	samples := &NoiseSamples{Batches: M, Directions: K, Grad: make([][]float64, M), Curv: make([][]float64, M)}
	// Per-instance buffers: the batch and the products H_B u_i.
	type buffers struct {
		batch data.Batch
		idx   []int
		hu    [][]float64
	}
	bufs := make([]*buffers, len(ms))
	for k := range bufs {
		b := &buffers{idx: make([]int, opts.BatchSize), hu: make([][]float64, K)}
		for i := range b.hu {
			b.hu[i] = make([]float64, p)
		}
		bufs[k] = b
	}
	batchStats := func(k, j int) error {
		b := bufs[k]
		sampler, err := data.NewSampler(ds.Len(), opts.BatchSize, opts.Sampling, opts.Seed, opts.Stream+uint64(j))
		if err != nil {
			return fmt.Errorf("noise: %w", err)
		}
		b.idx = sampler.Indices(0, b.idx)
		ds.Fill(&b.batch, b.idx)
		h, err := NewHessian(ms[k], &b.batch, w0, opts.Step)
		if err != nil {
			return fmt.Errorf("noise: minibatch %d: %w", j, err)
		}
		op := contextOperator{ctx, h}
		if opts.Forward {
			op.Operator = h.Forward(0)
		}
		g, a := make([]float64, K), make([]float64, K*K)
		for i, u := range dirs {
			g[i] = dot(u, h.Grad0)
			if err := op.Apply(b.hu[i], u); err != nil {
				return fmt.Errorf("noise: minibatch %d, direction %d: %w", j, i, err)
			}
		}
		for i := range K {
			for l := i; l < K; l++ {
				v := 0.5 * (dot(dirs[i], b.hu[l]) + dot(dirs[l], b.hu[i]))
				a[i*K+l], a[l*K+i] = v, v
			}
		}
		samples.Grad[j], samples.Curv[j] = g, a
		return nil
	}
	var done func(int)
	if progress != nil {
		done = func(n int) { progress(n, M) }
	}
	if err := forEachIndex(ctx, M, len(ms), batchStats, done); err != nil {
		return nil, nil, err
	}
	for _, m := range ms {
		m.SetParams(w0)
	}
	out := make([]DirectionNoise, K)
	boot := newBatchBootstrap(M, opts.Boot, opts.Seed)
	x, y := make([]float64, M), make([]float64, M)
	for i := range K {
		for j := range M {
			x[j], y[j] = samples.Grad[j][i], samples.Curv[j][i*K+i]
		}
		var d DirectionNoise
		d.MeanGrad, d.C, d.CErr = varianceWithError(x)
		d.MeanCurv, d.S2, d.S2Err = varianceWithError(y)
		d.CLo, d.CHi = boot.varianceInterval(x, opts.Level)
		d.S2Lo, d.S2Hi = boot.varianceInterval(y, opts.Level)
		out[i] = d
	}
	return out, samples, nil
}

// batchBootstrap resamples M batches with replacement, the same B
// resamples for every direction.
type batchBootstrap struct {
	draws [][]int
}

func newBatchBootstrap(m, b int, seed uint64) *batchBootstrap {
	bs := &batchBootstrap{}
	if b < 0 {
		return bs
	}
	rng := newRand(seed ^ 0x9e3779b97f4a7c15)
	for range b {
		d := make([]int, m)
		for j := range d {
			d[j] = rng.IntN(m)
		}
		bs.draws = append(bs.draws, d)
	}
	return bs
}

// varianceInterval is the equal-tailed percentile interval of the sample
// variance of x over the resamples (NaN without resamples).
func (bs *batchBootstrap) varianceInterval(x []float64, level float64) (lo, hi float64) {
	if len(bs.draws) == 0 {
		return math.NaN(), math.NaN()
	}
	vs := make([]float64, len(bs.draws))
	r := make([]float64, len(x))
	for b, d := range bs.draws {
		for j, k := range d {
			r[j] = x[k]
		}
		_, vs[b], _ = varianceWithError(r)
	}
	slices.Sort(vs)
	q := func(p float64) float64 {
		f := p * float64(len(vs)-1)
		i := int(f)
		if i >= len(vs)-1 {
			return vs[len(vs)-1]
		}
		return vs[i] + (f-float64(i))*(vs[i+1]-vs[i])
	}
	return q((1 - level) / 2), q((1 + level) / 2)
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
