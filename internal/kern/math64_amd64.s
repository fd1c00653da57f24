#include "textflag.h"

// Constants of the float64 exp (EXP4 below), as float64 bits, each in four
// lanes.
DATA expv64<>+0(SB)/8, $0xc087500000000000 // -746: e^x rounds to 0 below
DATA expv64<>+8(SB)/8, $0xc087500000000000
DATA expv64<>+16(SB)/8, $0xc087500000000000
DATA expv64<>+24(SB)/8, $0xc087500000000000
DATA expv64<>+32(SB)/8, $0x4086300000000000 // 710: e^x overflows above
DATA expv64<>+40(SB)/8, $0x4086300000000000
DATA expv64<>+48(SB)/8, $0x4086300000000000
DATA expv64<>+56(SB)/8, $0x4086300000000000
DATA expv64<>+64(SB)/8, $0x4338000000000000 // 1.5*2^52: adding it rounds to an integer
DATA expv64<>+72(SB)/8, $0x4338000000000000
DATA expv64<>+80(SB)/8, $0x4338000000000000
DATA expv64<>+88(SB)/8, $0x4338000000000000
DATA expv64<>+96(SB)/8, $0x3ff71547652b82fe // log2(e)
DATA expv64<>+104(SB)/8, $0x3ff71547652b82fe
DATA expv64<>+112(SB)/8, $0x3ff71547652b82fe
DATA expv64<>+120(SB)/8, $0x3ff71547652b82fe
DATA expv64<>+128(SB)/8, $0x3fe62e42fefa39ef // ln2 rounded to float64
DATA expv64<>+136(SB)/8, $0x3fe62e42fefa39ef
DATA expv64<>+144(SB)/8, $0x3fe62e42fefa39ef
DATA expv64<>+152(SB)/8, $0x3fe62e42fefa39ef
DATA expv64<>+160(SB)/8, $0x3c7abc9e3b39803f // ln2 - ln2hi
DATA expv64<>+168(SB)/8, $0x3c7abc9e3b39803f
DATA expv64<>+176(SB)/8, $0x3c7abc9e3b39803f
DATA expv64<>+184(SB)/8, $0x3c7abc9e3b39803f
DATA expv64<>+192(SB)/8, $0x3ff0000000000000 // 1
DATA expv64<>+200(SB)/8, $0x3ff0000000000000
DATA expv64<>+208(SB)/8, $0x3ff0000000000000
DATA expv64<>+216(SB)/8, $0x3ff0000000000000
DATA expv64<>+224(SB)/8, $0x00000000000003ff // the exponent bias 1023, as int64
DATA expv64<>+232(SB)/8, $0x00000000000003ff
DATA expv64<>+240(SB)/8, $0x00000000000003ff
DATA expv64<>+248(SB)/8, $0x00000000000003ff
DATA expv64<>+256(SB)/8, $0x3fe0000000000000 // 1/2!
DATA expv64<>+264(SB)/8, $0x3fe0000000000000
DATA expv64<>+272(SB)/8, $0x3fe0000000000000
DATA expv64<>+280(SB)/8, $0x3fe0000000000000
DATA expv64<>+288(SB)/8, $0x3fc5555555555555 // 1/3!
DATA expv64<>+296(SB)/8, $0x3fc5555555555555
DATA expv64<>+304(SB)/8, $0x3fc5555555555555
DATA expv64<>+312(SB)/8, $0x3fc5555555555555
DATA expv64<>+320(SB)/8, $0x3fa5555555555555 // 1/4!
DATA expv64<>+328(SB)/8, $0x3fa5555555555555
DATA expv64<>+336(SB)/8, $0x3fa5555555555555
DATA expv64<>+344(SB)/8, $0x3fa5555555555555
DATA expv64<>+352(SB)/8, $0x3f81111111111111 // 1/5!
DATA expv64<>+360(SB)/8, $0x3f81111111111111
DATA expv64<>+368(SB)/8, $0x3f81111111111111
DATA expv64<>+376(SB)/8, $0x3f81111111111111
DATA expv64<>+384(SB)/8, $0x3f56c16c16c16c17 // 1/6!
DATA expv64<>+392(SB)/8, $0x3f56c16c16c16c17
DATA expv64<>+400(SB)/8, $0x3f56c16c16c16c17
DATA expv64<>+408(SB)/8, $0x3f56c16c16c16c17
DATA expv64<>+416(SB)/8, $0x3f2a01a01a01a01a // 1/7!
DATA expv64<>+424(SB)/8, $0x3f2a01a01a01a01a
DATA expv64<>+432(SB)/8, $0x3f2a01a01a01a01a
DATA expv64<>+440(SB)/8, $0x3f2a01a01a01a01a
DATA expv64<>+448(SB)/8, $0x3efa01a01a01a01a // 1/8!
DATA expv64<>+456(SB)/8, $0x3efa01a01a01a01a
DATA expv64<>+464(SB)/8, $0x3efa01a01a01a01a
DATA expv64<>+472(SB)/8, $0x3efa01a01a01a01a
DATA expv64<>+480(SB)/8, $0x3ec71de3a556c734 // 1/9!
DATA expv64<>+488(SB)/8, $0x3ec71de3a556c734
DATA expv64<>+496(SB)/8, $0x3ec71de3a556c734
DATA expv64<>+504(SB)/8, $0x3ec71de3a556c734
DATA expv64<>+512(SB)/8, $0x3e927e4fb7789f5c // 1/10!
DATA expv64<>+520(SB)/8, $0x3e927e4fb7789f5c
DATA expv64<>+528(SB)/8, $0x3e927e4fb7789f5c
DATA expv64<>+536(SB)/8, $0x3e927e4fb7789f5c
DATA expv64<>+544(SB)/8, $0x3e5ae64567f544e4 // 1/11!
DATA expv64<>+552(SB)/8, $0x3e5ae64567f544e4
DATA expv64<>+560(SB)/8, $0x3e5ae64567f544e4
DATA expv64<>+568(SB)/8, $0x3e5ae64567f544e4
DATA expv64<>+576(SB)/8, $0x3e21eed8eff8d898 // 1/12!
DATA expv64<>+584(SB)/8, $0x3e21eed8eff8d898
DATA expv64<>+592(SB)/8, $0x3e21eed8eff8d898
DATA expv64<>+600(SB)/8, $0x3e21eed8eff8d898
DATA expv64<>+608(SB)/8, $0x3de6124613a86d09 // 1/13!
DATA expv64<>+616(SB)/8, $0x3de6124613a86d09
DATA expv64<>+624(SB)/8, $0x3de6124613a86d09
DATA expv64<>+632(SB)/8, $0x3de6124613a86d09
GLOBL expv64<>(SB), RODATA|NOPTR, $640

