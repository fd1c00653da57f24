#include "textflag.h"

// Constants of geluErf32AVX2's float32 part, each in eight lanes (memory
// operands of the vector instructions): the clamps and exp32's constants
// (those of expSumAVX2 in math_amd64.s).
DATA gelv<>+0(SB)/4, $0xc1600000 // nclamp -14: beyond |x| = 14, e^(-x^2/2) is 0 in float32
DATA gelv<>+4(SB)/4, $0xc1600000
DATA gelv<>+8(SB)/4, $0xc1600000
DATA gelv<>+12(SB)/4, $0xc1600000
DATA gelv<>+16(SB)/4, $0xc1600000
DATA gelv<>+20(SB)/4, $0xc1600000
DATA gelv<>+24(SB)/4, $0xc1600000
DATA gelv<>+28(SB)/4, $0xc1600000
DATA gelv<>+32(SB)/4, $0x41600000 // pclamp 14
DATA gelv<>+36(SB)/4, $0x41600000
DATA gelv<>+40(SB)/4, $0x41600000
DATA gelv<>+44(SB)/4, $0x41600000
DATA gelv<>+48(SB)/4, $0x41600000
DATA gelv<>+52(SB)/4, $0x41600000
DATA gelv<>+56(SB)/4, $0x41600000
DATA gelv<>+60(SB)/4, $0x41600000
DATA gelv<>+64(SB)/4, $0xbf000000 // nhalf -0.5
DATA gelv<>+68(SB)/4, $0xbf000000
DATA gelv<>+72(SB)/4, $0xbf000000
DATA gelv<>+76(SB)/4, $0xbf000000
DATA gelv<>+80(SB)/4, $0xbf000000
DATA gelv<>+84(SB)/4, $0xbf000000
DATA gelv<>+88(SB)/4, $0xbf000000
DATA gelv<>+92(SB)/4, $0xbf000000
DATA gelv<>+96(SB)/4, $0x3f000000 // half 0.5
DATA gelv<>+100(SB)/4, $0x3f000000
DATA gelv<>+104(SB)/4, $0x3f000000
DATA gelv<>+108(SB)/4, $0x3f000000
DATA gelv<>+112(SB)/4, $0x3f000000
DATA gelv<>+116(SB)/4, $0x3f000000
DATA gelv<>+120(SB)/4, $0x3f000000
DATA gelv<>+124(SB)/4, $0x3f000000
DATA gelv<>+128(SB)/4, $0x3f800000 // one 1
DATA gelv<>+132(SB)/4, $0x3f800000
DATA gelv<>+136(SB)/4, $0x3f800000
DATA gelv<>+140(SB)/4, $0x3f800000
DATA gelv<>+144(SB)/4, $0x3f800000
DATA gelv<>+148(SB)/4, $0x3f800000
DATA gelv<>+152(SB)/4, $0x3f800000
DATA gelv<>+156(SB)/4, $0x3f800000
DATA gelv<>+160(SB)/4, $0x3fb8aa3b // log2e
DATA gelv<>+164(SB)/4, $0x3fb8aa3b
DATA gelv<>+168(SB)/4, $0x3fb8aa3b
DATA gelv<>+172(SB)/4, $0x3fb8aa3b
DATA gelv<>+176(SB)/4, $0x3fb8aa3b
DATA gelv<>+180(SB)/4, $0x3fb8aa3b
DATA gelv<>+184(SB)/4, $0x3fb8aa3b
DATA gelv<>+188(SB)/4, $0x3fb8aa3b
DATA gelv<>+192(SB)/4, $0x4b400000 // shifter 1.5*2^23: adding it rounds to an integer
DATA gelv<>+196(SB)/4, $0x4b400000
DATA gelv<>+200(SB)/4, $0x4b400000
DATA gelv<>+204(SB)/4, $0x4b400000
DATA gelv<>+208(SB)/4, $0x4b400000
DATA gelv<>+212(SB)/4, $0x4b400000
DATA gelv<>+216(SB)/4, $0x4b400000
DATA gelv<>+220(SB)/4, $0x4b400000
DATA gelv<>+224(SB)/4, $0x3f318000 // ln2hi
DATA gelv<>+228(SB)/4, $0x3f318000
DATA gelv<>+232(SB)/4, $0x3f318000
DATA gelv<>+236(SB)/4, $0x3f318000
DATA gelv<>+240(SB)/4, $0x3f318000
DATA gelv<>+244(SB)/4, $0x3f318000
DATA gelv<>+248(SB)/4, $0x3f318000
DATA gelv<>+252(SB)/4, $0x3f318000
DATA gelv<>+256(SB)/4, $0xb95e8083 // ln2lo
DATA gelv<>+260(SB)/4, $0xb95e8083
DATA gelv<>+264(SB)/4, $0xb95e8083
DATA gelv<>+268(SB)/4, $0xb95e8083
DATA gelv<>+272(SB)/4, $0xb95e8083
DATA gelv<>+276(SB)/4, $0xb95e8083
DATA gelv<>+280(SB)/4, $0xb95e8083
DATA gelv<>+284(SB)/4, $0xb95e8083
DATA gelv<>+288(SB)/4, $0x39506967 // p0: exp32's polynomial, p0 to p5
DATA gelv<>+292(SB)/4, $0x39506967
DATA gelv<>+296(SB)/4, $0x39506967
DATA gelv<>+300(SB)/4, $0x39506967
DATA gelv<>+304(SB)/4, $0x39506967
DATA gelv<>+308(SB)/4, $0x39506967
DATA gelv<>+312(SB)/4, $0x39506967
DATA gelv<>+316(SB)/4, $0x39506967
DATA gelv<>+320(SB)/4, $0x3ab743ce // p1
DATA gelv<>+324(SB)/4, $0x3ab743ce
DATA gelv<>+328(SB)/4, $0x3ab743ce
DATA gelv<>+332(SB)/4, $0x3ab743ce
DATA gelv<>+336(SB)/4, $0x3ab743ce
DATA gelv<>+340(SB)/4, $0x3ab743ce
DATA gelv<>+344(SB)/4, $0x3ab743ce
DATA gelv<>+348(SB)/4, $0x3ab743ce
DATA gelv<>+352(SB)/4, $0x3c088908 // p2
DATA gelv<>+356(SB)/4, $0x3c088908
DATA gelv<>+360(SB)/4, $0x3c088908
DATA gelv<>+364(SB)/4, $0x3c088908
DATA gelv<>+368(SB)/4, $0x3c088908
DATA gelv<>+372(SB)/4, $0x3c088908
DATA gelv<>+376(SB)/4, $0x3c088908
DATA gelv<>+380(SB)/4, $0x3c088908
DATA gelv<>+384(SB)/4, $0x3d2aa9c1 // p3
DATA gelv<>+388(SB)/4, $0x3d2aa9c1
DATA gelv<>+392(SB)/4, $0x3d2aa9c1
DATA gelv<>+396(SB)/4, $0x3d2aa9c1
DATA gelv<>+400(SB)/4, $0x3d2aa9c1
DATA gelv<>+404(SB)/4, $0x3d2aa9c1
DATA gelv<>+408(SB)/4, $0x3d2aa9c1
DATA gelv<>+412(SB)/4, $0x3d2aa9c1
DATA gelv<>+416(SB)/4, $0x3e2aaaaa // p4
DATA gelv<>+420(SB)/4, $0x3e2aaaaa
DATA gelv<>+424(SB)/4, $0x3e2aaaaa
DATA gelv<>+428(SB)/4, $0x3e2aaaaa
DATA gelv<>+432(SB)/4, $0x3e2aaaaa
DATA gelv<>+436(SB)/4, $0x3e2aaaaa
DATA gelv<>+440(SB)/4, $0x3e2aaaaa
DATA gelv<>+444(SB)/4, $0x3e2aaaaa
DATA gelv<>+448(SB)/4, $0x3f000000 // p5
DATA gelv<>+452(SB)/4, $0x3f000000
DATA gelv<>+456(SB)/4, $0x3f000000
DATA gelv<>+460(SB)/4, $0x3f000000
DATA gelv<>+464(SB)/4, $0x3f000000
DATA gelv<>+468(SB)/4, $0x3f000000
DATA gelv<>+472(SB)/4, $0x3f000000
DATA gelv<>+476(SB)/4, $0x3f000000
DATA gelv<>+480(SB)/4, $0xc2ae0000 // explo -87: e^x is taken as 0 below
DATA gelv<>+484(SB)/4, $0xc2ae0000
DATA gelv<>+488(SB)/4, $0xc2ae0000
DATA gelv<>+492(SB)/4, $0xc2ae0000
DATA gelv<>+496(SB)/4, $0xc2ae0000
DATA gelv<>+500(SB)/4, $0xc2ae0000
DATA gelv<>+504(SB)/4, $0xc2ae0000
DATA gelv<>+508(SB)/4, $0xc2ae0000
GLOBL gelv<>(SB), RODATA|NOPTR, $512

