// cgelu::client — a C++ client for the Open Inference Protocol, used by cgelu-client,
// cgelu-loadtest and the tests. Works against any KServe v2 gRPC server, not only cgelu.
//
// Channels carry raised message limits (INT32_MAX by default, as Triton's clients do) so tensors
// larger than gRPC's 4 MiB default travel both ways. Every call takes a deadline.
// Thread-safety: a Client may be shared by many threads; each call is independent.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgelu/proto/health.grpc.pb.h"
#include "cgelu/proto/inference.grpc.pb.h"
#include "grpcpp/channel.h"

namespace cgelu::client {

// A tensor as it travels: protocol datatype ("FP32", "FP64", "FP16", "BF16", ...), shape, and the
// little-endian row-major bytes.
struct Tensor {
  std::string datatype;
  std::vector<int64_t> shape;
  std::string data;
  // product(shape); 0 for a shape with a 0 dimension, 1 for [].
  int64_t num_elements() const;
};

// Element size of a protocol datatype; 0 for unknown or variable-size (BYTES) types.
size_t DatatypeSize(const std::string& datatype);

struct TlsOptions {
  bool enabled = false;
  std::string root_certs_path;    // PEM; empty: the system roots
  std::string client_cert_path;   // PEM, for mutual TLS (with client_key_path)
  std::string client_key_path;
  std::string server_name_override;  // expected name in the server's certificate
};

struct ChannelOptions {
  // "host:port", "unix:path", or "dns:///name:port" (all resolved addresses are used).
  std::string target = "localhost:8001";
  // Spread calls over every resolved address ("round_robin") or stick to one ("pick_first").
  std::string load_balancing_policy = "round_robin";
  int max_message_bytes = INT32_MAX;
  TlsOptions tls{};
  // A distinct value forces a separate TCP connection even to the same target (load tests use
  // several channels so one HTTP/2 connection is not the bottleneck).
  int channel_index = 0;
};

// INVALID_ARGUMENT for an empty target or unreadable TLS files.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options);

struct InferOptions {
  std::string model = "clipped_gelu";
  std::string model_version;
  std::string request_id;
  std::string input_name = "INPUT0";
  std::optional<double> min;
  std::optional<double> max;
  std::optional<std::string> approximate;  // "none" or "tanh"
  std::chrono::milliseconds timeout{30000};
};

// Fills `request` to send `input` raw (raw_input_contents) with the options' parameters.
void BuildInferRequest(const Tensor& input, const InferOptions& options,
                       inference::ModelInferRequest* request);
// The first output of `response`, from raw_output_contents or typed contents; INTERNAL when the
// response is malformed (missing output, size not matching shape and datatype).
absl::StatusOr<Tensor> ParseInferResponse(const inference::ModelInferResponse& response);

// A gRPC status as an absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ChannelOptions& options);
  explicit Client(std::shared_ptr<grpc::Channel> channel);

  absl::StatusOr<Tensor> Infer(const Tensor& input, const InferOptions& options);

  // grpc.health.v1.Health/Check for `service` ("" is the whole server): "SERVING", "NOT_SERVING",
  // "SERVICE_UNKNOWN" or "UNKNOWN".
  absl::StatusOr<std::string> HealthCheck(const std::string& service,
                                          std::chrono::milliseconds timeout);
  absl::StatusOr<bool> ServerLive(std::chrono::milliseconds timeout);
  absl::StatusOr<bool> ServerReady(std::chrono::milliseconds timeout);
  absl::StatusOr<bool> ModelReady(const std::string& model, std::chrono::milliseconds timeout);
  absl::StatusOr<inference::ServerMetadataResponse> ServerMetadata(
      std::chrono::milliseconds timeout);
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(
      const std::string& model, std::chrono::milliseconds timeout);

  // For callers that drive the asynchronous API themselves (the load tester).
  inference::GRPCInferenceService::Stub* stub() { return stub_.get(); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
};

}  // namespace cgelu::client
