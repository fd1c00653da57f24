#include "textflag.h"

// The kernels of CausalAttention and CausalAttentionBackward for float32
// heads of width 8 (one vector per row): small enough that gemm's per-call
// work (bounds, packing, transposes) cost more than the products.

// TRANSPOSE8 transposes the 8x8 matrix whose rows are Y0-Y7 into Y8-Y15
// (Y8 holds column 0), clobbering Y0-Y7.
#define TRANSPOSE8 \
	VUNPCKLPS Y1, Y0, Y8; \
	VUNPCKHPS Y1, Y0, Y9; \
	VUNPCKLPS Y3, Y2, Y10; \
	VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; \
	VUNPCKHPS Y5, Y4, Y13; \
	VUNPCKLPS Y7, Y6, Y14; \
	VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; \
	VSHUFPS $0xEE, Y10, Y8, Y1; \
	VSHUFPS $0x44, Y11, Y9, Y2; \
	VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; \
	VSHUFPS $0xEE, Y14, Y12, Y5; \
	VSHUFPS $0x44, Y15, Y13, Y6; \
	VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// ABT2 adds a[i][c] and a[i+1][c] (at byte off of rows R12 and R12+R8)
// times column c of b^T (kt) into Y0 and Y1.
#define ABT2(off, kt) \
	VBROADCASTSS off(R12), Y2; \
	VFMADD231PS Y2, kt, Y0; \
	VBROADCASTSS off(R12)(R8*1), Y3; \
	VFMADD231PS Y3, kt, Y1

// func abT8AVX2(a []float32, lda int, b []float32, ldb int, t int, scale float32, s []float32)
//
// abT8AVX2 sets the (t, t) matrix s to scale a b^T, a and b t rows of 8
// (leading dimensions lda and ldb), t a positive multiple of 8, except in
// the 8x8 blocks wholly above the diagonal, which the causal softmax and
// its gradient ignore and which keep what they held: for each block of 8
// rows of b (8 columns of s), transposed in registers, row i of the
// block's columns of s is sum_c a[i][c] b^T[c], in order of c, two rows
// at a time, from the block's diagonal down.
TEXT ·abT8AVX2(SB), NOSPLIT, $0-104
	MOVQ a_base+0(FP), SI
	MOVQ lda+24(FP), R8
	SHLQ $2, R8
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $2, R9
	MOVQ t+64(FP), BX
	MOVQ s_base+80(FP), DI
	XORQ R10, R10              // first column of the block

abt_block:
	CMPQ R10, BX
	JGE abt_done
	MOVQ R10, AX
	IMULQ R9, AX
	LEAQ (DX)(AX*1), R11       // row R10 of b
	VMOVUPS (R11), Y0
	ADDQ R9, R11
	VMOVUPS (R11), Y1
	ADDQ R9, R11
	VMOVUPS (R11), Y2
	ADDQ R9, R11
	VMOVUPS (R11), Y3
	ADDQ R9, R11
	VMOVUPS (R11), Y4
	ADDQ R9, R11
	VMOVUPS (R11), Y5
	ADDQ R9, R11
	VMOVUPS (R11), Y6
	ADDQ R9, R11
	VMOVUPS (R11), Y7
	TRANSPOSE8
	VBROADCASTSS scale+72(FP), Y7
	MOVQ R10, AX
	IMULQ R8, AX
	LEAQ (SI)(AX*1), R12       // row i = R10 of a: rows above are masked
	MOVQ R10, AX
	IMULQ BX, AX
	ADDQ R10, AX
	LEAQ (DI)(AX*4), R13       // row i of s, at the block's columns
	MOVQ BX, CX
	SUBQ R10, CX

abt_row:
	VBROADCASTSS (R12), Y0     // row i in Y0, row i+1 in Y1
	VMULPS Y8, Y0, Y0
	VBROADCASTSS (R12)(R8*1), Y1
	VMULPS Y8, Y1, Y1
	ABT2(4, Y9)
	ABT2(8, Y10)
	ABT2(12, Y11)
	ABT2(16, Y12)
	ABT2(20, Y13)
	ABT2(24, Y14)
	ABT2(28, Y15)
	VMULPS Y7, Y0, Y0
	VMULPS Y7, Y1, Y1
	VMOVUPS Y0, (R13)
	VMOVUPS Y1, (R13)(BX*4)
	LEAQ (R12)(R8*2), R12
	LEAQ (R13)(BX*8), R13
	SUBQ $2, CX
	JNZ abt_row

	ADDQ $8, R10
	JMP abt_block

abt_done:
	VZEROUPPER
	RET