#define G_NCLAMP gelv<>+0(SB)
#define G_PCLAMP gelv<>+32(SB)
#define G_NHALF gelv<>+64(SB)
#define G_HALF gelv<>+96(SB)
#define G_ONE gelv<>+128(SB)
#define G_LOG2E gelv<>+160(SB)
#define G_SHIFTER gelv<>+192(SB)
#define G_LN2HI gelv<>+224(SB)
#define G_LN2LO gelv<>+256(SB)
#define G_P0 gelv<>+288(SB)
#define G_P1 gelv<>+320(SB)
#define G_P2 gelv<>+352(SB)
#define G_P3 gelv<>+384(SB)
#define G_P4 gelv<>+416(SB)
#define G_P5 gelv<>+448(SB)
#define G_EXPLO gelv<>+480(SB)

// Constants of geluErf32AVX2's float64 part, each in four lanes: the
// coefficients of geluErf32's N and D (act.go), as float64 bits.
DATA gelw<>+0(SB)/8, $0x7fffffffffffffff // absmask64 clears the sign
DATA gelw<>+8(SB)/8, $0x7fffffffffffffff
DATA gelw<>+16(SB)/8, $0x7fffffffffffffff
DATA gelw<>+24(SB)/8, $0x7fffffffffffffff
DATA gelw<>+32(SB)/8, $0x3fe0000000000000 // half64 0.5
DATA gelw<>+40(SB)/8, $0x3fe0000000000000
DATA gelw<>+48(SB)/8, $0x3fe0000000000000
DATA gelw<>+56(SB)/8, $0x3fe0000000000000
DATA gelw<>+64(SB)/8, $0x3ff0000000000000 // one64 1.0
DATA gelw<>+72(SB)/8, $0x3ff0000000000000
DATA gelw<>+80(SB)/8, $0x3ff0000000000000
DATA gelw<>+88(SB)/8, $0x3ff0000000000000
DATA gelw<>+96(SB)/8, $0x3fd9884533d43651 // isq2pi64 0.3989422804014327
DATA gelw<>+104(SB)/8, $0x3fd9884533d43651
DATA gelw<>+112(SB)/8, $0x3fd9884533d43651
DATA gelw<>+120(SB)/8, $0x3fd9884533d43651
DATA gelw<>+128(SB)/8, $0x3f709410cfa658d4 // n4 0.004047456425175084
DATA gelw<>+136(SB)/8, $0x3f709410cfa658d4
DATA gelw<>+144(SB)/8, $0x3f709410cfa658d4
DATA gelw<>+152(SB)/8, $0x3f709410cfa658d4
DATA gelw<>+160(SB)/8, $0x3fa492f8aa564924 // n3 0.040183802407357555
DATA gelw<>+168(SB)/8, $0x3fa492f8aa564924
DATA gelw<>+176(SB)/8, $0x3fa492f8aa564924
DATA gelw<>+184(SB)/8, $0x3fa492f8aa564924
DATA gelw<>+192(SB)/8, $0x3fc74941fd3dcf9b // n2 0.18192314973168497
DATA gelw<>+200(SB)/8, $0x3fc74941fd3dcf9b
DATA gelw<>+208(SB)/8, $0x3fc74941fd3dcf9b
DATA gelw<>+216(SB)/8, $0x3fc74941fd3dcf9b
DATA gelw<>+224(SB)/8, $0x3fdbf08cadb7758f // n1 0.43655697788730036
DATA gelw<>+232(SB)/8, $0x3fdbf08cadb7758f
DATA gelw<>+240(SB)/8, $0x3fdbf08cadb7758f
DATA gelw<>+248(SB)/8, $0x3fdbf08cadb7758f
DATA gelw<>+256(SB)/8, $0x3f84c7141567051c // d5 0.010145337012434079
DATA gelw<>+264(SB)/8, $0x3f84c7141567051c
DATA gelw<>+272(SB)/8, $0x3f84c7141567051c
DATA gelw<>+280(SB)/8, $0x3f84c7141567051c
DATA gelw<>+288(SB)/8, $0x3fb9c99ffbed39e1 // d4 0.10073280239632922
DATA gelw<>+296(SB)/8, $0x3fb9c99ffbed39e1
DATA gelw<>+304(SB)/8, $0x3fb9c99ffbed39e1
DATA gelw<>+312(SB)/8, $0x3fb9c99ffbed39e1
DATA gelw<>+320(SB)/8, $0x3fddd2f41cb2c3e9 // d3 0.46600058367317715
DATA gelw<>+328(SB)/8, $0x3fddd2f41cb2c3e9
DATA gelw<>+336(SB)/8, $0x3fddd2f41cb2c3e9
DATA gelw<>+344(SB)/8, $0x3fddd2f41cb2c3e9
DATA gelw<>+352(SB)/8, $0x3ff3275962874f8d // d2 1.19710672843664
DATA gelw<>+360(SB)/8, $0x3ff3275962874f8d
DATA gelw<>+368(SB)/8, $0x3ff3275962874f8d
DATA gelw<>+376(SB)/8, $0x3ff3275962874f8d
DATA gelw<>+384(SB)/8, $0x3ffabc69385d3ed2 // d1 1.6709987832763784
DATA gelw<>+392(SB)/8, $0x3ffabc69385d3ed2
DATA gelw<>+400(SB)/8, $0x3ffabc69385d3ed2
DATA gelw<>+408(SB)/8, $0x3ffabc69385d3ed2
GLOBL gelw<>(SB), RODATA|NOPTR, $416

