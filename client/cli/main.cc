// cgelu-client: command-line access to a cgelu (or any Open Inference Protocol) server.
//   cgelu-client infer --server HOST:PORT (--input FILE.npy | --values 1,2,3 --shape 3)
//                [--output OUT.npy] [--min X] [--max Y] [--approximate none|tanh]
//   cgelu-client health --server HOST:PORT [--watch]
//   cgelu-client metadata --server HOST:PORT
// Exit status: 0 on success, 1 on any failure (one line on stderr), 2 for bad arguments.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cgelu/client/client.h"
#include "cgelu/client/npy.h"

namespace {

using cgelu::client::Tensor;

int Fail(const absl::Status& status) {
  std::cerr << "cgelu-client: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  return 1;
}

// The exit status of `health`: 0 only for SERVING; any other status also gets its stderr line, as
// every failure does.
int HealthExitStatus(const std::string& health) {
  if (health == "SERVING") return 0;
  std::cerr << "cgelu-client: health: " << health << "\n";
  return 1;
}

// grpc.health.v1 Watch: prints each change of status as it arrives (the server may repeat one),
// until the server ends the stream or the deadline passes. The last status decides the exit.
int WatchHealth(cgelu::client::Client& client, std::chrono::milliseconds timeout) {
  auto stub = grpc::health::v1::Health::NewStub(client.channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest request;
  auto reader = stub->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse update;
  std::optional<std::string> last;
  while (reader->Read(&update)) {
    std::string status = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(update.status());
    if (status == last) continue;
    last = std::move(status);
    std::cout << "health: " << *last << std::endl;  // flushed: a watcher reads it at once
  }
  const grpc::Status ended = reader->Finish();
  if (!last) {
    return Fail(absl::Status(static_cast<absl::StatusCode>(ended.error_code()),
                             ended.error_message()));
  }
  return HealthExitStatus(*last);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa ? NAN : INFINITY;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  std::memcpy(&magnitude, &bits, 4);
  return magnitude;
}

// The tensor's values as doubles, for printing.
std::vector<double> Values(const Tensor& t) {
  std::vector<double> out;
  const size_t n = static_cast<size_t>(t.num_elements());
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.datatype == "FP32") {
      float v;
      std::memcpy(&v, t.data.data() + 4 * i, 4);
      out.push_back(v);
    } else if (t.datatype == "FP64") {
      double v;
      std::memcpy(&v, t.data.data() + 8 * i, 8);
      out.push_back(v);
    } else if (t.datatype == "FP16" || t.datatype == "BF16") {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      if (t.datatype == "FP16") {
        out.push_back(HalfToFloat(h));
      } else {
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        float v;
        std::memcpy(&v, &bits, 4);
        out.push_back(v);
      }
    }
  }
  return out;
}

