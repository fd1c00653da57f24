package probe

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// SurveyOptions configures a full curvature survey of a reference point.
type SurveyOptions struct {
	EvalExamples int     // size of the fixed evaluation set defining the mean Hessian (default 4096, or all)
	Top          int     // largest eigenpairs (default 20; -1: none)
	Bottom       int     // most negative eigenpairs (default 5; -1: none)
	Bulk         int     // random directions orthogonal to the eigenvectors (default 16; -1: none)
	Tol          float64 // Lanczos tolerance relative to max |lambda| (default 1e-4)
	MaxIter      int     // Lanczos Krylov dimension cap (0: grow until the pairs converge)

	// Dense computes the whole Hessian from P products and all its
	// eigenpairs instead of Lanczos, with c along every eigenvector; for
	// models up to a few thousand parameters.
	Dense bool
	// DenseByProducts, with Dense, builds the Hessian from P products even
	// when the model has its own sweep (models.DenseHessianer), which
	// computes the same central differences: to check one against the
	// other.
	DenseByProducts bool `json:",omitempty"`
	// Window is the ensemble window (eta, T) the window-flat rule refers
	// to: |lambda| eta T < Window.Threshold.
	Window Window
	// Flat is how many certified flat, non-null directions to probe
	// (default 8 with Dense or FlatHVPs; -1: none). Dense: the noisiest
	// axes of the window-flat subspace. Otherwise: the matrix-free
	// search (FlatDirections) with a budget of FlatHVPs products.
	Flat     int
	FlatHVPs int
	// Products is how the survey's searches and stochastic estimates make
	// their products: the Krylov spaces of Lanczos and of the flat search,
	// the spectral density, the trace and the noise batches' u^T H_B u
	// (default ForwardProducts). Whatever it is, every eigenpair and flat
	// direction the survey reports, and H u along every probed direction,
	// is measured by a fresh central product.
	Products Products `json:",omitempty"`
	// Nulls is how many exact symmetry nulls the dense path probes as
	// controls (default 2; -1: none).
	Nulls int
	// TopAbs, with Dense, replaces Top and Bottom by the TopAbs
	// eigenvectors of largest |lambda| (sources top-i for the positive
	// ones, bottom-i for the negative ones): the paper's EXP2 direction
	// set. Smallest probes the Smallest eigenvectors of smallest |lambda|
	// as sources smallest-i: the paper's "flat" bucket, whatever class
	// they turn out to be.
	TopAbs, Smallest int

	DensityStarts int // stochastic Lanczos quadrature starts (default 4; -1 skips)
	DensitySteps  int // Lanczos steps per start (default 30)
	TraceSamples  int // Hutchinson samples (default 8; -1 skips)

	NoiseBatches int           // minibatches for s2 and the per-batch statistics (default 32)
	BatchSize    int           // the batch size whose noise is measured (the ensemble's)
	Sampling     data.Sampling // how the noise minibatches are drawn
	NullTol      float64       // c <= NullTol * median(c) flags a symmetry null (default 1e-10)

	// NoiseOnEval measures the per-example noise (c along every direction,
	// and the dense path's c along every eigenvector) on the evaluation
	// set itself. By default it is measured on a held-out sample of the
	// same size, disjoint from the evaluation set, whenever the training
	// set has room for one: the directions are chosen on the evaluation
	// set, and a direction that is flat on those examples tends to be
	// quiet on them too, so their own noise understates the training
	// set's along it (9-15x on the CIFAR-10 CNN's flat
	// directions, EXPERIMENTS.md section 11).
	NoiseOnEval bool

	FDStep float64     // finite-difference displacement (default DefaultFDStep)
	Seed   uint64      // seeds Lanczos, bulk directions, density, trace and noise batches
	User   [][]float64 `json:"-"` // extra directions given by the user (normalised here)

	// NewModel, if not nil, returns a new instance of the surveyed model
	// (at any parameters: the survey sets w0), so that the dense Hessian's
	// products and the per-example gradients can run on Workers
	// goroutines, each with its own instance: a model is not safe for
	// concurrent use. Every product and gradient is computed as on one
	// instance, so the results do not depend on Workers.
	NewModel func() (models.Model, error) `json:"-"`
	// Workers is how many instances (the surveyed model and Workers-1
	// from NewModel) share that work: 0 means DefaultWorkers(), 1 (or no
	// NewModel) runs it on the surveyed model alone.
	Workers int `json:"-"`
}

// Products is how the survey's searches and estimates make their
// Hessian-vector products. The measurements it reports (Ritz residuals,
// the flat certificates, H u along every probed direction, the dense
// Hessian) always use central differences; the Krylov searches and the
// stochastic estimates need products only to far above either kind's
// error, and their result is certified afterwards.
type Products string

