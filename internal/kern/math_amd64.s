#include "textflag.h"

// Constants of exp32 (math.go), as float32 bits.
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
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// Constants of geluDerivAVX2, as float32 bits.
DATA geluc<>+0(SB)/4, $0x3fcc422a // c 2*geluC = 1.5957692
DATA geluc<>+4(SB)/4, $0x3d922279 // c3 2*geluC*0.044715 = 0.071354814
DATA geluc<>+8(SB)/4, $0x3fcc422a // h4 4*0.5*geluC = 1.5957692
DATA geluc<>+12(SB)/4, $0x3e5b33b6 // h34 4*0.5*geluC*3*0.044715 = 0.21406445
GLOBL geluc<>(SB), RODATA|NOPTR, $16

// func geluDerivAVX2(x, y, dd []float32)
//
// geluDerivAVX2 is geluForwardDeriv32 eight at a time (len(x) must be a
// multiple of 8, y and dd at least as long): u = x (c + c3 x^2), e =
// exp32(u) as in expSumAVX2, r = 1/(e+1), q = 1-r, y = x q and dd = q + x
// r q (h4 + h34 x^2).
TEXT ·geluDerivAVX2(SB), NOSPLIT, $0-72
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	MOVQ dd_base+48(FP), DX
	VBROADCASTSS expc<>+0(SB), Y2
	VBROADCASTSS expc<>+4(SB), Y3
	VBROADCASTSS expc<>+8(SB), Y4
	VBROADCASTSS expc<>+12(SB), Y5
	VBROADCASTSS expc<>+48(SB), Y7
	VBROADCASTSS expc<>+40(SB), Y8
	CMPQ CX, $8
	JLT gelu_done

