// Backend: the kernel layer as the server sees it. A backend runs a batch of segments; the server
// knows nothing about how (SIMD CPU kernel, LibTorch ops, CUDA).
//
// Thread-safety: Run() may be called concurrently from several batch workers.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::kernels {

class Backend {
 public:
  virtual ~Backend() = default;
  // Short name used in flags and metric labels: "cpu", "torch", "cuda".
  virtual std::string_view name() const = 0;
  // Runs every segment; see kernels::Run for the contract. Parameters have already been validated by
  // the caller, but a backend must still fail cleanly (never crash) on bad ones.
  virtual absl::Status Run(absl::Span<const Segment> segments) = 0;
};

struct CpuBackendOptions {
  // Threads one batch may use; 0 means every hardware thread.
  int max_threads = 0;
};

// The SIMD CPU kernel.
std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options = {});

}  // namespace cgelu::kernels
