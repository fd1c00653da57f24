package probe

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
)

// dependentTol is the relative norm left after projecting out the previous
// vectors below which a vector counts as linearly dependent on them.
const dependentTol = 1e-10

// BulkDirections returns k random unit vectors in R^dim, orthonormal among
// themselves and orthogonal to the span of against (e.g. the top
// eigenvectors, so the directions probe the bulk of the spectrum). The
// vectors are Gaussian draws from PCG(seed) orthogonalised by Gram-Schmidt
// applied twice; against need not be orthonormal and is not modified.
func BulkDirections(dim, k int, against [][]float64, seed uint64) ([][]float64, error) {
	if dim < 1 || k < 0 {
		return nil, fmt.Errorf("bulk directions: invalid dim %d or k %d", dim, k)
	}
	// An orthonormal basis for span(against), dropping dependent vectors,
	// since only the span matters.
	var basis [][]float64
	for i, a := range against {
		if len(a) != dim {
			return nil, fmt.Errorf("bulk directions: against[%d] has length %d, want %d", i, len(a), dim)
		}
		v := slices.Clone(a)
		if normalizeAgainst(v, basis) {
			basis = append(basis, v)
		}
	}
	if len(basis)+k > dim {
		return nil, fmt.Errorf("bulk directions: %d directions orthogonal to a %d-dimensional span do not fit in dimension %d", k, len(basis), dim)
	}
	rng := newRand(seed)
	out := make([][]float64, 0, k)
	for len(out) < k {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		// A Gaussian draw is dependent only with probability 0; the
		// check guards against the rounding-level case by redrawing.
		if normalizeAgainst(v, basis) {
			basis = append(basis, v)
			out = append(out, v)
		}
	}
	return out, nil
}

// Orthonormalize orthonormalises vs in place by Gram-Schmidt applied twice,
// preserving the span of each prefix vs[:i]. It returns an error naming the
// first vector that is (numerically) linearly dependent on the ones before
// it; vs is then partially modified.
func Orthonormalize(vs [][]float64) error {
	for i, v := range vs {
		if len(v) != len(vs[0]) {
			return fmt.Errorf("orthonormalize: vector %d has length %d, vector 0 has %d", i, len(v), len(vs[0]))
		}
	}
	for i, v := range vs {
		if !normalizeAgainst(v, vs[:i]) {
			if i == 0 {
				return fmt.Errorf("orthonormalize: vector 0 is zero or not finite (rank deficient)")
			}
			return fmt.Errorf("orthonormalize: vector %d is linearly dependent on vectors 0..%d (rank deficient)", i, i-1)
		}
	}
	return nil
}

// normalizeAgainst projects out of v its components along the orthonormal
// basis, twice, and scales it to unit norm. It reports false, leaving v
// unnormalised, if v is zero or dependent on basis.
func normalizeAgainst(v []float64, basis [][]float64) bool {
	before := floats.Norm(v, 2)
	if before == 0 || math.IsNaN(before) || math.IsInf(before, 0) {
		return false
	}
	orthogonalize(v, basis, -1)
	orthogonalize(v, basis, -1)
	after := floats.Norm(v, 2)
	if after <= dependentTol*before {
		return false
	}
	floats.Scale(1/after, v)
	return true
}

// FlagNulls flags null directions from per-direction gradient-noise
// variances c: null[i] is true when c[i] <= relTol*median(c). Along an exact
// symmetry direction of the loss c is pure rounding, many orders of
// magnitude below the rest. relTol defaults to 1e-10 when it is <= 0. The
// median used is also returned; it assumes null directions are a
// minority. An empty c gives nil and NaN.
func FlagNulls(c []float64, relTol float64) (null []bool, median float64) {
	if len(c) == 0 {
		return nil, math.NaN()
	}
	if relTol <= 0 {
		relTol = 1e-10
	}
	s := slices.Clone(c)
	slices.Sort(s)
	if h := len(s) / 2; len(s)%2 == 1 {
		median = s[h]
	} else {
		median = 0.5 * (s[h-1] + s[h])
	}
	null = make([]bool, len(c))
	for i, x := range c {
		null[i] = x <= relTol*median
	}
	return null, median
}
