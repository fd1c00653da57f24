//go:build !amd64

package gemm

// useAsm is false: the products go through gonum.
const useAsm = false

func sgemmKern4x16(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32) {
	panic("unreachable")
}

func sgemmKern4x8(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32) {
	panic("unreachable")
}

func sgemmKern4x4(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32) {
	panic("unreachable")
}

func dgemmKern4x8(k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64) {
	panic("unreachable")
}

func dgemmKern4x4(k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64) {
	panic("unreachable")
}
