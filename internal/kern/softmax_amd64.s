#include "textflag.h"

// func softmaxNormAVX2(x, sums []float32, m, k, grad int, scale float32)
//
// softmaxNormAVX2 is SoftmaxCrossEntropy's last pass over the m rows of k
// (k >= 8) of x, which hold exponentials: it sets sums[i] to row i's sum
// (eight columns at a time, then the last k%8 one at a time) and, if grad
// is not 0, multiplies the row by scale/sums[i].
TEXT ·softmaxNormAVX2(SB), NOSPLIT, $0-76
	MOVQ x_base+0(FP), SI
	MOVQ sums_base+24(FP), DI
	MOVQ m+48(FP), R9
	MOVQ k+56(FP), BX
	MOVQ grad+64(FP), R8
	VMOVSS scale+72(FP), X7
	TESTQ R9, R9
	JZ snorm_done

snorm_row:
	VXORPS Y0, Y0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

snorm_vsum:
	CMPQ CX, $8
	JLT snorm_reduce
	VADDPS (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $8, CX
	JMP snorm_vsum

snorm_reduce:
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VADDSS X1, X0, X0

snorm_ssum:
	TESTQ CX, CX
	JZ snorm_store
	VADDSS (R11), X0, X0
	ADDQ $4, R11
	DECQ CX
	JMP snorm_ssum

snorm_store:
	VMOVSS X0, (DI)
	ADDQ $4, DI
	TESTQ R8, R8
	JZ snorm_next
	VDIVSS X0, X7, X0        // scale/sum
	VBROADCASTSS X0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

snorm_vmul:
	CMPQ CX, $8
	JLT snorm_smul
	VMULPS (R11), Y0, Y1
	VMOVUPS Y1, (R11)
	ADDQ $32, R11
	SUBQ $8, CX
	JMP snorm_vmul

snorm_smul:
	TESTQ CX, CX
	JZ snorm_next
	VMULSS (R11), X0, X1
	VMOVSS X1, (R11)
	ADDQ $4, R11
	DECQ CX
	JMP snorm_smul

snorm_next:
	LEAQ (SI)(BX*4), SI
	DECQ R9
	JNZ snorm_row

snorm_done:
	VZEROUPPER
	RET

// func softmaxNorm64AVX2(x, sums []float64, m, k, grad int, scale float64)
//
// softmaxNorm64AVX2 is softmaxNormAVX2 for float64 and k >= 4, four
// columns at a time, with the sums in rowSum's order (four running sums,
// the tail into the first, then (s0 + s1) + (s2 + s3)), so that the loss
// and gradient are those of the portable loop bit for bit.
TEXT ·softmaxNorm64AVX2(SB), NOSPLIT, $0-80
	MOVQ x_base+0(FP), SI
	MOVQ sums_base+24(FP), DI
	MOVQ m+48(FP), R9
	MOVQ k+56(FP), BX
	MOVQ grad+64(FP), R8
	VMOVSD scale+72(FP), X7
	TESTQ R9, R9
	JZ snorm64_done

snorm64_row:
	VXORPD Y0, Y0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

snorm64_vsum:
	CMPQ CX, $4
	JLT snorm64_reduce
	VADDPD (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $4, CX
	JMP snorm64_vsum

snorm64_reduce:
	VEXTRACTF128 $1, Y0, X1    // s2, s3

snorm64_ssum:
	TESTQ CX, CX
	JZ snorm64_hsum
	VADDSD (R11), X0, X0       // the tail into s0, keeping s1
	ADDQ $8, R11
	DECQ CX
	JMP snorm64_ssum

snorm64_hsum:
	VPERMILPD $1, X0, X2
	VADDSD X2, X0, X0          // s0 + s1
	VPERMILPD $1, X1, X2
	VADDSD X2, X1, X1          // s2 + s3
	VADDSD X1, X0, X0

snorm64_store:
	VMOVSD X0, (DI)
	ADDQ $8, DI
	TESTQ R8, R8
	JZ snorm64_next
	VDIVSD X0, X7, X0        // scale/sum
	VBROADCASTSD X0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

snorm64_vmul:
	CMPQ CX, $4
	JLT snorm64_smul
	VMULPD (R11), Y0, Y1
	VMOVUPD Y1, (R11)
	ADDQ $32, R11
	SUBQ $4, CX
	JMP snorm64_vmul

snorm64_smul:
	TESTQ CX, CX
	JZ snorm64_next
	VMULSD (R11), X0, X1
	VMOVSD X1, (R11)
	ADDQ $8, R11
	DECQ CX
	JMP snorm64_smul

snorm64_next:
	LEAQ (SI)(BX*8), SI
	DECQ R9
	JNZ snorm64_row

snorm64_done:
	VZEROUPPER
	RET
