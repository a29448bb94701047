#include "server/metrics.h"

#include <atomic>
#include <cmath>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/metrics/scrape.h"

namespace cgelu::server {
namespace {

using ::testing::ElementsAre;
using testing::Exposition;
using ::testing::HasSubstr;

constexpr const char* kModel = "clipped_gelu";
constexpr const char* kCpu = R"(backend="cpu",model="clipped_gelu")";

PrometheusMetricsOptions LoopbackOptions() {
  PrometheusMetricsOptions options;
  options.address = "127.0.0.1:0";
  options.version = "1.2.3";
  options.models = {kModel, "other"};
  return options;
}

Exposition Scrape(const PrometheusMetrics& metrics) {
  absl::StatusOr<std::string> body = cgelu::testing::HttpGet(metrics.port(), "/metrics");
  EXPECT_TRUE(body.ok()) << body.status();
  if (!body.ok()) return {};
  absl::StatusOr<Exposition> parsed = cgelu::testing::ParseExposition(*body);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : Exposition{};
}

TEST(ParseBucketsTest, AcceptsIncreasingPositiveNumbers) {
  absl::StatusOr<std::vector<double>> buckets = ParseBuckets("0.001, 0.01,0.1 ,1,2.5e1");
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  EXPECT_THAT(*buckets, ElementsAre(0.001, 0.01, 0.1, 1, 25));
}

TEST(ParseBucketsTest, RejectsBadListsWithTheOffendingEntry) {
  struct Case {
    const char* csv;
    const char* message;
  };
  for (const Case& c :
       {Case{"", "is not a number"}, Case{"1,,2", "'' is not a number"},
        Case{"0.1,abc", "'abc' is not a number"},
        Case{"1,1", "must be greater than the one before"},
        Case{"2,1", "bucket 2 (1) must be greater"}, Case{"0,1", "must be a finite number > 0"},
        Case{"-1", "must be a finite number > 0"}, Case{"1,inf", "must be a finite number > 0"},
        Case{"nan", "must be a finite number > 0"}}) {
    absl::StatusOr<std::vector<double>> buckets = ParseBuckets(c.csv);
    ASSERT_FALSE(buckets.ok()) << c.csv;
    EXPECT_EQ(buckets.status().code(), absl::StatusCode::kInvalidArgument) << c.csv;
    EXPECT_THAT(buckets.status().message(), HasSubstr(c.message)) << c.csv;
  }
}

TEST(DefaultBucketsTest, ResolveMicrosecondsToSecondsAndBatchSizes) {
  const std::vector<double> latency = DefaultLatencyBucketsSeconds();
  ASSERT_EQ(latency.size(), 22u);
  EXPECT_DOUBLE_EQ(latency.front(), 1e-6);
  EXPECT_DOUBLE_EQ(latency[1], 2.5e-6);
  EXPECT_DOUBLE_EQ(latency[2], 5e-6);
  EXPECT_DOUBLE_EQ(latency.back(), 10);
  const std::vector<double> requests = DefaultBatchRequestsBuckets();
  EXPECT_EQ(requests.size(), 11u);
  EXPECT_EQ(requests.back(), 1024);
  const std::vector<double> elements = DefaultBatchElementsBuckets();
  EXPECT_EQ(elements.size(), 14u);
  EXPECT_EQ(elements[1], 4);
  EXPECT_EQ(elements.back(), 67108864);
  for (const auto* list : {&latency, &requests, &elements}) {
    EXPECT_TRUE(ParseBuckets(absl::StrJoin(*list, ",")).ok());
  }
}

TEST(MakePrometheusMetricsTest, RejectsBadOptions) {
  auto expect_invalid = [](PrometheusMetricsOptions options, const char* message) {
    absl::StatusOr<std::unique_ptr<PrometheusMetrics>> metrics = MakePrometheusMetrics(options);
    ASSERT_FALSE(metrics.ok()) << message;
    EXPECT_EQ(metrics.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(metrics.status().message(), HasSubstr(message));
  };
  for (const char* address : {"8002", ":8002", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:x",
                              "example.com:8002", "[::1:8002", "1.2.3:8002"}) {
    PrometheusMetricsOptions options = LoopbackOptions();
    options.address = address;
    expect_invalid(options, address);
  }
  PrometheusMetricsOptions options = LoopbackOptions();
  options.models = {};
  expect_invalid(options, "model list is empty");
  options.models = {"a", "b", "a"};
  expect_invalid(options, "'a' listed twice");
  options.models = {std::string(kUnknownModelLabel)};
  expect_invalid(options, "cannot be a model name");
  options = LoopbackOptions();
  options.backend = "";
  expect_invalid(options, "backend is empty");
  options = LoopbackOptions();
  options.latency_buckets_s = {0.1, 0.05};
  expect_invalid(options, "latency buckets");
  options = LoopbackOptions();
  options.batch_elements_buckets = {0};
  expect_invalid(options, "batch element buckets");
}

TEST(MakePrometheusMetricsTest, BusyPortIsUnavailable) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> first =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_GT((*first)->port(), 0);
  PrometheusMetricsOptions options = LoopbackOptions();
  options.address = absl::StrCat("127.0.0.1:", (*first)->port());
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> second = MakePrometheusMetrics(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(options.address));
}

TEST(PrometheusMetricsTest, ExportsEveryFamilyWithItsType) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> metrics =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const Exposition scrape = Scrape(**metrics);
  const std::map<std::string, std::string> expected = {
      {"cgelu_requests_total", "counter"},
      {"cgelu_request_failures_total", "counter"},
      {"cgelu_processed_elements_total", "counter"},
      {"cgelu_processed_bytes_total", "counter"},
      {"cgelu_batches_total", "counter"},
      {"cgelu_request_duration_seconds", "histogram"},
      {"cgelu_input_preparation_duration_seconds", "histogram"},
      {"cgelu_queue_duration_seconds", "histogram"},
      {"cgelu_compute_duration_seconds", "histogram"},
      {"cgelu_output_preparation_duration_seconds", "histogram"},
      {"cgelu_batch_size_requests", "histogram"},
      {"cgelu_batch_size_elements", "histogram"},
      {"cgelu_last_request_timestamp_seconds", "gauge"},
      {"cgelu_pending_requests", "gauge"},
      {"cgelu_inflight_requests", "gauge"},
      {"cgelu_busy_batch_workers", "gauge"},
      {"cgelu_build_info", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
      {"process_start_time_seconds", "gauge"},
      // prometheus-cpp's exposer reports on itself.
      {"exposer_transferred_bytes_total", "counter"},
      {"exposer_scrapes_total", "counter"},
      {"exposer_request_latencies", "summary"},
  };
  EXPECT_EQ(scrape.types, expected);
  // Every model (and the catch-all) has all 17 codes and 5 reasons from the start, so rate() and
  // error ratios work before the first error.
  EXPECT_EQ(scrape.Count("cgelu_requests_total"), 3u * 17);
  EXPECT_EQ(scrape.Count("cgelu_request_failures_total"), 3u * 5);
  for (const char* model : {kModel, "other", "_unknown"}) {
    const std::string labels = absl::StrCat(R"(backend="cpu",model=")", model, "\"");
    EXPECT_EQ(scrape.Get("cgelu_requests_total", absl::StrCat(labels, R"(,code="OK")")), 0);
    EXPECT_EQ(scrape.Get("cgelu_requests_total", absl::StrCat(labels, R"(,code="UNAVAILABLE")")),
              0);
    for (const char* reason : {"invalid", "rejected", "timeout", "cancelled", "internal"}) {
      EXPECT_EQ(scrape.Get("cgelu_request_failures_total",
                           absl::StrCat(labels, R"(,reason=")", reason, "\"")),
                0)
          << model << " " << reason;
    }
    EXPECT_EQ(scrape.Get("cgelu_request_duration_seconds_count", labels), 0) << model;
    EXPECT_EQ(scrape.Get("cgelu_batches_total", labels), 0) << model;
  }
  EXPECT_EQ(scrape.Get("cgelu_build_info", R"(backend="cpu",version="1.2.3")"), 1);
  EXPECT_EQ(scrape.Get("cgelu_pending_requests"), 0);
  EXPECT_EQ(scrape.Count("cgelu_gpu_memory_used_bytes"), 0u);
  EXPECT_EQ(scrape.Count("cgelu_queue_capacity"), 0u);
}

