// The clipped GELU kernel: out = clip(gelu(x), min, max), as torch.clip(F.gelu(x), min, max).
//
// Contract (see ../shared/reference/numerics.md, mirrored in docs/ARCHITECTURE.md):
// - gelu(x) = x * Phi(x) (approximate = kNone, evaluated through erfc, never 1 + erf) or the tanh
//   form (approximate = kTanh). FP32 and FP64 are computed in their own precision; FP16 and BF16 are
//   widened to fp32, computed there and rounded once to nearest-even.
// - Clipping follows torch.clamp: max(y, min) then min(., max); NaN inputs stay NaN.
// - The same input value gives bit-identical output whatever the tensor length, the element's
//   position, the thread count, the batch it was grouped into, or the instruction set in use.
// - Thread-safety: every function here may be called concurrently from any thread. Run() never
//   throws and never allocates per element.
// This header includes no gRPC, protobuf or CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace cgelu::kernels {

enum class DType : uint8_t { kFP32, kFP64, kFP16, kBF16 };
enum class Approximate : uint8_t { kNone, kTanh };

// Bytes per element of `dtype`.
size_t ElementSize(DType dtype);
// Open Inference Protocol spelling: "FP32", "FP64", "FP16", "BF16".
std::string_view DTypeName(DType dtype);
// Parses the protocol spelling; any other datatype is INVALID_ARGUMENT naming it.
absl::StatusOr<DType> ParseDType(std::string_view name);
// "none" or "tanh" (the values torch's F.gelu accepts); anything else is INVALID_ARGUMENT.
absl::StatusOr<Approximate> ParseApproximate(std::string_view name);
std::string_view ApproximateName(Approximate approximate);

struct ClipParams {
  double min = -3.0;
  double max = 3.0;
  Approximate approximate = Approximate::kNone;
};

// OK for min <= max with neither bound NaN (infinite bounds are allowed). Otherwise
// INVALID_ARGUMENT with the module's message: "min should be < max (got min: 2, max: 1)", or one
// naming the NaN bound.
absl::Status ValidateParams(const ClipParams& params);

// One contiguous run of elements: `count` elements of `dtype` read from `input` and written to
// `output`. Input and output may be the same pointer (in place) but must not otherwise overlap.
// Neither pointer needs any alignment: the kernel uses unaligned loads and stores, so the bytes of
// a protobuf string can be used in place.
struct Segment {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;
  DType dtype = DType::kFP32;
  ClipParams params;
};

// Instruction sets the CPU kernel can run on.
enum class Isa : uint8_t { kScalar, kAvx2, kAvx512 };
std::string_view IsaName(Isa isa);

// The instruction set Run() uses: the best one this CPU supports, chosen once and cached. The
// environment variable CGELU_CPU_ISA=scalar|avx2|avx512 forces one (for tests and benchmarks); a
// forced ISA the CPU lacks falls back to the best supported one, with a warning on stderr.
Isa ActiveIsa();
// True when this CPU can run `isa`.
bool IsaSupported(Isa isa);

struct RunOptions {
  // Upper bound on threads used for this call; 0 means every hardware thread. Large segments are
  // split into chunks run in parallel; small batches run on the calling thread.
  int max_threads = 0;
  // Forces an instruction set for this call (tests and benchmarks). Must be supported by the CPU,
  // or Run() returns FAILED_PRECONDITION. Unset: ActiveIsa().
  bool force_isa = false;
  Isa isa = Isa::kScalar;
};

// Runs every segment. Validates all parameters first: a bad segment fails the call with
// INVALID_ARGUMENT before anything is written. A segment with count 0 is allowed (nothing happens).
absl::Status Run(absl::Span<const Segment> segments, const RunOptions& options = {});

}  // namespace cgelu::kernels
