// Structured logging on top of spdlog: one line per event, either human-readable text
//   2024-05-01T12:00:00.123456Z info server started address=0.0.0.0:8001 backend=cpu
// or one JSON object per line (--log-format json), ready for Loki, Elasticsearch or jq:
//   {"ts":"2024-05-01T12:00:00.123456Z","level":"info","msg":"server
//   started","address":"0.0.0.0:8001","backend":"cpu"}
// `ts` is UTC with microseconds; `level` is one of trace, debug, info, warn, error, critical.
// Policy (see docs/METRICS.md, "Logs"): one line per start-up and shutdown event and per failed
// request (with its request id), per-failure lines capped per second by LogRateLimiter; nothing per
// successful request at info level.
//
// Plain spdlog calls (spdlog::info(...)) go through the same formatter, without fields.
// Thread-safety: SetUpLogging replaces spdlog's default logger and must run before other threads
// log (at start-up). LogEvent may be called from any thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "server/batching/clock.h"
#include "spdlog/common.h"
#include "spdlog/sinks/sink.h"

namespace cgelu::server {

// `format`: "text" or "json". `level`: trace, debug, info, warn (or warning), error, critical, off.
// INVALID_ARGUMENT, naming the accepted values, for anything else. Logs go to stderr, or to `sink`
// when given (tests capture lines that way).
absl::Status SetUpLogging(std::string_view format, std::string_view level,
                          std::shared_ptr<spdlog::sinks::sink> sink = nullptr);

// One key=value of an event. Numbers and booleans stay numbers and booleans in JSON. Keys should
// be snake_case; the reserved keys ts, level and msg are written with a leading underscore.
class LogField {
 public:
  using Value = std::variant<std::string, int64_t, uint64_t, double, bool>;

  LogField(std::string_view key, std::string_view value) : key_(key), value_(std::string(value)) {}
  LogField(std::string_view key, const char* value) : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, const std::string& value)
      : LogField(key, std::string_view(value)) {}
  LogField(std::string_view key, bool value) : key_(key), value_(value) {}
  LogField(std::string_view key, double value) : key_(key), value_(value) {}
  template <std::signed_integral T>
  LogField(std::string_view key, T value) : key_(key), value_(static_cast<int64_t>(value)) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) LogField(std::string_view key, T value)
      : key_(key), value_(static_cast<uint64_t>(value)) {}

  std::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string_view key_;
  Value value_;
};

// Logs `msg` with `fields` on spdlog's default logger, if `level` is enabled (the fields are not
// even formatted otherwise).
void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields = {});

// The id a request is logged under: the client's `id` when it sent one, else a server-side id
// unique within this process ("srv-1", "srv-2", ...), so every failure line names its request.
// Logging only: the response still echoes the client's id, empty or not (the protocol's rule).
std::string LogRequestId(std::string_view client_id);

// Caps how many lines one kind of event writes, so an overload (every request refused because the
// queue is full, say) cannot flood the log. Events are counted per key (e.g. per failure reason)
// in one-second windows of the injected clock: the first `max_lines_per_second` of a window may be
// logged, the rest are dropped and counted. When the key's next window opens, or at Flush(), one
// warn line reports the count:
//   warn <suppressed_msg> <key_field>=<key name> suppressed=<n> window_s=<seconds it covered>
// Thread-safety: Allow and Flush may be called concurrently; the summary line is written outside
// the lock. `clock` must outlive the limiter.
class LogRateLimiter {
 public:
  LogRateLimiter(std::string suppressed_msg, std::string key_field,
                 std::vector<std::string> key_names, int max_lines_per_second,
                 const batching::Clock* clock);

  // True when the caller may log an event of `key` (an index into key_names) now.
  bool Allow(size_t key);
  // Reports every count not yet reported (at shutdown).
  void Flush();

 private:
  struct Window {
    int64_t start_us = 0;
    int logged = 0;
    uint64_t suppressed = 0;
  };
  void Report(size_t key, uint64_t suppressed, int64_t window_us) const;

  const std::string suppressed_msg_;
  const std::string key_field_;
  const std::vector<std::string> key_names_;
  const int max_lines_per_second_;
  const batching::Clock* const clock_;
  std::mutex mu_;
  std::vector<Window> windows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cgelu::server
