#include "textflag.h"

// Constants of softmaxCEAVX2: exp32's (math.go, as expc<> in
// math_amd64.s, which is private to that file), 88 in all lanes for
// VMINPS's memory operand, eight zeros and -inf.
DATA cec<>+0(SB)/4, $0x3fb8aa3b  // log2e 1.4426950408889634
DATA cec<>+4(SB)/4, $0x4b400000  // shifter 12582912.0
DATA cec<>+8(SB)/4, $0x3f318000  // ln2hi 0.693359375
DATA cec<>+12(SB)/4, $0xb95e8083 // ln2lo -0.00021219444
DATA cec<>+16(SB)/4, $0x39506967 // p0 0.000198756915
DATA cec<>+20(SB)/4, $0x3ab743ce // p1 0.0013981999507
DATA cec<>+24(SB)/4, $0x3c088908 // p2 0.0083334519073
DATA cec<>+28(SB)/4, $0x3d2aa9c1 // p3 0.041665795894
DATA cec<>+32(SB)/4, $0x3e2aaaaa // p4 0.16666665459
DATA cec<>+36(SB)/4, $0x3f000000 // p5 0.50000001201
DATA cec<>+40(SB)/4, $0x3f800000 // one 1.0
DATA cec<>+44(SB)/4, $0xff800000 // -inf
DATA cec<>+48(SB)/4, $0xc2ae0000 // lo -87.0
GLOBL cec<>(SB), RODATA|NOPTR, $52

DATA cev<>+0(SB)/4, $0x42b00000 // 88.0
DATA cev<>+4(SB)/4, $0x42b00000
DATA cev<>+8(SB)/4, $0x42b00000
DATA cev<>+12(SB)/4, $0x42b00000
DATA cev<>+16(SB)/4, $0x42b00000
DATA cev<>+20(SB)/4, $0x42b00000
DATA cev<>+24(SB)/4, $0x42b00000
DATA cev<>+28(SB)/4, $0x42b00000
DATA cev<>+32(SB)/8, $0 // zeros
DATA cev<>+40(SB)/8, $0
DATA cev<>+48(SB)/8, $0
DATA cev<>+56(SB)/8, $0
GLOBL cev<>(SB), RODATA|NOPTR, $64

// CEEXP sets Y11 to exp32 of Y15's lanes, the instructions of
// expSumAVX2 (math_amd64.s) for a shift of 0, so bit for bit its values:
// x < -87 gives 0, NaN gives NaN. It needs Y2, Y3, Y4, Y5, Y7, Y8 loaded
// with log2e, shifter, ln2hi, ln2lo, -87 and 1, and overwrites Y6, Y9,
// Y10, Y12, Y13, Y14 and Y15.
#define CEEXP \
	VCMPPS $3, Y15, Y15, Y6 \
	VANDPS Y15, Y6, Y6 \
	VCMPPS $13, Y7, Y15, Y10 \
	VMINPS cev<>+0(SB), Y15, Y15 \
	VMAXPS Y7, Y15, Y15 \
	VMOVAPS Y3, Y14 \
	VFMADD231PS Y2, Y15, Y14 \
	VSUBPS Y3, Y14, Y13 \
	VMOVAPS Y15, Y12 \
	VFNMADD231PS Y4, Y13, Y12 \
	VFNMADD231PS Y5, Y13, Y12 \
	VBROADCASTSS cec<>+16(SB), Y11 \
	VBROADCASTSS cec<>+20(SB), Y9 \
	VFMADD213PS Y9, Y12, Y11 \
	VBROADCASTSS cec<>+24(SB), Y9 \
	VFMADD213PS Y9, Y12, Y11 \
	VBROADCASTSS cec<>+28(SB), Y9 \
	VFMADD213PS Y9, Y12, Y11 \
	VBROADCASTSS cec<>+32(SB), Y9 \
	VFMADD213PS Y9, Y12, Y11 \
	VBROADCASTSS cec<>+36(SB), Y9 \
	VFMADD213PS Y9, Y12, Y11 \
	VMULPS Y12, Y12, Y9 \
	VFMADD213PS Y12, Y9, Y11 \
	VADDPS Y8, Y11, Y11 \
	VPSUBD Y3, Y14, Y14 \
	VPSLLD $23, Y14, Y14 \
	VPADDD Y14, Y11, Y11 \
	VANDPS Y10, Y11, Y11 \
	VADDPS Y6, Y11, Y11

