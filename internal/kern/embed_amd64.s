#include "textflag.h"

// func embedGrad8AVX2(tok, pos, dx []float32, tokens []int, t int) (bad int)
//
// embedGrad8AVX2 is EmbedGrad for rows of 8 float32: row r of dx into row
// tokens[r] of tok and row r%t of pos, for r < len(tokens), one vector
// each. It returns -1, or the first r whose token is outside
// [0, len(tok)/8), where it stops.
TEXT ·embedGrad8AVX2(SB), NOSPLIT, $0-112
	MOVQ tok_base+0(FP), DI
	MOVQ tok_len+8(FP), R8
	SHRQ $3, R8               // token rows
	MOVQ pos_base+24(FP), R10
	MOVQ dx_base+48(FP), SI
	MOVQ tokens_base+72(FP), DX
	MOVQ tokens_len+80(FP), CX
	MOVQ t+96(FP), R9
	XORQ BX, BX               // r
	XORQ R11, R11             // r%t
	TESTQ CX, CX
	JZ emb_done

emb_loop:
	MOVQ (DX)(BX*8), AX
	CMPQ AX, R8
	JAE emb_bad               // unsigned: negative or past the last row
	SHLQ $5, AX
	VMOVUPS (SI), Y0
	VADDPS (DI)(AX*1), Y0, Y1
	VMOVUPS Y1, (DI)(AX*1)
	MOVQ R11, AX
	SHLQ $5, AX
	VADDPS (R10)(AX*1), Y0, Y2
	VMOVUPS Y2, (R10)(AX*1)
	ADDQ $32, SI
	INCQ R11
	CMPQ R11, R9
	JLT emb_next
	XORQ R11, R11

emb_next:
	INCQ BX
	CMPQ BX, CX
	JLT emb_loop

emb_done:
	MOVQ $-1, bad+104(FP)
	VZEROUPPER
	RET

emb_bad:
	MOVQ BX, bad+104(FP)
	VZEROUPPER
	RET

// func embedGrad8x64AVX2(tok, pos, dx []float64, tokens []int, t int) (bad int)
//
// embedGrad8x64AVX2 is embedGrad8AVX2 for float64, two vectors a row.
TEXT ·embedGrad8x64AVX2(SB), NOSPLIT, $0-112
	MOVQ tok_base+0(FP), DI
	MOVQ tok_len+8(FP), R8
	SHRQ $3, R8
	MOVQ pos_base+24(FP), R10
	MOVQ dx_base+48(FP), SI
	MOVQ tokens_base+72(FP), DX
	MOVQ tokens_len+80(FP), CX
	MOVQ t+96(FP), R9
	XORQ BX, BX
	XORQ R11, R11
	TESTQ CX, CX
	JZ emb64_done

emb64_loop:
	MOVQ (DX)(BX*8), AX
	CMPQ AX, R8
	JAE emb64_bad
	SHLQ $6, AX
	VMOVUPD (SI), Y0
	VMOVUPD 32(SI), Y1
	VADDPD (DI)(AX*1), Y0, Y2
	VADDPD 32(DI)(AX*1), Y1, Y3
	VMOVUPD Y2, (DI)(AX*1)
	VMOVUPD Y3, 32(DI)(AX*1)
	MOVQ R11, AX
	SHLQ $6, AX
	VADDPD (R10)(AX*1), Y0, Y2
	VADDPD 32(R10)(AX*1), Y1, Y3
	VMOVUPD Y2, (R10)(AX*1)
	VMOVUPD Y3, 32(R10)(AX*1)
	ADDQ $64, SI
	INCQ R11
	CMPQ R11, R9
	JLT emb64_next
	XORQ R11, R11

emb64_next:
	INCQ BX
	CMPQ BX, CX
	JLT emb64_loop

emb64_done:
	MOVQ $-1, bad+104(FP)
	VZEROUPPER
	RET

emb64_bad:
	MOVQ BX, bad+104(FP)
	VZEROUPPER
	RET

// func embedSum8AVX2(x, tok, pos []float32, tokens []int, t int) (bad int)
//
// embedSum8AVX2 is EmbedSum for rows of 8 float32: row r of x set to row
// tokens[r] of tok plus row r%t of pos, for r < len(tokens). It returns
// -1, or the first r whose token is outside [0, len(tok)/8), where it
// stops.
TEXT ·embedSum8AVX2(SB), NOSPLIT, $0-112
	MOVQ x_base+0(FP), DI
	MOVQ tok_base+24(FP), SI
	MOVQ tok_len+32(FP), R8
	SHRQ $3, R8
	MOVQ pos_base+48(FP), R10
	MOVQ tokens_base+72(FP), DX
	MOVQ tokens_len+80(FP), CX
	MOVQ t+96(FP), R9
	XORQ BX, BX
	XORQ R11, R11
	TESTQ CX, CX
	JZ esum_done

esum_loop:
	MOVQ (DX)(BX*8), AX
	CMPQ AX, R8
	JAE esum_bad
	SHLQ $5, AX
	VMOVUPS (SI)(AX*1), Y0
	MOVQ R11, AX
	SHLQ $5, AX
	VADDPS (R10)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	INCQ R11
	CMPQ R11, R9
	JLT esum_next
	XORQ R11, R11

esum_next:
	INCQ BX
	CMPQ BX, CX
	JLT esum_loop

esum_done:
	MOVQ $-1, bad+104(FP)
	VZEROUPPER
	RET

esum_bad:
	MOVQ BX, bad+104(FP)
	VZEROUPPER
	RET

// func embedSum8x64AVX2(x, tok, pos []float64, tokens []int, t int) (bad int)
//
// embedSum8x64AVX2 is embedSum8AVX2 for float64, two vectors a row.
TEXT ·embedSum8x64AVX2(SB), NOSPLIT, $0-112
	MOVQ x_base+0(FP), DI
	MOVQ tok_base+24(FP), SI
	MOVQ tok_len+32(FP), R8
	SHRQ $3, R8
	MOVQ pos_base+48(FP), R10
	MOVQ tokens_base+72(FP), DX
	MOVQ tokens_len+80(FP), CX
	MOVQ t+96(FP), R9
	XORQ BX, BX
	XORQ R11, R11
	TESTQ CX, CX
	JZ esum64_done

esum64_loop:
	MOVQ (DX)(BX*8), AX
	CMPQ AX, R8
	JAE esum64_bad
	SHLQ $6, AX
	VMOVUPD (SI)(AX*1), Y0
	VMOVUPD 32(SI)(AX*1), Y1
	MOVQ R11, AX
	SHLQ $6, AX
	VADDPD (R10)(AX*1), Y0, Y0
	VADDPD 32(R10)(AX*1), Y1, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ $64, DI
	INCQ R11
	CMPQ R11, R9
	JLT esum64_next
	XORQ R11, R11

esum64_next:
	INCQ BX
	CMPQ BX, CX
	JLT esum64_loop

esum64_done:
	MOVQ $-1, bad+104(FP)
	VZEROUPPER
	RET

esum64_bad:
	MOVQ BX, bad+104(FP)
	VZEROUPPER
	RET
