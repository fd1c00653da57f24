//go:build !amd64

package gemm

// useAsm is false: the products go through gonum.
const useAsm = false

func sgemmPanel24(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int) {
	panic("unreachable")
}

func sgemmPanel16(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int) {
	panic("unreachable")
}

func sgemmPanel8(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int) {
	panic("unreachable")
}

func sgemmPanel8Tall(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int) {
	panic("unreachable")
}

func sgemmPanelMaskTall(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int, mask *int32) {
	panic("unreachable")
}

func sgemmPanelMask(mb, k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int, mask *int32) {
	panic("unreachable")
}

func dgemmPanel12(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int) {
	panic("unreachable")
}

func dgemmPanel8(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int) {
	panic("unreachable")
}

func dgemmPanel4(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int) {
	panic("unreachable")
}

func dgemmPanel4Tall(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int) {
	panic("unreachable")
}

func dgemmPanelMaskTall(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int, mask *int64) {
	panic("unreachable")
}

func dgemmPanelMask(mb, k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int, mask *int64) {
	panic("unreachable")
}

func dtranspose4(rb, cb int, dst *float64, ldd int, src *float64, lds int) {
	panic("unreachable")
}

func stranspose4(rb, cb int, dst *float32, ldd int, src *float32, lds int) {
	panic("unreachable")
}

func sdotCol(mb, k int, a *float32, rs int, x *float32, c *float32, ldc int, alpha float32, store int, kmask *int32) {
	panic("unreachable")
}

func ddotCol(mb, k int, a *float64, rs int, x *float64, c *float64, ldc int, alpha float64, store int, kmask *int64) {
	panic("unreachable")
}

func saxpyCol(mb, k int, a *float32, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int) {
	panic("unreachable")
}

func daxpyCol(mb, k int, a *float64, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int) {
	panic("unreachable")
}