// EXP4 sets Y10 = e^Y15 in four float64 lanes, to within 2 ulp of
// math.Exp, clobbering Y9 and Y11-Y15. A NaN lane gives a garbage value
// there: the callers put NaN back. x is first clamped to [-746, 710], so
// that -Inf and x below the underflow threshold give exactly 0 and x above
// the overflow threshold +Inf; then x = n ln2 + r with n = round(x log2e)
// and |r| <= ln2/2, r = x - n ln2hi (exact: x and n ln2hi agree in their
// leading bits) - n ln2lo. e^r is 1 + r + r^2 Q(r), Q the Taylor
// polynomial of degree 11 (truncation error below 5e-18 relative),
// evaluated in Estrin's scheme for a short dependency chain: its rounding
// errors are scaled by r^2 <= 0.121. The scaling by 2^n is two exact
// multiplications by 2^(n>>1) and 2^(n-n>>1), whose exponents stay normal
// for n in [-1076, 1024], so that results near overflow and subnormal
// ones come out right. The constants are four-lane vectors, memory
// operands.
#define EXP4 \
	VMAXPD expv64<>+0(SB), Y15, Y14; \
	VMINPD expv64<>+32(SB), Y14, Y14; \
	VMOVUPD expv64<>+64(SB), Y13; \
	VFMADD231PD expv64<>+96(SB), Y14, Y13; \
	VSUBPD expv64<>+64(SB), Y13, Y12; \
	VPSUBQ expv64<>+64(SB), Y13, Y13; \
	VFNMADD231PD expv64<>+128(SB), Y12, Y14; \
	VFNMADD231PD expv64<>+160(SB), Y12, Y14; \
	VMULPD Y14, Y14, Y12; \
	VMULPD Y12, Y12, Y11; \
	VMOVUPD expv64<>+544(SB), Y10; \
	VFMADD213PD expv64<>+512(SB), Y14, Y10; \
	VMOVUPD expv64<>+608(SB), Y9; \
	VFMADD213PD expv64<>+576(SB), Y14, Y9; \
	VFMADD231PD Y9, Y12, Y10; \
	VMOVUPD expv64<>+416(SB), Y9; \
	VFMADD213PD expv64<>+384(SB), Y14, Y9; \
	VMOVUPD expv64<>+480(SB), Y15; \
	VFMADD213PD expv64<>+448(SB), Y14, Y15; \
	VFMADD231PD Y15, Y12, Y9; \
	VFMADD213PD Y9, Y11, Y10; \
	VMOVUPD expv64<>+288(SB), Y9; \
	VFMADD213PD expv64<>+256(SB), Y14, Y9; \
	VMOVUPD expv64<>+352(SB), Y15; \
	VFMADD213PD expv64<>+320(SB), Y14, Y15; \
	VFMADD231PD Y15, Y12, Y9; \
	VFMADD213PD Y9, Y11, Y10; \
	VFMADD213PD Y14, Y12, Y10; \
	VADDPD expv64<>+192(SB), Y10, Y10; \
	VPSRLQ $1, Y13, Y12; \
	VPSUBQ Y12, Y13, Y13; \
	VPADDQ expv64<>+224(SB), Y12, Y12; \
	VPADDQ expv64<>+224(SB), Y13, Y13; \
	VPSLLQ $52, Y12, Y12; \
	VPSLLQ $52, Y13, Y13; \
	VMULPD Y12, Y10, Y10; \
	VMULPD Y13, Y10, Y10

