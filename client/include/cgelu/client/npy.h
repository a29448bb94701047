// Reading and writing NumPy .npy files (format versions 1.0-3.0) as client Tensors.
// Supported dtypes: little-endian float32 ('<f4' -> FP32), float64 ('<f8' -> FP64), float16
// ('<f2' -> FP16); C order only. Anything else is a clear INVALID_ARGUMENT naming what was found.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgelu/client/client.h"

namespace cgelu::client {

absl::StatusOr<Tensor> ReadNpy(const std::string& path);
absl::StatusOr<Tensor> ParseNpy(const std::string& bytes);
// FP32, FP64 and FP16 tensors; writes version 1.0.
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);
std::string SerializeNpy(const Tensor& tensor);

}  // namespace cgelu::client
