// Request payloads and the --verify reference.
//
// Payloads are generated once before the run (uniform random values in [-8, 8) from a seeded
// generator, or a .npy file) together with the expected output of each, so checking a response
// costs one comparison pass and no recomputation.
//
// The reference is clip(gelu(x), min, max) evaluated in long double through erfc (never 1 + erf)
// or the tanh form, with the special inputs of the numerical contract (-inf -> -0, NaN stays NaN),
// then rounded to the payload's datatype (16-bit types through fp32, as the server computes them).
// Tolerances follow ../shared/reference/numerics.md: erf mode within 4 ULP (fp32, fp64) and 1 ULP
// (fp16, bf16); tanh mode as in erf mode or within 1e-6 * |ref| + 1e-12 (fp32, fp16, bf16) or
// 1e-12 * |ref| + 1e-14 (fp64), since 1 + tanh(z) cancels in the far negative tail. NaN must meet
// NaN, and -0.0 equals 0.0.
// Thread-safety: everything here is immutable after construction and safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cgelu/client/client.h"

namespace cgelu::loadtest {

struct ClipSettings {
  double min = -3.0;  // the protocol defaults when a request carries no parameters
  double max = 3.0;
  bool tanh = false;
};

struct Payload {
  client::Tensor input;
  client::Tensor expected;  // reference output, same datatype and shape
};

// `count` payloads of `shape` and `datatype` (FP32, FP64, FP16, BF16) from `seed`.
absl::StatusOr<std::vector<Payload>> MakeRandomPayloads(const std::vector<int64_t>& shape,
                                                        const std::string& datatype, int count,
                                                        uint64_t seed, const ClipSettings& clip);
// One payload with `input` as given (e.g. read from a .npy file).
absl::StatusOr<Payload> MakePayload(client::Tensor input, const ClipSettings& clip);

// clip(gelu(x), min, max) in long double, before rounding to any datatype.
long double ReferenceClippedGelu(long double x, const ClipSettings& clip);

// OK when `actual` matches `payload.expected` within the tolerances above; otherwise a message
// naming the first mismatching element (index, input, expected, got) and how many mismatched, or
// the datatype/shape/size difference.
absl::Status VerifyOutput(const Payload& payload, const client::Tensor& actual,
                          const ClipSettings& clip);

// IEEE binary16 and bfloat16 conversions, round to nearest even.
uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);
float BFloat16ToFloat(uint16_t bits);

}  // namespace cgelu::loadtest
