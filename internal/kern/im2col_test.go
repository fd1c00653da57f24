package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

// im2colRows and col2imRows are Im2Col3x3 and Col2Im3x3 row by row, as
// they were written first: the references the block versions must match
// bit for bit.
func im2colRows(x []float32, c, h, w int, col []float32) {
	hw := h * w
	for ci := 0; ci < c; ci++ {
		for ky := 0; ky < 3; ky++ {
			for kx := 0; kx < 3; kx++ {
				row := col[(ci*9+ky*3+kx)*hw:]
				for y := 0; y < h; y++ {
					for xx := 0; xx < w; xx++ {
						sy, sx := y+ky-1, xx+kx-1
						var v float32
						if sy >= 0 && sy < h && sx >= 0 && sx < w {
							v = x[ci*hw+sy*w+sx]
						}
						row[y*w+xx] = v
					}
				}
			}
		}
	}
}

func col2imRows(dcol []float32, c, h, w int, dx []float32) {
	hw := h * w
	clear(dx[:c*hw])
	for ci := 0; ci < c; ci++ {
		for ky := 0; ky < 3; ky++ {
			for kx := 0; kx < 3; kx++ {
				row := dcol[(ci*9+ky*3+kx)*hw:]
				for y := 0; y < h; y++ {
					for xx := 0; xx < w; xx++ {
						sy, sx := y+ky-1, xx+kx-1
						if sy >= 0 && sy < h && sx >= 0 && sx < w {
							dx[ci*hw+sy*w+sx] += row[y*w+xx]
						}
					}
				}
			}
		}
	}
}

func TestIm2ColCol2ImBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for _, sz := range [][3]int{{1, 1, 1}, {1, 2, 3}, {3, 32, 32}, {2, 5, 7}, {16, 16, 16}, {4, 8, 1}, {1, 1, 9}} {
		c, h, w := sz[0], sz[1], sz[2]
		x := make([]float32, c*h*w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		got, want := make([]float32, c*9*h*w), make([]float32, c*9*h*w)
		for i := range got {
			got[i] = float32(math.NaN()) // every entry must be written
		}
		Im2Col3x3(x, c, h, w, got)
		im2colRows(x, c, h, w, want)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("im2col %v: entry %d = %g, want %g", sz, i, got[i], want[i])
			}
		}
		dcol := make([]float32, c*9*h*w)
		for i := range dcol {
			dcol[i] = float32(rng.NormFloat64())
		}
		ref := append([]float32(nil), dcol...)
		dx, wantDx := make([]float32, c*h*w), make([]float32, c*h*w)
		for i := range dx {
			dx[i] = 7 // overwritten, not added to
		}
		Col2Im3x3(dcol, c, h, w, dx)
		col2imRows(ref, c, h, w, wantDx)
		for i := range dx {
			if math.Float32bits(dx[i]) != math.Float32bits(wantDx[i]) {
				t.Fatalf("col2im %v: entry %d = %g, want %g", sz, i, dx[i], wantDx[i])
			}
		}
	}
}