gelu_loop:
	VMOVUPS (SI), Y0           // x
	VMULPS Y0, Y0, Y1          // x^2
	VBROADCASTSS geluc<>+4(SB), Y15
	VBROADCASTSS geluc<>+0(SB), Y9
	VFMADD213PS Y9, Y1, Y15    // c + c3 x^2
	VMULPS Y0, Y15, Y15        // u
	VCMPPS $3, Y15, Y15, Y6    // NaN lanes
	VANDPS Y15, Y6, Y6
	VCMPPS $13, Y7, Y15, Y10   // keep: u >= -87
	VMINPS expv<>+0(SB), Y15, Y15
	VMAXPS Y7, Y15, Y15
	VMOVAPS Y3, Y14
	VFMADD231PS Y2, Y15, Y14
	VSUBPS Y3, Y14, Y13
	VMOVAPS Y15, Y12
	VFNMADD231PS Y4, Y13, Y12
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
	VFMADD213PS Y12, Y9, Y11
	VADDPS Y8, Y11, Y11
	VPSUBD Y3, Y14, Y14
	VPSLLD $23, Y14, Y14
	VPADDD Y14, Y11, Y11
	VANDPS Y10, Y11, Y11
	VADDPS Y6, Y11, Y11        // e
	VADDPS Y8, Y11, Y11        // e + 1
	VDIVPS Y11, Y8, Y12        // r = 1/(e+1)
	VSUBPS Y12, Y8, Y13        // q = 1 - r
	VMULPS Y13, Y0, Y14        // y = x q
	VMOVUPS Y14, (DI)
	VMULPS Y12, Y14, Y14       // x q r
	VBROADCASTSS geluc<>+12(SB), Y15
	VBROADCASTSS geluc<>+8(SB), Y9
	VFMADD213PS Y9, Y1, Y15    // h4 + h34 x^2
	VFMADD213PS Y13, Y14, Y15  // q + x r q (...)
	VMOVUPS Y15, (DX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	CMPQ CX, $8
	JGE gelu_loop

gelu_done:
	VZEROUPPER
	RET

// func sumRowsAVX2(dst, x []float32, m, k int)
//
// sumRowsAVX2 adds the m rows of x, row i at x[i*k:], into dst, whose
// length is a multiple of 8 and at most k: eight columns at a time, with
// four running sums over the rows.
TEXT ·sumRowsAVX2(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8
	MOVQ x_base+24(FP), SI
	MOVQ m+48(FP), R9
	MOVQ k+56(FP), BX
	SHLQ $2, BX

sumrows_col:
	CMPQ R8, $8
	JLT sumrows_done
	MOVQ SI, R11
	MOVQ R9, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

sumrows_row4:
	CMPQ CX, $4
	JLT sumrows_row1
	VADDPS (R11), Y0, Y0
	VADDPS (R11)(BX*1), Y1, Y1
	LEAQ (R11)(BX*2), R12
	VADDPS (R12), Y2, Y2
	VADDPS (R12)(BX*1), Y3, Y3
	LEAQ (R12)(BX*2), R11
	SUBQ $4, CX
	JMP sumrows_row4

sumrows_row1:
	TESTQ CX, CX
	JZ sumrows_fin
	VADDPS (R11), Y0, Y0
	ADDQ BX, R11
	DECQ CX
	JMP sumrows_row1

sumrows_fin:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, R8
	JMP sumrows_col

sumrows_done:
	VZEROUPPER
	RET

// func dotRowsAVX2(dst, x, y []float32, m, k int)
//
// dotRowsAVX2 adds the column sums of x*y, m rows of stride k, into dst,
// as sumRowsAVX2.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8
	MOVQ x_base+24(FP), SI
	MOVQ y_base+48(FP), DX
	MOVQ m+72(FP), R9
	MOVQ k+80(FP), BX
	SHLQ $2, BX

dotrows_col:
	CMPQ R8, $8
	JLT dotrows_done
	MOVQ SI, R11
	MOVQ DX, R13
	MOVQ R9, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dotrows_row4:
	CMPQ CX, $4
	JLT dotrows_row1
	VMOVUPS (R11), Y4
	VFMADD231PS (R13), Y4, Y0
	VMOVUPS (R11)(BX*1), Y5
	VFMADD231PS (R13)(BX*1), Y5, Y1
	LEAQ (R11)(BX*2), R11
	LEAQ (R13)(BX*2), R13
	VMOVUPS (R11), Y6
	VFMADD231PS (R13), Y6, Y2
	VMOVUPS (R11)(BX*1), Y7
	VFMADD231PS (R13)(BX*1), Y7, Y3
	LEAQ (R11)(BX*2), R11
	LEAQ (R13)(BX*2), R13
	SUBQ $4, CX
	JMP dotrows_row4

dotrows_row1:
	TESTQ CX, CX
	JZ dotrows_fin
	VMOVUPS (R11), Y4
	VFMADD231PS (R13), Y4, Y0
	ADDQ BX, R11
	ADDQ BX, R13
	DECQ CX
	JMP dotrows_row1

dotrows_fin:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	SUBQ $8, R8
	JMP dotrows_col

dotrows_done:
	VZEROUPPER
	RET

// Column indices 0..7 and the step 8, as int32, and -inf, for
// causalShiftAVX2.
DATA causc<>+0(SB)/4, $0
DATA causc<>+4(SB)/4, $1
DATA causc<>+8(SB)/4, $2
DATA causc<>+12(SB)/4, $3
DATA causc<>+16(SB)/4, $4
DATA causc<>+20(SB)/4, $5
DATA causc<>+24(SB)/4, $6
DATA causc<>+28(SB)/4, $7
DATA causc<>+32(SB)/4, $8
DATA causc<>+36(SB)/4, $0xff800000
GLOBL causc<>(SB), RODATA|NOPTR, $40

// func causalShiftAVX2(s []float32, rows, t int)
//
// causalShiftAVX2 is CausalSoftmax's first pass for t a positive multiple
// of 8: row r of s (rows rows of t, r%t its row in a (t, t) matrix) gets
// its first r%t+1 entries less their max and the rest -inf. It takes the
// max over the row with the masked entries replaced by -inf, then
// subtracts and masks in a second pass.
TEXT ·causalShiftAVX2(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ rows+24(FP), R9
	MOVQ t+32(FP), BX
	VMOVDQU causc<>+0(SB), Y6
	VPBROADCASTD causc<>+32(SB), Y5
	VBROADCASTSS causc<>+36(SB), Y7
	XORQ R10, R10

causal_row:
	TESTQ R9, R9
	JZ causal_done
	VMOVQ R10, X4
	VPBROADCASTD X4, Y4      // the row's index i in its matrix
	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3           // column indices
	VMOVAPS Y7, Y0           // running max

causal_max:
	VMOVUPS (R11), Y1
	VPCMPGTD Y4, Y3, Y2      // masked: column > i
	VBLENDVPS Y2, Y7, Y1, Y1
	VMAXPS Y1, Y0, Y0
	VPADDD Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $8, CX
	JNZ causal_max

	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VBROADCASTSS X0, Y0

	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3

causal_sub:
	VMOVUPS (R11), Y1
	VSUBPS Y0, Y1, Y1
	VPCMPGTD Y4, Y3, Y2
	VBLENDVPS Y2, Y7, Y1, Y1
	VMOVUPS Y1, (R11)
	VPADDD Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $8, CX
	JNZ causal_sub

	LEAQ (SI)(BX*4), SI
	INCQ R10
	CMPQ R10, BX
	JLT causal_next
	XORQ R10, R10

causal_next:
	DECQ R9
	JMP causal_row

causal_done:
	VZEROUPPER
	RET

// Constants of layerNorm8AVX2: 1/8, LayerNorm's epsilon 1e-5, 1.
DATA lnc<>+0(SB)/4, $0x3e000000
DATA lnc<>+4(SB)/4, $0x3727c5ac
DATA lnc<>+8(SB)/4, $0x3f800000
GLOBL lnc<>(SB), RODATA|NOPTR, $12

// func layerNorm8AVX2(x, gain, bias, xhat, rstd, y []float32, m int)
//
// layerNorm8AVX2 is layerNormForward8 one row of 8 per vector: the mean
// and variance by horizontal sums, 1/sqrt(var+eps) rounded as the Go
// version rounds it, xhat = (x-mean) rstd and y = xhat gain + bias.
TEXT ·layerNorm8AVX2(SB), NOSPLIT, $0-152
	MOVQ x_base+0(FP), SI
	MOVQ gain_base+24(FP), AX
	MOVQ bias_base+48(FP), BX
	MOVQ xhat_base+72(FP), DI
	MOVQ rstd_base+96(FP), DX
	MOVQ y_base+120(FP), R8
	MOVQ m+144(FP), CX
	VMOVUPS (AX), Y10
	VMOVUPS (BX), Y11
	VBROADCASTSS lnc<>+0(SB), Y12
	VMOVSS lnc<>+4(SB), X13
	VMOVSS lnc<>+8(SB), X14
	TESTQ CX, CX
	JZ ln8_done

ln8_loop:
	VMOVUPS (SI), Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X1
	VPERMILPS $0x4e, X1, X2
	VADDPS X2, X1, X1
	VPERMILPS $0xb1, X1, X2
	VADDPS X2, X1, X1
	VBROADCASTSS X1, Y1
	VMULPS Y12, Y1, Y1       // mean
	VSUBPS Y1, Y0, Y0        // c = x - mean
	VMULPS Y0, Y0, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPS X3, X2, X3
	VPERMILPS $0x4e, X3, X2
	VADDPS X2, X3, X3
	VPERMILPS $0xb1, X3, X2
	VADDPS X2, X3, X3
	VMULSS X12, X3, X3       // variance
	VADDSS X13, X3, X3
	VSQRTSS X3, X3, X3
	VDIVSS X3, X14, X3       // rstd
	VMOVSS X3, (DX)
	VBROADCASTSS X3, Y3
	VMULPS Y3, Y0, Y0        // xhat
	VMOVUPS Y0, (DI)
	VFMADD213PS Y11, Y10, Y0 // xhat gain + bias
	VMOVUPS Y0, (R8)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $4, DX
	DECQ CX
	JNZ ln8_loop

ln8_done:
	VZEROUPPER
	RET

// func layerNormRows8AVX2(dy, gain, xhat, rstd, dx []float32, m int)
//
// layerNormRows8AVX2 is layerNormRows8 one row of 8 per vector: with g =
// dy gain, dx += rstd (g - mean(g) - xhat mean(g xhat)).
TEXT ·layerNormRows8AVX2(SB), NOSPLIT, $0-128
	MOVQ dy_base+0(FP), SI
	MOVQ gain_base+24(FP), AX
	MOVQ xhat_base+48(FP), BX
	MOVQ rstd_base+72(FP), DX
	MOVQ dx_base+96(FP), DI
	MOVQ m+120(FP), CX
	VMOVUPS (AX), Y10
	VBROADCASTSS lnc<>+0(SB), Y12
	TESTQ CX, CX
	JZ lnr8_done

lnr8_loop:
	VMULPS (SI), Y10, Y0     // g
	VMOVUPS (BX), Y4         // xhat
	VMULPS Y4, Y0, Y5        // g xhat
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X1
	VEXTRACTF128 $1, Y5, X6
	VADDPS X6, X5, X6
	VPERMILPS $0x4e, X1, X2
	VADDPS X2, X1, X1
	VPERMILPS $0x4e, X6, X7
	VADDPS X7, X6, X6
	VPERMILPS $0xb1, X1, X2
	VADDPS X2, X1, X1
	VPERMILPS $0xb1, X6, X7
	VADDPS X7, X6, X6
	VBROADCASTSS X1, Y1
	VMULPS Y12, Y1, Y1       // mean(g)
	VBROADCASTSS X6, Y6
	VMULPS Y12, Y6, Y6       // mean(g xhat)
	VSUBPS Y1, Y0, Y0
	VFNMADD231PS Y6, Y4, Y0  // g - mean(g) - xhat mean(g xhat)
	VBROADCASTSS (DX), Y3
	VFMADD213PS (DI), Y3, Y0 // dx + rstd (...)
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, BX
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ lnr8_loop

lnr8_done:
	VZEROUPPER
	RET

// func rowShiftAVX2(x []float32, m, k int)
//
// rowShiftAVX2 subtracts from each of the m rows of k (k >= 8) of x its
// max: eight columns at a time, the last k%8 one at a time.
TEXT ·rowShiftAVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ m+24(FP), R9
	MOVQ k+32(FP), BX
	VBROADCASTSS causc<>+36(SB), Y7
	TESTQ R9, R9
	JZ rowshift_done

rowshift_row:
	VMOVAPS Y7, Y0
	MOVQ SI, R11
	MOVQ BX, CX

rowshift_vmax:
	CMPQ CX, $8
	JLT rowshift_reduce
	VMAXPS (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $8, CX
	JMP rowshift_vmax

rowshift_reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0

rowshift_smax:
	TESTQ CX, CX
	JZ rowshift_sub0
	VMAXSS (R11), X0, X0
	ADDQ $4, R11
	DECQ CX
	JMP rowshift_smax

rowshift_sub0:
	VBROADCASTSS X0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

rowshift_vsub:
	CMPQ CX, $8
	JLT rowshift_ssub
	VMOVUPS (R11), Y1
	VSUBPS Y0, Y1, Y1
	VMOVUPS Y1, (R11)
	ADDQ $32, R11
	SUBQ $8, CX
	JMP rowshift_vsub

rowshift_ssub:
	TESTQ CX, CX
	JZ rowshift_next
	VMOVSS (R11), X1
	VSUBSS X0, X1, X1
	VMOVSS X1, (R11)
	ADDQ $4, R11
	DECQ CX
	JMP rowshift_ssub

rowshift_next:
	LEAQ (SI)(BX*4), SI
	DECQ R9
	JNZ rowshift_row

rowshift_done:
	VZEROUPPER
	RET

// func causalGradAVX2(p, dp []float32, t int, scale float32)
//
// causalGradAVX2 is CausalSoftmaxGrad for one (t, t) matrix, t a positive
// multiple of 8: row i of dp becomes scale p (dp - sum_j p_j dp_j) on its
// first i+1 entries and 0 on the rest. The masked entries of p must be 0
// (as CausalSoftmax leaves them): the dot product runs over whole rows,
// with the masked entries of dp replaced by 0.
TEXT ·causalGradAVX2(SB), NOSPLIT, $0-60
	MOVQ p_base+0(FP), SI
	MOVQ dp_base+24(FP), DI
	MOVQ t+48(FP), BX
	VBROADCASTSS scale+56(FP), Y8
	VMOVDQU causc<>+0(SB), Y6
	VPBROADCASTD causc<>+32(SB), Y5
	VXORPS Y9, Y9, Y9
	XORQ R10, R10

cgrad_row:
	CMPQ R10, BX
	JGE cgrad_done
	VMOVQ R10, X4
	VPBROADCASTD X4, Y4
	MOVQ SI, R11
	MOVQ DI, R12
	MOVQ BX, CX
	VXORPS Y0, Y0, Y0
	VMOVDQA Y6, Y3

cgrad_dot:
	VMOVUPS (R12), Y1
	VPCMPGTD Y4, Y3, Y2      // masked dp taken as 0, whatever it holds
	VBLENDVPS Y2, Y9, Y1, Y1
	VFMADD231PS (R11), Y1, Y0
	VPADDD Y5, Y3, Y3
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $8, CX
	JNZ cgrad_dot

	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VADDPS X1, X0, X0
	VBROADCASTSS X0, Y0

	MOVQ SI, R11
	MOVQ DI, R12
	MOVQ BX, CX
	VMOVDQA Y6, Y3

cgrad_out:
	VMULPS (R11), Y8, Y1     // scale p
	VMOVUPS (R12), Y2
	VSUBPS Y0, Y2, Y2        // dp - dot
	VMULPS Y2, Y1, Y1
	VPCMPGTD Y4, Y3, Y2      // masked: column > i
	VBLENDVPS Y2, Y9, Y1, Y1
	VMOVUPS Y1, (R12)
	VPADDD Y5, Y3, Y3
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $8, CX
	JNZ cgrad_out

	LEAQ (SI)(BX*4), SI
	LEAQ (DI)(BX*4), DI
	INCQ R10
	JMP cgrad_row

cgrad_done:
	VZEROUPPER
	RET

// func causalNormAVX2(s []float32, rows, t int)
//
// causalNormAVX2 is CausalSoftmax's last pass for t a positive multiple
// of 8: row r of s, its masked entries 0, is divided by its sum, and its
// masked entries (columns past r%t) are set to 0 again whatever the sum.
TEXT ·causalNormAVX2(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ rows+24(FP), R9
	MOVQ t+32(FP), BX
	VMOVDQU causc<>+0(SB), Y6
	VPBROADCASTD causc<>+32(SB), Y5
	VBROADCASTSS lnc<>+8(SB), Y8
	VXORPS Y9, Y9, Y9
	XORQ R10, R10

cnorm_row:
	TESTQ R9, R9
	JZ cnorm_done
	VMOVQ R10, X4
	VPBROADCASTD X4, Y4
	MOVQ SI, R11
	MOVQ BX, CX
	VXORPS Y0, Y0, Y0

cnorm_sum:
	VADDPS (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $8, CX
	JNZ cnorm_sum

	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VADDPS X1, X0, X0
	VBROADCASTSS X0, Y0
	VDIVPS Y0, Y8, Y0        // 1/sum

	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3

cnorm_mul:
	VMULPS (R11), Y0, Y1
	VPCMPGTD Y4, Y3, Y2
	VBLENDVPS Y2, Y9, Y1, Y1
	VMOVUPS Y1, (R11)
	VPADDD Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $8, CX
	JNZ cnorm_mul

	LEAQ (SI)(BX*4), SI
	INCQ R10
	CMPQ R10, BX
	JLT cnorm_next
	XORQ R10, R10

cnorm_next:
	DECQ R9
	JMP cnorm_row

cnorm_done:
	VZEROUPPER
	RET
