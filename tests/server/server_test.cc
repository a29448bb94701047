// The whole stack in-process — real gRPC server on 127.0.0.1:0, real batcher, real CPU kernel (behind
// a gate the test can close), real client — through the service scenarios of
// ../shared/cases/service-scenarios.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <future>
#include <random>
#include <thread>

#include "cgelu/kernels/clipped_gelu.h"
#include "cgelu/proto/health.grpc.pb.h"
#include "tests/server/metrics/scrape.h"
#include "tests/support/fake_clock.h"
#include "tests/support/server_harness.h"
#include "tests/support/wait_for.h"

namespace cgelu::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What the kernel itself computes for `values` under `params`: the server must return exactly
// this, whatever batch the request ran in.
std::vector<float> KernelOutput(const std::vector<float>& values, kernels::ClipParams params) {
  std::vector<float> out(values.size());
  kernels::Segment segment{values.data(), out.data(), values.size(), kernels::DType::kFP32, params};
  EXPECT_TRUE(kernels::Run({&segment, 1}).ok());
  return out;
}

// A loose independent check that the numbers are clipped GELU at all.
void ExpectNearReference(const std::vector<float>& in, const std::vector<float>& out, double lo,
                         double hi) {
  ASSERT_EQ(in.size(), out.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const double x = in[i];
    const double ref = std::min(std::max(0.5 * x * std::erfc(-x / std::sqrt(2.0)), lo), hi);
    ASSERT_NEAR(out[i], ref, 1e-6 + 1e-6 * std::abs(ref)) << "x = " << x;
  }
}

std::vector<float> RandomValues(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

void ExpectBitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

class ServerTest : public ::testing::Test {
 protected:
  void Start(server::ServerOptions options = {}) {
    auto started = StartTestServer(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    test_ = *std::move(started);
  }
  // Closes the gate and parks one request in the backend, so the executor is busy.
  std::future<absl::StatusOr<client::Tensor>> StallExecutor() {
    test_.backend->CloseGate();
    auto blocker = std::async(std::launch::async, [this] {
      return test_.client->Infer(Fp32Tensor({1}, {0.5f}), {});
    });
    test_.backend->WaitUntilBlocked(1);
    return blocker;
  }

  TestServer test_;
};

TEST_F(ServerTest, InfersWithServerDefaults) {
  Start();
  const std::vector<float> values = RandomValues(1000, 1);
  auto out = test_.client->Infer(Fp32Tensor({10, 100}, values), {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->datatype, "FP32");
  EXPECT_THAT(out->shape, ElementsAre(10, 100));
  ExpectBitIdentical(Fp32Values(*out), KernelOutput(values, {}));
  ExpectNearReference(values, Fp32Values(*out), -3, 3);
}

TEST_F(ServerTest, S1LargeTensorsPassWithDefaultLimits) {
  Start();
  for (std::vector<int64_t> shape : {std::vector<int64_t>{1, 1400000}, {16, 1048576}}) {
    const size_t n = static_cast<size_t>(shape[0] * shape[1]);
    const std::vector<float> values = RandomValues(n, 2);
    auto out = test_.client->Infer(Fp32Tensor(shape, values), {});
    ASSERT_TRUE(out.ok()) << "shape [" << shape[0] << "," << shape[1] << "]: " << out.status();
    ExpectBitIdentical(Fp32Values(*out), KernelOutput(values, {}));
  }
}

TEST_F(ServerTest, S4DifferentShapesAndBoundsShareOneBatch) {
  Start();
  auto blocker = StallExecutor();
  struct Case {
    std::vector<int64_t> shape;
    double min, max;
  };
  const std::vector<Case> cases = {{{3}, -0.1, 0.5}, {{2, 5}, -3, 3}, {{1, 1, 7}, 0.0, 1.0}};
  std::vector<std::future<absl::StatusOr<client::Tensor>>> answers;
  std::vector<std::vector<float>> inputs;
  for (size_t i = 0; i < cases.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : cases[i].shape) n *= d;
    inputs.push_back(RandomValues(static_cast<size_t>(n), 10 + static_cast<uint32_t>(i)));
    client::InferOptions options;
    options.min = cases[i].min;
    options.max = cases[i].max;
    answers.push_back(std::async(std::launch::async, [this, options, t = Fp32Tensor(
                                                                          cases[i].shape, inputs[i])] {
      return test_.client->Infer(t, options);
    }));
  }
  WaitFor([&] { return test_.server->scheduler().NumEnqueuedTasks() == 3; });
  test_.backend->OpenGate();
  ASSERT_TRUE(blocker.get().ok());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto out = answers[i].get();
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->shape, cases[i].shape);
    const kernels::ClipParams params{.min = cases[i].min, .max = cases[i].max};
    ExpectBitIdentical(Fp32Values(*out), KernelOutput(inputs[i], params));
    ExpectNearReference(inputs[i], Fp32Values(*out), cases[i].min, cases[i].max);
  }
  EXPECT_THAT(test_.backend->batch_sizes(), ElementsAre(1, 3));
  EXPECT_THAT(test_.metrics->batch_requests(), ElementsAre(1, 3));
}

