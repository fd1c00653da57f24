package kern

import "math"

// SoftmaxCrossEntropy computes, for logits (m, k) and labels, the sum over
// rows of -log softmax(row)[label]. It overwrites logits: with grad, by the
// gradient times scale, scale (softmax - onehot). With correct != nil it
// also counts the rows whose argmax is the label.
//
// It shifts every row by its max first and then exponentiates all rows in
// one ExpSum call: rows of a few vectors' length would otherwise spend much
// of their time in the vector kernel's call and scalar tail.
func SoftmaxCrossEntropy[T Float](logits []T, m, k int, labels []int, scale T, grad bool, correct *int) float64 {
	if l, ok := any(logits).([]float32); ok && haveAVX2 && k >= 8 && k <= ceRowsMax {
		// Eight rows at a time, one per lane (ce32.go): the passes below
		// spend most of their time in per-row horizontal reductions and
		// scalar tails.
		return softmaxCE32(l, m, k, labels, float32(scale), grad, correct)
	}
	var loss float64
	shifted := false
	if haveAVX2 {
		// Each row less its max in AVX2; the max's entries are then the
		// zeros, the argmax the first of them.
		switch l := any(logits).(type) {
		case []float32:
			if shifted = k >= 8; shifted {
				rowShiftAVX2(l[:m*k], m, k)
			}
		case []float64:
			if shifted = k >= 4; shifted {
				rowShift64AVX2(l[:m*k], m, k)
			}
		}
	}
	if shifted {
		for i := 0; i < m; i++ {
			row := logits[i*k : (i+1)*k]
			y := labels[i]
			if correct != nil && row[y] == 0 {
				best := 0
				for row[best] != 0 {
					best++
				}
				if best == y {
					*correct++
				}
			}
			loss -= float64(row[y])
		}
	} else {
		for i := 0; i < m; i++ {
			row := logits[i*k : (i+1)*k]
			y := labels[i]
			mx := rowMax(row)
			// The argmax is the label when the label's logit is the max and
			// no earlier logit equals it; a NaN row, with mx NaN, counts as
			// wrong.
			if correct != nil && row[y] == mx {
				best := 0
				for row[best] != mx {
					best++
				}
				if best == y {
					*correct++
				}
			}
			for j := range row {
				row[j] -= mx
			}
			loss -= float64(row[y])
		}
	}
	ExpSum(logits[:m*k], 0) // each row now holds exp(logit - max)
	if shifted {            // AVX2, rows of at least a vector
		return loss + softmaxNormRows(logits, m, k, labels, scale, grad)
	}
	// The rows' sums lie in [1, k]: one log of the product of up to 16 of
	// them (at most k^16, far from float64's range) replaces 16 logs.
	prod := 1.0
	for i := 0; i < m; i++ {
		row := logits[i*k : (i+1)*k]
		s := rowSum(row)
		prod *= float64(s)
		if i%16 == 15 || i == m-1 {
			loss += math.Log(prod)
			prod = 1
		}
		if !grad {
			continue
		}
		f := scale / s
		for j := range row {
			row[j] *= f
		}
		row[labels[i]] -= scale
	}
	return loss
}

// softmaxNormRows is SoftmaxCrossEntropy's last pass in AVX2, for rows of
// at least a vector: softmaxNorm(64)AVX2 sums the rows and scales them to
// the gradient, 64 rows a call with their sums in a buffer on the stack,
// and softmaxNormRows returns the sum of the logs of the sums, as the
// portable loop. Called only for []float32 and []float64 logits.
func softmaxNormRows[T Float](logits []T, m, k int, labels []int, scale T, grad bool) float64 {
	g := 0
	if grad {
		g = 1
	}
	var loss float64
	prod := 1.0
	var sums [64]T
	for i0 := 0; i0 < m; i0 += len(sums) {
		n := min(len(sums), m-i0)
		switch l := any(logits[i0*k : (i0+n)*k]).(type) {
		case []float32:
			softmaxNormAVX2(l, any(sums[:n]).([]float32), n, k, g, float32(scale))
		case []float64:
			softmaxNorm64AVX2(l, any(sums[:n]).([]float64), n, k, g, float64(scale))
		}
		for j, s := range sums[:n] {
			i := i0 + j
			prod *= float64(s)
			if i%16 == 15 || i == m-1 {
				loss += math.Log(prod)
				prod = 1
			}
			if grad {
				logits[i*k+labels[i]] -= scale
			}
		}
	}
	return loss
}

