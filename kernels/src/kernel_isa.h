// The per-instruction-set entry points of the CPU kernel (internal to cgelu_kernels).
//
// Each function computes elements [begin, end) of one already validated segment. Each lives in its
// own translation unit compiled with its own -m flags; everything else in those files has internal
// linkage, so no code built for a wider ISA can be picked by the linker for a narrower one. Callers
// (clipped_gelu.cc) only call a function after checking the CPU supports its instruction set.
#pragma once

#include <cstddef>

#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::kernels::internal {

// Portable C++ (no -m flags). Handles every dtype; FP64 segments of every ISA come here, so FP64
// results are the same whatever the ISA.
void ClippedGeluScalar(const Segment& segment, size_t begin, size_t end);
// AVX2 + FMA + F16C. FP32, FP16, BF16 only.
void ClippedGeluAvx2(const Segment& segment, size_t begin, size_t end);
// AVX-512 F/BW/VL/DQ (+ F16C). FP32, FP16, BF16 only.
void ClippedGeluAvx512(const Segment& segment, size_t begin, size_t end);

}  // namespace cgelu::kernels::internal
