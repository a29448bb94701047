#include "gelu_reference.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace cgelu::reference {
namespace {

constexpr long double kSqrt2OverPi = 0.797884560802865355879892119868763737L;

int64_t OrderedBits(float v) {
  const int32_t bits = std::bit_cast<int32_t>(v);
  return bits < 0 ? -static_cast<int64_t>(bits & 0x7fffffff) : bits;
}

int64_t OrderedBits(double v) {
  const int64_t bits = std::bit_cast<int64_t>(v);
  return bits < 0 ? -(bits & std::numeric_limits<int64_t>::max()) : bits;
}

template <typename T>
uint64_t Distance(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<uint64_t>::max();
  }
  const int64_t da = OrderedBits(a);
  const int64_t db = OrderedBits(b);
  return da > db ? static_cast<uint64_t>(da - db) : static_cast<uint64_t>(db - da);
}

}  // namespace

long double GeluErf(long double x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return x > 0 ? x : -0.0L;
  return 0.5L * x * erfcl(-x / std::sqrt(2.0L));
}

double GeluErfDouble(double x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return x > 0 ? x : -0.0;
  constexpr double kInvSqrt2Hi = 0.7071067811865476;
  constexpr double kInvSqrt2Lo = -4.833646656726457e-17;
  constexpr double kTwoOverSqrtPi = 1.1283791670955126;
  const double t = -x * kInvSqrt2Hi;
  const double t_lo = std::fma(-x, kInvSqrt2Hi, -t) - x * kInvSqrt2Lo;
  const double erfc = std::erfc(t) - t_lo * kTwoOverSqrtPi * std::exp(-t * t);
  return 0.5 * x * erfc;
}

long double GeluTanh(long double x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return x > 0 ? x : -0.0L;
  const long double u = kSqrt2OverPi * (x + 0.044715L * x * x * x);
  return x / (1.0L + expl(-2.0L * u));
}

double GeluTanhFormulaFp64(double x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return x > 0 ? x : -0.0;
  const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}

long double Clip(long double y, long double lo, long double hi) {
  if (std::isnan(y)) return y;
  if (y < lo) y = lo;
  if (y > hi) y = hi;
  return y;
}

uint64_t UlpDistance(float a, float b) { return Distance(a, b); }
uint64_t UlpDistance(double a, double b) { return Distance(a, b); }

uint64_t UlpDistance16(uint16_t a, uint16_t b, bool bf16) {
  const uint16_t exponent_mask = bf16 ? 0x7f80 : 0x7c00;
  const auto is_nan = [&](uint16_t v) {
    return (v & exponent_mask) == exponent_mask && (v & ~exponent_mask & 0x7fff) != 0;
  };
  if (is_nan(a) || is_nan(b)) {
    return is_nan(a) && is_nan(b) ? 0 : std::numeric_limits<uint64_t>::max();
  }
  const auto ordered = [](uint16_t v) -> int64_t {
    return (v & 0x8000) ? -static_cast<int64_t>(v & 0x7fff) : static_cast<int64_t>(v);
  };
  const int64_t da = ordered(a);
  const int64_t db = ordered(b);
  return da > db ? static_cast<uint64_t>(da - db) : static_cast<uint64_t>(db - da);
}

float HalfToFloat(uint16_t h) {
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31) {
    return mantissa == 0 ? sign * std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::quiet_NaN();
  }
  return sign * std::ldexp(static_cast<float>(mantissa + 1024), exponent - 25);
}

uint16_t FloatToHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return 0x7e00;
  const float magnitude = std::fabs(f);
  if (magnitude >= 65520.0f) return sign | 0x7c00;
  // Search the nearest of the (at most 31 * 1024) finite magnitudes by their exact float values.
  int exponent = 0;
  std::frexp(magnitude, &exponent);  // magnitude = m * 2^exponent, m in [0.5, 1)
  const int quantum_exponent = std::max(exponent - 11, -24);
  const double units = std::ldexp(static_cast<double>(magnitude), -quantum_exponent);
  const double rounded = std::nearbyint(units);  // round half to even in the current (default) mode
  const double value = std::ldexp(rounded, quantum_exponent);
  // Re-encode the exactly representable value.
  if (value == 0) return sign;
  int e = 0;
  const double m = std::frexp(value, &e);  // value = m * 2^e
  if (e - 1 < -14) return sign | static_cast<uint16_t>(std::ldexp(value, 24));
  const int biased = e - 1 + 15;
  const uint16_t mantissa = static_cast<uint16_t>(std::ldexp(m, 11)) & 0x3ff;
  return sign | static_cast<uint16_t>(biased << 10) | mantissa;
}

float BFloat16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToBFloat16(float f) {
  if (std::isnan(f)) return 0x7fc0;
  const float magnitude = std::fabs(f);
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const uint32_t bits = std::bit_cast<uint32_t>(magnitude);
  const uint16_t down = static_cast<uint16_t>(bits >> 16);
  const float low = BFloat16ToFloat(down);
  // Past the largest finite bfloat16 the next step up is 2^128 (rounding there gives infinity).
  const double high =
      down + 1 == 0x7f80 ? 0x1p128 : BFloat16ToFloat(static_cast<uint16_t>(down + 1));
  const double to_low = static_cast<double>(magnitude) - low;
  const double to_high = high - magnitude;
  if (to_low < to_high) return sign | down;
  if (to_high < to_low) return sign | static_cast<uint16_t>(down + 1);
  return sign | ((down & 1) ? static_cast<uint16_t>(down + 1) : down);
}

}  // namespace cgelu::reference
