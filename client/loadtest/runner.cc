#include "runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cgelu/client/npy.h"
#include "grpcpp/grpcpp.h"

namespace cgelu::loadtest {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int64_t kLateThresholdNs = 1'000'000;
constexpr int64_t kProgressPeriodNs = 500'000'000;

std::string ChannelStateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "UNKNOWN";
}

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

// One level's shared state; lives on RunLevel's stack until every call has finished.
struct LoadRunner::Level {
  bool open_loop = false;
  int64_t measure_start_ns = 0;
  int64_t measure_end_ns = INT64_MAX;  // sends scheduled at or after this are not made
  int64_t max_measured = INT64_MAX;
  int64_t verify_every = 0;             // 0: no verification
  std::atomic<int64_t> window_sent{0};  // window requests whose RPC was started (result.h)
  std::atomic<uint64_t> sequence{0};    // picks payloads (and channels in open loop)

  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;              // guarded by mu
  int64_t measured_done = 0;          // guarded by mu
  int64_t closed_loop_claimed = 0;    // guarded by mu; window sends granted, <= max_measured
  int64_t window_end_ns = INT64_MAX;  // guarded by mu; set early by --requests
  int64_t ok_seen = 0;                // guarded by mu; for progress
  LevelResult result;                 // guarded by mu
};

struct LoadRunner::Call {
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  size_t channel = 0;
  size_t payload = 0;
  int64_t scheduled_ns = 0;
  bool measured = false;
};

absl::StatusOr<std::unique_ptr<LoadRunner>> LoadRunner::Create(const LoadTestConfig& config,
                                                               Clock& clock) {
  std::unique_ptr<LoadRunner> runner(new LoadRunner(config, clock));
  if (config.infer.min) runner->clip_.min = *config.infer.min;
  if (config.infer.max) runner->clip_.max = *config.infer.max;
  runner->clip_.tanh = config.infer.approximate.value_or("none") == "tanh";

  if (!config.input_npy.empty()) {
    auto tensor = client::ReadNpy(config.input_npy);
    if (!tensor.ok()) return tensor.status();
    auto payload = MakePayload(*std::move(tensor), runner->clip_);
    if (!payload.ok()) return payload.status();
    runner->payloads_.push_back(*std::move(payload));
  } else {
    auto payloads = MakeRandomPayloads(config.shape, config.datatype, config.distinct_inputs,
                                       config.seed, runner->clip_);
    if (!payloads.ok()) return payloads.status();
    runner->payloads_ = *std::move(payloads);
  }
  for (const Payload& payload : runner->payloads_) {
    client::BuildInferRequest(payload.input, config.infer, &runner->requests_.emplace_back());
  }

  const int connections = config.connections > 0 ? config.connections : AutoConnections(config);
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(config.connect_timeout_s * 1000));
  for (int i = 0; i < connections; ++i) {
    client::ChannelOptions options = config.channel;
    options.channel_index = i;
    auto channel = client::MakeChannel(options);
    if (!channel.ok()) return channel.status();
    if (!(*channel)->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrFormat(
          "cannot connect to %s within %g s (channel state %s)", config.channel.target,
          config.connect_timeout_s, ChannelStateName((*channel)->GetState(false))));
    }
    runner->stubs_.push_back(inference::GRPCInferenceService::NewStub(*channel));
    runner->channels_.push_back(*std::move(channel));
  }

  // One request through the whole path, so a wrong model name or shape is one clear error
  // instead of a run full of failures.
  client::Client probe(runner->channels_.front());
  auto output = probe.Infer(runner->payloads_.front().input, config.infer);
  if (!output.ok()) {
    return absl::Status(output.status().code(),
                        absl::StrCat("the first request to ", config.channel.target,
                                     " failed: ", output.status().message()));
  }
  return runner;
}

RunDescription LoadRunner::Describe() const {
  RunDescription d;
  d.label = config_.label;
  d.target = config_.channel.target;
  d.model = config_.infer.model;
  d.open_loop = config_.mode == LoopMode::kOpen;
  d.arrival = config_.arrival == Arrival::kPoisson ? "poisson" : "constant";
  d.connections = connections();
  const client::Tensor& input = payloads_.front().input;
  d.payload = absl::StrCat(input.datatype, " [", absl::StrJoin(input.shape, ","), "]");
  d.warmup_s = config_.warmup_s;
  d.duration_s = config_.duration_s;
  d.requests = config_.requests;
  d.verify = config_.verify;
  return d;
}

