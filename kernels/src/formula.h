// The constants of the clipped GELU formula, shared by every instruction-set implementation.
//
// Every ISA file (kernel_scalar.cc, kernel_avx2.cc, kernel_avx512.cc) evaluates the same sequence
// of IEEE operations with these constants; that is what makes the outputs bit-identical across
// instruction sets. Only constants live here: an inline function compiled into both an AVX-512 file
// and the portable file would be merged by the linker and could run AVX-512 code on a CPU without
// it.
//
// fp32, approximate = "none" (erf form), for a = min(|x|, kAMax):
//   Phi(-a) = exp(-a^2/2) * F(a),   F(a) = H(q) * 2 / (a + 2),   q = (a - 2) / (a + 2)
//   H is a degree-10 polynomial in q on [-1, 0.7576] (tools/fit_coefficients.py; relative error
//   4.2e-8 with the float32 coefficients). exp(-a^2/2) takes the argument as hi + lo (a * (-a/2)
//   and its exact fma residual), so the far tail keeps full relative accuracy, and scales by 2^n
//   only in the final multiply, so a subnormal result is rounded once. F's two divisions share one
//   quotient r2 = 2/(a + 2); q and F then get one correction step each from their fma residuals. x
//   < 0:  y = -(a * Phi(-a)), scaled by 2^n last;  x >= 0:  y = x - a * Phi(-a) in one fma. For |x|
//   < 2^-26 the formula gives Phi = 0.5 exactly (H(-1) = 1/2), hence the contract's "subnormal x ->
//   x/2 rounded".
// fp32, approximate = "tanh": evaluated in float64 as y = x / (1 + exp(z)),
//   z = -2 * sqrt(2/pi) * (x + 0.044715 x^3) (the same value as 0.5 x (1 + tanh(u)) without its
//   cancellation), with x limited to [-14, 14] inside exp (beyond it the fp32 result is already
//   -0 or x), then rounded to fp32 once.
#pragma once

#include <cstdint>

namespace cgelu::kernels::internal {

// Limits |x| inside the formula so the exp argument stays >= -105.2 (beyond it the fp32 result is
// -0 or x).
inline constexpr float kAMax = 14.5f;
// x <= -kZeroA gives -0 without evaluating the negative form: |gelu(x)| < 2^-150 there (the
// crossing is at x = -14.356). Skipping it keeps such inputs off the subnormal path, where every
// underflowing vector instruction costs a microcode assist (scenario S15).
inline constexpr float kZeroA = 14.375f;
// In the x >= 0 form, x - a * Phi(-a), a * Phi(-a) is below half an ulp of x once the exponent n
// is under -100 (a > 11.7), so n is raised to -100 there: same result, no subnormal intermediate.
inline constexpr int kPositiveMinExponent = -100;
// Above this |x| (x < 0) the result may be subnormal (|gelu(-13.2)| ~ 2^-126); the AVX-512 and
// AVX2 files check those lanes and round subnormal results with integer instructions.
inline constexpr float kSubnormalBelowA = 13.0f;

// H(q) = (1 + a/2) * Phi(-a) * exp(a^2/2), q = (a - 2)/(a + 2) in [-1, 0.7576]; coefficients
// c0..c10. Horner's scheme in float gives exactly H(-1) = 1/2 with these, so Phi(-a) evaluates to
// exactly 0.5 for |x| < 2^-26 (the subnormal-input tests check it).
inline constexpr int kHDegree = 10;
inline constexpr float kH[kHDegree + 1] = {
    0x1.5845dcp-2f,   -0x1.535bb6p-3f, 0x1.d7d598p-7f,   0x1.2cd218p-6f,
    -0x1.fb9550p-13f, -0x1.ba584ep-9f, -0x1.eec4f8p-11f, 0x1.cd67e8p-12f,
    0x1.78da76p-12f,  0x1.1ae6fep-16f, -0x1.32048cp-15f,
};

// exp(t) = 1 + t * P(t) on |t| <= ln2/2 (+ the lo part); P coefficients c0..c5.
inline constexpr int kExpDegree = 5;
inline constexpr float kExpP[kExpDegree + 1] = {
    0x1.000000p+0f, 0x1.fffffep-2f, 0x1.55547ep-3f, 0x1.55568ep-5f, 0x1.123d12p-7f, 0x1.6be498p-10f,
};

inline constexpr float kLog2e = 0x1.715476p+0f;
// ln2 = kLn2Hi + kLn2Lo; kLn2Hi has 14 significant bits, so n * kLn2Hi is exact for |n| < 2^10.
inline constexpr float kLn2Hi = 0x1.62e400p-1f;
inline constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
// Adding 1.5 * 2^23 rounds a float (|v| < 2^22) to the nearest integer, in the low mantissa bits.
inline constexpr float kRoundMagic = 0x1.8p23f;
// Phi(-a) = s * 2^n is formed as (s * 2^(n + kScaleBias)) * 2^-kScaleBias: the first product is
// exact (normal), the second rounds once even when the result is subnormal.
inline constexpr int kScaleBias = 64;
inline constexpr float kScaleDown = 0x1p-64f;

// tanh mode, float64: z = x * (kTanhK1 + kTanhK2 * x^2).
inline constexpr double kTanhK1 = -1.5957691216057308;   // -2 * sqrt(2 / pi)
inline constexpr double kTanhK2 = -0.07135481627260025;  // -2 * sqrt(2 / pi) * 0.044715
inline constexpr double kTanhXMax = 14.0;
inline constexpr double kLog2eD = 0x1.71547652b82fep+0;
inline constexpr double kLn2HiD = 0x1.62e42feep-1;  // 21 trailing zero bits: n * kLn2HiD is exact
inline constexpr double kLn2LoD = 0x1.a39ef35793c76p-33;
inline constexpr double kRoundMagicD = 0x1.8p52;
// exp(t) on |t| <= ln2/2 as Taylor 1/k!, k = 0..10 (truncation < 1e-13, far below fp32).
inline constexpr int kExpDDegree = 10;
inline constexpr double kExpD[kExpDDegree + 1] = {
    1.0,       1.0,        1.0 / 2,     1.0 / 6,      1.0 / 24,      1.0 / 120,
    1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
};

inline constexpr uint16_t kF16QuietBit = 0x0200u;
inline constexpr uint16_t kBF16QuietBit = 0x0040u;

}  // namespace cgelu::kernels::internal
