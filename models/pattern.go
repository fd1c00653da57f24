package models

import (
	"fmt"

	"github.com/sgdyn/sgdyn/data"
)

// Piecewise is implemented by models whose loss is smooth in the parameters
// only piecewise: each ReLU unit and each max-pool window switches the
// network between smooth pieces as the parameters move. A finite difference
// of gradients that straddles a switch measures the jump of the gradient,
// not the curvature, and with thousands of examples and units some switch
// for any displacement. Holding the activation pattern of the centre point
// fixed keeps both sides of the difference on the centre's piece, whose
// Hessian there is the Hessian that exact second-order differentiation
// (e.g. PyTorch's double backprop) returns.
type Piecewise interface {
	Model
	// RecordPattern returns, at the current parameters, which ReLU units
	// are active and which input wins each max-pool window, for every
	// example of b.
	RecordPattern(b *data.Batch) (*Pattern, error)
	// GradFrozen is Grad with the activation pattern held at pat, which
	// must have been recorded on the same batch: the loss and gradient of
	// the smooth piece pat selects. At the point where pat was recorded it
	// equals Grad.
	GradFrozen(b *data.Batch, pat *Pattern, grad []float64) (float64, error)
}

// Kinked is implemented by models that say whether their loss has ReLU or
// max-pool kinks. One with kinks that is not Piecewise (the plain and ops
// Gorgonia graphs of the CNN or of a ReLU MLP) cannot hold its activation
// pattern fixed, so central differences of its gradients straddle kinks;
// probe.NewHessian refuses it rather than return products that are wrong
// by large factors.
type Kinked interface {
	HasKinks() bool
}

// Pattern is the activation pattern of a batch: a fixed number of bytes per
// example, whose meaning only the model that recorded it knows. A model
// without kinks records an empty pattern.
type Pattern struct {
	n, per int
	bytes  []uint8
}

// Examples is the number of examples the pattern was recorded on.
func (p *Pattern) Examples() int { return p.n }

// Units is the number of switching units (ReLUs and pools) per example.
func (p *Pattern) Units() int { return p.per }

// patternUse tells a worker what to do with the pattern bytes of its
// examples: nil bytes computes the pattern as usual and keeps none of it;
// otherwise the worker records into them or, frozen, holds them.
type patternUse struct {
	bytes  []uint8
	frozen bool
}

func (m *fusedModel[T]) RecordPattern(b *data.Batch) (*Pattern, error) {
	per := m.net.patternSize()
	pat := &Pattern{n: b.N, per: per, bytes: make([]uint8, b.N*per)}
	if per == 0 {
		// A smooth network has nothing to record: skip the forward pass
		// (a full pass over the probe's evaluation set), but still refuse
		// a batch the network cannot take.
		if b.N < 1 {
			return nil, fmt.Errorf("empty batch")
		}
		if err := m.net.check(b); err != nil {
			return nil, err
		}
		return pat, nil
	}
	if _, _, _, err := m.pass(b, false, pat, false); err != nil {
		return nil, err
	}
	return pat, nil
}

func (m *fusedModel[T]) GradFrozen(b *data.Batch, pat *Pattern, grad []float64) (float64, error) {
	if pat.n != b.N || pat.per != m.net.patternSize() {
		return 0, fmt.Errorf("activation pattern of %d examples x %d units does not fit a batch of %d examples x %d units",
			pat.n, pat.per, b.N, m.net.patternSize())
	}
	return m.grad(b, grad, pat)
}
