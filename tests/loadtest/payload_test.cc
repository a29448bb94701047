#include "payload.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace cgelu::loadtest {
namespace {

client::Tensor Fp32Tensor(const std::vector<float>& values) {
  client::Tensor t{"FP32", {static_cast<int64_t>(values.size())}, {}};
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<float> Fp32Values(const client::Tensor& t) {
  std::vector<float> values(t.data.size() / sizeof(float));
  std::memcpy(values.data(), t.data.data(), t.data.size());
  return values;
}

int64_t UlpDistance(float a, float b) {
  auto ordered = [](float f) {
    const auto bits = static_cast<int64_t>(std::bit_cast<uint32_t>(f) & 0x7fffffffu);
    return std::signbit(f) ? -bits : bits;
  };
  return std::abs(ordered(a) - ordered(b));
}

struct Case {
  float x;
  float expected;
};

// ../shared/cases/clipped_gelu_fp32.tsv, grouped by (approximate, min, max).
std::map<std::tuple<std::string, double, double>, std::vector<Case>> ReadSharedCases() {
  std::ifstream in(std::string(CGELU_SHARED_DIR) + "/cases/clipped_gelu_fp32.tsv");
  EXPECT_TRUE(in.good()) << "cannot open the shared cases under " << CGELU_SHARED_DIR;
  std::map<std::tuple<std::string, double, double>, std::vector<Case>> groups;
  std::string line;
  while (std::getline(in, line)) {
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
        .push_back(
            {std::strtof(x_hex.c_str(), nullptr), std::strtof(expected_hex.c_str(), nullptr)});
  }
  return groups;
}

TEST(ReferenceTest, MatchesTheSharedCases) {
  const auto groups = ReadSharedCases();
  ASSERT_GE(groups.size(), 12u);
  int checked = 0;
  for (const auto& [key, cases] : groups) {
    const auto& [approximate, min, max] = key;
    const ClipSettings clip{min, max, approximate == "tanh"};
    for (const Case& c : cases) {
      const auto got = static_cast<float>(ReferenceClippedGelu(c.x, clip));
      if (std::isnan(c.expected)) {
        EXPECT_TRUE(std::isnan(got)) << c.x;
      } else if (std::isinf(c.expected)) {
        EXPECT_EQ(got, c.expected) << c.x;
      } else if (clip.tanh) {
        EXPECT_LE(std::fabs(got - c.expected), 1e-6 * std::fabs(c.expected) + 1e-12)
            << approximate << " [" << min << ", " << max << "] x=" << c.x;
      } else {
        EXPECT_LE(UlpDistance(got, c.expected), 1)
            << approximate << " [" << min << ", " << max << "] x=" << c.x << " got " << got
            << " expected " << c.expected;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 400);
}

TEST(VerifyOutputTest, AcceptsTheExactAnswersOfTheSharedCases) {
  for (const auto& [key, cases] : ReadSharedCases()) {
    const auto& [approximate, min, max] = key;
    const ClipSettings clip{min, max, approximate == "tanh"};
    std::vector<float> xs, expected;
    for (const Case& c : cases) xs.push_back(c.x), expected.push_back(c.expected);
    auto payload = MakePayload(Fp32Tensor(xs), clip);
    ASSERT_TRUE(payload.ok()) << payload.status();
    EXPECT_TRUE(VerifyOutput(*payload, Fp32Tensor(expected), clip).ok())
        << approximate << " [" << min << ", " << max
        << "]: " << VerifyOutput(*payload, Fp32Tensor(expected), clip);
  }
}

TEST(VerifyOutputTest, FlagsWrongValuesShapesAndTypes) {
  const ClipSettings clip;  // [-3, 3], erf
  auto payload = MakePayload(Fp32Tensor({-1.0f, 0.5f, 2.0f, 7.0f}), clip);
  ASSERT_TRUE(payload.ok());
  std::vector<float> right = Fp32Values(payload->expected);
  EXPECT_TRUE(VerifyOutput(*payload, Fp32Tensor(right), clip).ok());
  EXPECT_FLOAT_EQ(right[3], 3.0f);  // clipped

  // 4 ULP away is within tolerance; 5 is not.
  std::vector<float> off = right;
  off[1] = std::bit_cast<float>(std::bit_cast<uint32_t>(off[1]) + 4);
  EXPECT_TRUE(VerifyOutput(*payload, Fp32Tensor(off), clip).ok());
  off[1] = std::bit_cast<float>(std::bit_cast<uint32_t>(off[1]) + 1);
  const absl::Status five = VerifyOutput(*payload, Fp32Tensor(off), clip);
  EXPECT_FALSE(five.ok());
  EXPECT_NE(five.message().find("1 of 4 elements differ; first at index 1"), std::string::npos)
      << five;

  // The echo server's answer: the input itself.
  const absl::Status echo = VerifyOutput(*payload, payload->input, clip);
  EXPECT_FALSE(echo.ok());
  EXPECT_NE(echo.message().find("4 of 4"), std::string::npos) << echo;

  std::vector<float> nan = right;
  nan[0] = NAN;
  EXPECT_FALSE(VerifyOutput(*payload, Fp32Tensor(nan), clip).ok());

  client::Tensor reshaped = Fp32Tensor(right);
  reshaped.shape = {2, 2};
  EXPECT_FALSE(VerifyOutput(*payload, reshaped, clip).ok());
  client::Tensor retyped = Fp32Tensor(right);
  retyped.datatype = "FP64";
  EXPECT_FALSE(VerifyOutput(*payload, retyped, clip).ok());
  client::Tensor short_data = Fp32Tensor(right);
  short_data.data.resize(12);
  EXPECT_FALSE(VerifyOutput(*payload, short_data, clip).ok());
}

TEST(VerifyOutputTest, SpecialInputsFollowTheContract) {
  const ClipSettings unclipped{-INFINITY, INFINITY, false};
  auto payload = MakePayload(Fp32Tensor({NAN, INFINITY, -INFINITY, -0.0f}), unclipped);
  ASSERT_TRUE(payload.ok());
  const std::vector<float> expected = Fp32Values(payload->expected);
  EXPECT_TRUE(std::isnan(expected[0]));
  EXPECT_EQ(expected[1], INFINITY);
  EXPECT_EQ(expected[2], 0.0f);
  EXPECT_TRUE(std::signbit(expected[2]));  // -inf -> -0
  // +0 for -0 is accepted (the contract lets -0.0 and 0.0 compare equal).
  EXPECT_TRUE(VerifyOutput(*payload, Fp32Tensor({NAN, INFINITY, 0.0f, 0.0f}), unclipped).ok());
  EXPECT_FALSE(VerifyOutput(*payload, Fp32Tensor({NAN, NAN, 0.0f, 0.0f}), unclipped).ok());
}

TEST(HalfPrecisionTest, ConversionsRoundToNearestEven) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(0x1p-24f), 0x0001);           // smallest subnormal
  EXPECT_EQ(FloatToHalf(0x1p-25f), 0x0000);           // a tie rounds to even (0)
  EXPECT_EQ(FloatToHalf(0x1.8p-24f), 0x0002);         // a tie rounds to even (2)
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f), 0x3c00);    // tie -> even
  EXPECT_EQ(FloatToHalf(1.0f + 0x1.8p-10f), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(INFINITY), 0x7c00);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(NAN))));
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    const float f = HalfToFloat(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << bits;  // every half survives the round trip
  }
}

