package kern

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// embedGradCase checks EmbedGrad against the loop it replaces (each row
// of dx added into its token's and its position's rows, in order) bit
// for bit, with the gradients inside larger buffers whose guard entries
// must stay untouched: a kernel that wrapped r%t wrongly, skipped the
// position add, added a row twice or wrote past a gradient fails.
func embedGradCase[T Float](t *testing.T, rng *rand.Rand, m, d, ctx, vocab, off int) {
	const guard = 4321.25
	tokBuf := make([]T, off+vocab*d+1)
	posBuf := make([]T, off+ctx*d+1)
	dxBuf := make([]T, off+m*d)
	for _, b := range [][]T{tokBuf, posBuf, dxBuf} {
		for i := range b {
			b[i] = T(rng.NormFloat64())
		}
	}
	tokBuf[off+vocab*d], posBuf[off+ctx*d] = guard, guard
	tokens := make([]int, m)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
	}
	wantTok, wantPos := append([]T(nil), tokBuf...), append([]T(nil), posBuf...)
	dx := dxBuf[off:]
	for r, id := range tokens {
		for j := range d {
			wantTok[off+id*d+j] += dx[r*d+j]
			wantPos[off+(r%ctx)*d+j] += dx[r*d+j]
		}
	}
	EmbedGrad(tokBuf[off:off+vocab*d], posBuf[off:off+ctx*d], d, ctx, tokens, dx)
	for i := range tokBuf {
		if tokBuf[i] != wantTok[i] {
			t.Fatalf("%T m=%d d=%d t=%d: token gradient entry %d %v, want %v", dx, m, d, ctx, i-off, tokBuf[i], wantTok[i])
		}
	}
	for i := range posBuf {
		if posBuf[i] != wantPos[i] {
			t.Fatalf("%T m=%d d=%d t=%d: position gradient entry %d %v, want %v", dx, m, d, ctx, i-off, posBuf[i], wantPos[i])
		}
	}
}

// TestEmbedGrad runs embedGradCase for the AVX2 width (8) and others,
// contexts of 1, 3 and 16, row counts on either side of the context and
// offsets that unalign every slice, in float32 and float64.
func TestEmbedGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, d := range []int{8, 4, 9} {
		for _, ctx := range []int{1, 3, 16} {
			for _, m := range []int{0, 1, 2, ctx - 1, ctx, ctx + 1, 100, 1024} {
				if m < 0 {
					continue
				}
				off := rng.IntN(5)
				embedGradCase[float32](t, rng, m, d, ctx, 25, off)
				embedGradCase[float64](t, rng, m, d, ctx, 25, off)
			}
		}
	}
}

// TestEmbedGradBadToken checks that a token outside the vocabulary, or a
// context of 0, panics with a message naming it rather than writing
// outside the gradient.
func TestEmbedGradBadToken(t *testing.T) {
	for _, c := range []struct {
		d, tok, ctx int
		want        string
	}{{8, -1, 16, "token -1 of row 5"}, {8, 25, 16, "token 25 of row 5"}, {4, 25, 16, "token 25 of row 5"}, {8, 3, 0, "context 0"}} {
		func() {
			defer func() {
				r := recover()
				if !strings.Contains(toString(r), c.want) {
					t.Errorf("d=%d token %d context %d: recovered %v, want a panic with %q", c.d, c.tok, c.ctx, r, c.want)
				}
			}()
			tokens := make([]int, 9)
			tokens[5] = c.tok
			EmbedGrad(make([]float32, 25*c.d), make([]float32, 16*c.d), c.d, c.ctx, tokens, make([]float32, 9*c.d))
		}()
	}
}

// TestEmbedSum checks EmbedSum against the sum of the token's and the
// position's rows, bit for bit, for the AVX2 width and others, several
// contexts and row counts, unaligned slices, with the entry past x
// untouched; and that a bad token panics naming it.
func TestEmbedSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	const vocab, guard = 25, 99.5
	for _, d := range []int{8, 4, 9} {
		for _, ctx := range []int{1, 3, 16} {
			for _, m := range []int{0, 1, 2, ctx + 1, 100, 1024} {
				off := rng.IntN(5)
				tok32, pos32 := make([]float32, off+vocab*d), make([]float32, off+ctx*d)
				tok64, pos64 := make([]float64, off+vocab*d), make([]float64, off+ctx*d)
				for i := range tok32 {
					tok64[i] = rng.NormFloat64()
					tok32[i] = float32(tok64[i])
				}
				for i := range pos32 {
					pos64[i] = rng.NormFloat64()
					pos32[i] = float32(pos64[i])
				}
				tokens := make([]int, m)
				for i := range tokens {
					tokens[i] = rng.IntN(vocab)
				}
				x32, x64 := make([]float32, off+m*d+1), make([]float64, off+m*d+1)
				x32[off+m*d], x64[off+m*d] = guard, guard
				EmbedSum(x32[off:off+m*d], tok32[off:], pos32[off:], d, ctx, tokens)
				EmbedSum(x64[off:off+m*d], tok64[off:], pos64[off:], d, ctx, tokens)
				for r, id := range tokens {
					for j := range d {
						w32 := tok32[off+id*d+j] + pos32[off+(r%ctx)*d+j]
						w64 := tok64[off+id*d+j] + pos64[off+(r%ctx)*d+j]
						if x32[off+r*d+j] != w32 || x64[off+r*d+j] != w64 {
							t.Fatalf("d=%d t=%d m=%d: row %d col %d: %v %v, want %v %v", d, ctx, m, r, j, x32[off+r*d+j], x64[off+r*d+j], w32, w64)
						}
					}
				}
				if x32[off+m*d] != guard || x64[off+m*d] != guard {
					t.Fatalf("d=%d t=%d m=%d: wrote past x", d, ctx, m)
				}
			}
		}
	}
	defer func() {
		if r := recover(); !strings.Contains(toString(r), "token 25 of row 2") {
			t.Errorf("recovered %v, want a panic naming token 25 of row 2", r)
		}
	}()
	EmbedSum(make([]float32, 3*8), make([]float32, vocab*8), make([]float32, 16*8), 8, 16, []int{0, 1, 25})
}
