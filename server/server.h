// Server: the whole cgelu service in one object — gRPC front end (Open Inference Protocol, standard
// health service, reflection), dynamic batcher and kernel backend — so main() and the in-process
// tests run exactly the same stack.
//
// Shutdown order (designed and tested): BeginDrain() turns health NOT_SERVING and makes new
// ModelInfer calls UNAVAILABLE at once; Drain() lets the batcher run every accepted request, then
// shuts the gRPC server down, waiting for in-flight RPCs until the deadline. The destructor drains
// with no deadline if Drain() was not called.
// Thread-safety: BeginDrain and Drain may be called from any thread (a signal-watching thread).
#pragma once

#include <chrono>
#include <climits>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cgelu/kernels/backend.h"
#include "grpcpp/server.h"
#include "server/batching/batch_scheduler.h"
#include "server/batching/clock.h"
#include "server/infer_request.h"
#include "server/metrics.h"

namespace cgelu::server {

class InferenceService;

struct ServerOptions {
  std::string grpc_address = "0.0.0.0:8001";  // HOST:PORT; port 0 picks a free port
  int max_message_bytes = INT_MAX;            // both directions; gRPC's default is 4 MiB
  ModelSpec model;
  batching::BatchSchedulerOptions batching;
  std::string version = "0.0.0";  // reported by ServerMetadata
};

class Server {
 public:
  // Starts serving. `backend` and `metrics` are required; `clock` (RealClock if null) must outlive
  // the server. INVALID_ARGUMENT for bad options, UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options,
                                                        std::unique_ptr<kernels::Backend> backend,
                                                        std::unique_ptr<ServerMetrics> metrics,
                                                        batching::Clock* clock = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port actually bound.
  int grpc_port() const { return grpc_port_; }
  ServerMetrics& metrics() { return *metrics_; }
  const batching::BatchScheduler& scheduler() const { return *scheduler_; }

  void BeginDrain();
  // Returns true when every accepted request finished before `deadline`.
  bool Drain(std::chrono::system_clock::time_point deadline);
  // Blocks until the gRPC server has shut down (after Drain).
  void Wait();

 private:
  Server() = default;

  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<batching::BatchScheduler> scheduler_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  std::mutex drain_mu_;
  bool drained_ = false;
};

}  // namespace cgelu::server
