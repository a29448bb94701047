#include "server/metrics.h"

#include <arpa/inet.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/process_metrics.h"

namespace cgelu::server {

std::string_view FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kInvalid:
      return "invalid";
    case FailureReason::kRejected:
      return "rejected";
    case FailureReason::kTimeout:
      return "timeout";
    case FailureReason::kCancelled:
      return "cancelled";
    case FailureReason::kInternal:
      return "internal";
  }
  return "internal";
}

absl::StatusOr<StatisticsSnapshot> ServerMetrics::Statistics(std::string_view model) const {
  return absl::UnimplementedError("statistics need the metrics registry; this server keeps none");
}

namespace {

// Debian's abseil has its own string_view type; the public API uses std::string_view.
absl::string_view View(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

class NullMetrics final : public ServerMetrics {
 public:
  void RequestDone(std::string_view, grpc::StatusCode, double) override {}
  void RequestFailed(std::string_view, FailureReason) override {}
  void InputPrepared(std::string_view, double) override {}
  void Queued(std::string_view, double) override {}
  void OutputPrepared(std::string_view, double) override {}
  void BatchExecuted(std::string_view, size_t, size_t, size_t, double) override {}
  void WatchPendingRequests(std::function<size_t()>) override {}
  void AddInFlightRequests(int64_t) override {}
  void AddBusyWorkers(int64_t) override {}
};

// gRPC status codes 0..16 by value; the `code` label uses the canonical upper-case names.
constexpr std::array<std::string_view, 17> kStatusCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr size_t kUnknownCodeIndex = 2;

size_t CodeIndex(grpc::StatusCode code) {
  const int value = static_cast<int>(code);
  return value >= 0 && value < static_cast<int>(kStatusCodeNames.size())
             ? static_cast<size_t>(value)
             : kUnknownCodeIndex;
}

absl::Status ValidateBuckets(const std::vector<double>& buckets, absl::string_view what) {
  if (buckets.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no buckets"));
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || buckets[i] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": bucket ", i + 1, " (", buckets[i],
                                                     ") must be a finite number > 0"));
    }
    if (i > 0 && buckets[i] <= buckets[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": bucket ", i + 1, " (", buckets[i],
                                                     ") must be greater than the one before (",
                                                     buckets[i - 1], ")"));
    }
  }
  return absl::OkStatus();
}

// civetweb takes numeric hosts only; "localhost" is spelled out for it.
absl::StatusOr<std::string> ValidateAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "' is not HOST:PORT"));
  }
  absl::string_view host = address.substr(0, colon);
  const absl::string_view port_text = address.substr(colon + 1);
  int port;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "': port must be a number 0..65535"));
  }
  if (host == "localhost") return absl::StrCat("127.0.0.1:", port);
  unsigned char buffer[16];
  const bool ipv6 = absl::ConsumePrefix(&host, "[") && absl::ConsumeSuffix(&host, "]");
  const std::string host_copy(host);
  if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host_copy.c_str(), buffer) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address '", address, "': host must be an IPv4 address, [IPv6] or localhost"));
  }
  return std::string(address);
}

// Per-model series, created once and then only read (pointers into the families).
struct ModelSeries {
  std::array<prometheus::Counter*, kStatusCodeNames.size()> requests_by_code{};
  std::array<prometheus::Counter*, kAllFailureReasons.size()> failures{};
  prometheus::Counter* elements = nullptr;
  prometheus::Counter* bytes = nullptr;
  prometheus::Counter* batches = nullptr;
  prometheus::Histogram* request = nullptr;
  prometheus::Histogram* input = nullptr;
  prometheus::Histogram* queue = nullptr;
  prometheus::Histogram* compute = nullptr;
  prometheus::Histogram* output = nullptr;
  prometheus::Histogram* batch_requests = nullptr;
  prometheus::Histogram* batch_elements = nullptr;
  prometheus::Gauge* last_request = nullptr;
};

PhaseTotals Totals(const prometheus::Histogram& histogram) {
  const prometheus::ClientMetric metric = histogram.Collect();
  return PhaseTotals{metric.histogram.sample_count, metric.histogram.sample_sum};
}