const (
	// CentralProducts are float64 central differences (Hessian.Apply):
	// two gradients a product, symmetric to O(step^2).
	CentralProducts Products = "central"
	// ForwardProducts are float64 forward differences from the gradient
	// at w0 that the stage has anyway (ForwardHessian): one gradient a
	// product. On the CIFAR-10 CNN they are within 2e-8 of the central
	// products on the certified flat directions (||H u|| 0.016) and on
	// random ones, and 1.7e-7 (relative) along the top eigenvectors
	// (DefaultForwardStep); float32 central products, which cost more
	// than these, are 2e-5 off.
	ForwardProducts Products = "forward"
)

// ParseProducts returns the kind of products s names ("" is the
// default, ForwardProducts).
func ParseProducts(s string) (Products, error) {
	switch p := Products(s); p {
	case "":
		return ForwardProducts, nil
	case CentralProducts, ForwardProducts:
		return p, nil
	}
	return "", fmt.Errorf("products %q: want forward or central", s)
}

// MaxDenseAsymmetry is the largest asymmetry of the dense Hessian, relative
// to max |lambda|, the survey accepts without a warning. On NanoGPT-960
// (EXPERIMENTS.md) the default step gives 6.6e-7 and counts 57 nulls
// where steps 10 and 100 times smaller (asymmetry 6.6e-9, 6.6e-11) count
// 94 and 95; the quick model's (4.3e-9) and MLP-386's (4e-10) stay below.
const MaxDenseAsymmetry = 1e-7

func (o SurveyOptions) stepOrDefault() float64 {
	if o.FDStep > 0 {
		return o.FDStep
	}
	return DefaultFDStep
}

// DefaultWorkers is the default SurveyOptions.Workers: one per core the Go
// scheduler uses, at most 4 (the models split big batches over the cores
// themselves, so more instances only cost memory).
func DefaultWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }

// instances returns m and, with NewModel, up to Workers-1 new instances of
// it.
func (o SurveyOptions) instances(m models.Model) ([]models.Model, error) {
	workers := o.Workers
	if workers < 0 {
		return nil, fmt.Errorf("%d workers: want at least 1 (0: DefaultWorkers)", workers)
	}
	if workers == 0 {
		workers = DefaultWorkers()
	}
	ms := []models.Model{m}
	for o.NewModel != nil && len(ms) < workers {
		mk, err := o.NewModel()
		if err != nil {
			return nil, fmt.Errorf("model instance %d: %w", len(ms), err)
		}
		if mk.NumParams() != m.NumParams() {
			return nil, fmt.Errorf("model instance %d has %d parameters, the surveyed model %d", len(ms), mk.NumParams(), m.NumParams())
		}
		ms = append(ms, mk)
	}
	return ms, nil
}

// WithDefaults returns o with every unset field at its documented default.
func (o SurveyOptions) WithDefaults() SurveyOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.EvalExamples, 4096)
	def(&o.Top, 20)
	def(&o.Bottom, 5)
	def(&o.Bulk, 16)
	def(&o.DensityStarts, 4)
	def(&o.DensitySteps, 30)
	def(&o.TraceSamples, 8)
	if o.Products == "" {
		o.Products = ForwardProducts
	}
	def(&o.NoiseBatches, 32)
	if o.Dense || o.FlatHVPs > 0 {
		def(&o.Flat, 8)
	}
	if o.Dense {
		def(&o.Nulls, 2)
	}
	if o.Flat > 0 && !o.Dense {
		def(&o.FlatHVPs, 50*o.Flat)
	}
	// Zero means "default"; a negative count asks for none.
	for _, v := range []*int{&o.Top, &o.Bottom, &o.Bulk, &o.Flat, &o.Nulls} {
		*v = max(*v, 0)
	}
	if o.Tol == 0 {
		o.Tol = 1e-4
	}
	if o.NullTol == 0 {
		o.NullTol = 1e-10
	}
	if o.Sampling == "" {
		o.Sampling = data.WithoutReplacement
	}
	if o.Window.Threshold == 0 && (o.Window.LR > 0 || o.Dense || o.Flat > 0) {
		o.Window.Threshold = DefaultFlatThreshold
	}
	return o
}

