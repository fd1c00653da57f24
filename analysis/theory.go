package analysis

import "math"

// DirectionParams are the statistics of one unit direction u at the
// reference point (THEORY.md section 3).
type DirectionParams struct {
	// Lambda is the curvature u^T H u.
	Lambda float64
	// C is the gradient-noise variance Var_B(u . g_B) at the training batch
	// size.
	C float64
	// S2 is the curvature-noise variance Var_B(u^T H_B u) at the training
	// batch size.
	S2 float64
}

// discreteDelta returns a - 1 for a = (1 - eta lambda)^2 + eta^2 s2,
// computed as eta (eta lambda^2 + eta s2 - 2 lambda) so that it keeps full
// relative precision when eta lambda is tiny (a - 1 formed from a would
// cancel).
func discreteDelta(eta float64, p DirectionParams) float64 {
	return eta * (eta*p.Lambda*p.Lambda + eta*p.S2 - 2*p.Lambda)
}

// DiscreteFactor returns a = (1 - eta lambda)^2 + eta^2 s2, the factor by
// which the per-direction variance recursion multiplies sigma^2 each step:
// a < 1 confined, a == 1 diffusive, a > 1 unstable.
func DiscreteFactor(eta float64, p DirectionParams) float64 {
	return 1 + discreteDelta(eta, p)
}

// DiscreteRate returns ln a, the per-step growth (a > 1) or relaxation
// (a < 1) rate of the variance, accurate for a close to 1.
func DiscreteRate(eta float64, p DirectionParams) float64 {
	return math.Log1p(discreteDelta(eta, p))
}

// DiscreteStationary returns sigma_inf^2 = eta^2 c / (1 - a)
// = eta c / (2 lambda - eta lambda^2 - eta s2), the stationary variance of
// the discrete recursion. There is no stationary state when a >= 1: the
// result is then +Inf (also for c == 0, where the variance simply stays put).
func DiscreteStationary(eta float64, p DirectionParams) float64 {
	d := discreteDelta(eta, p)
	if d >= 0 {
		return math.Inf(1)
	}
	return eta * eta * p.C / -d
}

// DiscreteVariance returns the variance after t steps of the per-direction
// recursion sigma^2(t+1) = a sigma^2(t) + eta^2 c started at var0:
//
//	sigma^2(t) = var0 a^t + eta^2 c (a^t - 1)/(a - 1)
//
// which is sigma_inf^2 + (var0 - sigma_inf^2) a^t for a < 1, var0 + eta^2 c t
// for a == 1, and geometric growth for a > 1. It is evaluated as
// a^t = exp(t log1p(a-1)) and (a^t - 1)/(a - 1) = expm1(t log1p(a-1))/(a-1)
// so that it is accurate and continuous through a == 1. Non-integer t
// interpolates smoothly.
func DiscreteVariance(eta float64, p DirectionParams, var0, t float64) float64 {
	if t == 0 {
		return var0
	}
	d := discreteDelta(eta, p)
	if d == 0 {
		return var0 + eta*eta*p.C*t
	}
	l := math.Log1p(d) // -Inf when a == 0: then a^t = 0 for t > 0
	return var0*math.Exp(t*l) + eta*eta*p.C*math.Expm1(t*l)/d
}

// LangevinVariance returns the variance at step t (tau = eta t) of the
// standard Fokker-Planck (Langevin) model d sigma^2/d tau = -2 lambda sigma^2
// + eta c, solved exactly:
//
//	sigma^2 = eta c (1 - exp(-2 lambda tau)) / (2 lambda) + var0 exp(-2 lambda tau)
//
// with the lambda -> 0 limit eta c tau = eta^2 c t and growth for lambda < 0.
// It ignores s2 and every step-size effect (it is not the Euler
// recursion, which is neither the SDE nor SGD).
func LangevinVariance(eta float64, p DirectionParams, var0, t float64) float64 {
	tau := eta * t
	x := 2 * p.Lambda * tau
	f := tau // (1 - exp(-x)) / (2 lambda), its x -> 0 limit
	if x != 0 {
		f = -math.Expm1(-x) / (2 * p.Lambda)
	}
	return eta*p.C*f + var0*math.Exp(-x)
}

// LangevinStationary returns eta c / (2 lambda), the Langevin stationary
// variance, or +Inf when lambda <= 0.
func LangevinStationary(eta float64, p DirectionParams) float64 {
	if p.Lambda <= 0 {
		return math.Inf(1)
	}
	return eta * p.C / (2 * p.Lambda)
}

// FlatSlope returns eta^2 c, the variance growth per step of a flat
// direction (lambda = s2 = 0); per unit time tau = eta t it is eta c = 2 D.
func FlatSlope(eta, c float64) float64 { return eta * eta * c }

// DriftSpreading returns eta^4 s2 g^2 t^3 / 3, the extra variance a flat
// direction with mean gradient g and curvature noise s2 gains by step t
// (THEORY.md section 4): the drift m_t = -eta g t is multiplied by the
// random curvature each step.
func DriftSpreading(eta, s2, g, t float64) float64 {
	e2 := eta * eta
	return e2 * e2 * s2 * g * g * t * t * t / 3
}

// DriftSpreadingOnset returns the step t at which the drift-spreading term
// reaches frac times the linear diffusive term eta^2 c t:
// t = sqrt(3 frac c / (eta^2 s2 g^2)). It is +Inf when s2 or g is zero (the
// term never appears) and 0 when c is zero (it dominates at once).
func DriftSpreadingOnset(eta, c, s2, g, frac float64) float64 {
	den := eta * eta * s2 * g * g
	if den == 0 {
		return math.Inf(1)
	}
	return math.Sqrt(3 * frac * c / den)
}

// Regime returns the class the discrete theory predicts for a direction:
// Confined when a < 1, Diffusive when a == 1 exactly, Unstable when a > 1.
// Over a window of T steps a direction with |ln a| T << 1 is
// indistinguishable from diffusive; see [Classify] for measured curves.
func Regime(eta float64, p DirectionParams) Class {
	switch d := discreteDelta(eta, p); {
	case d < 0:
		return Confined
	case d == 0:
		return Diffusive
	default:
		return Unstable
	}
}