TEST_F(ServerTest, S5ToS7AndS11ErrorsOverTheWire) {
  Start();
  client::Tensor short_payload = Fp32Tensor({2, 3}, std::vector<float>(5, 1.0f));
  auto s5 = test_.client->Infer(short_payload, {});
  EXPECT_EQ(s5.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s5.status().message(), HasSubstr("'INPUT0'"));
  EXPECT_THAT(s5.status().message(), HasSubstr("24 bytes"));
  EXPECT_THAT(s5.status().message(), HasSubstr("received 20"));

  inference::ModelInferRequest both;
  client::BuildInferRequest(Fp32Tensor({1}, {1.0f}), {}, &both);
  both.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  grpc::Status s6 = test_.client->stub()->ModelInfer(&context, both, &response);
  EXPECT_EQ(s6.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  client::InferOptions inverted;
  inverted.min = 2;
  inverted.max = 1;
  auto s7 = test_.client->Infer(Fp32Tensor({1}, {1.0f}), inverted);
  EXPECT_EQ(s7.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s7.status().message(), HasSubstr("min should be < max (got min: 2, max: 1)"));

  client::InferOptions unknown;
  unknown.model = "no_such_model";
  EXPECT_EQ(test_.client->Infer(Fp32Tensor({1}, {1.0f}), unknown).status().code(),
            absl::StatusCode::kNotFound);
  client::Tensor int32 = Fp32Tensor({1}, {1.0f});
  int32.datatype = "INT32";
  EXPECT_EQ(test_.client->Infer(int32, {}).status().code(), absl::StatusCode::kInvalidArgument);
  client::Tensor negative = Fp32Tensor({-1}, {});
  EXPECT_EQ(test_.client->Infer(negative, {}).status().code(), absl::StatusCode::kInvalidArgument);
  client::Tensor overflow = Fp32Tensor({int64_t{1} << 40, int64_t{1} << 40}, {1.0f});
  EXPECT_EQ(test_.client->Infer(overflow, {}).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(test_.metrics->failures(server::FailureReason::kInvalid), 7);
  // The server is still healthy and correct after all that.
  auto ok = test_.client->Infer(Fp32Tensor({1}, {1.0f}), {});
  ASSERT_TRUE(ok.ok()) << ok.status();
}

TEST_F(ServerTest, S13EmptyAndScalarTensors) {
  Start();
  auto empty = test_.client->Infer(Fp32Tensor({0}, {}), {});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(empty->shape, ElementsAre(0));
  EXPECT_TRUE(empty->data.empty());
  auto scalar = test_.client->Infer(Fp32Tensor({}, {1.0f}), {});
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_TRUE(scalar->shape.empty());
  ExpectBitIdentical(Fp32Values(*scalar), KernelOutput({1.0f}, {}));
}

TEST_F(ServerTest, S12Bf16RoundTrip) {
  Start();
  const std::vector<float> values = {-2.0f, -0.5f, 0.0f, 0.75f, 1.5f, 4.0f};
  client::Tensor bf16;
  bf16.datatype = "BF16";
  bf16.shape = {static_cast<int64_t>(values.size())};
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    const uint16_t high = static_cast<uint16_t>(bits >> 16);
    bf16.data.append(reinterpret_cast<const char*>(&high), 2);
  }
  auto out = test_.client->Infer(bf16, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->datatype, "BF16");
  ASSERT_EQ(out->data.size(), values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t high;
    std::memcpy(&high, out->data.data() + 2 * i, 2);
    const uint32_t bits = static_cast<uint32_t>(high) << 16;
    float got;
    std::memcpy(&got, &bits, 4);
    const double x = values[i];
    const double ref = std::min(std::max(0.5 * x * std::erfc(-x / std::sqrt(2.0)), -3.0), 3.0);
    // One BF16 ULP at |ref| is 2^(exponent - 7).
    const double ulp = ref == 0 ? 1e-38 : std::ldexp(1.0, std::ilogb(ref) - 7);
    EXPECT_LE(std::abs(got - ref), ulp) << "x = " << x;
  }
}

TEST_F(ServerTest, S8FullQueueRejectsAtOnceAndLosesNothing) {
  server::ServerOptions options;
  options.batching.max_queue_size = 4;
  Start(options);
  auto blocker = StallExecutor();
  std::vector<std::future<absl::StatusOr<client::Tensor>>> answers;
  std::atomic<int> finished{0};
  for (int i = 0; i < 10; ++i) {
    answers.push_back(std::async(std::launch::async, [this, i, &finished] {
      auto out = test_.client->Infer(Fp32Tensor({1}, {static_cast<float>(i)}), {});
      ++finished;
      return out;
    }));
  }
  // The six rejections come back while the executor is still stalled.
  WaitFor([&] { return finished.load() == 6; });
  EXPECT_EQ(test_.server->scheduler().NumEnqueuedTasks(), 4u);
  test_.backend->OpenGate();
  int ok = 0, unavailable = 0;
  for (int i = 0; i < 10; ++i) {
    auto out = answers[static_cast<size_t>(i)].get();
    if (out.ok()) {
      ++ok;
      ExpectBitIdentical(Fp32Values(*out), KernelOutput({static_cast<float>(i)}, {}));
    } else {
      EXPECT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
      ++unavailable;
    }
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(unavailable, 6);
  EXPECT_TRUE(blocker.get().ok());
  EXPECT_EQ(test_.metrics->failures(server::FailureReason::kRejected), 6);
}

TEST_F(ServerTest, S9ExpiredRequestIsNeverComputed) {
  Start();
  auto blocker = StallExecutor();
  client::InferOptions hurried;
  hurried.timeout = std::chrono::milliseconds(10);
  auto late = test_.client->Infer(Fp32Tensor({4}, {1, 2, 3, 4}), hurried);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The server's copy of the deadline starts when the request arrives, a little after the client's;
  // real time must pass it before the executor resumes, or the request would not be late yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  test_.backend->OpenGate();
  ASSERT_TRUE(blocker.get().ok());
  test_.metrics->WaitForRequests(2);
  EXPECT_EQ(test_.backend->segments_run(), 1u) << "only the blocker was computed";
  EXPECT_EQ(test_.metrics->failures(server::FailureReason::kTimeout), 1);
}

TEST_F(ServerTest, QueueTimeoutParameterAnswersUnavailable) {
  Start();
  auto blocker = StallExecutor();
  inference::ModelInferRequest request;
  client::BuildInferRequest(Fp32Tensor({1}, {1.0f}), {}, &request);
  (*request.mutable_parameters())["timeout"].set_int64_param(1000);  // 1 ms in the queue
  auto queued = std::async(std::launch::async, [&] {
    inference::ModelInferResponse response;
    grpc::ClientContext context;
    return test_.client->stub()->ModelInfer(&context, request, &response);
  });
  WaitFor([&] { return test_.server->scheduler().NumEnqueuedTasks() == 1; });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // real time must pass the 1 ms
  test_.backend->OpenGate();
  EXPECT_EQ(queued.get().error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(blocker.get().ok());
  EXPECT_EQ(test_.backend->segments_run(), 1u);
}

TEST_F(ServerTest, DrainFinishesAcceptedRequestsAndRefusesNewOnes) {
  Start();
  auto blocker = StallExecutor();
  std::vector<std::future<absl::StatusOr<client::Tensor>>> accepted;
  for (int i = 0; i < 3; ++i) {
    accepted.push_back(std::async(std::launch::async, [this] {
      return test_.client->Infer(Fp32Tensor({2}, {1.0f, -1.0f}), {});
    }));
  }
  WaitFor([&] { return test_.server->scheduler().NumEnqueuedTasks() == 3; });
  test_.server->BeginDrain();
  auto health = test_.client->HealthCheck("", std::chrono::seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "NOT_SERVING");
  auto ready = test_.client->ServerReady(std::chrono::seconds(5));
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);
  auto refused = test_.client->Infer(Fp32Tensor({1}, {1.0f}), {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);

  auto drained = std::async(std::launch::async, [this] {
    return test_.server->Drain(std::chrono::system_clock::now() + std::chrono::seconds(30));
  });
  test_.backend->OpenGate();
  EXPECT_TRUE(drained.get());
  EXPECT_TRUE(blocker.get().ok());
  for (auto& answer : accepted) EXPECT_TRUE(answer.get().ok());
}

TEST_F(ServerTest, HealthCheckAndWatch) {
  Start();
  auto health = test_.client->HealthCheck("", std::chrono::seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
  auto service = test_.client->HealthCheck("inference.GRPCInferenceService", std::chrono::seconds(5));
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(*service, "SERVING");

  auto stub = grpc::health::v1::Health::NewStub(test_.client->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::health::v1::HealthCheckRequest request;
  auto reader = stub->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  test_.server->BeginDrain();
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  context.TryCancel();
}

TEST_F(ServerTest, LivenessReadinessAndMetadata) {
  Start();
  EXPECT_TRUE(*test_.client->ServerLive(std::chrono::seconds(5)));
  EXPECT_TRUE(*test_.client->ServerReady(std::chrono::seconds(5)));
  EXPECT_TRUE(*test_.client->ModelReady("clipped_gelu", std::chrono::seconds(5)));
  EXPECT_EQ(test_.client->ModelReady("other", std::chrono::seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
  auto server = test_.client->ServerMetadata(std::chrono::seconds(5));
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->name(), "cgelu");
  auto model = test_.client->ModelMetadata("clipped_gelu", std::chrono::seconds(5));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->name(), "clipped_gelu");
  EXPECT_THAT(model->versions(), ElementsAre("1"));
  ASSERT_EQ(model->inputs_size(), 1);
  EXPECT_EQ(model->platform(), "cgelu_cpu");
  // The protocol gives a tensor one datatype and one shape: the primary form, FP32 of any length
  // (-1 is the protocol's variable-size dimension). FP64/FP16/BF16 and every rank are accepted too.
  ASSERT_EQ(model->outputs_size(), 1);
  for (const auto* tensor : {&model->inputs(0), &model->outputs(0)}) {
    EXPECT_EQ(tensor->datatype(), "FP32");
    EXPECT_THAT(tensor->shape(), ElementsAre(-1));
  }
  EXPECT_EQ(model->inputs(0).name(), "INPUT0");
  EXPECT_EQ(model->outputs(0).name(), "OUTPUT0");
  EXPECT_EQ(test_.client->ModelMetadata("other", std::chrono::seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, ConcurrentClientsGetTheirOwnResults) {
  server::ServerOptions options;
  options.batching.max_queue_delay_us = 500;
  options.batching.num_workers = 2;
  Start(options);
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::vector<float> values = RandomValues(static_cast<size_t>(1 + (t * 31 + i) % 300),
                                                       static_cast<uint32_t>(t * 1000 + i));
        client::InferOptions options;
        options.min = -0.1 * t;
        options.max = 0.5 + t;
        auto out = test_.client->Infer(Fp32Tensor({static_cast<int64_t>(values.size())}, values),
                                       options);
        const auto expected = KernelOutput(values, {.min = *options.min, .max = *options.max});
        if (!out.ok() || Fp32Values(*out) != expected) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(test_.metrics->codes()[grpc::StatusCode::OK], kThreads * kPerThread);
  EXPECT_EQ(test_.metrics->in_flight(), 0);
}

}  // namespace
}  // namespace cgelu::testing

namespace cgelu::testing {
namespace {

// S3: with max_queue_delay_us = 2000 and one client sending one request at a time, each request
// waits for company exactly the queue delay and no longer, and the scraped queue-time histogram
// shows it. The batcher runs on a FakeClock, so the test moves time itself: nothing depends on the
// machine's speed.
TEST(ServerQueueDelay, S3LoneRequestsWaitTheQueueDelayAndTheHistogramShowsIt) {
  FakeClock clock(1'000'000);
  server::PrometheusMetricsOptions metrics_options;
  metrics_options.address = "127.0.0.1:0";  // default buckets: ..., 1 ms, 2.5 ms, 5 ms, ...
  auto metrics = server::MakePrometheusMetrics(metrics_options);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const int metrics_port = (*metrics)->port();
  server::ServerOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.batching.max_queue_delay_us = 2000;
  auto server = server::Server::Create(options, kernels::MakeCpuBackend(), *std::move(metrics),
                                       &clock);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client =
      client::Client::Create({.target = "127.0.0.1:" + std::to_string((*server)->grpc_port())});
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) {
    const std::vector<float> values = {static_cast<float>(i), -1.5f};
    const int64_t arrival_us = clock.NowMicros();
    auto answer = std::async(std::launch::async, [&] {
      return (*client)->Infer(Fp32Tensor({2}, values), {});
    });
    // The worker is asleep until the lone request's batch closes: arrival + 2000 us.
    clock.BlockUntilWaitersWithDeadline(1, arrival_us + 2000);
    clock.AdvanceMicros(1000);
    // Half-way, the request is still waiting for company.
    EXPECT_EQ((*server)->scheduler().NumEnqueuedTasks(), 1u);
    clock.AdvanceMicros(1000);
    auto out = answer.get();
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectBitIdentical(Fp32Values(*out), KernelOutput(values, {}));
  }

  auto body = HttpGet(metrics_port, "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  auto scrape = ParseExposition(*body);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  const std::string model = "model=\"clipped_gelu\"";
  EXPECT_EQ(scrape->Sum("cgelu_queue_duration_seconds_count", model), kRequests);
  EXPECT_DOUBLE_EQ(scrape->Sum("cgelu_queue_duration_seconds_sum", model), kRequests * 0.002);
  // Every observation is above 1 ms (none closed early) and at most 2.5 ms (none late).
  int checked = 0;
  for (const auto& [le, cumulative] : scrape->Buckets("cgelu_queue_duration_seconds", model)) {
    if (le <= 0.001) {
      EXPECT_EQ(cumulative, 0) << "le=" << le;
    } else if (le >= 0.0025) {
      EXPECT_EQ(cumulative, kRequests) << "le=" << le;
    }
    ++checked;
  }
  EXPECT_GT(checked, 2);
}

TEST(ServerMetricsScrape, HistogramsShowEveryPhase) {
  server::PrometheusMetricsOptions metrics_options;
  metrics_options.address = "127.0.0.1:0";
  auto metrics = server::MakePrometheusMetrics(metrics_options);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const int metrics_port = (*metrics)->port();
  auto started = StartTestServer({}, *std::move(metrics));
  ASSERT_TRUE(started.ok()) << started.status();
  TestServer test = *std::move(started);
  constexpr int kRequests = 5;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(test.client->Infer(Fp32Tensor({3}, {1, 2, 3}), {}).ok());
  }
  client::InferOptions unknown;
  unknown.model = "nope";
  EXPECT_FALSE(test.client->Infer(Fp32Tensor({1}, {1}), unknown).ok());

  auto body = HttpGet(metrics_port, "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  auto scrape = ParseExposition(*body);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  for (const char* histogram :
       {"cgelu_request_duration_seconds", "cgelu_queue_duration_seconds",
        "cgelu_compute_duration_seconds", "cgelu_batch_size_requests",
        "cgelu_batch_size_elements"}) {
    EXPECT_EQ(scrape->types[histogram], "histogram") << histogram;
  }
  const std::string model = "model=\"clipped_gelu\"";
  EXPECT_EQ(scrape->Sum("cgelu_request_duration_seconds_count", model), kRequests);
  EXPECT_EQ(scrape->Sum("cgelu_queue_duration_seconds_count", model), kRequests);
  EXPECT_EQ(scrape->Sum("cgelu_batch_size_requests_sum", model), kRequests);
  EXPECT_GT(scrape->Sum("cgelu_compute_duration_seconds_count", model), 0);
  EXPECT_EQ(scrape->Sum("cgelu_requests_total", model + ",code=\"OK\""), kRequests);
  EXPECT_EQ(scrape->Sum("cgelu_requests_total", "code=\"NOT_FOUND\""), 1);
}

}  // namespace
}  // namespace cgelu::testing
