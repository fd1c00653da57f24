#include "textflag.h"

// Constants of exp32 (kern_math.go), as float32 bits.
DATA expc<>+0(SB)/4, $0x3fb8aa3b // log2e 1.4426950408889634
DATA expc<>+4(SB)/4, $0x4b400000 // shifter 12582912.0
DATA expc<>+8(SB)/4, $0x3f318000 // ln2hi 0.693359375
DATA expc<>+12(SB)/4, $0xb95e8083 // ln2lo -0.00021219444
DATA expc<>+16(SB)/4, $0x39506967 // p0 0.000198756915
DATA expc<>+20(SB)/4, $0x3ab743ce // p1 0.0013981999507
DATA expc<>+24(SB)/4, $0x3c088908 // p2 0.0083334519073
DATA expc<>+28(SB)/4, $0x3d2aa9c1 // p3 0.041665795894
DATA expc<>+32(SB)/4, $0x3e2aaaaa // p4 0.16666665459
DATA expc<>+36(SB)/4, $0x3f000000 // p5 0.50000001201
DATA expc<>+40(SB)/4, $0x3f800000 // one 1.0
DATA expc<>+44(SB)/4, $0x42b00000 // hi 88.0
DATA expc<>+48(SB)/4, $0xc2ae0000 // lo -87.0
GLOBL expc<>(SB), RODATA|NOPTR, $52

// 88.0 in all eight lanes, for VMINPS's memory operand.
DATA expv<>+0(SB)/4, $0x42b00000 // 88.0
DATA expv<>+4(SB)/4, $0x42b00000 // 88.0
DATA expv<>+8(SB)/4, $0x42b00000 // 88.0
DATA expv<>+12(SB)/4, $0x42b00000 // 88.0
DATA expv<>+16(SB)/4, $0x42b00000 // 88.0
DATA expv<>+20(SB)/4, $0x42b00000 // 88.0
DATA expv<>+24(SB)/4, $0x42b00000 // 88.0
DATA expv<>+28(SB)/4, $0x42b00000 // 88.0
GLOBL expv<>(SB), RODATA|NOPTR, $32

// func expSumAVX2(x []float32, shift float32) float32
//
// expSumAVX2 sets x[i] = exp32(x[i] - shift) eight at a time (len(x) must
// be a multiple of 8) and returns their sum. It is exp32 vectorised: the
// same range reduction and polynomial, with x < -87 giving 0 and NaN
// giving NaN.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS shift+24(FP), Y1
	VBROADCASTSS expc<>+0(SB), Y2
	VBROADCASTSS expc<>+4(SB), Y3
	VBROADCASTSS expc<>+8(SB), Y4
	VBROADCASTSS expc<>+12(SB), Y5
	VBROADCASTSS expc<>+48(SB), Y7
	VBROADCASTSS expc<>+40(SB), Y8
	VXORPS Y0, Y0, Y0
	CMPQ CX, $8
	JLT expsum_done

expsum_loop:
	VMOVUPS (SI), Y15
	VSUBPS Y1, Y15, Y15
	VCMPPS $3, Y15, Y15, Y6  // NaN lanes, so that NaN propagates:
	VANDPS Y15, Y6, Y6       // NaN there, +0 elsewhere, added at the end
	VCMPPS $13, Y7, Y15, Y10 // keep: x >= -87
	VMINPS expv<>+0(SB), Y15, Y15
	VMAXPS Y7, Y15, Y15
	VMOVAPS Y3, Y14
	VFMADD231PS Y2, Y15, Y14 // t = x log2e + shifter
	VSUBPS Y3, Y14, Y13      // fn = round(x log2e)
	VMOVAPS Y15, Y12
	VFNMADD231PS Y4, Y13, Y12 // r = x - fn ln2hi - fn ln2lo
	VFNMADD231PS Y5, Y13, Y12
	VBROADCASTSS expc<>+16(SB), Y11
	VBROADCASTSS expc<>+20(SB), Y9
	VFMADD213PS Y9, Y12, Y11
	VBROADCASTSS expc<>+24(SB), Y9
	VFMADD213PS Y9, Y12, Y11
	VBROADCASTSS expc<>+28(SB), Y9
	VFMADD213PS Y9, Y12, Y11
	VBROADCASTSS expc<>+32(SB), Y9
	VFMADD213PS Y9, Y12, Y11
	VBROADCASTSS expc<>+36(SB), Y9
	VFMADD213PS Y9, Y12, Y11
	VMULPS Y12, Y12, Y9
	VFMADD213PS Y12, Y9, Y11 // p r^2 + r
	VADDPS Y8, Y11, Y11
	VPSUBD Y3, Y14, Y14      // n = bits(t) - bits(shifter)
	VPSLLD $23, Y14, Y14
	VPADDD Y14, Y11, Y11     // scale by 2^n
	VANDPS Y10, Y11, Y11
	VADDPS Y6, Y11, Y11
	VMOVUPS Y11, (SI)
	VADDPS Y11, Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE expsum_loop

expsum_done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET
