// Report writers: a readable table for stdout, CSV (one row per level), JSON (the whole run) and
// an SVG chart of throughput against p50/p99 latency across a sweep, one or more runs per chart
// (cgelu-server and the echo baseline side by side). All output is plain text built here; the SVG
// needs no script, font or stylesheet beyond the viewer's defaults.
//
// Latencies are printed in milliseconds; percentiles carry LatencyHistogram's precision (never
// below the exact value, at most 0.1% above). Thread-safety: free functions, no shared state.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "result.h"

namespace cgelu::loadtest {

void PrintTable(std::ostream& out, const RunDescription& run,
                const std::vector<LevelResult>& levels, const std::string& metrics_url);
// Doubts about the measurement itself, one line each, for stderr: an open-loop generator that fell
// behind its schedule, a level that sent nothing in its window. Errors and --verify mismatches
// are results, not doubts: PrintTable reports them with the levels.
std::vector<std::string> Warnings(const std::vector<LevelResult>& levels);

std::string ToCsv(const RunDescription& run, const std::vector<LevelResult>& levels);
nlohmann::json ToJson(const RunDescription& run, const std::vector<LevelResult>& levels);

// One line of the chart: a run's levels as (throughput, p50, p99) points.
struct ChartPoint {
  std::string level;  // e.g. "c=64" or "2000/s"
  double throughput_rps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};
struct ChartSeries {
  std::string label;
  std::vector<ChartPoint> points;
};
ChartSeries SeriesOf(const RunDescription& run, const std::vector<LevelResult>& levels);
// A series from a report written by --json; INVALID_ARGUMENT when it is not one.
absl::StatusOr<ChartSeries> SeriesFromJson(const nlohmann::json& report);
std::string RenderSvg(const std::vector<ChartSeries>& series, const std::string& title);

// Writes `text` to `path`; UNAVAILABLE naming the path when it cannot.
absl::Status WriteFile(const std::string& path, const std::string& text);

}  // namespace cgelu::loadtest