// Direction describes one probed unit direction u.
type Direction struct {
	Index  int    `json:"index"`
	Source string `json:"source"` // top-i, bottom-i, flat-i, null-i, bulk-i or user-i
	// Lambda is u^T H u over the evaluation set and HNorm ||H u||, the
	// direction's flatness certificate: the weight of eigenvectors with
	// |lambda| > delta is at most (HNorm / delta)^2.
	Lambda   float64 `json:"lambda"`
	HNorm    float64 `json:"h_norm"`
	Residual float64 `json:"residual,omitempty"` // ||H u - lambda u||
	// Certificate says how the direction was obtained and certified.
	Certificate string `json:"certificate"`
	// Class is the dense path's class of the direction (null,
	// window-flat, confined-candidate, negative), or the same rule applied
	// to (lambda, HNorm, c) for other sources.
	Class string `json:"class,omitempty"`
	// C is Var_B(u . g_B) at the survey's batch size from per-example
	// gradients over the evaluation set, CErr its standard error, and
	// Kurtosis that of the per-example projections.
	C        float64 `json:"c"`
	CErr     float64 `json:"c_err"`
	Kurtosis float64 `json:"kurtosis"`
	// CBatch is the same variance estimated from the M noise minibatches,
	// with a bootstrap interval over them: a cross-check of C.
	CBatch   float64    `json:"c_batch"`
	CBatchCI [2]float64 `json:"c_batch_ci"`
	// CEval is C measured on the evaluation set itself, when C comes
	// from a held-out sample (SurveyOptions.NoiseOnEval): the bias the
	// choice of directions on the evaluation set puts into it.
	CEval float64 `json:"c_eval,omitempty"`
	// HNormHeldOut is ||H u|| over the held-out sample, for flat
	// directions: the certificate checked on examples it was not chosen
	// on. It includes that sample's own noise, so it overstates the
	// training set's ||H u||; HNorm2Split, the dot product of H u over the
	// two halves of the held-out sample, estimates its square without
	// bias (it can come out negative when noise dominates). The
	// window-flat class uses HNorm.
	HNormHeldOut float64    `json:"h_norm_heldout,omitempty"`
	HNorm2Split  float64    `json:"h_norm2_split,omitempty"`
	S2           float64    `json:"s2"` // Var_B(u^T H_B u), from the M minibatches
	S2Err        float64    `json:"s2_err"`
	S2CI         [2]float64 `json:"s2_ci"`
	MeanGrad     float64    `json:"mean_grad"` // u . grad L over the evaluation set
	Null         bool       `json:"null"`      // exact symmetry direction: c at round-off level
}

// Survey is everything measured about a reference point.
type Survey struct {
	Params       int `json:"params"`
	EvalExamples int `json:"eval_examples"`
	// NoiseHeldOut: c was measured on a held-out sample of EvalExamples
	// training examples, disjoint from the evaluation set.
	NoiseHeldOut bool            `json:"noise_held_out"`
	Loss         float64         `json:"loss"`      // mean loss over the evaluation set
	GradNorm     float64         `json:"grad_norm"` // ||grad L|| there
	Top          []Eigenvalue    `json:"top"`
	Bottom       []Eigenvalue    `json:"bottom"`
	Converged    bool            `json:"lanczos_converged"`
	LanczosHVPs  int             `json:"lanczos_hvps"`
	Dense        *DenseSpectrum  `json:"dense,omitempty"`
	Flat         *FlatSummary    `json:"flat,omitempty"`
	Density      *DensitySummary `json:"density,omitempty"`
	Trace        *TraceEstimate  `json:"trace,omitempty"`
	HVPs         int             `json:"hvps"` // Hessian-vector products on the evaluation set
	// FrozenPattern says the products held the reference point's ReLU and
	// max-pool pattern fixed (see Hessian).
	FrozenPattern bool `json:"frozen_activation_pattern"`
	// Warnings are problems a reader of the results must know about
	// (unconverged eigenpairs, too few flat directions).
	Warnings   []string    `json:"warnings,omitempty"`
	Directions []Direction `json:"-"`
	Vectors    [][]float64 `json:"-"` // unit directions, in Directions order
	// HV[i][j] = u_i^T H u_j over the evaluation set, and Noise the
	// per-batch statistics: the inputs of the subspace recursion.
	HV    [][]float64   `json:"-"`
	Noise *NoiseSamples `json:"-"`
	// CV[i][j] = Cov_B(u_i . g_B, u_j . g_B) at the survey's batch size,
	// from the per-example gradients (its diagonal is each direction's c).
	CV       [][]float64        `json:"-"`
	Seconds  float64            `json:"seconds"`
	Stages   map[string]float64 `json:"stage_seconds"`
	Settings SurveyOptions      `json:"settings"`
}

// FlatSummary is what the matrix-free flat search spent and reached.
type FlatSummary struct {
	K      int     `json:"k"`
	Budget int     `json:"budget_hvps"`
	HVPs   int     `json:"hvps"`
	Delta  float64 `json:"delta"` // largest certified ||H u|| among the directions
	Target float64 `json:"target_delta"`
	Method string  `json:"method"`
}

// Eigenvalue is a Ritz value with its residual ||H v - lambda v||.
type Eigenvalue struct {
	Value     float64 `json:"value"`
	Residual  float64 `json:"residual"`
	Converged bool    `json:"converged"`
}

// DensitySummary is the smoothed spectral density on a grid.
type DensitySummary struct {
	Grid   []float64 `json:"grid"`
	Values []float64 `json:"values"`
}

