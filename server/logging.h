// Structured logging on top of spdlog: one line per event, either human-readable text
//   2024-05-01T12:00:00.123456Z info server started address=0.0.0.0:8001 backend=cpu
// or one JSON object per line (--log-format json), ready for Loki, Elasticsearch or jq:
//   {"ts":"2024-05-01T12:00:00.123456Z","level":"info","msg":"server
//   started","address":"0.0.0.0:8001","backend":"cpu"}
// `ts` is UTC with microseconds; `level` is one of trace, debug, info, warn, error, critical.
// Policy (see docs/METRICS.md, "Logs"): one line per start-up and shutdown event and per failed
// request (with its request id); nothing per successful request at info level.
//
// Plain spdlog calls (spdlog::info(...)) go through the same formatter, without fields.
// Thread-safety: SetUpLogging replaces spdlog's default logger and must run before other threads
// log (at start-up). LogEvent may be called from any thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
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

}  // namespace cgelu::server
