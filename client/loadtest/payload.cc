#include "payload.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cgelu::loadtest {
namespace {

enum class Kind { kFP32, kFP64, kFP16, kBF16 };

absl::StatusOr<Kind> KindOf(const std::string& datatype) {
  if (datatype == "FP32") return Kind::kFP32;
  if (datatype == "FP64") return Kind::kFP64;
  if (datatype == "FP16") return Kind::kFP16;
  if (datatype == "BF16") return Kind::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("datatype ", datatype, " is not one of FP32, FP64, FP16, BF16"));
}

template <typename T>
T Load(const std::string& data, int64_t i) {
  T value;
  std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
  return value;
}
template <typename T>
void Store(std::string& data, int64_t i, T value) {
  std::memcpy(data.data() + i * sizeof(T), &value, sizeof(T));
}

long double Get(Kind kind, const std::string& data, int64_t i) {
  switch (kind) {
    case Kind::kFP32:
      return Load<float>(data, i);
    case Kind::kFP64:
      return Load<double>(data, i);
    case Kind::kFP16:
      return HalfToFloat(Load<uint16_t>(data, i));
    case Kind::kBF16:
      return BFloat16ToFloat(Load<uint16_t>(data, i));
  }
  return 0;
}

void Set(Kind kind, std::string& data, int64_t i, long double value) {
  switch (kind) {
    case Kind::kFP32:
      Store(data, i, static_cast<float>(value));
      break;
    case Kind::kFP64:
      Store(data, i, static_cast<double>(value));
      break;
    case Kind::kFP16:
      Store(data, i, FloatToHalf(static_cast<float>(value)));
      break;
    case Kind::kBF16:
      Store(data, i, FloatToBFloat16(static_cast<float>(value)));
      break;
  }
}

// Maps an IEEE bit pattern of `bits` width to an integer that grows with the value, so the
// difference of two is their distance in ULP (-0 and +0 both map to 0).
int64_t Ordered(uint64_t pattern, int bits) {
  const uint64_t sign_bit = uint64_t{1} << (bits - 1);
  const auto magnitude = static_cast<int64_t>(pattern & (sign_bit - 1));
  return (pattern & sign_bit) != 0 ? -magnitude : magnitude;
}

// ULP distance between the element i of `a` and of `b` in their (common) datatype.
uint64_t UlpDistance(Kind kind, const std::string& a, const std::string& b, int64_t i) {
  int64_t x = 0, y = 0;
  switch (kind) {
    case Kind::kFP32:
      x = Ordered(Load<uint32_t>(a, i), 32), y = Ordered(Load<uint32_t>(b, i), 32);
      break;
    case Kind::kFP64: {
      // Halved so the difference of two 63-bit magnitudes cannot overflow; exact below 2^62 ULP.
      x = Ordered(Load<uint64_t>(a, i), 64) / 2, y = Ordered(Load<uint64_t>(b, i), 64) / 2;
      const uint64_t half = static_cast<uint64_t>(x > y ? x - y : y - x);
      return half > (uint64_t{1} << 61) ? UINT64_MAX : 2 * half;
    }
    case Kind::kFP16:
    case Kind::kBF16:
      x = Ordered(Load<uint16_t>(a, i), 16), y = Ordered(Load<uint16_t>(b, i), 16);
      break;
  }
  return static_cast<uint64_t>(x > y ? x - y : y - x);
}

bool Matches(Kind kind, const ClipSettings& clip, const std::string& expected,
             const std::string& actual, int64_t i) {
  const long double want = Get(kind, expected, i);
  const long double got = Get(kind, actual, i);
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (want == got) return true;  // also -0 == +0 and equal infinities
  if (std::isinf(want) || std::isinf(got)) return false;
  const bool half = kind == Kind::kFP16 || kind == Kind::kBF16;
  if (UlpDistance(kind, expected, actual, i) <= (half ? 1u : 4u)) return true;
  if (clip.tanh) {
    // 1 + tanh(z) cancels for x below about -5, so a server evaluating the formula in fp32 (or
    // fp64) is only absolutely accurate there, as the numerical contract allows.
    const bool fp64 = kind == Kind::kFP64;
    const long double relative = fp64 ? 1e-12L : 1e-6L;
    const long double absolute = fp64 ? 1e-14L : 1e-12L;
    return std::fabs(got - want) <= relative * std::fabs(want) + absolute;
  }
  return false;
}

}  // namespace

