// The metrics and failure logs of every request path, through the whole in-process stack (real
// gRPC server on 127.0.0.1:0, batcher, client): failed batches, cancellations, timeouts, draining
// rejections, the pending and busy-worker gauges, and the per-reason rate limit on failure lines.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/logging.h"
#include "spdlog/sinks/ostream_sink.h"
#include "tests/server/metrics/scrape.h"
#include "tests/support/fake_clock.h"
#include "tests/support/server_harness.h"
#include "tests/support/wait_for.h"

namespace cgelu::testing {
namespace {

using server::FailureReason;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kModel[] = R"(backend="cpu",model="clipped_gelu")";

// A test server with the real Prometheus metrics, scraped over HTTP.
class PrometheusServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::PrometheusMetricsOptions options;
    options.address = "127.0.0.1:0";
    auto metrics = server::MakePrometheusMetrics(options);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_port_ = (*metrics)->port();
    auto started = StartTestServer({}, *std::move(metrics));
    ASSERT_TRUE(started.ok()) << started.status();
    test_ = *std::move(started);
  }

  Exposition Scrape() {
    auto body = HttpGet(metrics_port_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    auto parsed = ParseExposition(body.ok() ? *body : "");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : Exposition{};
  }
  double Failures(const Exposition& scrape, const char* reason) {
    return scrape.Sum("cgelu_request_failures_total", absl::StrCat("reason=\"", reason, "\""));
  }
  server::StatisticsSnapshot Statistics() {
    auto stats = test_.server->metrics().Statistics("clipped_gelu");
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : server::StatisticsSnapshot{};
  }

  int metrics_port_ = 0;
  TestServer test_;
};

TEST_F(PrometheusServerTest, FailedBatchesCountNoProcessedWork) {
  test_.backend->FailWith(absl::InternalError("injected backend failure"));
  constexpr int kFailed = 3;
  for (int i = 0; i < kFailed; ++i) {
    auto out = test_.client->Infer(Fp32Tensor({4}, {1, 2, 3, 4}), {});
    ASSERT_EQ(out.status().code(), absl::StatusCode::kInternal) << out.status();
    EXPECT_THAT(std::string(out.status().message()), HasSubstr("injected backend failure"));
  }
  ASSERT_EQ(test_.backend->segments_run(), static_cast<size_t>(kFailed)) << "the backend was run";

  Exposition s = Scrape();
  EXPECT_EQ(Failures(s, "internal"), kFailed);
  EXPECT_EQ(s.Get("cgelu_requests_total", absl::StrCat(kModel, R"(,code="INTERNAL")")), kFailed);
  EXPECT_EQ(s.Get("cgelu_request_duration_seconds_count", kModel), kFailed);
  for (const char* successful_work :
       {"cgelu_processed_elements_total", "cgelu_processed_bytes_total", "cgelu_batches_total",
        "cgelu_compute_duration_seconds_count", "cgelu_batch_size_requests_count",
        "cgelu_batch_size_requests_sum", "cgelu_batch_size_elements_sum",
        "cgelu_output_preparation_duration_seconds_count"}) {
    EXPECT_EQ(s.Get(successful_work, kModel), 0) << successful_work;
  }
  server::StatisticsSnapshot stats = Statistics();
  EXPECT_EQ(stats.failure_count, static_cast<uint64_t>(kFailed));
  EXPECT_EQ(stats.failures_by_reason[static_cast<size_t>(FailureReason::kInternal)],
            static_cast<uint64_t>(kFailed));
  EXPECT_EQ(stats.success_count, 0u);
  EXPECT_EQ(stats.inference_count, 0u);
  EXPECT_EQ(stats.execution_count, 0u);
  EXPECT_EQ(stats.compute.count, 0u);

  // The backend recovers: only the successful request is counted as work.
  test_.backend->FailWith(absl::OkStatus());
  ASSERT_TRUE(test_.client->Infer(Fp32Tensor({4}, {1, 2, 3, 4}), {}).ok());
  s = Scrape();
  EXPECT_EQ(s.Get("cgelu_processed_elements_total", kModel), 4);
  EXPECT_EQ(s.Get("cgelu_processed_bytes_total", kModel), 16);
  EXPECT_EQ(s.Get("cgelu_batches_total", kModel), 1);
  EXPECT_EQ(s.Get("cgelu_compute_duration_seconds_count", kModel), 1);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_sum", kModel), 1);
  stats = Statistics();
  EXPECT_EQ(stats.inference_count, 1u);
  EXPECT_EQ(stats.execution_count, 1u);
  EXPECT_EQ(stats.success_count, 1u);
}

// Tasks dropped without running (timeouts, cancellations) leave the queue without a batch ever
// running for them; the gauge, read from the scheduler at scrape time, still returns to 0.
TEST_F(PrometheusServerTest, PendingGaugeIsExactAfterTimeoutsAndCancels) {
  test_.backend->CloseGate();
  auto blocker =
      std::async(std::launch::async, [this] { return test_.client->Infer(Fp32Tensor({1}, {1}), {}); });
  test_.backend->WaitUntilBlocked(1);
  EXPECT_EQ(Scrape().Get("cgelu_pending_requests"), 0);

  client::InferOptions hurried;
  hurried.timeout = std::chrono::milliseconds(50);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(test_.client->Infer(Fp32Tensor({2}, {1, 2}), hurried).status().code(),
              absl::StatusCode::kDeadlineExceeded);
  }
  inference::ModelInferRequest request;
  client::BuildInferRequest(Fp32Tensor({1}, {1.0f}), {}, &request);
  grpc::ClientContext cancelled_context;
  auto cancelled = std::async(std::launch::async, [&] {
    inference::ModelInferResponse response;
    return test_.client->stub()->ModelInfer(&cancelled_context, request, &response);
  });
  WaitFor([&] { return test_.server->scheduler().NumEnqueuedTasks() == 3; });
  EXPECT_EQ(Scrape().Get("cgelu_pending_requests"), 3);
  cancelled_context.TryCancel();
  EXPECT_EQ(cancelled.get().error_code(), grpc::StatusCode::CANCELLED);
  // The server learns of the cancellation, and its copies of the deadlines pass, in real time;
  // there is no hook to wait on, so real time must pass before the executor resumes.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  test_.backend->OpenGate();
  ASSERT_TRUE(blocker.get().ok());
  WaitFor([&] { return Statistics().failure_count == 3; });

