// Backends by name, as --backend chooses them: "cpu" (the SIMD kernel), "torch" (LibTorch's own
// ops, a baseline for comparison; present when built with CGELU_WITH_TORCH).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cgelu/kernels/backend.h"

namespace cgelu::server {

// Names of the backends this build offers.
std::vector<std::string> AvailableBackends();

// `threads`: threads one batch may use (0 = every hardware thread). INVALID_ARGUMENT naming the
// available backends for an unknown or absent one.
absl::StatusOr<std::unique_ptr<kernels::Backend>> MakeBackend(std::string_view name, int threads);

}  // namespace cgelu::server
