#include "cgelu/client/client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cgelu/proto/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace cgelu::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::chrono::system_clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

}  // namespace

int64_t Tensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t DatatypeSize(const std::string& datatype) {
  if (datatype == "BOOL" || datatype == "UINT8" || datatype == "INT8") return 1;
  if (datatype == "UINT16" || datatype == "INT16" || datatype == "FP16" || datatype == "BF16")
    return 2;
  if (datatype == "UINT32" || datatype == "INT32" || datatype == "FP32") return 4;
  if (datatype == "UINT64" || datatype == "INT64" || datatype == "FP64") return 8;
  return 0;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("empty server target");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetLoadBalancingPolicyName(options.load_balancing_policy);
  // Channels with different arguments never share a TCP connection.
  args.SetInt("cgelu.channel_index", options.channel_index);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls.root_certs_path.empty()) {
      auto roots = ReadFile(options.tls.root_certs_path);
      if (!roots.ok()) return roots.status();
      ssl.pem_root_certs = *roots;
    }
    if (options.tls.client_cert_path.empty() != options.tls.client_key_path.empty()) {
      return absl::InvalidArgumentError("mutual TLS needs both a client certificate and a key");
    }
    if (!options.tls.client_cert_path.empty()) {
      auto cert = ReadFile(options.tls.client_cert_path);
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.tls.client_key_path);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    if (!options.tls.server_name_override.empty()) {
      args.SetSslTargetNameOverride(options.tls.server_name_override);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(options.target, credentials, args);
}

void BuildInferRequest(const Tensor& input, const InferOptions& options,
                       inference::ModelInferRequest* request) {
  request->set_model_name(options.model);
  request->set_model_version(options.model_version);
  request->set_id(options.request_id);
  auto& params = *request->mutable_parameters();
  if (options.min) params["min"].set_double_param(*options.min);
  if (options.max) params["max"].set_double_param(*options.max);
  if (options.approximate) params["approximate"].set_string_param(*options.approximate);
  auto* tensor = request->add_inputs();
  tensor->set_name(options.input_name);
  tensor->set_datatype(input.datatype);
  for (int64_t d : input.shape) tensor->add_shape(d);
  request->add_raw_input_contents(input.data);
}

absl::StatusOr<Tensor> ParseInferResponse(const inference::ModelInferResponse& response) {
  if (response.outputs_size() == 0) return absl::InternalError("response has no output tensor");
  const auto& output = response.outputs(0);
  Tensor tensor;
  tensor.datatype = output.datatype();
  tensor.shape.assign(output.shape().begin(), output.shape().end());
  for (int64_t d : tensor.shape) {
    if (d < 0) return absl::InternalError("response shape has a negative dimension");
  }
  const size_t element_size = DatatypeSize(tensor.datatype);
  if (element_size == 0) {
    return absl::InternalError(absl::StrCat("response datatype ", tensor.datatype, " unsupported"));
  }
  if (response.raw_output_contents_size() > 0) {
    tensor.data = response.raw_output_contents(0);
  } else if (tensor.datatype == "FP32") {
    const auto& v = output.contents().fp32_contents();
    tensor.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  } else if (tensor.datatype == "FP64") {
    const auto& v = output.contents().fp64_contents();
    tensor.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
  } else {
    return absl::InternalError("response carries no output data");
  }
  const auto expected = static_cast<size_t>(tensor.num_elements()) * element_size;
  if (tensor.data.size() != expected) {
    return absl::InternalError(absl::StrCat("response output holds ", tensor.data.size(),
                                            " bytes, its shape and datatype need ", expected));
  }
  return tensor;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ChannelOptions& options) {
  auto channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  return std::make_unique<Client>(*std::move(channel));
}

Client::Client(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(inference::GRPCInferenceService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)) {}

absl::StatusOr<Tensor> Client::Infer(const Tensor& input, const InferOptions& options) {
  inference::ModelInferRequest request;
  BuildInferRequest(input, options, &request);
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(options.timeout));
  grpc::Status status = stub_->ModelInfer(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return ParseInferResponse(response);
}

absl::StatusOr<std::string> Client::HealthCheck(const std::string& service,
                                                std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_stub_->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

absl::StatusOr<bool> Client::ServerLive(std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  inference::ServerLiveResponse response;
  grpc::Status status = stub_->ServerLive(&context, {}, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.live();
}

absl::StatusOr<bool> Client::ServerReady(std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  inference::ServerReadyResponse response;
  grpc::Status status = stub_->ServerReady(&context, {}, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.ready();
}

absl::StatusOr<bool> Client::ModelReady(const std::string& model,
                                        std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  inference::ModelReadyRequest request;
  request.set_name(model);
  inference::ModelReadyResponse response;
  grpc::Status status = stub_->ModelReady(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.ready();
}

absl::StatusOr<inference::ServerMetadataResponse> Client::ServerMetadata(
    std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  inference::ServerMetadataResponse response;
  grpc::Status status = stub_->ServerMetadata(&context, {}, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<inference::ModelMetadataResponse> Client::ModelMetadata(
    const std::string& model, std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineAfter(timeout));
  inference::ModelMetadataRequest request;
  request.set_name(model);
  inference::ModelMetadataResponse response;
  grpc::Status status = stub_->ModelMetadata(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace cgelu::client