TEST(HalfPrecisionTest, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(BFloat16ToFloat(0xc040), -3.0f);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(NAN))));
}

TEST(RandomPayloadTest, EveryDatatypeIsSelfConsistentAndSeeded) {
  const ClipSettings clip{-1.0, 2.0, true};
  for (const char* dtype : {"FP32", "FP64", "FP16", "BF16"}) {
    auto payloads = MakeRandomPayloads({3, 5}, dtype, 3, 99, clip);
    ASSERT_TRUE(payloads.ok()) << payloads.status();
    ASSERT_EQ(payloads->size(), 3u);
    for (const Payload& p : *payloads) {
      EXPECT_EQ(p.input.datatype, dtype);
      EXPECT_EQ(p.input.shape, (std::vector<int64_t>{3, 5}));
      EXPECT_EQ(p.input.data.size(), 15 * client::DatatypeSize(dtype));
      EXPECT_TRUE(VerifyOutput(p, p.expected, clip).ok()) << dtype;
      EXPECT_FALSE(VerifyOutput(p, p.input, clip).ok()) << dtype;
    }
    EXPECT_NE((*payloads)[0].input.data, (*payloads)[1].input.data);
    EXPECT_EQ((*MakeRandomPayloads({3, 5}, dtype, 1, 99, clip))[0].input.data,
              (*payloads)[0].input.data);
  }
  EXPECT_FALSE(MakeRandomPayloads({4}, "INT32", 1, 1, clip).ok());
  auto empty = MakeRandomPayloads({0}, "FP32", 1, 1, clip);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(VerifyOutput((*empty)[0], (*empty)[0].expected, clip).ok());
}

}  // namespace
}  // namespace cgelu::loadtest
