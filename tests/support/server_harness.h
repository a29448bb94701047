// In-process cgelu server for tests: the real Server on 127.0.0.1:0, the real client, and two
// fakes to observe and steer it — a backend whose gate a test can close (to stall the executor) and
// metrics that record every call.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cgelu/client/client.h"
#include "cgelu/kernels/backend.h"
#include "server/metrics.h"
#include "server/server.h"

namespace cgelu::testing {

// Wraps a real backend. While the gate is closed, Run() waits at it; tests use that to stall the
// executor deterministically (WaitUntilBlocked instead of sleeping). FailWith() makes every later
// Run() return an error instead of computing.
class GatedBackend final : public kernels::Backend {
 public:
  explicit GatedBackend(std::unique_ptr<kernels::Backend> inner);
  std::string_view name() const override { return inner_->name(); }
  absl::Status Run(absl::Span<const kernels::Segment> segments) override;

  void CloseGate();
  void OpenGate();
  // From now on Run() returns `status` (after the gate) without computing; OK computes again.
  void FailWith(absl::Status status);
  // Blocks until `n` Run() calls are waiting at the closed gate.
  void WaitUntilBlocked(int n = 1);
  // Segments per batch of every Run() that went through, in order.
  std::vector<size_t> batch_sizes() const;
  size_t segments_run() const;

 private:
  std::unique_ptr<kernels::Backend> inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int blocked_ = 0;
  absl::Status failure_;
  std::vector<size_t> batch_sizes_;
};

// Counts what the server reports. Thread-safe.
class RecordingMetrics final : public server::ServerMetrics {
 public:
  void RequestDone(std::string_view model, grpc::StatusCode code, double duration_s) override;
  void RequestFailed(std::string_view model, server::FailureReason reason) override;
  void InputPrepared(std::string_view, double) override {}
  void Queued(std::string_view model, double seconds) override;
  void OutputPrepared(std::string_view, double) override {}
  void BatchExecuted(std::string_view model, size_t requests, size_t elements, size_t bytes,
                     double compute_s) override;
  void WatchPendingRequests(std::function<size_t()> pending_requests) override;
  void AddInFlightRequests(int64_t delta) override;
  void AddBusyWorkers(int64_t delta) override;

  std::map<grpc::StatusCode, int> codes() const;
  int failures(server::FailureReason reason) const;
  std::vector<size_t> batch_requests() const;
  std::vector<double> queue_seconds() const;
  int64_t in_flight() const;
  // The gauges as a scrape would read them now: the watched queue depth (0 when none is watched)
  // and the busy-worker count.
  size_t pending_requests() const;
  int64_t busy_workers() const;
  // Blocks until `n` requests have been answered.
  void WaitForRequests(int n) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int done_ = 0;
  int64_t in_flight_ = 0;
  int64_t busy_workers_ = 0;
  std::function<size_t()> pending_requests_;
  std::map<grpc::StatusCode, int> codes_;
  std::map<server::FailureReason, int> failures_;
  std::vector<size_t> batch_requests_;
  std::vector<double> queue_seconds_;
};

struct TestServer {
  std::unique_ptr<server::Server> server;
  GatedBackend* backend = nullptr;     // owned by `server`
  RecordingMetrics* metrics = nullptr; // owned by `server`; null when real metrics were given
  std::string address;                 // 127.0.0.1:PORT
  std::unique_ptr<client::Client> client;
};

// Starts the real server on 127.0.0.1:0 with the CPU backend behind a GatedBackend. `metrics`
// null: a RecordingMetrics.
absl::StatusOr<TestServer> StartTestServer(server::ServerOptions options,
                                           std::unique_ptr<server::ServerMetrics> metrics = nullptr);

// Tensors for tests.
client::Tensor Fp32Tensor(const std::vector<int64_t>& shape, const std::vector<float>& values);
std::vector<float> Fp32Values(const client::Tensor& tensor);

}  // namespace cgelu::testing
