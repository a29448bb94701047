// cgelu-ulp-sweep: runs the CPU kernel on all 2^32 fp32 bit patterns and checks the accuracy
// contract of ../shared/reference/numerics.md:
//   approximate=none: at most 4 ULP from the rounded reference::GeluErfDouble (erfc with a hi/lo
//   argument, ~1e-15 relative);
//   approximate=tanh: |out - ref| <= 1e-6 |ref| + 1e-12 against the formula in float64;
//   NaN in -> NaN out. Several ISAs are compared against one reference evaluation per input.
// Bounds are (-inf, inf) so the unclipped GELU is checked. Exit status 1 if the contract is
// violated, 2 on bad usage.
//
//   cgelu-ulp-sweep --approximate none --isa all --threads 2
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "cgelu/kernels/clipped_gelu.h"
#include "gelu_reference.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/task_arena.h"

namespace {

using cgelu::kernels::Approximate;
using cgelu::kernels::Isa;

constexpr uint64_t kInputs = uint64_t{1} << 32;
constexpr uint64_t kBlock = uint64_t{1} << 20;

struct Worst {
  uint64_t ulp = 0;  // erf mode: worst ULP distance
  double ratio = 0;  // tanh mode: worst |out - ref| / (1e-6 |ref| + 1e-12)
  float x = 0;
  float out = 0;
  float ref = 0;
  uint64_t nan_mismatches = 0;
};

// The correctly rounded fp32 gelu(x). Two ranges need no erfc: for x >= 6, 1 - Phi(x) < 1e-9 is far
// below half an ulp (2^-25), so the result rounds to x; for x <= -15, |gelu(x)| < phi(15) < 6e-50,
// below half the smallest subnormal (2^-150), so it rounds to -0.
float ErfReference(float x) {
  if (x >= 6.0f) return x;
  if (x <= -15.0f) return -0.0f;
  return static_cast<float>(cgelu::reference::GeluErfDouble(x));
}

void Merge(Worst& into, const Worst& from, Approximate approximate) {
  into.nan_mismatches += from.nan_mismatches;
  const bool worse =
      approximate == Approximate::kNone ? from.ulp > into.ulp : from.ratio > into.ratio;
  if (worse) {
    const uint64_t nan_mismatches = into.nan_mismatches;
    into = from;
    into.nan_mismatches = nan_mismatches;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Exhaustive fp32 accuracy sweep of the cgelu CPU kernel"};
  std::string approximate_name = "none";
  std::string isa_name = "all";
  int threads = 0;
  app.add_option("--approximate", approximate_name, "none or tanh")
      ->check(CLI::IsMember({"none", "tanh"}));
  app.add_option("--isa", isa_name, "scalar, avx2, avx512 or all (every supported one)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512", "all"}));
  app.add_option("--threads", threads, "worker threads; 0 = every hardware thread")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  const Approximate approximate = *cgelu::kernels::ParseApproximate(approximate_name);
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa_name != "all" && cgelu::kernels::IsaName(isa) != isa_name) continue;
    if (!cgelu::kernels::IsaSupported(isa)) {
      if (isa_name != "all") {
        std::fprintf(stderr, "instruction set %s is not supported by this CPU\n", isa_name.c_str());
        return 2;
      }
      continue;
    }
    isas.push_back(isa);
  }

  std::vector<Worst> worst(isas.size());
  std::mutex mutex;
  std::atomic<uint64_t> done{0};
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  tbb::task_arena arena(threads == 0 ? tbb::task_arena::automatic : threads);
  arena.execute([&] {
    tbb::parallel_for(uint64_t{0}, kInputs / kBlock, [&](uint64_t block) {
      std::vector<float> in(kBlock);
      std::vector<float> out(kBlock);
      std::vector<float> ref(kBlock);
      for (uint64_t i = 0; i < kBlock; ++i) {
        const float x = std::bit_cast<float>(static_cast<uint32_t>(block * kBlock + i));
        in[i] = x;
        ref[i] = approximate == Approximate::kNone
                     ? ErfReference(x)
                     : static_cast<float>(cgelu::reference::GeluTanhFormulaFp64(x));
      }
      for (size_t k = 0; k < isas.size(); ++k) {
        cgelu::kernels::Segment segment{in.data(),
                                        out.data(),
                                        kBlock,
                                        cgelu::kernels::DType::kFP32,
                                        {-INFINITY, INFINITY, approximate}};
        cgelu::kernels::RunOptions options;
        options.max_threads = 1;
        options.force_isa = true;
        options.isa = isas[k];
        if (!cgelu::kernels::Run({&segment, 1}, options).ok()) std::abort();
        Worst local;
        for (uint64_t i = 0; i < kBlock; ++i) {
          const float x = in[i];
          if (std::isnan(x) || std::isnan(out[i])) {
            local.nan_mismatches += std::isnan(x) != std::isnan(out[i]);
            continue;
          }
          if (approximate == Approximate::kNone) {
            const uint64_t ulp = cgelu::reference::UlpDistance(out[i], ref[i]);
            if (ulp > local.ulp) local = Worst{ulp, 0, x, out[i], ref[i], local.nan_mismatches};
          } else {
            const double r = ref[i];
            const double error = std::fabs(static_cast<double>(out[i]) - r);
            const double ratio = std::isinf(r) ? (out[i] == r ? 0.0 : INFINITY)
                                               : error / (1e-6 * std::fabs(r) + 1e-12);
            if (ratio > local.ratio)
              local = Worst{0, ratio, x, out[i], ref[i], local.nan_mismatches};
          }
        }
        std::lock_guard<std::mutex> lock(mutex);
        Merge(worst[k], local, approximate);
      }
      const uint64_t finished = done.fetch_add(kBlock) + kBlock;
      std::lock_guard<std::mutex> lock(mutex);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(2) || finished == kInputs) {
        last_report = now;
        std::fprintf(stderr, "\r%5.1f%% of 2^32 inputs, %.0f s", 100.0 * finished / kInputs,
                     std::chrono::duration<double>(now - start).count());
      }
    });
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");

  bool ok = true;
  for (size_t k = 0; k < isas.size(); ++k) {
    const Worst& w = worst[k];
    const std::string name(cgelu::kernels::IsaName(isas[k]));
    if (approximate == Approximate::kNone) {
      const bool pass = w.ulp <= 4 && w.nan_mismatches == 0;
      ok = ok && pass;
      std::printf("approximate=none isa=%s: max error %" PRIu64
                  " ULP at x=%a (%.9g): out=%a ref=%a; NaN mismatches %" PRIu64 " -> %s\n",
                  name.c_str(), w.ulp, w.x, w.x, w.out, w.ref, w.nan_mismatches,
                  pass ? "PASS (<= 4 ULP)" : "FAIL");
    } else {
      const bool pass = w.ratio <= 1.0 && w.nan_mismatches == 0;
      ok = ok && pass;
      std::printf(
          "approximate=tanh isa=%s: worst |out-ref|/(1e-6|ref|+1e-12) = %.4f at x=%a (%.9g): "
          "out=%a ref=%a; NaN mismatches %" PRIu64 " -> %s\n",
          name.c_str(), w.ratio, w.x, w.x, w.out, w.ref, w.nan_mismatches,
          pass ? "PASS (<= 1)" : "FAIL");
    }
  }
  std::printf("%zu instruction set(s), %.1f s\n", isas.size(), seconds);
  return ok ? 0 : 1;
}
