package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sgdyn/sgdyn/internal/fdcheck"
	"github.com/sgdyn/sgdyn/internal/gemm"
)

// The finite-difference helpers of the gradient tests (package fdcheck):
// each test contracts its stage's output with fixed random weights r, so
// the scalar L = <r, f(x)> has gradient backward(r), and compares that with
// central differences of L in each input coordinate.
var (
	randn   = fdcheck.Randn
	dot     = fdcheck.Dot
	relErr  = fdcheck.RelErr
	checkFD = fdcheck.Gradient
)

// TestConvGradient checks the 3x3 convolution as the fused CNN runs it:
// im2col and one product forward; weight gradient dy col^T and input
// gradient col2im(W^T dy) backward.
func TestConvGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const cin, cout, h, w = 3, 4, 5, 6
	x, wt, r := randn(rng, cin*h*w), randn(rng, cout*cin*9), randn(rng, cout*h*w)
	col := make([]float64, cin*9*h*w)
	y := make([]float64, cout*h*w)
	conv := func() float64 {
		Im2Col3x3(x, cin, h, w, col)
		gemm.Gemm(false, false, cout, h*w, cin*9, 1, wt, cin*9, col, h*w, 0, y, h*w)
		return dot(r, y)
	}
	conv()
	dw := make([]float64, len(wt))
	gemm.Gemm(false, true, cout, cin*9, h*w, 1, r, h*w, col, h*w, 0, dw, cin*9)
	dcol := make([]float64, len(col))
	gemm.Gemm(true, false, cin*9, h*w, cout, 1, wt, cin*9, r, h*w, 0, dcol, h*w)
	dx := make([]float64, len(x))
	Col2Im3x3(dcol, cin, h, w, dx)
	checkFD(t, "conv dx", x, conv, dx)
	checkFD(t, "conv dw", wt, conv, dw)
}

// TestBiasReLUPoolGradient checks the fused bias, ReLU and 2x2 max-pool.
func TestBiasReLUPoolGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 1))
	const c, h, w = 3, 4, 6
	y, bias, r := randn(rng, c*h*w), randn(rng, c), randn(rng, c*h*w/4)
	out := make([]float64, c*h*w/4)
	arg := make([]uint8, len(out))
	f := func() float64 {
		BiasReLUPool2(y, bias, c, h, w, out, arg)
		return dot(r, out)
	}
	f()
	dy, dyT, db := make([]float64, len(y)), make([]float64, len(y)), make([]float64, c)
	BiasReLUPool2Grad(arg, r, c, h, w, dy, dyT, db)
	for ci := 0; ci < c; ci++ {
		for px := 0; px < h*w; px++ {
			if dy[ci*h*w+px] != dyT[px*c+ci] {
				t.Fatalf("dyT is not the transpose of dy at channel %d pixel %d", ci, px)
			}
		}
	}
	checkFD(t, "pool dy", y, f, dy)
	checkFD(t, "pool dbias", bias, f, db)
}

// TestDenseGradient checks y = x w + bias.
func TestDenseGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	const m, in, out = 5, 7, 3
	x, w, b, r := randn(rng, m*in), randn(rng, in*out), randn(rng, out), randn(rng, m*out)
	y := make([]float64, m*out)
	f := func() float64 {
		DenseForward(x, m, in, w, b, out, y)
		return dot(r, y)
	}
	dw, db, dx := make([]float64, len(w)), make([]float64, out), make([]float64, len(x))
	DenseBackward(x, m, in, w, out, r, dw, db, dx)
	checkFD(t, "dense dx", x, f, dx)
	checkFD(t, "dense dw", w, f, dw)
	checkFD(t, "dense dbias", b, f, db)
}

// TestLayerNormGradient checks LayerNorm with gain and bias.
func TestLayerNormGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 1))
	const m, d = 4, 6
	x, g, b, r := randn(rng, m*d), randn(rng, d), randn(rng, d), randn(rng, m*d)
	xhat, rstd, y := make([]float64, m*d), make([]float64, m), make([]float64, m*d)
	f := func() float64 {
		LayerNormForward(x, m, d, g, b, xhat, rstd, y)
		return dot(r, y)
	}
	f()
	dg, db, dx := make([]float64, d), make([]float64, d), make([]float64, m*d)
	LayerNormBackward(r, m, d, g, xhat, rstd, dg, db, dx)
	checkFD(t, "layernorm dx", x, f, dx)
	checkFD(t, "layernorm dgain", g, f, dg)
	checkFD(t, "layernorm dbias", b, f, db)
}

