// The "torch" backend must give exactly what LibTorch's own clamp(gelu(x)) gives (it is the
// baseline), for any pointer alignment, in place, in ragged batches, and must fail with a Status,
// never an exception.
#include "cgelu/torch/torch_backend.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "cgelu/kernels/backend.h"
#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::torch_backend {
namespace {

using kernels::ClipParams;
using kernels::DType;
using kernels::Segment;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

torch::Dtype TorchDtype(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return torch::kFloat;
    case DType::kFP64:
      return torch::kDouble;
    case DType::kFP16:
      return torch::kHalf;
    case DType::kBF16:
      return torch::kBFloat16;
  }
  return torch::kFloat;
}

// What the backend promises: LibTorch's own ops; fp16 through float32 (no CPU Half gelu in 1.13).
torch::Tensor Reference(const torch::Tensor& x, const ClipParams& params) {
  const std::string approximate(kernels::ApproximateName(params.approximate));
  const torch::Tensor wide = x.scalar_type() == torch::kHalf ? x.to(torch::kFloat) : x;
  return torch::clamp(torch::gelu(wide, approximate), params.min, params.max).to(x.scalar_type());
}

torch::Tensor Inputs(DType dtype) {
  torch::manual_seed(17);
  return torch::cat({torch::linspace(-20.0, 20.0, 2001, torch::kDouble),
                     torch::randn({3000}, torch::kDouble) * 4.0,
                     torch::tensor({-kInf, kInf, kNaN, -0.0, 0.0}, torch::kDouble)})
      .to(TorchDtype(dtype));
}

void ExpectIdentical(const torch::Tensor& ours, const torch::Tensor& reference) {
  ASSERT_EQ(ours.sizes(), reference.sizes());
  const torch::Tensor same = (ours == reference) | (torch::isnan(ours) & torch::isnan(reference));
  EXPECT_TRUE(same.all().item<bool>())
      << "first difference at index " << torch::nonzero(~same)[0].item<int64_t>();
}

// Bytes at a chosen offset from a 64-byte boundary, to place tensors at any alignment.
class ByteBuffer {
 public:
  ByteBuffer(size_t size_bytes, size_t offset)
      : storage_(size_bytes + 64 + offset), offset_(offset) {}
  void* data() {
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    return storage_.data() + ((64 - address % 64) % 64) + offset_;
  }

 private:
  std::vector<unsigned char> storage_;
  size_t offset_;
};

absl::Status RunOne(kernels::Backend& backend, const Segment& segment) {
  return backend.Run({&segment, 1});
}

TEST(TorchBackendTest, IsNamedTorch) { EXPECT_EQ(MakeTorchBackend()->name(), "torch"); }

TEST(TorchBackendTest, MatchesLibTorchOpsExactly) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  for (DType dtype : {DType::kFP32, DType::kFP64, DType::kFP16, DType::kBF16}) {
    for (kernels::Approximate approximate :
         {kernels::Approximate::kNone, kernels::Approximate::kTanh}) {
      for (const auto& [min, max] : std::vector<std::pair<double, double>>{
               {-3.0, 3.0}, {-kInf, kInf}, {-0.1, 2.0}, {0.5, 0.5}}) {
        const ClipParams params{.min = min, .max = max, .approximate = approximate};
        SCOPED_TRACE(testing::Message()
                     << kernels::DTypeName(dtype) << " " << kernels::ApproximateName(approximate)
                     << " [" << min << ", " << max << "]");
        const torch::Tensor x = Inputs(dtype);
        torch::Tensor out = torch::empty_like(x);
        ASSERT_TRUE(RunOne(*backend, {.input = x.data_ptr(),
                                      .output = out.data_ptr(),
                                      .count = static_cast<size_t>(x.numel()),
                                      .dtype = dtype,
                                      .params = params})
                        .ok());
        ExpectIdentical(out, Reference(x, params));
      }
    }
  }
}

TEST(TorchBackendTest, AnyAlignmentAndInPlaceGiveTheSameResult) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  const ClipParams params{.min = -0.1, .max = 2.0, .approximate = kernels::Approximate::kNone};
  for (DType dtype : {DType::kFP32, DType::kFP64, DType::kFP16, DType::kBF16}) {
    const torch::Tensor x = Inputs(dtype);
    const torch::Tensor expected = Reference(x, params);
    const size_t bytes = x.numel() * x.element_size();
    for (size_t input_offset : {0, 1, 2}) {
      for (size_t output_offset : {0, 1, 3}) {
        SCOPED_TRACE(testing::Message() << kernels::DTypeName(dtype) << " input offset "
                                        << input_offset << " output offset " << output_offset);
        ByteBuffer input(bytes, input_offset);
        ByteBuffer output(bytes, output_offset);
        std::memcpy(input.data(), x.data_ptr(), bytes);
        ASSERT_TRUE(RunOne(*backend, {.input = input.data(),
                                      .output = output.data(),
                                      .count = static_cast<size_t>(x.numel()),
                                      .dtype = dtype,
                                      .params = params})
                        .ok());
        torch::Tensor out = torch::empty_like(x);
        std::memcpy(out.data_ptr(), output.data(), bytes);
        ExpectIdentical(out, expected);
      }
      SCOPED_TRACE(testing::Message()
                   << kernels::DTypeName(dtype) << " in place at offset " << input_offset);
      ByteBuffer in_place(bytes, input_offset);
      std::memcpy(in_place.data(), x.data_ptr(), bytes);
      ASSERT_TRUE(RunOne(*backend, {.input = in_place.data(),
                                    .output = in_place.data(),
                                    .count = static_cast<size_t>(x.numel()),
                                    .dtype = dtype,
                                    .params = params})
                      .ok());
      torch::Tensor out = torch::empty_like(x);
      std::memcpy(out.data_ptr(), in_place.data(), bytes);
      ExpectIdentical(out, expected);
    }
  }
}

