#include "cgelu/kernels/clipped_gelu.h"

#include <cpuid.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernel_isa.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/task_arena.h"

namespace cgelu::kernels {
namespace {

// Shortest text that reads back as the same double ("2", "-0.5", "1e+20", "inf"), so the message
// for min=2, max=1 reads "min should be < max (got min: 2, max: 1)".
std::string FormatBound(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// Threading constants, from BM_SplitAcrossTwoThreads vs BM_CgeluFp32Serial in bench/kernels
// (docs/BENCHMARKS.md, "Threading constants"; 2-core AVX-512 machines). On a loaded Intel Xeon
// (load average 4-8) two threads first beat one at 32 Ki fp32 elements (26.6 us vs 33.5 us) and
// lost at 4-8 Ki; on an idle AMD EPYC (Zen 4) they already win at 8 Ki (4.4 us vs 6.5 us). A
// server shares its cores, so the threshold is the loaded machine's. 4 Ki chunks (~3-4 us each)
// balanced as well as or better than 16 Ki and 64 Ki ones at 32 Ki - 256 Ki elements on both.
constexpr size_t kParallelMinElements = size_t{1} << 15;
constexpr size_t kGrainElements = size_t{1} << 12;

uint64_t ReadXcr0() {
  uint32_t eax = 0;
  uint32_t edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;
};

// cpuid for the instructions, xgetbv for the OS saving the YMM / ZMM and mask registers.
CpuFeatures DetectCpuFeatures() {
  CpuFeatures features;
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return features;
  const bool fma = (ecx & bit_FMA) != 0;
  const bool f16c = (ecx & bit_F16C) != 0;
  const bool osxsave = (ecx & bit_OSXSAVE) != 0;
  const bool avx = (ecx & bit_AVX) != 0;
  if (!osxsave || !avx) return features;
  const uint64_t xcr0 = ReadXcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return features;
  const bool avx2 = (ebx & bit_AVX2) != 0;
  const bool avx512 =
      (ebx & bit_AVX512F) && (ebx & bit_AVX512BW) && (ebx & bit_AVX512VL) && (ebx & bit_AVX512DQ);
  features.avx2 = os_ymm && avx2 && fma && f16c;
  features.avx512 = features.avx2 && os_zmm && avx512;
  return features;
}

const CpuFeatures& Features() {
  static const CpuFeatures features = DetectCpuFeatures();
  return features;
}

Isa BestIsa() {
  if (Features().avx512) return Isa::kAvx512;
  if (Features().avx2) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa ChooseIsa() {
  const char* forced = std::getenv("CGELU_CPU_ISA");
  if (forced == nullptr || *forced == '\0') return BestIsa();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaName(isa) != forced) continue;
    if (IsaSupported(isa)) return isa;
    std::fprintf(stderr, "cgelu: CGELU_CPU_ISA=%s is not supported by this CPU; using %s\n", forced,
                 std::string(IsaName(BestIsa())).c_str());
    return BestIsa();
  }
  std::fprintf(stderr, "cgelu: unknown CGELU_CPU_ISA=%s (scalar|avx2|avx512); using %s\n", forced,
               std::string(IsaName(BestIsa())).c_str());
  return BestIsa();
}

using KernelFn = void (*)(const Segment&, size_t, size_t);

KernelFn KernelFor(Isa isa, DType dtype) {
  if (dtype == DType::kFP64) return internal::ClippedGeluScalar;
  switch (isa) {
    case Isa::kAvx512:
      return internal::ClippedGeluAvx512;
    case Isa::kAvx2:
      return internal::ClippedGeluAvx2;
    case Isa::kScalar:
      break;
  }
  return internal::ClippedGeluScalar;
}

bool KnownDType(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
    case DType::kFP64:
    case DType::kFP16:
    case DType::kBF16:
      return true;
  }
  return false;
}

absl::Status ValidateSegment(const Segment& segment, size_t index) {
  if (!KnownDType(segment.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", index, ": unknown dtype ", static_cast<int>(segment.dtype)));
  }
  if (absl::Status status = ValidateParams(segment.params); !status.ok()) return status;
  if (segment.params.approximate != Approximate::kNone &&
      segment.params.approximate != Approximate::kTanh) {
    return absl::InvalidArgumentError(absl::StrCat("segment ", index, ": unknown approximate ",
                                                   static_cast<int>(segment.params.approximate)));
  }
  if (segment.count == 0) return absl::OkStatus();
  if (segment.input == nullptr || segment.output == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment ", index, ": null input or output with ", segment.count, " elements"));
  }
  const size_t element_size = ElementSize(segment.dtype);
  if (segment.count > std::numeric_limits<size_t>::max() / element_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", index, ": element count ", segment.count, " is too large"));
  }
  const auto in = reinterpret_cast<uintptr_t>(segment.input);
  const auto out = reinterpret_cast<uintptr_t>(segment.output);
  const size_t bytes = segment.count * element_size;
  if (in != out && in < out + bytes && out < in + bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment ", index, ": input and output overlap without being equal"));
  }
  return absl::OkStatus();
}

int HardwareThreads() {
  static const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return threads;
}

// One arena per thread limit, created on first use and kept: an arena bounds the concurrency of
// the work run inside it, and TBB's work stealing balances chunks across the arena's threads.
tbb::task_arena& ArenaFor(int threads) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<tbb::task_arena>> arenas(HardwareThreads() + 1);
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<tbb::task_arena>& arena = arenas[threads];
  if (arena == nullptr) arena = std::make_unique<tbb::task_arena>(threads);
  return *arena;
}

void RunSerial(absl::Span<const Segment> segments, Isa isa) {
  for (const Segment& segment : segments) {
    if (segment.count > 0) KernelFor(isa, segment.dtype)(segment, 0, segment.count);
  }
}

// Splits the concatenation of all segments into chunks; each chunk maps back to (segment, range).
// An element's result does not depend on which chunk computes it, so the split is free to vary.
void RunParallel(absl::Span<const Segment> segments, Isa isa, int threads, size_t total) {
  std::vector<size_t> starts(segments.size() + 1, 0);
  for (size_t i = 0; i < segments.size(); ++i) starts[i + 1] = starts[i] + segments[i].count;
  ArenaFor(threads).execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, total, kGrainElements),
        [&](const tbb::blocked_range<size_t>& range) {
          size_t position = range.begin();
          size_t s = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), position) -
                                         starts.begin() - 1);
          while (position < range.end()) {
            const Segment& segment = segments[s];
            const size_t begin = position - starts[s];
            const size_t end = std::min(segment.count, range.end() - starts[s]);
            if (end > begin) KernelFor(isa, segment.dtype)(segment, begin, end);
            position = starts[s] + end;
            ++s;
          }
        });
  });
}

}  // namespace