#define W_ABSMASK64 gelw<>+0(SB)
#define W_HALF64 gelw<>+32(SB)
#define W_ONE64 gelw<>+64(SB)
#define W_ISQ2PI64 gelw<>+96(SB)
#define W_N4 gelw<>+128(SB)
#define W_N3 gelw<>+160(SB)
#define W_N2 gelw<>+192(SB)
#define W_N1 gelw<>+224(SB)
#define W_D5 gelw<>+256(SB)
#define W_D4 gelw<>+288(SB)
#define W_D3 gelw<>+320(SB)
#define W_D2 gelw<>+352(SB)
#define W_D1 gelw<>+384(SB)

// EXP8 sets Y11 = exp32(Y15) in eight lanes for Y15 <= 0 (as expSumAVX2:
// e^x to ~1 ulp, 0 below -87), clobbering Y9, Y10 and Y12-Y15.
#define EXP8 \
	VCMPPS $13, G_EXPLO, Y15, Y10; \
	VMAXPS G_EXPLO, Y15, Y15; \
	VMOVUPS G_SHIFTER, Y14; \
	VFMADD231PS G_LOG2E, Y15, Y14; \
	VSUBPS G_SHIFTER, Y14, Y13; \
	VMOVAPS Y15, Y12; \
	VFNMADD231PS G_LN2HI, Y13, Y12; \
	VFNMADD231PS G_LN2LO, Y13, Y12; \
	VMOVUPS G_P0, Y9; \
	VFMADD213PS G_P1, Y12, Y9; \
	VFMADD213PS G_P2, Y12, Y9; \
	VFMADD213PS G_P3, Y12, Y9; \
	VFMADD213PS G_P4, Y12, Y9; \
	VFMADD213PS G_P5, Y12, Y9; \
	VMULPS Y12, Y12, Y13; \
	VFMADD213PS Y12, Y13, Y9; \
	VADDPS G_ONE, Y9, Y9; \
	VPSUBD G_SHIFTER, Y14, Y14; \
	VPSLLD $23, Y14, Y14; \
	VPADDD Y14, Y9, Y11; \
	VANDPS Y10, Y11, Y11

