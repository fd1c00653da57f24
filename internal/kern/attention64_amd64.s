#include "textflag.h"

// The float64 twins of attention_amd64.s's kernels, for heads of width 8
// (two vectors per row). Each entry is accumulated as gemm's dgemm
// kernels do it, from zero by one FMA per term in order of the inner
// index, then multiplied by the scale: the same bits as the gemm
// fallback, but for the sign of an exact zero.

// TRANSPOSE4x8 transposes the 4x8 matrix whose rows have their columns
// 0-3 in Y0-Y3 and 4-7 in Y4-Y7 into Y8-Y15 (Y8 holds column 0, four
// rows), clobbering Y0-Y7.
#define TRANSPOSE4x8 \
	VUNPCKLPD Y1, Y0, Y12; \
	VUNPCKHPD Y1, Y0, Y13; \
	VUNPCKLPD Y3, Y2, Y14; \
	VUNPCKHPD Y3, Y2, Y15; \
	VPERM2F128 $0x20, Y14, Y12, Y8; \
	VPERM2F128 $0x20, Y15, Y13, Y9; \
	VPERM2F128 $0x31, Y14, Y12, Y10; \
	VPERM2F128 $0x31, Y15, Y13, Y11; \
	VUNPCKLPD Y5, Y4, Y0; \
	VUNPCKHPD Y5, Y4, Y1; \
	VUNPCKLPD Y7, Y6, Y2; \
	VUNPCKHPD Y7, Y6, Y3; \
	VPERM2F128 $0x20, Y2, Y0, Y12; \
	VPERM2F128 $0x20, Y3, Y1, Y13; \
	VPERM2F128 $0x31, Y2, Y0, Y14; \
	VPERM2F128 $0x31, Y3, Y1, Y15

// ABT4(off, kt) adds a[i+r][c], at byte off of rows R12, R12+R8, R14 =
// R12+2*R8 and R14+R8, times column c of the block of b^T (kt) into the
// accumulators Y0-Y3 of rows i to i+3.
#define ABT4(off, kt) \
	VBROADCASTSD off(R12), Y4; \
	VFMADD231PD Y4, kt, Y0; \
	VBROADCASTSD off(R12)(R8*1), Y5; \
	VFMADD231PD Y5, kt, Y1; \
	VBROADCASTSD off(R14), Y6; \
	VFMADD231PD Y6, kt, Y2; \
	VBROADCASTSD off(R14)(R8*1), Y7; \
	VFMADD231PD Y7, kt, Y3

// func abT8x64AVX2(a []float64, lda int, b []float64, ldb int, t int, scale float64, s []float64)
//
// abT8x64AVX2 sets the (t, t) matrix s to scale a b^T, a and b t rows of
// 8 (leading dimensions lda and ldb), t a positive multiple of 8, except
// in the 8x8 blocks wholly above the diagonal, which keep what they held
// (as abT8AVX2). Four columns of s (four rows of b, transposed in
// registers into Y8-Y15) at a time, over the rows from the first of
// their 8x8 block's diagonal down, four rows at a time.
TEXT ·abT8x64AVX2(SB), NOSPLIT, $0-104
	MOVQ a_base+0(FP), SI
	MOVQ lda+24(FP), R8
	SHLQ $3, R8                // a row of a, in bytes
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $3, R9
	MOVQ t+64(FP), BX
	MOVQ s_base+80(FP), DI
	XORQ R10, R10              // first of the four columns

