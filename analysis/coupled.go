package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// CrossCurvatureNoise returns s2 with s2[k][u] = Var_B(v_k^T H_B v_u) for
// every pair of probed directions, from the projected Hessians A_m =
// V^T H_{B_m} V of M independently drawn noise batches: around the sample
// mean with denominator M - 1 when mean is nil, around a known mean (H_V)
// with denominator M. The diagonal is each direction's s^2 (THEORY.md
// section 3); off the diagonal it is the cross-curvature noise s_uk^2 of
// section 7.
func CrossCurvatureNoise(batches []*mat.SymDense, mean *mat.SymDense) (*mat.SymDense, error) {
	dev, w, err := deviations(batches, mean)
	if err != nil {
		return nil, fmt.Errorf("cross-curvature noise: %w", err)
	}
	k := dev[0].SymmetricDim()
	s2 := mat.NewSymDense(k, nil)
	for _, d := range dev {
		for a := range k {
			for b := a; b < k; b++ {
				x := d.At(a, b)
				s2.SetSym(a, b, s2.At(a, b)+w*x*x)
			}
		}
	}
	return s2, nil
}

// CoupledRate is the variance growth per step of a flat direction u with
// the transfer from the stiff modes (THEORY.md section 7).
type CoupledRate struct {
	// Diagonal is eta^2 c_u, the diagonal theory's growth per step.
	Diagonal float64
	// Transfer is eta^2 sum_k sigma_k^2 s_uk^2: variance moved into u from
	// the stiff modes k through the cross-curvature noise.
	Transfer float64
	// Coupled is Diagonal + Transfer.
	Coupled float64
	// Terms[k] is eta^2 sigma_k^2 s_uk^2 and Sigma2[k] the stiff variance
	// sigma_k^2 it used.
	Terms, Sigma2 []float64
}

// CoupledFlatRate returns the growth per step of the variance along a flat
// direction u (H u = 0) with gradient-noise variance cu, coupled to the
// stiff modes stiff[k] (lambda_k, c_k, s2_k) through the cross-curvature
// noise su2[k] = Var_B(v_k^T H_B u):
//
//	eta^2 [c_u + sum_k sigma_k^2 s_uk^2].
//
// sigma_k^2 is the stiff mode's variance from the diagonal discrete theory
// started at 0: at step t, [DiscreteVariance](eta, stiff[k], 0, t), or its
// saturated value [DiscreteStationary] when t is +Inf (an error for a
// mode that does not saturate). S is taken diagonal in the stiff modes
// (their cross-covariances and the flat block's own multiplicative term
// eta^2 s_u^2 sigma_u^2 are left out); [SubspaceRecursion] keeps them.
func CoupledFlatRate(eta, cu float64, stiff []DirectionParams, su2 []float64, t float64) (CoupledRate, error) {
	if err := checkCoupled(eta, cu, stiff, su2, t); err != nil {
		return CoupledRate{}, err
	}
	r := CoupledRate{Diagonal: FlatSlope(eta, cu), Terms: make([]float64, len(stiff)), Sigma2: make([]float64, len(stiff))}
	for k, p := range stiff {
		var s float64
		if math.IsInf(t, 1) {
			if Regime(eta, p) != Confined {
				return CoupledRate{}, fmt.Errorf("coupled flat rate: stiff mode %d (lambda %g, s2 %g) does not saturate at eta %g: give a finite step", k, p.Lambda, p.S2, eta)
			}
			s = DiscreteStationary(eta, p)
		} else {
			s = DiscreteVariance(eta, p, 0, t)
		}
		r.Sigma2[k] = s
		r.Terms[k] = eta * eta * s * su2[k]
		r.Transfer += r.Terms[k]
	}
	r.Coupled = r.Diagonal + r.Transfer
	return r, nil
}

// CoupledFlatVariance returns the variance at step t of the flat direction
// of [CoupledFlatRate] started at var0, with the stiff variances rising from
// 0 by the diagonal discrete theory:
//
//	var0 + eta^2 c_u t + eta^2 sum_k s_uk^2 sum_{j<t} sigma_k^2(j),
//	sum_{j<t} sigma_k^2(j) = eta^2 c_k (G_t - t) / (a_k - 1),  G_t = (a_k^t - 1)/(a_k - 1),
//
// (for a_k = 1 it is eta^2 c_k t (t - 1) / 2, evaluated by its series near
// a_k = 1). It is the curve whose late
// slope [CoupledFlatRate] gives.
func CoupledFlatVariance(eta, cu float64, stiff []DirectionParams, su2 []float64, var0, t float64) (float64, error) {
	if err := checkCoupled(eta, cu, stiff, su2, t); err != nil {
		return 0, err
	}
	if math.IsInf(t, 0) || t < 0 {
		return 0, fmt.Errorf("coupled flat variance: step %g must be finite and not negative", t)
	}
	v := var0 + FlatSlope(eta, cu)*t
	for k, p := range stiff {
		d := discreteDelta(eta, p)
		var sum float64
		if math.Abs(d)*t < 1e-4 {
			// (G_t - t)/d cancels here; its series
			// C(t,2) + d C(t,3) + d^2 C(t,4) is accurate to O((d t)^3).
			c2 := t * (t - 1) / 2
			c3 := c2 * (t - 2) / 3
			c4 := c3 * (t - 3) / 4
			sum = eta * eta * p.C * (c2 + d*c3 + d*d*c4)
		} else {
			_, g := powerSum(d, t) // G_t
			sum = eta * eta * p.C * (g - t) / d
		}
		v += eta * eta * su2[k] * sum
	}
	return v, nil
}

func checkCoupled(eta, cu float64, stiff []DirectionParams, su2 []float64, t float64) error {
	switch {
	case !(eta > 0) || math.IsInf(eta, 0):
		return fmt.Errorf("coupled flat rate: learning rate %g must be positive and finite", eta)
	case !(cu >= 0) || math.IsInf(cu, 0):
		return fmt.Errorf("coupled flat rate: gradient-noise variance %g must be finite and not negative", cu)
	case len(su2) != len(stiff):
		return fmt.Errorf("coupled flat rate: %d cross-curvature variances for %d stiff modes", len(su2), len(stiff))
	case math.IsNaN(t) || t < 0:
		return fmt.Errorf("coupled flat rate: step %g must not be negative", t)
	}
	for k, s := range su2 {
		if !(s >= 0) || math.IsInf(s, 0) {
			return fmt.Errorf("coupled flat rate: cross-curvature variance %d is %g: must be finite and not negative", k, s)
		}
		p := stiff[k]
		if math.IsNaN(p.Lambda) || math.IsInf(p.Lambda, 0) || !(p.C >= 0) || math.IsInf(p.C, 0) || !(p.S2 >= 0) || math.IsInf(p.S2, 0) {
			return fmt.Errorf("coupled flat rate: stiff mode %d has lambda %g, c %g, s2 %g: need finite values, c and s2 not negative", k, p.Lambda, p.C, p.S2)
		}
	}
	return nil
}
