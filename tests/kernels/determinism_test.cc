// Bit-identity (numerics.md "Determinism", scenario S16): the same input value gives the same bits
// whatever the ISA, tensor length, position, thread count or batching.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cgelu/kernels/clipped_gelu.h"
#include "gelu_reference.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace cgelu::kernels {
namespace {

using testing::InterestingFloats;
using testing::RunOne;
using testing::SupportedIsas;

// Encodes fp32 values in `dtype` (fp16 through the kernel-independent bit pattern of bf16 is not
// needed: any 16-bit pattern is a valid input).
std::vector<char> Encode(const std::vector<float>& values, DType dtype) {
  std::vector<char> bytes(values.size() * ElementSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(values[i]);
    if (dtype == DType::kFP32) {
      std::memcpy(&bytes[i * 4], &values[i], 4);
    } else if (dtype == DType::kFP64) {
      const double d = values[i];
      std::memcpy(&bytes[i * 8], &d, 8);
    } else {
      // Reuse the high and the low half of the fp32 pattern so every 16-bit class shows up.
      const uint16_t h = static_cast<uint16_t>(i % 2 ? bits >> 16 : bits ^ (bits >> 16));
      std::memcpy(&bytes[i * 2], &h, 2);
    }
  }
  return bytes;
}

TEST(Determinism, EveryIsaMatchesScalarForEveryLength) {
  const std::vector<float> values = InterestingFloats(4000);
  for (DType dtype : {DType::kFP32, DType::kFP16, DType::kBF16, DType::kFP64}) {
    for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
      const std::vector<char> in = Encode(values, dtype);
      const size_t size = ElementSize(dtype);
      std::vector<char> expected(in.size());
      RunOne({in.data(), expected.data(), values.size(), dtype, {-0.1, 2.0, approximate}},
             Isa::kScalar);
      for (Isa isa : SupportedIsas()) {
        for (int threads : {1, 2}) {
          // Lengths 1..70 starting at varying offsets, then the whole array.
          for (size_t length = 1; length <= 70; ++length) {
            const size_t offset = (length * 37) % (values.size() - length);
            std::vector<char> out(length * size);
            RunOne({in.data() + offset * size, out.data(), length, dtype, {-0.1, 2.0, approximate}},
                   isa, threads);
            ASSERT_EQ(0, std::memcmp(out.data(), expected.data() + offset * size, out.size()))
                << IsaName(isa) << " " << DTypeName(dtype) << " " << ApproximateName(approximate)
                << " length " << length << " threads " << threads;
          }
          std::vector<char> out(in.size());
          RunOne({in.data(), out.data(), values.size(), dtype, {-0.1, 2.0, approximate}}, isa,
                 threads);
          ASSERT_EQ(0, std::memcmp(out.data(), expected.data(), out.size()))
              << IsaName(isa) << " " << DTypeName(dtype) << " " << ApproximateName(approximate);
        }
      }
    }
  }
}