// func expSum64AVX2(x []float64, shift float64) float64
//
// expSum64AVX2 sets x[i] = e^(x[i] - shift) four at a time (len(x) must be
// a multiple of 4) and returns their sum; NaN gives NaN.
TEXT ·expSum64AVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSD shift+24(FP), Y1
	VXORPD Y0, Y0, Y0
	CMPQ CX, $4
	JLT expsum64_done

expsum64_loop:
	VMOVUPD (SI), Y15
	VSUBPD Y1, Y15, Y15
	VCMPPD $3, Y15, Y15, Y8 // NaN lanes: all ones, a NaN, ORed in below
	EXP4
	VORPD Y8, Y10, Y10
	VMOVUPD Y10, (SI)
	VADDPD Y10, Y0, Y0
	ADDQ $32, SI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE expsum64_loop

expsum64_done:
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+32(FP)
	VZEROUPPER
	RET

// Constants of geluErf64AVX2, as float64: W. J. Cody's rational Chebyshev
// approximations of erf and erfc (Math. Comp. 23, 1969, as in SPECFUN's
// CALERF), A/B for erf on [0, 0.46875], C/D for e^(a^2) erfc(a) on
// [0.46875, 4] and P/Q for the asymptotic interval a > 4; their maximal
// relative errors are below 1e-18, a few float64 rounding errors more in
// evaluation.
DATA geld<>+0(SB)/8, $0x3fe6a09e667f3bcc // invsqrt2: 1/sqrt2
DATA geld<>+8(SB)/8, $0x7fffffffffffffff // absmask: clears the sign
DATA geld<>+16(SB)/8, $40.0 // clamp: |x| beyond which e^(-x^2/2) is 0
DATA geld<>+24(SB)/8, $-40.0 // nclamp
DATA geld<>+32(SB)/8, $-0.5 // nhalf
DATA geld<>+40(SB)/8, $0.5 // half
DATA geld<>+48(SB)/8, $1.0 // one
DATA geld<>+56(SB)/8, $0.46875 // thr1: end of the erf interval
DATA geld<>+64(SB)/8, $4.0 // thr3: start of the asymptotic interval
DATA geld<>+72(SB)/8, $28.0 // amax: erfc is 0 beyond (e^(-a^2) underflows at 27.3)
DATA geld<>+80(SB)/8, $0.56418958354775628695 // sqrpi: 1/sqrt(pi)
DATA geld<>+88(SB)/8, $0.398942280401432677939946059934 // isq2pi: 1/sqrt(2 pi)
DATA geld<>+96(SB)/8, $3.16112374387056560e00 // A0
DATA geld<>+104(SB)/8, $1.13864154151050156e02 // A1
DATA geld<>+112(SB)/8, $3.77485237685302021e02 // A2
DATA geld<>+120(SB)/8, $3.20937758913846947e03 // A3
DATA geld<>+128(SB)/8, $1.85777706184603153e-1 // A4
DATA geld<>+136(SB)/8, $2.36012909523441209e01 // B0
DATA geld<>+144(SB)/8, $2.44024637934444173e02 // B1
DATA geld<>+152(SB)/8, $1.28261652607737228e03 // B2
DATA geld<>+160(SB)/8, $2.84423683343917062e03 // B3
DATA geld<>+168(SB)/8, $5.64188496988670089e-1 // C0
DATA geld<>+176(SB)/8, $8.88314979438837594e00 // C1
DATA geld<>+184(SB)/8, $6.61191906371416295e01 // C2
DATA geld<>+192(SB)/8, $2.98635138197400131e02 // C3
DATA geld<>+200(SB)/8, $8.81952221241769090e02 // C4
DATA geld<>+208(SB)/8, $1.71204761263407058e03 // C5
DATA geld<>+216(SB)/8, $2.05107837782607147e03 // C6
DATA geld<>+224(SB)/8, $1.23033935479799725e03 // C7
DATA geld<>+232(SB)/8, $2.15311535474403846e-8 // C8
DATA geld<>+240(SB)/8, $1.57449261107098347e01 // D0
DATA geld<>+248(SB)/8, $1.17693950891312499e02 // D1
DATA geld<>+256(SB)/8, $5.37181101862009858e02 // D2
DATA geld<>+264(SB)/8, $1.62138957456669019e03 // D3
DATA geld<>+272(SB)/8, $3.29079923573345963e03 // D4
DATA geld<>+280(SB)/8, $4.36261909014324716e03 // D5
DATA geld<>+288(SB)/8, $3.43936767414372164e03 // D6
DATA geld<>+296(SB)/8, $1.23033935480374942e03 // D7
DATA geld<>+304(SB)/8, $3.05326634961232344e-1 // P0
DATA geld<>+312(SB)/8, $3.60344899949804439e-1 // P1
DATA geld<>+320(SB)/8, $1.25781726111229246e-1 // P2
DATA geld<>+328(SB)/8, $1.60837851487422766e-2 // P3
DATA geld<>+336(SB)/8, $6.58749161529837803e-4 // P4
DATA geld<>+344(SB)/8, $1.63153871373020978e-2 // P5
DATA geld<>+352(SB)/8, $2.56852019228982242e00 // Q0
DATA geld<>+360(SB)/8, $1.87295284992346047e00 // Q1
DATA geld<>+368(SB)/8, $5.27905102951428412e-1 // Q2
DATA geld<>+376(SB)/8, $6.05183413124413191e-2 // Q3
DATA geld<>+384(SB)/8, $2.33520497626869185e-3 // Q4
GLOBL geld<>(SB), RODATA|NOPTR, $392

