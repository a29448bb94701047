// Real runs: cgelu-loadtest's runner and binary against the built cgelu-server and
// cgelu-echo-server, started as child processes on 127.0.0.1 port 0. Short levels (about a
// second); they check accounting and correctness, never speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "child_process.h"
#include "nlohmann/json.hpp"
#include "runner.h"

namespace cgelu::loadtest {
namespace {

using testing::ChildProcess;
using testing::RunToCompletion;

struct Servers {
  std::unique_ptr<ChildProcess> cgelu;
  std::string cgelu_target;
  std::string metrics_url;
  std::unique_ptr<ChildProcess> echo;
  std::string echo_target;
};
Servers* servers = nullptr;

class RunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    servers = new Servers;
    auto cgelu = ChildProcess::Start({CGELU_SERVER_BIN, "--grpc-address", "127.0.0.1:0",
                                      "--metrics-address", "127.0.0.1:0", "--kernel-threads", "1"});
    ASSERT_TRUE(cgelu.ok()) << cgelu.status();
    servers->cgelu = *std::move(cgelu);
    auto grpc_port = servers->cgelu->WaitForLine(R"(grpc_port[=":]+\s*(\d+))", 30);
    ASSERT_TRUE(grpc_port.ok()) << grpc_port.status();
    servers->cgelu_target = "127.0.0.1:" + *grpc_port;
    std::smatch match;
    const std::string& log = servers->cgelu->output();
    ASSERT_TRUE(std::regex_search(log, match, std::regex(R"(metrics_port[=":]+\s*(\d+))"))) << log;
    servers->metrics_url = "http://127.0.0.1:" + match[1].str() + "/metrics";

    auto echo = ChildProcess::Start({CGELU_ECHO_SERVER_BIN, "--grpc-address", "127.0.0.1:0"});
    ASSERT_TRUE(echo.ok()) << echo.status();
    servers->echo = *std::move(echo);
    auto echo_port = servers->echo->WaitForLine(R"(listening on .*:(\d+))", 30);
    ASSERT_TRUE(echo_port.ok()) << echo_port.status();
    servers->echo_target = "127.0.0.1:" + *echo_port;
  }
  static void TearDownTestSuite() {
    delete servers;
    servers = nullptr;
  }
  void SetUp() override {
    if (servers->cgelu_target.empty() || servers->echo_target.empty()) {
      GTEST_FAIL() << "the servers did not start";
    }
  }

  static LoadTestConfig Config(const std::string& target) {
    LoadTestConfig c;
    c.channel.target = target;
    c.duration_s = 1;
    c.warmup_s = 0.2;
    c.shape = {4096};
    c.distinct_inputs = 3;
    c.verify = true;
    c.verify_fraction = 0.2;
    c.connections = 2;
    return c;
  }
};

void ExpectCountsAddUp(const LevelResult& r) {
  EXPECT_GT(r.requests, 0);
  EXPECT_EQ(r.requests, r.ok + r.errors_total());
  EXPECT_EQ(r.latency_ns.count(), r.ok);
  EXPECT_LE(r.verified, r.ok);
  EXPECT_GT(r.window_s, 0);
  EXPECT_NEAR(r.throughput_rps, static_cast<double>(r.ok_in_window) / r.window_s, 1e-6);
  EXPECT_GT(r.latency_ns.min(), 0);
  EXPECT_LE(r.latency_ns.Percentile(50), r.latency_ns.Percentile(99));
}

