// ServerMetrics: everything the server reports about itself, behind one small interface so that the
// batcher and the front end can be tested without Prometheus (MakeNullMetrics) and the Prometheus
// side (MakePrometheusMetrics) is built once at start-up.
//
// Units are in the names: seconds, elements, bytes. Label values (model, backend) are low
// cardinality: the model names the server serves and the one backend it runs. A model name that is
// not in PrometheusMetricsOptions::models is counted under kUnknownModelLabel, so a client sending
// random model names cannot create new time series.
// Thread-safety: every method may be called concurrently from gRPC and batch-worker threads; none
// blocks on I/O (the Prometheus exposer reads the registry on its own thread). Every labelled
// series is created at construction, so recording is a hash lookup plus an atomic or a short mutex.
// Every metric (name, type, labels, meaning) is listed in README.md ("Metrics and logs"); buckets
// and derivations are in docs/METRICS.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"

namespace cgelu::server {

// Why a request failed; each maps to one value of the `reason` label.
enum class FailureReason {
  kInvalid,    // bad request: INVALID_ARGUMENT / NOT_FOUND
  kRejected,   // queue full or shutting down: UNAVAILABLE at admission
  kTimeout,    // deadline passed while queued: never computed
  kCancelled,  // client went away before compute
  kInternal,   // kernel/backend failure
};
inline constexpr std::array<FailureReason, 5> kAllFailureReasons = {
    FailureReason::kInvalid, FailureReason::kRejected, FailureReason::kTimeout,
    FailureReason::kCancelled, FailureReason::kInternal};
std::string_view FailureReasonName(FailureReason reason);

// The `model` label value for requests naming a model the server does not serve.
inline constexpr std::string_view kUnknownModelLabel = "_unknown";

// A per-phase total in the shape of KServe/Triton ModelStatistics' StatisticDuration.
struct PhaseTotals {
  uint64_t count = 0;    // observations
  double total_s = 0.0;  // sum of their durations
};

// Cumulative totals for one model since start-up, read from the very counters and histograms that
// /metrics exports (each field names its source), so the two views can never disagree by design.
// Fields are read one after another, not atomically: under load they may be a few requests apart.
struct StatisticsSnapshot {
  std::string model;
  uint64_t success_count = 0;  // cgelu_requests_total{code="OK"}
  uint64_t failure_count = 0;  // sum of cgelu_request_failures_total over reasons
  // Indexed by FailureReason.
  std::array<uint64_t, kAllFailureReasons.size()> failures_by_reason = {};
  PhaseTotals request;               // cgelu_request_duration_seconds (every answered request)
  PhaseTotals input_preparation;     // cgelu_input_preparation_duration_seconds
  PhaseTotals queue;                 // cgelu_queue_duration_seconds
  PhaseTotals compute;               // cgelu_compute_duration_seconds (one per successful batch)
  PhaseTotals output_preparation;    // cgelu_output_preparation_duration_seconds
  // The next four count successful work only (as Triton does): a batch the backend failed adds
  // nothing here; its requests are failures with reason `internal`.
  uint64_t inference_count = 0;      // requests computed: cgelu_batch_size_requests_sum
  uint64_t execution_count = 0;      // batches computed: cgelu_batches_total
  uint64_t elements = 0;             // cgelu_processed_elements_total
  uint64_t bytes = 0;                // cgelu_processed_bytes_total
  double last_request_unix_s = 0.0;  // cgelu_last_request_timestamp_seconds; 0 before the first
};

class ServerMetrics {
 public:
  virtual ~ServerMetrics() = default;

  // A request was answered (any status). `duration_s`: from arrival to Finish().
  virtual void RequestDone(std::string_view model, grpc::StatusCode code, double duration_s) = 0;
  virtual void RequestFailed(std::string_view model, FailureReason reason) = 0;

  // Per-request phases, in seconds.
  virtual void InputPrepared(std::string_view model, double seconds) = 0;  // parse + validate
  virtual void Queued(std::string_view model, double seconds) = 0;  // enqueue -> batch closed
  virtual void OutputPrepared(std::string_view model,
                              double seconds) = 0;  // after kernel -> Finish

  // One batch the backend computed successfully. A batch whose Backend::Run failed is not
  // reported here (its requests are RequestFailed(kInternal)), so the processed, batch and compute
  // series count successful work only.
  virtual void BatchExecuted(std::string_view model, size_t requests, size_t elements, size_t bytes,
                             double compute_s) = 0;

