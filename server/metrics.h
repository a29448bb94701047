// ServerMetrics: everything the server reports about itself, behind one small interface so that the
// batcher and the front end can be tested without Prometheus (MakeNullMetrics) and the Prometheus
// side (MakePrometheusMetrics) is built once at start-up.
//
// Units are in the names: seconds, elements, bytes. Label values (model, backend) are low
// cardinality: the model names the server serves and the one backend it runs.
// Thread-safety: every method may be called concurrently from gRPC and batch-worker threads; none
// blocks on I/O (the Prometheus exposer reads the registry on its own thread).
#pragma once

#include <cstddef>
#include <cstdint>
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
std::string_view FailureReasonName(FailureReason reason);

class ServerMetrics {
 public:
  virtual ~ServerMetrics() = default;

  // A request was answered (any status). `duration_s`: from arrival to Finish().
  virtual void RequestDone(std::string_view model, grpc::StatusCode code, double duration_s) = 0;
  virtual void RequestFailed(std::string_view model, FailureReason reason) = 0;

  // Per-request phases, in seconds.
  virtual void InputPrepared(std::string_view model, double seconds) = 0;   // parse + validate
  virtual void Queued(std::string_view model, double seconds) = 0;          // enqueue -> batch closed
  virtual void OutputPrepared(std::string_view model, double seconds) = 0;  // after kernel -> Finish

  // One batch executed by the backend.
  virtual void BatchExecuted(std::string_view model, size_t requests, size_t elements,
                             size_t bytes, double compute_s) = 0;

  // Gauges, updated by whoever owns the quantity.
  virtual void SetPendingRequests(size_t n) = 0;
  virtual void AddInFlightRequests(int64_t delta) = 0;
  virtual void AddBusyWorkers(int64_t delta) = 0;
};

// Discards everything: for tests and for --metrics-address "".
std::unique_ptr<ServerMetrics> MakeNullMetrics();

struct PrometheusMetricsOptions {
  std::string address = "0.0.0.0:8002";  // HOST:PORT; port 0 picks a free port
  std::string backend = "cpu";           // value of the `backend` label and of build_info
  std::string version;                   // build_info's version label
  // Histogram bucket upper bounds, in seconds / requests / elements. Empty: the defaults.
  std::vector<double> latency_buckets_s;
  std::vector<double> batch_requests_buckets;
  std::vector<double> batch_elements_buckets;
};

// Prometheus metrics served on http://address/metrics by prometheus-cpp's exposer.
class PrometheusMetrics : public ServerMetrics {
 public:
  // The port actually bound (useful when the options asked for port 0).
  virtual int port() const = 0;
};

// Registers every family once and starts the exposer. INVALID_ARGUMENT for a bad address or bucket
// list, UNAVAILABLE when the address cannot be bound.
absl::StatusOr<std::unique_ptr<PrometheusMetrics>> MakePrometheusMetrics(
    const PrometheusMetricsOptions& options);

}  // namespace cgelu::server
