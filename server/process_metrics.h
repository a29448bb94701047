// The standard process_* metrics of the Prometheus client libraries (the names Go's and Python's
// clients export and dashboards expect), read from /proc at scrape time:
//   process_cpu_seconds_total       counter  user + system CPU time
//   process_resident_memory_bytes   gauge    resident set size
//   process_virtual_memory_bytes    gauge    virtual memory size
//   process_open_fds                gauge    open file descriptors
//   process_max_fds                 gauge    soft limit on open file descriptors
//   process_start_time_seconds      gauge    start time, seconds since the Unix epoch
// A value that cannot be read (no /proc, e.g.) is left out of that scrape rather than reported as
// 0. Thread-safety: Collect() may run concurrently with itself; it holds no state besides the
// paths.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace cgelu::server {

// The fields of /proc/<pid>/stat that the metrics need, already in base units where possible.
struct ProcStat {
  double cpu_seconds = 0.0;  // utime + stime
  double start_seconds_after_boot = 0.0;
  double virtual_memory_bytes = 0.0;
  double resident_memory_bytes = 0.0;
};

// Parses the text of /proc/<pid>/stat. `ticks_per_second` is sysconf(_SC_CLK_TCK) and `page_bytes`
// sysconf(_SC_PAGESIZE). The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'. INVALID_ARGUMENT for text that does not have the expected fields.
absl::StatusOr<ProcStat> ParseProcStat(std::string_view text, double ticks_per_second,
                                       double page_bytes);

// The boot time (`btime` line of /proc/stat), seconds since the Unix epoch.
absl::StatusOr<double> ParseBootTime(std::string_view proc_stat_text);

// The soft "Max open files" limit from /proc/<pid>/limits; nullopt when it is "unlimited".
absl::StatusOr<std::optional<double>> ParseMaxOpenFiles(std::string_view limits_text);

class ProcessCollector : public prometheus::Collectable {
 public:
  // `proc_root` is the /proc directory and `pid_dir` the process's directory under it ("self");
  // tests point them at a fixture tree.
  explicit ProcessCollector(std::string proc_root = "/proc", std::string pid_dir = "self");
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_root_;
  std::string pid_path_;
};

}  // namespace cgelu::server