TEST(PrometheusMetricsTest, ExportsTheQueueCapacityWhenGiven) {
  PrometheusMetricsOptions options = LoopbackOptions();
  options.max_queue_size = 512;
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> metrics = MakePrometheusMetrics(options);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const Exposition scrape = Scrape(**metrics);
  EXPECT_EQ(scrape.types.at("cgelu_queue_capacity"), "gauge");
  EXPECT_EQ(scrape.Get("cgelu_queue_capacity"), 512);
}

TEST(PrometheusMetricsTest, CountersAndHistogramsMove) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(made.ok()) << made.status();
  PrometheusMetrics& metrics = **made;
  for (int i = 0; i < 3; ++i) metrics.RequestDone(kModel, grpc::StatusCode::OK, 0.002);
  metrics.RequestDone(kModel, grpc::StatusCode::INVALID_ARGUMENT, 1e-5);
  metrics.RequestFailed(kModel, FailureReason::kInvalid);
  metrics.RequestDone("no_such_model", grpc::StatusCode::NOT_FOUND, 3e-6);
  metrics.RequestFailed("no_such_model", FailureReason::kInvalid);
  metrics.RequestFailed(kModel, FailureReason::kTimeout);
  metrics.RequestDone(kModel, static_cast<grpc::StatusCode>(99), 0.5);
  metrics.InputPrepared(kModel, 4e-6);
  metrics.Queued(kModel, 1.5e-4);
  metrics.BatchExecuted(kModel, 3, 300, 1200, 7e-4);
  metrics.BatchExecuted(kModel, 5, 5000, 20000, 2e-3);
  metrics.OutputPrepared(kModel, 2e-6);
  metrics.OutputPrepared(kModel, -1.0);  // a clock step: counted as zero, never negative
  metrics.WatchPendingRequests([] { return size_t{7}; });
  metrics.AddInFlightRequests(3);
  metrics.AddInFlightRequests(-1);
  metrics.AddBusyWorkers(1);
  const Exposition s = Scrape(metrics);

  auto with = [](const char* extra) { return absl::StrCat(kCpu, ",", extra); };
  EXPECT_EQ(s.Get("cgelu_requests_total", with(R"(code="OK")")), 3);
  EXPECT_EQ(s.Get("cgelu_requests_total", with(R"(code="INVALID_ARGUMENT")")), 1);
  EXPECT_EQ(s.Get("cgelu_requests_total", with(R"(code="UNKNOWN")")), 1);
  EXPECT_EQ(s.Get("cgelu_requests_total", R"(backend="cpu",model="_unknown",code="NOT_FOUND")"), 1);
  EXPECT_EQ(s.Sum("cgelu_requests_total"), 6);
  EXPECT_EQ(s.Get("cgelu_request_failures_total", with(R"(reason="invalid")")), 1);
  EXPECT_EQ(s.Get("cgelu_request_failures_total", with(R"(reason="timeout")")), 1);
  EXPECT_EQ(
      s.Get("cgelu_request_failures_total", R"(backend="cpu",model="_unknown",reason="invalid")"),
      1);
  EXPECT_EQ(s.Sum("cgelu_request_failures_total"), 3);
  EXPECT_EQ(s.Get("cgelu_batches_total", kCpu), 2);
  EXPECT_EQ(s.Get("cgelu_processed_elements_total", kCpu), 5300);
  EXPECT_EQ(s.Get("cgelu_processed_bytes_total", kCpu), 21200);
  EXPECT_EQ(s.Get("cgelu_pending_requests"), 7);
  EXPECT_EQ(s.Get("cgelu_inflight_requests"), 2);
  EXPECT_EQ(s.Get("cgelu_busy_batch_workers"), 1);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_NEAR(*s.Get("cgelu_last_request_timestamp_seconds", kCpu), now, 5);
  EXPECT_EQ(s.Get("cgelu_last_request_timestamp_seconds", R"(backend="cpu",model="other")"), 0);

  // Request duration: 3e-6 went to _unknown; clipped_gelu saw 1e-5, 3 x 2e-3 and 0.5.
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_count", kCpu), 5);
  EXPECT_NEAR(*s.Get("cgelu_request_duration_seconds_sum", kCpu), 0.50601, 1e-12);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_bucket", with(R"(le="5e-06")")), 0);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_bucket", with(R"(le="1e-05")")), 1);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_bucket", with(R"(le="0.001")")), 1);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_bucket", with(R"(le="0.0025")")), 4);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_bucket", with(R"(le="0.5")")), 5);
  EXPECT_EQ(s.Get("cgelu_output_preparation_duration_seconds_count", kCpu), 2);
  EXPECT_EQ(s.Get("cgelu_output_preparation_duration_seconds_sum", kCpu), 2e-6);
  EXPECT_EQ(s.Get("cgelu_output_preparation_duration_seconds_bucket", with(R"(le="1e-06")")), 1);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_bucket", with(R"(le="2")")), 0);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_bucket", with(R"(le="4")")), 1);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_bucket", with(R"(le="8")")), 2);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_sum", kCpu), 8);
  EXPECT_EQ(s.Get("cgelu_batch_size_elements_bucket", with(R"(le="256")")), 0);
  EXPECT_EQ(s.Get("cgelu_batch_size_elements_bucket", with(R"(le="1024")")), 1);
  EXPECT_EQ(s.Get("cgelu_batch_size_elements_bucket", with(R"(le="16384")")), 2);
  EXPECT_EQ(s.Get("cgelu_compute_duration_seconds_count", kCpu), 2);
  EXPECT_EQ(s.Get("cgelu_queue_duration_seconds_bucket", with(R"(le="0.00025")")), 1);
  EXPECT_EQ(s.Get("cgelu_input_preparation_duration_seconds_bucket", with(R"(le="5e-06")")), 1);
}