TEST_F(RunTest, ClosedLoopAgainstCgeluAddsUpVerifiesAndReadsTheServerMetrics) {
  LoadTestConfig config = Config(servers->cgelu_target);
  config.metrics_url = servers->metrics_url;
  config.concurrency_levels = {1, 4};
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->connections(), 2);
  int progress_lines = 0;
  for (int concurrency : config.concurrency_levels) {
    const LevelResult r =
        (*runner)->RunLevel(concurrency, [&](const std::string&) { ++progress_lines; });
    ExpectCountsAddUp(r);
    EXPECT_TRUE(r.errors.empty()) << r.first_error;
    EXPECT_GT(r.verified, 0);
    EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
    EXPECT_NEAR(r.window_s, 1.0, 1e-6);
    ASSERT_TRUE(r.server.has_value()) << r.server_error;
    EXPECT_TRUE(r.server->missing.empty());
    // The opening scrape runs when the runner's thread wakes at the window's start, which a busy
    // machine can delay, so only a loose bound holds; what matters is that the deltas are read.
    EXPECT_GE(r.server->requests, 0.5 * static_cast<double>(r.ok_in_window));
    EXPECT_GE(r.server->mean_batch_requests, 1.0);
    EXPECT_GT(r.server->mean_compute_s, 0);
    EXPECT_GT(r.server->requests_by_code.at("OK"), 0);
  }
  EXPECT_GT(progress_lines, 0);
}

TEST_F(RunTest, RequestsModeMeasuresExactlyThatMany) {
  LoadTestConfig config = Config(servers->cgelu_target);
  config.duration_s = 0;
  config.requests = 300;
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const LevelResult r = (*runner)->RunLevel(8, nullptr);
  ExpectCountsAddUp(r);
  EXPECT_EQ(r.requests, 300);
  EXPECT_EQ(r.ok, 300);
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
}

TEST_F(RunTest, OpenLoopSendsOnScheduleAndAddsUp) {
  LoadTestConfig config = Config(servers->cgelu_target);
  config.mode = LoopMode::kOpen;
  config.arrival = Arrival::kPoisson;
  config.rate_levels = {300};
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const LevelResult r = (*runner)->RunLevel(300, nullptr);
  ExpectCountsAddUp(r);
  EXPECT_TRUE(r.errors.empty()) << r.first_error;
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  // Exactly the arrivals the seeded schedule puts inside the window were sent and measured, late
  // or not.
  ArrivalSchedule schedule(Arrival::kPoisson, 300, config.seed);
  int64_t expected = 0;
  for (int64_t offset = schedule.NextOffsetNs(); offset < 1'200'000'000;
       offset = schedule.NextOffsetNs()) {
    if (offset >= 200'000'000) ++expected;
  }
  EXPECT_EQ(r.requests, expected);
  EXPECT_EQ(r.send_lateness_ns.count(), r.requests);
}

TEST_F(RunTest, EveryDatatypeVerifiesAgainstCgelu) {
  for (const char* dtype : {"FP64", "FP16", "BF16"}) {
    for (const char* approximate : {"none", "tanh"}) {
      LoadTestConfig config = Config(servers->cgelu_target);
      config.datatype = dtype;
      config.duration_s = 0;
      config.requests = 40;
      config.warmup_s = 0;
      config.verify_fraction = 1;
      config.infer.min = -0.1;
      config.infer.max = 2.0;
      config.infer.approximate = approximate;
      auto runner = LoadRunner::Create(config);
      ASSERT_TRUE(runner.ok()) << runner.status();
      const LevelResult r = (*runner)->RunLevel(2, nullptr);
      EXPECT_EQ(r.ok, 40) << dtype << " " << r.first_error;
      EXPECT_EQ(r.verified, 40) << dtype;
      EXPECT_EQ(r.mismatches, 0) << dtype << " " << approximate << ": " << r.first_mismatch;
    }
  }
}

TEST_F(RunTest, NpyInputVerifiesAgainstCgelu) {
  // A real activation tensor (examples/README.md): every request sends it whole.
  LoadTestConfig config = Config(servers->cgelu_target);
  config.input_npy = CGELU_EXAMPLE_NPY;
  config.duration_s = 0;
  config.requests = 20;
  config.verify_fraction = 1;
  config.infer.min = -INFINITY;
  config.infer.max = INFINITY;
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->Describe().payload, "FP32 [4,16,1536]");
  const LevelResult r = (*runner)->RunLevel(2, nullptr);
  EXPECT_EQ(r.ok, 20) << r.first_error;
  EXPECT_EQ(r.verified, 20);
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
}