void LoadRunner::Issue(Level& level, size_t channel, int64_t scheduled_ns, bool measured) {
  auto* call = new Call;
  call->channel = channel;
  call->payload = level.sequence.fetch_add(1, std::memory_order_relaxed) % requests_.size();
  call->scheduled_ns = scheduled_ns;
  call->measured = measured;
  // Counted before the RPC starts: once it has, its callback may end the level at any moment.
  if (measured) level.window_sent.fetch_add(1, std::memory_order_relaxed);
  call->context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(config_.timeout_ms));
  stubs_[channel]->async()->ModelInfer(
      &call->context, &requests_[call->payload], &call->response,
      [this, &level, call](grpc::Status status) { OnDone(level, call, status); });
}

void LoadRunner::Cancel() {
  int64_t expected = INT64_MAX;
  cancelled_at_ns_.compare_exchange_strong(expected, clock_.NowNs());
}

bool LoadRunner::NextClosedLoopSend(Level& level, int64_t now_ns, bool* measured) {
  if (now_ns >= level.measure_end_ns || now_ns >= cancelled_at_ns_.load()) return false;
  *measured = now_ns >= level.measure_start_ns;
  if (!*measured) return true;
  if (level.closed_loop_claimed >= level.max_measured) return false;
  ++level.closed_loop_claimed;
  return true;
}

void LoadRunner::OnDone(Level& level, Call* call, const grpc::Status& status) {
  const int64_t now = clock_.NowNs();
  bool verify_this = false;
  {
    std::lock_guard lock(level.mu);
    LevelResult& r = level.result;
    if (status.ok()) {
      ++level.ok_seen;
      if (now >= level.measure_start_ns && now < level.window_end_ns &&
          now < cancelled_at_ns_.load()) {
        ++r.ok_in_window;
      }
    }
    if (call->measured) {
      if (status.ok()) {
        ++r.ok;
        r.latency_ns.Record(now - call->scheduled_ns);
        verify_this = level.verify_every > 0 && (r.ok - 1) % level.verify_every == 0;
      } else {
        if (r.first_error.empty()) r.first_error = status.error_message();
        ++r.errors[StatusCodeName(status.error_code())];
      }
      if (++level.measured_done == level.max_measured) {
        // With --requests the window closes at the last measured response (counted above).
        level.window_end_ns = now;
        level.measure_end_ns = std::min(level.measure_end_ns, now);
      }
    }
  }
  if (verify_this) {
    auto output = client::ParseInferResponse(call->response);
    const absl::Status check =
        output.ok() ? VerifyOutput(payloads_[call->payload], *output, clip_) : output.status();
    std::lock_guard lock(level.mu);
    ++level.result.verified;
    if (!check.ok()) {
      if (level.result.mismatches++ == 0)
        level.result.first_mismatch = std::string(check.message());
    }
  }

  const size_t channel = call->channel;
  delete call;
  if (!level.open_loop) {
    bool measured = false;
    bool again;
    {
      std::lock_guard lock(level.mu);  // measure_end_ns may have just been moved
      again = NextClosedLoopSend(level, now, &measured);
    }
    if (again) {
      Issue(level, channel, now, measured);
      return;
    }
  }
  std::lock_guard lock(level.mu);
  --level.in_flight;
  // Notified under the lock: once it is released, RunLevel may return and destroy `level`.
  level.cv.notify_all();
}

