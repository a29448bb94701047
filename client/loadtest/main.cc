// cgelu-loadtest: see `cgelu-loadtest --help` and docs/BENCHMARKS.md ("Service load test").
// Exit codes: 0 done; 1 the server could not be used or an output file could not be written;
// 2 bad arguments; 3 --verify found mismatching responses; 130 interrupted (Ctrl-C or SIGTERM:
// the level in progress ends early and the report covers what was measured; a second signal
// exits at once).
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "args.h"
#include "report.h"
#include "runner.h"

namespace {

using cgelu::loadtest::LevelResult;

int Fail(const std::string& message) {
  std::fprintf(stderr, "cgelu-loadtest: %s\n", message.c_str());
  return 1;
}

int Plot(const cgelu::loadtest::LoadTestConfig& config) {
  std::vector<cgelu::loadtest::ChartSeries> series;
  for (const std::string& path : config.plot_json) {
    std::ifstream in(path);
    nlohmann::json report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    auto one = cgelu::loadtest::SeriesFromJson(report);
    if (!one.ok()) return Fail(absl::StrFormat("%s: %s", path, one.status().message()));
    series.push_back(*std::move(one));
  }
  auto status = cgelu::loadtest::WriteFile(
      config.svg_path, cgelu::loadtest::RenderSvg(series, "cgelu-loadtest: throughput vs latency"));
  return status.ok() ? 0 : Fail(std::string(status.message()));
}

}  // namespace

int main(int argc, char** argv) {
  // As in cgelu-server: Debian's abseil leaves absl::Mutex's deadlock detection on (a global graph
  // under a global lock on every Lock()), which would put load-generator overhead into the figures.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto parsed = cgelu::loadtest::ParseArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "cgelu-loadtest: %s (see --help)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(parsed->help->c_str(), stdout);
    return 0;
  }
  const cgelu::loadtest::LoadTestConfig& config = parsed->config;
  if (!config.plot_json.empty()) return Plot(config);

  // Blocked before gRPC starts its threads, so they inherit the mask and the thread below is the
  // one that takes the signal.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto runner = cgelu::loadtest::LoadRunner::Create(config);
  if (!runner.ok()) return Fail(std::string(runner.status().message()));

  std::atomic<bool> interrupted{false};
  std::atomic<bool> finished{false};
  cgelu::loadtest::LoadRunner* runner_ptr = runner->get();
  std::thread signals([stop_signals, &interrupted, &finished, runner_ptr] {
    for (int signal_number = 0;; signal_number = 0) {
      sigwait(&stop_signals, &signal_number);
      if (finished.load()) return;
      if (interrupted.exchange(true)) std::_Exit(130);
      std::fprintf(stderr, "\ncgelu-loadtest: interrupted; finishing the requests in flight\n");
      runner_ptr->Cancel();
    }
  });
  // Joined before anything it refers to goes away: main wakes it with a signal of its own.
  auto stop_signal_thread = [&] {
    finished.store(true);
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
  };

  // On a terminal the progress line rewrites itself; in a log it appears at the start of each level
  // and every 10 s.
  const bool tty = isatty(fileno(stderr)) != 0;
  int64_t progress_calls = 0;
  const std::vector<double> levels =
      config.mode == cgelu::loadtest::LoopMode::kOpen
          ? config.rate_levels
          : std::vector<double>(config.concurrency_levels.begin(), config.concurrency_levels.end());
  std::vector<LevelResult> results;
  for (size_t i = 0; i < levels.size() && !interrupted.load(); ++i) {
    const std::string prefix = absl::StrFormat("[%d/%d] ", i + 1, levels.size());
    progress_calls = 0;
    cgelu::loadtest::ProgressFn progress;
    if (config.progress) {
      progress = [&](const std::string& line) {
        if (tty) {
          std::fprintf(stderr, "\r\033[K%s%s", prefix.c_str(), line.c_str());
        } else if (progress_calls++ % 20 == 0) {
          std::fprintf(stderr, "%s%s\n", prefix.c_str(), line.c_str());
        }
      };
    }
    results.push_back((*runner)->RunLevel(levels[i], progress));
    if (config.progress && tty) std::fprintf(stderr, "\r\033[K");
  }

  stop_signal_thread();

  const cgelu::loadtest::RunDescription run = (*runner)->Describe();
  cgelu::loadtest::PrintTable(std::cout, run, results, config.metrics_url);
  std::cout.flush();  // the table first, then what stderr has to say about it
  for (const std::string& warning : cgelu::loadtest::Warnings(results))
    std::fprintf(stderr, "cgelu-loadtest: %s\n", warning.c_str());

  int exit_code = 0;
  auto write = [&](const std::string& path, const std::string& text) {
    if (path.empty()) return;
    auto status = cgelu::loadtest::WriteFile(path, text);
    if (!status.ok()) exit_code = Fail(std::string(status.message()));
  };
  write(config.csv_path, cgelu::loadtest::ToCsv(run, results));
  write(config.json_path, cgelu::loadtest::ToJson(run, results).dump(2) + "\n");
  write(config.svg_path, cgelu::loadtest::RenderSvg({cgelu::loadtest::SeriesOf(run, results)},
                                                    absl::StrFormat("%s: throughput vs latency, %s",
                                                                    run.label, run.payload)));
  if (exit_code != 0) return exit_code;
  if (interrupted.load()) return 130;
  for (const LevelResult& level : results) {
    if (level.mismatches > 0) return 3;
  }
  return 0;
}