// The three parts of every histogram agree: buckets are cumulative, +Inf equals _count, and each
// bucket list is exactly the configured bounds.
TEST(PrometheusMetricsTest, HistogramPartsAreConsistent) {
  PrometheusMetricsOptions options = LoopbackOptions();
  options.batch_requests_buckets = {1, 8, 64};
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made = MakePrometheusMetrics(options);
  ASSERT_TRUE(made.ok()) << made.status();
  for (int i = 0; i < 50; ++i) {
    const double seconds = 1e-6 * std::pow(1.4, i);
    (*made)->RequestDone(kModel, grpc::StatusCode::OK, seconds);
    (*made)->Queued(kModel, seconds / 2);
    (*made)->InputPrepared(kModel, seconds / 3);
    (*made)->OutputPrepared(kModel, seconds / 4);
    (*made)->BatchExecuted(kModel, i % 70 + 1, i * 997, i * 3988, seconds / 5);
  }
  const Exposition s = Scrape(**made);
  const std::vector<std::pair<const char*, size_t>> histograms = {
      {"cgelu_request_duration_seconds", 22},
      {"cgelu_queue_duration_seconds", 22},
      {"cgelu_input_preparation_duration_seconds", 22},
      {"cgelu_output_preparation_duration_seconds", 22},
      {"cgelu_compute_duration_seconds", 22},
      {"cgelu_batch_size_requests", 3},
      {"cgelu_batch_size_elements", 14}};
  for (const auto& [name, bounds] : histograms) {
    // Three label sets (two models and the catch-all), each with its bounds plus +Inf.
    EXPECT_EQ(s.Count(absl::StrCat(name, "_bucket")), 3 * (bounds + 1)) << name;
    const std::vector<std::pair<double, double>> ordered = s.Buckets(name, kCpu);
    ASSERT_EQ(ordered.size(), bounds + 1) << name;
    EXPECT_EQ(ordered.back().first, INFINITY) << name;
    double previous = 0;
    for (const auto& [bound, cumulative] : ordered) {
      EXPECT_GE(cumulative, previous) << name << " le=" << bound;
      previous = cumulative;
    }
    EXPECT_EQ(ordered.back().second, 50) << name;
    EXPECT_EQ(s.Get(absl::StrCat(name, "_count"), kCpu), 50) << name;
    EXPECT_GT(*s.Get(absl::StrCat(name, "_sum"), kCpu), 0) << name;
  }
  // With 50 durations growing by 1.4x from 1 us, some land past 10 s: only +Inf holds them.
  EXPECT_LT(*s.Get("cgelu_request_duration_seconds_bucket", absl::StrCat(kCpu, R"(,le="10")")), 50);
}

