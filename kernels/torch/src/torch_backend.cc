#include "cgelu/torch/torch_backend.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace cgelu::torch_backend {
namespace {

using kernels::DType;
using kernels::Segment;

absl::StatusOr<c10::ScalarType> ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return c10::ScalarType::Float;
    case DType::kFP64:
      return c10::ScalarType::Double;
    case DType::kFP16:
      return c10::ScalarType::Half;
    case DType::kBF16:
      return c10::ScalarType::BFloat16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype code ", static_cast<int>(dtype), " in a segment"));
}

absl::Status ValidateSegment(const Segment& segment) {
  if (absl::Status status = kernels::ValidateParams(segment.params); !status.ok()) return status;
  if (absl::StatusOr<c10::ScalarType> type = ToScalarType(segment.dtype); !type.ok()) {
    return type.status();
  }
  if (segment.count == 0) return absl::OkStatus();
  if (segment.input == nullptr || segment.output == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment of ", segment.count, " elements has a null pointer"));
  }
  // Byte counts must fit in size_t and element counts in a tensor dimension (int64_t).
  const size_t max_count =
      std::min<size_t>(std::numeric_limits<size_t>::max() / kernels::ElementSize(segment.dtype),
                       std::numeric_limits<int64_t>::max());
  if (segment.count > max_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment of ", segment.count, " elements is too large"));
  }
  return absl::OkStatus();
}

bool IsAligned(const void* pointer, size_t alignment) {
  return reinterpret_cast<uintptr_t>(pointer) % alignment == 0;
}

// LibTorch's kernels read typed pointers, which must be aligned; the server's input may be the
// bytes of a protobuf string at any address, so a misaligned input is copied first.
at::Tensor InputTensor(const Segment& segment, c10::ScalarType type) {
  const auto count = static_cast<int64_t>(segment.count);
  const size_t element_size = kernels::ElementSize(segment.dtype);
  if (IsAligned(segment.input, element_size)) {
    return at::from_blob(const_cast<void*>(segment.input), {count}, at::TensorOptions(type));
  }
  at::Tensor copy = at::empty({count}, at::TensorOptions(type));
  std::memcpy(copy.data_ptr(), segment.input, segment.count * element_size);
  return copy;
}

// torch::clamp(torch::gelu(x)) written into `output`, which has x's dtype. The out= and in-place
// forms are the same kernels as the functional ones, without allocating a result per call.
void ClippedGelu(const at::Tensor& x, const kernels::ClipParams& params, at::Tensor& output) {
  const std::string_view name = kernels::ApproximateName(params.approximate);
  const c10::string_view approximate(name.data(), name.size());
  if (x.scalar_type() == c10::ScalarType::Half) {
    // LibTorch 1.13 has no float16 gelu on CPU ("GeluKernelImpl" not implemented for 'Half').
    at::Tensor wide = at::gelu(x.to(c10::ScalarType::Float), approximate);
    wide.clamp_(params.min, params.max);
    output.copy_(wide);
    return;
  }
  at::gelu_out(output, x, approximate);
  output.clamp_(params.min, params.max);
}

void RunSegment(const Segment& segment) {
  if (segment.count == 0) return;
  const c10::ScalarType type = *ToScalarType(segment.dtype);
  const at::Tensor input = InputTensor(segment, type);
  if (IsAligned(segment.output, kernels::ElementSize(segment.dtype))) {
    at::Tensor output = at::from_blob(segment.output, {input.numel()}, at::TensorOptions(type));
    ClippedGelu(input, segment.params, output);
    return;
  }
  at::Tensor output = at::empty_like(input);
  ClippedGelu(input, segment.params, output);
  std::memcpy(segment.output, output.data_ptr(),
              segment.count * kernels::ElementSize(segment.dtype));
}

class TorchBackend final : public kernels::Backend {
 public:
  std::string_view name() const override { return "torch"; }

  absl::Status Run(absl::Span<const Segment> segments) override {
    for (const Segment& segment : segments) {
      if (absl::Status status = ValidateSegment(segment); !status.ok()) return status;
    }
    try {
      // No autograd bookkeeping: these tensors never need a backward.
      c10::InferenceMode inference_mode;
      for (const Segment& segment : segments) RunSegment(segment);
    } catch (const c10::Error& error) {
      return absl::InternalError(absl::StrCat("LibTorch failed: ", error.what_without_backtrace()));
    } catch (const std::exception& error) {
      return absl::InternalError(absl::StrCat("LibTorch failed: ", error.what()));
    } catch (...) {
      return absl::InternalError("LibTorch failed with a non-standard exception");
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<kernels::Backend> MakeTorchBackend(const TorchBackendOptions& options) {
  if (options.intra_op_threads > 0) at::set_num_threads(options.intra_op_threads);
  return std::make_unique<TorchBackend>();
}

}  // namespace cgelu::torch_backend
