// cgelu-server: the clipped-GELU inference service. See README.md ("Configuration") or --help.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <iostream>
#include <string>
#include <tuple>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/backends.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

#ifndef CGELU_VERSION
#define CGELU_VERSION "0.0.0"
#endif

namespace {

using cgelu::server::LogEvent;

// Start-up failures: one critical line, then the exit status (2 for bad flags, 1 otherwise).
int Fatal(std::string_view what, const absl::Status& status, int exit_code = 1) {
  LogEvent(spdlog::level::critical, what, {{"error", std::string(status.message())}});
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, which leaves absl::Mutex's deadlock detection on:
  // every Lock() and every mutex destruction (gRPC makes mutexes per call) updates one global graph
  // under one global lock. A server does not want that on its hot path (docs/BENCHMARKS.md, "Where
  // the time goes"); the tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  cgelu::server::ServerOptions options;
  options.version = CGELU_VERSION;
  std::string metrics_address = "0.0.0.0:8002";
  std::string backend_name = "cpu";
  std::string approximate = "none";
  std::string log_format = "text";
  std::string log_level = "info";
  std::string latency_buckets, batch_requests_buckets, batch_elements_buckets;
  int kernel_threads = 0;
  double drain_timeout_s = 30;
  auto& batching = options.batching;
  batching.max_batch_requests = 64;
  batching.max_batch_elements = size_t{1} << 22;
  batching.max_queue_delay_us = 100;
  batching.max_queue_size = 1024;
  batching.num_workers = 1;

  CLI::App app{"cgelu-server: clipped GELU over the Open Inference Protocol (KServe v2) gRPC API"};
  app.set_version_flag("--version", std::string("cgelu-server ") + CGELU_VERSION);
  app.add_option("--grpc-address", options.grpc_address, "gRPC listen address HOST:PORT (port 0: any)")
      ->capture_default_str();
  app.add_option("--metrics-address", metrics_address,
                 "Prometheus /metrics listen address HOST:PORT; empty turns metrics off")
      ->capture_default_str();
  app.add_option("--backend", backend_name, "Kernel backend")
      ->capture_default_str()
      ->check(CLI::IsMember(cgelu::server::AvailableBackends()));
  app.add_option("--kernel-threads", kernel_threads,
                 "Threads one batch may use in the kernel (0: all hardware threads)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--model-name", options.model.name, "Name the model is served under")
      ->capture_default_str();
  app.add_option("--min", options.model.defaults.min, "Default lower bound (per-request 'min' overrides)")
      ->capture_default_str();
  app.add_option("--max", options.model.defaults.max, "Default upper bound (per-request 'max' overrides)")
      ->capture_default_str();
  app.add_option("--approximate", approximate,
                 "Default GELU form: none (erf) or tanh (per-request 'approximate' overrides)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "tanh"}));
  app.add_option("--max-batch-requests", batching.max_batch_requests,
                 "Most requests in one batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-batch-elements", batching.max_batch_elements,
                 "Most elements in one batch (a larger request runs alone)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queue-delay-us", batching.max_queue_delay_us,
                 "Longest a request waits for others to join its batch, in microseconds")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-queue-size", batching.max_queue_size,
                 "Requests waiting before new ones are refused with UNAVAILABLE")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-workers", batching.num_workers, "Batches run in parallel")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "Largest gRPC message accepted or sent, in bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--drain-timeout-s", drain_timeout_s,
                 "On SIGINT/SIGTERM, how long accepted requests may take to finish, in seconds")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--latency-buckets", latency_buckets,
                 "Latency histogram bounds in seconds, comma separated (default 1us..10s)");
  app.add_option("--batch-requests-buckets", batch_requests_buckets,
                 "Batch-size histogram bounds in requests, comma separated (default 1..1024)");
  app.add_option("--batch-elements-buckets", batch_elements_buckets,
                 "Batch-size histogram bounds in elements, comma separated (default 1..2^26)");
  app.add_option("--log-format", log_format, "Log line format")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // CLI11 reports flag syntax errors itself, as plain text: the log format is not known yet. From
  // here on every start-up error is a structured line. A bad --log-level is logged in the chosen
  // format at the default level; only a format the logger cannot build stays plain text.
  if (auto status = cgelu::server::SetUpLogging(log_format, log_level); !status.ok()) {
    if (!cgelu::server::SetUpLogging(log_format, "info").ok()) {
      std::cerr << "cgelu-server: " << status.message() << "\n";
      return 2;
    }
    return Fatal("bad --log-level", status, 2);
  }
  options.model.defaults.approximate =
      approximate == "tanh" ? cgelu::kernels::Approximate::kTanh : cgelu::kernels::Approximate::kNone;
  if (auto status = cgelu::kernels::ValidateParams(options.model.defaults); !status.ok()) {
    return Fatal("bad --min/--max", status, 2);
  }

  // Signals are taken synchronously by this thread (sigwait), so every thread started from here on
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto backend = cgelu::server::MakeBackend(backend_name, kernel_threads);
  if (!backend.ok()) return Fatal("cannot create backend", backend.status());

  std::unique_ptr<cgelu::server::ServerMetrics> metrics;
  int metrics_port = 0;
  {
    cgelu::server::PrometheusMetricsOptions metrics_options;
    metrics_options.address = metrics_address;
    metrics_options.backend = backend_name;
    metrics_options.version = CGELU_VERSION;
    metrics_options.models = {options.model.name};
    metrics_options.max_queue_size = batching.max_queue_size;
    for (auto [flag, csv, out] :
         {std::tuple{"bad --latency-buckets", &latency_buckets, &metrics_options.latency_buckets_s},
          std::tuple{"bad --batch-requests-buckets", &batch_requests_buckets,
                     &metrics_options.batch_requests_buckets},
          std::tuple{"bad --batch-elements-buckets", &batch_elements_buckets,
                     &metrics_options.batch_elements_buckets}}) {
      if (csv->empty()) continue;
      auto parsed = cgelu::server::ParseBuckets(*csv);
      if (!parsed.ok()) return Fatal(flag, parsed.status(), 2);
      *out = *std::move(parsed);
    }
    auto prometheus = cgelu::server::MakePrometheusMetrics(metrics_options);
    if (!prometheus.ok()) return Fatal("cannot start metrics", prometheus.status());
    metrics_port = (*prometheus)->port();
    metrics = *std::move(prometheus);
  }

  auto server = cgelu::server::Server::Create(options, *std::move(backend), std::move(metrics));
  if (!server.ok()) return Fatal("cannot start server", server.status());
  const auto& b = options.batching;
  LogEvent(spdlog::level::info, "server started",
           {{"version", CGELU_VERSION},
            {"grpc_port", (*server)->grpc_port()},
            {"grpc_address", options.grpc_address},
            {"metrics_port", metrics_port},
            {"metrics_address", metrics_address},
            {"backend", backend_name},
            {"model", options.model.name},
            {"min", options.model.defaults.min},
            {"max", options.model.defaults.max},
            {"approximate", approximate},
            {"max_batch_requests", b.max_batch_requests},
            {"max_batch_elements", b.max_batch_elements},
            {"max_queue_delay_us", b.max_queue_delay_us},
            {"max_queue_size", b.max_queue_size},
            {"batch_workers", b.num_workers}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  const auto started = std::chrono::steady_clock::now();
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(drain_timeout_s));
  (*server)->BeginDrain();
  LogEvent(spdlog::level::info, "draining",
           {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
            {"queued_requests", (*server)->scheduler().NumEnqueuedTasks()},
            {"drain_timeout_s", drain_timeout_s}});
  // A backend stuck in a batch would keep Drain() waiting past its deadline; the process must
  // still leave on time, so the wait is bounded here.
  auto drained = std::async(std::launch::async, [&] { return (*server)->Drain(deadline); });
  if (drained.wait_until(deadline + std::chrono::seconds(1)) != std::future_status::ready ||
      !drained.get()) {
    LogEvent(spdlog::level::err, "drain timed out; exiting with requests unfinished",
             {{"drain_timeout_s", drain_timeout_s}});
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }
  const double drain_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // Destroyed first so that its last lines (suppressed failure counts) come before this one.
  server->reset();
  LogEvent(spdlog::level::info, "server stopped", {{"drain_seconds", drain_seconds}});
  spdlog::default_logger()->flush();
  return 0;
}