  const Exposition s = Scrape();
  EXPECT_EQ(s.Get("cgelu_pending_requests"), 0);
  EXPECT_EQ(Failures(s, "timeout"), 2);
  EXPECT_EQ(Failures(s, "cancelled"), 1);
  EXPECT_EQ(s.Get("cgelu_requests_total", absl::StrCat(kModel, R"(,code="CANCELLED")")), 1);
  EXPECT_EQ(s.Get("cgelu_batch_size_requests_sum", kModel), 1) << "only the blocker ran";
  EXPECT_EQ(test_.backend->segments_run(), 1u);
}

class RecordingServerTest : public ::testing::Test {
 protected:
  void Start(server::ServerOptions options = {}) {
    auto started = StartTestServer(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    test_ = *std::move(started);
  }
  TestServer test_;
};

TEST_F(RecordingServerTest, PendingAndBusyWorkerGaugesFollowTheExecutor) {
  Start();
  EXPECT_EQ(test_.metrics->pending_requests(), 0u);
  EXPECT_EQ(test_.metrics->busy_workers(), 0);
  test_.backend->CloseGate();
  auto blocker =
      std::async(std::launch::async, [this] { return test_.client->Infer(Fp32Tensor({1}, {1}), {}); });
  test_.backend->WaitUntilBlocked(1);
  EXPECT_EQ(test_.metrics->busy_workers(), 1);
  EXPECT_EQ(test_.metrics->pending_requests(), 0u);
  std::vector<std::future<absl::StatusOr<client::Tensor>>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(std::async(std::launch::async, [this] {
      return test_.client->Infer(Fp32Tensor({2}, {1, 2}), {});
    }));
  }
  WaitFor([&] { return test_.metrics->pending_requests() == 3; });
  EXPECT_EQ(test_.metrics->in_flight(), 4);
  EXPECT_EQ(test_.metrics->busy_workers(), 1);
  test_.backend->OpenGate();
  ASSERT_TRUE(blocker.get().ok());
  for (auto& answer : queued) EXPECT_TRUE(answer.get().ok());
  WaitFor([&] { return test_.metrics->busy_workers() == 0 && test_.metrics->in_flight() == 0; });
  EXPECT_EQ(test_.metrics->pending_requests(), 0u);
}

TEST_F(RecordingServerTest, DrainingRejectionsAreCountedAsRejected) {
  Start();
  test_.server->BeginDrain();
  for (int i = 0; i < 2; ++i) {
    auto refused = test_.client->Infer(Fp32Tensor({1}, {1.0f}), {});
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("shutting down"));
  }
  test_.metrics->WaitForRequests(2);
  EXPECT_EQ(test_.metrics->failures(FailureReason::kRejected), 2);
  EXPECT_EQ(test_.metrics->codes()[grpc::StatusCode::UNAVAILABLE], 2);
  EXPECT_EQ(test_.metrics->in_flight(), 0);
  EXPECT_TRUE(test_.metrics->batch_requests().empty());
}

