// Turning a ModelInferRequest into kernel work, and the matching response skeleton.
//
// PrepareInfer validates everything a request can get wrong — model name and version, input count,
// datatype, shape (negative or overflowing dimensions are refused before any allocation), raw versus
// typed contents, byte counts, requested outputs, and the per-request parameters `min`, `max`,
// `approximate` and `timeout` — and fills the response's output tensor so the kernel writes straight
// into `raw_output_contents`. No data is copied: the segment points into the request and response.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cgelu/kernels/clipped_gelu.h"
#include "cgelu/proto/inference.pb.h"

namespace cgelu::server {

inline constexpr char kInputName[] = "INPUT0";
inline constexpr char kOutputName[] = "OUTPUT0";

struct ModelSpec {
  std::string name = "clipped_gelu";
  std::string version = "1";
  kernels::ClipParams defaults;  // bounds and mode when a request names none
};

struct PreparedInfer {
  kernels::Segment segment;  // points into the request (input) and the response (output)
  size_t bytes = 0;          // input bytes (= output bytes)
  // Queue timeout asked for by the request's `timeout` parameter (Triton's convention), if any.
  std::optional<int64_t> queue_timeout_us;
};

// INVALID_ARGUMENT or NOT_FOUND with a message naming the offending field. On success, `response`
// holds the output tensor's metadata and a raw output buffer of the right size; both `request` and
// `response` must outlive the use of the returned segment.
absl::StatusOr<PreparedInfer> PrepareInfer(const ModelSpec& model,
                                           const inference::ModelInferRequest& request,
                                           inference::ModelInferResponse* response);

// True when `request` names a model the server serves (any version check aside); used to keep
// metric labels bounded.
bool NamesModel(const ModelSpec& model, const inference::ModelInferRequest& request);

}  // namespace cgelu::server
