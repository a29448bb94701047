#include "test_util.h"

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace cgelu::kernels::testing {

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

void RunOne(const Segment& segment, Isa isa, int max_threads) {
  RunOptions options;
  options.force_isa = true;
  options.isa = isa;
  options.max_threads = max_threads;
  const absl::Status status = Run({&segment, 1}, options);
  ASSERT_TRUE(status.ok()) << status;
}

std::vector<float> InterestingFloats(size_t random_count) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> values = {
      0.0f,           -0.0f,      kInf,      -kInf,     std::nanf(""),
      -std::nanf(""), 1e-45f,     -1e-45f,   1e-40f,    -1e-40f,
      0x1p-126f,      -0x1p-126f, 0x1p-26f,  -0x1p-26f, 0x1.fffffep-27f,
      1e-7f,          -1e-7f,     0.5f,      -0.5f,     -0.7517915f,
      1.0f,           -1.0f,      2.0f,      -2.0f,     3.0f,
      -3.0f,          5.5f,       -5.5f,     6.0f,      -6.0f,
      -10.0f,         -13.24f,    -14.14f,   -14.5f,    -14.33f,
      -15.0f,         -20.0f,     -100.0f,   100.0f,    3.4028235e38f,
      -3.4028235e38f, 65504.0f,   -65504.0f,
  };
  std::mt19937 rng(20240611);
  for (size_t i = 0; i < random_count; ++i)
    values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  std::uniform_real_distribution<float> moderate(-16.0f, 16.0f);
  for (size_t i = 0; i < random_count; ++i) values.push_back(moderate(rng));
  return values;
}

}  // namespace cgelu::kernels::testing
