// Accuracy of the CPU kernel against high-precision references (../shared/reference/numerics.md),
// on every instruction set this CPU supports.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cgelu/kernels/clipped_gelu.h"
#include "gelu_reference.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace cgelu::kernels {
namespace {

using testing::RunOne;
using testing::SupportedIsas;
constexpr float kInf = std::numeric_limits<float>::infinity();

bool WithinTanhTolerance(double out, double ref) {
  if (std::isinf(ref)) return out == ref;
  return std::fabs(out - ref) <= 1e-6 * std::fabs(ref) + 1e-12;
}

struct Case {
  float x;
  float expected;
};

// Rows of cases/clipped_gelu_fp32.tsv grouped by (approximate, min, max).
std::map<std::tuple<std::string, double, double>, std::vector<Case>> LoadCases() {
  std::ifstream file(std::string(CGELU_SHARED_DIR) + "/cases/clipped_gelu_fp32.tsv");
  std::map<std::tuple<std::string, double, double>, std::vector<Case>> groups;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string approximate, min, max, x, expected, x_hex, expected_hex;
    std::getline(fields, approximate, '\t');
    std::getline(fields, min, '\t');
    std::getline(fields, max, '\t');
    std::getline(fields, x, '\t');
    std::getline(fields, expected, '\t');
    std::getline(fields, x_hex, '\t');
    std::getline(fields, expected_hex, '\t');
    groups[{approximate, std::strtod(min.c_str(), nullptr), std::strtod(max.c_str(), nullptr)}]
        .push_back({static_cast<float>(std::strtod(x_hex.c_str(), nullptr)),
                    static_cast<float>(std::strtod(expected_hex.c_str(), nullptr))});
  }
  return groups;
}

TEST(Accuracy, SharedCasesOnEveryIsa) {
  const auto groups = LoadCases();
  size_t rows = 0;
  for (const auto& [key, cases] : groups) rows += cases.size();
  ASSERT_EQ(rows, 456u) << "could not read " << CGELU_SHARED_DIR << "/cases/clipped_gelu_fp32.tsv";
  for (Isa isa : SupportedIsas()) {
    for (const auto& [key, cases] : groups) {
      const auto& [approximate_name, min, max] = key;
      const ClipParams params{min, max, *ParseApproximate(approximate_name)};
      std::vector<float> in;
      for (const Case& c : cases) in.push_back(c.x);
      // The whole group as one tensor, and each value alone (a different tail position).
      std::vector<float> together(in.size());
      RunOne({in.data(), together.data(), in.size(), DType::kFP32, params}, isa);
      for (size_t i = 0; i < cases.size(); ++i) {
        float alone = 0;
        RunOne({&in[i], &alone, 1, DType::kFP32, params}, isa);
        const float expected = cases[i].expected;
        SCOPED_TRACE(::testing::Message() << IsaName(isa) << " " << approximate_name << " [" << min
                                          << ", " << max << "] x=" << std::hexfloat << in[i]
                                          << " expected=" << expected << " got=" << together[i]);
        EXPECT_EQ(std::bit_cast<uint32_t>(alone), std::bit_cast<uint32_t>(together[i]));
        if (std::isnan(expected)) {
          EXPECT_TRUE(std::isnan(together[i]));
        } else if (params.approximate == Approximate::kNone) {
          EXPECT_LE(reference::UlpDistance(together[i], expected), 4u);
        } else {
          EXPECT_TRUE(WithinTanhTolerance(together[i], expected));
        }
      }
    }
  }
}

TEST(Accuracy, SpecialInputsFollowThePolicy) {
  const std::vector<float> in = {std::nanf(""), kInf,   -kInf,     -0.0f,       0.0f,
                                 -1e-40f,       1e-40f, 0x1p-149f, -0x1.8p-148f};
  for (Isa isa : SupportedIsas()) {
    for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
      SCOPED_TRACE(::testing::Message() << IsaName(isa) << " " << ApproximateName(approximate));
      std::vector<float> out(in.size());
      RunOne({in.data(), out.data(), in.size(), DType::kFP32, {-kInf, kInf, approximate}}, isa);
      EXPECT_TRUE(std::isnan(out[0]));
      EXPECT_EQ(out[1], kInf);
      EXPECT_EQ(out[2], 0.0f);
      EXPECT_TRUE(std::signbit(out[2])) << "gelu(-inf) must be -0.0";
      EXPECT_EQ(out[3], 0.0f);
      EXPECT_TRUE(std::signbit(out[3])) << "gelu(-0.0) must be -0.0";
      EXPECT_FALSE(std::signbit(out[4]));
      for (size_t i = 5; i < in.size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(in[i] * 0.5f))
            << "subnormal x must give x/2 rounded, x=" << std::hexfloat << in[i];
      }
      // Clipping never hides a NaN, and +inf is clipped like any value.
      std::vector<float> clipped(in.size());
      RunOne({in.data(), clipped.data(), in.size(), DType::kFP32, {0.5, 0.5, approximate}}, isa);
      EXPECT_TRUE(std::isnan(clipped[0]));
      for (size_t i = 1; i < in.size(); ++i) EXPECT_EQ(clipped[i], 0.5f);
    }
  }
}

