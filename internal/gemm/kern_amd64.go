package gemm

import "golang.org/x/sys/cpu"

// useAsm reports whether the AVX2/FMA kernels can run here. A variable,
// so that the tests can run the portable path too.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func sgemmKern4x16(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func sgemmKern4x8(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func sgemmKern4x4(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32)

//go:noescape
func dgemmKern4x8(k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64)

//go:noescape
func dgemmKern4x4(k int, a *float64, rs, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64)
