#include "server/backends.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#ifdef CGELU_HAVE_TORCH
#include "cgelu/torch/torch_backend.h"
#endif

namespace cgelu::server {

std::vector<std::string> AvailableBackends() {
#ifdef CGELU_HAVE_TORCH
  return {"cpu", "torch"};
#else
  return {"cpu"};
#endif
}

absl::StatusOr<std::unique_ptr<kernels::Backend>> MakeBackend(std::string_view name, int threads) {
  if (threads < 0) return absl::InvalidArgumentError("kernel threads must be >= 0");
  if (name == "cpu") return kernels::MakeCpuBackend({.max_threads = threads});
#ifdef CGELU_HAVE_TORCH
  if (name == "torch") return torch_backend::MakeTorchBackend({.intra_op_threads = threads});
#endif
  return absl::InvalidArgumentError(absl::StrCat("unknown backend '", std::string(name), "'; this build has: ",
                                                 absl::StrJoin(AvailableBackends(), ", ")));
}

}  // namespace cgelu::server
