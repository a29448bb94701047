// Real runs: cgelu-loadtest's runner and binary against the built cgelu-server and
// cgelu-echo-server, started as child processes on loopback addresses, port 0 unless a test needs
// two servers on one port. Short levels (about a second); they check accounting and correctness,
// never speed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "child_process.h"
#include "nlohmann/json.hpp"
#include "runner.h"
#include "server_metrics.h"

namespace cgelu::loadtest {
namespace {

using testing::ChildProcess;
using testing::RunToCompletion;

// A cgelu-server child process with its gRPC port and metrics endpoint.
struct CgeluServer {
  std::unique_ptr<ChildProcess> process;
  std::string grpc_port;
  std::string metrics_url;
};

// Starts cgelu-server on `grpc_address` (HOST:PORT, port 0 picks one) with its metrics on
// 127.0.0.1 and one kernel thread; an error when it does not come up (e.g. the port is taken).
absl::StatusOr<CgeluServer> StartCgelu(const std::string& grpc_address) {
  auto process = ChildProcess::Start({CGELU_SERVER_BIN, "--grpc-address", grpc_address,
                                      "--metrics-address", "127.0.0.1:0", "--kernel-threads", "1"});
  if (!process.ok()) return process.status();
  auto grpc_port = (*process)->WaitForLine(R"(grpc_port[=":]+\s*(\d+))", 30);
  if (!grpc_port.ok()) return grpc_port.status();
  std::smatch match;
  const std::string& log = (*process)->output();
  if (!std::regex_search(log, match, std::regex(R"(metrics_port[=":]+\s*(\d+))"))) {
    return absl::InternalError("cgelu-server did not log its metrics port: " + log);
  }
  return CgeluServer{*std::move(process), *grpc_port,
                     "http://127.0.0.1:" + match[1].str() + "/metrics"};
}

// ModelInfer calls `server` has answered OK so far, by its own cgelu_requests_total.
absl::StatusOr<int64_t> AnsweredOk(const CgeluServer& server) {
  auto snapshot = Scrape(server.metrics_url);
  if (!snapshot.ok()) return snapshot.status();
  double ok = 0;
  for (const MetricSample& sample : snapshot->samples) {
    auto code = sample.labels.find("code");
    if (sample.name == "cgelu_requests_total" && code != sample.labels.end() &&
        code->second == "OK") {
      ok += sample.value;
    }
  }
  return static_cast<int64_t>(ok);
}

// A short level with checks on: 0.2 s warm-up, 1 s measured, 2 connections.
LoadTestConfig Config(const std::string& target) {
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

struct Servers {
  CgeluServer cgelu;
  std::string cgelu_target;
  std::unique_ptr<ChildProcess> echo;
  std::string echo_target;
};
Servers* servers = nullptr;

class RunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    servers = new Servers;
    auto cgelu = StartCgelu("127.0.0.1:0");
    ASSERT_TRUE(cgelu.ok()) << cgelu.status();
    servers->cgelu = *std::move(cgelu);
    servers->cgelu_target = "127.0.0.1:" + servers->cgelu.grpc_port;

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
};

// The accounting of result.h: every window request sent was answered exactly once, as ok or as an
// error, and every ok one has a latency. `sent` is counted as RPCs start and ok and errors as they
// end, so a request counted twice or lost at the window's edges breaks the first equality.
void ExpectCountsAddUp(const LevelResult& r) {
  EXPECT_GT(r.sent, 0);
  EXPECT_EQ(r.sent, r.ok + r.errors_total());
  EXPECT_EQ(r.latency_ns.count(), r.ok);
  EXPECT_LE(r.verified, r.ok);
  EXPECT_GT(r.window_s, 0);
  EXPECT_NEAR(r.throughput_rps, static_cast<double>(r.ok_in_window) / r.window_s, 1e-6);
  EXPECT_GT(r.latency_ns.min(), 0);
  EXPECT_LE(r.latency_ns.Percentile(50), r.latency_ns.Percentile(99));
}

TEST_F(RunTest, ClosedLoopAgainstCgeluAddsUpVerifiesAndReadsTheServerMetrics) {
  LoadTestConfig config = Config(servers->cgelu_target);
  config.metrics_url = servers->cgelu.metrics_url;
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
  EXPECT_EQ(r.sent, 300);
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
  EXPECT_EQ(r.sent, expected);
  EXPECT_EQ(r.send_lateness_ns.count(), r.sent);
}

// The steady clock, except that the `stall_at`-th SleepUntilNs (the open-loop pacer's wait before
// its stall_at-th send) returns with the clock `stall_ns` further on: to the runner the load
// generator stalled that long, as a descheduled or paused process does, and the test need not
// sleep through it. NowNs() may be called from any thread; only the pacer sleeps.
class StallingClock final : public Clock {
 public:
  StallingClock(int stall_at, int64_t stall_ns) : stall_at_(stall_at), stall_ns_(stall_ns) {}
  int64_t NowNs() override { return SteadyClock().NowNs() + offset_ns_.load(); }
  void SleepUntilNs(int64_t deadline_ns) override {
    SteadyClock().SleepUntilNs(deadline_ns - offset_ns_.load());
    if (++sleeps_ == stall_at_) offset_ns_ += stall_ns_;
  }