// Durations from a clock that stepped back would move a histogram's sum backwards.
double NonNegative(double seconds) { return seconds > 0 ? seconds : 0.0; }

class GpuMemoryCollector final : public prometheus::Collectable {
 public:
  GpuMemoryCollector(std::function<absl::StatusOr<GpuMemoryInfo>()> probe, std::string backend)
      : probe_(std::move(probe)), backend_(std::move(backend)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    absl::StatusOr<GpuMemoryInfo> info = probe_();
    if (!info.ok()) return {};
    auto family = [&](std::string name, std::string help, uint64_t bytes) {
      prometheus::ClientMetric metric;
      metric.label = {{"backend", backend_}, {"device", absl::StrCat(info->device)}};
      metric.gauge.value = static_cast<double>(bytes);
      return prometheus::MetricFamily{
          std::move(name), std::move(help), prometheus::MetricType::Gauge, {metric}};
    };
    return {family("cgelu_gpu_memory_used_bytes", "GPU memory in use on the device, in bytes.",
                   info->used_bytes),
            family("cgelu_gpu_memory_total_bytes", "GPU memory of the device, in bytes.",
                   info->total_bytes)};
  }

 private:
  std::function<absl::StatusOr<GpuMemoryInfo>()> probe_;
  std::string backend_;
};

// cgelu_pending_requests, read from the batch queue at scrape time. The mutex only orders a scrape
// against WatchPendingRequests (attach at start-up, detach at shutdown); the read itself takes the
// scheduler's lock briefly.
class PendingRequestsCollector final : public prometheus::Collectable {
 public:
  void Watch(std::function<size_t()> pending) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(pending);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::ClientMetric metric;
    {
      std::lock_guard<std::mutex> lock(mu_);
      metric.gauge.value = pending_ ? static_cast<double>(pending_()) : 0.0;
    }
    return {prometheus::MetricFamily{"cgelu_pending_requests",
                                     "Requests waiting in the batch queue (read at scrape time).",
                                     prometheus::MetricType::Gauge,
                                     {metric}}};
  }

 private:
  mutable std::mutex mu_;
  std::function<size_t()> pending_ ABSL_GUARDED_BY(mu_);
};

class PrometheusMetricsImpl final : public PrometheusMetrics {
 public:
  // Builds every family and series; exposes nothing yet.
  explicit PrometheusMetricsImpl(const PrometheusMetricsOptions& options);
  // Starts serving /metrics; UNAVAILABLE when the address cannot be bound.
  absl::Status Expose(const std::string& address);

  int port() const override { return port_; }

