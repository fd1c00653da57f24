package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/internal/atomicfile"
	"github.com/sgdyn/sgdyn/models"
)

// Gaussian-surrogate ensembles replace the minibatch gradient of SGD by
// the full gradient plus Gaussian noise with the measured minibatch-noise
// covariance: replicas follow
//
//	theta <- theta - eta grad L(theta) + eta xi,
//
// the Euler-Maruyama discretisation, at step eta, of the Langevin SDE with
// SGD's diffusion matrix. The drift is the gradient over a fixed
// evaluation set at the current point, so it keeps the restoring force.

// Surrogate kinds.
const (
	// SurrogateLangevin draws xi = sum_m z_m (g_{B_m} - gbar) / sqrt(M - 1)
	// from M centred minibatch gradients at the reference: a Gaussian with
	// their sample covariance, confined to the span of real gradient noise,
	// so it never moves a direction SGD's noise cannot move (a symmetry
	// null).
	SurrogateLangevin = "langevin"
	// SurrogateLangevinDiag draws each parameter independently with the
	// per-parameter variance of the same M centred gradients: the paper's
	// surrogate, kept as a labelled comparison. It drives symmetry nulls.
	SurrogateLangevinDiag = "langevin-diag"
)

// Defaults of SurrogateConfig fields left at zero.
const (
	DefaultSurrogateBatches = 64
	DefaultSurrogateEval    = 4096 // probe.SurveyOptions' default evaluation set
)

// SurrogateNoiseStream is the sampler stream of the M noise minibatches:
// apart from the training run (0), the replicas (1..R) and the survey's
// noise probe (probe.NoiseStream, 1<<40).
const SurrogateNoiseStream = 1 << 41

// SurrogateFile is surrogate.json in the ensemble directory: what the noise
// measured at the reference was (see SurrogateInfo).
const SurrogateFile = "surrogate.json"

// SurrogateConfig selects a Gaussian-surrogate ensemble; the zero value is
// plain SGD. It is part of the manifest, so an ensemble says which it is.
type SurrogateConfig struct {
	Kind string `json:"kind"` // SurrogateLangevin or SurrogateLangevinDiag
	// Batches is M, the number of minibatches (of the ensemble's batch size
	// and sampling) whose centred gradients define the noise.
	Batches int `json:"batches"`
	// EvalExamples is the size of the evaluation set of the drift:
	// data.EvenlySpaced(train.Len(), EvalExamples), the set the curvature
	// survey uses.
	EvalExamples int `json:"eval_examples"`
}

// WithDefaults fills the zero counts of a surrogate config; the zero
// config (SGD) stays zero.
func (s SurrogateConfig) WithDefaults() SurrogateConfig {
	if s.Kind == "" {
		return s
	}
	if s.Batches == 0 {
		s.Batches = DefaultSurrogateBatches
	}
	if s.EvalExamples == 0 {
		s.EvalExamples = DefaultSurrogateEval
	}
	return s
}

// Validate reports the first bad surrogate setting.
func (s SurrogateConfig) Validate() error {
	switch s.Kind {
	case "":
		if s.Batches != 0 || s.EvalExamples != 0 {
			return fmt.Errorf("surrogate noise batches %d, evaluation examples %d given for an SGD ensemble (no surrogate kind)", s.Batches, s.EvalExamples)
		}
		return nil
	case SurrogateLangevin, SurrogateLangevinDiag:
	default:
		return fmt.Errorf("surrogate %q: want %q or %q", s.Kind, SurrogateLangevin, SurrogateLangevinDiag)
	}
	switch {
	case s.Batches < 2:
		return fmt.Errorf("surrogate noise batches %d: a covariance needs at least 2", s.Batches)
	case s.EvalExamples < 1:
		return fmt.Errorf("surrogate evaluation examples %d: must be positive", s.EvalExamples)
	}
	return nil
}

// SurrogateInfo is surrogate.json: the noise the surrogate draws, as
// measured at the reference, so a report can predict the surrogate's
// variance without rerunning it.
type SurrogateInfo struct {
	SurrogateConfig
	EvalLoss     float64 `json:"eval_loss"`      // L over the evaluation set at the reference
	EvalGradNorm float64 `json:"eval_grad_norm"` // ||grad L|| there
	NoiseStream  uint64  `json:"noise_stream"`   // sampler stream of the M minibatches
	// NoiseTrace is tr C-hat, the total variance per step of xi.
	NoiseTrace float64 `json:"noise_trace"`
	// C is u_i^T C-hat u_i per direction: the variance of u_i . xi, which
	// the diagonal variant gets wrong off the parameter axes.
	C []float64 `json:"c"`
}

// surrogate is the noise model of an ensemble, measured once at the
// reference and then read by every replica.
type surrogate struct {
	kind   string
	seed   uint64
	eval   data.Batch  // the drift's evaluation set
	factor [][]float64 // langevin: M rows (g_{B_m} - gbar) / sqrt(M - 1)
	sd     []float64   // langevin-diag: per-parameter standard deviations
	info   SurrogateInfo
}

