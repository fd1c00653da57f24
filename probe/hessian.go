package probe

import (
	"fmt"
	"math"

	"github.com/sgdyn/sgdyn/data"
	"github.com/sgdyn/sgdyn/models"
)

// DefaultFDStep is the default length of the finite-difference displacement
// e*||v|| in parameter space. In float64 the truncation error (~step^2) and
// the round-off (~1e-16/step) of a central difference are both far below
// the curvatures we resolve.
const DefaultFDStep = 1e-4

// Hessian is the Hessian of a model's mean loss over a fixed batch at a
// fixed point w0, applied by central differences of gradients:
//
//	H v ~ (g(w0 + e v) - g(w0 - e v)) / (2 e),  e = Step / ||v||.
//
// Gorgonia's double backprop returns wrong Hessian-vector products, so it is
// not used. Give it a float64 model: float32 gradients differ by round-off
// of order 1e-7 |g|, which the difference divides by e.
//
// For a model with ReLU or max-pool kinks (models.Piecewise) both gradients
// are taken with the activation pattern of w0 held fixed: otherwise the
// units that switch between w0 - e v and w0 + e v add their gradient jump
// divided by 2e, which makes the product neither linear in v nor symmetric.
type Hessian struct {
	model   models.Model
	batch   *data.Batch
	w0      []float64
	step    float64
	kinked  models.Piecewise
	pattern *models.Pattern

	// Grad0 and Loss0 are the gradient and loss at w0 over the batch: the
	// residual mean gradient of a reference point that is not exactly
	// critical.
	Grad0 []float64
	Loss0 float64

	w, gp, gm []float64
}

// ForwardHessian is a Hessian applied by forward differences from the
// gradient at w0, which NewHessian has already computed:
//
//	H v ~ (g(w0 + e v) - g(w0)) / e,  e = Step / ||v||.
//
// A product costs one gradient where the central difference costs two,
// at a truncation error of (e/2) D^3L[v, v] instead of O(e^2): with a
// much smaller step (DefaultForwardStep) that error and the round-off
// (~1e-16 |g| / e) are both far below what a Krylov search resolves. But
// the product is not exactly linear in v, so what the survey reports
// (Ritz residuals and eigenvalues, flat certificates, the dense Hessian)
// is measured by central differences (SurveyOptions.Products).
type ForwardHessian struct {
	h    *Hessian
	step float64
}

// DefaultForwardStep is the default forward-difference displacement, the
// balance of truncation, (e/2) D^3L[v, v], which is largest along the
// sharpest directions, and round-off, ~1e-16 |g| / e. On the CIFAR-10 CNN
// (scripts/hvp32 -forward) a forward product is 1.7e-7 (relative) off
// along the top eigenvectors at this step and 1.6e-6 at 1e-6, and 2e-8
// (absolute) off along the certified flat directions and random ones,
// where float32 central differences are 2e-5 off.
const DefaultForwardStep = 1e-7

// Forward returns h applied by forward differences of step (<= 0:
// DefaultForwardStep). It shares h's model, batch, pattern and buffers,
// so it must not be used concurrently with h.
func (h *Hessian) Forward(step float64) *ForwardHessian {
	if step <= 0 {
		step = DefaultForwardStep
	}
	return &ForwardHessian{h: h, step: step}
}

// Dim is the number of parameters.
func (f *ForwardHessian) Dim() int { return len(f.h.w0) }

// Apply sets dst = H v (one gradient evaluation).
func (f *ForwardHessian) Apply(dst, v []float64) error {
	h := f.h
	nv := norm(v)
	if nv == 0 {
		clear(dst)
		return nil
	}
	e := f.step / nv
	for i := range h.w {
		h.w[i] = h.w0[i] + e*v[i]
	}
	h.model.SetParams(h.w)
	_, err := h.grad(h.gp)
	h.model.SetParams(h.w0)
	if err != nil {
		return fmt.Errorf("gradient at w0 %+g v: %w", e, err)
	}
	for i := range dst {
		dst[i] = (h.gp[i] - h.Grad0[i]) / e
	}
	return nil
}

// NewHessian returns the Hessian of m's mean loss over b at w0. It leaves
// m's parameters at w0. step <= 0 means DefaultFDStep.
func NewHessian(m models.Model, b *data.Batch, w0 []float64, step float64) (*Hessian, error) {
	if len(w0) != m.NumParams() {
		return nil, fmt.Errorf("hessian: point has %d parameters, model has %d", len(w0), m.NumParams())
	}
	if step <= 0 {
		step = DefaultFDStep
	}
	p := len(w0)
	h := &Hessian{model: m, batch: b, w0: w0, step: step,
		Grad0: make([]float64, p), w: make([]float64, p), gp: make([]float64, p), gm: make([]float64, p)}
	if k, ok := m.(models.Kinked); ok && k.HasKinks() {
		if _, ok := m.(models.Piecewise); !ok {
			return nil, fmt.Errorf("hessian: the model has ReLU or max-pool kinks but cannot hold its activation pattern fixed, so central differences would cross kinks; use the fused implementation (impl fused) or a models.FromGraph model")
		}
	}
	m.SetParams(w0)
	if pw, ok := m.(models.Piecewise); ok {
		pat, err := pw.RecordPattern(b)
		if err != nil {
			return nil, fmt.Errorf("hessian: activation pattern at the reference point: %w", err)
		}
		if pat.Units() > 0 {
			h.kinked, h.pattern = pw, pat
		}
	}
	loss, err := h.grad(h.Grad0)
	if err != nil {
		return nil, fmt.Errorf("hessian: gradient at the reference point: %w", err)
	}
	h.Loss0 = loss
	return h, nil
}

// FrozenPattern reports whether the products hold the activation pattern
// of w0 fixed (the model has kinks and can hold them).
func (h *Hessian) FrozenPattern() bool { return h.pattern != nil }

// grad is the gradient at the model's current parameters, on w0's smooth
// piece for a model with kinks.
func (h *Hessian) grad(dst []float64) (float64, error) {
	if h.pattern != nil {
		return h.kinked.GradFrozen(h.batch, h.pattern, dst)
	}
	return h.model.Grad(h.batch, dst)
}

// Dim is the number of parameters.
func (h *Hessian) Dim() int { return len(h.w0) }

// Apply sets dst = H v (two gradient evaluations).
func (h *Hessian) Apply(dst, v []float64) error {
	var nv float64
	for _, x := range v {
		nv += x * x
	}
	nv = math.Sqrt(nv)
	if nv == 0 {
		clear(dst)
		return nil
	}
	e := h.step / nv
	for _, pm := range []struct {
		sign float64
		g    []float64
	}{{1, h.gp}, {-1, h.gm}} {
		for i := range h.w {
			h.w[i] = h.w0[i] + pm.sign*e*v[i]
		}
		h.model.SetParams(h.w)
		if _, err := h.grad(pm.g); err != nil {
			h.model.SetParams(h.w0)
			return fmt.Errorf("gradient at w0 %+g v: %w", pm.sign*e, err)
		}
	}
	h.model.SetParams(h.w0)
	for i := range dst {
		dst[i] = (h.gp[i] - h.gm[i]) / (2 * e)
	}
	return nil
}