LevelResult LoadRunner::RunLevel(double level_value, const ProgressFn& progress) {
  // Without a warm-up the opening scrape comes first, so it does not eat into the window.
  const bool scrape = !config_.metrics_url.empty();
  std::optional<absl::StatusOr<MetricsSnapshot>> before;
  if (scrape && config_.warmup_s <= 0) before = Scrape(config_.metrics_url);

  Level level;
  level.open_loop = config_.mode == LoopMode::kOpen;
  level.result.open_loop = level.open_loop;
  level.result.level = level_value;
  const int64_t t0 = clock_.NowNs();
  level.measure_start_ns = t0 + static_cast<int64_t>(config_.warmup_s * kNsPerS);
  if (config_.duration_s > 0) {
    level.measure_end_ns =
        level.measure_start_ns + static_cast<int64_t>(config_.duration_s * kNsPerS);
    level.window_end_ns = level.measure_end_ns;
  }
  if (config_.requests > 0) level.max_measured = config_.requests;
  if (config_.verify) {
    level.verify_every =
        config_.verify_fraction > 0
            ? std::max<int64_t>(1, static_cast<int64_t>(1.0 / config_.verify_fraction + 0.5))
            : INT64_MAX;  // only the first response
  }

  std::thread pacer;
  PacerStats pacer_stats;
  if (level.open_loop) {
    PacerOptions options;
    options.start_ns = t0;
    options.stop_ns = level.measure_end_ns;
    options.measure_from_ns = level.measure_start_ns;
    options.max_measured_sends = level.max_measured;
    options.late_threshold_ns = kLateThresholdNs;
    {
      std::lock_guard lock(level.mu);
      level.in_flight = 1;  // the pacer itself, so the level cannot look finished before it is
    }
    pacer = std::thread([&, options] {
      OpenLoopPacer loop(clock_, ArrivalSchedule(config_.arrival, level_value, config_.seed),
                         options);
      pacer_stats = loop.Run([&](int64_t scheduled, bool measured) {
        if (clock_.NowNs() >= cancelled_at_ns_.load()) return false;
        {
          std::unique_lock lock(level.mu);
          level.cv.wait(lock, [&] { return level.in_flight <= config_.max_in_flight; });
          ++level.in_flight;
        }
        Issue(level, level.sequence.load(std::memory_order_relaxed) % stubs_.size(), scheduled,
              measured);
        return true;
      });
      std::lock_guard lock(level.mu);
      --level.in_flight;
      level.cv.notify_all();
    });
  } else {
    const int concurrency = static_cast<int>(level_value);
    for (int slot = 0; slot < concurrency; ++slot) {
      bool measured = false;
      {
        // Slots started earlier may already be completing and moving the window.
        std::lock_guard lock(level.mu);
        if (!NextClosedLoopSend(level, t0, &measured)) break;
        ++level.in_flight;
      }
      Issue(level, static_cast<size_t>(slot) % stubs_.size(), t0, measured);
    }
  }

  // Pace progress and the "before" scrape; wait for every call to end.
  const std::string what = level.open_loop ? absl::StrFormat("rate %g/s", level_value)
                                           : absl::StrFormat("concurrency %g", level_value);
  while (true) {
    int64_t ok_seen, done, measure_end;
    {
      std::unique_lock lock(level.mu);
      const int64_t now = clock_.NowNs();
      int64_t wake = now + kProgressPeriodNs;
      if (scrape && !before) wake = std::min(wake, level.measure_start_ns);
      level.cv.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(wake - now, 0)),
                        [&] { return level.in_flight == 0; });
      if (level.in_flight == 0) break;
      ok_seen = level.ok_seen;
      done = level.measured_done;
      measure_end = level.measure_end_ns;
    }
    const int64_t now = clock_.NowNs();
    if (scrape && !before && now >= level.measure_start_ns) {
      before = Scrape(config_.metrics_url);
    }
    if (progress) {
      const double elapsed = static_cast<double>(now - t0) / kNsPerS;
      std::string phase;
      if (now < level.measure_start_ns) {
        phase = absl::StrFormat("warm-up %.1f/%g s", elapsed, config_.warmup_s);
      } else if (now < measure_end) {
        phase = config_.duration_s > 0
                    ? absl::StrFormat("measuring %.1f/%g s",
                                      static_cast<double>(now - level.measure_start_ns) / kNsPerS,
                                      config_.duration_s)
                    : absl::StrFormat("measuring %d/%d requests", done, config_.requests);
      } else {
        phase = "draining";
      }
      progress(absl::StrFormat("%s: %s, %d ok responses", what, phase, ok_seen));
    }
  }
  if (pacer.joinable()) pacer.join();
  const int64_t drained_ns = clock_.NowNs();

  // Every callback has finished: the level's state is no longer shared.
  LevelResult result = std::move(level.result);
  int64_t window_end = level.window_end_ns == INT64_MAX ? drained_ns : level.window_end_ns;
  if (cancelled_at_ns_.load() < window_end) {
    result.interrupted = true;
    window_end = cancelled_at_ns_.load();
  }
  result.window_s =
      static_cast<double>(std::max<int64_t>(window_end - level.measure_start_ns, 1)) / kNsPerS;
  result.sent = level.window_sent.load();
  result.throughput_rps = static_cast<double>(result.ok_in_window) / result.window_s;
  if (level.open_loop) {
    // A generator that fell behind sends the window's requests over a longer time: that is the
    // rate the server actually saw offered.
    const double sending_s =
        static_cast<double>(pacer_stats.last_measured_sent_ns - level.measure_start_ns) / kNsPerS;
    result.sent_rps =
        static_cast<double>(pacer_stats.measured_sends) / std::max(result.window_s, sending_s);
    result.late_sends = pacer_stats.late_sends;
    result.send_lateness_ns = pacer_stats.lateness_ns;
    result.generator_fell_behind = pacer_stats.measured_sends > 0 &&
                                   static_cast<double>(pacer_stats.late_sends) >
                                       0.01 * static_cast<double>(pacer_stats.measured_sends);
  }
  if (scrape) {
    auto after = Scrape(config_.metrics_url);
    if (!before || !before->ok()) {
      result.server_error =
          before ? std::string(before->status().message()) : "no scrape before the level";
    } else if (!after.ok()) {
      result.server_error = std::string(after.status().message());
    } else {
      result.server = Difference(**before, *after, config_.infer.model);
    }
  }
  return result;
}

}  // namespace cgelu::loadtest
