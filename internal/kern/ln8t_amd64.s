#include "textflag.h"

// Constants of layerNorm8TAVX2, eight lanes each: 1/8, LayerNorm's
// epsilon 1e-5 (as lnc<> in math_amd64.s), 1.
DATA ln8tc<>+0(SB)/4, $0x3e000000
DATA ln8tc<>+4(SB)/4, $0x3e000000
DATA ln8tc<>+8(SB)/4, $0x3e000000
DATA ln8tc<>+12(SB)/4, $0x3e000000
DATA ln8tc<>+16(SB)/4, $0x3e000000
DATA ln8tc<>+20(SB)/4, $0x3e000000
DATA ln8tc<>+24(SB)/4, $0x3e000000
DATA ln8tc<>+28(SB)/4, $0x3e000000
DATA ln8tc<>+32(SB)/4, $0x3727c5ac
DATA ln8tc<>+36(SB)/4, $0x3727c5ac
DATA ln8tc<>+40(SB)/4, $0x3727c5ac
DATA ln8tc<>+44(SB)/4, $0x3727c5ac
DATA ln8tc<>+48(SB)/4, $0x3727c5ac
DATA ln8tc<>+52(SB)/4, $0x3727c5ac
DATA ln8tc<>+56(SB)/4, $0x3727c5ac
DATA ln8tc<>+60(SB)/4, $0x3727c5ac
DATA ln8tc<>+64(SB)/4, $0x3f800000
GLOBL ln8tc<>(SB), RODATA|NOPTR, $68

// func layerNorm8TAVX2(x, gain, bias, xhat, rstd, y []float32, m int)
//
// layerNorm8TAVX2 is layerNorm8AVX2 (math_amd64.s) eight rows at a time,
// m a multiple of 8: the 8x8 block is transposed so that each lane holds
// a row, the mean and variance are sums of the columns in the order of
// layerNorm8AVX2's horizontal steps (((x0+x4)+(x2+x6))+((x1+x5)+(x3+x7))),
// and the rows are transposed back, xhat stored and y = xhat gain + bias
// fused as there: the same operations in the same order, bit for bit,
// with one square root and division per eight rows and no horizontal
// steps, whose latency bounded the row-per-vector kernel.
TEXT ·layerNorm8TAVX2(SB), NOSPLIT, $0-152
	MOVQ x_base+0(FP), SI
	MOVQ gain_base+24(FP), AX
	MOVQ bias_base+48(FP), BX
	MOVQ xhat_base+72(FP), DI
	MOVQ rstd_base+96(FP), DX
	MOVQ y_base+120(FP), R8
	MOVQ m+144(FP), CX
	SHRQ $3, CX
	VMOVUPS (AX), Y14
	VMOVUPS (BX), Y15
	TESTQ CX, CX
	JZ ln8t_done

