package gop

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/sgdyn/sgdyn/internal/gemm"
	"github.com/sgdyn/sgdyn/internal/kern"
)

// convPool is one CNN stage as Gorgonia ops: 3x3 convolution (padding 1),
// bias, ReLU and 2x2 max-pooling of a fixed batch of n images. Gorgonia's
// own composition (Conv2d, BroadcastAdd, Rectify, MaxPool2D) builds the
// patch matrix in HWC order and transposes the product back, passes over
// the whole convolution output once per node and allocates every node's
// output and gradient on every step. Here the stage is one op over the
// kernels of internal/kern (im2col, one product per image in CHW order,
// fused bias+ReLU+pool) that records one pattern byte per pool, and its
// gradient ops read those bytes.
//
// The forward op and its gradient ops share this struct: the stage's shape,
// the pattern of the last forward pass and the buffers reused on every
// step.
type convPool[T kern.Float] struct {
	name               string // the parameter prefix, e.g. "conv1"
	n, cin, cout, h, w int
	// needDX says the input is an activation, not the data, so the input
	// gradient is wanted.
	needDX bool
	// flat makes the output (n, cout*h/2*w/2), the layout the dense layer
	// after the last stage reads, so no Reshape node sits in between.
	flat bool

	arg             []uint8 // (n, cout, h/2, w/2) pattern bytes, see kern.BiasReLUPool2
	out, dx, dw, db *tensor.Dense
	wT              []T // transposed weights (cin*9, cout) for the input gradient
	scratch         []*convScratch[T]
}

// convScratch is one goroutine's scratch: the stage works image by image.
type convScratch[T kern.Float] struct {
	col []T // the patch matrix (cin*9, h*w), or its gradient
	y   []T // the convolution output (cout, h*w), or its gradient
	yT  []T // the gradient transposed (h*w, cout)
	dwT []T // transposed weight gradient (cin*9, cout), summed over images
	db  []T // bias gradient kern.BiasReLUPool2Grad adds into; the bias op sums its own
}

// newConvPool returns stage name for n images of cin channels of h x w,
// split across parts goroutines (see ConvPoolParts).
func newConvPool[T kern.Float](name string, n, cin, cout, h, w int, needDX, flat bool, parts int) *convPool[T] {
	s := &convPool[T]{name: name, n: n, cin: cin, cout: cout, h: h, w: w, needDX: needDX, flat: flat}
	s.arg = make([]uint8, n*s.outSize())
	s.out = Buffer[T](s.outShape()...)
	for range max(1, parts) {
		s.scratch = append(s.scratch, &convScratch[T]{
			col: make([]T, cin*9*h*w),
			y:   make([]T, cout*h*w),
		})
	}
	return s
}

// ConvPoolParts is how many goroutines a stage of n images splits its
// work across when procs cores are there.
func ConvPoolParts(n, cin, cout, h, w, procs int) int {
	return Workers(n, 3*cout*cin*9*h*w, procs)
}

// outSize is the number of pooled outputs per image.
func (s *convPool[T]) outSize() int { return s.cout * (s.h / 2) * (s.w / 2) }

func (s *convPool[T]) inShape() tensor.Shape     { return tensor.Shape{s.n, s.cin, s.h, s.w} }
func (s *convPool[T]) weightShape() tensor.Shape { return tensor.Shape{s.cout, s.cin, 3, 3} }
func (s *convPool[T]) biasShape() tensor.Shape   { return tensor.Shape{s.cout} }

func (s *convPool[T]) outShape() tensor.Shape {
	if s.flat {
		return tensor.Shape{s.n, s.outSize()}
	}
	return tensor.Shape{s.n, s.cout, s.h / 2, s.w / 2}
}

// allocGrad allocates the gradient buffers, once a gradient op is made.
func (s *convPool[T]) allocGrad() {
	if s.dw != nil {
		return
	}
	if s.needDX {
		s.dx = Buffer[T](s.inShape()...)
		s.wT = make([]T, s.cin*9*s.cout)
	}
	s.dw = Buffer[T](s.weightShape()...)
	s.db = Buffer[T](s.biasShape()...)
	for _, sc := range s.scratch {
		sc.yT = make([]T, s.cout*s.h*s.w)
		sc.dwT = make([]T, s.cin*9*s.cout)
		sc.db = make([]T, s.cout)
	}
}

// forward writes the pooled output of every image and records its pattern.
func (s *convPool[T]) forward(x, w, b, out []T) {
	hw, k, insz, outsz := s.h*s.w, s.cin*9, s.cin*s.h*s.w, s.outSize()
	Parallel(s.n, len(s.scratch), func(part, lo, hi int) {
		sc := s.scratch[part]
		for i := lo; i < hi; i++ {
			kern.Im2Col3x3(x[i*insz:(i+1)*insz], s.cin, s.h, s.w, sc.col)
			gemm.Gemm(false, false, s.cout, hw, k, 1, w, k, sc.col, hw, 0, sc.y, hw)
			kern.BiasReLUPool2(sc.y, b, s.cout, s.h, s.w, out[i*outsz:(i+1)*outsz], s.arg[i*outsz:(i+1)*outsz])
		}
	})
}

