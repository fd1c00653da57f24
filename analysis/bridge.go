package analysis

import (
	"fmt"
	"math"
)

// Theory per sampling scheme (THEORY.md sections 2, 3 and 9).
//
// With replacement the batches of successive steps are independent and the
// recursions of sections 2-3 hold. With epoch reshuffling the batches of one
// epoch are disjoint slices of one permutation: the one-step covariance is
// C_1 (N-b)/(b(N-1)), but the batch-mean deviations of one epoch are
// negatively correlated (-sigma^2/(N-1) between any two of them) and sum to
// (nearly) zero, so along a flat direction the first-order displacement is a
// bridge that returns at every epoch end. The functions below are that
// first-order theory: per-example gradients held at their reference values
// and a deterministic curvature lambda. The long-time growth under
// reshuffling comes from second order and is measured, not predicted.

// StepsPerEpoch returns floor(n/b), the steps of one epoch when the last
// partial batch is dropped (as data.Sampler does), or 0 for bad input.
func StepsPerEpoch(n, b int) int64 {
	if n < 1 || b < 1 || b > n {
		return 0
	}
	return int64(n / b)
}

// EpochsSpanned returns steps / StepsPerEpoch(n, b): how many epochs a window
// of that many steps spans (NaN for bad input).
func EpochsSpanned(n, b int, steps int64) float64 {
	spe := StepsPerEpoch(n, b)
	if spe == 0 {
		return math.NaN()
	}
	return float64(steps) / float64(spe)
}

// NoiseFactor returns f with Var(one batch mean) = f sigma^2 for a
// population of n values with variance sigma^2 (denominator n): 1/b with
// replacement, (n-b)/(b(n-1)) without (the finite-population correction,
// the same for one fresh subset and for one slice of an epoch permutation).
func NoiseFactor(n, b int, s Sampling) (float64, error) {
	if n < 1 || b < 1 {
		return 0, fmt.Errorf("noise factor: %d examples, batch %d: both must be positive", n, b)
	}
	switch s {
	case WithReplacement:
		return 1 / float64(b), nil
	case WithoutReplacement:
		if b > n {
			return 0, fmt.Errorf("noise factor: batch %d without replacement from %d examples", b, n)
		}
		if n == 1 {
			return 0, nil
		}
		return float64(n-b) / (float64(b) * float64(n-1)), nil
	}
	return 0, fmt.Errorf("noise factor: unknown sampling %q (want %q or %q)", s, WithReplacement, WithoutReplacement)
}

// PerExampleVariance converts c, the one-step gradient-noise variance along
// a direction measured at batch b under scheme s, to sigma_u^2, the
// per-example variance along it: c / NoiseFactor.
func PerExampleVariance(c float64, n, b int, s Sampling) (float64, error) {
	f, err := NoiseFactor(n, b, s)
	if err != nil {
		return 0, err
	}
	if f == 0 {
		return 0, fmt.Errorf("per-example variance: batch %d is the whole data set (%d): the batch gradient has no noise to invert", b, n)
	}
	return c / f, nil
}

// BridgeVariance is the first-order variance at step t of the projection on
// a flat direction (lambda = s2 = 0) under epoch reshuffling, started at 0,
// for per-example variance sigma2 along the direction (THEORY.md section 9).
// With k = t mod S steps into the current epoch (S = floor(n/b)), E = t div
// S completed epochs and r = n - S b examples left out of every epoch:
//
//	v(t) = eta^2 sigma2 / (b (n-1)) [ E S r + k (n - k b) ]
//
// The k term is the bridge, largest mid-epoch and 0 at every epoch end; the
// E term, a random walk of the r left-out examples, is the only first-order
// growth across epochs and vanishes when b divides n. Non-integer t is
// rounded down.
func BridgeVariance(eta, sigma2 float64, n, b int, t float64) float64 {
	spe := StepsPerEpoch(n, b)
	if spe == 0 || t < 0 || math.IsNaN(t) {
		return math.NaN()
	}
	if n == 1 {
		return 0
	}
	step := int64(t)
	e, k := step/spe, step%spe
	r := int64(n) - spe*int64(b)
	return eta * eta * sigma2 / (float64(b) * float64(n-1)) * (float64(e*spe*r) + float64(k)*float64(int64(n)-k*int64(b)))
}

// BridgeSlope is the long-time growth per step of [BridgeVariance] at epoch
// ends, eta^2 sigma2 r / (b (n-1)) with r = n mod b: the first-order
// reshuffling counterpart of the flat with-replacement slope eta^2 sigma2 / b.
// Their ratio, r/(n-1), is 0 when b divides n. Measured reshuffled slopes
// are second-order effects far above it (THEORY.md section 9).
func BridgeSlope(eta, sigma2 float64, n, b int) float64 {
	spe := StepsPerEpoch(n, b)
	if spe == 0 {
		return math.NaN()
	}
	if n == 1 {
		return 0
	}
	r := n - int(spe)*b
	return eta * eta * sigma2 * float64(r) / (float64(b) * float64(n-1))
}