// CETIN transposes the 8x8 block of rows 0-3 at CX and rows 4-7 at AX
// (stride R13, R14 = 3*R13) into eight column vectors at R11: each ymm
// first holds four of a row in one lane and the same four of the row four
// on in the other, so that an in-lane 4x4 transpose finishes the job.
#define CETIN \
	VMOVUPS (CX), X0 \
	VINSERTF128 $1, (AX), Y0, Y0 \
	VMOVUPS (CX)(R13*1), X1 \
	VINSERTF128 $1, (AX)(R13*1), Y1, Y1 \
	VMOVUPS (CX)(R13*2), X2 \
	VINSERTF128 $1, (AX)(R13*2), Y2, Y2 \
	VMOVUPS (CX)(R14*1), X3 \
	VINSERTF128 $1, (AX)(R14*1), Y3, Y3 \
	VMOVUPS 16(CX), X4 \
	VINSERTF128 $1, 16(AX), Y4, Y4 \
	VMOVUPS 16(CX)(R13*1), X5 \
	VINSERTF128 $1, 16(AX)(R13*1), Y5, Y5 \
	VMOVUPS 16(CX)(R13*2), X6 \
	VINSERTF128 $1, 16(AX)(R13*2), Y6, Y6 \
	VMOVUPS 16(CX)(R14*1), X7 \
	VINSERTF128 $1, 16(AX)(R14*1), Y7, Y7 \
	VUNPCKLPS Y1, Y0, Y8 \
	VUNPCKHPS Y1, Y0, Y9 \
	VUNPCKLPS Y3, Y2, Y10 \
	VUNPCKHPS Y3, Y2, Y11 \
	VUNPCKLPD Y10, Y8, Y0 \
	VUNPCKHPD Y10, Y8, Y1 \
	VUNPCKLPD Y11, Y9, Y2 \
	VUNPCKHPD Y11, Y9, Y3 \
	VUNPCKLPS Y5, Y4, Y8 \
	VUNPCKHPS Y5, Y4, Y9 \
	VUNPCKLPS Y7, Y6, Y10 \
	VUNPCKHPS Y7, Y6, Y11 \
	VUNPCKLPD Y10, Y8, Y4 \
	VUNPCKHPD Y10, Y8, Y5 \
	VUNPCKLPD Y11, Y9, Y6 \
	VUNPCKHPD Y11, Y9, Y7 \
	VMOVUPS Y0, (R11) \
	VMOVUPS Y1, 32(R11) \
	VMOVUPS Y2, 64(R11) \
	VMOVUPS Y3, 96(R11) \
	VMOVUPS Y4, 128(R11) \
	VMOVUPS Y5, 160(R11) \
	VMOVUPS Y6, 192(R11) \
	VMOVUPS Y7, 224(R11)

