// The segment-batch API: parameter validation, dtype/approximate names, ISA selection, batches of
// mixed segments, in-place runs and the CPU backend.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "cgelu/kernels/backend.h"
#include "cgelu/kernels/clipped_gelu.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace cgelu::kernels {
namespace {

using testing::InterestingFloats;
using testing::RunOne;
using testing::SupportedIsas;
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(Validation, MinAboveMaxUsesTheModuleMessage) {
  const absl::Status status = ValidateParams({2.0, 1.0, Approximate::kNone});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "min should be < max (got min: 2, max: 1)");
  EXPECT_EQ(ValidateParams({-0.5, -1.25, Approximate::kTanh}).message(),
            "min should be < max (got min: -0.5, max: -1.25)");
  EXPECT_EQ(ValidateParams({kInf, 1e20, Approximate::kNone}).message(),
            "min should be < max (got min: inf, max: 1e+20)");
}

TEST(Validation, NanBoundsAreRejectedByName) {
  const absl::Status min_nan = ValidateParams({std::nan(""), 1.0, Approximate::kNone});
  EXPECT_EQ(min_nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(min_nan.message().find("min"), absl::string_view::npos);
  const absl::Status max_nan = ValidateParams({0.0, std::nan(""), Approximate::kNone});
  EXPECT_EQ(max_nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(max_nan.message().find("max"), absl::string_view::npos);
}

TEST(Validation, EqualAndInfiniteBoundsAreAllowed) {
  EXPECT_TRUE(ValidateParams({0.5, 0.5, Approximate::kNone}).ok());
  EXPECT_TRUE(ValidateParams({-kInf, kInf, Approximate::kNone}).ok());
  EXPECT_TRUE(ValidateParams({-kInf, -kInf, Approximate::kTanh}).ok());
}

TEST(Names, DTypesAndApproximate) {
  for (DType dtype : {DType::kFP32, DType::kFP64, DType::kFP16, DType::kBF16}) {
    EXPECT_EQ(*ParseDType(DTypeName(dtype)), dtype);
  }
  EXPECT_EQ(ElementSize(DType::kFP32), 4u);
  EXPECT_EQ(ElementSize(DType::kFP64), 8u);
  EXPECT_EQ(ElementSize(DType::kFP16), 2u);
  EXPECT_EQ(ElementSize(DType::kBF16), 2u);
  const auto int32 = ParseDType("INT32");
  EXPECT_EQ(int32.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(int32.status().message().find("INT32"), absl::string_view::npos);
  EXPECT_EQ(*ParseApproximate("none"), Approximate::kNone);
  EXPECT_EQ(*ParseApproximate("tanh"), Approximate::kTanh);
  EXPECT_EQ(ParseApproximate("erf").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApproximateName(Approximate::kTanh), "tanh");
  EXPECT_EQ(IsaName(Isa::kAvx512), "avx512");
}

TEST(Run, BadSegmentFailsBeforeAnythingIsWritten) {
  std::vector<float> in(8, 1.0f), out(8, -7.0f), out2(8, -7.0f);
  const Segment segments[] = {
      {in.data(), out.data(), in.size(), DType::kFP32, {-3, 3, Approximate::kNone}},
      {in.data(), out2.data(), in.size(), DType::kFP32, {2, 1, Approximate::kNone}},
  };
  const absl::Status status = kernels::Run(segments);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "min should be < max (got min: 2, max: 1)");
  for (float v : out) EXPECT_EQ(v, -7.0f);
}

TEST(Run, RejectsNullAndOverlappingBuffers) {
  std::vector<float> buffer(16, 1.0f);
  EXPECT_EQ(kernels::Run({Segment{nullptr, buffer.data(), 4, DType::kFP32, {}}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kernels::Run({Segment{buffer.data(), buffer.data() + 2, 8, DType::kFP32, {}}}).code(),
            absl::StatusCode::kInvalidArgument);
  RunOptions negative_threads;
  negative_threads.max_threads = -1;
  EXPECT_EQ(
      kernels::Run({Segment{buffer.data(), buffer.data(), 8, DType::kFP32, {}}}, negative_threads)
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(Run, ZeroLengthSegmentsAreAllowed) {
  std::vector<float> in = {1.0f}, out = {0.0f};
  const Segment segments[] = {
      {nullptr, nullptr, 0, DType::kFP32, {}},
      {in.data(), out.data(), 1, DType::kFP32, {-kInf, kInf, Approximate::kNone}},
      {nullptr, nullptr, 0, DType::kBF16, {}},
  };
  ASSERT_TRUE(kernels::Run(segments).ok());
  EXPECT_NEAR(out[0], 0.8413447737693787, 1e-7);
  EXPECT_TRUE(kernels::Run({}).ok());
}

TEST(Run, ForcedIsaMustBeSupported) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    float x = 1.0f, y = 0.0f;
    RunOptions options;
    options.force_isa = true;
    options.isa = isa;
    const absl::Status status = kernels::Run({Segment{&x, &y, 1, DType::kFP32, {}}}, options);
    EXPECT_EQ(status.ok(), IsaSupported(isa)) << IsaName(isa);
    if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    }
  }
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
  EXPECT_TRUE(IsaSupported(ActiveIsa()));
}

// Each segment of a mixed batch gets exactly the result it gets alone (scenario S4 at kernel
// level).
TEST(Run, MixedSegmentsInOneCall) {
  const std::vector<float> values = InterestingFloats(2000);
  std::vector<double> values64(values.begin(), values.end());
  std::vector<uint16_t> values16(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    values16[i] = static_cast<uint16_t>(std::bit_cast<uint32_t>(values[i]) >> 16);
  }
  std::vector<float> out_a(values.size()), out_b(values.size()), alone_a(values.size()),
      alone_b(values.size());
  std::vector<double> out_c(values.size()), alone_c(values.size());
  std::vector<uint16_t> out_d(values.size()), alone_d(values.size());
  const Segment batch[] = {
      {values.data(), out_a.data(), 3, DType::kFP32, {-3, 3, Approximate::kNone}},
      {values.data(), out_b.data(), values.size(), DType::kFP32, {-0.1, 2, Approximate::kTanh}},
      {values64.data(), out_c.data(), values.size(), DType::kFP64, {0, 1, Approximate::kNone}},
      {values16.data(), out_d.data(), values.size(), DType::kBF16, {-10, 10, Approximate::kNone}},
  };
  const std::vector<void*> alone = {alone_a.data(), alone_b.data(), alone_c.data(), alone_d.data()};
  for (Isa isa : SupportedIsas()) {
    for (int threads : {1, 2}) {
      RunOptions options;
      options.force_isa = true;
      options.isa = isa;
      options.max_threads = threads;
      ASSERT_TRUE(kernels::Run(batch, options).ok());
      for (size_t s = 0; s < 4; ++s) {
        Segment single = batch[s];
        single.output = alone[s];
        RunOne(single, Isa::kScalar);
      }
      EXPECT_EQ(0, std::memcmp(out_a.data(), alone_a.data(), 3 * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(out_b.data(), alone_b.data(), out_b.size() * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(out_c.data(), alone_c.data(), out_c.size() * sizeof(double)));
      EXPECT_EQ(0, std::memcmp(out_d.data(), alone_d.data(), out_d.size() * sizeof(uint16_t)));
    }
  }
}

TEST(Run, InPlaceMatchesOutOfPlace) {
  const std::vector<float> values = InterestingFloats(5000);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> out(values.size());
    RunOne({values.data(), out.data(), values.size(), DType::kFP32, {-3, 3, Approximate::kNone}},
           isa);
    std::vector<float> in_place = values;
    RunOne({in_place.data(),
            in_place.data(),
            in_place.size(),
            DType::kFP32,
            {-3, 3, Approximate::kNone}},
           isa, 2);
    EXPECT_EQ(0, std::memcmp(out.data(), in_place.data(), out.size() * sizeof(float)));
  }
}

// Unaligned buffers, as the bytes of a protobuf string can be.
TEST(Run, UnalignedBuffers) {
  const std::vector<float> values = InterestingFloats(300);
  std::vector<char> in_bytes(values.size() * 4 + 1), out_bytes(values.size() * 4 + 3);
  std::memcpy(in_bytes.data() + 1, values.data(), values.size() * 4);
  std::vector<float> aligned(values.size());
  for (Isa isa : SupportedIsas()) {
    RunOne({values.data(), aligned.data(), values.size(), DType::kFP32, {}}, isa);
    RunOne({in_bytes.data() + 1, out_bytes.data() + 3, values.size(), DType::kFP32, {}}, isa);
    EXPECT_EQ(0, std::memcmp(aligned.data(), out_bytes.data() + 3, values.size() * 4));
  }
}

TEST(CpuBackend, RunsSegments) {
  const std::unique_ptr<Backend> backend = MakeCpuBackend({.max_threads = 2});
  EXPECT_EQ(backend->name(), "cpu");
  std::vector<float> in = {-1.0f, 0.0f, 1.0f, 5.0f}, out(4);
  ASSERT_TRUE(backend->Run({Segment{in.data(), out.data(), 4, DType::kFP32, {-3, 3}}}).ok());
  EXPECT_NEAR(out[0], -0.15865525603294373, 1e-7);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_NEAR(out[2], 0.8413447737693787, 1e-7);
  EXPECT_EQ(out[3], 3.0f);
  EXPECT_EQ(backend->Run({Segment{in.data(), out.data(), 4, DType::kFP32, {2, 1}}}).code(),
            absl::StatusCode::kInvalidArgument);
}

// Registered by CMake once per ISA name with CGELU_CPU_ISA set; without it, the best ISA is used.
TEST(IsaEnvironment, ActiveIsaFollowsTheEnvironment) {
  const char* forced = std::getenv("CGELU_CPU_ISA");
  Isa best = Isa::kScalar;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) best = isa;
  }
  if (forced == nullptr) {
    EXPECT_EQ(ActiveIsa(), best);
    return;
  }
  Isa wanted = best;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaName(isa) == forced && IsaSupported(isa)) wanted = isa;
  }
  EXPECT_EQ(ActiveIsa(), wanted) << "CGELU_CPU_ISA=" << forced;
}

}  // namespace
}  // namespace cgelu::kernels
