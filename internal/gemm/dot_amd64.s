#include "textflag.h"

// Column kernels of gemmAsm's last column when A's rows are contiguous
// (ps = 1): for mb blocks of 4 rows, C(i, 0) = alpha dot(A(i, :), x)
// (store != 0) or C(i, 0) += alpha dot(A(i, :), x) (store == 0), x being
// B's column copied out (k elements, zero-padded to a whole register).
// Each step multiplies a register of each of 4 rows of A by one of x;
// the last k%lanes elements of each row are loaded through kmask, so
// nothing past a row is read. The 4 sums are reduced by horizontal adds
// in a fixed order and C is read and written one element per row.

// func sdotCol(mb, k int, a *float32, rs int, x *float32, c *float32, ldc int, alpha float32, store int, kmask *int32)
TEXT ·sdotCol(SB), NOSPLIT, $0-80
	MOVQ mb+0(FP), BX
	MOVQ a+16(FP), R13
	MOVQ rs+24(FP), R8
	SHLQ $2, R8
	MOVQ c+40(FP), AX
	MOVQ ldc+48(FP), R11
	SHLQ $2, R11
	MOVQ kmask+72(FP), CX
	VMOVDQU (CX), Y13
	VBROADCASTSS alpha+56(FP), X12
	TESTQ BX, BX
	JEQ sdotCol_end

sdotCol_block:
	MOVQ R13, SI
	LEAQ (SI)(R8*2), R9
	ADDQ R8, R9
	MOVQ x+32(FP), DI
	MOVQ k+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ CX, $8
	JLT sdotCol_tail

sdotCol_loop:
	VMOVUPS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS (SI)(R8*1), Y8, Y1
	VFMADD231PS (SI)(R8*2), Y8, Y2
	VFMADD231PS (R9), Y8, Y3
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE sdotCol_loop

sdotCol_tail:
	TESTQ CX, CX
	JEQ sdotCol_reduce
	VMOVUPS (DI), Y8
	VMASKMOVPS (SI), Y13, Y4
	VFMADD231PS Y4, Y8, Y0
	VMASKMOVPS (SI)(R8*1), Y13, Y5
	VFMADD231PS Y5, Y8, Y1
	VMASKMOVPS (SI)(R8*2), Y13, Y6
	VFMADD231PS Y6, Y8, Y2
	VMASKMOVPS (R9), Y13, Y7
	VFMADD231PS Y7, Y8, Y3

sdotCol_reduce:
	// Y4 = [a01 a23 b01 b23 | a45 a67 b45 b67], Y5 likewise for c, d.
	VHADDPS Y1, Y0, Y4
	VHADDPS Y3, Y2, Y5
	VHADDPS Y5, Y4, Y6
	VEXTRACTF128 $1, Y6, X7
	VADDPS X7, X6, X6
	MOVQ AX, DX
	CMPQ store+64(FP), $0
	JNE sdotCol_store
	VMOVSS (DX), X9
	VINSERTPS $0x10, (DX)(R11*1), X9, X9
	VINSERTPS $0x20, (DX)(R11*2), X9, X9
	LEAQ (DX)(R11*2), R10
	VINSERTPS $0x30, (R10)(R11*1), X9, X9
	VFMADD231PS X6, X12, X9
	JMP sdotCol_write

sdotCol_store:
	VMULPS X6, X12, X9
	LEAQ (DX)(R11*2), R10

sdotCol_write:
	VMOVSS X9, (DX)
	VEXTRACTPS $1, X9, (DX)(R11*1)
	VEXTRACTPS $2, X9, (R10)
	VEXTRACTPS $3, X9, (R10)(R11*1)
	LEAQ (R13)(R8*4), R13
	LEAQ (AX)(R11*4), AX
	DECQ BX
	JNE sdotCol_block

sdotCol_end:
	VZEROUPPER
	RET

// func ddotCol(mb, k int, a *float64, rs int, x *float64, c *float64, ldc int, alpha float64, store int, kmask *int64)
TEXT ·ddotCol(SB), NOSPLIT, $0-80
	MOVQ mb+0(FP), BX
	MOVQ a+16(FP), R13
	MOVQ rs+24(FP), R8
	SHLQ $3, R8
	MOVQ c+40(FP), AX
	MOVQ ldc+48(FP), R11
	SHLQ $3, R11
	MOVQ kmask+72(FP), CX
	VMOVDQU (CX), Y13
	VBROADCASTSD alpha+56(FP), Y12
	TESTQ BX, BX
	JEQ ddotCol_end