// CETOUT is CETIN's inverse, the eight columns at R11 times Y12 (one
// factor a lane) back into the rows at CX and AX.
#define CETOUT \
	VMULPS (R11), Y12, Y0 \
	VMULPS 32(R11), Y12, Y1 \
	VMULPS 64(R11), Y12, Y2 \
	VMULPS 96(R11), Y12, Y3 \
	VMULPS 128(R11), Y12, Y4 \
	VMULPS 160(R11), Y12, Y5 \
	VMULPS 192(R11), Y12, Y6 \
	VMULPS 224(R11), Y12, Y7 \
	VUNPCKLPS Y1, Y0, Y8 \
	VUNPCKHPS Y1, Y0, Y9 \
	VUNPCKLPS Y3, Y2, Y10 \
	VUNPCKHPS Y3, Y2, Y11 \
	VUNPCKLPD Y10, Y8, Y0 \
	VUNPCKHPD Y10, Y8, Y1 \
	VUNPCKLPD Y11, Y9, Y2 \
	VUNPCKHPD Y11, Y9, Y3 \
	VUNPCKLPS Y5, Y4, Y8 \
	VUNPCKHPS Y5, Y4, Y9 \
	VUNPCKLPS Y7, Y6, Y10 \
	VUNPCKHPS Y7, Y6, Y11 \
	VUNPCKLPD Y10, Y8, Y4 \
	VUNPCKHPD Y10, Y8, Y5 \
	VUNPCKLPD Y11, Y9, Y6 \
	VUNPCKHPD Y11, Y9, Y7 \
	VPERM2F128 $0x20, Y4, Y0, Y8 \
	VPERM2F128 $0x31, Y4, Y0, Y9 \
	VMOVUPS Y8, (CX) \
	VMOVUPS Y9, (AX) \
	VPERM2F128 $0x20, Y5, Y1, Y8 \
	VPERM2F128 $0x31, Y5, Y1, Y9 \
	VMOVUPS Y8, (CX)(R13*1) \
	VMOVUPS Y9, (AX)(R13*1) \
	VPERM2F128 $0x20, Y6, Y2, Y8 \
	VPERM2F128 $0x31, Y6, Y2, Y9 \
	VMOVUPS Y8, (CX)(R13*2) \
	VMOVUPS Y9, (AX)(R13*2) \
	VPERM2F128 $0x20, Y7, Y3, Y8 \
	VPERM2F128 $0x31, Y7, Y3, Y9 \
	VMOVUPS Y8, (CX)(R14*1) \
	VMOVUPS Y9, (AX)(R14*1)

// func softmaxCEAVX2(x []float32, labels []int32, sums, lvs, buf []float32, m, k, grad int, scale float32) (correct int)
//
// softmaxCEAVX2 is SoftmaxCrossEntropy's AVX2 path for the m rows (m a
// multiple of 8) of k (k >= 8) of x, labels in [0, k), eight rows at a
// time with a row in each lane: the eight rows are transposed into k
// column vectors in buf (at least 8k+8 floats, used from its first
// 32-byte boundary), so that maxima, sums and the argmax are vertical
// operations, with no horizontal reduction nor scalar tail per row, and
// are transposed back. The operations and their order are those of the
// three-pass order (rowShiftAVX2, expSumAVX2, softmaxNormAVX2): each lane
// keeps eight running maxima and sums over the whole blocks of eight
// columns, reduces them as those kernels' horizontal steps do, then takes
// the last k%8 columns one at a time. It stores each row's sum of
// exponentials in sums[i] and its label's shifted logit in lvs[i],
// leaves in the row its exponentials or, with grad not 0, the gradient
// (scale e/sum, less scale at the label), and returns the number of rows
// whose first argmax (first zero once shifted) is the label. The last
// k%8 columns go through one more 8x8 block, the row's last eight
// columns, whose overlap with the block before holds the same values.
TEXT ·softmaxCEAVX2(SB), NOSPLIT, $16-160
	MOVQ x_base+0(FP), SI
	MOVQ labels_base+24(FP), DX
	MOVQ sums_base+48(FP), AX
	MOVQ AX, sp-8(SP)
	MOVQ lvs_base+72(FP), AX
	MOVQ AX, lp-16(SP)
	MOVQ buf_base+96(FP), R12
	ADDQ $31, R12
	ANDQ $-32, R12
	MOVQ m+120(FP), R9
	SHRQ $3, R9
	MOVQ k+128(FP), BX
	MOVQ BX, R13
	SHLQ $2, R13     // row stride in bytes
	LEAQ (R13)(R13*2), R14
	XORQ R10, R10    // correct
	TESTQ R9, R9
	JLE ce_done

