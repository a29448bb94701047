// Throughput of the CPU clipped GELU kernel, LibTorch's torch::clamp(torch::gelu(x), min, max) and
// memcpy of the same bytes, in one process. Results and the command line are in docs/BENCHMARKS.md.
//
//   build/bench/kernels/cgelu-kernel-bench --benchmark_min_time=0.5
//
// Arguments of each benchmark: element count, threads (0 = every hardware thread).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cgelu/kernels/clipped_gelu.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/task_arena.h"

#ifdef CGELU_BENCH_WITH_TORCH
#include <torch/torch.h>
#endif

namespace {

using cgelu::kernels::DType;
using cgelu::kernels::Segment;

int Threads(int64_t requested) {
  const int all = std::max(1u, std::thread::hardware_concurrency());
  return requested == 0 ? all : static_cast<int>(requested);
}

std::vector<float> RandomInputs(size_t count) {
  std::vector<float> values(count);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-5.0f, 5.0f);
  for (float& v : values) v = dist(rng);
  return values;
}

void SetRates(benchmark::State& state, size_t count, size_t element_bytes) {
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(count));
  // Bytes read plus bytes written.
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(2 * count * element_bytes));
}

void RunKernel(benchmark::State& state, const void* in, void* out, size_t count, DType dtype,
               int threads) {
  const Segment segment{in, out, count, dtype, {-3.0, 3.0, cgelu::kernels::Approximate::kNone}};
  cgelu::kernels::RunOptions options;
  options.max_threads = threads;
  for (auto _ : state) {
    if (!cgelu::kernels::Run({&segment, 1}, options).ok()) state.SkipWithError("Run failed");
    benchmark::ClobberMemory();
  }
}

void BM_CgeluFp32(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const std::vector<float> in = RandomInputs(count);
  std::vector<float> out(count);
  state.SetLabel(std::string(cgelu::kernels::IsaName(cgelu::kernels::ActiveIsa())));
  RunKernel(state, in.data(), out.data(), count, DType::kFP32, Threads(state.range(1)));
  SetRates(state, count, sizeof(float));
}

void BM_CgeluBf16(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const std::vector<float> values = RandomInputs(count);
  std::vector<uint16_t> in(count), out(count);
  for (size_t i = 0; i < count; ++i) in[i] = std::bit_cast<uint32_t>(values[i]) >> 16;
  RunKernel(state, in.data(), out.data(), count, DType::kBF16, Threads(state.range(1)));
  SetRates(state, count, sizeof(uint16_t));
}

// S15: a tensor of one repeated value; -100 and +100 must run at the same speed (no subnormal
// slow path). The value is the argument divided by 100 to keep integer arguments.
void BM_CgeluFp32Constant(benchmark::State& state) {
  const size_t count = 1000000;
  const float value = static_cast<float>(state.range(0)) / 100.0f;
  const std::vector<float> in(count, value);
  std::vector<float> out(count);
  state.SetLabel("x=" + std::to_string(value));
  RunKernel(state, in.data(), out.data(), count, DType::kFP32, 1);
  SetRates(state, count, sizeof(float));
}

// Copies the bytes of n elements of `kElementBytes` each (4: fp32, 2: bf16).
template <size_t kElementBytes>
void BM_Memcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) * kElementBytes;
  const std::vector<char> in(bytes, 1);
  std::vector<char> out(bytes);
  const int threads = Threads(state.range(1));
  tbb::task_arena arena(threads);
  for (auto _ : state) {
    if (threads == 1) {
      std::memcpy(out.data(), in.data(), bytes);
    } else {
      arena.execute([&] {
        tbb::parallel_for(size_t{0}, static_cast<size_t>(threads), [&](size_t part) {
          const size_t begin = bytes * part / threads;
          const size_t end = bytes * (part + 1) / threads;
          std::memcpy(out.data() + begin, in.data() + begin, end - begin);
        });
      });
    }
    benchmark::ClobberMemory();
  }
  SetRates(state, static_cast<size_t>(state.range(0)), kElementBytes);
}