// S16: the same value at index 0 of tensors of length 1, 7, 8, 17 and 1,000,000, on 1 and 2 threads
// and every ISA. The million-element tensor also carries every probe near its start and at its end.
TEST(Determinism, ScenarioS16SameValueAnyLengthAnyThreads) {
  const std::vector<float> probes = InterestingFloats(40);
  std::vector<float> big_in(1000000);
  for (size_t i = 0; i < big_in.size(); ++i) big_in[i] = -8.0f + 16.0f * i / big_in.size();
  std::copy(probes.begin(), probes.end(), big_in.begin());
  std::copy(probes.begin(), probes.end(), big_in.end() - probes.size());
  std::vector<float> big_out(big_in.size());
  for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
    std::vector<float> reference(probes.size());
    RunOne({probes.data(), reference.data(), probes.size(), DType::kFP32, {-3, 3, approximate}},
           Isa::kScalar);
    for (Isa isa : SupportedIsas()) {
      for (int threads : {1, 2}) {
        for (size_t p = 0; p < probes.size(); ++p) {
          for (size_t length : {1, 7, 8, 17}) {
            std::vector<float> in(length, 0.25f), out(length);
            in[0] = probes[p];
            RunOne({in.data(), out.data(), length, DType::kFP32, {-3, 3, approximate}}, isa,
                   threads);
            ASSERT_EQ(std::bit_cast<uint32_t>(out[0]), std::bit_cast<uint32_t>(reference[p]))
                << IsaName(isa) << " length " << length << " x=" << probes[p];
          }
        }
        RunOne({big_in.data(), big_out.data(), big_in.size(), DType::kFP32, {-3, 3, approximate}},
               isa, threads);
        for (size_t p = 0; p < probes.size(); ++p) {
          const size_t tail = big_in.size() - probes.size() + p;
          ASSERT_EQ(std::bit_cast<uint32_t>(big_out[p]), std::bit_cast<uint32_t>(reference[p]))
              << IsaName(isa) << " threads " << threads << " x=" << probes[p];
          ASSERT_EQ(std::bit_cast<uint32_t>(big_out[tail]), std::bit_cast<uint32_t>(reference[p]))
              << IsaName(isa) << " threads " << threads << " x=" << probes[p];
        }
      }
    }
  }
}

// A large run split across threads (and across segments) equals the single-threaded run.
TEST(Determinism, ThreadsAndChunkingDoNotChangeResults) {
  // A multiplicative hash of the index spreads the inputs over every bit pattern: both signs,
  // subnormals, infinities and NaNs.
  std::vector<float> in(1500001);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = std::bit_cast<float>(static_cast<uint32_t>(i * 2654435761u));
  for (Isa isa : SupportedIsas()) {
    std::vector<float> one(in.size()), two(in.size());
    RunOne({in.data(), one.data(), in.size(), DType::kFP32, {-10, 10}}, isa, 1);
    RunOne({in.data(), two.data(), in.size(), DType::kFP32, {-10, 10}}, isa, 2);
    ASSERT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float))) << IsaName(isa);
    const size_t split = 734567;
    std::vector<float> parts(in.size());
    const Segment segments[] = {
        {in.data(), parts.data(), split, DType::kFP32, {-10, 10}},
        {in.data() + split, parts.data() + split, in.size() - split, DType::kFP32, {-10, 10}},
    };
    RunOptions options;
    options.force_isa = true;
    options.isa = isa;
    ASSERT_TRUE(kernels::Run(segments, options).ok());
    ASSERT_EQ(0, std::memcmp(one.data(), parts.data(), one.size() * sizeof(float))) << IsaName(isa);
  }
}

// The other dtypes on the threaded path: tensors above the single-thread threshold (32 Ki elements)
// split across 2 threads equal the single-threaded scalar run.
TEST(Determinism, EveryDtypeSplitAcrossThreadsMatchesScalar) {
  const size_t count = 100003;
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i)
    values[i] = std::bit_cast<float>(static_cast<uint32_t>(i * 2654435761u));
  for (DType dtype : {DType::kFP16, DType::kBF16, DType::kFP64}) {
    for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
      const std::vector<char> in = Encode(values, dtype);
      std::vector<char> expected(in.size());
      RunOne({in.data(), expected.data(), count, dtype, {-5, 5, approximate}}, Isa::kScalar);
      for (Isa isa : SupportedIsas()) {
        std::vector<char> out(in.size());
        RunOne({in.data(), out.data(), count, dtype, {-5, 5, approximate}}, isa, 2);
        ASSERT_EQ(0, std::memcmp(out.data(), expected.data(), out.size()))
            << IsaName(isa) << " " << DTypeName(dtype) << " " << ApproximateName(approximate);
      }
    }
  }
}