ce_group:
	// The eight rows into k columns: the whole blocks, then the last
	// eight columns. DI is the last whole block's start in row 0.
	MOVQ SI, CX
	MOVQ R12, R11
	LEAQ -32(SI)(R13*1), DI

ce_tin:
	CMPQ CX, DI
	JA ce_tin_tail
	LEAQ (CX)(R13*4), AX
	CETIN
	ADDQ $32, CX
	ADDQ $256, R11
	JMP ce_tin

ce_tin_tail:
	TESTQ $7, BX
	JZ ce_max
	MOVQ DI, CX
	LEAQ (CX)(R13*4), AX
	LEAQ -256(R12)(R13*8), R11 // column k-8
	CETIN

ce_max:
	// Each lane's max, rowShiftAVX2's order.
	VBROADCASTSS cec<>+44(SB), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	VMOVAPS Y0, Y4
	VMOVAPS Y0, Y5
	VMOVAPS Y0, Y6
	VMOVAPS Y0, Y7
	MOVQ R12, R11
	MOVQ BX, AX
	SHRQ $3, AX

ce_vmax:
	VMAXPS (R11), Y0, Y0
	VMAXPS 32(R11), Y1, Y1
	VMAXPS 64(R11), Y2, Y2
	VMAXPS 96(R11), Y3, Y3
	VMAXPS 128(R11), Y4, Y4
	VMAXPS 160(R11), Y5, Y5
	VMAXPS 192(R11), Y6, Y6
	VMAXPS 224(R11), Y7, Y7
	ADDQ $256, R11
	DECQ AX
	JNZ ce_vmax
	VMAXPS Y4, Y0, Y0
	VMAXPS Y5, Y1, Y1
	VMAXPS Y6, Y2, Y2
	VMAXPS Y7, Y3, Y3
	VMAXPS Y2, Y0, Y0
	VMAXPS Y3, Y1, Y1
	VMAXPS Y1, Y0, Y0
	MOVQ BX, AX
	ANDQ $7, AX
	JZ ce_shift

ce_tmax:
	VMAXPS (R11), Y0, Y0
	ADDQ $32, R11
	DECQ AX
	JNZ ce_tmax

ce_shift:
	// The label's shifted logit and the first zero of the shifted row,
	// from the last column to the first: each zero's index replaces the
	// one before.
	VMOVDQU (DX), Y1           // labels
	MOVQ BX, AX
	DECQ AX
	VMOVQ AX, X2
	VPBROADCASTD X2, Y2        // column index, k-1 down
	VPCMPEQD Y3, Y3, Y3
	VPSRLD $31, Y3, Y3         // 1s
	VPSLLD $6, Y3, Y4          // the first zero, 64 for none
	VXORPS Y6, Y6, Y6          // the label's shifted logit
	VXORPS Y7, Y7, Y7
	MOVQ R13, R11
	SHLQ $3, R11
	ADDQ R12, R11              // past column k-1
	MOVQ BX, AX

