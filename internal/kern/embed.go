package kern

import "fmt"

// EmbedGrad adds the gradient dx (len(tokens) rows of d) of a sum of
// token and position embeddings into their gradients: row r into row
// tokens[r] of tokGrad and row r%t of posGrad, for r in order, so that
// each gradient row's sum is the loop's over r bit for bit. With d = 8
// (the NanoGPT-960's width) it runs in AVX2, a vector a row and no
// division for r%t; a per-row Add of 8 costs more in loop and slicing
// than in arithmetic. It panics on a token outside [0, len(tokGrad)/d).
func EmbedGrad[T Float](tokGrad, posGrad []T, d, t int, tokens []int, dx []T) {
	m := len(tokens)
	dx = dx[:m*d]
	if m == 0 {
		return
	}
	if t <= 0 {
		panic(fmt.Sprintf("kern: EmbedGrad: context %d, want > 0", t))
	}
	posGrad = posGrad[:min(m, t)*d]
	bad := -2
	if haveAVX2 && d == 8 {
		switch tg := any(tokGrad).(type) {
		case []float32:
			bad = embedGrad8AVX2(tg[:len(tg)&^7], any(posGrad).([]float32), any(dx).([]float32), tokens, t)
		case []float64:
			bad = embedGrad8x64AVX2(tg[:len(tg)&^7], any(posGrad).([]float64), any(dx).([]float64), tokens, t)
		}
	}
	if bad >= 0 {
		panic(fmt.Sprintf("kern: EmbedGrad: token %d of row %d outside [0, %d)", tokens[bad], bad, len(tokGrad)/d))
	}
	if bad == -1 {
		return
	}
	p, rows := 0, len(tokGrad)/d // p is r%t
	for r, id := range tokens {
		if uint(id) >= uint(rows) {
			panic(fmt.Sprintf("kern: EmbedGrad: token %d of row %d outside [0, %d)", id, r, rows))
		}
		src := dx[r*d : (r+1)*d]
		Add(tokGrad[id*d:(id+1)*d], src)
		Add(posGrad[p*d:(p+1)*d], src)
		if p++; p == t {
			p = 0
		}
	}
}

// EmbedSum sets row r of x (len(tokens) rows of d) to row tokens[r] of
// tok plus row r%t of pos: a transformer's input, the sum of its token
// and position embeddings. With d = 8 it runs in AVX2, a vector a row and
// no division for r%t. It panics on a token outside [0, len(tok)/d).
func EmbedSum[T Float](x, tok, pos []T, d, t int, tokens []int) {
	m := len(tokens)
	x = x[:m*d]
	if m == 0 {
		return
	}
	if t <= 0 {
		panic(fmt.Sprintf("kern: EmbedSum: context %d, want > 0", t))
	}
	pos = pos[:min(m, t)*d]
	bad := -2
	if haveAVX2 && d == 8 {
		switch xs := any(x).(type) {
		case []float32:
			tk := any(tok).([]float32)
			bad = embedSum8AVX2(xs, tk[:len(tk)&^7], any(pos).([]float32), tokens, t)
		case []float64:
			tk := any(tok).([]float64)
			bad = embedSum8x64AVX2(xs, tk[:len(tk)&^7], any(pos).([]float64), tokens, t)
		}
	}
	if bad >= 0 {
		panic(fmt.Sprintf("kern: EmbedSum: token %d of row %d outside [0, %d)", tokens[bad], bad, len(tok)/d))
	}
	if bad == -1 {
		return
	}
	p, rows := 0, len(tok)/d // p is r%t
	for r, id := range tokens {
		if uint(id) >= uint(rows) {
			panic(fmt.Sprintf("kern: EmbedSum: token %d of row %d outside [0, %d)", id, r, rows))
		}
		xr, te, pe := x[r*d:(r+1)*d], tok[id*d:(id+1)*d], pos[p*d:(p+1)*d]
		for j := range xr {
			xr[j] = te[j] + pe[j]
		}
		if p++; p == t {
			p = 0
		}
	}
}