#ifdef CGELU_BENCH_WITH_TORCH
void RunTorch(benchmark::State& state, torch::ScalarType type) {
  const size_t count = static_cast<size_t>(state.range(0));
  torch::set_num_threads(Threads(state.range(1)));
  const std::vector<float> values = RandomInputs(count);
  const torch::Tensor x =
      torch::from_blob(const_cast<float*>(values.data()), {static_cast<int64_t>(count)}).to(type);
  for (auto _ : state) {
    torch::Tensor y = torch::clamp(torch::gelu(x), -3.0, 3.0);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  SetRates(state, count, type == torch::kFloat ? sizeof(float) : sizeof(uint16_t));
}

void BM_TorchFp32(benchmark::State& state) { RunTorch(state, torch::kFloat); }
void BM_TorchBf16(benchmark::State& state) { RunTorch(state, torch::kBFloat16); }
#endif

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t count : {1 << 10, 1 << 16, 1 << 20, 1 << 24}) {
    for (int64_t threads : {1, 0}) b->Args({count, threads});
  }
  b->ArgNames({"n", "threads"});
}

void Bf16Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t threads : {1, 0}) b->Args({1 << 20, threads});
  b->ArgNames({"n", "threads"});
}

// Where a second thread starts to pay off: the measurement behind kParallelMinElements and
// kGrainElements in kernels/src/clipped_gelu.cc. Run() itself stays on one thread below the
// threshold, so this replays its parallel path (a 2-thread arena, parallel_for over chunks of at
// most `grain` elements, each chunk a single-threaded Run) for any size; compare with
// BM_CgeluFp32 at threads:1.
void BM_SplitAcrossTwoThreads(benchmark::State& state) {
  const size_t count = static_cast<size_t>(state.range(0));
  const size_t grain = static_cast<size_t>(state.range(1));
  const std::vector<float> in = RandomInputs(count);
  std::vector<float> out(count);
  tbb::task_arena arena(2);
  cgelu::kernels::RunOptions serial;
  serial.max_threads = 1;
  for (auto _ : state) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, count, grain),
                        [&](const tbb::blocked_range<size_t>& range) {
                          const Segment chunk{in.data() + range.begin(),
                                              out.data() + range.begin(),
                                              range.size(),
                                              DType::kFP32,
                                              {-3.0, 3.0, cgelu::kernels::Approximate::kNone}};
                          (void)cgelu::kernels::Run({&chunk, 1}, serial);
                        });
    });
    benchmark::ClobberMemory();
  }
  SetRates(state, count, sizeof(float));
}

void ThreadSizes(benchmark::internal::Benchmark* b) {
  for (int64_t count : {1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18}) {
    for (int64_t grain : {1 << 12, 1 << 14, 1 << 16}) {
      if (grain <= count) b->Args({count, grain});
    }
  }
  b->ArgNames({"n", "grain"});
}

void SerialSizes(benchmark::internal::Benchmark* b) {
  for (int64_t count : {1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18}) {
    b->Args({count, 1});
  }
  b->ArgNames({"n", "threads"});
}

BENCHMARK(BM_CgeluFp32)->Apply(Sizes)->UseRealTime();
BENCHMARK(BM_Memcpy<sizeof(float)>)->Name("BM_MemcpyFp32")->Apply(Sizes)->UseRealTime();
BENCHMARK(BM_Memcpy<sizeof(uint16_t)>)->Name("BM_MemcpyBf16")->Apply(Bf16Sizes)->UseRealTime();
#ifdef CGELU_BENCH_WITH_TORCH
BENCHMARK(BM_TorchFp32)->Apply(Sizes)->UseRealTime();
BENCHMARK(BM_TorchBf16)->Apply(Bf16Sizes)->UseRealTime();
#endif
BENCHMARK(BM_CgeluBf16)->Apply(Bf16Sizes)->UseRealTime();
BENCHMARK(BM_CgeluFp32Constant)
    ->Arg(-10000)
    ->Arg(10000)
    ->Arg(-1000)
    ->Arg(-1400)
    ->Arg(-1414)
    ->Arg(50)
    ->ArgName("x_times_100")
    ->UseRealTime();
BENCHMARK(BM_CgeluFp32)->Name("BM_CgeluFp32Serial")->Apply(SerialSizes)->UseRealTime();
BENCHMARK(BM_SplitAcrossTwoThreads)->Apply(ThreadSizes)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
