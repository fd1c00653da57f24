package kern

// The 3x3 convolution (stride 1, padding 1) of one image is one matrix
// product: with col = im2col(x) of shape (C*9, H*W), row c*9+ky*3+kx holding
// x[c, y+ky-1, x+kx-1] (zero outside the image), the output is
// weight (Cout, C*9) times col, already in CHW order. Gorgonia's Conv2d
// builds the same col in HWC order and transposes the product back, twice
// per layer and again in the gradient; this layout needs no transposes.

// Im2Col3x3 writes the (c*9, h*w) patch matrix of the image x (c, h, w) into
// col. A patch row is its channel's plane shifted by (ky-1, kx-1): one
// block copy over the rows that stay inside the image, then zeros in the
// column the horizontal shift brings in. Row by row, the copies of 8-32
// values cost more in calls than in bytes.
func Im2Col3x3[T Float](x []T, c, h, w int, col []T) {
	hw := h * w
	for ci := 0; ci < c; ci++ {
		plane := x[ci*hw : (ci+1)*hw]
		for ky := 0; ky < 3; ky++ {
			// Output rows [ylo, yhi) read source rows y+ky-1 inside the image.
			ylo, yhi := max(0, 1-ky), min(h, h+1-ky)
			base := (ylo + ky - 1) * w
			for kx := 0; kx < 3; kx++ {
				row := col[(ci*9+ky*3+kx)*hw : (ci*9+ky*3+kx+1)*hw]
				clear(row[:min(ylo, yhi)*w])
				clear(row[yhi*w:])
				dst := row[ylo*w : max(ylo, yhi)*w]
				n := len(dst)
				if n == 0 {
					continue // h = 1: no row stays inside
				}
				switch kx {
				case 0: // dst[y, x] = plane[y+ky-1, x-1], 0 at x = 0
					copy(dst[1:], plane[base:base+n-1])
					for i := 0; i < n; i += w {
						dst[i] = 0
					}
				case 1:
					copy(dst, plane[base:base+n])
				case 2: // dst[y, x] = plane[y+ky-1, x+1], 0 at x = w-1
					copy(dst[:n-1], plane[base+1:base+n])
					for i := w - 1; i < n; i += w {
						dst[i] = 0
					}
				}
			}
		}
	}
}

// Col2Im3x3 is the adjoint of Im2Col3x3: it sums the patch-matrix gradient
// dcol (c*9, h*w) back onto the image gradient dx (c, h, w), overwriting dx.
// It also overwrites dcol, a scratch buffer at every call site: a shifted
// patch row is added as one block, after zeroing its entries in the
// column the shift pushes out (which would otherwise land on the
// neighbouring row). Adding those zeros leaves every sum as the row-by-row
// loop gives it, bit for bit.
func Col2Im3x3[T Float](dcol []T, c, h, w int, dx []T) {
	hw := h * w
	clear(dx[:c*hw])
	for ci := 0; ci < c; ci++ {
		plane := dx[ci*hw : (ci+1)*hw]
		for ky := 0; ky < 3; ky++ {
			ylo, yhi := max(0, 1-ky), min(h, h+1-ky)
			base := (ylo + ky - 1) * w
			for kx := 0; kx < 3; kx++ {
				row := dcol[(ci*9+ky*3+kx)*hw : (ci*9+ky*3+kx+1)*hw]
				src := row[ylo*w : max(ylo, yhi)*w]
				n := len(src)
				if n == 0 {
					continue
				}
				dst := plane[base : base+n]
				switch kx {
				case 0: // dst[x-1] += src[x] for x >= 1
					for i := w; i < n; i += w {
						src[i] = 0
					}
					Add(dst[:n-1], src[1:])
				case 1:
					Add(dst, src)
				case 2: // dst[x+1] += src[x] for x < w-1
					for i := w - 1; i < n-1; i += w {
						src[i] = 0
					}
					Add(dst[1:], src[:n-1])
				}
			}
		}
	}
}

// Add sets dst[i] += src[i]. Its body is at the inliner's budget (cost
// 80): the per-token adds of 8 in models rely on its being inlined, so
// check `go build -gcflags=-m ./models` after any change here.
func Add[T Float](dst, src []T) {
	if len(dst) < addVecMin {
		for i := range dst {
			dst[i] += src[i]
		}
	} else {
		addLong(dst, src)
	}
}