ce_vsub:
	SUBQ $32, R11
	VMOVUPS (R11), Y8
	VSUBPS Y0, Y8, Y8
	VCMPPS $0, Y7, Y8, Y9      // zero
	VBLENDVPS Y9, Y2, Y4, Y4
	VPCMPEQD Y1, Y2, Y10       // the label's column
	VBLENDVPS Y10, Y8, Y6, Y6
	VPSUBD Y3, Y2, Y2
	DECQ AX
	JNZ ce_vsub
	MOVQ lp-16(SP), AX
	VMOVUPS Y6, (AX)
	VPCMPEQD Y1, Y4, Y5        // first zero at the label
	VMOVMSKPS Y5, AX // popcount of 8 bits
	MOVQ AX, CX
	SHRQ $1, CX
	ANDQ $0x55, CX
	SUBQ CX, AX
	MOVQ AX, CX
	SHRQ $2, CX
	ANDQ $0x33, CX
	ANDQ $0x33, AX
	ADDQ CX, AX
	MOVQ AX, CX
	SHRQ $4, CX
	ADDQ CX, AX
	ANDQ $0x0f, AX
	ADDQ AX, R10

	// The exponentials of the shifted columns.
	VBROADCASTSS cec<>+0(SB), Y2
	VBROADCASTSS cec<>+4(SB), Y3
	VBROADCASTSS cec<>+8(SB), Y4
	VBROADCASTSS cec<>+12(SB), Y5
	VBROADCASTSS cec<>+48(SB), Y7
	VBROADCASTSS cec<>+40(SB), Y8
	MOVQ R12, R11
	MOVQ BX, AX

ce_exp:
	VMOVUPS (R11), Y15
	VSUBPS Y0, Y15, Y15 // less the max
	CEEXP
	VMOVUPS Y11, (R11)
	ADDQ $32, R11
	DECQ AX
	JNZ ce_exp

	// Each lane's sum, softmaxNormAVX2's order.
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ R12, R11
	MOVQ BX, AX
	SHRQ $3, AX

ce_vsum:
	VADDPS (R11), Y0, Y0
	VADDPS 32(R11), Y1, Y1
	VADDPS 64(R11), Y2, Y2
	VADDPS 96(R11), Y3, Y3
	VADDPS 128(R11), Y4, Y4
	VADDPS 160(R11), Y5, Y5
	VADDPS 192(R11), Y6, Y6
	VADDPS 224(R11), Y7, Y7
	ADDQ $256, R11
	DECQ AX
	JNZ ce_vsum
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	VADDPS Y1, Y0, Y0
	MOVQ BX, AX
	ANDQ $7, AX
	JZ ce_sums

ce_tsum:
	VADDPS (R11), Y0, Y0
	ADDQ $32, R11
	DECQ AX
	JNZ ce_tsum

ce_sums:
	MOVQ sp-8(SP), AX
	VMOVUPS Y0, (AX)
	VBROADCASTSS cec<>+40(SB), Y12 // 1: the exponentials
	CMPQ grad+136(FP), $0
	JEQ ce_tout
	VBROADCASTSS scale+144(FP), Y1
	VDIVPS Y0, Y1, Y12             // scale/sum: the gradient

ce_tout:
	// The columns back into the rows, as ce_tin.
	MOVQ SI, CX
	MOVQ R12, R11

ce_tout_loop:
	CMPQ CX, DI
	JA ce_tout_tail
	LEAQ (CX)(R13*4), AX
	CETOUT
	ADDQ $32, CX
	ADDQ $256, R11
	JMP ce_tout_loop

ce_tout_tail:
	TESTQ $7, BX
	JZ ce_labels
	MOVQ DI, CX
	LEAQ (CX)(R13*4), AX
	LEAQ -256(R12)(R13*8), R11
	CETOUT

ce_labels:
	CMPQ grad+136(FP), $0
	JEQ ce_next
	// Less scale at each row's label.
	VMOVSS scale+144(FP), X1
	MOVQ SI, CX
	XORQ R11, R11

ce_label:
	MOVLQSX (DX)(R11*4), AX
	VMOVSS (CX)(AX*4), X9
	VSUBSS X1, X9, X9
	VMOVSS X9, (CX)(AX*4)
	ADDQ R13, CX
	INCQ R11
	CMPQ R11, $8
	JLT ce_label

ce_next:
	LEAQ (SI)(R13*8), SI
	ADDQ $32, DX
	ADDQ $32, sp-8(SP)
	ADDQ $32, lp-16(SP)
	DECQ R9
	JNZ ce_group

ce_done:
	MOVQ R10, correct+152(FP)
	VZEROUPPER
	RET
