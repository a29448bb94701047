#include "server/logging.h"

#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/formatter.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace cgelu::server {
namespace {

// The fields of the event being logged on this thread. spdlog's loggers here are synchronous, so
// the formatter runs on the thread that called LogEvent, inside that call.
thread_local const std::initializer_list<LogField>* current_fields = nullptr;

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

std::string Timestamp(const spdlog::details::log_msg& msg) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromChrono(msg.time), absl::UTCTimeZone());
}

std::string FieldKey(std::string_view key) {
  if (key == "ts" || key == "level" || key == "msg") {
    return absl::StrCat("_", absl::string_view(key.data(), key.size()));
  }
  return std::string(key);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json line;
    line["ts"] = Timestamp(msg);
    line["level"] = LevelName(msg.level);
    line["msg"] = std::string_view(msg.payload.data(), msg.payload.size());
    if (current_fields != nullptr) {
      for (const LogField& field : *current_fields) {
        std::visit([&](const auto& value) { line[FieldKey(field.key())] = value; }, field.value());
      }
    }
    // Invalid UTF-8 (a client-supplied model name, say) is replaced, never thrown about.
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// logfmt-style: values with spaces, quotes or '=' are quoted, so lines stay machine-splittable.
void AppendTextValue(std::string& out, const std::string& value) {
  const bool quote = value.empty() || value.find_first_of(" \"=\t\n") != std::string::npos;
  if (!quote) {
    out += value;
    return;
  }
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
}

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = absl::StrCat(Timestamp(msg), " ", std::string(LevelName(msg.level)), " ",
                                    absl::string_view(msg.payload.data(), msg.payload.size()));
    if (current_fields != nullptr) {
      for (const LogField& field : *current_fields) {
        absl::StrAppend(&line, " ", FieldKey(field.key()), "=");
        std::visit(
            [&](const auto& value) {
              using T = std::decay_t<decltype(value)>;
              if constexpr (std::is_same_v<T, std::string>) {
                AppendTextValue(line, value);
              } else if constexpr (std::is_same_v<T, bool>) {
                line += value ? "true" : "false";
              } else {
                absl::StrAppend(&line, value);
              }
            },
            field.value());
      }
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

}  // namespace

absl::Status SetUpLogging(std::string_view format, std::string_view level,
                          std::shared_ptr<spdlog::sinks::sink> sink) {
  std::unique_ptr<spdlog::formatter> formatter;
  if (format == "text") {
    formatter = std::make_unique<TextFormatter>();
  } else if (format == "json") {
    formatter = std::make_unique<JsonFormatter>();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log format '", std::string(format), "' is not one of: text, json"));
  }
  const std::string lower = absl::AsciiStrToLower(absl::string_view(level.data(), level.size()));
  spdlog::level::level_enum parsed;
  if (lower == "warn" || lower == "warning") {
    parsed = spdlog::level::warn;
  } else if (lower == "error") {
    parsed = spdlog::level::err;
  } else if (lower == "trace" || lower == "debug" || lower == "info" || lower == "critical" ||
             lower == "off") {
    parsed = spdlog::level::from_str(lower);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log level '", std::string(level),
                     "' is not one of: trace, debug, info, warn, error, critical, off"));
  }
  if (sink == nullptr) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("cgelu", std::move(sink));
  logger->set_formatter(std::move(formatter));
  logger->set_level(parsed);
  // Every line reaches the collector even if the process is killed right after.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  struct FieldsScope {
    explicit FieldsScope(const std::initializer_list<LogField>* fields) { current_fields = fields; }
    ~FieldsScope() { current_fields = nullptr; }
  } scope(&fields);
  logger->log(level, spdlog::string_view_t(msg.data(), msg.size()));
}

std::string LogRequestId(std::string_view client_id) {
  if (!client_id.empty()) return std::string(client_id);
  static std::atomic<uint64_t> next{1};
  return absl::StrCat("srv-", next.fetch_add(1, std::memory_order_relaxed));
}

namespace {
constexpr int64_t kRateWindowUs = 1'000'000;
}  // namespace

LogRateLimiter::LogRateLimiter(std::string suppressed_msg, std::string key_field,
                               std::vector<std::string> key_names, int max_lines_per_second,
                               const batching::Clock* clock)
    : suppressed_msg_(std::move(suppressed_msg)),
      key_field_(std::move(key_field)),
      key_names_(std::move(key_names)),
      max_lines_per_second_(max_lines_per_second),
      clock_(clock),
      windows_(key_names_.size()) {
  const int64_t now_us = clock_->NowMicros();
  for (Window& window : windows_) window.start_us = now_us;
}

bool LogRateLimiter::Allow(size_t key) {
  const int64_t now_us = clock_->NowMicros();
  uint64_t to_report = 0;
  int64_t reported_window_us = 0;
  bool allowed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Window& window = windows_[key];
    if (now_us - window.start_us >= kRateWindowUs) {
      to_report = window.suppressed;
      reported_window_us = now_us - window.start_us;
      window = Window{now_us, 0, 0};
    }
    allowed = window.logged < max_lines_per_second_;
    if (allowed) {
      ++window.logged;
    } else {
      ++window.suppressed;
    }
  }
  if (to_report > 0) Report(key, to_report, reported_window_us);
  return allowed;
}

void LogRateLimiter::Flush() {
  const int64_t now_us = clock_->NowMicros();
  std::vector<std::pair<uint64_t, int64_t>> to_report(key_names_.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t key = 0; key < to_report.size(); ++key) {
      to_report[key] = {windows_[key].suppressed, now_us - windows_[key].start_us};
      windows_[key].suppressed = 0;
    }
  }
  for (size_t key = 0; key < to_report.size(); ++key) {
    if (to_report[key].first > 0) Report(key, to_report[key].first, to_report[key].second);
  }
}

void LogRateLimiter::Report(size_t key, uint64_t suppressed, int64_t window_us) const {
  LogEvent(spdlog::level::warn, suppressed_msg_,
           {{key_field_, key_names_[key]},
            {"suppressed", suppressed},
            {"window_s", static_cast<double>(window_us) * 1e-6}});
}

}  // namespace cgelu::server