namespace internal {

const float* Gelu16Table(DType dtype, Approximate approximate) {
  constexpr size_t kPatterns = size_t{1} << 16;
  struct Table {
    std::once_flag built;
    alignas(64) float gelu[kPatterns];
  };
  // [bf16][tanh]; static storage, so nothing is allocated and untouched tables cost no memory.
  static Table tables[2][2];
  const bool bf16 = dtype == DType::kBF16;
  Table& table = tables[bf16][approximate == Approximate::kTanh];
  std::call_once(table.built, [&] {
    // In blocks on the stack, so building the table allocates nothing.
    constexpr size_t kBlock = 4096;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    float widened[kBlock];
    for (size_t first = 0; first < kPatterns; first += kBlock) {
      for (size_t i = 0; i < kBlock; ++i) {
        const auto pattern = static_cast<uint16_t>(first + i);
        widened[i] = bf16 ? std::bit_cast<float>(static_cast<uint32_t>(pattern) << 16)
                          : HalfToFloat(pattern);
      }
      const Segment block{
          widened, table.gelu + first, kBlock, DType::kFP32, {-kInf, kInf, approximate}};
      KernelFor(ActiveIsa(), DType::kFP32)(block, 0, kBlock);
    }
  });
  return table.gelu;
}

}  // namespace internal

size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return 4;
    case DType::kFP64:
      return 8;
    case DType::kFP16:
    case DType::kBF16:
      return 2;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFP32:
      return "FP32";
    case DType::kFP64:
      return "FP64";
    case DType::kFP16:
      return "FP16";
    case DType::kBF16:
      return "BF16";
  }
  return "UNKNOWN";
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (DType dtype : {DType::kFP32, DType::kFP64, DType::kFP16, DType::kBF16}) {
    if (DTypeName(dtype) == name) return dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported datatype \"", std::string(name),
                                                 "\" (supported: FP32, FP64, FP16, BF16)"));
}

absl::StatusOr<Approximate> ParseApproximate(std::string_view name) {
  if (name == "none") return Approximate::kNone;
  if (name == "tanh") return Approximate::kTanh;
  return absl::InvalidArgumentError(
      absl::StrCat("approximate must be \"none\" or \"tanh\" (got \"", std::string(name), "\")"));
}

std::string_view ApproximateName(Approximate approximate) {
  return approximate == Approximate::kTanh ? "tanh" : "none";
}

absl::Status ValidateParams(const ClipParams& params) {
  if (std::isnan(params.min)) return absl::InvalidArgumentError("min must not be NaN");
  if (std::isnan(params.max)) return absl::InvalidArgumentError("max must not be NaN");
  if (params.min > params.max) {
    return absl::InvalidArgumentError(
        absl::StrCat("min should be < max (got min: ", FormatBound(params.min),
                     ", max: ", FormatBound(params.max), ")"));
  }
  return absl::OkStatus();
}

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return Features().avx2;
    case Isa::kAvx512:
      return Features().avx512;
  }
  return false;
}

Isa ActiveIsa() {
  static const Isa isa = ChooseIsa();
  return isa;
}

absl::Status Run(absl::Span<const Segment> segments, const RunOptions& options) {
  const Isa isa = options.force_isa ? options.isa : ActiveIsa();
  if (options.force_isa && !IsaSupported(isa)) {
    return absl::FailedPreconditionError(absl::StrCat("instruction set ", std::string(IsaName(isa)),
                                                      " is not supported by this CPU"));
  }
  if (options.max_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_threads must be >= 0 (got ", options.max_threads, ")"));
  }
  size_t total = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (absl::Status status = ValidateSegment(segments[i], i); !status.ok()) return status;
    total += segments[i].count;
  }
  const int threads = options.max_threads == 0 ? HardwareThreads()
                                               : std::min(options.max_threads, HardwareThreads());
  if (threads <= 1 || total < kParallelMinElements) {
    RunSerial(segments, isa);
    return absl::OkStatus();
  }
  // TBB reports allocation failure by throwing; this library's callers expect a status.
  try {
    RunParallel(segments, isa, threads, total);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while scheduling the kernel threads");
  }
  return absl::OkStatus();
}

}  // namespace cgelu::kernels
