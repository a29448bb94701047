// cgelu::ClippedGELUActivation: a LibTorch module computing clip(gelu(x), min, max) with cgelu's
// CPU kernel (kernels::Run). It mirrors the Python module it is named after (zeta / Hugging Face
// `ClippedGELUActivation(min, max)`, forward = torch.clip(F.gelu(x), min, max)).
//
// Contract:
// - Construction validates the options and throws std::invalid_argument, as torch modules do at
//   this boundary: min > max gives the module's message "min should be < max (got min: 2, max: 1)";
//   a NaN bound and an approximate other than "none" / "tanh" are rejected as well. min == max and
//   infinite bounds are allowed.
// - forward() accepts dense CPU tensors of float32, float64, float16 and bfloat16, of any shape
//   (0-dim and empty included) and any strides (non-contiguous input is made contiguous first). It
//   returns a new contiguous tensor of the same shape and dtype. Anything else (another device, a
//   sparse layout, another dtype, an undefined tensor) throws c10::Error naming the problem.
// - Inference only: there is no backward. A tensor that requires grad while grad mode is on is
//   rejected rather than silently detached; run under torch::NoGradGuard or torch::InferenceMode.
// - Numerics are the kernel's (../shared/reference/numerics.md). They differ from
//   torch.clamp(F.gelu(x)) on special inputs: gelu(-inf) is -0.0 (torch: NaN) and the far negative
//   tail gives tiny negative values (torch: exactly 0). See kernels/torch/README.md.
// - Threads: forward() uses at most at::get_num_threads() threads, so torch::set_num_threads()
//   governs this module as it governs LibTorch's own ops.
// - Thread-safety: the module is immutable after construction; forward() may be called
//   concurrently.
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <ostream>
#include <string>

#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu {

// The bounds have no default, as in the Python module.
struct ClippedGELUActivationOptions {
  ClippedGELUActivationOptions(double min, double max) : min_(min), max_(max) {}

  TORCH_ARG(double, min);
  TORCH_ARG(double, max);
  // "none" (exact, erf based) or "tanh", as torch's F.gelu accepts.
  TORCH_ARG(std::string, approximate) = "none";
};

class ClippedGELUActivationImpl : public torch::nn::Cloneable<ClippedGELUActivationImpl> {
 public:
  explicit ClippedGELUActivationImpl(const ClippedGELUActivationOptions& options);
  ClippedGELUActivationImpl(double min, double max, const std::string& approximate = "none");

  torch::Tensor forward(const torch::Tensor& input);

  // Re-validates the options; the module has no parameters or buffers to initialise.
  void reset() override;

  // Prints "cgelu::ClippedGELUActivation(min=-3, max=3, approximate=none)".
  void pretty_print(std::ostream& stream) const override;

  const ClippedGELUActivationOptions& options() const { return options_; }

 private:
  ClippedGELUActivationOptions options_;
  // options_ translated and validated for the kernel.
  kernels::ClipParams params_;
};

// Module holder: `cgelu::ClippedGELUActivation act(-3, 3);` then `act(x)` or `act->forward(x)`.
TORCH_MODULE(ClippedGELUActivation);

}  // namespace cgelu
