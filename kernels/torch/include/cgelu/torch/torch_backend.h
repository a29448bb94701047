// The "torch" backend: runs the server's batches through LibTorch's own operators
// (torch::clamp(torch::gelu(x, approximate), min, max)), not through cgelu's kernel. It is a
// baseline for comparing speed and results against the "cpu" backend, with torch's numerics:
// gelu(-inf) is NaN and the far negative tail is exactly 0 (see kernels/torch/README.md).
//
// - FP32, FP64 and BF16 use LibTorch's kernels for that dtype. LibTorch 1.13's CPU gelu has no
//   float16 kernel, so FP16 is widened to float32, computed there and rounded back to nearest-even.
// - Input and output pointers need no alignment: a misaligned input is copied into an aligned
//   tensor and a misaligned output is filled with memcpy, because LibTorch's kernels dereference
//   typed pointers. Input and output may be the same pointer.
// - Run() validates every segment first (INVALID_ARGUMENT, nothing written), never throws (LibTorch
//   errors become INTERNAL with LibTorch's message) and may be called concurrently.
//
// This header includes no LibTorch header, so the server does not pay LibTorch's compile time.
#pragma once

#include <memory>

#include "cgelu/kernels/backend.h"

namespace cgelu::torch_backend {

struct TorchBackendOptions {
  // Threads in LibTorch's intra-op pool. A positive value calls at::set_num_threads() when the
  // backend is made; that pool is process-wide, so this also affects any other LibTorch code in
  // the process, and threads that already ran a parallel LibTorch op keep their earlier setting.
  // 0 or less keeps LibTorch's current setting (by default, the number of physical cores).
  int intra_op_threads = 0;
};

std::unique_ptr<kernels::Backend> MakeTorchBackend(const TorchBackendOptions& options = {});

}  // namespace cgelu::torch_backend