  void RequestDone(std::string_view model, grpc::StatusCode code, double duration_s) override {
    ModelSeries& series = Find(model);
    series.requests_by_code[CodeIndex(code)]->Increment();
    series.request->Observe(NonNegative(duration_s));
    series.last_request->Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  void RequestFailed(std::string_view model, FailureReason reason) override {
    Find(model).failures[static_cast<size_t>(reason)]->Increment();
  }
  void InputPrepared(std::string_view model, double seconds) override {
    Find(model).input->Observe(NonNegative(seconds));
  }
  void Queued(std::string_view model, double seconds) override {
    Find(model).queue->Observe(NonNegative(seconds));
  }
  void OutputPrepared(std::string_view model, double seconds) override {
    Find(model).output->Observe(NonNegative(seconds));
  }
  void BatchExecuted(std::string_view model, size_t requests, size_t elements, size_t bytes,
                     double compute_s) override {
    ModelSeries& series = Find(model);
    series.batches->Increment();
    series.elements->Increment(static_cast<double>(elements));
    series.bytes->Increment(static_cast<double>(bytes));
    series.compute->Observe(NonNegative(compute_s));
    series.batch_requests->Observe(static_cast<double>(requests));
    series.batch_elements->Observe(static_cast<double>(elements));
  }
  void WatchPendingRequests(std::function<size_t()> pending_requests) override {
    pending_->Watch(std::move(pending_requests));
  }
  void AddInFlightRequests(int64_t delta) override {
    in_flight_->Increment(static_cast<double>(delta));
  }
  void AddBusyWorkers(int64_t delta) override {
    busy_workers_->Increment(static_cast<double>(delta));
  }

  absl::StatusOr<StatisticsSnapshot> Statistics(std::string_view model) const override;

 private:
  ModelSeries& Find(std::string_view model) {
    auto it = series_.find(View(model));
    return it != series_.end() ? it->second : *unknown_;
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::shared_ptr<ProcessCollector> process_ = std::make_shared<ProcessCollector>();
  std::shared_ptr<PendingRequestsCollector> pending_ =
      std::make_shared<PendingRequestsCollector>();
  std::shared_ptr<GpuMemoryCollector> gpu_;
  // Keyed by model name, kUnknownModelLabel included; never changes after construction, so lookups
  // need no lock.
  absl::flat_hash_map<std::string, ModelSeries> series_;
  ModelSeries* unknown_ = nullptr;
  prometheus::Gauge* in_flight_ = nullptr;
  prometheus::Gauge* busy_workers_ = nullptr;
  int port_ = 0;
  // Last member: destroyed first, so no scrape runs while the registry goes away.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

PrometheusMetricsImpl::PrometheusMetricsImpl(const PrometheusMetricsOptions& options) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  prometheus::Registry& r = *registry_;

  auto& requests = BuildCounter()
                       .Name("cgelu_requests_total")
                       .Help("Inference requests answered, by model and gRPC status code.")
                       .Register(r);
  auto& failures = BuildCounter()
                       .Name("cgelu_request_failures_total")
                       .Help(
                           "Inference requests that failed, by reason: invalid, rejected (queue "
                           "full or shutting down), timeout (deadline passed in queue), "
                           "cancelled, internal.")
                       .Register(r);
  auto& elements = BuildCounter()
                       .Name("cgelu_processed_elements_total")
                       .Help("Tensor elements the backend computed successfully.")
                       .Register(r);
  auto& bytes = BuildCounter()
                    .Name("cgelu_processed_bytes_total")
                    .Help("Input tensor bytes the backend computed successfully.")
                    .Register(r);
  auto& batches = BuildCounter()
                      .Name("cgelu_batches_total")
                      .Help("Batches the backend computed successfully.")
                      .Register(r);
  auto histogram = [&](const char* name,
                       const char* help) -> prometheus::Family<prometheus::Histogram>& {
    return BuildHistogram().Name(name).Help(help).Register(r);
  };
  auto& request = histogram("cgelu_request_duration_seconds",
                            "Time from a request's arrival to its answer, any status.");
  auto& input = histogram("cgelu_input_preparation_duration_seconds",
                          "Time to parse and validate a request's input tensors.");
  auto& queue = histogram("cgelu_queue_duration_seconds",
                          "Time a request waited in the batch queue before its batch closed.");
  auto& compute =
      histogram("cgelu_compute_duration_seconds",
                "Time the backend kernel took for one successfully computed batch.");
  auto& output = histogram("cgelu_output_preparation_duration_seconds",
                           "Time from the kernel's end to a request's response being handed to "
                           "gRPC.");
  auto& batch_requests = histogram("cgelu_batch_size_requests", "Requests in each successfully computed batch.");
  auto& batch_elements =
      histogram("cgelu_batch_size_elements", "Tensor elements in each successfully computed batch.");
  auto& last_request = BuildGauge()
                           .Name("cgelu_last_request_timestamp_seconds")
                           .Help("Unix time of the last answered request.")
                           .Register(r);

  const std::vector<double> latency = options.latency_buckets_s.empty()
                                          ? DefaultLatencyBucketsSeconds()
                                          : options.latency_buckets_s;
  const std::vector<double> batch_requests_bounds = options.batch_requests_buckets.empty()
                                                        ? DefaultBatchRequestsBuckets()
                                                        : options.batch_requests_buckets;
  const std::vector<double> batch_elements_bounds = options.batch_elements_buckets.empty()
                                                        ? DefaultBatchElementsBuckets()
                                                        : options.batch_elements_buckets;

  std::vector<std::string> models = options.models;
  models.emplace_back(kUnknownModelLabel);
  for (const std::string& model : models) {
    const prometheus::Labels labels = {{"model", model}, {"backend", options.backend}};
    ModelSeries& series = series_[model];
    for (size_t code = 0; code < kStatusCodeNames.size(); ++code) {
      prometheus::Labels with_code = labels;
      with_code.emplace("code", std::string(kStatusCodeNames[code]));
      series.requests_by_code[code] = &requests.Add(with_code);
    }
    for (FailureReason reason : kAllFailureReasons) {
      prometheus::Labels with_reason = labels;
      with_reason.emplace("reason", std::string(FailureReasonName(reason)));
      series.failures[static_cast<size_t>(reason)] = &failures.Add(with_reason);
    }
    series.elements = &elements.Add(labels);
    series.bytes = &bytes.Add(labels);
    series.batches = &batches.Add(labels);
    series.request = &request.Add(labels, latency);
    series.input = &input.Add(labels, latency);
    series.queue = &queue.Add(labels, latency);
    series.compute = &compute.Add(labels, latency);
    series.output = &output.Add(labels, latency);
    series.batch_requests = &batch_requests.Add(labels, batch_requests_bounds);
    series.batch_elements = &batch_elements.Add(labels, batch_elements_bounds);
    series.last_request = &last_request.Add(labels);
  }
  unknown_ = &series_.find(View(kUnknownModelLabel))->second;

  in_flight_ = &BuildGauge()
                    .Name("cgelu_inflight_requests")
                    .Help("Requests received and not yet answered.")
                    .Register(r)
                    .Add({});
  busy_workers_ = &BuildGauge()
                       .Name("cgelu_busy_batch_workers")
                       .Help("Batch workers currently executing a batch.")
                       .Register(r)
                       .Add({});
  if (options.max_queue_size > 0) {
    BuildGauge()
        .Name("cgelu_queue_capacity")
        .Help("Requests the batch queue holds before refusing new ones (--max-queue-size).")
        .Register(r)
        .Add({})
        .Set(static_cast<double>(options.max_queue_size));
  }
  BuildGauge()
      .Name("cgelu_build_info")
      .Help("Always 1; the labels say which version and backend this server runs.")
      .Register(r)
      .Add({{"version", options.version.empty() ? "unknown" : options.version},
            {"backend", options.backend}})
      .Set(1);

  if (options.gpu_memory_probe) {
    gpu_ = std::make_shared<GpuMemoryCollector>(options.gpu_memory_probe, options.backend);
  }
}

absl::Status PrometheusMetricsImpl::Expose(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(pending_);
  exposer_->RegisterCollectable(process_);
  if (gpu_) exposer_->RegisterCollectable(gpu_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty())
    return absl::UnavailableError(absl::StrCat("metrics: no port bound for ", address));
  port_ = ports.front();
  return absl::OkStatus();
}

absl::StatusOr<StatisticsSnapshot> PrometheusMetricsImpl::Statistics(std::string_view model) const {
  auto it = series_.find(View(model));
  if (it == series_.end() || model == kUnknownModelLabel) {
    return absl::NotFoundError(absl::StrCat("no statistics for model '", View(model), "'"));
  }
  const ModelSeries& s = it->second;
  StatisticsSnapshot snapshot;
  snapshot.model = std::string(model);
  snapshot.success_count = static_cast<uint64_t>(s.requests_by_code[0]->Value());
  for (size_t i = 0; i < s.failures.size(); ++i) {
    snapshot.failures_by_reason[i] = static_cast<uint64_t>(s.failures[i]->Value());
    snapshot.failure_count += snapshot.failures_by_reason[i];
  }
  snapshot.request = Totals(*s.request);
  snapshot.input_preparation = Totals(*s.input);
  snapshot.queue = Totals(*s.queue);
  snapshot.compute = Totals(*s.compute);
  snapshot.output_preparation = Totals(*s.output);
  snapshot.inference_count = static_cast<uint64_t>(Totals(*s.batch_requests).total_s);
  snapshot.execution_count = static_cast<uint64_t>(s.batches->Value());
  snapshot.elements = static_cast<uint64_t>(s.elements->Value());
  snapshot.bytes = static_cast<uint64_t>(s.bytes->Value());
  snapshot.last_request_unix_s = s.last_request->Value();
  return snapshot;
}

// Builds the numbers from their decimal spelling so the `le` labels read 2.5e-06, not
// 2.5000000000000002e-06.
double Decimal(const std::string& text) {
  double value = 0;
  (void)absl::SimpleAtod(text, &value);
  return value;
}

}  // namespace

std::vector<double> DefaultLatencyBucketsSeconds() {
  std::vector<double> buckets;
  for (int exponent = -6; exponent <= 0; ++exponent) {
    for (const char* mantissa : {"1", "2.5", "5"}) {
      buckets.push_back(Decimal(absl::StrCat(mantissa, "e", exponent)));
    }
  }
  buckets.push_back(10);
  return buckets;
}

std::vector<double> DefaultBatchRequestsBuckets() {
  std::vector<double> buckets;
  for (double bound = 1; bound <= 1024; bound *= 2) buckets.push_back(bound);
  return buckets;
}

std::vector<double> DefaultBatchElementsBuckets() {
  std::vector<double> buckets;
  for (double bound = 1; bound <= 67108864; bound *= 4) buckets.push_back(bound);
  return buckets;
}

absl::StatusOr<std::vector<double>> ParseBuckets(std::string_view csv_text) {
  const absl::string_view csv = View(csv_text);
  std::vector<double> buckets;
  for (absl::string_view entry : absl::StrSplit(csv, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    double value;
    if (!absl::SimpleAtod(entry, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket list '", csv, "': '", entry, "' is not a number"));
    }
    buckets.push_back(value);
  }
  if (absl::Status valid = ValidateBuckets(buckets, absl::StrCat("bucket list '", csv, "'"));
      !valid.ok()) {
    return valid;
  }
  return buckets;
}

std::unique_ptr<ServerMetrics> MakeNullMetrics() { return std::make_unique<NullMetrics>(); }

absl::StatusOr<std::unique_ptr<PrometheusMetrics>> MakePrometheusMetrics(
    const PrometheusMetricsOptions& options) {
  if (options.models.empty()) {
    return absl::InvalidArgumentError("metrics: the model list is empty");
  }
  for (size_t i = 0; i < options.models.size(); ++i) {
    const std::string& model = options.models[i];
    if (model.empty() || model == kUnknownModelLabel) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics: '", model, "' cannot be a model name"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (options.models[j] == model) {
        return absl::InvalidArgumentError(
            absl::StrCat("metrics: model '", model, "' listed twice"));
      }
    }
  }
  if (options.backend.empty()) return absl::InvalidArgumentError("metrics: the backend is empty");
  const std::pair<const std::vector<double>*, absl::string_view> lists[] = {
      {&options.latency_buckets_s, "latency buckets"},
      {&options.batch_requests_buckets, "batch request buckets"},
      {&options.batch_elements_buckets, "batch element buckets"}};
  for (const auto& [buckets, what] : lists) {
    if (buckets->empty()) continue;
    if (absl::Status valid = ValidateBuckets(*buckets, what); !valid.ok()) return valid;
  }
  std::optional<std::string> address;
  if (!options.address.empty()) {
    absl::StatusOr<std::string> valid = ValidateAddress(options.address);
    if (!valid.ok()) return valid.status();
    address = *std::move(valid);
  }
  std::unique_ptr<PrometheusMetricsImpl> metrics;
  try {
    metrics = std::make_unique<PrometheusMetricsImpl>(options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("metrics: cannot build the registry: ", e.what()));
  }
  if (address) {
    if (absl::Status exposed = metrics->Expose(*address); !exposed.ok()) return exposed;
  }
  return metrics;
}

}  // namespace cgelu::server
