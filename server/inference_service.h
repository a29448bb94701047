// InferenceService: the Open Inference Protocol front end (gRPC callback API).
//
// Handlers never block: ModelInfer validates the request on the gRPC thread (PrepareInfer), hands
// it to the batcher and returns its reactor; the RPC is finished later from a batch worker — or at
// once when the request is invalid, the queue is full or the server is draining. Every RPC is
// finished exactly once, cancelled ones too (the batcher abandons them before compute).
// Ownership: the service borrows the scheduler, backend, metrics and clock; the Server owns them
// and destroys the service only after the gRPC server has shut down.
// Thread-safety: all handlers run concurrently on gRPC threads; RunBatch on batch workers.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "cgelu/kernels/backend.h"
#include "cgelu/proto/inference.grpc.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/infer_request.h"
#include "server/logging.h"
#include "server/metrics.h"

namespace cgelu::server {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  InferenceService(ModelSpec model, std::string server_version, kernels::Backend* backend,
                   ServerMetrics* metrics, batching::Clock* clock);
  // Writes the count of failure log lines the rate limit suppressed and has not yet reported.
  ~InferenceService() override;

  // Must be called once, before the gRPC server starts.
  void set_scheduler(batching::BatchScheduler* scheduler) { scheduler_ = scheduler; }
  // From now on ModelInfer answers UNAVAILABLE and readiness is false. Requests already accepted
  // still complete.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // The batcher's callback: runs one batch through the backend and finishes every RPC in it.
  void RunBatch(std::vector<std::unique_ptr<batching::Task>> batch, int64_t dequeue_time_us);

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;

 private:
  friend class InferTask;
  // The metric label for a request's model: its name if served, else the bounded placeholder.
  std::string_view ModelLabel(const inference::ModelInferRequest& request) const;
  absl::Status CheckModel(const std::string& name, const std::string& version) const;
  // Counts the failure, then writes its one warn line unless the per-reason rate limit is spent.
  void RecordFailure(std::string_view model_label, FailureReason reason,
                     const std::string& request_id, const grpc::Status& status);

  const ModelSpec model_;
  const std::string server_version_;
  kernels::Backend* const backend_;
  ServerMetrics* const metrics_;
  batching::Clock* const clock_;
  batching::BatchScheduler* scheduler_ = nullptr;
  std::atomic<bool> draining_{false};
  LogRateLimiter failure_log_;
};

}  // namespace cgelu::server