// RAT4 is geluErf32AVX2's float64 part for four lanes: from xd (Y3), E
// (Y4) and xn (Y5), in float64, it sets Y9 = y = xn Phi and Y10 = dd = Phi
// + xd E/sqrt(2 pi), where Phi = Q or 1 - Q for xd > 0 and Q = Phi(-|xd|)
// = E N(|xd|)/D(|xd|); Y8 must be 0. It clobbers Y4 and Y11-Y14.
#define RAT4 \
	VANDPD W_ABSMASK64, Y3, Y11; \
	VMOVUPD W_N4, Y12; \
	VFMADD213PD W_N3, Y11, Y12; \
	VFMADD213PD W_N2, Y11, Y12; \
	VFMADD213PD W_N1, Y11, Y12; \
	VFMADD213PD W_HALF64, Y11, Y12; \
	VMOVUPD W_D5, Y13; \
	VFMADD213PD W_D4, Y11, Y13; \
	VFMADD213PD W_D3, Y11, Y13; \
	VFMADD213PD W_D2, Y11, Y13; \
	VFMADD213PD W_D1, Y11, Y13; \
	VFMADD213PD W_ONE64, Y11, Y13; \
	VMULPD Y4, Y12, Y12; \
	VDIVPD Y13, Y12, Y12; \
	VMOVUPD W_ONE64, Y13; \
	VSUBPD Y12, Y13, Y13; \
	VCMPPD $14, Y8, Y3, Y14; \
	VBLENDVPD Y14, Y13, Y12, Y12; \
	VMULPD Y12, Y5, Y9; \
	VMULPD W_ISQ2PI64, Y4, Y4; \
	VFMADD231PD Y4, Y3, Y12; \
	VMOVAPD Y12, Y10

