// cgelu-echo-server: the ceiling for any service on cgelu's RPC layer.
//
// It answers ModelInfer with its own input (output "OUTPUT0" carries the request's datatype, shape
// and raw bytes) and does nothing else, over the same gRPC settings as cgelu-server: the callback
// API, message limits raised to INT32_MAX both ways, and the same server-side gRPC arguments. What
// cgelu-loadtest measures against it is the cost of gRPC, protobuf and the network stack alone;
// the gap to cgelu-server is what batching and the kernel add.
//
// ServerLive, ServerReady and ModelReady answer true so health probes and the load tester's
// connection check work against it. SIGINT/SIGTERM shut it down cleanly (exit 0), after it prints
// how many ModelInfer calls it answered (the replica tests compare those counts).
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "cgelu/proto/inference.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

class EchoService final : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return FinishOk(context);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(true);
    return FinishOk(context);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest*,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(true);
    return FinishOk(context);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override {
    response->set_model_name(request->model_name());
    response->set_model_version(request->model_version());
    response->set_id(request->id());
    for (const auto& input : request->inputs()) {
      auto* output = response->add_outputs();
      output->set_name(request->inputs_size() == 1 ? "OUTPUT0" : input.name());
      output->set_datatype(input.datatype());
      *output->mutable_shape() = input.shape();
      if (input.has_contents()) *output->mutable_contents() = input.contents();
    }
    // A copy, not a move: cgelu-server also has to write every output byte.
    *response->mutable_raw_output_contents() = request->raw_input_contents();
    infer_calls_.fetch_add(1, std::memory_order_relaxed);
    return FinishOk(context);
  }

  int64_t infer_calls() const { return infer_calls_.load(); }

 private:
  static grpc::ServerUnaryReactor* FinishOk(grpc::CallbackServerContext* context) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<int64_t> infer_calls_{0};
};

}  // namespace

int main(int argc, char** argv) {
  // The same absl::Mutex mode as cgelu-server (server/main.cc says why), so both run gRPC alike.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"cgelu-echo-server: answers ModelInfer with its own input (gRPC baseline)"};
  std::string address = "0.0.0.0:8001";
  app.add_option("--grpc-address", address, "HOST:PORT to listen on; port 0 picks a free port")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cgelu-echo-server: %s\n", e.what());
    return 2;
  }

  // Blocked before gRPC starts its threads, so they inherit the mask and sigwait below is the one
  // place the signal is taken.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(INT32_MAX);
  builder.SetMaxSendMessageSize(INT32_MAX);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cgelu-echo-server: cannot listen on %s\n", address.c_str());
    return 1;
  }
  const std::string host = address.substr(0, address.rfind(':'));
  std::printf("cgelu-echo-server listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::printf("cgelu-echo-server answered %lld ModelInfer calls\n",
              static_cast<long long>(service.infer_calls()));
  return 0;
}
