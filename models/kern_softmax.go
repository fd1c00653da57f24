package models

import "math"

// softmaxCrossEntropy computes, for logits (m, k) and labels, the sum over
// rows of -log softmax(row)[label]. It overwrites logits: with grad, by the
// gradient times scale, scale (softmax - onehot). With correct != nil it
// also counts the rows whose argmax is the label.
func softmaxCrossEntropy[T float](logits []T, m, k int, labels []int, scale T, grad bool, correct *int) float64 {
	var loss float64
	for i := 0; i < m; i++ {
		row := logits[i*k : (i+1)*k]
		y := labels[i]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if correct != nil && best == y {
			*correct++
		}
		mx := row[best]
		ly := float64(row[y] - mx)
		s := exps(row, mx) // row now holds exp(logit - max)
		loss += math.Log(float64(s)) - ly
		if !grad {
			continue
		}
		f := scale / s
		for j := range row {
			row[j] *= f
		}
		row[y] -= scale
	}
	return loss
}

// causalSoftmax replaces each row i of the (t, t) score matrix s by the
// softmax of its first i+1 entries and zeroes the rest: position i attends
// only to positions <= i.
func causalSoftmax[T float](s []T, t int) {
	for i := 0; i < t; i++ {
		row := s[i*t : (i+1)*t]
		mx := row[0]
		for _, v := range row[1 : i+1] {
			mx = max(mx, v)
		}
		inv := 1 / exps(row[:i+1], mx)
		for j := 0; j <= i; j++ {
			row[j] *= inv
		}
		clear(row[i+1:])
	}
}

// causalSoftmaxGrad turns dp, the gradient with respect to the softmax
// output p (t, t), into the gradient with respect to the scores, times
// scale: ds = scale p (dp - sum_j dp_j p_j), row by row.
func causalSoftmaxGrad[T float](p, dp []T, t int, scale T) {
	for i := 0; i < t; i++ {
		pr := p[i*t : (i+1)*t]
		dr := dp[i*t : (i+1)*t]
		var dot T
		for j := 0; j <= i; j++ {
			dot += pr[j] * dr[j]
		}
		for j := 0; j <= i; j++ {
			dr[j] = scale * pr[j] * (dr[j] - dot)
		}
		clear(dr[i+1:])
	}
}