 private:
  const int stall_at_;
  const int64_t stall_ns_;
  std::atomic<int64_t> offset_ns_{0};
  int sleeps_ = 0;
};

// No coordinated omission, through the real runner: requests the generator sent late still
// count their latency from when they were due. At 200/s (one every 5 ms) the generator stalls for
// 300 ms just before the send due at 200 ms, so the 60 sends due from 200 to 495 ms all leave at
// about 500 ms, 300 down to 5 ms late. Measured from their scheduled times, the 21 due from 200 to
// 300 ms took at least 200 ms, so p90 of the 200 requests is at least that; measured from when
// they actually left, each would take about what an echo takes, far under a millisecond.
TEST_F(RunTest, OpenLoopLatencyCountsFromTheScheduledSendWhenTheGeneratorIsLate) {
  LoadTestConfig config = Config(servers->echo_target);
  config.mode = LoopMode::kOpen;
  config.rate_levels = {200};
  config.warmup_s = 0;
  config.verify = false;
  constexpr int64_t kStallNs = 300'000'000;
  StallingClock clock(/*stall_at=*/41, kStallNs);
  auto runner = LoadRunner::Create(config, clock);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const LevelResult r = (*runner)->RunLevel(200, nullptr);
  ExpectCountsAddUp(r);
  EXPECT_TRUE(r.errors.empty()) << r.first_error;
  EXPECT_EQ(r.sent, 200);
  EXPECT_GE(r.send_lateness_ns.max(), kStallNs);
  EXPECT_GE(r.late_sends, 60);
  EXPECT_TRUE(r.generator_fell_behind);
  // Each request's latency includes its lateness...
  EXPECT_GE(r.latency_ns.max(), r.send_lateness_ns.max());
  // ...and so the late ones dominate the tail.
  EXPECT_GE(r.latency_ns.Percentile(90), 200'000'000)
      << "p50 " << r.latency_ns.Percentile(50) << " ns, max " << r.latency_ns.max() << " ns";
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

// S14: round-robin over two replicas behind one target; each replica's share of the requests is
// within 20% of the other's. The shares are the replicas' own counts (cgelu_requests_total) over a
// measured level that starts once both have answered: round robin sends only to connected
// subchannels, and the channel is ready, and the run may begin, when the first one is.
void ExpectRoundRobinSpreads(const std::string& target, const CgeluServer& a,
                             const CgeluServer& b) {
  LoadTestConfig config = Config(target);
  config.connections = 1;
  config.duration_s = 0;
  config.warmup_s = 0;
  config.requests = 400;
  config.verify = false;
  auto runner = LoadRunner::Create(config);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int64_t a_before = 0, b_before = 0;
  while (true) {
    EXPECT_EQ((*runner)->RunLevel(4, nullptr).ok, 400);
    auto a_ok = AnsweredOk(a), b_ok = AnsweredOk(b);
    ASSERT_TRUE(a_ok.ok()) << a_ok.status();
    ASSERT_TRUE(b_ok.ok()) << b_ok.status();
    a_before = *a_ok;
    b_before = *b_ok;
    if (a_before > 0 && b_before > 0) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "after 20 s of warm-up levels only one replica answers: " << a_before << " and "
        << b_before << " calls";
  }
  const LevelResult r = (*runner)->RunLevel(4, nullptr);
  EXPECT_EQ(r.ok, 400) << r.first_error;
  auto a_after = AnsweredOk(a), b_after = AnsweredOk(b);
  ASSERT_TRUE(a_after.ok()) << a_after.status();
  ASSERT_TRUE(b_after.ok()) << b_after.status();
  const int64_t a_share = *a_after - a_before, b_share = *b_after - b_before;
  EXPECT_EQ(a_share + b_share, 400);
  const auto [low, high] = std::minmax(a_share, b_share);
  EXPECT_GE(static_cast<double>(low), 0.8 * static_cast<double>(high))
      << a_share << " and " << b_share << " calls";
}

// Through gRPC's DNS resolver, as a client in a cluster reaches replicas behind a service name:
// `localhost` resolves to 127.0.0.1 and to ::1, so one replica on each, on the same port, are two
// resolved addresses of dns:///localhost:PORT. (gRPC's default resolver, c-ares, answers ::1 for
// localhost without asking a DNS server even where /etc/hosts lists only 127.0.0.1, as on the
// development machine; getaddrinfo there gives 127.0.0.1 alone.)
TEST_F(RunTest, RoundRobinOverADnsNameSpreadsRequestsOverReplicas) {
  {
    const int fd = socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 loopback{};
    loopback.sin6_family = AF_INET6;
    loopback.sin6_addr = in6addr_loopback;
    const bool bound =
        fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
    if (fd >= 0) close(fd);
    if (!bound) GTEST_SKIP() << "this host has no IPv6 loopback: " << std::strerror(errno);
  }
  {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    bool has_127_0_0_1 = false;
    if (getaddrinfo("localhost", nullptr, &hints, &found) == 0) {
      for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        has_127_0_0_1 |= v4->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
      }
      freeaddrinfo(found);
    }
    if (!has_127_0_0_1) GTEST_SKIP() << "localhost does not resolve to 127.0.0.1 on this host";
  }

  // The [::1] replica picks the port; the 127.0.0.1 one must then get the same, which another
  // process may hold, so a few ports are tried.
  CgeluServer v6, v4;
  for (int attempt = 0;; ++attempt) {
    auto started_v6 = StartCgelu("[::1]:0");
    ASSERT_TRUE(started_v6.ok()) << started_v6.status();
    v6 = *std::move(started_v6);
    if (attempt == 0) {
      // Only the [::1] replica listens yet: a pick_first channel to the name connects if and only
      // if gRPC's resolver gave ::1 for it.
      LoadTestConfig probe = Config("dns:///localhost:" + v6.grpc_port);
      probe.channel.load_balancing_policy = "pick_first";
      probe.connect_timeout_s = 10;
      auto reached = LoadRunner::Create(probe);
      if (!reached.ok()) {
        GTEST_SKIP() << "gRPC's DNS resolver does not give ::1 for localhost here: "
                     << reached.status();
      }
    }
    auto started_v4 = StartCgelu("127.0.0.1:" + v6.grpc_port);
    if (started_v4.ok()) {
      v4 = *std::move(started_v4);
      break;
    }
    ASSERT_LT(attempt, 4) << "no port free on both 127.0.0.1 and ::1: " << started_v4.status();
  }
  ExpectRoundRobinSpreads("dns:///localhost:" + v6.grpc_port, v6, v4);
}

// The same balancing from a static address list (gRPC's ipv4: scheme), which needs no IPv6 and
// no resolver: the replicas listen on one port at 127.0.0.1 and 127.0.0.2.
TEST_F(RunTest, RoundRobinOverAnAddressListSpreadsRequestsOverReplicas) {
  auto first = StartCgelu("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = StartCgelu("127.0.0.2:" + first->grpc_port);
  ASSERT_TRUE(second.ok()) << second.status();
  ExpectRoundRobinSpreads("ipv4:127.0.0.1:" + first->grpc_port + ",127.0.0.2:" + first->grpc_port,
                          *first, *second);
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
  // Files that cannot be used are bad arguments too, found before anything connects (the server
  // named is the real one, so only the argument can make the run fail).
  const std::string bad_npy = ::testing::TempDir() + "/bad.npy";
  std::ofstream(bad_npy) << "\x93NUMPY but not really";
  const std::vector<std::vector<std::string>> bad = {
      {"--concurrency", "0"},
      {"--tls-ca", "/no/such/ca.pem"},
      {"--tls-cert", "/no/such/cert.pem", "--tls-key", "/no/such/key.pem"},
      {"--input", bad_npy},
      {"--input", "/no/such/input.npy"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {CGELU_LOADTEST_BIN, "--server", servers->echo_target};
    argv.insert(argv.end(), args.begin(), args.end());
    auto run = RunToCompletion(argv, 30);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->first, 2) << args[0] << ": " << run->second;
    EXPECT_EQ(run->second.rfind("cgelu-loadtest: ", 0), 0u) << run->second;
    EXPECT_EQ(run->second.find('\n'), run->second.size() - 1) << run->second;
  }
}

TEST_F(RunTest, BinaryPrintsTheTableOnStdoutAndWarningsOnStderr) {
  // One request in flight at most, due every 10 us: the generator cannot keep up.
  const std::string table = ::testing::TempDir() + "/table.txt";
  auto run = RunToCompletion(
      {CGELU_LOADTEST_BIN, "--server", servers->echo_target, "--rate", "100000", "--max-in-flight",
       "1", "--requests", "300", "--warmup", "0", "--no-progress"},
      60, table);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->first, 0) << run->second;
  const std::string& stderr_text = run->second;
  std::ifstream table_in(table);
  std::stringstream stdout_text;
  stdout_text << table_in.rdbuf();
  EXPECT_NE(stdout_text.str().find("rate/s"), std::string::npos) << stdout_text.str();
  EXPECT_EQ(stdout_text.str().find("warning"), std::string::npos) << stdout_text.str();
  EXPECT_NE(stderr_text.find("cgelu-loadtest: warning: at 100000/s the load generator could not "
                             "keep up"),
            std::string::npos)
      << stderr_text;
  EXPECT_EQ(stderr_text.find("rate/s"), std::string::npos) << stderr_text;
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
    EXPECT_EQ(level["sent"].get<int64_t>(), level["ok"].get<int64_t>());
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
  EXPECT_EQ(level["sent"].get<int64_t>(), level["ok"].get<int64_t>());
  EXPECT_LT(level["window_s"].get<double>(), 60);
}

}  // namespace
}  // namespace cgelu::loadtest