abt64_quad:
	CMPQ R10, BX
	JGE abt64_done
	MOVQ R10, AX
	IMULQ R9, AX
	LEAQ (DX)(AX*1), R11       // row R10 of b
	VMOVUPD (R11), Y0
	VMOVUPD 32(R11), Y4
	ADDQ R9, R11
	VMOVUPD (R11), Y1
	VMOVUPD 32(R11), Y5
	ADDQ R9, R11
	VMOVUPD (R11), Y2
	VMOVUPD 32(R11), Y6
	ADDQ R9, R11
	VMOVUPD (R11), Y3
	VMOVUPD 32(R11), Y7
	TRANSPOSE4x8
	MOVQ R10, CX
	ANDQ $-8, CX               // first row i: the 8x8 block's diagonal
	MOVQ CX, AX
	IMULQ R8, AX
	LEAQ (SI)(AX*1), R12       // row i of a
	MOVQ CX, AX
	IMULQ BX, AX
	ADDQ R10, AX
	LEAQ (DI)(AX*8), R13       // row i of s, at the four columns
	NEGQ CX
	ADDQ BX, CX                // rows left, a multiple of 8

abt64_row:
	LEAQ (R12)(R8*2), R14      // row i+2 of a
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	ABT4(0, Y8)
	ABT4(8, Y9)
	ABT4(16, Y10)
	ABT4(24, Y11)
	ABT4(32, Y12)
	ABT4(40, Y13)
	ABT4(48, Y14)
	ABT4(56, Y15)
	VBROADCASTSD scale+72(FP), Y4
	VMULPD Y0, Y4, Y0
	VMULPD Y1, Y4, Y1
	VMULPD Y2, Y4, Y2
	VMULPD Y3, Y4, Y3
	VMOVUPD Y0, (R13)
	VMOVUPD Y1, (R13)(BX*8)
	LEAQ (R13)(BX*8), R13
	LEAQ (R13)(BX*8), R13      // row i+2 of s
	VMOVUPD Y2, (R13)
	VMOVUPD Y3, (R13)(BX*8)
	LEAQ (R13)(BX*8), R13
	LEAQ (R13)(BX*8), R13
	LEAQ (R14)(R8*2), R12      // row i+4 of a
	SUBQ $4, CX
	JNZ abt64_row

	ADDQ $4, R10
	JMP abt64_quad

abt64_done:
	VZEROUPPER
	RET

// LM64 adds p[i0+r][j] b[j], b[j] in Y8 (columns 0-3) and Y9 (4-7), into
// the accumulators of row i0+r, Y(2r) and Y(2r+1), for p[i0+r][j] at R11,
// R11+R13, R14 = R11+2*R13 and R14+R13 (R13 a row of p in bytes).
#define LM64 \
	VBROADCASTSD (R11), Y10; \
	VFMADD231PD Y8, Y10, Y0; \
	VFMADD231PD Y9, Y10, Y1; \
	VBROADCASTSD (R11)(R13*1), Y11; \
	VFMADD231PD Y8, Y11, Y2; \
	VFMADD231PD Y9, Y11, Y3; \
	VBROADCASTSD (R14), Y12; \
	VFMADD231PD Y8, Y12, Y4; \
	VFMADD231PD Y9, Y12, Y5; \
	VBROADCASTSD (R14)(R13*1), Y13; \
	VFMADD231PD Y8, Y13, Y6; \
	VFMADD231PD Y9, Y13, Y7

// STORE4x8 stores the four rows of 8 in Y0-Y7 at DI, DI+R8, ...,
// leaving DI four rows on.
#define STORE4x8 \
	VMOVUPD Y0, (DI); \
	VMOVUPD Y1, 32(DI); \
	ADDQ R8, DI; \
	VMOVUPD Y2, (DI); \
	VMOVUPD Y3, 32(DI); \
	ADDQ R8, DI; \
	VMOVUPD Y4, (DI); \
	VMOVUPD Y5, 32(DI); \
	ADDQ R8, DI; \
	VMOVUPD Y6, (DI); \
	VMOVUPD Y7, 32(DI); \
	ADDQ R8, DI

#define ZERO8 \
	VXORPD Y0, Y0, Y0; \
	VXORPD Y1, Y1, Y1; \
	VXORPD Y2, Y2, Y2; \
	VXORPD Y3, Y3, Y3; \
	VXORPD Y4, Y4, Y4; \
	VXORPD Y5, Y5, Y5; \
	VXORPD Y6, Y6, Y6; \
	VXORPD Y7, Y7, Y7