// func geluErf32AVX2(x, y, dd []float32)
//
// geluErf32AVX2 is geluErf32Go eight at a time (len(x) must be a multiple
// of 8, y and dd at least as long; dd empty: no derivative). In float32:
// xn = max(x, -14) and xd = min(xn, 14), both keeping NaN, and E =
// e^(-xd^2/2) as exp32(-h/2) (1 - l/2), xd^2 = h + l split exactly by an
// FMA; then, four lanes at a time in float64, RAT4, and y and dd rounded
// to float32 once.
TEXT ·geluErf32AVX2(SB), NOSPLIT, $0-72
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	MOVQ dd_base+48(FP), DX
	MOVQ dd_len+56(FP), R8
	TESTQ R8, R8
	JNZ gelu32_start
	XORQ DX, DX                // no derivative wanted

gelu32_start:
	VMOVUPS G_NCLAMP, Y6
	VMOVUPS G_PCLAMP, Y7
	VXORPS Y8, Y8, Y8
	CMPQ CX, $8
	JLT gelu32_done

gelu32_loop:
	VMOVUPS (SI), Y0           // x
	VMAXPS Y0, Y6, Y1          // xn = max(x, -14), NaN if x is
	VMINPS Y1, Y7, Y2          // xd = min(xn, 14), NaN if x is
	VMULPS Y2, Y2, Y3          // h = xd^2 rounded
	VMOVAPS Y3, Y4
	VFMSUB231PS Y2, Y2, Y4     // l = xd^2 - h, exactly
	VMULPS G_HALF, Y4, Y4      // l/2
	VMULPS G_NHALF, Y3, Y15    // -h/2, exact
	EXP8
	VFNMADD231PS Y4, Y11, Y11  // E = e^(-h/2) (1 - l/2)
	VMOVAPS Y11, Y0
	VCVTPS2PD X2, Y3           // the low four lanes in float64
	VCVTPS2PD X0, Y4
	VCVTPS2PD X1, Y5
	RAT4
	VCVTPD2PSY Y9, X9
	VMOVUPS X9, (DI)
	TESTQ DX, DX
	JZ gelu32_high
	VCVTPD2PSY Y10, X10
	VMOVUPS X10, (DX)

gelu32_high:
	VEXTRACTF128 $1, Y2, X3    // the high four
	VCVTPS2PD X3, Y3
	VEXTRACTF128 $1, Y0, X4
	VCVTPS2PD X4, Y4
	VEXTRACTF128 $1, Y1, X5
	VCVTPS2PD X5, Y5
	RAT4
	VCVTPD2PSY Y9, X9
	VMOVUPS X9, 16(DI)
	TESTQ DX, DX
	JZ gelu32_next
	VCVTPD2PSY Y10, X10
	VMOVUPS X10, 16(DX)
	ADDQ $32, DX

gelu32_next:
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE gelu32_loop

gelu32_done:
	VZEROUPPER
	RET