TEST(PrometheusMetricsTest, ProcessMetricsArePlausible) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(made.ok()) << made.status();
  const Exposition s = Scrape(**made);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_GE(*s.Get("process_cpu_seconds_total"), 0);
  EXPECT_GT(*s.Get("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(*s.Get("process_virtual_memory_bytes"), *s.Get("process_resident_memory_bytes"));
  EXPECT_GE(*s.Get("process_open_fds"), 3);
  EXPECT_GE(*s.Get("process_max_fds"), *s.Get("process_open_fds"));
  // This test process started within the last hour, and not in the future (1 s tick rounding).
  EXPECT_LE(*s.Get("process_start_time_seconds"), now + 1);
  EXPECT_GT(*s.Get("process_start_time_seconds"), now - 3600);
}

TEST(PrometheusMetricsTest, GpuMemoryIsReadAtScrapeTime) {
  PrometheusMetricsOptions options = LoopbackOptions();
  options.backend = "cuda";
  std::atomic<int> calls = 0;
  options.gpu_memory_probe = [&calls]() -> absl::StatusOr<GpuMemoryInfo> {
    if (++calls == 2) return absl::InternalError("device lost");
    return GpuMemoryInfo{1, 1000u * static_cast<uint64_t>(calls.load()), 80000};
  };
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made = MakePrometheusMetrics(options);
  ASSERT_TRUE(made.ok()) << made.status();
  Exposition s = Scrape(**made);
  EXPECT_EQ(s.types["cgelu_gpu_memory_used_bytes"], "gauge");
  EXPECT_EQ(s.Get("cgelu_gpu_memory_used_bytes", R"(backend="cuda",device="1")"), 1000);
  EXPECT_EQ(s.Get("cgelu_gpu_memory_total_bytes", R"(backend="cuda",device="1")"), 80000);
  EXPECT_EQ(s.Get("cgelu_build_info", R"(backend="cuda",version="1.2.3")"), 1);
  s = Scrape(**made);  // the probe fails: the series are left out, the rest is served
  EXPECT_EQ(s.Count("cgelu_gpu_memory_used_bytes"), 0u);
  EXPECT_EQ(s.Get("cgelu_pending_requests"), 0);
  s = Scrape(**made);
  EXPECT_EQ(s.Get("cgelu_gpu_memory_used_bytes", R"(backend="cuda",device="1")"), 3000);
}

TEST(PrometheusMetricsTest, PendingRequestsAreReadAtScrapeTime) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(Scrape(**made).Get("cgelu_pending_requests"), 0) << "nothing watched yet";
  std::atomic<size_t> depth = 3;
  std::atomic<int> reads = 0;
  (*made)->WatchPendingRequests([&] {
    ++reads;
    return depth.load();
  });
  EXPECT_EQ(reads.load(), 0) << "read when scraped, not when attached";
  Exposition s = Scrape(**made);
  EXPECT_EQ(s.types["cgelu_pending_requests"], "gauge");
  EXPECT_EQ(s.Get("cgelu_pending_requests"), 3);
  depth = 11;
  EXPECT_EQ(Scrape(**made).Get("cgelu_pending_requests"), 11);
  EXPECT_EQ(reads.load(), 2);
  (*made)->WatchPendingRequests(nullptr);
  EXPECT_EQ(Scrape(**made).Get("cgelu_pending_requests"), 0);
  EXPECT_EQ(reads.load(), 2);
}