TEST_F(RunTest, VerifyAgainstTheEchoServerFindsMismatches) {
  LoadTestConfig config = Config(servers->echo_target);
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const LevelResult r = (*runner)->RunLevel(4, nullptr);
  ExpectCountsAddUp(r);
  EXPECT_TRUE(r.errors.empty()) << r.first_error;
  EXPECT_GT(r.verified, 0);
  EXPECT_EQ(r.mismatches, r.verified);  // the echo returns x, never clip(gelu(x))
  EXPECT_NE(r.first_mismatch.find("elements differ"), std::string::npos) << r.first_mismatch;
}

// S14: two replicas behind one target, round-robin over the resolved addresses. The replicas
// listen on the same port at 127.0.0.1 and 127.0.0.2, and the target names both with gRPC's ipv4:
// scheme, which hands the balancer the same address list a dns:/// name with two A records does.
TEST_F(RunTest, RoundRobinSpreadsRequestsOverReplicas) {
  auto first = ChildProcess::Start({CGELU_ECHO_SERVER_BIN, "--grpc-address", "127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  auto port = (*first)->WaitForLine(R"(listening on .*:(\d+))", 30);
  ASSERT_TRUE(port.ok()) << port.status();
  auto second =
      ChildProcess::Start({CGELU_ECHO_SERVER_BIN, "--grpc-address", "127.0.0.2:" + *port});
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->WaitForLine("listening on", 30).ok()) << (*second)->output();

  LoadTestConfig config = Config("ipv4:127.0.0.1:" + *port + ",127.0.0.2:" + *port);
  config.connections = 1;
  config.duration_s = 0;
  config.requests = 400;
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const LevelResult r = (*runner)->RunLevel(4, nullptr);
  EXPECT_EQ(r.ok, 400) << r.first_error;
  runner->reset();  // closes the channel before the replicas go away

  std::vector<int64_t> answered;
  for (auto* replica : {first->get(), second->get()}) {
    EXPECT_EQ(replica->Stop(), 0);
    std::smatch match;
    const std::string& log = replica->output();
    ASSERT_TRUE(std::regex_search(log, match, std::regex(R"(answered (\d+) ModelInfer)"))) << log;
    answered.push_back(std::stoll(match[1].str()));
  }
  EXPECT_GE(answered[0] + answered[1], 400);
  const auto [low, high] = std::minmax(answered[0], answered[1]);
  EXPECT_GE(static_cast<double>(low), 0.8 * static_cast<double>(high))
      << answered[0] << " and " << answered[1] << " calls";
}

TEST_F(RunTest, UnreachableServerIsAClearErrorNotAHang) {
  LoadTestConfig config = Config("127.0.0.1:1");
  config.connect_timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  auto runner = LoadRunner::Create(config);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(runner.status().message().find("cannot connect to 127.0.0.1:1 within 1 s"),
            std::string::npos)
      << runner.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(RunTest, AnUnknownModelFailsOnTheFirstRequest) {
  LoadTestConfig config = Config(servers->cgelu_target);
  config.infer.model = "no_such_model";
  auto runner = LoadRunner::Create(config);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kNotFound) << runner.status();
  EXPECT_NE(runner.status().message().find("the first request"), std::string::npos);
}

// The binary, as a user runs it.
TEST_F(RunTest, BinaryBadArgumentsExitTwoWithOneLine) {
  auto run = RunToCompletion({CGELU_LOADTEST_BIN, "--concurrency", "0"}, 30);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->first, 2);
  EXPECT_EQ(run->second.rfind("cgelu-loadtest: ", 0), 0u) << run->second;
  EXPECT_EQ(run->second.find('\n'), run->second.size() - 1) << run->second;
}