// One instance per instruction set, skipped (and so reported) where the CPU lacks it.
class IsaBitIdentity : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!IsaSupported(GetParam())) {
      GTEST_SKIP() << "this CPU has no " << IsaName(GetParam());
    }
  }
};

// Every fp32 input with 12 <= |x| <= 16, in both modes: the range where the result of the x < 0
// form becomes subnormal (-14.36 < x < -13.2) and is rounded with integer instructions on the SIMD
// paths, its neighbours where the FP path takes over again, and the x > 0 lanes computed beside
// them. Each must equal the scalar path bit for bit.
TEST_P(IsaBitIdentity, EveryInputAroundTheSubnormalResultRange) {
  std::vector<float> in;
  for (float sign : {-1.0f, 1.0f}) {
    for (uint32_t bits = std::bit_cast<uint32_t>(12.0f); bits <= std::bit_cast<uint32_t>(16.0f);
         ++bits) {
      in.push_back(sign * std::bit_cast<float>(bits));
    }
  }
  for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
    const ClipParams params{-std::numeric_limits<double>::infinity(),
                        std::numeric_limits<double>::infinity(), approximate};
    std::vector<float> expected(in.size()), out(in.size());
    RunOne({in.data(), expected.data(), in.size(), DType::kFP32, params}, Isa::kScalar);
    RunOne({in.data(), out.data(), in.size(), DType::kFP32, params}, GetParam());
    for (size_t i = 0; i < in.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(expected[i]))
          << IsaName(GetParam()) << " " << ApproximateName(approximate) << " x=" << in[i];
    }
  }
}

// FP16 and BF16 look their GELU up in a table built once by the fp32 kernel (Gelu16Table). Every
// one of the 65,536 inputs of each type, in both modes and under several bounds, must give exactly
// what computing it directly gives: the widened value through this ISA's fp32 kernel with the
// same bounds, rounded once to nearest-even; NaN inputs come back quieted.
TEST_P(IsaBitIdentity, EverySixteenBitInputIsTheFp32ResultRoundedOnce) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<uint16_t> patterns(65536);
  for (size_t i = 0; i < patterns.size(); ++i) patterns[i] = static_cast<uint16_t>(i);
  for (DType dtype : {DType::kFP16, DType::kBF16}) {
    const bool bf16 = dtype == DType::kBF16;
    std::vector<float> widened(patterns.size());
    for (size_t i = 0; i < patterns.size(); ++i) {
      widened[i] =
          bf16 ? reference::BFloat16ToFloat(patterns[i]) : reference::HalfToFloat(patterns[i]);
    }
    for (Approximate approximate : {Approximate::kNone, Approximate::kTanh}) {
      for (const auto& [lo, hi] : {std::pair{-kInf, kInf}, std::pair{-0.1, 2.0},
                                   std::pair{-3.0, 3.0}, std::pair{0.5, 0.5}}) {
        const ClipParams params{lo, hi, approximate};
        std::vector<float> fp32(patterns.size());
        RunOne({widened.data(), fp32.data(), widened.size(), DType::kFP32, params}, GetParam());
        std::vector<uint16_t> out(patterns.size());
        RunOne({patterns.data(), out.data(), patterns.size(), dtype, params}, GetParam());
        for (size_t i = 0; i < patterns.size(); ++i) {
          const uint16_t expected =
              std::isnan(widened[i])
                  ? static_cast<uint16_t>(patterns[i] | (bf16 ? 0x0040u : 0x0200u))
                  : (bf16 ? reference::FloatToBFloat16(fp32[i]) : reference::FloatToHalf(fp32[i]));
          ASSERT_EQ(out[i], expected) << IsaName(GetParam()) << " " << DTypeName(dtype) << " "
                                      << ApproximateName(approximate) << " [" << lo << ", " << hi
                                      << "] input 0x" << std::hex << patterns[i];
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, IsaBitIdentity,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

}  // namespace
}  // namespace cgelu::kernels
