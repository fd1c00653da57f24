package models

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/gop"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// The ops a user's graph (FromGraph) builds with Graph's methods. The
// ReLU and max-pool ops keep one pattern byte per unit (did the ReLU pass;
// which input won the window) from their forward pass, route their gradient
// through it and, when the compiled graph is frozen, apply a given pattern
// instead of computing one: that is what makes a user's piecewise-linear
// network a Piecewise model. The convolution is a Gorgonia op over the
// fused kernels (im2col and one matrix product per image); like every op
// here it owns its output and gradient buffers, so a step allocates none.

// patternState is shared by the recording ops of one compiled graph: frozen
// says the next run applies the masks the model copied into them.
type patternState struct{ frozen bool }

// recorder is an op that records a pattern: units bytes per example, held
// example-major in mask (n*units bytes).
type recorder interface {
	patternUnits() int
	patternMask() []uint8
}

// reluStage is max(x, 0) of a tensor of any shape whose elements are
// example-major, n examples of units each.
type reluStage[T float] struct {
	id       int // unique in its graph, so Gorgonia never merges two ReLUs
	n, units int
	shape    tensor.Shape
	state    *patternState
	mask     []uint8
	y, dx    *tensor.Dense
}

func (s *reluStage[T]) patternUnits() int    { return s.units }
func (s *reluStage[T]) patternMask() []uint8 { return s.mask }

type reluOp[T float] struct{ s *reluStage[T] }

type reluGradOp[T float] struct{ s *reluStage[T] }

var _ G.SDOp = reluOp[float32]{}

func (op reluOp[T]) Arity() int { return 1 }
func (op reluOp[T]) Type() hm.Type {
	return hm.NewFnType(gop.TensorType(len(op.s.shape)), gop.TensorType(len(op.s.shape)))
}

func (op reluOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := gop.CheckShapes(op, in, op.s.shape); err != nil {
		return nil, err
	}
	return op.s.shape.Clone(), nil
}

func (op reluOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(vals))
	}
	x, err := gop.Data[T](vals[0], len(s.mask), op.String()+" input")
	if err != nil {
		return nil, err
	}
	y, err := gop.Output[T](s.y, s.shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if s.state.frozen {
		mulMask(x, s.mask, y)
	} else {
		reluRecord(x, y, s.mask)
	}
	return s.y, nil
}

func (op reluOp[T]) ReturnsPtr() bool      { return false }
func (op reluOp[T]) CallsExtern() bool     { return false }
func (op reluOp[T]) OverwritesInput() int  { return -1 }
func (op reluOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op reluOp[T]) Hashcode() uint32      { return gop.Hash(op) }
func (op reluOp[T]) String() string        { return fmt.Sprintf("ReLU#%d%v", op.s.id, op.s.shape) }
func (op reluOp[T]) DiffWRT(int) []bool    { return []bool{true} }