TEST_F(RunTest, BinaryUnreachableServerExitsOne) {
  auto run = RunToCompletion(
      {CGELU_LOADTEST_BIN, "--server", "127.0.0.1:1", "--connect-timeout", "1", "--duration", "1"},
      30);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->first, 1);
  EXPECT_NE(run->second.find("cannot connect"), std::string::npos) << run->second;
}

TEST_F(RunTest, BinaryWritesEveryReportAndFlagsTheWrongServer) {
  const std::string dir = ::testing::TempDir();
  const std::string csv = dir + "/loadtest.csv", json = dir + "/loadtest.json",
                    svg = dir + "/loadtest.svg";
  auto run = RunToCompletion({CGELU_LOADTEST_BIN, "--server", servers->echo_target, "--concurrency",
                              "1,2", "--duration", "0.5", "--warmup", "0.1", "--verify", "--csv",
                              csv, "--json", json, "--svg", svg, "--label", "echo"},
                             60);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->first, 3) << run->second;  // mismatches found
  EXPECT_NE(run->second.find("verified responses mismatched"), std::string::npos) << run->second;

  std::ifstream json_in(json);
  const nlohmann::json report = nlohmann::json::parse(json_in, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  ASSERT_EQ(report["levels"].size(), 2u);
  for (const auto& level : report["levels"]) {
    EXPECT_GT(level["verify"]["mismatches"].get<int64_t>(), 0);
    EXPECT_EQ(level["requests"].get<int64_t>(), level["ok"].get<int64_t>());
  }
  std::ifstream csv_in(csv);
  std::string line;
  int lines = 0;
  while (std::getline(csv_in, line)) ++lines;
  EXPECT_EQ(lines, 3);
  std::ifstream svg_in(svg);
  std::stringstream svg_text;
  svg_text << svg_in.rdbuf();
  EXPECT_NE(svg_text.str().find("</svg>"), std::string::npos);

  // --plot draws several saved runs on one chart.
  const std::string combined = dir + "/combined.svg";
  auto plot = RunToCompletion({CGELU_LOADTEST_BIN, "--plot", json, json, "--svg", combined}, 30);
  ASSERT_TRUE(plot.ok()) << plot.status();
  EXPECT_EQ(plot->first, 0) << plot->second;
  std::ifstream combined_in(combined);
  std::stringstream combined_text;
  combined_text << combined_in.rdbuf();
  EXPECT_NE(combined_text.str().find("</svg>"), std::string::npos);
}

TEST_F(RunTest, BinaryInterruptedReportsWhatItMeasured) {
  const std::string json = ::testing::TempDir() + "/interrupted.json";
  auto child =
      ChildProcess::Start({CGELU_LOADTEST_BIN, "--server", servers->echo_target, "--concurrency",
                           "2,4", "--duration", "60", "--warmup", "0.2", "--json", json});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->WaitForLine("concurrency 2: measuring", 30).ok()) << (*child)->output();
  EXPECT_EQ((*child)->Stop(/*grace_s=*/30), 130) << (*child)->output();
  EXPECT_NE((*child)->output().find("c=2 was interrupted after"), std::string::npos)
      << (*child)->output();

  std::ifstream json_in(json);
  const nlohmann::json report = nlohmann::json::parse(json_in, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  ASSERT_EQ(report["levels"].size(), 1u);  // the second level never started
  const auto& level = report["levels"][0];
  EXPECT_TRUE(level["interrupted"].get<bool>());
  EXPECT_GT(level["ok"].get<int64_t>(), 0);
  EXPECT_EQ(level["requests"].get<int64_t>(), level["ok"].get<int64_t>());
  EXPECT_LT(level["window_s"].get<double>(), 60);
}

}  // namespace
}  // namespace cgelu::loadtest
