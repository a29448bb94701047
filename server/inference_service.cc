#include "server/inference_service.h"

#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace cgelu::server {
namespace {

// Finishes an RPC with whatever OnCancel taught it; deletes itself when gRPC is done with it.
class InferReactor final : public grpc::ServerUnaryReactor {
 public:
  void OnDone() override { delete this; }
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

double Seconds(int64_t micros) { return static_cast<double>(micros) * 1e-6; }

// Per failure reason, at most this many "request failed" lines a second; the rest are counted and
// reported in one line (LogRateLimiter). Enough to see what goes wrong; an overload that refuses
// thousands of requests a second writes a few lines, not thousands.
constexpr int kFailureLogLinesPerSecond = 10;

std::vector<std::string> FailureReasonNames() {
  std::vector<std::string> names;
  for (FailureReason reason : kAllFailureReasons) names.emplace_back(FailureReasonName(reason));
  return names;
}

// The gRPC deadline (wall clock) expressed on the batcher's clock.
int64_t DeadlineOnClock(const grpc::CallbackServerContext& context, int64_t now_us) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return std::numeric_limits<int64_t>::max();
  }
  const auto remaining = std::chrono::duration_cast<std::chrono::microseconds>(
                             deadline - std::chrono::system_clock::now())
                             .count();
  return now_us + remaining;
}

}  // namespace

// One accepted ModelInfer call on its way through the batcher.
class InferTask final : public batching::Task {
 public:
  InferTask(InferenceService* service, InferReactor* reactor, std::string request_id,
            PreparedInfer prepared, int64_t arrival_us, int64_t deadline_us,
            bool deadline_is_queue_timeout)
      : service_(service),
        reactor_(reactor),
        request_id_(std::move(request_id)),
        prepared_(prepared),
        arrival_us_(arrival_us),
        deadline_us_(deadline_us),
        deadline_is_queue_timeout_(deadline_is_queue_timeout) {}

  size_t num_elements() const override { return prepared_.segment.count; }
  int64_t deadline_us() const override { return deadline_us_; }
  bool cancelled() const override { return reactor_->cancelled(); }
  void Abandon(const absl::Status& why) override {
    const bool timed_out = absl::IsDeadlineExceeded(why);
    const FailureReason reason = timed_out ? FailureReason::kTimeout : FailureReason::kCancelled;
    if (timed_out && deadline_is_queue_timeout_) {
      // The request's own `timeout` parameter ran out, not the client's deadline: retryable.
      Fail(reason, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                absl::StrCat("request waited longer than its timeout parameter (",
                                             *prepared_.queue_timeout_us, " us) in the queue")));
      return;
    }
    Fail(reason, ToGrpcStatus(why));
  }

  const kernels::Segment& segment() const { return prepared_.segment; }
  size_t bytes() const { return prepared_.bytes; }

  // Records the request's metrics and finishes the RPC; the request and response are gone after.
  void Finish(const grpc::Status& status) {
    ServerMetrics& metrics = *service_->metrics_;
    metrics.RequestDone(service_->model_.name, status.error_code(),
                        Seconds(service_->clock_->NowMicros() - arrival_us_));
    metrics.AddInFlightRequests(-1);
    reactor_->Finish(status);
  }
  // Counts and logs the failure, then finishes the RPC with `status`.
  void Fail(FailureReason reason, const grpc::Status& status) {
    service_->RecordFailure(service_->model_.name, reason, request_id_, status);
    Finish(status);
  }

 private:
  InferenceService* const service_;
  InferReactor* const reactor_;
  const std::string request_id_;
  const PreparedInfer prepared_;
  const int64_t arrival_us_;
  const int64_t deadline_us_;
  const bool deadline_is_queue_timeout_;
};

InferenceService::InferenceService(ModelSpec model, std::string server_version,
                                   kernels::Backend* backend, ServerMetrics* metrics,
                                   batching::Clock* clock)
    : model_(std::move(model)),
      server_version_(std::move(server_version)),
      backend_(backend),
      metrics_(metrics),
      clock_(clock),
      failure_log_("request failed lines suppressed", "reason", FailureReasonNames(),
                   kFailureLogLinesPerSecond, clock) {}

InferenceService::~InferenceService() { failure_log_.Flush(); }

void InferenceService::RecordFailure(std::string_view model_label, FailureReason reason,
                                     const std::string& request_id, const grpc::Status& status) {
  metrics_->RequestFailed(model_label, reason);
  if (!failure_log_.Allow(static_cast<size_t>(reason))) return;
  LogEvent(spdlog::level::warn, "request failed",
           {{"request_id", request_id},
            {"reason", FailureReasonName(reason)},
            {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))},
            {"error", status.error_message()}});
}

std::string_view InferenceService::ModelLabel(const inference::ModelInferRequest& request) const {
  return NamesModel(model_, request) ? std::string_view(model_.name) : kUnknownModelLabel;
}

