#include "server/server.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/inference_service.h"

namespace cgelu::server {
namespace {

constexpr char kServiceName[] = "inference.GRPCInferenceService";

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options,
                                                       std::unique_ptr<kernels::Backend> backend,
                                                       std::unique_ptr<ServerMetrics> metrics,
                                                       batching::Clock* clock) {
  if (backend == nullptr || metrics == nullptr) {
    return absl::InvalidArgumentError("a server needs a backend and metrics");
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max_message_bytes must be positive");
  }
  if (auto status = kernels::ValidateParams(options.model.defaults); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("default bounds: ", status.message()));
  }
  if (clock == nullptr) clock = &batching::RealClock();

  std::unique_ptr<Server> server(new Server());
  server->backend_ = std::move(backend);
  server->metrics_ = std::move(metrics);
  server->service_ = std::make_unique<InferenceService>(
      options.model, options.version, server->backend_.get(), server->metrics_.get(), clock);
  InferenceService* service = server->service_.get();
  auto scheduler = batching::BatchScheduler::Create(
      options.batching, clock,
      [service](std::vector<std::unique_ptr<batching::Task>> batch, int64_t dequeue_time_us) {
        service->RunBatch(std::move(batch), dequeue_time_us);
      });
  if (!scheduler.ok()) return scheduler.status();
  server->scheduler_ = *std::move(scheduler);
  service->set_scheduler(server->scheduler_.get());
  // Read at scrape time, so the gauge cannot go stale; detached in ~Server before the scheduler
  // goes away.
  server->metrics_->WatchPendingRequests(
      [scheduler = server->scheduler_.get()] { return scheduler->NumEnqueuedTasks(); });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, grpc::InsecureServerCredentials(),
                           &server->grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(service);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->grpc_port_ == 0) {
    server->scheduler_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on ", options.grpc_address));
  }
  auto* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  return server;
}

Server::~Server() {
  BeginDrain();
  Drain(std::chrono::system_clock::time_point::max());
  metrics_->WatchPendingRequests(nullptr);
}

void Server::BeginDrain() {
  service_->BeginDrain();
  // Health checks see NOT_SERVING from now on; Kubernetes stops routing here.
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
}

bool Server::Drain(std::chrono::system_clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(drain_mu_);
  if (drained_) return true;
  BeginDrain();
  // The batcher runs every request it accepted; only then may the gRPC server stop, or the
  // accepted ones would be cancelled.
  auto stopped = std::async(std::launch::async, [this] { scheduler_->Stop(); });
  const bool in_time = stopped.wait_until(deadline) == std::future_status::ready;
  grpc_server_->Shutdown(deadline);
  stopped.wait();
  drained_ = true;
  return in_time;
}

void Server::Wait() { grpc_server_->Wait(); }

}  // namespace cgelu::server
