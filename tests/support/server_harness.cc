#include "tests/support/server_harness.h"

#include <cstring>

namespace cgelu::testing {

GatedBackend::GatedBackend(std::unique_ptr<kernels::Backend> inner) : inner_(std::move(inner)) {}

absl::Status GatedBackend::Run(absl::Span<const kernels::Segment> segments) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --blocked_;
    batch_sizes_.push_back(segments.size());
    if (!failure_.ok()) return failure_;
  }
  return inner_->Run(segments);
}

void GatedBackend::FailWith(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  failure_ = std::move(status);
}

void GatedBackend::CloseGate() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = false;
}

void GatedBackend::OpenGate() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = true;
  cv_.notify_all();
}

void GatedBackend::WaitUntilBlocked(int n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !open_ && blocked_ >= n; });
}

std::vector<size_t> GatedBackend::batch_sizes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batch_sizes_;
}

size_t GatedBackend::segments_run() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = 0;
  for (size_t n : batch_sizes_) total += n;
  return total;
}

void RecordingMetrics::RequestDone(std::string_view, grpc::StatusCode code, double) {
  std::lock_guard<std::mutex> lock(mu_);
  ++codes_[code];
  ++done_;
  cv_.notify_all();
}

void RecordingMetrics::RequestFailed(std::string_view, server::FailureReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_[reason];
}

void RecordingMetrics::Queued(std::string_view, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_seconds_.push_back(seconds);
}

void RecordingMetrics::BatchExecuted(std::string_view, size_t requests, size_t, size_t, double) {
  std::lock_guard<std::mutex> lock(mu_);
  batch_requests_.push_back(requests);
}

void RecordingMetrics::AddInFlightRequests(int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ += delta;
}

std::map<grpc::StatusCode, int> RecordingMetrics::codes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return codes_;
}

int RecordingMetrics::failures(server::FailureReason reason) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(reason);
  return it == failures_.end() ? 0 : it->second;
}

std::vector<size_t> RecordingMetrics::batch_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batch_requests_;
}

std::vector<double> RecordingMetrics::queue_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_seconds_;
}

int64_t RecordingMetrics::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

void RecordingMetrics::WatchPendingRequests(std::function<size_t()> pending_requests) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_requests_ = std::move(pending_requests);
}

void RecordingMetrics::AddBusyWorkers(int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_workers_ += delta;
}

size_t RecordingMetrics::pending_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_requests_ ? pending_requests_() : 0;
}

int64_t RecordingMetrics::busy_workers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_workers_;
}

void RecordingMetrics::WaitForRequests(int n) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_ >= n; });
}

absl::StatusOr<TestServer> StartTestServer(server::ServerOptions options,
                                           std::unique_ptr<server::ServerMetrics> metrics) {
  TestServer test;
  options.grpc_address = "127.0.0.1:0";
  auto backend = std::make_unique<GatedBackend>(kernels::MakeCpuBackend());
  test.backend = backend.get();
  if (metrics == nullptr) {
    auto recording = std::make_unique<RecordingMetrics>();
    test.metrics = recording.get();
    metrics = std::move(recording);
  }
  auto server = server::Server::Create(options, std::move(backend), std::move(metrics));
  if (!server.ok()) return server.status();
  test.server = *std::move(server);
  test.address = "127.0.0.1:" + std::to_string(test.server->grpc_port());
  auto client = client::Client::Create({.target = test.address});
  if (!client.ok()) return client.status();
  test.client = *std::move(client);
  return test;
}

client::Tensor Fp32Tensor(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  client::Tensor t;
  t.datatype = "FP32";
  t.shape = shape;
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return t;
}

std::vector<float> Fp32Values(const client::Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / sizeof(float));
  std::memcpy(values.data(), tensor.data.data(), values.size() * sizeof(float));
  return values;
}

}  // namespace cgelu::testing