// RunSurvey measures the reference point w0 of model m (use a float64 model):
// the extreme eigenpairs of the mean Hessian over a fixed evaluation set drawn
// from train (by Lanczos, or all of them with Dense), certified flat and
// null directions, its spectral density and trace, and the gradient and
// curvature noise of minibatches along every probed direction. progress,
// if not nil, gets a stage name and counts as the survey goes. Cancelling
// ctx stops the survey before its next Hessian-vector product with ctx's
// error.
func RunSurvey(ctx context.Context, m models.Model, train data.Dataset, w0 []float64, o SurveyOptions, progress func(stage string, done, total int)) (*Survey, error) {
	start := time.Now()
	o = o.WithDefaults()
	if progress == nil {
		progress = func(string, int, int) {}
	}
	p := m.NumParams()
	if o.Top+o.Bottom > p {
		return nil, fmt.Errorf("survey: %d eigenpairs requested of a %d-parameter model", o.Top+o.Bottom, p)
	}
	if o.Flat > 0 && !(o.Window.LR > 0 && o.Window.Steps > 0) {
		return nil, fmt.Errorf("survey: flat directions need the ensemble window (lr and steps)")
	}
	if _, err := ParseProducts(string(o.Products)); err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	idx := data.EvenlySpaced(train.Len(), o.EvalExamples)
	n := len(idx)
	var eval data.Batch
	train.Fill(&eval, idx)
	noiseIdx, heldOut := idx, false
	if held := HeldOutIndices(train.Len(), idx); held != nil && !o.NoiseOnEval {
		noiseIdx, heldOut = held, true
	}
	h, err := NewHessian(m, &eval, w0, o.FDStep)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	ms, err := o.instances(m)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	s := &Survey{Params: p, EvalExamples: n, NoiseHeldOut: heldOut, Loss: h.Loss0, GradNorm: math.Sqrt(dot(h.Grad0, h.Grad0)),
		FrozenPattern: h.FrozenPattern(), Settings: o, Stages: map[string]float64{}}
	counter := &CountingOperator{Op: contextOperator{ctx, h}}
	stage := "lanczos"
	counter.OnApply = func(calls int) { progress(stage, calls, 0) }
	// estimates returns the operator a search or a stochastic estimate
	// runs on (o.Products) and a func that adds its products to counter's
	// once it is done.
	estimates := func() (*CountingOperator, func()) {
		if o.Products != ForwardProducts {
			return counter, func() {}
		}
		fwd := &CountingOperator{Op: contextOperator{ctx, h.Forward(0)}, OnApply: counter.progressFrom()}
		return fwd, func() { counter.Calls += fwd.Calls }
	}
	clock := newStopwatch()
	// hu[i] = H u_i for every probed direction, from the products made anyway.
	var hu [][]float64
	add := func(d Direction, v, hv []float64) {
		s.Directions = append(s.Directions, d)
		s.Vectors = append(s.Vectors, v)
		hu = append(hu, hv)
	}

	if o.Dense {
		var hess DenseHessian
		if dh, ok := m.(models.DenseHessianer); ok && !o.DenseByProducts {
			workers := o.Workers
			if workers == 0 {
				workers = DefaultWorkers()
			}
			hess = FromSweep(dh, &eval, w0, o.FDStep, workers)
		} else {
			// One Hessian per instance, all on the evaluation batch at w0.
			ops := []Operator{contextOperator{ctx, h}}
			for k, mk := range ms[1:] {
				hk, err := NewHessian(mk, &eval, w0, o.FDStep)
				if err != nil {
					return nil, fmt.Errorf("survey: model instance %d: %w", k+1, err)
				}
				ops = append(ops, contextOperator{ctx, hk})
			}
			hess = FromProducts(ops)
		}
		spec, err := NewDenseSpectrum(ctx, hess, ms, train, noiseIdx, w0, o.BatchSize, o.Sampling, o.Window, o.NullTol, progress)
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		counter.Calls += p
		s.Dense = spec
		s.Converged = true
		if spec.RelAsymmetry > MaxDenseAsymmetry {
			s.Warnings = append(s.Warnings, fmt.Sprintf("the dense Hessian's asymmetry is %.2g of max |lambda| (the central differences' truncation error, which scales as fd_step squared): eigenvalues below about %.2g are not resolved, so nulls and flat directions mix there; a smaller fd_step (e.g. %g) resolves them",
				spec.RelAsymmetry, spec.Asymmetry, o.stepOrDefault()/100))
		}
		for k, stg := range spec.Seconds {
			s.Stages["dense "+k] = stg
		}
		denseDirs(s, spec, o, add)
		clock.lap()
	} else {
		search, done := estimates()
		err := lanczosDirs(s, search, counter, o, add)
		done()
		if err != nil {
			return nil, err
		}
		s.Stages["lanczos"] = clock.lap()
		if o.Flat > 0 {
			stage = "flat search"
			search, done := estimates()
			err := flatDirs(ctx, s, search, counter, m, train, w0, h.Grad0, o, add)
			done()
			if err != nil {
				return nil, err
			}
			s.Stages["flat"] = clock.lap()
		}
	}
	if o.Bulk > 0 {
		bulk, err := BulkDirections(p, o.Bulk, s.Vectors, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("survey: bulk directions: %w", err)
		}
		for i, v := range bulk {
			add(Direction{Source: fmt.Sprintf("bulk-%d", i), Certificate: "random unit vector orthogonal to the eigenvectors (a mixture of modes)"}, v, nil)
		}
	}
	for i, u := range o.User {
		if len(u) != p {
			return nil, fmt.Errorf("survey: user direction %d has %d entries, model has %d parameters", i, len(u), p)
		}
		v := append([]float64(nil), u...)
		nv := math.Sqrt(dot(v, v))
		if nv == 0 {
			return nil, fmt.Errorf("survey: user direction %d is zero", i)
		}
		for j := range v {
			v[j] /= nv
		}
		add(Direction{Source: fmt.Sprintf("user-%d", i), Certificate: "given by the user"}, v, nil)
	}
	stage = "curvature"
	for i := range s.Vectors {
		if hu[i] != nil {
			continue
		}
		hv := make([]float64, p)
		if s.Dense != nil {
			denseApply(s.Dense, hv, s.Vectors[i])
		} else if err := counter.Apply(hv, s.Vectors[i]); err != nil {
			return nil, fmt.Errorf("survey: curvature of direction %d: %w", i, err)
		}
		hu[i] = hv
		d := &s.Directions[i]
		d.Lambda, d.HNorm = dot(s.Vectors[i], hv), norm(hv)
		if s.Flat != nil && strings.HasPrefix(d.Source, "flat-") {
			// The subspace inputs need H u itself, so the matrix-free
			// certificate is measured once more; report that value.
			d.Certificate += fmt.Sprintf("; rechecked %.3g", d.HNorm)
		}
	}
	s.HV = make([][]float64, len(s.Vectors))
	for i := range s.Vectors {
		s.HV[i] = make([]float64, len(s.Vectors))
		for j := range s.Vectors {
			s.HV[i][j] = 0.5 * (dot(s.Vectors[i], hu[j]) + dot(s.Vectors[j], hu[i]))
		}
	}
	s.Stages["curvature"] = clock.lap()
	if o.DensityStarts > 0 && s.Dense == nil {
		stage = "density"
		op, done := estimates()
		d, err := SpectralDensity(op, DensityOptions{Starts: o.DensityStarts, Steps: o.DensitySteps, Seed: o.Seed})
		done()
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		s.Density = &DensitySummary{Grid: d.Grid, Values: d.Values}
		s.Stages["density"] = clock.lap()
	}
	if o.TraceSamples > 0 && s.Dense == nil {
		stage = "trace"
		op, done := estimates()
		tr, err := HutchinsonTrace(op, o.TraceSamples, o.Seed)
		done()
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		s.Trace = &tr
		s.Stages["trace"] = clock.lap()
	}
	if s.Dense != nil {
		var tr float64
		for _, l := range s.Dense.Values {
			tr += l
		}
		s.Trace = &TraceEstimate{Mean: tr, Samples: 0}
	}
	s.HVPs = counter.Calls

	// c from per-example gradients (no minibatch sampling error): on the
	// held-out sample when there is one, else on the evaluation set, where
	// it is exact when that is the whole training set.
	progress("per-example noise", 0, n)
	proj, err := ExampleProjections(ctx, ms, train, noiseIdx, w0, s.Vectors)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	ex, err := NoiseFromProjections(proj, train.Len(), o.BatchSize, o.Sampling)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	var exEval *ExampleNoise
	if heldOut {
		// The evaluation set's own c, beside the held-out one, shows how
		// much the choice of directions on it biases it.
		pe, err := ExampleProjections(ctx, ms, train, idx, w0, s.Vectors)
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		if exEval, err = NoiseFromProjections(pe, train.Len(), o.BatchSize, o.Sampling); err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
	}
	s.CV = batchCovariance(proj, ex.Factor)
	s.Stages["example noise"] = clock.lap()
	noise, samples, err := MinibatchNoise(ctx, ms, train, w0, s.Vectors, NoiseOptions{
		Batches: o.NoiseBatches, BatchSize: o.BatchSize, Sampling: o.Sampling,
		Seed: o.Seed, Stream: NoiseStream, Step: o.FDStep, Forward: o.Products == ForwardProducts,
	}, func(done, total int) { progress("noise", done, total) })
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	s.Noise = samples
	s.Stages["batch noise"] = clock.lap()
	for i, nz := range noise {
		d := &s.Directions[i]
		d.Index = i
		d.C, d.CErr, d.Kurtosis = ex.C[i], ex.CErr[i], ex.Kurtosis[i]
		if exEval != nil {
			d.CEval = exEval.C[i]
		}
		d.CBatch, d.CBatchCI = nz.C, [2]float64{nz.CLo, nz.CHi}
		d.S2, d.S2Err, d.S2CI = nz.S2, nz.S2Err, [2]float64{nz.S2Lo, nz.S2Hi}
		d.MeanGrad = dot(s.Vectors[i], h.Grad0)
	}
	if heldOut {
		if err := recheckFlatHeldOut(ctx, s, m, train, noiseIdx, w0, o.FDStep); err != nil {
			return nil, err
		}
		s.Stages["held-out recheck"] = clock.lap()
	}
	classifyDirections(s, o)
	m.SetParams(w0)
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

// HeldOutIndices returns k training examples of n disjoint from the
// evenly spaced evaluation set idx (data.EvenlySpaced(n, k)): each sits
// half a stride after an evaluation example. It returns nil when the
// stride is below 2, that is when the evaluation set takes more than half
// the training set and there is no room for a sample of the same size.
func HeldOutIndices(n int, idx []int) []int {
	k := len(idx)
	if k == 0 || n/k < 2 {
		return nil
	}
	half := n / k / 2
	held := make([]int, k)
	for i, j := range idx {
		held[i] = j + half
	}
	return held
}

// HeldOutCurvature measures H u for each unit vector u on the held-out
// examples held of train, over each half A and B of them: the halves'
// weighted mean gives ||H u|| over the whole held-out sample, which carries
// that sample's own noise and so overstates the training set's ||H u||,
// while (H_A u) . (H_B u) estimates its square without bias, the halves'
// noises being independent (it can come out negative when noise
// dominates). It costs two products a vector, each on half the sample.
func HeldOutCurvature(ctx context.Context, m models.Model, train data.Dataset, held []int, w0 []float64, step float64, vectors [][]float64) (norms, split2 []float64, err error) {
	if len(held) < 2 {
		return nil, nil, fmt.Errorf("held-out curvature: %d held-out examples, want at least 2", len(held))
	}
	var ia, ib []int
	for k, j := range held {
		if k%2 == 0 {
			ia = append(ia, j)
		} else {
			ib = append(ib, j)
		}
	}
	half := func(idx []int) (Operator, error) {
		var b data.Batch
		train.Fill(&b, idx)
		h, err := NewHessian(m, &b, w0, step)
		if err != nil {
			return nil, fmt.Errorf("held-out curvature: %w", err)
		}
		return contextOperator{ctx, h}, nil
	}
	opA, err := half(ia)
	if err != nil {
		return nil, nil, err
	}
	opB, err := half(ib)
	if err != nil {
		return nil, nil, err
	}
	wa, wb := float64(len(ia))/float64(len(held)), float64(len(ib))/float64(len(held))
	ha, hb, hm := make([]float64, len(w0)), make([]float64, len(w0)), make([]float64, len(w0))
	for k, u := range vectors {
		if err := opA.Apply(ha, u); err != nil {
			return nil, nil, fmt.Errorf("held-out curvature of vector %d: %w", k, err)
		}
		if err := opB.Apply(hb, u); err != nil {
			return nil, nil, fmt.Errorf("held-out curvature of vector %d: %w", k, err)
		}
		for j := range hm {
			hm[j] = wa*ha[j] + wb*hb[j]
		}
		norms, split2 = append(norms, norm(hm)), append(split2, dot(ha, hb))
	}
	return norms, split2, nil
}

// recheckFlatHeldOut measures the flat directions' curvature once more on
// the held-out examples (HeldOutCurvature): the flat search and the dense
// path certify it on the evaluation set they chose it on.
func recheckFlatHeldOut(ctx context.Context, s *Survey, m models.Model, train data.Dataset, held []int, w0 []float64, step float64) error {
	var flat []int
	var vecs [][]float64
	for i, d := range s.Directions {
		if strings.HasPrefix(d.Source, "flat-") {
			flat, vecs = append(flat, i), append(vecs, s.Vectors[i])
		}
	}
	if len(flat) == 0 || len(held) < 2 {
		return nil
	}
	norms, split2, err := HeldOutCurvature(ctx, m, train, held, w0, step, vecs)
	if err != nil {
		return fmt.Errorf("survey: %w", err)
	}
	s.HVPs += 2 * len(flat) // each on half the held-out sample
	bound := 0.0
	if w := s.Settings.Window; w.LR > 0 && w.Steps > 0 {
		bound = w.FlatBound()
	}
	var flatHere, broken int
	lo, hi := math.Inf(1), math.Inf(-1)
	for k, i := range flat {
		d := &s.Directions[i]
		d.HNormHeldOut, d.HNorm2Split = norms[k], split2[k]
		est := math.Sqrt(max(d.HNorm2Split, 0))
		d.Certificate += fmt.Sprintf("; on %d held-out examples ||H u|| %.3g, split-half estimate %.3g", len(held), d.HNormHeldOut, est)
		if bound > 0 && d.HNorm < bound {
			flatHere++
			if est >= bound {
				broken++
				lo, hi = min(lo, est), max(hi, est)
			}
		}
	}
	// The class is the evaluation set's certificate (the survey's mean
	// Hessian); say when the held-out estimate breaks it.
	if broken > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d of the %d flat directions certified window-flat on the evaluation set have a held-out (split-half) ||H u|| of %.3g-%.3g, above the bound %.3g: flat for the evaluation set's Hessian, not demonstrably for the training set's (a larger evaluation set narrows the gap)",
			broken, flatHere, lo, hi, bound))
	}
	return nil
}