// LM4(p) adds p[r][j] b[j] into the accumulator of row r of the block,
// Y0-Y3, for b[j] in Y4 and p[r][j] at p, p+rowbytes(BX*4), ...: rows R11,
// R11+BX*4, R14 = R11+BX*8, R14+BX*4.
#define LM4 \
	VBROADCASTSS (R11), Y5; \
	VFMADD231PS Y5, Y4, Y0; \
	VBROADCASTSS (R11)(BX*4), Y6; \
	VFMADD231PS Y6, Y4, Y1; \
	VBROADCASTSS (R14), Y5; \
	VFMADD231PS Y5, Y4, Y2; \
	VBROADCASTSS (R14)(BX*4), Y6; \
	VFMADD231PS Y6, Y4, Y3

// func lowerMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int)
//
// lowerMul8AVX2 sets row i of out (leading dimension ldo) to sum_{j <= i}
// p[i][j] b[j], in order of j, for the (t, t) matrix p, zero above its
// diagonal, and t rows of 8 of b, t a multiple of 4: p b. Four rows at a
// time, i0 to i0+3, each over j <= i0+3 (the entries above the diagonal
// add zeros), so that the four accumulators hide the FMA latency.
TEXT ·lowerMul8AVX2(SB), NOSPLIT, $0-96
	MOVQ p_base+0(FP), SI
	MOVQ t+24(FP), BX
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $2, R9
	MOVQ out_base+64(FP), DI
	MOVQ ldo+88(FP), R8
	SHLQ $2, R8
	XORQ R10, R10              // i0

lm_block:
	CMPQ R10, BX
	JGE lm_done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, R11               // p[i0][j]
	LEAQ (SI)(BX*8), R14       // p[i0+2][j]
	MOVQ DX, R12               // b[j]
	LEAQ 4(R10), CX

lm_col:
	VMOVUPS (R12), Y4
	LM4
	ADDQ $4, R11
	ADDQ $4, R14
	ADDQ R9, R12
	DECQ CX
	JNZ lm_col

	VMOVUPS Y0, (DI)
	ADDQ R8, DI
	VMOVUPS Y1, (DI)
	ADDQ R8, DI
	VMOVUPS Y2, (DI)
	ADDQ R8, DI
	VMOVUPS Y3, (DI)
	ADDQ R8, DI
	LEAQ (SI)(BX*8), SI
	LEAQ (SI)(BX*8), SI        // four rows of p on
	ADDQ $4, R10
	JMP lm_block

lm_done:
	VZEROUPPER
	RET

// func lowerTMul8AVX2(p []float32, t int, b []float32, ldb int, out []float32, ldo int)
//
// lowerTMul8AVX2 sets row j of out to sum_{i >= j} p[i][j] b[i], in order
// of i, for p and b as in lowerMul8AVX2: p^T b. Four rows at a time, j0 to
// j0+3, each over i >= j0 (the entries above the diagonal add zeros).
TEXT ·lowerTMul8AVX2(SB), NOSPLIT, $0-96
	MOVQ p_base+0(FP), SI
	MOVQ t+24(FP), BX
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $2, R9
	MOVQ out_base+64(FP), DI
	MOVQ ldo+88(FP), R8
	SHLQ $2, R8
	MOVQ BX, R13
	SHLQ $2, R13               // a row of p, in bytes
	XORQ R10, R10              // j0

ltm_block:
	CMPQ R10, BX
	JGE ltm_done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ R10, AX
	IMULQ BX, AX
	ADDQ R10, AX
	LEAQ (SI)(AX*4), R11       // p[j0][j0]
	MOVQ R10, AX
	IMULQ R9, AX
	LEAQ (DX)(AX*1), R12       // b[j0]
	MOVQ BX, CX
	SUBQ R10, CX

ltm_col:
	VMOVUPS (R12), Y4
	VBROADCASTSS (R11), Y5
	VFMADD231PS Y5, Y4, Y0
	VBROADCASTSS 4(R11), Y6
	VFMADD231PS Y6, Y4, Y1
	VBROADCASTSS 8(R11), Y5
	VFMADD231PS Y5, Y4, Y2
	VBROADCASTSS 12(R11), Y6
	VFMADD231PS Y6, Y4, Y3
	ADDQ R13, R11
	ADDQ R9, R12
	DECQ CX
	JNZ ltm_col

	VMOVUPS Y0, (DI)
	ADDQ R8, DI
	VMOVUPS Y1, (DI)
	ADDQ R8, DI
	VMOVUPS Y2, (DI)
	ADDQ R8, DI
	VMOVUPS Y3, (DI)
	ADDQ R8, DI
	ADDQ $4, R10
	JMP ltm_block

ltm_done:
	VZEROUPPER
	RET