// ReshuffledVariance returns, at each step of steps (ascending, >= 0), the
// first-order variance of x along a direction of curvature lambda under
// epoch reshuffling, started at 0: x_{t+1} = (1 - eta lambda) x_t - eta xi_t,
// xi_t the deviation of batch t's mean from the population mean of n fixed
// per-example values of variance sigma2. It is exact for that model: a
// quadratic loss whose examples share one Hessian, so curvature noise and
// the second-order drift of the per-example gradients are left out. Within
// an epoch Var(xi) = sigma2 (n-b)/(b(n-1)) and Cov(xi_j, xi_k) =
// -sigma2/(n-1); across epochs they are independent. It iterates
//
//	V' = rho^2 V + 2 rho eta sigma2 A / (n-1) + eta^2 sigma2 (n-b)/(b(n-1))
//	A' = rho A - eta  (A = 0 at each epoch start)
//
// where rho = 1 - eta lambda and A is the sum of the coefficients of this
// epoch's xi in x. At lambda = 0 it equals [BridgeVariance].
func ReshuffledVariance(eta, lambda, sigma2 float64, n, b int, steps []int64) ([]float64, error) {
	spe := StepsPerEpoch(n, b)
	if spe == 0 {
		return nil, fmt.Errorf("reshuffled variance: batch %d of %d examples", b, n)
	}
	for i, s := range steps {
		if s < 0 || (i > 0 && s < steps[i-1]) {
			return nil, fmt.Errorf("reshuffled variance: steps must be ascending and non-negative (index %d is %d)", i, s)
		}
	}
	out := make([]float64, len(steps))
	if n == 1 {
		return out, nil
	}
	rho := 1 - eta*lambda
	cross := sigma2 / float64(n-1)
	one := sigma2 * float64(n-b) / (float64(b) * float64(n-1))
	var v, a float64
	var t int64
	for i, s := range steps {
		for ; t < s; t++ {
			if t%spe == 0 {
				a = 0
			}
			v = rho*rho*v + 2*rho*eta*cross*a + eta*eta*one
			a = rho*a - eta
		}
		out[i] = v
	}
	return out, nil
}

// SchemeTheory says which theory applies to an ensemble of steps steps at
// batch b on n examples under sampling s.
type SchemeTheory struct {
	Sampling Sampling
	// StepsPerEpoch is floor(n/b) and Epochs the window in epochs.
	StepsPerEpoch int64
	Epochs        float64
	// Recursion reports that the recursions of THEORY.md sections 2, 3 and
	// 7 (discrete, Langevin, coupled, subspace) describe the ensemble: with
	// replacement, or a reshuffled window within one epoch. Even then a
	// reshuffled window deviates from them beyond a small fraction of an
	// epoch; Text says so.
	Recursion bool
	// Text states it in a sentence for reports.
	Text string
}

// TheoryFor returns the [SchemeTheory] of an ensemble.
func TheoryFor(s Sampling, n, b int, steps int64) (SchemeTheory, error) {
	spe := StepsPerEpoch(n, b)
	if spe == 0 {
		return SchemeTheory{}, fmt.Errorf("scheme theory: batch %d of %d examples", b, n)
	}
	th := SchemeTheory{Sampling: s, StepsPerEpoch: spe, Epochs: float64(steps) / float64(spe)}
	switch s {
	case WithReplacement:
		th.Recursion = true
		th.Text = fmt.Sprintf("with replacement: batches independent across steps, so THEORY.md sections 2-3 (discrete, Langevin) apply; flat directions grow as eta^2 c t. The window spans %.3g epochs of %d steps.", th.Epochs, spe)
	case WithoutReplacement:
		if th.Epochs <= 1 {
			th.Recursion = true
			th.Text = fmt.Sprintf("epoch reshuffling within one epoch (%.3g of an epoch of %d steps): the one-step noise is C_1 (N-b)/(b(N-1)), but its steps are anti-correlated, so sections 2-3 hold only for a small fraction of the epoch; along flat directions the first-order prediction is the bridge of section 9, which returns to 0 at the epoch end.", th.Epochs, spe)
		} else {
			th.Text = fmt.Sprintf("epoch reshuffling over %.3g epochs of %d steps: sections 2-3 do NOT apply (the flat-direction prediction eta^2 c t is shown for comparison only); the first-order prediction is the epoch-periodic bridge of section 9, and the long-time growth is second order, so its slope is measured, not predicted. Slopes are fitted on epoch-boundary samples or one-epoch averages (see the rule).", th.Epochs, spe)
		}
	default:
		return SchemeTheory{}, fmt.Errorf("scheme theory: unknown sampling %q", s)
	}
	return th, nil
}