// func lowerMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int)
//
// lowerMul8x64AVX2 sets row i of out (leading dimension ldo) to sum_{j <=
// i} p[i][j] b[j], in order of j, for the (t, t) matrix p, zero above its
// diagonal, and t rows of 8 of b, t a multiple of 4: p b. Four rows at a
// time, i0 to i0+3, each over j <= i0+3 (the entries above the diagonal
// add zeros): eight accumulators.
TEXT ·lowerMul8x64AVX2(SB), NOSPLIT, $0-96
	MOVQ p_base+0(FP), SI
	MOVQ t+24(FP), BX
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $3, R9
	MOVQ out_base+64(FP), DI
	MOVQ ldo+88(FP), R8
	SHLQ $3, R8
	MOVQ BX, R13
	SHLQ $3, R13               // a row of p, in bytes
	XORQ R10, R10              // i0

lm64_block:
	CMPQ R10, BX
	JGE lm64_done
	ZERO8
	MOVQ SI, R11               // p[i0][j]
	LEAQ (SI)(R13*2), R14      // p[i0+2][j]
	MOVQ DX, R12               // b[j]
	LEAQ 4(R10), CX

lm64_col:
	VMOVUPD (R12), Y8
	VMOVUPD 32(R12), Y9
	LM64
	ADDQ $8, R11
	ADDQ $8, R14
	ADDQ R9, R12
	DECQ CX
	JNZ lm64_col

	STORE4x8
	LEAQ (SI)(R13*4), SI       // four rows of p on
	ADDQ $4, R10
	JMP lm64_block

lm64_done:
	VZEROUPPER
	RET

// func lowerTMul8x64AVX2(p []float64, t int, b []float64, ldb int, out []float64, ldo int)
//
// lowerTMul8x64AVX2 sets row j of out to sum_{i >= j} p[i][j] b[i], in
// order of i, for p and b as in lowerMul8x64AVX2: p^T b. Four rows at a
// time, j0 to j0+3, each over i >= j0 (the entries above the diagonal add
// zeros).
TEXT ·lowerTMul8x64AVX2(SB), NOSPLIT, $0-96
	MOVQ p_base+0(FP), SI
	MOVQ t+24(FP), BX
	MOVQ b_base+32(FP), DX
	MOVQ ldb+56(FP), R9
	SHLQ $3, R9
	MOVQ out_base+64(FP), DI
	MOVQ ldo+88(FP), R8
	SHLQ $3, R8
	MOVQ BX, R13
	SHLQ $3, R13               // a row of p, in bytes
	XORQ R10, R10              // j0

ltm64_block:
	CMPQ R10, BX
	JGE ltm64_done
	ZERO8
	MOVQ R10, AX
	IMULQ BX, AX
	ADDQ R10, AX
	LEAQ (SI)(AX*8), R11       // p[j0][j0]
	MOVQ R10, AX
	IMULQ R9, AX
	LEAQ (DX)(AX*1), R12       // b[j0]
	MOVQ BX, CX
	SUBQ R10, CX

ltm64_col:
	VMOVUPD (R12), Y8
	VMOVUPD 32(R12), Y9
	VBROADCASTSD (R11), Y10
	VFMADD231PD Y8, Y10, Y0
	VFMADD231PD Y9, Y10, Y1
	VBROADCASTSD 8(R11), Y11
	VFMADD231PD Y8, Y11, Y2
	VFMADD231PD Y9, Y11, Y3
	VBROADCASTSD 16(R11), Y12
	VFMADD231PD Y8, Y12, Y4
	VFMADD231PD Y9, Y12, Y5
	VBROADCASTSD 24(R11), Y13
	VFMADD231PD Y8, Y13, Y6
	VFMADD231PD Y9, Y13, Y7
	ADDQ R13, R11
	ADDQ R9, R12
	DECQ CX
	JNZ ltm64_col

	STORE4x8
	ADDQ $4, R10
	JMP ltm64_block

ltm64_done:
	VZEROUPPER
	RET
