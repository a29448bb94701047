#include "cgelu/torch/clipped_gelu_module.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cgelu {
namespace {

std::optional<kernels::DType> ToKernelDType(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float:
      return kernels::DType::kFP32;
    case c10::ScalarType::Double:
      return kernels::DType::kFP64;
    case c10::ScalarType::Half:
      return kernels::DType::kFP16;
    case c10::ScalarType::BFloat16:
      return kernels::DType::kBF16;
    default:
      return std::nullopt;
  }
}

// The kernel library reports bad parameters as a Status; a torch module throws at this boundary.
// The Status message is kept verbatim so users see the wording they know from the Python module.
kernels::ClipParams ValidatedParams(const ClippedGELUActivationOptions& options) {
  const absl::StatusOr<kernels::Approximate> approximate =
      kernels::ParseApproximate(options.approximate());
  if (!approximate.ok()) throw std::invalid_argument(std::string(approximate.status().message()));
  const kernels::ClipParams params{
      .min = options.min(), .max = options.max(), .approximate = *approximate};
  const absl::Status status = kernels::ValidateParams(params);
  if (!status.ok()) throw std::invalid_argument(std::string(status.message()));
  return params;
}

}  // namespace

ClippedGELUActivationImpl::ClippedGELUActivationImpl(const ClippedGELUActivationOptions& options)
    : options_(options), params_(ValidatedParams(options)) {}

ClippedGELUActivationImpl::ClippedGELUActivationImpl(double min, double max,
                                                     const std::string& approximate)
    : ClippedGELUActivationImpl(ClippedGELUActivationOptions(min, max).approximate(approximate)) {}

void ClippedGELUActivationImpl::reset() { params_ = ValidatedParams(options_); }

void ClippedGELUActivationImpl::pretty_print(std::ostream& stream) const {
  stream << "cgelu::ClippedGELUActivation(min=" << options_.min() << ", max=" << options_.max()
         << ", approximate=" << kernels::ApproximateName(params_.approximate) << ")";
}

torch::Tensor ClippedGELUActivationImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.defined(), "cgelu::ClippedGELUActivation: the input tensor is undefined");
  TORCH_CHECK(input.device().is_cpu(),
              "cgelu::ClippedGELUActivation runs on CPU tensors only; got a tensor on ",
              input.device(), " (move it with .cpu())");
  TORCH_CHECK(input.layout() == torch::kStrided,
              "cgelu::ClippedGELUActivation needs a dense (strided) tensor; got layout ",
              input.layout(), " (convert it with .to_dense())");
  const std::optional<kernels::DType> dtype = ToKernelDType(input.scalar_type());
  TORCH_CHECK(dtype.has_value(),
              "cgelu::ClippedGELUActivation supports float32, float64, float16 and bfloat16 "
              "tensors; got ",
              input.scalar_type());
  TORCH_CHECK(!(input.requires_grad() && torch::GradMode::is_enabled()),
              "cgelu::ClippedGELUActivation is inference-only (it has no backward) but the input "
              "requires grad; call it under torch::NoGradGuard or torch::InferenceMode");

  const torch::Tensor contiguous = input.contiguous();
  torch::Tensor output = torch::empty(contiguous.sizes(), contiguous.options());
  const kernels::Segment segment{.input = contiguous.data_ptr(),
                                 .output = output.data_ptr(),
                                 .count = static_cast<size_t>(contiguous.numel()),
                                 .dtype = *dtype,
                                 .params = params_};
  const absl::Status status = kernels::Run({&segment, 1}, {.max_threads = at::get_num_threads()});
  TORCH_CHECK(status.ok(), "cgelu::ClippedGELUActivation: ", status.ToString());
  return output;
}

}  // namespace cgelu
