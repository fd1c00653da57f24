package probe

import (
	"context"
	"fmt"
	"math"
	"time"

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
	MaxIter      int     // Lanczos Krylov dimension cap (0: Lanczos default)

	DensityStarts int // stochastic Lanczos quadrature starts (default 4; -1 skips)
	DensitySteps  int // Lanczos steps per start (default 30)
	TraceSamples  int // Hutchinson samples (default 8; -1 skips)

	NoiseBatches int           // minibatches for c and s2 (default 32)
	BatchSize    int           // the training batch size
	Sampling     data.Sampling // how the noise minibatches are drawn
	NullTol      float64       // c <= NullTol * median(c) flags a symmetry null (default 1e-10)

	FDStep float64     // finite-difference displacement (default DefaultFDStep)
	Seed   uint64      // seeds Lanczos, bulk directions, density, trace and noise batches
	User   [][]float64 `json:"-"` // extra directions given by the user (normalised here)
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
	def(&o.NoiseBatches, 32)
	// Zero means "default"; a negative count asks for none.
	for _, v := range []*int{&o.Top, &o.Bottom, &o.Bulk} {
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
	return o
}

// Direction describes one probed unit direction u.
type Direction struct {
	Index    int     `json:"index"`
	Source   string  `json:"source"` // top-i, bottom-i, bulk-i or user-i
	Lambda   float64 `json:"lambda"` // u^T H u over the evaluation set
	Residual float64 `json:"residual,omitempty"`
	C        float64 `json:"c"` // Var_B(u . g_B)
	CErr     float64 `json:"c_err"`
	S2       float64 `json:"s2"` // Var_B(u^T H_B u)
	S2Err    float64 `json:"s2_err"`
	MeanGrad float64 `json:"mean_grad"` // u . grad L over the evaluation set
	Null     bool    `json:"null"`      // exact symmetry direction: c at round-off level
}

// Survey is everything measured about a reference point.
type Survey struct {
	Params       int             `json:"params"`
	EvalExamples int             `json:"eval_examples"`
	Loss         float64         `json:"loss"`      // mean loss over the evaluation set
	GradNorm     float64         `json:"grad_norm"` // ||grad L|| there
	Top          []Eigenvalue    `json:"top"`
	Bottom       []Eigenvalue    `json:"bottom"`
	Converged    bool            `json:"lanczos_converged"`
	LanczosHVPs  int             `json:"lanczos_hvps"`
	Density      *DensitySummary `json:"density,omitempty"`
	Trace        *TraceEstimate  `json:"trace,omitempty"`
	HVPs         int             `json:"hvps"` // Hessian-vector products on the evaluation set
	// FrozenPattern says the products held the reference point's ReLU and
	// max-pool pattern fixed (see Hessian).
	FrozenPattern bool          `json:"frozen_activation_pattern"`
	Directions    []Direction   `json:"-"`
	Vectors       [][]float64   `json:"-"` // unit directions, in Directions order
	Seconds       float64       `json:"seconds"`
	Settings      SurveyOptions `json:"settings"`
}

// Eigenvalue is a Ritz value with its residual ||H v - lambda v||.
type Eigenvalue struct {
	Value    float64 `json:"value"`
	Residual float64 `json:"residual"`
}

// DensitySummary is the smoothed spectral density on a grid.
type DensitySummary struct {
	Grid   []float64 `json:"grid"`
	Values []float64 `json:"values"`
}

// RunSurvey measures the reference point w0 of model m (use a float64 model):
// the extreme eigenpairs of the mean Hessian over a fixed evaluation set drawn
// from train, its spectral density and trace, and the gradient and curvature
// noise of training-size minibatches along the eigenvectors, random bulk
// directions and any user directions. progress, if not nil, gets a stage
// name and counts as the survey goes. Cancelling ctx stops the survey
// before its next Hessian-vector product with ctx's error.
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
	idx := data.EvenlySpaced(train.Len(), o.EvalExamples)
	n := len(idx)
	var eval data.Batch
	train.Fill(&eval, idx)
	h, err := NewHessian(m, &eval, w0, o.FDStep)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	s := &Survey{Params: p, EvalExamples: n, Loss: h.Loss0, GradNorm: math.Sqrt(dot(h.Grad0, h.Grad0)), FrozenPattern: h.FrozenPattern(), Settings: o}
	counter := &CountingOperator{Op: contextOperator{ctx, h}}
	stage := "lanczos"
	counter.OnApply = func(calls int) { progress(stage, calls, 0) }

	lz, err := Lanczos(counter, LanczosOptions{Top: o.Top, Bottom: o.Bottom, Tol: o.Tol, MaxIter: o.MaxIter, Seed: o.Seed})
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	s.Converged, s.LanczosHVPs = lz.Converged, lz.Applies
	// Report true residuals: the Lanczos estimate |beta s| is exact only in
	// exact arithmetic, and finite-difference products are not exact.
	stage = "residuals"
	for _, pairs := range [][]Eigenpair{lz.Top, lz.Bottom} {
		for i := range pairs {
			if pairs[i].Residual, err = RitzResidual(counter, pairs[i]); err != nil {
				return nil, fmt.Errorf("survey: %w", err)
			}
		}
	}
	add := func(source string, pair Eigenpair) {
		s.Directions = append(s.Directions, Direction{Source: source, Lambda: pair.Value, Residual: pair.Residual})
		s.Vectors = append(s.Vectors, pair.Vector)
	}
	for i, pair := range lz.Top {
		s.Top = append(s.Top, Eigenvalue{pair.Value, pair.Residual})
		add(fmt.Sprintf("top-%d", i), pair)
	}
	for i, pair := range lz.Bottom {
		s.Bottom = append(s.Bottom, Eigenvalue{pair.Value, pair.Residual})
		add(fmt.Sprintf("bottom-%d", i), pair)
	}
	eigen := len(s.Vectors)
	if o.Bulk > 0 {
		bulk, err := BulkDirections(p, o.Bulk, s.Vectors, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("survey: bulk directions: %w", err)
		}
		for i, v := range bulk {
			s.Directions = append(s.Directions, Direction{Source: fmt.Sprintf("bulk-%d", i)})
			s.Vectors = append(s.Vectors, v)
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
		s.Directions = append(s.Directions, Direction{Source: fmt.Sprintf("user-%d", i)})
		s.Vectors = append(s.Vectors, v)
	}
	stage = "curvature"
	lams, err := Curvatures(counter, s.Vectors[eigen:])
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	for i, l := range lams {
		s.Directions[eigen+i].Lambda = l
	}
	if o.DensityStarts > 0 {
		stage = "density"
		d, err := SpectralDensity(counter, DensityOptions{Starts: o.DensityStarts, Steps: o.DensitySteps, Seed: o.Seed})
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		s.Density = &DensitySummary{Grid: d.Grid, Values: d.Values}
	}
	if o.TraceSamples > 0 {
		stage = "trace"
		tr, err := HutchinsonTrace(counter, o.TraceSamples, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		s.Trace = &tr
	}
	s.HVPs = counter.Calls

	noise, err := MinibatchNoise(ctx, m, train, w0, s.Vectors, NoiseOptions{
		Batches: o.NoiseBatches, BatchSize: o.BatchSize, Sampling: o.Sampling,
		Seed: o.Seed, Stream: NoiseStream, Step: o.FDStep,
	}, func(done, total int) { progress("noise", done, total) })
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	cs := make([]float64, len(noise))
	for i, nz := range noise {
		d := &s.Directions[i]
		d.Index = i
		d.C, d.CErr, d.S2, d.S2Err = nz.C, nz.CErr, nz.S2, nz.S2Err
		d.MeanGrad = dot(s.Vectors[i], h.Grad0)
		cs[i] = nz.C
	}
	nulls, _ := FlagNulls(cs, o.NullTol)
	for i, null := range nulls {
		s.Directions[i].Null = null
	}
	m.SetParams(w0)
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}