// CausalSoftmax replaces each row i of every (t, t) score matrix in s by
// the softmax of its first i+1 entries and zeroes the rest: position i
// attends only to positions <= i. It first shifts each row by its max and
// sets the masked entries to -inf, so that one ExpSum call over all matrices
// exponentiates and zeroes them: per-row calls would run mostly in the
// scalar tails of the vector kernel, rows being shorter than a few vectors.
func CausalSoftmax[T Float](s []T, t int) {
	ninf := T(math.Inf(-1))
	if s32, ok := any(s).([]float32); ok && haveAVX2 && t%8 == 0 && t > 0 {
		causalShiftAVX2(s32, len(s)/t, t)
		ExpSum(s, 0)
		causalNormAVX2(s32, len(s)/t, t)
		return
	}
	if s64, ok := any(s).([]float64); ok && haveAVX2 && t%4 == 0 && t > 0 {
		causalShift64AVX2(s64, len(s)/t, t)
		ExpSum(s, 0)
		causalNorm64AVX2(s64, len(s)/t, t)
		return
	}
	causalShift(s, t, ninf)
	ExpSum(s, 0)
	for r := 0; r < len(s)/t; r++ {
		live := s[r*t : r*t+r%t+1]
		inv := 1 / rowSum(live)
		for j := range live {
			live[j] *= inv
		}
	}
}

// causalShift is CausalSoftmax's first pass: each row less the max of its
// live entries, and -inf in the masked ones.
func causalShift[T Float](s []T, t int, ninf T) {
	for r := 0; r < len(s)/t; r++ {
		row := s[r*t : (r+1)*t]
		live, masked := row[:r%t+1], row[r%t+1:]
		// A compare rather than the max builtin, whose NaN and signed-zero
		// handling costs instructions; a NaN in the row makes it NaN
		// either way.
		mx := rowMax(live)
		for j := range live {
			live[j] -= mx
		}
		for j := range masked {
			masked[j] = ninf
		}
	}
}

// CausalSoftmaxGrad turns dp, the gradient with respect to the softmax
// output p (t, t), into the gradient with respect to the scores, times
// scale: ds = scale p (dp - sum_j dp_j p_j), row by row.
func CausalSoftmaxGrad[T Float](p, dp []T, t int, scale T) {
	if p32, ok := any(p).([]float32); ok && haveAVX2 && t%8 == 0 && t > 0 {
		// p's masked entries are 0 (CausalSoftmax), as the kernel needs.
		causalGradAVX2(p32[:t*t], any(dp).([]float32)[:t*t], t, float32(scale))
		return
	}
	if p64, ok := any(p).([]float64); ok && haveAVX2 && t%4 == 0 && t > 0 {
		causalGrad64AVX2(p64[:t*t], any(dp).([]float64)[:t*t], t, float64(scale))
		return
	}
	for i := 0; i < t; i++ {
		dr := dp[i*t : (i+1)*t]
		live := dr[:i+1]
		pr := p[i*t : i*t+len(live)]
		var dot T
		for j, v := range live {
			dot += pr[j] * v
		}
		for j, v := range live {
			live[j] = scale * pr[j] * (v - dot)
		}
		clear(dr[i+1:])
	}
}

// rowMax returns the largest entry of the non-empty v, NaN if v[0] is NaN
// and otherwise ignoring NaNs (as a running "if v > mx" would). Four
// running maxima keep the compares off one dependency chain.
func rowMax[T Float](v []T) T {
	m0 := v[0]
	m1, m2, m3 := m0, m0, m0
	n4 := len(v) &^ 3
	for j := 0; j < n4; j += 4 {
		w := v[j : j+4 : j+4]
		if w[0] > m0 {
			m0 = w[0]
		}
		if w[1] > m1 {
			m1 = w[1]
		}
		if w[2] > m2 {
			m2 = w[2]
		}
		if w[3] > m3 {
			m3 = w[3]
		}
	}
	for _, x := range v[n4:] {
		if x > m0 {
			m0 = x
		}
	}
	if m1 > m0 {
		m0 = m1
	}
	if m3 > m2 {
		m2 = m3
	}
	if m2 > m0 {
		m0 = m2
	}
	return m0
}

// rowSum returns the sum of v with four running sums, which shortens the
// dependency chain of short rows' sums fourfold.
func rowSum[T Float](v []T) T {
	var s0, s1, s2, s3 T
	n4 := len(v) &^ 3
	for j := 0; j < n4; j += 4 {
		w := v[j : j+4 : j+4]
		s0 += w[0]
		s1 += w[1]
		s2 += w[2]
		s3 += w[3]
	}
	for _, x := range v[n4:] {
		s0 += x
	}
	return (s0 + s1) + (s2 + s3)
}