TEST_F(RecordingServerTest, BackendFailureIsInternal) {
  Start();
  test_.backend->FailWith(absl::InternalError("injected"));
  EXPECT_EQ(test_.client->Infer(Fp32Tensor({3}, {1, 2, 3}), {}).status().code(),
            absl::StatusCode::kInternal);
  test_.metrics->WaitForRequests(1);
  EXPECT_EQ(test_.metrics->failures(FailureReason::kInternal), 1);
  EXPECT_EQ(test_.metrics->codes()[grpc::StatusCode::INTERNAL], 1);
  EXPECT_TRUE(test_.metrics->batch_requests().empty()) << "a failed batch is not work done";
  WaitFor([&] { return test_.metrics->busy_workers() == 0; });
}

// Failure lines through the server, on a fake clock: at most 10 a second per reason, then one
// line with the count; a request without an id is logged under a server-side one.
class FailureLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        server::SetUpLogging("json", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_))
            .ok());
    server::ServerOptions options;
    options.grpc_address = "127.0.0.1:0";
    options.batching.max_batch_requests = 1;  // a batch closes at once: no wait on the fake clock
    auto server = server::Server::Create(options, kernels::MakeCpuBackend(),
                                         server::MakeNullMetrics(), &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto client =
        client::Client::Create({.target = absl::StrCat("127.0.0.1:", server_->grpc_port())});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    ASSERT_TRUE(server::SetUpLogging("text", "off").ok());
  }

  // The failure lines so far (every line is logged before its RPC is answered).
  std::vector<nlohmann::json> Lines() {
    std::vector<nlohmann::json> lines;
    for (absl::string_view line : absl::StrSplit(out_.str(), '\n', absl::SkipEmpty())) {
      lines.push_back(nlohmann::json::parse(line));
    }
    return lines;
  }
  void SendInvalid(int n, const std::string& id_prefix) {
    client::InferOptions unknown;
    unknown.model = "no_such_model";
    for (int i = 0; i < n; ++i) {
      unknown.request_id = id_prefix.empty() ? "" : absl::StrCat(id_prefix, i);
      ASSERT_EQ(client_->Infer(Fp32Tensor({1}, {1}), unknown).status().code(),
                absl::StatusCode::kNotFound);
    }
  }

  std::ostringstream out_;
  FakeClock clock_{1'000'000};
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(FailureLogTest, FailureLinesAreRateLimitedPerReason) {
  SendInvalid(25, "bad-");
  std::vector<nlohmann::json> lines = Lines();
  ASSERT_EQ(lines.size(), 10u) << out_.str();
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["msg"], "request failed");
    EXPECT_EQ(lines[i]["level"], "warn");
    EXPECT_EQ(lines[i]["reason"], "invalid");
    EXPECT_EQ(lines[i]["code"], "NOT_FOUND");
    EXPECT_EQ(lines[i]["request_id"], absl::StrCat("bad-", i));
  }
  // Another reason has its own budget.
  server_->BeginDrain();
  EXPECT_EQ(client_->Infer(Fp32Tensor({1}, {1}), {}).status().code(),
            absl::StatusCode::kUnavailable);
  lines = Lines();
  ASSERT_EQ(lines.size(), 11u) << out_.str();
  EXPECT_EQ(lines[10]["reason"], "rejected");

  // At shutdown the count not yet reported is written (the next window's first failure would
  // have written it too: LoggingTest.RateLimiterCapsLinesPerKeyAndReportsTheRest).
  client_.reset();
  server_.reset();
  lines = Lines();
  ASSERT_EQ(lines.size(), 12u) << out_.str();
  EXPECT_EQ(lines[11]["level"], "warn");
  EXPECT_EQ(lines[11]["msg"], "request failed lines suppressed");
  EXPECT_EQ(lines[11]["reason"], "invalid");
  EXPECT_EQ(lines[11]["suppressed"], 15);
}

TEST_F(FailureLogTest, RequestsWithoutAnIdAreLoggedUnderAServerSideOne) {
  SendInvalid(2, "");
  const std::vector<nlohmann::json> lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  const std::string first = lines[0]["request_id"];
  const std::string second = lines[1]["request_id"];
  EXPECT_THAT(first, StartsWith("srv-"));
  EXPECT_THAT(second, StartsWith("srv-"));
  EXPECT_NE(first, second);

  // The response still echoes the client's id, here none.
  inference::ModelInferRequest request;
  client::BuildInferRequest(Fp32Tensor({1}, {1.0f}), {}, &request);
  ASSERT_TRUE(request.id().empty());
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(client_->stub()->ModelInfer(&context, request, &response).ok());
  EXPECT_EQ(response.id(), "");
}

}  // namespace
}  // namespace cgelu::testing