// classifyDirections flags nulls among the probed directions and gives
// every direction the dense path's class, from its own lambda, HNorm and c.
func classifyDirections(s *Survey, o SurveyOptions) {
	cs := make([]float64, len(s.Directions))
	for i, d := range s.Directions {
		cs[i] = d.C
	}
	null, med := FlagNulls(cs, o.NullTol)
	if s.Dense != nil {
		// The median over every eigenvector is the robust reference: the
		// probed set deliberately holds nulls.
		med = s.Dense.NullMedian
	}
	var bound float64
	if o.Window.LR > 0 && o.Window.Steps > 0 {
		bound = o.Window.FlatBound()
	}
	for i := range s.Directions {
		d := &s.Directions[i]
		d.Null = null[i] || (s.Dense != nil && d.C <= o.NullTol*med)
		switch {
		case d.Null:
			d.Class = ClassNull
		case bound > 0 && d.HNorm < bound:
			d.Class = ClassWindowFlat
		case d.Lambda < 0:
			d.Class = ClassNegative
		default:
			d.Class = ClassConfined
		}
	}
}

// lanczosDirs adds the top and bottom Ritz pairs of a Lanczos run on
// search, each measured by a fresh product of certify: its eigenvalue is
// that product's Rayleigh quotient and its residual the true one. With
// MaxIter 0 it grows the Krylov cap until every requested pair converges
// (up to 8 times the default or P), and labels the pairs that still did
// not.
func lanczosDirs(s *Survey, search, certify *CountingOperator, o SurveyOptions, add func(Direction, []float64, []float64)) error {
	if o.Top+o.Bottom == 0 {
		s.Converged = true
		return nil
	}
	p := search.Dim()
	maxIter := o.MaxIter
	if maxIter == 0 {
		maxIter = max(3*(o.Top+o.Bottom)+20, 60)
	}
	var lz *LanczosResult
	for {
		var err error
		lz, err = Lanczos(search, LanczosOptions{Top: o.Top, Bottom: o.Bottom, Tol: o.Tol, MaxIter: min(maxIter, p), Seed: o.Seed})
		if err != nil {
			return fmt.Errorf("survey: %w", err)
		}
		s.LanczosHVPs += lz.Applies
		grown := 2 * maxIter
		if lz.Converged || o.MaxIter != 0 || maxIter >= p || grown > 8*max(3*(o.Top+o.Bottom)+20, 60) {
			break
		}
		maxIter = grown
	}
	s.Converged = lz.Converged
	var lmax float64
	for _, pairs := range [][]Eigenpair{lz.Top, lz.Bottom} {
		for _, pr := range pairs {
			lmax = math.Max(lmax, math.Abs(pr.Value))
		}
	}
	// True residuals: the Lanczos estimate |beta s| is exact only in exact
	// arithmetic, and finite-difference products are not exact (forward
	// ones not even linear). The Rayleigh quotient of the fresh product
	// is the eigenvalue the residual is smallest for.
	one := func(source string, pr Eigenpair) (Eigenvalue, error) {
		hv := make([]float64, p)
		if err := certify.Apply(hv, pr.Vector); err != nil {
			return Eigenvalue{}, fmt.Errorf("survey: residual of %s: %w", source, err)
		}
		theta := dot(pr.Vector, hv)
		r := make([]float64, p)
		for i := range r {
			r[i] = hv[i] - theta*pr.Vector[i]
		}
		ev := Eigenvalue{Value: theta, Residual: norm(r)}
		ev.Converged = ev.Residual <= o.Tol*lmax
		cert := fmt.Sprintf("Lanczos Ritz pair, residual %.2g (%.2g lambda_max)", ev.Residual, ev.Residual/lmax)
		if !ev.Converged {
			cert = "NOT CONVERGED: " + cert
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s did not converge: residual %.2g lambda_max > tolerance %.2g (raise --max-iter)", source, ev.Residual/lmax, o.Tol))
		}
		add(Direction{Source: source, Lambda: theta, Residual: ev.Residual, HNorm: norm(hv), Certificate: cert}, pr.Vector, hv)
		return ev, nil
	}
	for i, pr := range lz.Top {
		ev, err := one(fmt.Sprintf("top-%d", i), pr)
		if err != nil {
			return err
		}
		s.Top = append(s.Top, ev)
	}
	for i, pr := range lz.Bottom {
		ev, err := one(fmt.Sprintf("bottom-%d", i), pr)
		if err != nil {
			return err
		}
		s.Bottom = append(s.Bottom, ev)
	}
	return nil
}