// newSurrogate measures the minibatch noise of c at the reference ref: M
// minibatch gradients, drawn as c's replicas draw theirs (batch size and
// sampling) from their own stream, each a fresh sample. They are taken in
// float64 (the probe model) whatever the run's dtype, so the noise of a
// symmetry null is at float64 round-off. It takes M + 1 gradients and is
// not interruptible: that is less than one replica-step of a surrogate.
func newSurrogate(ref *Reference, c EnsembleConfig) (*surrogate, error) {
	sc := c.Surrogate
	train := ref.Data.Train
	m, err := ref.NewProbeModel()
	if err != nil {
		return nil, err
	}
	m.SetParams(ref.W)
	mode, err := data.ParseSampling(c.Sampling)
	if err != nil {
		return nil, err
	}
	sampler, err := data.NewSampler(train.Len(), c.Batch, mode, c.Seed, SurrogateNoiseStream)
	if err != nil {
		return nil, fmt.Errorf("surrogate noise: %w", err)
	}
	P, M := len(ref.W), sc.Batches
	grads := make([][]float64, M)
	gbar := make([]float64, P)
	var batch data.Batch
	idx := make([]int, c.Batch)
	// Without replacement, the batches of one epoch are disjoint and so
	// negatively correlated; minibatch m is the first of epoch m, an
	// independent draw. With replacement any step is.
	spe := int64(sampler.StepsPerEpoch())
	for j := range grads {
		idx = sampler.Indices(int64(j)*spe, idx)
		train.Fill(&batch, idx)
		g := make([]float64, P)
		if _, err := m.Grad(&batch, g); err != nil {
			return nil, fmt.Errorf("surrogate noise: minibatch %d: %w", j, err)
		}
		for i, v := range g {
			gbar[i] += v / float64(M)
		}
		grads[j] = g
	}
	s := &surrogate{kind: sc.Kind, seed: c.Seed, info: SurrogateInfo{SurrogateConfig: sc, NoiseStream: SurrogateNoiseStream}}
	scale := 1 / math.Sqrt(float64(M-1))
	for _, g := range grads {
		for i := range g {
			g[i] = (g[i] - gbar[i]) * scale
		}
	}
	switch sc.Kind {
	case SurrogateLangevin:
		s.factor = grads
	case SurrogateLangevinDiag:
		s.sd = make([]float64, P)
		for _, g := range grads {
			for i, v := range g {
				s.sd[i] += v * v
			}
		}
		for i, v := range s.sd {
			s.sd[i] = math.Sqrt(v)
		}
	}
	for _, g := range grads {
		s.info.NoiseTrace += dotFloats(g, g)
	}

	train.Fill(&s.eval, data.EvenlySpaced(train.Len(), sc.EvalExamples))
	g := make([]float64, P)
	if s.info.EvalLoss, err = m.Grad(&s.eval, g); err != nil {
		return nil, fmt.Errorf("surrogate drift at the reference: %w", err)
	}
	s.info.EvalGradNorm = norm(g)
	return s, nil
}

// directionVariance returns u^T C-hat u, the variance of u . xi.
func (s *surrogate) directionVariance(u []float64) float64 {
	var v float64
	if s.factor != nil {
		for _, f := range s.factor {
			d := dotFloats(u, f)
			v += d * d
		}
		return v
	}
	for i, x := range u {
		v += x * x * s.sd[i] * s.sd[i]
	}
	return v
}

// write records surrogate.json in the ensemble directory dir.
func (s *surrogate) write(dir string, dirs [][]float64) error {
	info := s.info
	info.C = make([]float64, len(dirs))
	for i, u := range dirs {
		info.C[i] = s.directionVariance(u)
	}
	return atomicfile.WriteJSON(filepath.Join(dir, SurrogateFile), info)
}

// surrogateDomain keeps the surrogate's normal draws apart from every
// minibatch sampler stream, whatever the seed.
const surrogateDomain = 0x5d1f3a7c2b9e4068

// surrogateReplica is one replica's source of noise. Its draws at a step
// are a pure function of (seed, replica, step), so a resumed replica
// continues bit-identically and the two kinds share their streams (common
// random numbers across kinds, learning rates and batch sizes).
type surrogateReplica struct {
	s   *surrogate
	key uint64
	pcg rand.PCG
}

func (s *surrogate) replica(r int) *surrogateReplica {
	return &surrogateReplica{s: s, key: splitmix64(splitmix64(s.seed^surrogateDomain) ^ uint64(1+r))}
}

// grad writes into grad the direction the replica steps along at step,
// grad L(theta) - xi with m at theta, and returns the evaluation-set loss.
func (z *surrogateReplica) grad(m models.Model, step int64, grad []float64) (float64, error) {
	loss, err := m.Grad(&z.s.eval, grad)
	if err != nil {
		return 0, err
	}
	z.pcg.Seed(z.key, uint64(step))
	var n normals
	if z.s.factor != nil {
		for _, f := range z.s.factor {
			a := n.next(&z.pcg)
			for i, v := range f {
				grad[i] -= a * v
			}
		}
		return loss, nil
	}
	for i, sd := range z.s.sd {
		grad[i] -= sd * n.next(&z.pcg)
	}
	return loss, nil
}

// normals draws standard normal deviates by the Box-Muller transform. It
// is written out rather than taken from rand.Rand so that the draws are
// fixed by this code, not by the Go release.
type normals struct {
	spare float64
	has   bool
}

func (n *normals) next(p *rand.PCG) float64 {
	if n.has {
		n.has = false
		return n.spare
	}
	const inv53 = 1.0 / (1 << 53)
	u1 := (float64(p.Uint64()>>11) + 0.5) * inv53 // in (0, 1): log is finite
	u2 := float64(p.Uint64()>>11) * inv53
	r := math.Sqrt(-2 * math.Log(u1))
	sin, cos := math.Sincos(2 * math.Pi * u2)
	n.spare, n.has = r*sin, true
	return r * cos
}

// splitmix64 is the output function of Steele, Lea and Flood's SplitMix64
// generator: a bijection with good avalanche, used to derive stream keys.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func dotFloats(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}