  // The batch queue's depth: `pending_requests` is called whenever the value is exported (for
  // Prometheus, at every scrape, on the exposer's thread), so the gauge is the scheduler's own
  // count at that moment, never a copy that a dropped or abandoned task could leave stale. It must
  // be thread-safe and must not call back into these metrics. An empty function detaches it (the
  // gauge reads 0); the owner detaches it before the queue it reads goes away.
  virtual void WatchPendingRequests(std::function<size_t()> pending_requests) = 0;
  // Gauges updated by whoever owns the quantity, with exact increments.
  virtual void AddInFlightRequests(int64_t delta) = 0;
  virtual void AddBusyWorkers(int64_t delta) = 0;

  // ModelStatistics-style totals for `model`, derived from the exported counters (the derivation a
  // ModelStatistics RPC would serve; no such RPC exists yet). NOT_FOUND for a model not being
  // served; UNIMPLEMENTED when this implementation keeps no counters (null metrics). Not pure so
  // that test fakes need not implement it.
  virtual absl::StatusOr<StatisticsSnapshot> Statistics(std::string_view model) const;
};

// Discards everything: for tests and for --metrics-address "".
std::unique_ptr<ServerMetrics> MakeNullMetrics();

// GPU memory of the device a GPU backend runs on, as that backend's probe reports it. No backend
// in this tree runs on a GPU or sets a probe yet, so the two GPU gauges are never exported today.
struct GpuMemoryInfo {
  int device = 0;
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
};

struct PrometheusMetricsOptions {
  // HOST:PORT; port 0 picks a free port. Empty: keep every counter (Statistics() works) but serve
  // no HTTP endpoint.
  std::string address = "0.0.0.0:8002";
  std::string backend = "cpu";  // value of the `backend` label and of build_info
  std::string version;          // build_info's version label
  // The models served: one set of labelled series each (plus kUnknownModelLabel). At least one.
  std::vector<std::string> models = {"clipped_gelu"};
  // Histogram bucket upper bounds, in seconds / requests / elements. Empty: the defaults below.
  std::vector<double> latency_buckets_s;
  std::vector<double> batch_requests_buckets;
  std::vector<double> batch_elements_buckets;
  // The batch queue's capacity (BatchSchedulerOptions::max_queue_size), exported as
  // cgelu_queue_capacity so that dashboards and alerts can relate cgelu_pending_requests to it.
  // 0: not exported.
  size_t max_queue_size = 0;
  // For a GPU backend to set: read at every scrape (from the exposer's thread) to export
  // cgelu_gpu_memory_{used,total}_bytes. Unset (as for every backend today): the two families are
  // absent. A failed read omits the two series from that scrape.
  std::function<absl::StatusOr<GpuMemoryInfo>()> gpu_memory_probe;
};

// Default bucket boundaries. Latency: 1, 2.5, 5 per decade from 1 us to 10 s. Batch requests:
// powers of two 1..1024. Batch elements: powers of four 1..2^26.
std::vector<double> DefaultLatencyBucketsSeconds();
std::vector<double> DefaultBatchRequestsBuckets();
std::vector<double> DefaultBatchElementsBuckets();

// Parses a comma-separated list of bucket upper bounds ("0.001,0.01,0.1"; spaces allowed around
// numbers). INVALID_ARGUMENT, naming the offending entry, unless the list is non-empty and every
// entry is a finite number > 0, strictly greater than the one before.
absl::StatusOr<std::vector<double>> ParseBuckets(std::string_view csv);

// Prometheus metrics served on http://address/metrics by prometheus-cpp's exposer, together with
// the standard process_* metrics (read from /proc at scrape time) and cgelu_build_info.
class PrometheusMetrics : public ServerMetrics {
 public:
  // The port actually bound (useful when the options asked for port 0); 0 without an endpoint.
  virtual int port() const = 0;
};

// Registers every family once and starts the exposer. INVALID_ARGUMENT for a bad address, model
// list or bucket list, UNAVAILABLE when the address cannot be bound.
absl::StatusOr<std::unique_ptr<PrometheusMetrics>> MakePrometheusMetrics(
    const PrometheusMetricsOptions& options);

}  // namespace cgelu::server
