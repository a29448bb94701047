// Portable implementation of the clipped GELU kernel; the reference the SIMD files mirror
// operation by operation (see formula.h). Compiled with -ffp-contract=off so the compiler adds no
// fused multiply-add beyond the explicit std::fma calls, which the SIMD files issue as vfmadd.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "formula.h"
#include "kernel_isa.h"

namespace cgelu::kernels::internal {
namespace {

// x86 minps/maxps semantics (the second operand when unordered or equal), so the SIMD files can use
// the single instructions. Every caller below overrides NaN results at the end, but equal signed
// zeros must pick the same operand everywhere.
float MinPs(float a, float b) { return a < b ? a : b; }
float MaxPs(float a, float b) { return a > b ? a : b; }
double MinPd(double a, double b) { return a < b ? a : b; }
double MaxPd(double a, double b) { return a > b ? a : b; }

// v * 2^n rounded once, for the range the formula produces (v * 2^(n + kScaleBias) is normal):
// the value AVX-512's vscalefps computes.
float ScaleByPowerOfTwo(float v, int32_t n) {
  const float scale = std::bit_cast<float>(static_cast<uint32_t>(n + kScaleBias + 127) << 23);
  return (v * scale) * kScaleDown;
}

float GeluErf(float x) {
  const float a = MinPs(std::fabs(x), kAMax);
  const float half_a = a * -0.5f;
  // F(a) = Phi(-a) * exp(a^2 / 2) = H(q) * r2 with r2 = 2 / (a + 2), q = (a - 2) / (a + 2).
  const float r2 = 2.0f / (a + 2.0f);
  float q = std::fma(a, 0.5f, -1.0f) * r2;
  // One correction step with the residual ((a - 2) - q (a + 2)) / 2 = q (-a/2) - (q + 1 - a/2).
  const float q_residual = std::fma(q, half_a, -((q + 1.0f) + half_a));
  q = std::fma(r2, q_residual, q);
  float h = kH[kHDegree];
  for (int j = kHDegree - 1; j >= 0; --j) h = std::fma(h, q, kH[j]);
  // F = f0 + f_residual * r2 with the residual h - f0 (a + 2) / 2 = f0 (-a/2) + (h - f0).
  const float f0 = h * r2;
  const float f_residual = std::fma(f0, half_a, h - f0);
  // exp(u + u_lo) = 2^n * exp(t), where u + u_lo = a * (-a/2) exactly.
  const float u = a * half_a;
  const float u_lo = std::fma(a, half_a, -u);
  const float shifted = std::fma(u, kLog2e, kRoundMagic);
  const float n = shifted - kRoundMagic;
  const int32_t n_int = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRoundMagic);
  float t = std::fma(n, -kLn2Hi, u);
  t = std::fma(n, -kLn2Lo, t);
  t = t + u_lo;
  float p = kExpP[kExpDegree];
  for (int j = kExpDegree - 1; j >= 0; --j) p = std::fma(p, t, kExpP[j]);
  // Phi(-a) = s * 2^n with s = F * exp(t) = (f0 + f_residual * r2) * (1 + t p), summed so that
  // only the last addition rounds at full magnitude.
  const float s = f0 + std::fma(f0, t * p, f_residual * r2);
  // x >= 0: x - a Phi(-a) in one rounding; a = min(x, kAMax) keeps +inf at +inf (beyond kAMax the
  // product is far below half an ulp of x). A NaN x propagates through the addend, and
  // -0 - 0 * 0.5 = -0 keeps gelu(-0) = -0.
  if (!(x < 0.0f)) {
    return std::fma(-a, ScaleByPowerOfTwo(s, std::max(n_int, kPositiveMinExponent)), x);
  }
  if (x <= -kZeroA) return -0.0f;
  // x < 0 (then a = -x): -(a s) 2^n, scaled last so a subnormal result is rounded once.
  return ScaleByPowerOfTwo(std::fma(-a, s, -0.0f), n_int);
}

double ExpD(double z) {
  const double shifted = std::fma(z, kLog2eD, kRoundMagicD);
  const double n = shifted - kRoundMagicD;
  const int64_t n_int = std::bit_cast<int64_t>(shifted) - std::bit_cast<int64_t>(kRoundMagicD);
  double t = std::fma(n, -kLn2HiD, z);
  t = std::fma(n, -kLn2LoD, t);
  double p = kExpD[kExpDDegree];
  for (int j = kExpDDegree - 1; j >= 0; --j) p = std::fma(p, t, kExpD[j]);
  return p * std::bit_cast<double>(static_cast<uint64_t>(n_int + 1023) << 52);
}

float GeluTanh(float x) {
  // Operand order keeps a NaN x (maxpd returns its second operand when unordered).
  const double x_low = MaxPd(-kTanhXMax, static_cast<double>(x));
  const double x_exp = MinPd(x_low, kTanhXMax);
  const double z = x_exp * std::fma(x_exp * x_exp, kTanhK2, kTanhK1);
  return static_cast<float>(x_low / (1.0 + ExpD(z)));
}

// torch.clamp: max(y, lo) then min(., hi).
float Clip(float y, float lo, float hi) { return MinPs(hi, MaxPs(lo, y)); }

// A NaN input comes out as the same NaN, quieted: every operation it meets has it as the only NaN
// operand, which x86 (scalar and vector alike) passes through with the quiet bit set.
float ClippedGelu(float x, Approximate approximate, float lo, float hi) {
  return Clip(approximate == Approximate::kTanh ? GeluTanh(x) : GeluErf(x), lo, hi);
}

// Round to nearest even, as vcvtps2ph with _MM_FROUND_TO_NEAREST_INT. NaN is handled by callers.
uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (magnitude < 0x38800000u) {                        // below 2^-14: a half subnormal
    // Exact scaling to units of 2^-24, then round to an integer with the 1.5 * 2^23 trick.
    const float units = std::bit_cast<float>(magnitude) * 0x1p24f;
    const float rounded = (units + kRoundMagic) - kRoundMagic;
    return sign | static_cast<uint16_t>(rounded);
  }
  const uint32_t rebased = magnitude - (112u << 23);
  return sign | static_cast<uint16_t>((rebased + 0xfffu + ((rebased >> 13) & 1u)) >> 13);
}