// denseDirs adds the dense path's probed directions: the top eigenvectors,
// the most negative ones, the noisiest axes of the window-flat subspace and
// a few nulls as controls.
func denseDirs(s *Survey, spec *DenseSpectrum, o SurveyOptions, add func(Direction, []float64, []float64)) {
	p := spec.Params
	used := map[int]bool{}
	eigdir := func(source string, i int, cert string) {
		used[i] = true
		v := spec.Eigenvector(i)
		hv := make([]float64, p)
		denseApply(spec, hv, v)
		add(Direction{Source: source, Lambda: spec.Values[i], HNorm: norm(hv), Certificate: cert}, v, hv)
	}
	top, bottom := spec.Top(o.Top), spec.Bottom(o.Bottom)
	if o.TopAbs > 0 {
		top, bottom = spec.LargestAbs(o.TopAbs)
	}
	for k, i := range top {
		s.Top = append(s.Top, Eigenvalue{Value: spec.Values[i], Converged: true})
		eigdir(fmt.Sprintf("top-%d", k), i, "dense eigenvector")
	}
	for k, i := range bottom {
		s.Bottom = append(s.Bottom, Eigenvalue{Value: spec.Values[i], Converged: true})
		eigdir(fmt.Sprintf("bottom-%d", k), i, "dense eigenvector")
	}
	for k, i := range spec.SmallestAbs(o.Smallest) {
		eigdir(fmt.Sprintf("smallest-%d", k), i, fmt.Sprintf("dense eigenvector, %d-th smallest |lambda| (the paper's flat bucket; class %s)", k, spec.Classes[i]))
	}
	flat, _ := spec.FlatDirections(o.Flat, used)
	bound := spec.Window.FlatBound()
	for k, u := range flat {
		hv := make([]float64, p)
		denseApply(spec, hv, u)
		add(Direction{Source: fmt.Sprintf("flat-%d", k), Lambda: dot(u, hv), HNorm: norm(hv),
			Certificate: fmt.Sprintf("noisiest axis %d of the %d-dimensional window-flat subspace (|lambda| < %.3g = %g/(eta T)); ||H u|| from the dense Hessian", k, spec.Counts[ClassWindowFlat], bound, spec.Window.Threshold)}, u, hv)
	}
	if len(flat) < o.Flat {
		s.Warnings = append(s.Warnings, fmt.Sprintf("only %d window-flat, non-null eigenvectors at |lambda| eta T < %g (asked for %d flat directions)", spec.Counts[ClassWindowFlat], spec.Window.Threshold, o.Flat))
	}
	for k, i := range spec.Nulls(o.Nulls, used) {
		eigdir(fmt.Sprintf("null-%d", k), i, "dense eigenvector with c at round-off: an exact symmetry (control)")
	}
}