// A strided sample of all 2^32 fp32 patterns (the exhaustive sweep is tools/cgelu-ulp-sweep).
TEST(Accuracy, SampledFp32SweepOnEveryIsa) {
  constexpr size_t kSamples = size_t{1} << 20;
  std::vector<float> in(kSamples);
  for (size_t i = 0; i < kSamples; ++i) {
    in[i] = std::bit_cast<float>(static_cast<uint32_t>(i * 4096 + (i * 2654435761u) % 4096));
  }
  std::vector<float> erf_ref(kSamples), tanh_ref(kSamples);
  for (size_t i = 0; i < kSamples; ++i) {
    erf_ref[i] = static_cast<float>(reference::GeluErfDouble(in[i]));
    tanh_ref[i] = static_cast<float>(reference::GeluTanhFormulaFp64(in[i]));
  }
  for (Isa isa : SupportedIsas()) {
    std::vector<float> out(kSamples);
    RunOne({in.data(), out.data(), kSamples, DType::kFP32, {-kInf, kInf, Approximate::kNone}}, isa,
           0);
    uint64_t worst = 0;
    for (size_t i = 0; i < kSamples; ++i) {
      const uint64_t ulp = reference::UlpDistance(out[i], erf_ref[i]);
      EXPECT_LE(ulp, 4u) << IsaName(isa) << " x=" << std::hexfloat << in[i];
      if (!std::isnan(in[i])) worst = std::max(worst, ulp);
    }
    RecordProperty(std::string(IsaName(isa)) + "_erf_max_ulp", static_cast<int>(worst));
    RunOne({in.data(), out.data(), kSamples, DType::kFP32, {-kInf, kInf, Approximate::kTanh}}, isa,
           0);
    for (size_t i = 0; i < kSamples; ++i) {
      if (std::isnan(in[i])) {
        EXPECT_TRUE(std::isnan(out[i]));
        continue;
      }
      EXPECT_TRUE(WithinTanhTolerance(out[i], tanh_ref[i]))
          << IsaName(isa) << " x=" << std::hexfloat << in[i] << " out=" << out[i]
          << " ref=" << tanh_ref[i];
    }
  }
}

// The double-precision sweep reference against the long double one, on the region that matters.
TEST(Accuracy, Fp32AgainstLongDoubleReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-15.0f, 6.0f);
  std::vector<float> in(1 << 16);
  for (float& x : in) x = dist(rng);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> out(in.size());
    RunOne({in.data(), out.data(), in.size(), DType::kFP32, {-kInf, kInf, Approximate::kNone}},
           isa);
    for (size_t i = 0; i < in.size(); ++i) {
      const float ref = static_cast<float>(reference::GeluErf(in[i]));
      EXPECT_LE(reference::UlpDistance(out[i], ref), 4u) << std::hexfloat << in[i];
    }
  }
}

// All 65,536 inputs of a 16-bit type against the correctly rounded reference, within 1 ULP.
void CheckAll16Bit(bool bf16) {
  std::vector<uint16_t> in(65536);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint16_t>(i);
  const DType dtype = bf16 ? DType::kBF16 : DType::kFP16;
  const auto widen = [&](uint16_t v) {
    return bf16 ? reference::BFloat16ToFloat(v) : reference::HalfToFloat(v);
  };
  const auto narrow = [&](float v) {
    return bf16 ? reference::FloatToBFloat16(v) : reference::FloatToHalf(v);
  };
  for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
    for (const auto& [lo, hi] : {std::pair{-kInf, kInf}, std::pair{-0.1f, 2.0f}}) {
      std::vector<uint16_t> ref(in.size());
      for (size_t i = 0; i < in.size(); ++i) {
        const long double x = widen(in[i]);
        const long double y =
            approximate == Approximate::kNone ? reference::GeluErf(x) : reference::GeluTanh(x);
        ref[i] = narrow(static_cast<float>(reference::Clip(y, lo, hi)));
      }
      for (Isa isa : SupportedIsas()) {
        std::vector<uint16_t> out(in.size());
        RunOne({in.data(), out.data(), in.size(), dtype, {lo, hi, approximate}}, isa);
        for (size_t i = 0; i < in.size(); ++i) {
          ASSERT_LE(reference::UlpDistance16(out[i], ref[i], bf16), 1u)
              << IsaName(isa) << " " << ApproximateName(approximate) << " [" << lo << ", " << hi
              << "] input 0x" << std::hex << in[i] << " got 0x" << out[i] << " want 0x" << ref[i];
        }
      }
    }
  }
}

