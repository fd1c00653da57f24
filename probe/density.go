package probe

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
)

// DensityOptions configures SpectralDensity.
type DensityOptions struct {
	// Starts is the number of random probe vectors; default 8.
	Starts int
	// Steps is the number of Lanczos steps per start, capped at Dim;
	// default 40.
	Steps int
	// GridPoints is the number of points at which the density is
	// evaluated; default 400.
	GridPoints int
	// Sigma is the width of the Gaussian smoothing each quadrature node
	// gets. The default, used when Sigma is 0, is 1% of the spectral range
	// spanned by the nodes.
	Sigma float64
	// Seed seeds the PCG generator that draws the probe vectors.
	Seed uint64
}

// Density is a smoothed estimate of the spectral density of an operator.
type Density struct {
	// Grid is the set of equispaced evaluation points, ascending.
	Grid []float64
	// Values is the density on Grid. It integrates to 1 over Grid by the
	// trapezoid rule.
	Values []float64
	// Nodes and Weights hold, per start, the Gauss quadrature nodes (Ritz
	// values, ascending) and weights (summing to 1).
	Nodes, Weights [][]float64
	// Applies is the number of Hessian-vector products used.
	Applies int
}

// SpectralDensity estimates the eigenvalue density of op by stochastic
// Lanczos quadrature (Ubaru, Chen and Saad, SIAM J. Matrix Anal. Appl.
// 38(4), 2017). For each of opts.Starts Rademacher start vectors v, scaled
// to unit norm, it runs opts.Steps Lanczos steps with full
// reorthogonalisation; the eigenvalues theta_k of the tridiagonal matrix
// and the squared first components w_k of its eigenvectors are the nodes
// and weights of the Gauss quadrature for the spectral measure of v. The
// density is the average over starts of sum_k w_k N(x; theta_k, sigma^2) on
// a grid spanning [min node - 3 sigma, max node + 3 sigma], normalised so
// that its trapezoid integral is 1 (the Gaussian tails cut off by the grid
// hold at most 0.3% of the mass).
//
// If a start's Krylov space becomes invariant, its quadrature is already
// exact and the start ends early, saving products.
func SpectralDensity(op Operator, opts DensityOptions) (*Density, error) {
	n := op.Dim()
	starts, steps, points := opts.Starts, opts.Steps, opts.GridPoints
	if starts == 0 {
		starts = 8
	}
	if steps == 0 {
		steps = 40
	}
	if points == 0 {
		points = 400
	}
	switch {
	case n < 1:
		return nil, fmt.Errorf("density: operator dimension %d", n)
	case starts < 0 || steps < 0:
		return nil, fmt.Errorf("density: negative Starts %d or Steps %d", opts.Starts, opts.Steps)
	case points < 2:
		return nil, fmt.Errorf("density: GridPoints %d, need at least 2", opts.GridPoints)
	case opts.Sigma < 0 || math.IsNaN(opts.Sigma) || math.IsInf(opts.Sigma, 0):
		return nil, fmt.Errorf("density: invalid Sigma %v", opts.Sigma)
	}
	steps = min(steps, n)

	rng := newRand(opts.Seed)
	d := &Density{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for range starts {
		v := make([]float64, n)
		rademacher(v, rng.Uint64)
		floats.Scale(1/math.Sqrt(float64(n)), v)
		k := newKrylov(op, "density", steps)
		k.applies = d.Applies // number products across starts in errors
		k.q = append(k.q, v)
		for len(k.alpha) < steps {
			broke, err := k.step()
			if err != nil {
				return nil, err
			}
			if broke {
				break
			}
		}
		d.Applies = k.applies
		rs, err := k.ritz()
		if err != nil {
			return nil, err
		}
		w := make([]float64, len(rs.values))
		for i := range w {
			x := rs.vecs.At(0, i)
			w[i] = x * x
		}
		d.Nodes = append(d.Nodes, rs.values)
		d.Weights = append(d.Weights, w)
		lo, hi = min(lo, rs.values[0]), max(hi, rs.values[len(rs.values)-1])
	}

	sigma := opts.Sigma
	if sigma == 0 {
		r := hi - lo
		if r == 0 { // a multiple of the identity: scale by the eigenvalue
			r = max(math.Abs(lo), math.Abs(hi))
		}
		if r == 0 {
			r = 1
		}
		sigma = 0.01 * r
	}
	d.Grid = make([]float64, points)
	floats.Span(d.Grid, lo-3*sigma, hi+3*sigma)
	d.Values = make([]float64, points)
	norm := 1 / (sigma * math.Sqrt(2*math.Pi) * float64(starts))
	for s, nodes := range d.Nodes {
		for k, theta := range nodes {
			c := d.Weights[s][k] * norm
			for i, x := range d.Grid {
				z := (x - theta) / sigma
				d.Values[i] += c * math.Exp(-0.5*z*z)
			}
		}
	}
	floats.Scale(1/trapezoid(d.Grid, d.Values), d.Values)
	return d, nil
}

// TraceEstimate is a Monte Carlo estimate of a trace.
type TraceEstimate struct {
	// Mean is the estimate, StdErr its standard error, and Samples the
	// number of probe vectors used.
	Mean, StdErr float64
	Samples      int
}

// HutchinsonTrace estimates the trace of op as the mean of z·Az over
// samples Rademacher vectors z (entries ±1), with standard error the sample
// standard deviation over sqrt(samples). It needs at least 2 samples.
func HutchinsonTrace(op Operator, samples int, seed uint64) (TraceEstimate, error) {
	n := op.Dim()
	if samples < 2 {
		return TraceEstimate{}, fmt.Errorf("hutchinson: %d samples, need at least 2 for a standard error", samples)
	}
	if n < 1 {
		return TraceEstimate{}, fmt.Errorf("hutchinson: operator dimension %d", n)
	}
	rng := newRand(seed)
	z := make([]float64, n)
	az := make([]float64, n)
	// Welford's update avoids cancellation when the trace is large
	// compared with its spread.
	var mean, m2 float64
	for i := range samples {
		rademacher(z, rng.Uint64)
		if err := apply(op, az, z, "hutchinson", i+1); err != nil {
			return TraceEstimate{}, err
		}
		x := floats.Dot(z, az)
		delta := x - mean
		mean += delta / float64(i+1)
		m2 += delta * (x - mean)
	}
	sd := math.Sqrt(m2 / float64(samples-1))
	return TraceEstimate{Mean: mean, StdErr: sd / math.Sqrt(float64(samples)), Samples: samples}, nil
}

// rademacher fills v with independent ±1 entries, using one random bit
// per entry.
func rademacher(v []float64, next func() uint64) {
	var bits uint64
	for i := range v {
		if i%64 == 0 {
			bits = next()
		}
		v[i] = float64(int(bits&1)*2 - 1)
		bits >>= 1
	}
}

// trapezoid integrates y(x) by the trapezoid rule.
func trapezoid(x, y []float64) float64 {
	var s float64
	for i := 1; i < len(x); i++ {
		s += 0.5 * (x[i] - x[i-1]) * (y[i] + y[i-1])
	}
	return s
}