func (op reluOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.s.dx == nil {
		op.s.dx = gop.Buffer[T](op.s.shape...)
	}
	// The output is an operand only to order the gradient after the
	// forward pass that writes the mask.
	dx, err := G.ApplyOp(reluGradOp[T](op), output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

func (op reluGradOp[T]) Arity() int { return 2 }
func (op reluGradOp[T]) Type() hm.Type {
	d := len(op.s.shape)
	return hm.NewFnType(gop.TensorType(d), gop.TensorType(d), gop.TensorType(d))
}

func (op reluGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := gop.CheckShapes(op, in, op.s.shape, op.s.shape); err != nil {
		return nil, err
	}
	return op.s.shape.Clone(), nil
}

func (op reluGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	dy, err := gop.Data[T](vals[1], len(s.mask), op.String()+" output gradient")
	if err != nil {
		return nil, err
	}
	dx, err := gop.Output[T](s.dx, s.shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	mulMask(dy, s.mask, dx)
	return s.dx, nil
}

func (op reluGradOp[T]) ReturnsPtr() bool      { return false }
func (op reluGradOp[T]) CallsExtern() bool     { return false }
func (op reluGradOp[T]) OverwritesInput() int  { return -1 }
func (op reluGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op reluGradOp[T]) Hashcode() uint32      { return gop.Hash(op) }
func (op reluGradOp[T]) String() string        { return fmt.Sprintf("∂%v", reluOp[T](op)) }

// reluRecord sets y = max(x, 0) and mask to 1 where x > 0, 0 elsewhere.
// Branch-free, unlike copying and kern.ReLUMask: the signs of activations are
// unpredictable, and this is 4x faster.
func reluRecord[T float](x, y []T, mask []uint8) {
	y, mask = y[:len(x)], mask[:len(x)]
	for i, v := range x {
		mask[i] = b2u(v > 0)
		y[i] = max(v, 0)
	}
}

// b2u converts a comparison to 0 or 1; the compiler emits SETcc, no branch.
func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// mulMask sets y = x times the 0/1 mask: the ReLU with a given pattern,
// and its gradient. (A zeroed negative value becomes -0, which no
// consumer tells from 0.)
func mulMask[T float](x []T, mask []uint8, y []T) {
	y, mask = y[:len(x)], mask[:len(x)]
	for i, v := range x {
		y[i] = v * T(mask[i])
	}
}

// poolStage is max-pooling of (n, c, h, w) over size x size windows moved
// by stride, without padding. Its pattern byte per output is the winner's
// index ky*size+kx in its window; ties go to the first maximum.
type poolStage[T float] struct {
	id                  int
	n, c, h, w          int
	size, stride        int
	ho, wo              int
	state               *patternState
	arg                 []uint8 // (n, c, ho, wo)
	y, dx               *tensor.Dense
	parts               int
	inShape, outShapeOf tensor.Shape
}

func (s *poolStage[T]) patternUnits() int    { return s.c * s.ho * s.wo }
func (s *poolStage[T]) patternMask() []uint8 { return s.arg }

// each calls fn for every output plane of images [lo, hi): its input
// plane's offset, its output offset.
func (s *poolStage[T]) each(lo, hi int, fn func(in, out int)) {
	for i := lo; i < hi; i++ {
		for c := 0; c < s.c; c++ {
			p := i*s.c + c
			fn(p*s.h*s.w, p*s.ho*s.wo)
		}
	}
}

func (s *poolStage[T]) forward(x, y []T) {
	frozen := s.state.frozen
	gop.Parallel(s.n, s.parts, func(_, lo, hi int) {
		s.each(lo, hi, func(in, out int) {
			plane := x[in : in+s.h*s.w]
			for oy := 0; oy < s.ho; oy++ {
				o := out + oy*s.wo
				ys, args := y[o:o+s.wo], s.arg[o:o+s.wo]
				base := oy * s.stride * s.w
				switch {
				case frozen:
					for ox, a := range args {
						ys[ox] = plane[base+ox*s.stride+int(a)/s.size*s.w+int(a)%s.size]
					}
				case s.size == 2 && s.stride == 2:
					pool2Row(plane[base:base+s.w], plane[base+s.w:base+2*s.w], ys, args)
				default:
					for ox := range ys {
						b := base + ox*s.stride
						best, arg := plane[b], 0
						for ky := 0; ky < s.size; ky++ {
							for kx, v := range plane[b+ky*s.w : b+ky*s.w+s.size] {
								if v > best {
									best, arg = v, ky*s.size+kx
								}
							}
						}
						ys[ox], args[ox] = best, uint8(arg)
					}
				}
			}
		})
	})
}

// pool2Row max-pools the 2x2 windows of two image rows into y, with the
// winners' indices (dy*2+dx, the first maximum on ties) in arg:
// branch-free, as the fused CNN's kern.BiasReLUPool2, since which input wins is
// unpredictable.
func pool2Row[T float](r0, r1, y []T, arg []uint8) {
	for j := range y {
		v0, v1, v2, v3 := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
		a01, m01 := b2u(v1 > v0), max(v0, v1)
		a23, m23 := 2+b2u(v3 > v2), max(v2, v3)
		up := b2u(m23 > m01)
		arg[j] = a01 + up*(a23-a01)
		y[j] = max(m01, m23)
	}
}

func (s *poolStage[T]) backward(dy, dx []T) {
	gop.Parallel(s.n, s.parts, func(_, lo, hi int) {
		s.each(lo, hi, func(in, out int) {
			plane := dx[in : in+s.h*s.w]
			clear(plane)
			for oy := 0; oy < s.ho; oy++ {
				for ox := 0; ox < s.wo; ox++ {
					o := out + oy*s.wo + ox
					a := int(s.arg[o])
					plane[oy*s.stride*s.w+ox*s.stride+a/s.size*s.w+a%s.size] += dy[o]
				}
			}
		})
	})
}

type poolOp[T float] struct{ s *poolStage[T] }

type poolGradOp[T float] struct{ s *poolStage[T] }

var _ G.SDOp = poolOp[float32]{}

func (op poolOp[T]) Arity() int    { return 1 }
func (op poolOp[T]) Type() hm.Type { return hm.NewFnType(gop.TensorType(4), gop.TensorType(4)) }

func (op poolOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := gop.CheckShapes(op, in, op.s.inShape); err != nil {
		return nil, err
	}
	return op.s.outShapeOf.Clone(), nil
}

func (op poolOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 1 {
		return nil, fmt.Errorf("%v: want 1 input, got %d", op, len(vals))
	}
	x, err := gop.Data[T](vals[0], s.inShape.TotalSize(), op.String()+" input")
	if err != nil {
		return nil, err
	}
	y, err := gop.Output[T](s.y, s.outShapeOf)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	s.forward(x, y)
	return s.y, nil
}

func (op poolOp[T]) ReturnsPtr() bool      { return false }
func (op poolOp[T]) CallsExtern() bool     { return false }
func (op poolOp[T]) OverwritesInput() int  { return -1 }
func (op poolOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op poolOp[T]) Hashcode() uint32      { return gop.Hash(op) }
func (op poolOp[T]) DiffWRT(int) []bool    { return []bool{true} }

func (op poolOp[T]) String() string {
	return fmt.Sprintf("MaxPool2D#%d{%v, size %d, stride %d}", op.s.id, op.s.inShape, op.s.size, op.s.stride)
}

func (op poolOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.s.dx == nil {
		op.s.dx = gop.Buffer[T](op.s.inShape...)
	}
	dx, err := G.ApplyOp(poolGradOp[T](op), output, grad)
	if err != nil {
		return nil, fmt.Errorf("%v gradient: %w", op, err)
	}
	return G.Nodes{dx}, nil
}

func (op poolGradOp[T]) Arity() int { return 2 }
func (op poolGradOp[T]) Type() hm.Type {
	return hm.NewFnType(gop.TensorType(4), gop.TensorType(4), gop.TensorType(4))
}

func (op poolGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := gop.CheckShapes(op, in, op.s.outShapeOf, op.s.outShapeOf); err != nil {
		return nil, err
	}
	return op.s.inShape.Clone(), nil
}

func (op poolGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: want 2 inputs, got %d", op, len(vals))
	}
	dy, err := gop.Data[T](vals[1], len(s.arg), op.String()+" output gradient")
	if err != nil {
		return nil, err
	}
	dx, err := gop.Output[T](s.dx, s.inShape)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	s.backward(dy, dx)
	return s.dx, nil
}

func (op poolGradOp[T]) ReturnsPtr() bool      { return false }
func (op poolGradOp[T]) CallsExtern() bool     { return false }
func (op poolGradOp[T]) OverwritesInput() int  { return -1 }
func (op poolGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op poolGradOp[T]) Hashcode() uint32      { return gop.Hash(op) }
func (op poolGradOp[T]) String() string        { return fmt.Sprintf("∂%v", poolOp[T](op)) }

// convStage is the 2-D convolution of n images (cin, h, w) with weights
// (cout, cin, kh, kw), zero padding pad and stride, plus an optional bias
// (cout): image by image, out (cout, ho*wo) = weight (cout, cin*kh*kw)
// times im2col(x) (cin*kh*kw, ho*wo), already in CHW order.
type convStage[T float] struct {
	name                    string
	n, cin, cout, h, w      int
	kh, kw, stride, pad     int
	ho, wo                  int
	needDX, bias            bool
	out, dx, dw, db         *tensor.Dense
	wT                      []T // (cin*kh*kw, cout) for the input gradient
	scratch                 []*convStageScratch[T]
	inShape, wShape, oShape tensor.Shape
	biasShape               tensor.Shape
	fast3x3                 bool // 3x3, stride 1, padding 1: the fused CNN's kernels
	patchRows, patchCols    int
	imageSize, outImageSize int
	weightSize              int
}

type convStageScratch[T float] struct {
	col []T // the patch matrix (cin*kh*kw, ho*wo), or its gradient
	dyT []T // an image's output gradient transposed (ho*wo, cout)
	dwT []T // this goroutine's sum of weight gradients, transposed
}

func newConvStage[T float](name string, n, cin, h, w, cout, kh, kw, stride, pad int, needDX, bias bool, parts int) *convStage[T] {
	s := &convStage[T]{name: name, n: n, cin: cin, cout: cout, h: h, w: w, kh: kh, kw: kw, stride: stride, pad: pad,
		needDX: needDX, bias: bias}
	s.ho, s.wo = (h+2*pad-kh)/stride+1, (w+2*pad-kw)/stride+1
	s.fast3x3 = kh == 3 && kw == 3 && stride == 1 && pad == 1
	s.patchRows, s.patchCols = cin*kh*kw, s.ho*s.wo
	s.imageSize, s.outImageSize, s.weightSize = cin*h*w, cout*s.ho*s.wo, cout*cin*kh*kw
	s.inShape = tensor.Shape{n, cin, h, w}
	s.wShape = tensor.Shape{cout, cin, kh, kw}
	s.biasShape = tensor.Shape{cout}
	s.oShape = tensor.Shape{n, cout, s.ho, s.wo}
	s.out = gop.Buffer[T](s.oShape...)
	for range max(1, parts) {
		s.scratch = append(s.scratch, &convStageScratch[T]{col: make([]T, s.patchRows*s.patchCols)})
	}
	return s
}

func (s *convStage[T]) allocGrad() {
	if s.dw != nil {
		return
	}
	s.dw = gop.Buffer[T](s.wShape...)
	s.db = gop.Buffer[T](s.biasShape...)
	if s.needDX {
		s.dx = gop.Buffer[T](s.inShape...)
		s.wT = make([]T, s.weightSize)
	}
	for _, sc := range s.scratch {
		sc.dyT = make([]T, s.outImageSize)
		sc.dwT = make([]T, s.weightSize)
	}
}

// im2col writes image x's patch matrix into col.
func (s *convStage[T]) im2col(x, col []T) {
	if s.fast3x3 {
		kern.Im2Col3x3(x, s.cin, s.h, s.w, col)
		return
	}
	hw := s.ho * s.wo
	for ci := 0; ci < s.cin; ci++ {
		plane := x[ci*s.h*s.w : (ci+1)*s.h*s.w]
		for ky := 0; ky < s.kh; ky++ {
			for kx := 0; kx < s.kw; kx++ {
				row := col[((ci*s.kh+ky)*s.kw+kx)*hw:][:hw]
				for oy := 0; oy < s.ho; oy++ {
					dst := row[oy*s.wo : (oy+1)*s.wo]
					iy := oy*s.stride + ky - s.pad
					if iy < 0 || iy >= s.h {
						clear(dst)
						continue
					}
					src := plane[iy*s.w : (iy+1)*s.w]
					for ox := range dst {
						ix := ox*s.stride + kx - s.pad
						if ix < 0 || ix >= s.w {
							dst[ox] = 0
						} else {
							dst[ox] = src[ix]
						}
					}
				}
			}
		}
	}
}

// col2im sets dx, the gradient of an image, to the adjoint of im2col
// applied to dcol.
func (s *convStage[T]) col2im(dcol, dx []T) {
	if s.fast3x3 {
		kern.Col2Im3x3(dcol, s.cin, s.h, s.w, dx)
		return
	}
	clear(dx[:s.imageSize])
	hw := s.ho * s.wo
	for ci := 0; ci < s.cin; ci++ {
		plane := dx[ci*s.h*s.w : (ci+1)*s.h*s.w]
		for ky := 0; ky < s.kh; ky++ {
			for kx := 0; kx < s.kw; kx++ {
				row := dcol[((ci*s.kh+ky)*s.kw+kx)*hw:][:hw]
				for oy := 0; oy < s.ho; oy++ {
					iy := oy*s.stride + ky - s.pad
					if iy < 0 || iy >= s.h {
						continue
					}
					dst := plane[iy*s.w : (iy+1)*s.w]
					for ox, v := range row[oy*s.wo : (oy+1)*s.wo] {
						if ix := ox*s.stride + kx - s.pad; ix >= 0 && ix < s.w {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}

func (s *convStage[T]) forward(x, w, b, out []T) {
	k, hw := s.patchRows, s.patchCols
	gop.Parallel(s.n, len(s.scratch), func(part, lo, hi int) {
		sc := s.scratch[part]
		for i := lo; i < hi; i++ {
			s.im2col(x[i*s.imageSize:(i+1)*s.imageSize], sc.col)
			o := out[i*s.outImageSize : (i+1)*s.outImageSize]
			gemm.Gemm(false, false, s.cout, hw, k, 1, w, k, sc.col, hw, 0, o, hw)
			if b != nil {
				for c, bc := range b {
					for j := range o[c*hw : (c+1)*hw] {
						o[c*hw+j] += bc
					}
				}
			}
		}
	})
}

// weightGrad sets dw to the sum over images of dy col^T. Each goroutine
// accumulates its images transposed, (cin*kh*kw, cout) += col dy^T, so
// that the product reads both operands in plain layout: transposing dy
// (cout, ho*wo) per image is cheaper than letting the product transpose
// col, which has kh*kw times as many rows per input channel.
func (s *convStage[T]) weightGrad(x, dout, dw []T) {
	k, hw := s.patchRows, s.patchCols
	// Cleared here, not by each goroutine: gop.Parallel may leave a part
	// without images, whose sum must still be zero.
	for _, sc := range s.scratch {
		clear(sc.dwT)
	}
	gop.Parallel(s.n, len(s.scratch), func(part, lo, hi int) {
		sc := s.scratch[part]
		for i := lo; i < hi; i++ {
			s.im2col(x[i*s.imageSize:(i+1)*s.imageSize], sc.col)
			kern.Transpose(sc.dyT, dout[i*s.outImageSize:(i+1)*s.outImageSize], s.cout, hw)
			gemm.Gemm(false, false, k, s.cout, hw, 1, sc.col, hw, sc.dyT, s.cout, 1, sc.dwT, s.cout)
		}
	})
	clear(dw)
	for _, sc := range s.scratch {
		for r := 0; r < k; r++ {
			for c, v := range sc.dwT[r*s.cout : (r+1)*s.cout] {
				dw[c*k+r] += v
			}
		}
	}
}

// inputGrad sets dx, image by image, to col2im(W^T dy).
func (s *convStage[T]) inputGrad(w, dout, dx []T) {
	k, hw := s.patchRows, s.patchCols
	kern.Transpose(s.wT, w, s.cout, k)
	gop.Parallel(s.n, len(s.scratch), func(part, lo, hi int) {
		sc := s.scratch[part]
		for i := lo; i < hi; i++ {
			gemm.Gemm(false, false, k, hw, s.cout, 1, s.wT, s.cout, dout[i*s.outImageSize:], hw, 0, sc.col, hw)
			s.col2im(sc.col, dx[i*s.imageSize:(i+1)*s.imageSize])
		}
	})
}

func (s *convStage[T]) biasGrad(dout, db []T) {
	clear(db)
	hw := s.patchCols
	for i := 0; i < s.n; i++ {
		for c := range db {
			var sum T
			for _, v := range dout[i*s.outImageSize+c*hw : i*s.outImageSize+(c+1)*hw] {
				sum += v
			}
			db[c] += sum
		}
	}
}

// convOp is the forward pass: x, weight and, with a bias, the bias.
type convOp[T float] struct{ s *convStage[T] }

type convGradOp[T float] struct {
	s   *convStage[T]
	wrt int // 0 input, 1 weight, 2 bias
}

var _ G.SDOp = convOp[float32]{}

func (op convOp[T]) Arity() int {
	if op.s.bias {
		return 3
	}
	return 2
}

func (op convOp[T]) Type() hm.Type {
	if op.s.bias {
		return hm.NewFnType(gop.TensorType(4), gop.TensorType(4), gop.TensorType(1), gop.TensorType(4))
	}
	return hm.NewFnType(gop.TensorType(4), gop.TensorType(4), gop.TensorType(4))
}

func (op convOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.s
	want := []tensor.Shape{s.inShape, s.wShape, s.biasShape}[:op.Arity()]
	if err := gop.CheckShapes(op, in, want...); err != nil {
		return nil, err
	}
	return s.oShape.Clone(), nil
}

func (op convOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != op.Arity() {
		return nil, fmt.Errorf("%v: want %d inputs, got %d", op, op.Arity(), len(vals))
	}
	x, err := gop.Data[T](vals[0], s.n*s.imageSize, s.name+" input")
	if err != nil {
		return nil, err
	}
	w, err := gop.Data[T](vals[1], s.weightSize, s.name+" weight")
	if err != nil {
		return nil, err
	}
	var b []T
	if s.bias {
		if b, err = gop.Data[T](vals[2], s.cout, s.name+" bias"); err != nil {
			return nil, err
		}
	}
	out, err := gop.Output[T](s.out, s.oShape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	s.forward(x, w, b, out)
	return s.out, nil
}

func (op convOp[T]) ReturnsPtr() bool      { return false }
func (op convOp[T]) CallsExtern() bool     { return false }
func (op convOp[T]) OverwritesInput() int  { return -1 }
func (op convOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convOp[T]) Hashcode() uint32      { return gop.Hash(op) }

func (op convOp[T]) String() string {
	s := op.s
	return fmt.Sprintf("Conv2D[%s]{%v * %v, stride %d, pad %d, bias %t}", s.name, s.inShape, s.wShape, s.stride, s.pad, s.bias)
}

// DiffWRT: the input only when it is an activation, not the data.
func (op convOp[T]) DiffWRT(int) []bool { return []bool{op.s.needDX, true, true}[:op.Arity()] }

func (op convOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%v: want %d inputs, got %d", op, op.Arity(), len(inputs))
	}
	op.s.allocGrad()
	grads := make(G.Nodes, op.Arity())
	for wrt, need := range op.DiffWRT(0) {
		if !need {
			continue
		}
		g, err := G.ApplyOp(convGradOp[T]{op.s, wrt}, inputs[0], inputs[1], grad)
		if err != nil {
			return nil, fmt.Errorf("%v gradient %d: %w", op, wrt, err)
		}
		grads[wrt] = g
	}
	return grads, nil
}

func (op convGradOp[T]) Arity() int { return 3 }

func (op convGradOp[T]) shape() tensor.Shape {
	return []tensor.Shape{op.s.inShape, op.s.wShape, op.s.biasShape}[op.wrt]
}

func (op convGradOp[T]) Type() hm.Type {
	return hm.NewFnType(gop.TensorType(4), gop.TensorType(4), gop.TensorType(4), gop.TensorType(len(op.shape())))
}

func (op convGradOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.s
	if err := gop.CheckShapes(op, in, s.inShape, s.wShape, s.oShape); err != nil {
		return nil, err
	}
	return op.shape().Clone(), nil
}

func (op convGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	dout, err := gop.Data[T](vals[2], s.n*s.outImageSize, s.name+" output gradient")
	if err != nil {
		return nil, err
	}
	switch op.wrt {
	case 0:
		w, err := gop.Data[T](vals[1], s.weightSize, s.name+" weight")
		if err != nil {
			return nil, err
		}
		dx, err := gop.Output[T](s.dx, s.inShape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		s.inputGrad(w, dout, dx)
		return s.dx, nil
	case 1:
		x, err := gop.Data[T](vals[0], s.n*s.imageSize, s.name+" input")
		if err != nil {
			return nil, err
		}
		dw, err := gop.Output[T](s.dw, s.wShape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		s.weightGrad(x, dout, dw)
		return s.dw, nil
	default:
		db, err := gop.Output[T](s.db, s.biasShape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		s.biasGrad(dout, db)
		return s.db, nil
	}
}

func (op convGradOp[T]) ReturnsPtr() bool      { return false }
func (op convGradOp[T]) CallsExtern() bool     { return false }
func (op convGradOp[T]) OverwritesInput() int  { return -1 }
func (op convGradOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convGradOp[T]) Hashcode() uint32      { return gop.Hash(op) }

func (op convGradOp[T]) String() string {
	return fmt.Sprintf("∂%v/∂%s", convOp[T]{op.s}, []string{"input", "weight", "bias"}[op.wrt])
}
