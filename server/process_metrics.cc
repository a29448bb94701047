#include "server/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cgelu::server {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

prometheus::MetricFamily OneValue(std::string name, std::string help, prometheus::MetricType type,
                                  double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{std::move(name), std::move(help), type, {metric}};
}

absl::string_view View(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

}  // namespace

absl::StatusOr<ProcStat> ParseProcStat(std::string_view stat_text, double ticks_per_second,
                                       double page_bytes) {
  const absl::string_view text = View(stat_text);
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("proc stat: no ')' closing the command name");
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipWhitespace());
  // fields[0] is field 3 of proc(5) (state); field N is fields[N - 3].
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3,
                   kRss = 24 - 3;
  if (fields.size() <= kRss) {
    return absl::InvalidArgumentError(
        absl::StrCat("proc stat: ", fields.size() + 2, " fields, need at least ", kRss + 3 + 1));
  }
  auto number = [&](size_t index, double& out) {
    return absl::SimpleAtod(absl::StripAsciiWhitespace(fields[index]), &out);
  };
  double utime, stime, start, vsize, rss;
  if (!number(kUtime, utime) || !number(kStime, stime) || !number(kStart, start) ||
      !number(kVsize, vsize) || !number(kRss, rss)) {
    return absl::InvalidArgumentError("proc stat: a needed field is not a number");
  }
  return ProcStat{(utime + stime) / ticks_per_second, start / ticks_per_second, vsize,
                  rss * page_bytes};
}

absl::StatusOr<double> ParseBootTime(std::string_view proc_stat_text) {
  for (absl::string_view line : absl::StrSplit(View(proc_stat_text), '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double seconds;
      if (absl::SimpleAtod(absl::StripAsciiWhitespace(line), &seconds)) return seconds;
      return absl::InvalidArgumentError(absl::StrCat("proc stat: bad btime '", line, "'"));
    }
  }
  return absl::InvalidArgumentError("proc stat: no btime line");
}

absl::StatusOr<std::optional<double>> ParseMaxOpenFiles(std::string_view limits_text) {
  for (absl::string_view line : absl::StrSplit(View(limits_text), '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    // Columns after the name: soft limit, hard limit, units.
    const std::vector<absl::string_view> columns =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (columns.empty()) break;
    if (columns[0] == "unlimited") return std::optional<double>();
    double soft;
    if (absl::SimpleAtod(columns[0], &soft)) return std::optional<double>(soft);
    return absl::InvalidArgumentError(
        absl::StrCat("proc limits: bad soft limit '", columns[0], "'"));
  }
  return absl::InvalidArgumentError("proc limits: no 'Max open files' line");
}

ProcessCollector::ProcessCollector(std::string proc_root, std::string pid_dir)
    : proc_root_(std::move(proc_root)), pid_path_(proc_root_ + "/" + pid_dir) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  static const double kTicksPerSecond = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double kPageBytes = static_cast<double>(sysconf(_SC_PAGESIZE));

  if (std::optional<std::string> text = ReadFile(pid_path_ + "/stat")) {
    if (absl::StatusOr<ProcStat> stat = ParseProcStat(*text, kTicksPerSecond, kPageBytes);
        stat.ok()) {
      families.push_back(OneValue("process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.",
                                  MetricType::Counter, stat->cpu_seconds));
      families.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  MetricType::Gauge, stat->resident_memory_bytes));
      families.push_back(OneValue("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                  MetricType::Gauge, stat->virtual_memory_bytes));
      if (std::optional<std::string> system = ReadFile(proc_root_ + "/stat")) {
        if (absl::StatusOr<double> boot = ParseBootTime(*system); boot.ok()) {
          families.push_back(OneValue("process_start_time_seconds",
                                      "Start time of the process since unix epoch in seconds.",
                                      MetricType::Gauge, *boot + stat->start_seconds_after_boot));
        }
      }
    }
  }

  std::error_code error;
  size_t open_fds = 0;
  for (std::filesystem::directory_iterator it(pid_path_ + "/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++open_fds;
  }
  if (!error) {
    families.push_back(OneValue("process_open_fds", "Number of open file descriptors.",
                                MetricType::Gauge, static_cast<double>(open_fds)));
  }

  if (std::optional<std::string> text = ReadFile(pid_path_ + "/limits")) {
    if (absl::StatusOr<std::optional<double>> max_fds = ParseMaxOpenFiles(*text);
        max_fds.ok() && max_fds->has_value()) {
      families.push_back(OneValue("process_max_fds", "Maximum number of open file descriptors.",
                                  MetricType::Gauge, **max_fds));
    }
  }
  return families;
}

}  // namespace cgelu::server
