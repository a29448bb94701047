#include <memory>
#include <string_view>

#include "cgelu/kernels/backend.h"
#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::kernels {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options) : options_(options) {}

  std::string_view name() const override { return "cpu"; }

  absl::Status Run(absl::Span<const Segment> segments) override {
    RunOptions run_options;
    run_options.max_threads = options_.max_threads;
    return kernels::Run(segments, run_options);
  }

 private:
  const CpuBackendOptions options_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace cgelu::kernels