func denseApply(spec *DenseSpectrum, dst, v []float64) {
	mat.NewVecDense(len(dst), dst).MulVec(spec.H, mat.NewVecDense(len(v), v))
}

// flatDirs adds K certified flat directions from the matrix-free search,
// started from centred minibatch gradients so that it stays out of the
// exact symmetry nulls. The search grows its space on search and
// certifies on certify.
func flatDirs(ctx context.Context, s *Survey, search, certify *CountingOperator, m models.Model, train data.Dataset, w0, grad0 []float64, o SurveyOptions, add func(Direction, []float64, []float64)) error {
	// K starts reach a lower delta at a fixed budget than 2K; centring on
	// the evaluation-set gradient keeps them orthogonal to the nulls
	// without a pass over the whole training set.
	starts, err := CentredGradients(m, train, w0, grad0, o.Flat, o.BatchSize, o.Sampling, o.Seed, FlatStartStream)
	if err != nil {
		return fmt.Errorf("survey: flat search: %w", err)
	}
	target := o.Window.FlatBound()
	fo := FlatOptions{K: o.Flat, HVPs: o.FlatHVPs, Delta: target, Start: starts}
	if search != certify {
		fo.Certify = certify
	}
	res, err := FlatDirections(ctx, search, fo)
	if err != nil {
		return fmt.Errorf("survey: flat search: %w", err)
	}
	s.Flat = &FlatSummary{K: o.Flat, Budget: o.FlatHVPs, HVPs: res.HVPs, Delta: res.Delta, Target: target, Method: res.Method}
	if res.Delta > target {
		s.Warnings = append(s.Warnings, fmt.Sprintf("flat search reached delta %.3g, above the window-flat bound %.3g = %g/(eta T): raise --flat-hvps", res.Delta, target, o.Window.Threshold))
	}
	for k, fd := range res.Directions {
		add(Direction{Source: fmt.Sprintf("flat-%d", k), Lambda: fd.Rayleigh, HNorm: fd.HNorm,
			Certificate: fmt.Sprintf("matrix-free flat search, certified ||H u|| = %.3g by one product (target %.3g)", fd.HNorm, target)}, fd.Vector, nil)
	}
	return nil
}

func norm(v []float64) float64 { return math.Sqrt(dot(v, v)) }

// batchCovariance is factor times the sample covariance (ddof 1) of the
// columns of proj (examples x directions).
func batchCovariance(proj *mat.Dense, factor float64) [][]float64 {
	n, k := proj.Dims()
	centred := mat.DenseCopyOf(proj)
	for j := range k {
		var mean float64
		for r := range n {
			mean += centred.At(r, j)
		}
		mean /= float64(n)
		for r := range n {
			centred.Set(r, j, centred.At(r, j)-mean)
		}
	}
	var cov mat.Dense
	cov.Mul(centred.T(), centred)
	out := make([][]float64, k)
	for i := range k {
		out[i] = make([]float64, k)
		for j := range k {
			out[i][j] = factor * cov.At(i, j) / float64(n-1)
		}
	}
	return out
}
