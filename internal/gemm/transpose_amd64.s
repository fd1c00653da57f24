#include "textflag.h"

// 4 x 4 block transposes for gemmAsm's transposed B: dst(j, i) = src(i, j)
// for src of 4rb x 4cb elements (leading dimension lds) and dst of
// 4cb x 4rb (leading dimension ldd). Each block is four row loads, two
// rounds of unpacks and four row stores.

// func dtranspose4(rb, cb int, dst *float64, ldd int, src *float64, lds int)
TEXT ·dtranspose4(SB), NOSPLIT, $0-48
	MOVQ rb+0(FP), AX
	MOVQ cb+8(FP), R12
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), R9
	SHLQ $3, R9
	MOVQ src+32(FP), SI
	MOVQ lds+40(FP), R8
	SHLQ $3, R8
	LEAQ (R8)(R8*2), R10
	LEAQ (R9)(R9*2), R11
	TESTQ AX, AX
	JEQ dtranspose4_end
	TESTQ R12, R12
	JEQ dtranspose4_end

dtranspose4_rows:
	MOVQ SI, CX
	MOVQ DI, DX
	MOVQ R12, BX

dtranspose4_cols:
	VMOVUPD (CX), Y0
	VMOVUPD (CX)(R8*1), Y1
	VMOVUPD (CX)(R8*2), Y2
	VMOVUPD (CX)(R10*1), Y3
	VUNPCKLPD Y1, Y0, Y4
	VUNPCKHPD Y1, Y0, Y5
	VUNPCKLPD Y3, Y2, Y6
	VUNPCKHPD Y3, Y2, Y7
	VPERM2F128 $0x20, Y6, Y4, Y0
	VPERM2F128 $0x20, Y7, Y5, Y1
	VPERM2F128 $0x31, Y6, Y4, Y2
	VPERM2F128 $0x31, Y7, Y5, Y3
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, (DX)(R9*1)
	VMOVUPD Y2, (DX)(R9*2)
	VMOVUPD Y3, (DX)(R11*1)
	ADDQ $32, CX
	LEAQ (DX)(R9*4), DX
	DECQ BX
	JNE dtranspose4_cols

	LEAQ (SI)(R8*4), SI
	ADDQ $32, DI
	DECQ AX
	JNE dtranspose4_rows

dtranspose4_end:
	VZEROUPPER
	RET

// func stranspose4(rb, cb int, dst *float32, ldd int, src *float32, lds int)
TEXT ·stranspose4(SB), NOSPLIT, $0-48
	MOVQ rb+0(FP), AX
	MOVQ cb+8(FP), R12
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), R9
	SHLQ $2, R9
	MOVQ src+32(FP), SI
	MOVQ lds+40(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R10
	LEAQ (R9)(R9*2), R11
	TESTQ AX, AX
	JEQ stranspose4_end
	TESTQ R12, R12
	JEQ stranspose4_end

stranspose4_rows:
	MOVQ SI, CX
	MOVQ DI, DX
	MOVQ R12, BX

stranspose4_cols:
	VMOVUPS (CX), X0
	VMOVUPS (CX)(R8*1), X1
	VMOVUPS (CX)(R8*2), X2
	VMOVUPS (CX)(R10*1), X3
	VUNPCKLPS X1, X0, X4
	VUNPCKHPS X1, X0, X5
	VUNPCKLPS X3, X2, X6
	VUNPCKHPS X3, X2, X7
	VUNPCKLPD X6, X4, X0
	VUNPCKHPD X6, X4, X1
	VUNPCKLPD X7, X5, X2
	VUNPCKHPD X7, X5, X3
	VMOVUPS X0, (DX)
	VMOVUPS X1, (DX)(R9*1)
	VMOVUPS X2, (DX)(R9*2)
	VMOVUPS X3, (DX)(R11*1)
	ADDQ $16, CX
	LEAQ (DX)(R9*4), DX
	DECQ BX
	JNE stranspose4_cols

	LEAQ (SI)(R8*4), SI
	ADDQ $16, DI
	DECQ AX
	JNE stranspose4_rows

stranspose4_end:
	VZEROUPPER
	RET