absl::Status InferenceService::CheckModel(const std::string& name,
                                          const std::string& version) const {
  if (name != model_.name) {
    return absl::NotFoundError(
        absl::StrCat("unknown model '", name, "'; this server serves '", model_.name, "'"));
  }
  if (!version.empty() && version != model_.version) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version '", version, "'"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* InferenceService::ServerLive(grpc::CallbackServerContext* context,
                                                       const inference::ServerLiveRequest*,
                                                       inference::ServerLiveResponse* response) {
  response->set_live(true);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerReady(grpc::CallbackServerContext* context,
                                                        const inference::ServerReadyRequest*,
                                                        inference::ServerReadyResponse* response) {
  response->set_ready(!draining());
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelReady(grpc::CallbackServerContext* context,
                                                       const inference::ModelReadyRequest* request,
                                                       inference::ModelReadyResponse* response) {
  if (auto status = CheckModel(request->name(), request->version()); !status.ok()) {
    return FinishNow(context, ToGrpcStatus(status));
  }
  response->set_ready(!draining());
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("cgelu");
  response->set_version(server_version_);
  // Request parameters (min, max, approximate, timeout) are the one protocol extension we serve.
  response->add_extensions("parameters");
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  if (auto status = CheckModel(request->name(), request->version()); !status.ok()) {
    return FinishNow(context, ToGrpcStatus(status));
  }
  response->set_name(model_.name);
  response->add_versions(model_.version);
  response->set_platform(absl::StrCat("cgelu_", std::string(backend_->name())));
  // The metadata format allows one datatype and shape per tensor. FP32 of any length is the common
  // case; FP64, FP16 and BF16 and every rank are accepted too (README, "API").
  auto describe = [](inference::ModelMetadataResponse::TensorMetadata* tensor, const char* name) {
    tensor->set_name(name);
    tensor->set_datatype("FP32");
    tensor->add_shape(-1);
  };
  describe(response->add_inputs(), kInputName);
  describe(response->add_outputs(), kOutputName);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* InferenceService::ModelInfer(grpc::CallbackServerContext* context,
                                                       const inference::ModelInferRequest* request,
                                                       inference::ModelInferResponse* response) {
  const int64_t arrival_us = clock_->NowMicros();
  const std::string_view label = ModelLabel(*request);
  metrics_->AddInFlightRequests(1);
  std::string request_id = LogRequestId(request->id());
  auto finish_early = [&](const absl::Status& status, FailureReason reason) {
    const grpc::Status rpc_status = ToGrpcStatus(status);
    RecordFailure(label, reason, request_id, rpc_status);
    metrics_->RequestDone(label, rpc_status.error_code(), Seconds(clock_->NowMicros() - arrival_us));
    metrics_->AddInFlightRequests(-1);
    return FinishNow(context, rpc_status);
  };
  if (draining()) {
    return finish_early(absl::UnavailableError("server is shutting down; retry on another replica"),
                        FailureReason::kRejected);
  }
  auto prepared = PrepareInfer(model_, *request, response);
  if (!prepared.ok()) return finish_early(prepared.status(), FailureReason::kInvalid);
  metrics_->InputPrepared(label, Seconds(clock_->NowMicros() - arrival_us));

  int64_t deadline_us = DeadlineOnClock(*context, arrival_us);
  bool deadline_is_queue_timeout = false;
  if (prepared->queue_timeout_us && *prepared->queue_timeout_us < deadline_us - arrival_us) {
    deadline_us = arrival_us + *prepared->queue_timeout_us;
    deadline_is_queue_timeout = true;
  }
  auto* reactor = new InferReactor();
  std::unique_ptr<batching::Task> task =
      std::make_unique<InferTask>(this, reactor, std::move(request_id), *prepared, arrival_us,
                                  deadline_us, deadline_is_queue_timeout);
  if (absl::Status scheduled = scheduler_->Schedule(&task); !scheduled.ok()) {
    static_cast<InferTask*>(task.get())->Fail(FailureReason::kRejected, ToGrpcStatus(scheduled));
  }
  return reactor;
}

void InferenceService::RunBatch(std::vector<std::unique_ptr<batching::Task>> batch,
                                int64_t dequeue_time_us) {
  metrics_->AddBusyWorkers(1);
  std::vector<kernels::Segment> segments;
  segments.reserve(batch.size());
  size_t elements = 0;
  size_t bytes = 0;
  for (const auto& task : batch) {
    const auto& infer = static_cast<const InferTask&>(*task);
    segments.push_back(infer.segment());
    elements += infer.num_elements();
    bytes += infer.bytes();
    metrics_->Queued(model_.name, Seconds(dequeue_time_us - task->enqueue_time_us()));
  }
  const int64_t compute_start_us = clock_->NowMicros();
  const absl::Status status = backend_->Run(segments);
  const int64_t compute_end_us = clock_->NowMicros();
  if (status.ok()) {
    // Successful work only: a failed batch computed nothing a client received.
    metrics_->BatchExecuted(model_.name, batch.size(), elements, bytes,
                            Seconds(compute_end_us - compute_start_us));
    for (auto& task : batch) {
      metrics_->OutputPrepared(model_.name, Seconds(clock_->NowMicros() - compute_end_us));
      static_cast<InferTask&>(*task).Finish(grpc::Status::OK);
    }
  } else {
    const grpc::Status failed(grpc::StatusCode::INTERNAL,
                              absl::StrCat("backend '", std::string(backend_->name()),
                                           "' failed: ", status.message()));
    for (auto& task : batch) static_cast<InferTask&>(*task).Fail(FailureReason::kInternal, failed);
  }
  metrics_->AddBusyWorkers(-1);
}

}  // namespace cgelu::server