absl::StatusOr<Tensor> TensorFromValues(const std::string& values, const std::string& shape,
                                        const std::string& dtype) {
  Tensor t;
  t.datatype = dtype;
  if (dtype != "FP32" && dtype != "FP64") {
    return absl::InvalidArgumentError("--values supports --dtype FP32 or FP64");
  }
  std::vector<double> parsed;
  for (absl::string_view part : absl::StrSplit(values, ',', absl::SkipWhitespace())) {
    double v;
    if (!absl::SimpleAtod(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--values: '", part, "' is not a number"));
    }
    parsed.push_back(v);
  }
  if (shape.empty()) {
    t.shape = {static_cast<int64_t>(parsed.size())};
  } else if (shape != "[]" && shape != "scalar") {
    for (absl::string_view part : absl::StrSplit(shape, ',', absl::SkipWhitespace())) {
      int64_t d;
      if (!absl::SimpleAtoi(part, &d) || d < 0) {
        return absl::InvalidArgumentError(absl::StrCat("--shape: '", part, "' is not a size"));
      }
      t.shape.push_back(d);
    }
  }
  if (t.num_elements() != static_cast<int64_t>(parsed.size())) {
    return absl::InvalidArgumentError(absl::StrCat("--shape holds ", t.num_elements(),
                                                   " elements but ", parsed.size(),
                                                   " values were given"));
  }
  for (double v : parsed) {
    if (dtype == "FP32") {
      const float f = static_cast<float>(v);
      t.data.append(reinterpret_cast<const char*>(&f), 4);
    } else {
      t.data.append(reinterpret_cast<const char*>(&v), 8);
    }
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cgelu-client: talk to a cgelu server over the Open Inference Protocol"};
  app.require_subcommand(1);
  cgelu::client::ChannelOptions channel;
  int timeout_ms = 30000;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--server", channel.target, "Server address HOST:PORT or dns:///NAME:PORT")
        ->capture_default_str();
    cmd->add_option("--timeout-ms", timeout_ms, "Deadline of each call in milliseconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--tls", channel.tls.enabled, "Use TLS");
    cmd->add_option("--tls-ca", channel.tls.root_certs_path, "PEM file of trusted roots");
    cmd->add_option("--tls-cert", channel.tls.client_cert_path, "PEM client certificate (mTLS)");
    cmd->add_option("--tls-key", channel.tls.client_key_path, "PEM client key (mTLS)");
  };

  cgelu::client::InferOptions infer;
  std::string input_path, output_path, values, shape, dtype = "FP32";
  double min_value = 0, max_value = 0;
  std::string approximate;
  CLI::App* infer_cmd = app.add_subcommand("infer", "Run one tensor through the model");
  add_common(infer_cmd);
  auto* input_opt = infer_cmd->add_option("--input", input_path, ".npy file (fp32, fp64, fp16)");
  auto* values_opt = infer_cmd->add_option("--values", values, "Inline values, comma separated");
  input_opt->excludes(values_opt);
  infer_cmd->add_option("--shape", shape, "Shape for --values, comma separated ('[]': scalar)")
      ->needs(values_opt);
  infer_cmd->add_option("--dtype", dtype, "Datatype for --values: FP32 or FP64")
      ->capture_default_str()
      ->check(CLI::IsMember({"FP32", "FP64"}))
      ->needs(values_opt);
  infer_cmd->add_option("--output", output_path, "Write the result to this .npy file");
  auto* min_opt = infer_cmd->add_option("--min", min_value, "Lower bound for this request");
  auto* max_opt = infer_cmd->add_option("--max", max_value, "Upper bound for this request");
  infer_cmd->add_option("--approximate", approximate, "GELU form for this request")
      ->check(CLI::IsMember({"none", "tanh"}));
  infer_cmd->add_option("--model", infer.model, "Model name")->capture_default_str();
  infer_cmd->add_option("--id", infer.request_id, "Request id, echoed by the server");

  CLI::App* health_cmd = app.add_subcommand("health", "grpc.health.v1 Check, liveness, readiness");
  add_common(health_cmd);
  bool watch = false;
  health_cmd->add_flag("--watch", watch,
                       "grpc.health.v1 Watch: print each status change until the server ends the "
                       "stream or --timeout-ms passes");
  CLI::App* metadata_cmd = app.add_subcommand("metadata", "Server and model metadata");
  add_common(metadata_cmd);
  std::string metadata_model = "clipped_gelu";
  metadata_cmd->add_option("--model", metadata_model, "Model name")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "cgelu-client: " << e.what() << " (see --help)\n";
    return 2;
  }

  auto client = cgelu::client::Client::Create(channel);
  if (!client.ok()) return Fail(client.status());
  const std::chrono::milliseconds timeout(timeout_ms);

  if (*infer_cmd) {
    if (input_path.empty() && values.empty()) {
      std::cerr << "cgelu-client: infer needs --input FILE.npy or --values (see --help)\n";
      return 2;
    }
    absl::StatusOr<Tensor> input = input_path.empty() ? TensorFromValues(values, shape, dtype)
                                                      : cgelu::client::ReadNpy(input_path);
    if (!input.ok()) return Fail(input.status());
    if (*min_opt) infer.min = min_value;
    if (*max_opt) infer.max = max_value;
    if (!approximate.empty()) infer.approximate = approximate;
    infer.timeout = timeout;
    auto output = (*client)->Infer(*input, infer);
    if (!output.ok()) return Fail(output.status());
    if (!output_path.empty()) {
      if (auto s = cgelu::client::WriteNpy(output_path, *output); !s.ok()) return Fail(s);
      std::cout << "wrote " << output->datatype << " [" << absl::StrJoin(output->shape, ",")
                << "] to " << output_path << "\n";
    } else {
      std::cout << "datatype: " << output->datatype << "\nshape: ["
                << absl::StrJoin(output->shape, ",") << "]\nvalues: ";
      const auto printed = Values(*output);
      for (size_t i = 0; i < printed.size(); ++i) {
        std::printf("%s%.9g", i ? ", " : "", printed[i]);
      }
      std::cout << "\n";
    }
    return 0;
  }
  if (*health_cmd) {
    if (watch) return WatchHealth(**client, timeout);
    auto health = (*client)->HealthCheck("", timeout);
    if (!health.ok()) return Fail(health.status());
    auto live = (*client)->ServerLive(timeout);
    if (!live.ok()) return Fail(live.status());
    auto ready = (*client)->ServerReady(timeout);
    if (!ready.ok()) return Fail(ready.status());
    std::cout << "health: " << *health << "\nlive: " << (*live ? "true" : "false")
              << "\nready: " << (*ready ? "true" : "false") << "\n";
    return HealthExitStatus(*health);
  }
  auto server = (*client)->ServerMetadata(timeout);
  if (!server.ok()) return Fail(server.status());
  auto model = (*client)->ModelMetadata(metadata_model, timeout);
  if (!model.ok()) return Fail(model.status());
  std::cout << "server: " << server->name() << " " << server->version() << "\nextensions: ["
            << absl::StrJoin(server->extensions(), ", ") << "]\nmodel: " << model->name()
            << "\nversions: [" << absl::StrJoin(model->versions(), ", ")
            << "]\nplatform: " << model->platform() << "\n";
  for (const auto& [kind, tensors] :
       {std::pair{"input", &model->inputs()}, std::pair{"output", &model->outputs()}}) {
    for (const auto& t : *tensors) {
      std::cout << kind << ": " << t.name() << " " << t.datatype() << " ["
                << absl::StrJoin(t.shape(), ",") << "]\n";
    }
  }
  return 0;
}
