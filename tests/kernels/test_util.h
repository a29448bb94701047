// Helpers shared by the kernel tests.
#pragma once

#include <cstdint>
#include <vector>

#include "cgelu/kernels/clipped_gelu.h"

namespace cgelu::kernels::testing {

// Every instruction set this CPU can run (scalar first).
std::vector<Isa> SupportedIsas();

// Runs one segment with a forced ISA and thread limit; fails the test on a non-OK status.
void RunOne(const Segment& segment, Isa isa, int max_threads = 1);

// Special and boundary fp32 values plus `random_count` random bit patterns (fixed seed).
std::vector<float> InterestingFloats(size_t random_count);

}  // namespace cgelu::kernels::testing