TEST(PrometheusMetricsTest, StatisticsMatchTheScrape) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(made.ok()) << made.status();
  PrometheusMetrics& metrics = **made;
  metrics.RequestDone(kModel, grpc::StatusCode::OK, 0.25);
  metrics.RequestDone(kModel, grpc::StatusCode::OK, 0.5);
  metrics.RequestDone(kModel, grpc::StatusCode::DEADLINE_EXCEEDED, 2);
  metrics.RequestFailed(kModel, FailureReason::kTimeout);
  metrics.RequestFailed(kModel, FailureReason::kCancelled);
  metrics.InputPrepared(kModel, 0.125);
  metrics.Queued(kModel, 0.0625);
  metrics.BatchExecuted(kModel, 2, 64, 256, 0.03125);
  metrics.OutputPrepared(kModel, 0.015625);
  absl::StatusOr<StatisticsSnapshot> stats = metrics.Statistics(kModel);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->model, kModel);
  EXPECT_EQ(stats->success_count, 2u);
  EXPECT_EQ(stats->failure_count, 2u);
  EXPECT_EQ(stats->failures_by_reason[static_cast<size_t>(FailureReason::kTimeout)], 1u);
  EXPECT_EQ(stats->failures_by_reason[static_cast<size_t>(FailureReason::kCancelled)], 1u);
  EXPECT_EQ(stats->request.count, 3u);
  EXPECT_EQ(stats->request.total_s, 2.75);
  EXPECT_EQ(stats->input_preparation.total_s, 0.125);
  EXPECT_EQ(stats->queue.total_s, 0.0625);
  EXPECT_EQ(stats->compute.count, 1u);
  EXPECT_EQ(stats->compute.total_s, 0.03125);
  EXPECT_EQ(stats->output_preparation.total_s, 0.015625);
  EXPECT_EQ(stats->inference_count, 2u);
  EXPECT_EQ(stats->execution_count, 1u);
  EXPECT_EQ(stats->elements, 64u);
  EXPECT_EQ(stats->bytes, 256u);
  EXPECT_GT(stats->last_request_unix_s, 0);

  const Exposition s = Scrape(metrics);
  EXPECT_EQ(s.Get("cgelu_requests_total", absl::StrCat(kCpu, R"(,code="OK")")),
            stats->success_count);
  EXPECT_EQ(s.Sum("cgelu_request_failures_total", kCpu), stats->failure_count);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_sum", kCpu), stats->request.total_s);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_sum", kCpu), stats->inference_count);
  // The text format keeps 15 significant digits: milliseconds of a Unix time.
  EXPECT_NEAR(*s.Get("cgelu_last_request_timestamp_seconds", kCpu), stats->last_request_unix_s,
              1e-3);

  absl::StatusOr<StatisticsSnapshot> other = metrics.Statistics("other");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->request.count, 0u);
  EXPECT_EQ(other->last_request_unix_s, 0);
  EXPECT_EQ(metrics.Statistics("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(metrics.Statistics(kUnknownModelLabel).status().code(), absl::StatusCode::kNotFound);
}

TEST(PrometheusMetricsTest, WithoutAddressKeepsCountersButServesNothing) {
  PrometheusMetricsOptions options = LoopbackOptions();
  options.address = "";
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made = MakePrometheusMetrics(options);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->port(), 0);
  (*made)->RequestDone(kModel, grpc::StatusCode::OK, 0.001);
  EXPECT_EQ((*made)->Statistics(kModel)->success_count, 1u);
}

