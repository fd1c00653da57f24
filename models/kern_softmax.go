package models

import "math"

// softmaxCrossEntropy computes, for logits (m, k) and labels, the sum over
// rows of -log softmax(row)[label]. It overwrites logits: with grad, by the
// gradient times scale, scale (softmax - onehot). With correct != nil it
// also counts the rows whose argmax is the label.
//
// It shifts every row by its max first and then exponentiates all rows in
// one exps call: rows of a few vectors' length would otherwise spend much
// of their time in the vector kernel's call and scalar tail.
func softmaxCrossEntropy[T float](logits []T, m, k int, labels []int, scale T, grad bool, correct *int) float64 {
	var loss float64
	for i := 0; i < m; i++ {
		row := logits[i*k : (i+1)*k]
		y := labels[i]
		best, mx := 0, row[0]
		for j, v := range row {
			if v > mx {
				best, mx = j, v
			}
		}
		if correct != nil && best == y {
			*correct++
		}
		for j := range row {
			row[j] -= mx
		}
		loss -= float64(row[y])
	}
	exps(logits[:m*k], 0) // each row now holds exp(logit - max)
	// The rows' sums lie in [1, k]: one log of the product of up to 16 of
	// them (at most k^16, far from float64's range) replaces 16 logs.
	prod := 1.0
	for i := 0; i < m; i++ {
		row := logits[i*k : (i+1)*k]
		var s T
		for _, v := range row {
			s += v
		}
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

// causalSoftmax replaces each row i of every (t, t) score matrix in s by
// the softmax of its first i+1 entries and zeroes the rest: position i
// attends only to positions <= i. It first shifts each row by its max and
// sets the masked entries to -inf, so that one exps call over all matrices
// exponentiates and zeroes them: per-row calls would run mostly in the
// scalar tails of the vector kernel, rows being shorter than a few vectors.
func causalSoftmax[T float](s []T, t int) {
	ninf := T(math.Inf(-1))
	for r := 0; r < len(s)/t; r++ {
		row := s[r*t : (r+1)*t]
		live, masked := row[:r%t+1], row[r%t+1:]
		// A compare rather than the max builtin, whose NaN and signed-zero
		// handling costs instructions; a NaN in the row makes it NaN
		// either way.
		mx := live[0]
		for _, v := range live[1:] {
			if v > mx {
				mx = v
			}
		}
		for j := range live {
			live[j] -= mx
		}
		for j := range masked {
			masked[j] = ninf
		}
	}
	exps(s, 0)
	for r := 0; r < len(s)/t; r++ {
		live := s[r*t : r*t+r%t+1]
		var sum T
		for _, v := range live {
			sum += v
		}
		inv := 1 / sum
		for j := range live {
			live[j] *= inv
		}
	}
}

// causalSoftmaxGrad turns dp, the gradient with respect to the softmax
// output p (t, t), into the gradient with respect to the scores, times
// scale: ds = scale p (dp - sum_j dp_j p_j), row by row.
func causalSoftmaxGrad[T float](p, dp []T, t int, scale T) {
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