// backwardPass sets dw, db and (needDX) dx from the gradient dout of the
// pooled output, image by image in one pass: the pattern routes dout to
// the convolution output once, and each image's patch matrix, rebuilt from
// x, serves the weight gradient and then, as scratch, the input gradient.
// Each goroutine accumulates its images' weight gradient transposed, (cin*9,
// cout), so that the product reads both operands in plain layout.
func (s *convPool[T]) backwardPass(x, w, dout, dx, dw, db []T) {
	hw, k, insz, outsz := s.h*s.w, s.cin*9, s.cin*s.h*s.w, s.outSize()
	if s.needDX {
		kern.Transpose(s.wT, w, s.cout, k)
	}
	// Cleared here, not by each goroutine: Parallel may leave a part
	// without images, whose sums must still be zero.
	for _, sc := range s.scratch {
		clear(sc.dwT)
		clear(sc.db)
	}
	Parallel(s.n, len(s.scratch), func(part, lo, hi int) {
		sc := s.scratch[part]
		for i := lo; i < hi; i++ {
			kern.BiasReLUPool2Grad(s.arg[i*outsz:(i+1)*outsz], dout[i*outsz:(i+1)*outsz], s.cout, s.h, s.w, sc.y, sc.yT, sc.db)
			kern.Im2Col3x3(x[i*insz:(i+1)*insz], s.cin, s.h, s.w, sc.col)
			gemm.Gemm(false, false, k, s.cout, hw, 1, sc.col, hw, sc.yT, s.cout, 1, sc.dwT, s.cout)
			if dx != nil {
				gemm.Gemm(false, false, k, hw, s.cout, 1, s.wT, s.cout, sc.y, hw, 0, sc.col, hw)
				kern.Col2Im3x3(sc.col, s.cin, s.h, s.w, dx[i*insz:(i+1)*insz])
			}
		}
	})
	clear(dw)
	clear(db)
	for _, sc := range s.scratch {
		for r := 0; r < k; r++ {
			for c, v := range sc.dwT[r*s.cout : (r+1)*s.cout] {
				dw[c*k+r] += v
			}
		}
		kern.Add(db, sc.db)
	}
}

// convPoolOp is a stage's forward pass: x (n, cin, h, w), weight (cout,
// cin, 3, 3) and bias (cout), the plain graph's parameter shapes, to the
// pooled output.
type convPoolOp[T kern.Float] struct{ s *convPool[T] }

var _ G.SDOp = convPoolOp[float32]{}

func (op convPoolOp[T]) Arity() int { return 3 }

func (op convPoolOp[T]) Type() hm.Type {
	return hm.NewFnType(TensorType(4), TensorType(4), TensorType(1), TensorType(len(op.s.outShape())))
}

func (op convPoolOp[T]) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.s
	if err := CheckShapes(op, in, s.inShape(), s.weightShape(), s.biasShape()); err != nil {
		return nil, err
	}
	return s.outShape(), nil
}

func (op convPoolOp[T]) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	x, err := Data[T](vals[0], s.inShape().TotalSize(), s.name+" input")
	if err != nil {
		return nil, err
	}
	w, err := Data[T](vals[1], s.weightShape().TotalSize(), s.name+" weight")
	if err != nil {
		return nil, err
	}
	b, err := Data[T](vals[2], s.cout, s.name+" bias")
	if err != nil {
		return nil, err
	}
	out, err := Output[T](s.out, s.outShape())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	s.forward(x, w, b, out)
	return s.out, nil
}

func (op convPoolOp[T]) ReturnsPtr() bool      { return false }
func (op convPoolOp[T]) CallsExtern() bool     { return false }
func (op convPoolOp[T]) OverwritesInput() int  { return -1 }
func (op convPoolOp[T]) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op convPoolOp[T]) Hashcode() uint32      { return Hash(op) }

func (op convPoolOp[T]) String() string {
	s := op.s
	return fmt.Sprintf("ConvPool[%s]{%d, %d->%d, %dx%d, flat %t}", s.name, s.n, s.cin, s.cout, s.h, s.w, s.flat)
}

// DiffWRT: the weight and bias always; the input only when it is an
// activation, since the gradient of the data is never used.
func (op convPoolOp[T]) DiffWRT(int) []bool { return op.s.wrt() }

func (op convPoolOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.s.allocGrad()
	return gradSymDiff(op.s, inputs, output, grad)
}

// The stage's gradStage methods: one gradOp computes dx, dw and db.

func (s *convPool[T]) forwardOp() G.Op { return convPoolOp[T]{s} }

func (s *convPool[T]) operandShapes() []tensor.Shape {
	return []tensor.Shape{s.inShape(), s.weightShape(), s.biasShape()}
}

func (s *convPool[T]) wrt() []bool { return []bool{s.needDX, true, true} }

func (s *convPool[T]) backward(vals []G.Value) error {
	x, err := Data[T](vals[0], s.inShape().TotalSize(), s.name+" input")
	if err != nil {
		return err
	}
	w, err := Data[T](vals[1], s.weightShape().TotalSize(), s.name+" weight")
	if err != nil {
		return err
	}
	dout, err := Data[T](vals[4], s.n*s.outSize(), s.name+" output gradient")
	if err != nil {
		return err
	}
	var dx []T
	if s.needDX {
		dx = sliceOf[T](s.dx)
	}
	s.backwardPass(x, w, dout, dx, sliceOf[T](s.dw), sliceOf[T](s.db))
	return nil
}

func (s *convPool[T]) grad(i int) (*tensor.Dense, error) {
	t := []*tensor.Dense{s.dx, s.dw, s.db}[i]
	if t == nil {
		return nil, fmt.Errorf("%s: no gradient for operand %d", s.name, i)
	}
	if _, err := Output[T](t, s.operandShapes()[i]); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return t, nil
}