uint16_t FloatToBFloat16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// FP64 is computed in x87 long double (64-bit significand) with the C library's erfcl/expl and
// rounded once: the argument -x/sqrt(2) then carries 11 extra bits, which keeps the far tail within
// a few ULP, and there is no vector path, so every ISA gives the same bits.
double GeluErfFp64(double x) {
  // Below -40 the result rounds to -0 in double; limiting x avoids -inf * 0.
  const long double xl = MaxPd(x, -40.0);
  constexpr long double kMinusInvSqrt2 = -0.707106781186547524400844362104849039L;
  return static_cast<double>(0.5L * xl * erfcl(xl * kMinusInvSqrt2));
}

double GeluTanhFp64(double x) {
  // Below -60 the result is 0 in double; limiting x keeps -inf / inf out of the division.
  const long double x_low = MaxPd(x, -60.0);
  const long double x_exp = MinPd(x_low, 60.0);
  // The exponent reaches ~1e4 here, so its constants need long double precision too.
  constexpr long double kK1 = -1.59576912160573071175978423973752747L;  // -2 sqrt(2/pi)
  constexpr long double kK2 = kK1 * 0.044715L;
  const long double z = x_exp * (kK1 + x_exp * x_exp * kK2);
  return static_cast<double>(x_low / (1.0L + expl(z)));
}

double ClippedGeluFp64(double x, Approximate approximate, double lo, double hi) {
  if (std::isnan(x)) {
    return std::bit_cast<double>(std::bit_cast<uint64_t>(x) | (uint64_t{1} << 51));
  }
  const double y = approximate == Approximate::kTanh ? GeluTanhFp64(x) : GeluErfFp64(x);
  return MinPd(hi, MaxPd(lo, y));
}

template <typename T>
T Load(const void* base, size_t i) {
  T value;
  std::memcpy(&value, static_cast<const char*>(base) + i * sizeof(T), sizeof(T));
  return value;
}

template <typename T>
void Store(void* base, size_t i, T value) {
  std::memcpy(static_cast<char*>(base) + i * sizeof(T), &value, sizeof(T));
}

// FP16 and BF16: the fp32 GELU from the table (Gelu16Table), the fp32 clip, one rounding to
// nearest-even; a NaN input comes back as itself with the quiet bit set.
void Run16(const Segment& segment, size_t begin, size_t end, float lo, float hi) {
  const bool bf16 = segment.dtype == DType::kBF16;
  const float* gelu = Gelu16Table(segment.dtype, segment.params.approximate);
  const uint16_t infinity = bf16 ? 0x7f80u : 0x7c00u;  // magnitudes above it are NaN
  const uint16_t quiet_bit = bf16 ? kBF16QuietBit : kF16QuietBit;
  for (size_t i = begin; i < end; ++i) {
    const uint16_t v = Load<uint16_t>(segment.input, i);
    uint16_t out;
    if ((v & 0x7fffu) > infinity) {
      out = static_cast<uint16_t>(v | quiet_bit);
    } else {
      const float y = Clip(gelu[v], lo, hi);
      out = bf16 ? FloatToBFloat16(y) : FloatToHalf(y);
    }
    Store(segment.output, i, out);
  }
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

void ClippedGeluScalar(const Segment& segment, size_t begin, size_t end) {
  const Approximate approximate = segment.params.approximate;
  const float lo = static_cast<float>(segment.params.min);
  const float hi = static_cast<float>(segment.params.max);
  switch (segment.dtype) {
    case DType::kFP32:
      for (size_t i = begin; i < end; ++i) {
        Store(segment.output, i, ClippedGelu(Load<float>(segment.input, i), approximate, lo, hi));
      }
      break;
    case DType::kFP64:
      for (size_t i = begin; i < end; ++i) {
        Store(segment.output, i,
              ClippedGeluFp64(Load<double>(segment.input, i), approximate, segment.params.min,
                              segment.params.max));
      }
      break;
    case DType::kFP16:
    case DType::kBF16:
      Run16(segment, begin, end, lo, hi);
      break;
  }
}

}  // namespace cgelu::kernels::internal