// A pool's pattern byte says which of its four inputs won (0..3 as
// dy*2+dx, bits 0-1) and whether the ReLU after it passes (bit 2). The
// backward pass reads only these bytes, so holding them fixed holds the
// network on one smooth piece of its loss (see models.Piecewise).
const (
	poolArgMask   = 3
	poolActiveBit = 4
)

// BiasReLUPool2 applies bias, ReLU and 2x2 max-pooling (stride 2) to the
// convolution output y (c, h, w) of one image, writing the pooled map out
// (c, h/2, w/2) and each pool's pattern byte into arg. ReLU commutes with
// the max, so it is applied to the pooled value only.
func BiasReLUPool2[T Float](y []T, bias []T, c, h, w int, out []T, arg []uint8) {
	ho, wo := h/2, w/2
	for ci := 0; ci < c; ci++ {
		b := bias[ci]
		plane := y[ci*h*w : (ci+1)*h*w]
		o := out[ci*ho*wo : (ci+1)*ho*wo]
		ag := arg[ci*ho*wo : (ci+1)*ho*wo]
		for i := 0; i < ho; i++ {
			r0 := plane[2*i*w : (2*i+1)*w]
			r1 := plane[(2*i+1)*w : (2*i+2)*w]
			for j := 0; j < wo; j++ {
				// Branch-free: on conv outputs the comparisons are
				// unpredictable, and mispredicted branches cost more
				// than the rest of the loop.
				// Ties go to the first maximum, as a strict > scan finds.
				v0, v1, v2, v3 := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
				a01, m01 := b2u(v1 > v0), max(v0, v1)
				a23, m23 := 2+b2u(v3 > v2), max(v2, v3)
				up := b2u(m23 > m01)
				a := a01 + up*(a23-a01)
				m := max(m01, m23) + b
				o[i*wo+j] = max(m, 0)
				ag[i*wo+j] = a | b2u(m > 0)<<2
			}
		}
	}
}

// BiasPool2Frozen is BiasReLUPool2 with the pattern bytes arg given rather
// than computed: each pool passes its recorded winner plus bias if its
// recorded ReLU was active, and 0 if not, whatever the values are now.
func BiasPool2Frozen[T Float](y []T, bias []T, c, h, w int, out []T, arg []uint8) {
	ho, wo := h/2, w/2
	for ci := 0; ci < c; ci++ {
		b := bias[ci]
		plane := y[ci*h*w : (ci+1)*h*w]
		o := out[ci*ho*wo : (ci+1)*ho*wo]
		ag := arg[ci*ho*wo : (ci+1)*ho*wo]
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				a := ag[i*wo+j]
				if a&poolActiveBit == 0 {
					o[i*wo+j] = 0
					continue
				}
				o[i*wo+j] = plane[(2*i+int(a>>1&1))*w+2*j+int(a&1)] + b
			}
		}
	}
}

// BiasReLUPool2Grad is the gradient of BiasReLUPool2 (or BiasPool2Frozen):
// given each pool's pattern byte and the gradient dout of its output, it
// writes the gradient of the convolution output into dy (c, h*w) and its
// transpose into dyT (h*w, c), and adds the bias gradient into dbias. Only
// the winner of a pool whose ReLU is active receives gradient.
func BiasReLUPool2Grad[T Float](arg []uint8, dout []T, c, h, w int, dy, dyT, dbias []T) {
	ho, wo := h/2, w/2
	clear(dy[:c*h*w])
	clear(dyT[:c*h*w])
	for ci := 0; ci < c; ci++ {
		var db T
		plane := dy[ci*h*w : (ci+1)*h*w]
		base := ci * ho * wo
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				p := base + i*wo + j
				if arg[p]&poolActiveBit == 0 {
					continue
				}
				g := dout[p]
				a := int(arg[p] & poolArgMask)
				px := (2*i+(a>>1))*w + 2*j + (a & 1)
				plane[px] = g
				dyT[px*c+ci] = g
				db += g
			}
		}
		dbias[ci] += db
	}
}

// b2u converts a comparison to 0 or 1; the compiler emits SETcc, no branch.
func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