TEST(TorchBackendTest, RaggedBatchGivesEachSegmentItsOwnResult) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  const std::vector<DType> dtypes = {DType::kFP32, DType::kBF16, DType::kFP64, DType::kFP32};
  const std::vector<ClipParams> params = {
      {.min = -3.0, .max = 3.0, .approximate = kernels::Approximate::kNone},
      {.min = -0.1, .max = 2.0, .approximate = kernels::Approximate::kTanh},
      {.min = 0.5, .max = 0.5, .approximate = kernels::Approximate::kNone},
      {.min = -kInf, .max = kInf, .approximate = kernels::Approximate::kTanh}};
  const std::vector<int64_t> counts = {3, 10, 7, 0};
  std::vector<torch::Tensor> inputs, outputs;
  std::vector<Segment> segments;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    inputs.push_back(torch::linspace(-4.0, 4.0, counts[i]).to(TorchDtype(dtypes[i])));
    outputs.push_back(torch::empty_like(inputs[i]));
    segments.push_back({.input = counts[i] == 0 ? nullptr : inputs[i].data_ptr(),
                        .output = counts[i] == 0 ? nullptr : outputs[i].data_ptr(),
                        .count = static_cast<size_t>(counts[i]),
                        .dtype = dtypes[i],
                        .params = params[i]});
  }
  ASSERT_TRUE(backend->Run(segments).ok());
  for (size_t i = 0; i < dtypes.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "segment " << i);
    ExpectIdentical(outputs[i], Reference(inputs[i], params[i]));
  }
}

TEST(TorchBackendTest, InvalidSegmentFailsTheCallBeforeAnythingIsWritten) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  const torch::Tensor x = torch::linspace(-4.0, 4.0, 9);
  torch::Tensor first = torch::full({9}, 42.0f);
  torch::Tensor second = torch::full({9}, 42.0f);
  const std::vector<Segment> segments = {
      {.input = x.data_ptr(),
       .output = first.data_ptr(),
       .count = 9,
       .dtype = DType::kFP32,
       .params = ClipParams{}},
      {.input = x.data_ptr(),
       .output = second.data_ptr(),
       .count = 9,
       .dtype = DType::kFP32,
       .params = {.min = 2.0, .max = 1.0, .approximate = kernels::Approximate::kNone}}};
  const absl::Status status = backend->Run(segments);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("min should be < max (got min: 2, max: 1)"), std::string::npos)
      << status;
  EXPECT_TRUE(torch::equal(first, torch::full({9}, 42.0f)));
  EXPECT_TRUE(torch::equal(second, torch::full({9}, 42.0f)));
}

TEST(TorchBackendTest, RejectsMalformedSegments) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  float data[4] = {};
  const auto segment = [&](const void* input, void* output, size_t count, DType dtype, double min) {
    return Segment{.input = input,
                   .output = output,
                   .count = count,
                   .dtype = dtype,
                   .params = {.min = min, .max = 1.0, .approximate = kernels::Approximate::kNone}};
  };
  const std::vector<Segment> bad = {
      segment(nullptr, data, 4, DType::kFP32, 0.0),
      segment(data, nullptr, 4, DType::kFP32, 0.0),
      segment(data, data, 4, static_cast<DType>(99), 0.0),
      segment(data, data, std::numeric_limits<size_t>::max() / 2, DType::kFP32, 0.0),
      segment(data, data, 4, DType::kFP32, kNaN),
  };
  for (const Segment& s : bad) {
    EXPECT_EQ(RunOne(*backend, s).code(), absl::StatusCode::kInvalidArgument);
  }
}

// An allocation LibTorch cannot make (a misaligned input of 2^50 floats must be copied first)
// throws inside LibTorch; Run() turns it into INTERNAL with LibTorch's message.
TEST(TorchBackendTest, LibTorchErrorsBecomeInternalStatus) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  ByteBuffer buffer(16, 1);
  const absl::Status status = RunOne(*backend, {.input = buffer.data(),
                                                .output = buffer.data(),
                                                .count = size_t{1} << 50,
                                                .dtype = DType::kFP32,
                                                .params = ClipParams{}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("LibTorch"), std::string::npos) << status;
}

TEST(TorchBackendTest, IntraOpThreadsSetsLibTorchsPool) {
  MakeTorchBackend({.intra_op_threads = 1});
  EXPECT_EQ(at::get_num_threads(), 1);
  MakeTorchBackend({.intra_op_threads = 2});
  EXPECT_EQ(at::get_num_threads(), 2);
  MakeTorchBackend({.intra_op_threads = 0});
  EXPECT_EQ(at::get_num_threads(), 2);
}

TEST(TorchBackendTest, ConcurrentRunsDoNotInterfere) {
  const std::unique_ptr<kernels::Backend> backend = MakeTorchBackend();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const ClipParams params{
          .min = -0.05 * t, .max = 1.0 + t, .approximate = kernels::Approximate::kNone};
      const torch::Tensor x = torch::linspace(-5.0, 5.0, 10000 + t);
      const torch::Tensor expected = Reference(x, params);
      for (int round = 0; round < 50; ++round) {
        torch::Tensor out = torch::empty_like(x);
        const absl::Status status = RunOne(*backend, {.input = x.data_ptr(),
                                                      .output = out.data_ptr(),
                                                      .count = static_cast<size_t>(x.numel()),
                                                      .dtype = DType::kFP32,
                                                      .params = params});
        if (!status.ok() || !torch::equal(out, expected)) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace cgelu::torch_backend