ddotCol_block:
	MOVQ R13, SI
	LEAQ (SI)(R8*2), R9
	ADDQ R8, R9
	MOVQ x+32(FP), DI
	MOVQ k+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	CMPQ CX, $4
	JLT ddotCol_tail

ddotCol_loop:
	VMOVUPD (DI), Y8
	VFMADD231PD (SI), Y8, Y0
	VFMADD231PD (SI)(R8*1), Y8, Y1
	VFMADD231PD (SI)(R8*2), Y8, Y2
	VFMADD231PD (R9), Y8, Y3
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE ddotCol_loop

ddotCol_tail:
	TESTQ CX, CX
	JEQ ddotCol_reduce
	VMOVUPD (DI), Y8
	VMASKMOVPD (SI), Y13, Y4
	VFMADD231PD Y4, Y8, Y0
	VMASKMOVPD (SI)(R8*1), Y13, Y5
	VFMADD231PD Y5, Y8, Y1
	VMASKMOVPD (SI)(R8*2), Y13, Y6
	VFMADD231PD Y6, Y8, Y2
	VMASKMOVPD (R9), Y13, Y7
	VFMADD231PD Y7, Y8, Y3

ddotCol_reduce:
	// Y4 = [a01 b01 | a23 b23], Y5 = [c01 d01 | c23 d23].
	VHADDPD Y1, Y0, Y4
	VHADDPD Y3, Y2, Y5
	VPERM2F128 $0x20, Y5, Y4, Y6
	VPERM2F128 $0x31, Y5, Y4, Y7
	VADDPD Y7, Y6, Y6
	MOVQ AX, DX
	LEAQ (DX)(R11*2), R10
	CMPQ store+64(FP), $0
	JNE ddotCol_store
	VMOVSD (DX), X9
	VMOVHPD (DX)(R11*1), X9, X9
	VMOVSD (R10), X10
	VMOVHPD (R10)(R11*1), X10, X10
	VINSERTF128 $1, X10, Y9, Y9
	VFMADD231PD Y6, Y12, Y9
	JMP ddotCol_write

ddotCol_store:
	VMULPD Y6, Y12, Y9

ddotCol_write:
	VMOVSD X9, (DX)
	VMOVHPD X9, (DX)(R11*1)
	VEXTRACTF128 $1, Y9, X10
	VMOVSD X10, (R10)
	VMOVHPD X10, (R10)(R11*1)
	LEAQ (R13)(R8*4), R13
	LEAQ (AX)(R11*4), AX
	DECQ BX
	JNE ddotCol_block

ddotCol_end:
	VZEROUPPER
	RET

// Column kernels of gemmAsm's last column when A's columns are
// contiguous (rs = 1, A read transposed): for mb blocks of 8 rows (float32)
// or 4 (float64), C(i, 0) = alpha sum_p A(i, p) B(p, 0) (store != 0) or
// C(i, 0) += that (store == 0), one register of rows of A times a
// broadcast element of B's column a step. Four accumulators take the steps
// of k in turn, to cover the FMA latency, and are summed as (0+1)+(2+3).

// func saxpyCol(mb, k int, a *float32, ps int, b *float32, ldb int, c *float32, ldc int, alpha float32, store int)
TEXT ·saxpyCol(SB), NOSPLIT, $0-80
	MOVQ mb+0(FP), BX
	MOVQ a+16(FP), R13
	MOVQ ps+24(FP), R12
	SHLQ $2, R12
	MOVQ ldb+40(FP), R10
	SHLQ $2, R10
	MOVQ c+48(FP), AX
	MOVQ ldc+56(FP), R11
	SHLQ $2, R11
	TESTQ BX, BX
	JEQ saxpyCol_end

saxpyCol_block:
	MOVQ R13, SI
	MOVQ b+32(FP), DI
	MOVQ k+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ CX, $4
	JLT saxpyCol_rest

saxpyCol_loop:
	VBROADCASTSS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSS (DI), Y9
	VFMADD231PS (SI), Y9, Y1
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSS (DI), Y10
	VFMADD231PS (SI), Y10, Y2
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSS (DI), Y11
	VFMADD231PS (SI), Y11, Y3
	ADDQ R12, SI
	ADDQ R10, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE saxpyCol_loop

saxpyCol_rest:
	TESTQ CX, CX
	JEQ saxpyCol_sum
	VBROADCASTSS (DI), Y8
	VFMADD231PS (SI), Y8, Y0
	ADDQ R12, SI
	ADDQ R10, DI
	DECQ CX
	JMP saxpyCol_rest