ln8t_loop:
	// Rows 0-3 and 4-7 in the two lanes, then in-lane 4x4 transposes:
	// Y0..Y7 are the columns.
	VMOVUPS (SI), X0
	VINSERTF128 $1, 128(SI), Y0, Y0
	VMOVUPS 32(SI), X1
	VINSERTF128 $1, 160(SI), Y1, Y1
	VMOVUPS 64(SI), X2
	VINSERTF128 $1, 192(SI), Y2, Y2
	VMOVUPS 96(SI), X3
	VINSERTF128 $1, 224(SI), Y3, Y3
	VMOVUPS 16(SI), X4
	VINSERTF128 $1, 144(SI), Y4, Y4
	VMOVUPS 48(SI), X5
	VINSERTF128 $1, 176(SI), Y5, Y5
	VMOVUPS 80(SI), X6
	VINSERTF128 $1, 208(SI), Y6, Y6
	VMOVUPS 112(SI), X7
	VINSERTF128 $1, 240(SI), Y7, Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPD Y10, Y8, Y0
	VUNPCKHPD Y10, Y8, Y1
	VUNPCKLPD Y11, Y9, Y2
	VUNPCKHPD Y11, Y9, Y3
	VUNPCKLPS Y5, Y4, Y8
	VUNPCKHPS Y5, Y4, Y9
	VUNPCKLPS Y7, Y6, Y10
	VUNPCKHPS Y7, Y6, Y11
	VUNPCKLPD Y10, Y8, Y4
	VUNPCKHPD Y10, Y8, Y5
	VUNPCKLPD Y11, Y9, Y6
	VUNPCKHPD Y11, Y9, Y7

	// The mean, and each column less it.
	VADDPS Y4, Y0, Y8
	VADDPS Y6, Y2, Y9
	VADDPS Y9, Y8, Y8
	VADDPS Y5, Y1, Y9
	VADDPS Y7, Y3, Y10
	VADDPS Y10, Y9, Y9
	VADDPS Y9, Y8, Y8
	VMULPS ln8tc<>+0(SB), Y8, Y8
	VSUBPS Y8, Y0, Y0
	VSUBPS Y8, Y1, Y1
	VSUBPS Y8, Y2, Y2
	VSUBPS Y8, Y3, Y3
	VSUBPS Y8, Y4, Y4
	VSUBPS Y8, Y5, Y5
	VSUBPS Y8, Y6, Y6
	VSUBPS Y8, Y7, Y7

	// The variance and rstd = 1/sqrt(var+eps).
	VMULPS Y0, Y0, Y8
	VMULPS Y4, Y4, Y9
	VADDPS Y9, Y8, Y8
	VMULPS Y2, Y2, Y9
	VMULPS Y6, Y6, Y10
	VADDPS Y10, Y9, Y9
	VADDPS Y9, Y8, Y8
	VMULPS Y1, Y1, Y9
	VMULPS Y5, Y5, Y10
	VADDPS Y10, Y9, Y9
	VMULPS Y3, Y3, Y10
	VMULPS Y7, Y7, Y11
	VADDPS Y11, Y10, Y10
	VADDPS Y10, Y9, Y9
	VADDPS Y9, Y8, Y8
	VMULPS ln8tc<>+0(SB), Y8, Y8
	VADDPS ln8tc<>+32(SB), Y8, Y8
	VSQRTPS Y8, Y8
	VBROADCASTSS ln8tc<>+64(SB), Y9
	VDIVPS Y8, Y9, Y8
	VMOVUPS Y8, (DX)

	// xhat, and back to rows: row i and i+4 from the i-th outputs of the
	// two in-lane transposes; y = xhat gain + bias.
	VMULPS Y8, Y0, Y0
	VMULPS Y8, Y1, Y1
	VMULPS Y8, Y2, Y2
	VMULPS Y8, Y3, Y3
	VMULPS Y8, Y4, Y4
	VMULPS Y8, Y5, Y5
	VMULPS Y8, Y6, Y6
	VMULPS Y8, Y7, Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPD Y10, Y8, Y0
	VUNPCKHPD Y10, Y8, Y1
	VUNPCKLPD Y11, Y9, Y2
	VUNPCKHPD Y11, Y9, Y3
	VUNPCKLPS Y5, Y4, Y8
	VUNPCKHPS Y5, Y4, Y9
	VUNPCKLPS Y7, Y6, Y10
	VUNPCKHPS Y7, Y6, Y11
	VUNPCKLPD Y10, Y8, Y4
	VUNPCKHPD Y10, Y8, Y5
	VUNPCKLPD Y11, Y9, Y6
	VUNPCKHPD Y11, Y9, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x31, Y4, Y0, Y9
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 128(DI)
	VFMADD213PS Y15, Y14, Y8
	VFMADD213PS Y15, Y14, Y9
	VMOVUPS Y8, (R8)
	VMOVUPS Y9, 128(R8)
	VPERM2F128 $0x20, Y5, Y1, Y8
	VPERM2F128 $0x31, Y5, Y1, Y9
	VMOVUPS Y8, 32(DI)
	VMOVUPS Y9, 160(DI)
	VFMADD213PS Y15, Y14, Y8
	VFMADD213PS Y15, Y14, Y9
	VMOVUPS Y8, 32(R8)
	VMOVUPS Y9, 160(R8)
	VPERM2F128 $0x20, Y6, Y2, Y8
	VPERM2F128 $0x31, Y6, Y2, Y9
	VMOVUPS Y8, 64(DI)
	VMOVUPS Y9, 192(DI)
	VFMADD213PS Y15, Y14, Y8
	VFMADD213PS Y15, Y14, Y9
	VMOVUPS Y8, 64(R8)
	VMOVUPS Y9, 192(R8)
	VPERM2F128 $0x20, Y7, Y3, Y8
	VPERM2F128 $0x31, Y7, Y3, Y9
	VMOVUPS Y8, 96(DI)
	VMOVUPS Y9, 224(DI)
	VFMADD213PS Y15, Y14, Y8
	VFMADD213PS Y15, Y14, Y9
	VMOVUPS Y8, 96(R8)
	VMOVUPS Y9, 224(R8)

	ADDQ $256, SI
	ADDQ $256, DI
	ADDQ $256, R8
	ADDQ $32, DX
	DECQ CX
	JNZ ln8t_loop

ln8t_done:
	VZEROUPPER
	RET

