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
// the curvatures we resolve, and the step is small enough that few ReLU
// units change sign across it.
const DefaultFDStep = 1e-4

// Hessian is the Hessian of a model's mean loss over a fixed batch at a
// fixed point w0, applied by central differences of gradients:
//
//	H v ~ (g(w0 + e v) - g(w0 - e v)) / (2 e),  e = Step / ||v||.
//
// Gorgonia's double backprop returns wrong Hessian-vector products, so it is
// not used. Give it a float64 model: float32 gradients differ by round-off
// of order 1e-7 |g|, which the difference divides by e.
type Hessian struct {
	model models.Model
	batch *data.Batch
	w0    []float64
	step  float64

	// Grad0 and Loss0 are the gradient and loss at w0 over the batch: the
	// residual mean gradient of a reference point that is not exactly
	// critical.
	Grad0 []float64
	Loss0 float64

	w, gp, gm []float64
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
	m.SetParams(w0)
	loss, err := m.Grad(b, h.Grad0)
	if err != nil {
		return nil, fmt.Errorf("hessian: gradient at the reference point: %w", err)
	}
	h.Loss0 = loss
	return h, nil
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
		if _, err := h.model.Grad(h.batch, pm.g); err != nil {
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