// TestActivationGradients checks GELU, tanh and ReLU.
func TestActivationGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 1))
	const n = 20
	x, r := randn(rng, n), randn(rng, n)
	for i := range x {
		x[i] *= 2
	}
	y, th := make([]float64, n), make([]float64, n)
	gelu := func() float64 {
		GELUForward(x, y, th)
		return dot(r, y)
	}
	gelu()
	dx := append([]float64(nil), r...)
	GELUBackward(x, th, dx)
	checkFD(t, "gelu", x, gelu, dx)

	tanhF := func() float64 {
		copy(y, x)
		TanhInPlace(y)
		return dot(r, y)
	}
	tanhF()
	dx = append(dx[:0], r...)
	TanhGrad(y, dx)
	checkFD(t, "tanh", x, tanhF, dx)

	mask := make([]uint8, n)
	reluF := func() float64 {
		copy(y, x)
		ReLUMask(y, mask)
		return dot(r, y)
	}
	reluF()
	dx = append(dx[:0], r...)
	ApplyMask(dx, mask)
	checkFD(t, "relu", x, reluF, dx)
}

// TestSoftmaxCrossEntropyGradient checks the fused softmax cross-entropy.
func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 1))
	const m, k = 5, 4
	logits := randn(rng, m*k)
	labels := []int{0, 3, 1, 1, 2}
	work := make([]float64, m*k)
	f := func() float64 {
		copy(work, logits)
		return SoftmaxCrossEntropy(work, m, k, labels, 1, false, nil)
	}
	copy(work, logits)
	SoftmaxCrossEntropy(work, m, k, labels, 1, true, nil)
	grad := append([]float64(nil), work...)
	checkFD(t, "softmax cross-entropy", logits, f, grad)
}

// TestCausalSoftmaxGradient checks the masked attention softmax, including
// its scale.
func TestCausalSoftmaxGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	const n = 5
	const scale = 0.7
	s, r := randn(rng, n*n), randn(rng, n*n)
	p := make([]float64, n*n)
	f := func() float64 {
		for i, v := range s {
			p[i] = scale * v
		}
		CausalSoftmax(p, n)
		return dot(r, p)
	}
	f()
	ds := append([]float64(nil), r...)
	CausalSoftmaxGrad(p, ds, n, scale)
	checkFD(t, "causal softmax", s, f, ds)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if p[i*n+j] != 0 || ds[i*n+j] != 0 {
				t.Fatalf("position %d attends to the future position %d", i, j)
			}
		}
	}
}

// TestRowHelpers checks broadcastRows and SumRows against the per-row loops
// they replace, for row counts on both sides of SumRows's blocks of four.
func TestRowHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	const k = 3
	for m := 0; m <= 9; m++ {
		row := randn(rng, k)
		y := make([]float64, m*k)
		broadcastRows(y, row)
		for i := range y {
			if y[i] != row[i%k] {
				t.Fatalf("m=%d: broadcastRows gives %v, want copies of %v", m, y, row)
			}
		}
		x := randn(rng, m*k)
		got, want := []float64{1, 2, 3}, []float64{1, 2, 3}
		SumRows(got, x)
		for i, v := range x {
			want[i%k] += v
		}
		for j := range got {
			if math.Abs(got[j]-want[j]) > 1e-12 {
				t.Fatalf("m=%d: SumRows gives %v, want %v", m, got, want)
			}
		}
	}
}

// TestCausalSoftmaxBatch checks that CausalSoftmax over several stacked
// matrices equals it applied to each one alone.
func TestCausalSoftmaxBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	const n, mats = 5, 3
	s := randn(rng, mats*n*n)
	one := append([]float64(nil), s...)
	CausalSoftmax(s, n)
	for i := 0; i < mats; i++ {
		CausalSoftmax(one[i*n*n:(i+1)*n*n], n)
	}
	for i := range s {
		if s[i] != one[i] {
			t.Fatalf("entry %d: %g stacked, %g alone", i, s[i], one[i])
		}
	}
}

// TestAttentionGradient checks the multi-head causal attention
// (CausalAttention and CausalAttentionBackward) of two sequences of 4
// positions, width 6 in two heads.
func TestAttentionGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	const n, ctx, d, heads = 2, 4, 6, 2
	m := n * ctx
	qkv, p, out := make([]float64, 3*m*d), make([]float64, n*heads*ctx*ctx), make([]float64, m*d)
	q, k, v, r := randn(rng, m*d), randn(rng, m*d), randn(rng, m*d), randn(rng, m*d)
	// q, k and v side by side in rows of 3d, as the transformer block keeps
	// them.
	att := func() float64 {
		for i := 0; i < m; i++ {
			copy(qkv[i*3*d:][:d], q[i*d:])
			copy(qkv[i*3*d+d:][:d], k[i*d:])
			copy(qkv[i*3*d+2*d:][:d], v[i*d:])
		}
		CausalAttention(qkv, n, ctx, d, heads, p, out)
		return dot(r, out)
	}
	att()
	dqkv, dp := make([]float64, 3*m*d), make([]float64, ctx*ctx)
	CausalAttentionBackward(qkv, p, n, ctx, d, heads, r, dp, dqkv)
	grad := func(j int) []float64 {
		g := make([]float64, m*d)
		for i := 0; i < m; i++ {
			copy(g[i*d:][:d], dqkv[i*3*d+j*d:])
		}
		return g
	}
	checkFD(t, "attention dq", q, att, grad(0))
	checkFD(t, "attention dk", k, att, grad(1))
	checkFD(t, "attention dv", v, att, grad(2))
}