// func geluErf64AVX2(x, y, dd []float64)
//
// geluErf64AVX2 sets y = x Phi(x), the exact GELU, and, unless dd is empty,
// dd = Phi(x) + x phi(x), its derivative, four at a time (len(x) must be a
// multiple of 4, y and dd at least as long). One exponential serves both:
// E = e^(-x^2/2) = phi(x) sqrt(2 pi) = e^(-a^2) for a = |x|/sqrt2, computed
// as EXP4(-h/2) (1 - l/2) with x^2 = h + l split exactly, so that it keeps
// full accuracy for large x. Every lane evaluates all three of Cody's
// intervals (a handful of FMAs each) and keeps one numerator and
// denominator: one division per vector.
TEXT ·geluErf64AVX2(SB), NOSPLIT, $0-72
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	MOVQ dd_base+48(FP), DX
	MOVQ dd_len+56(FP), R8
	TESTQ R8, R8
	JNZ gelu64_start
	XORQ DX, DX               // no derivative wanted

gelu64_start:
	CMPQ CX, $4
	JLT gelu64_done

gelu64_loop:
	VMOVUPD (SI), Y0           // x
	VBROADCASTSD geld<>+24(SB), Y9
	VMAXPD Y9, Y0, Y1
	VBROADCASTSD geld<>+16(SB), Y9
	VMINPD Y9, Y1, Y1          // x clamped to [-40, 40]
	VMULPD Y1, Y1, Y2          // h = x^2 rounded
	VMOVAPD Y2, Y3
	VFMSUB231PD Y1, Y1, Y3     // l = x^2 - h, exactly
	VBROADCASTSD geld<>+32(SB), Y9
	VMULPD Y9, Y2, Y15         // -h/2, exact
	EXP4
	VBROADCASTSD geld<>+40(SB), Y9
	VMULPD Y9, Y3, Y3
	VFNMADD231PD Y3, Y10, Y10  // E = e^(-h/2) (1 - l/2) = e^(-x^2/2)
	VMOVAPD Y10, Y8
	VBROADCASTSD geld<>+0(SB), Y9
	VMULPD Y9, Y0, Y1           // z = x/sqrt2
	VBROADCASTSD geld<>+8(SB), Y9
	VANDPD Y9, Y1, Y2           // a = |z|
	// erf(z) = z A(t)/B(t), t = z^2, for a < 0.46875
	VMULPD Y1, Y1, Y3
	VBROADCASTSD geld<>+128(SB), Y4
	VBROADCASTSD geld<>+96(SB), Y15
	VFMADD213PD Y15, Y3, Y4
	VBROADCASTSD geld<>+104(SB), Y15
	VFMADD213PD Y15, Y3, Y4
	VBROADCASTSD geld<>+112(SB), Y15
	VFMADD213PD Y15, Y3, Y4
	VBROADCASTSD geld<>+120(SB), Y15
	VFMADD213PD Y15, Y3, Y4
	VMULPD Y1, Y4, Y4
	VBROADCASTSD geld<>+136(SB), Y5
	VADDPD Y5, Y3, Y5
	VBROADCASTSD geld<>+144(SB), Y15
	VFMADD213PD Y15, Y3, Y5
	VBROADCASTSD geld<>+152(SB), Y15
	VFMADD213PD Y15, Y3, Y5
	VBROADCASTSD geld<>+160(SB), Y15
	VFMADD213PD Y15, Y3, Y5
	// erfc(a) = E C(a)/D(a) for a in [0.46875, 4]
	VBROADCASTSD geld<>+232(SB), Y6
	VBROADCASTSD geld<>+168(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+176(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+184(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+192(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+200(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+208(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+216(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VBROADCASTSD geld<>+224(SB), Y15
	VFMADD213PD Y15, Y2, Y6
	VMULPD Y8, Y6, Y6
	VBROADCASTSD geld<>+240(SB), Y7
	VADDPD Y7, Y2, Y7
	VBROADCASTSD geld<>+248(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+256(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+264(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+272(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+280(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+288(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+296(SB), Y15
	VFMADD213PD Y15, Y2, Y7
	VBROADCASTSD geld<>+56(SB), Y9
	VCMPPD $1, Y9, Y2, Y9        // m1: a < 0.46875
	VBLENDVPD Y9, Y4, Y6, Y6
	VBLENDVPD Y9, Y5, Y7, Y7
	// erfc(a) = E (1/sqrt(pi) - r)/a, r = P(1/a^2)/(a^2 Q(1/a^2)),
	// for a > 4: numerator and denominator times a^12, polynomials in s = a^2
	VBROADCASTSD geld<>+72(SB), Y3
	VMINPD Y3, Y2, Y3           // a, at most 28
	VMULPD Y3, Y3, Y4           // s
	VBROADCASTSD geld<>+336(SB), Y5
	VBROADCASTSD geld<>+328(SB), Y15
	VFMADD213PD Y15, Y4, Y5
	VBROADCASTSD geld<>+320(SB), Y15
	VFMADD213PD Y15, Y4, Y5
	VBROADCASTSD geld<>+312(SB), Y15
	VFMADD213PD Y15, Y4, Y5
	VBROADCASTSD geld<>+304(SB), Y15
	VFMADD213PD Y15, Y4, Y5
	VBROADCASTSD geld<>+344(SB), Y15
	VFMADD213PD Y15, Y4, Y5
	VBROADCASTSD geld<>+384(SB), Y10
	VBROADCASTSD geld<>+376(SB), Y15
	VFMADD213PD Y15, Y4, Y10
	VBROADCASTSD geld<>+368(SB), Y15
	VFMADD213PD Y15, Y4, Y10
	VBROADCASTSD geld<>+360(SB), Y15
	VFMADD213PD Y15, Y4, Y10
	VBROADCASTSD geld<>+352(SB), Y15
	VFMADD213PD Y15, Y4, Y10
	VBROADCASTSD geld<>+48(SB), Y15
	VFMADD213PD Y15, Y4, Y10
	VMULPD Y4, Y10, Y10         // s Dm(s)
	VMULPD Y3, Y10, Y11         // denominator a s Dm(s)
	VBROADCASTSD geld<>+80(SB), Y12
	VFMSUB213PD Y5, Y10, Y12    // s Dm(s)/sqrt(pi) - Nn(s)
	VMULPD Y8, Y12, Y12
	VBROADCASTSD geld<>+64(SB), Y13
	VCMPPD $14, Y13, Y2, Y13     // m3: a > 4
	VBLENDVPD Y13, Y12, Y6, Y6
	VBLENDVPD Y13, Y11, Y7, Y7
	VDIVPD Y7, Y6, Y6           // q: erf(z) in m1, else erfc(a)
	VBROADCASTSD geld<>+40(SB), Y3
	VMULPD Y3, Y6, Y6           // q/2
	VADDPD Y3, Y6, Y3           // Phi in m1: 1/2 + erf(z)/2
	VBROADCASTSD geld<>+48(SB), Y4
	VSUBPD Y6, Y4, Y4           // Phi for x > 0: 1 - erfc(a)/2
	VXORPD Y5, Y5, Y5
	VCMPPD $14, Y5, Y0, Y5      // x > 0
	VBLENDVPD Y5, Y4, Y6, Y6    // else Phi = erfc(a)/2
	VBLENDVPD Y9, Y3, Y6, Y6
	VMULPD Y6, Y0, Y4           // y = x Phi
	VMOVUPD Y4, (DI)
	TESTQ DX, DX
	JZ gelu64_next
	VBROADCASTSD geld<>+88(SB), Y9
	VMULPD Y9, Y8, Y8            // phi(x)
	VFMADD231PD Y8, Y0, Y6      // dd = Phi + x phi
	VMOVUPD Y6, (DX)
	ADDQ $32, DX

gelu64_next:
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE gelu64_loop

gelu64_done:
	VZEROUPPER
	RET

// func rowShift64AVX2(x []float64, m, k int)
//
// rowShift64AVX2 subtracts from each of the m rows of k (k >= 4) of x its
// max: four columns at a time, the last k%4 one at a time. The max is the
// same float whatever the order, so the result equals rowMax's.
TEXT ·rowShift64AVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ m+24(FP), R9
	MOVQ k+32(FP), BX
	TESTQ R9, R9
	JZ rowshift64_done

rowshift64_row:
	VMOVUPD (SI), Y0
	LEAQ 32(SI), R11
	LEAQ -4(BX), CX

rowshift64_vmax:
	CMPQ CX, $4
	JLT rowshift64_reduce
	VMAXPD (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $4, CX
	JMP rowshift64_vmax

rowshift64_reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VMAXSD X1, X0, X0

rowshift64_smax:
	TESTQ CX, CX
	JZ rowshift64_sub0
	VMAXSD (R11), X0, X0
	ADDQ $8, R11
	DECQ CX
	JMP rowshift64_smax

rowshift64_sub0:
	VBROADCASTSD X0, Y0
	MOVQ SI, R11
	MOVQ BX, CX

rowshift64_vsub:
	CMPQ CX, $4
	JLT rowshift64_ssub
	VMOVUPD (R11), Y1
	VSUBPD Y0, Y1, Y1
	VMOVUPD Y1, (R11)
	ADDQ $32, R11
	SUBQ $4, CX
	JMP rowshift64_vsub

rowshift64_ssub:
	TESTQ CX, CX
	JZ rowshift64_next
	VMOVSD (R11), X1
	VSUBSD X0, X1, X1
	VMOVSD X1, (R11)
	ADDQ $8, R11
	DECQ CX
	JMP rowshift64_ssub

rowshift64_next:
	LEAQ (SI)(BX*8), SI
	DECQ R9
	JNZ rowshift64_row

rowshift64_done:
	VZEROUPPER
	RET

// Column indices 0..3 and the step 4, as int64, and -inf, for
// causalShift64AVX2.
DATA caus64<>+0(SB)/8, $0
DATA caus64<>+8(SB)/8, $1
DATA caus64<>+16(SB)/8, $2
DATA caus64<>+24(SB)/8, $3
DATA caus64<>+32(SB)/8, $4
DATA caus64<>+40(SB)/8, $0xfff0000000000000
GLOBL caus64<>(SB), RODATA|NOPTR, $48

// func causalShift64AVX2(s []float64, rows, t int)
//
// causalShift64AVX2 is CausalSoftmax's first pass for t a positive
// multiple of 4, as causalShiftAVX2: row r of s (rows rows of t, r%t its
// row in a (t, t) matrix) gets its first r%t+1 entries less their max and
// the rest -inf.
TEXT ·causalShift64AVX2(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ rows+24(FP), R9
	MOVQ t+32(FP), BX
	VMOVDQU caus64<>+0(SB), Y6
	VPBROADCASTQ caus64<>+32(SB), Y5
	VBROADCASTSD caus64<>+40(SB), Y7
	XORQ R10, R10

causal64_row:
	TESTQ R9, R9
	JZ causal64_done
	VMOVQ R10, X4
	VPBROADCASTQ X4, Y4      // the row's index i in its matrix
	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3           // column indices
	VMOVAPD Y7, Y0           // running max

causal64_max:
	VMOVUPD (R11), Y1
	VPCMPGTQ Y4, Y3, Y2      // masked: column > i
	VBLENDVPD Y2, Y7, Y1, Y1
	VMAXPD Y1, Y0, Y0
	VPADDQ Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $4, CX
	JNZ causal64_max

	VEXTRACTF128 $1, Y0, X1
	VMAXPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VMAXSD X1, X0, X0
	VBROADCASTSD X0, Y0

	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3

causal64_sub:
	VMOVUPD (R11), Y1
	VSUBPD Y0, Y1, Y1
	VPCMPGTQ Y4, Y3, Y2
	VBLENDVPD Y2, Y7, Y1, Y1
	VMOVUPD Y1, (R11)
	VPADDQ Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $4, CX
	JNZ causal64_sub

	LEAQ (SI)(BX*8), SI
	INCQ R10
	CMPQ R10, BX
	JLT causal64_next
	XORQ R10, R10

causal64_next:
	DECQ R9
	JMP causal64_row

causal64_done:
	VZEROUPPER
	RET

// Constants of layerNorm8x64AVX2: 1/8, LayerNorm's epsilon 1e-5, 1.
DATA ln64<>+0(SB)/8, $0.125
DATA ln64<>+8(SB)/8, $1e-5
DATA ln64<>+16(SB)/8, $1.0
GLOBL ln64<>(SB), RODATA|NOPTR, $24

// HSUM64(y, x, t) leaves in the low lane of x (the X register of y) the
// sum of y's four lanes, clobbering t.
#define HSUM64(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPD t, x, x; \
	VPERMILPD $1, x, t; \
	VADDSD t, x, x

// func layerNorm8x64AVX2(x, gain, bias, xhat, rstd, y []float64, m int)
//
// layerNorm8x64AVX2 is layerNormForward8 for float64, one row of 8 in two
// vectors: the mean and variance by horizontal sums, rstd =
// 1/sqrt(var+eps), xhat = (x-mean) rstd and y = xhat gain + bias.
TEXT ·layerNorm8x64AVX2(SB), NOSPLIT, $0-152
	MOVQ x_base+0(FP), SI
	MOVQ gain_base+24(FP), AX
	MOVQ bias_base+48(FP), BX
	MOVQ xhat_base+72(FP), DI
	MOVQ rstd_base+96(FP), DX
	MOVQ y_base+120(FP), R8
	MOVQ m+144(FP), CX
	VMOVUPD (AX), Y10
	VMOVUPD 32(AX), Y11
	VMOVUPD (BX), Y12
	VMOVUPD 32(BX), Y13
	VBROADCASTSD ln64<>+0(SB), Y9
	VMOVSD ln64<>+8(SB), X14
	VMOVSD ln64<>+16(SB), X15
	TESTQ CX, CX
	JZ ln864_done

ln864_loop:
	VMOVUPD (SI), Y0
	VMOVUPD 32(SI), Y1
	VADDPD Y1, Y0, Y2
	HSUM64(Y2, X2, X3)
	VBROADCASTSD X2, Y2
	VMULPD Y9, Y2, Y2        // mean
	VSUBPD Y2, Y0, Y0        // c = x - mean
	VSUBPD Y2, Y1, Y1
	VMULPD Y0, Y0, Y4
	VMULPD Y1, Y1, Y5
	VADDPD Y5, Y4, Y4
	HSUM64(Y4, X4, X3)
	VMULSD X9, X4, X4        // variance
	VADDSD X14, X4, X4
	VSQRTSD X4, X4, X4
	VDIVSD X4, X15, X4       // rstd
	VMOVSD X4, (DX)
	VBROADCASTSD X4, Y4
	VMULPD Y4, Y0, Y0        // xhat
	VMULPD Y4, Y1, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VFMADD213PD Y12, Y10, Y0 // xhat gain + bias
	VFMADD213PD Y13, Y11, Y1
	VMOVUPD Y0, (R8)
	VMOVUPD Y1, 32(R8)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, R8
	ADDQ $8, DX
	DECQ CX
	JNZ ln864_loop

ln864_done:
	VZEROUPPER
	RET

// func layerNormRows8x64AVX2(dy, gain, xhat, rstd, dx []float64, m int)
//
// layerNormRows8x64AVX2 is layerNormRows8 for float64, one row of 8 in two
// vectors: with g = dy gain, dx += rstd (g - mean(g) - xhat mean(g xhat)).
TEXT ·layerNormRows8x64AVX2(SB), NOSPLIT, $0-128
	MOVQ dy_base+0(FP), SI
	MOVQ gain_base+24(FP), AX
	MOVQ xhat_base+48(FP), BX
	MOVQ rstd_base+72(FP), DX
	MOVQ dx_base+96(FP), DI
	MOVQ m+120(FP), CX
	VMOVUPD (AX), Y10
	VMOVUPD 32(AX), Y11
	VBROADCASTSD ln64<>+0(SB), Y9
	TESTQ CX, CX
	JZ lnr864_done

lnr864_loop:
	VMULPD (SI), Y10, Y0     // g
	VMULPD 32(SI), Y11, Y1
	VMOVUPD (BX), Y4         // xhat
	VMOVUPD 32(BX), Y5
	VADDPD Y1, Y0, Y2
	VMULPD Y4, Y0, Y6        // g xhat
	VFMADD231PD Y5, Y1, Y6
	HSUM64(Y2, X2, X3)
	HSUM64(Y6, X6, X7)
	VBROADCASTSD X2, Y2
	VMULPD Y9, Y2, Y2        // mean(g)
	VBROADCASTSD X6, Y6
	VMULPD Y9, Y6, Y6        // mean(g xhat)
	VSUBPD Y2, Y0, Y0
	VSUBPD Y2, Y1, Y1
	VFNMADD231PD Y6, Y4, Y0  // g - mean(g) - xhat mean(g xhat)
	VFNMADD231PD Y6, Y5, Y1
	VBROADCASTSD (DX), Y3
	VFMADD213PD (DI), Y3, Y0 // dx + rstd (...)
	VFMADD213PD 32(DI), Y3, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, DI
	ADDQ $8, DX
	DECQ CX
	JNZ lnr864_loop

lnr864_done:
	VZEROUPPER
	RET

// func causalNorm64AVX2(s []float64, rows, t int)
//
// causalNorm64AVX2 is CausalSoftmax's last pass for float64 and t a
// positive multiple of 4, as causalNormAVX2: row r of s, its masked entries
// 0, is divided by its sum, and its masked entries (columns past r%t) are
// set to 0 again whatever the sum.
TEXT ·causalNorm64AVX2(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ rows+24(FP), R9
	MOVQ t+32(FP), BX
	VMOVDQU caus64<>+0(SB), Y6
	VPBROADCASTQ caus64<>+32(SB), Y5
	VBROADCASTSD ln64<>+16(SB), Y8
	VXORPD Y9, Y9, Y9
	XORQ R10, R10

cnorm64_row:
	TESTQ R9, R9
	JZ cnorm64_done
	VMOVQ R10, X4
	VPBROADCASTQ X4, Y4
	MOVQ SI, R11
	MOVQ BX, CX
	VXORPD Y0, Y0, Y0

cnorm64_sum:
	VADDPD (R11), Y0, Y0
	ADDQ $32, R11
	SUBQ $4, CX
	JNZ cnorm64_sum

	HSUM64(Y0, X0, X1)
	VBROADCASTSD X0, Y0
	VDIVPD Y0, Y8, Y0        // 1/sum

	MOVQ SI, R11
	MOVQ BX, CX
	VMOVDQA Y6, Y3

cnorm64_mul:
	VMULPD (R11), Y0, Y1
	VPCMPGTQ Y4, Y3, Y2
	VBLENDVPD Y2, Y9, Y1, Y1
	VMOVUPD Y1, (R11)
	VPADDQ Y5, Y3, Y3
	ADDQ $32, R11
	SUBQ $4, CX
	JNZ cnorm64_mul

	LEAQ (SI)(BX*8), SI
	INCQ R10
	CMPQ R10, BX
	JLT cnorm64_next
	XORQ R10, R10

cnorm64_next:
	DECQ R9
	JMP cnorm64_row

cnorm64_done:
	VZEROUPPER
	RET

// func causalGrad64AVX2(p, dp []float64, t int, scale float64)
//
// causalGrad64AVX2 is CausalSoftmaxGrad for float64, one (t, t) matrix, t
// a positive multiple of 4, as causalGradAVX2: row i of dp becomes scale p
// (dp - sum_j p_j dp_j) on its first i+1 entries and 0 on the rest. The
// masked entries of p must be 0 (as CausalSoftmax leaves them); the masked
// entries of dp are taken as 0 whatever they hold.
TEXT ·causalGrad64AVX2(SB), NOSPLIT, $0-64
	MOVQ p_base+0(FP), SI
	MOVQ dp_base+24(FP), DI
	MOVQ t+48(FP), BX
	VBROADCASTSD scale+56(FP), Y8
	VMOVDQU caus64<>+0(SB), Y6
	VPBROADCASTQ caus64<>+32(SB), Y5
	VXORPD Y9, Y9, Y9
	XORQ R10, R10

cgrad64_row:
	CMPQ R10, BX
	JGE cgrad64_done
	VMOVQ R10, X4
	VPBROADCASTQ X4, Y4
	MOVQ SI, R11
	MOVQ DI, R12
	MOVQ BX, CX
	VXORPD Y0, Y0, Y0
	VMOVDQA Y6, Y3

cgrad64_dot:
	VMOVUPD (R12), Y1
	VPCMPGTQ Y4, Y3, Y2
	VBLENDVPD Y2, Y9, Y1, Y1
	VFMADD231PD (R11), Y1, Y0
	VPADDQ Y5, Y3, Y3
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $4, CX
	JNZ cgrad64_dot

	HSUM64(Y0, X0, X1)
	VBROADCASTSD X0, Y0

	MOVQ SI, R11
	MOVQ DI, R12
	MOVQ BX, CX
	VMOVDQA Y6, Y3

cgrad64_out:
	VMULPD (R11), Y8, Y1     // scale p
	VMOVUPD (R12), Y2
	VSUBPD Y0, Y2, Y2        // dp - dot
	VMULPD Y2, Y1, Y1
	VPCMPGTQ Y4, Y3, Y2      // masked: column > i
	VBLENDVPD Y2, Y9, Y1, Y1
	VMOVUPD Y1, (R12)
	VPADDQ Y5, Y3, Y3
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $4, CX
	JNZ cgrad64_out

	LEAQ (SI)(BX*8), SI
	LEAQ (DI)(BX*8), DI
	INCQ R10
	JMP cgrad64_row

cgrad64_done:
	VZEROUPPER
	RET