saxpyCol_sum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VBROADCASTSS alpha+64(FP), Y12
	MOVQ AX, DX
	LEAQ (DX)(R11*2), R9
	CMPQ store+72(FP), $0
	JNE saxpyCol_store
	VMOVSS (DX), X4
	VINSERTPS $0x10, (DX)(R11*1), X4, X4
	VINSERTPS $0x20, (R9), X4, X4
	VINSERTPS $0x30, (R9)(R11*1), X4, X4
	LEAQ (DX)(R11*4), CX
	LEAQ (CX)(R11*2), R8
	VMOVSS (CX), X5
	VINSERTPS $0x10, (CX)(R11*1), X5, X5
	VINSERTPS $0x20, (R8), X5, X5
	VINSERTPS $0x30, (R8)(R11*1), X5, X5
	VINSERTF128 $1, X5, Y4, Y4
	VFMADD231PS Y0, Y12, Y4
	JMP saxpyCol_write

saxpyCol_store:
	VMULPS Y0, Y12, Y4
	LEAQ (DX)(R11*4), CX
	LEAQ (CX)(R11*2), R8

saxpyCol_write:
	VEXTRACTF128 $1, Y4, X5
	VMOVSS X4, (DX)
	VEXTRACTPS $1, X4, (DX)(R11*1)
	VEXTRACTPS $2, X4, (R9)
	VEXTRACTPS $3, X4, (R9)(R11*1)
	VMOVSS X5, (CX)
	VEXTRACTPS $1, X5, (CX)(R11*1)
	VEXTRACTPS $2, X5, (R8)
	VEXTRACTPS $3, X5, (R8)(R11*1)
	ADDQ $32, R13
	LEAQ (AX)(R11*8), AX
	DECQ BX
	JNE saxpyCol_block

saxpyCol_end:
	VZEROUPPER
	RET

// func daxpyCol(mb, k int, a *float64, ps int, b *float64, ldb int, c *float64, ldc int, alpha float64, store int)
TEXT ·daxpyCol(SB), NOSPLIT, $0-80
	MOVQ mb+0(FP), BX
	MOVQ a+16(FP), R13
	MOVQ ps+24(FP), R12
	SHLQ $3, R12
	MOVQ ldb+40(FP), R10
	SHLQ $3, R10
	MOVQ c+48(FP), AX
	MOVQ ldc+56(FP), R11
	SHLQ $3, R11
	TESTQ BX, BX
	JEQ daxpyCol_end

daxpyCol_block:
	MOVQ R13, SI
	MOVQ b+32(FP), DI
	MOVQ k+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	CMPQ CX, $4
	JLT daxpyCol_rest

daxpyCol_loop:
	VBROADCASTSD (DI), Y8
	VFMADD231PD (SI), Y8, Y0
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSD (DI), Y9
	VFMADD231PD (SI), Y9, Y1
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSD (DI), Y10
	VFMADD231PD (SI), Y10, Y2
	ADDQ R12, SI
	ADDQ R10, DI
	VBROADCASTSD (DI), Y11
	VFMADD231PD (SI), Y11, Y3
	ADDQ R12, SI
	ADDQ R10, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE daxpyCol_loop

daxpyCol_rest:
	TESTQ CX, CX
	JEQ daxpyCol_sum
	VBROADCASTSD (DI), Y8
	VFMADD231PD (SI), Y8, Y0
	ADDQ R12, SI
	ADDQ R10, DI
	DECQ CX
	JMP daxpyCol_rest

daxpyCol_sum:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	VBROADCASTSD alpha+64(FP), Y12
	MOVQ AX, DX
	LEAQ (DX)(R11*2), R9
	CMPQ store+72(FP), $0
	JNE daxpyCol_store
	VMOVSD (DX), X4
	VMOVHPD (DX)(R11*1), X4, X4
	VMOVSD (R9), X5
	VMOVHPD (R9)(R11*1), X5, X5
	VINSERTF128 $1, X5, Y4, Y4
	VFMADD231PD Y0, Y12, Y4
	JMP daxpyCol_write

daxpyCol_store:
	VMULPD Y0, Y12, Y4

daxpyCol_write:
	VEXTRACTF128 $1, Y4, X5
	VMOVSD X4, (DX)
	VMOVHPD X4, (DX)(R11*1)
	VMOVSD X5, (R9)
	VMOVHPD X5, (R9)(R11*1)
	ADDQ $32, R13
	LEAQ (AX)(R11*4), AX
	DECQ BX
	JNE daxpyCol_block

daxpyCol_end:
	VZEROUPPER
	RET