TEST(Accuracy, AllFp16Inputs) { CheckAll16Bit(false); }
TEST(Accuracy, AllBf16Inputs) { CheckAll16Bit(true); }

// Phi(x) by Marsaglia's series (|x| <= 2) or the continued fraction of the Mills ratio: an
// evaluation independent of erfcl, in long double.
long double PhiIndependent(long double x) {
  constexpr long double kInvSqrt2Pi = 0.398942280401432677939946059934381868L;
  const long double a = std::fabs(x);
  const long double density = kInvSqrt2Pi * expl(-a * a / 2);
  if (a <= 2) {
    long double term = x, sum = x;
    for (int k = 1; k < 200; ++k) {
      term *= x * x / (2 * k + 1);
      sum += term;
    }
    return 0.5L + density * sum;
  }
  long double tail = a;
  for (int k = 4000; k >= 1; --k) tail = a + k / tail;
  const long double upper = density / tail;  // Phi(-a)
  return x < 0 ? upper : 1 - upper;
}

TEST(Accuracy, Fp64SampledAgainstIndependentReference) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> dist(-40.0, 40.0);
  std::vector<double> in = {0.0, -0.0, 1e-310, -1e-310, 1e-300, -38.0, -39.0, 1e300, -1e300};
  for (int i = 0; i < 20000; ++i) in.push_back(dist(rng));
  std::vector<double> out(in.size());
  for (Isa isa : SupportedIsas()) {
    RunOne({in.data(),
            out.data(),
            in.size(),
            DType::kFP64,
            {-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
             Approximate::kNone}},
           isa);
    for (size_t i = 0; i < in.size(); ++i) {
      const double ref = static_cast<double>(in[i] * PhiIndependent(in[i]));
      EXPECT_LE(reference::UlpDistance(out[i], ref), 4u)
          << IsaName(isa) << " x=" << std::hexfloat << in[i] << " out=" << out[i] << " ref=" << ref;
    }
    RunOne({in.data(),
            out.data(),
            in.size(),
            DType::kFP64,
            {-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
             Approximate::kTanh}},
           isa);
    for (size_t i = 0; i < in.size(); ++i) {
      const long double x = in[i];
      // Above -3 the textbook form loses < 3 digits of long double's 19; below, the
      // cancellation-free form is the reference.
      const long double u = 0.797884560802865355879892119868763737L * (x + 0.044715L * x * x * x);
      const double ref = x > -3 ? static_cast<double>(0.5L * x * (1 + tanhl(u)))
                                : static_cast<double>(reference::GeluTanh(x));
      EXPECT_LE(reference::UlpDistance(out[i], ref), 4u)
          << IsaName(isa) << " x=" << std::hexfloat << in[i] << " out=" << out[i] << " ref=" << ref;
    }
  }
}

TEST(Accuracy, Fp64SpecialInputs) {
  constexpr double kInfD = std::numeric_limits<double>::infinity();
  const std::vector<double> in = {std::nan(""), kInfD, -kInfD, -0.0, -1e-310};
  std::vector<double> out(in.size());
  for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
    RunOne({in.data(), out.data(), in.size(), DType::kFP64, {-kInfD, kInfD, approximate}},
           Isa::kScalar);
    EXPECT_TRUE(std::isnan(out[0]));
    EXPECT_EQ(out[1], kInfD);
    EXPECT_EQ(out[2], 0.0);
    EXPECT_TRUE(std::signbit(out[2]));
    EXPECT_TRUE(std::signbit(out[3]));
    EXPECT_EQ(out[4], -1e-310 * 0.5);
  }
}

}  // namespace
}  // namespace cgelu::kernels