TEST(NullMetricsTest, HasNoStatistics) {
  std::unique_ptr<ServerMetrics> metrics = MakeNullMetrics();
  metrics->RequestDone(kModel, grpc::StatusCode::OK, 0.001);
  EXPECT_EQ(metrics->Statistics(kModel).status().code(), absl::StatusCode::kUnimplemented);
}

TEST(FailureReasonTest, NamesAreTheLabelValues) {
  std::vector<std::string_view> names;
  for (FailureReason reason : kAllFailureReasons) names.push_back(FailureReasonName(reason));
  EXPECT_THAT(names, ElementsAre("invalid", "rejected", "timeout", "cancelled", "internal"));
}

// Recording from many threads while scraping loses nothing (run under TSAN by
// CGELU_SANITIZE=thread).
TEST(PrometheusMetricsTest, ConcurrentRecordingIsExact) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> made =
      MakePrometheusMetrics(LoopbackOptions());
  ASSERT_TRUE(made.ok()) << made.status();
  PrometheusMetrics& metrics = **made;
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.AddInFlightRequests(1);
        metrics.RequestDone(t % 2 ? kModel : "other", grpc::StatusCode::OK, 1e-4);
        metrics.BatchExecuted(kModel, 1, 10, 40, 1e-5);
        metrics.AddInFlightRequests(-1);
      }
    });
  }
  for (int i = 0; i < 3; ++i) Scrape(metrics);
  for (std::thread& thread : threads) thread.join();
  const Exposition s = Scrape(metrics);
  EXPECT_EQ(s.Sum("cgelu_requests_total", R"(code="OK")"), kThreads * kPerThread);
  EXPECT_EQ(s.Get("cgelu_processed_elements_total", kCpu), kThreads * kPerThread * 10);
  EXPECT_EQ(s.Get("cgelu_inflight_requests"), 0);
}

}  // namespace
}  // namespace cgelu::server