uint16_t FloatToHalf(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u);  // NaN, inf
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // rounds to at least 65520: overflows to inf
  if (x < 0x38800000u) {
    // Below 2^-14: a binary16 subnormal m * 2^-24. Scaling by 2^24 is exact; nearbyint rounds
    // to nearest even (m == 1024 is, correctly, the smallest normal).
    const float m = std::nearbyint(std::bit_cast<float>(x) * 16777216.0f);
    return sign | static_cast<uint16_t>(m);
  }
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // rebias the exponent (127 -> 15) and round to nearest even
  return sign | static_cast<uint16_t>(x >> 13);
}

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t FloatToBFloat16(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

long double ReferenceClippedGelu(long double x, const ClipSettings& clip) {
  long double y;
  if (std::isnan(x)) {
    y = x;
  } else if (std::isinf(x)) {
    y = x > 0 ? x : -0.0L;  // the limit of x * Phi(x)
  } else if (clip.tanh) {
    const long double k = std::sqrt(2.0L / 3.14159265358979323846264338327950288L);
    y = 0.5L * x * (1.0L + std::tanh(k * (x + 0.044715L * x * x * x)));
  } else {
    y = 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
  }
  if (std::isnan(y)) return y;
  // torch.clamp: max(y, min) then min(., max).
  y = y < clip.min ? static_cast<long double>(clip.min) : y;
  return y > clip.max ? static_cast<long double>(clip.max) : y;
}

absl::StatusOr<Payload> MakePayload(client::Tensor input, const ClipSettings& clip) {
  auto kind = KindOf(input.datatype);
  if (!kind.ok()) return kind.status();
  const int64_t n = input.num_elements();
  if (static_cast<int64_t>(input.data.size()) !=
      n * static_cast<int64_t>(client::DatatypeSize(input.datatype))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input has ", input.data.size(), " bytes, expected ", n, " ", input.datatype, " elements"));
  }
  Payload payload;
  payload.expected = input;
  for (int64_t i = 0; i < n; ++i) {
    Set(*kind, payload.expected.data, i, ReferenceClippedGelu(Get(*kind, input.data, i), clip));
  }
  payload.input = std::move(input);
  return payload;
}

absl::StatusOr<std::vector<Payload>> MakeRandomPayloads(const std::vector<int64_t>& shape,
                                                        const std::string& datatype, int count,
                                                        uint64_t seed, const ClipSettings& clip) {
  auto kind = KindOf(datatype);
  if (!kind.ok()) return kind.status();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> value(-8.0, 8.0);
  std::vector<Payload> payloads;
  for (int p = 0; p < count; ++p) {
    client::Tensor input{datatype, shape, {}};
    const int64_t n = input.num_elements();
    input.data.resize(static_cast<size_t>(n) * client::DatatypeSize(datatype));
    for (int64_t i = 0; i < n; ++i) Set(*kind, input.data, i, value(rng));
    auto payload = MakePayload(std::move(input), clip);
    if (!payload.ok()) return payload.status();
    payloads.push_back(*std::move(payload));
  }
  return payloads;
}

absl::Status VerifyOutput(const Payload& payload, const client::Tensor& actual,
                          const ClipSettings& clip) {
  const client::Tensor& expected = payload.expected;
  if (actual.datatype != expected.datatype || actual.shape != expected.shape) {
    return absl::DataLossError(absl::StrCat(
        "output is ", actual.datatype, " [", absl::StrJoin(actual.shape, ","), "], expected ",
        expected.datatype, " [", absl::StrJoin(expected.shape, ","), "]"));
  }
  if (actual.data.size() != expected.data.size()) {
    return absl::DataLossError(
        absl::StrCat("output has ", actual.data.size(), " bytes, expected ", expected.data.size()));
  }
  const Kind kind = *KindOf(expected.datatype);
  const int64_t n = expected.num_elements();
  int64_t mismatches = 0;
  int64_t first = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (Matches(kind, clip, expected.data, actual.data, i)) continue;
    if (first < 0) first = i;
    ++mismatches;
  }
  if (mismatches == 0) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(mismatches, " of ", n, " elements differ; first at index ", first, ": input ",
                   static_cast<double>(Get(kind, payload.input.data, first)), ", expected ",
                   static_cast<double>(Get(kind, expected.data, first)), ", got ",
                   static_cast<double>(Get(kind, actual.data, first))));
}

}  // namespace cgelu::loadtest
