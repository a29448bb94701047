// The per-instruction-set entry points of the CPU kernel (internal to cgelu_kernels).
//
// Each function computes elements [begin, end) of one already validated segment. Each lives in its
// own translation unit compiled with its own -m flags; everything else in those files has internal
// linkage, so no code built for a wider ISA can be picked by the linker for a narrower one. Callers
// (clipped_gelu.cc) only call a function after checking the CPU supports its instruction set.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::kernels::internal {

// Portable C++ (no -m flags). Handles every dtype; FP64 segments of every ISA come here, so FP64
// results are the same whatever the ISA.
void ClippedGeluScalar(const Segment& segment, size_t begin, size_t end);
// AVX2 + FMA + F16C. FP32, FP16, BF16 only.
void ClippedGeluAvx2(const Segment& segment, size_t begin, size_t end);
// AVX-512 F/BW/VL/DQ (+ F16C). FP32, FP16, BF16 only.
void ClippedGeluAvx512(const Segment& segment, size_t begin, size_t end);

// FP16 and BF16 have 65,536 inputs each, so their GELU is computed once per input and looked up:
// the unclipped fp32 GELU (`approximate` form) of every bit pattern of `dtype` (kFP16 or kBF16),
// indexed by the pattern. Built on first use by the fp32 kernel of the active ISA with bounds
// (-inf, inf), kept for the life of the process (256 KiB per dtype and form used); thread-safe.
// The fp32 kernel gives the same bits for a value on every ISA, so a lookup gives exactly what
// computing the widened value would: each ISA then clips in fp32 and rounds once, as before. The
// entries of NaN patterns are NaN and unused (NaN inputs are passed through, quieted).
const float* Gelu16Table(DType dtype, Approximate approximate);

// The exact fp32 value of an IEEE half (portable; kernel_scalar.cc).
float HalfToFloat(uint16_t h);

}  // namespace cgelu::kernels::internal
