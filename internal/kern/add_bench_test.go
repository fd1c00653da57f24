package kern

import (
	"math/rand/v2"
	"testing"
)

// tokenGradAdds is the NanoGPT-960's last loop (models/fused_transformer.go):
// each token's row of dx added into its token's and position's rows of
// the embedding gradients.
func tokenGradAdds(grad, dx []float32, tokens []int, d, t, pos int, add func(dst, src []float32)) {
	for r, id := range tokens {
		dxr := dx[r*d : (r+1)*d]
		add(grad[id*d:(id+1)*d], dxr)
		add(grad[pos+(r%t)*d:pos+(r%t+1)*d], dxr)
	}
}

// BenchmarkAddMin reports minTimes of the step's Adds: the two residual
// adds of 8,192 and the 2,048 token adds of 8.
func BenchmarkAddMin(b *testing.B) {
	const m, d, t, vocab = 1024, 8, 16, 25
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := make([]float32, m*d), make([]float32, m*d)
	for i := range x {
		x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	tokens := make([]int, m)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
	}
	grad := make([]float32, (vocab+t)*d)
	for b.Loop() {
		ts := minTimes(30, 50,
			func() { Add(x, y) },
			func() { tokenGradAdds(grad, y, tokens, d, t, vocab*d, Add[float32]) },
			func() {
				for r, id := range tokens {
					dxr := y[r*d : (r+1)*d]
					Add(grad[id*d:(id+1)*d], dxr)
					Add(grad[vocab*d+(r%t)*d:vocab*d+(r%t+1)*d], dxr)
				}
			})
		b.ReportMetric(ts[0], "ns/add8192")
		b.ReportMetric(ts[1], "ns/tokens-func")
		b.ReportMetric(ts[2], "ns/tokens-inline")
	}
}

// BenchmarkAddLenMin reports minTimes of the scalar loop and of the AVX2
// kernel behind addLong for float32 slices of a few lengths, to place
// addVecMin.
func BenchmarkAddLenMin(b *testing.B) {
	if !haveAVX2 {
		b.Skip("no AVX2")
	}
	x, y := make([]float32, 256), make([]float32, 256)
	x64, y64 := make([]float64, 256), make([]float64, 256)
	for b.Loop() {
		for _, n := range []int{8, 16, 24, 32, 48, 64, 128} {
			d, s := x[:n], y[:n]
			d64, s64 := x64[:n], y64[:n]
			ts := minTimes(20, 2000,
				func() {
					for i := range d {
						d[i] += s[i]
					}
				},
				func() { addLong(d, s) },
				func() {
					for i := range d64 {
						d64[i] += s64[i]
					}
				},
				func() { addLong(d64, s64) })
			b.ReportMetric(ts[0], "ns/scalar"+itoa(n))
			b.ReportMetric(ts[1], "ns/avx2_"+itoa(n))
			b.ReportMetric(ts[2], "ns/scalar64_"+itoa(n))
			b.ReportMetric(ts[3], "ns/avx2x64_"+itoa(n))
		}
	}
}

func itoa(n int) string {
	return string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}

// BenchmarkEmbedGradMin reports minTimes of the NanoGPT-960's embedding
// gradient (1,024 tokens of 8, context 16) as the loop of two Adds a
// token and as EmbedGrad.
func BenchmarkEmbedGradMin(b *testing.B) {
	const m, d, t, vocab = 1024, 8, 16, 25
	rng := rand.New(rand.NewPCG(1, 1))
	dx := make([]float32, m*d)
	for i := range dx {
		dx[i] = float32(rng.NormFloat64())
	}
	tokens := make([]int, m)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
	}
	grad := make([]float32, (vocab+t)*d)
	tok, pos := grad[:vocab*d], grad[vocab*d:]
	for b.Loop() {
		ts := minTimes(30, 50,
			func() {
				for r, id := range tokens {
					dxr := dx[r*d : (r+1)*d]
					Add(grad[id*d:(id+1)*d], dxr)
					Add(grad[vocab*d+(r%t)*d:vocab*d+(r%t+1)*d], dxr)
				}
			},
			func() { EmbedGrad(tok, pos, d, t, tokens, dx) })
		b.ReportMetric(ts[0], "ns/loop")
		b.ReportMetric(ts[1], "ns/EmbedGrad")
	}
}

// BenchmarkEmbedSumMin reports minTimes of the NanoGPT-960's input
// (1,024 tokens of 8, context 16) as models' loop and as EmbedSum.
func BenchmarkEmbedSumMin(b *testing.B) {
	const m, d, t, vocab = 1024, 8, 16, 25
	rng := rand.New(rand.NewPCG(1, 1))
	p := make([]float32, (vocab+t)*d)
	for i := range p {
		p[i] = float32(rng.NormFloat64())
	}
	tokens := make([]int, m)
	for i := range tokens {
		tokens[i] = rng.IntN(vocab)
	}
	x := make([]float32, m*d)
	tokOff, posOff := 0, vocab*d
	for b.Loop() {
		ts := minTimes(30, 50,
			func() {
				for r, id := range tokens {
					xr := x[r*d:][:d]
					te := p[tokOff+id*d:][:d]
					pe := p[posOff+(r%t)*d:][:d]
					for j := range xr {
						xr[j] = te[j] + pe[j]
					}
				}
			},
			func() { EmbedSum(x, p[tokOff:posOff], p[posOff:], d, t, tokens) })
		b.ReportMetric(ts[0], "ns/loop")
		b.ReportMetric(ts[1], "ns/EmbedSum")
	}
}
