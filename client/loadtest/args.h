// Command-line configuration of cgelu-loadtest, parsed with CLI11.
//
// ParseArgs never throws and never exits: a bad argument is INVALID_ARGUMENT with a one-line
// message (the tool prints it and exits 2), and --help comes back as help text to print.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cgelu/client/client.h"
#include "schedule.h"

namespace cgelu::loadtest {

enum class LoopMode { kClosed, kOpen };

struct LoadTestConfig {
  // Target.
  client::ChannelOptions channel;  // target, load balancing, TLS
  // Channels (each its own TCP connection) the calls are spread over; 0 = automatic:
  // AutoConnections().
  int connections = 0;
  double connect_timeout_s = 5;

  // Load levels: a closed-loop concurrency sweep or an open-loop rate sweep.
  LoopMode mode = LoopMode::kClosed;
  std::vector<int> concurrency_levels = {1};
  std::vector<double> rate_levels;  // requests per second
  Arrival arrival = Arrival::kConstant;
  int64_t max_in_flight = 10000;  // open loop: outstanding requests before sends block

  // Each level runs `warmup_s` unmeasured, then `duration_s` measured, or, with `requests` > 0,
  // until that many measured requests have completed (whichever comes first).
  double duration_s = 10;
  double warmup_s = 2;
  int64_t requests = 0;
  int64_t timeout_ms = 30000;  // per-request deadline

  // Payload.
  client::InferOptions infer;  // model, input name, min/max/approximate, timeout
  std::vector<int64_t> shape = {4096};
  std::string datatype = "FP32";  // FP32, FP64, FP16, BF16
  std::string input_npy;          // if set, every request sends this tensor
  int distinct_inputs = 8;        // random payloads cycled through
  uint64_t seed = 1;

  // Checks.
  bool verify = false;
  double verify_fraction = 0.05;  // of responses compared with the reference (the first always)

  // Server-side breakdown and output.
  std::string metrics_url;
  std::string csv_path;
  std::string json_path;
  std::string svg_path;
  std::string label;  // names this run in the chart and the JSON (default: the target)
  bool progress = true;

  // Instead of a run: draw svg_path from these --json reports (several runs on one chart).
  std::vector<std::string> plot_json;
};

struct ParsedArgs {
  LoadTestConfig config;
  std::optional<std::string> help;  // set when --help was asked for: print it, exit 0
};

absl::StatusOr<ParsedArgs> ParseArgs(int argc, const char* const* argv);

// "1,8,64", "1:256:x2" (1, 2, 4, ... 256), "10:50:+10" (10, 20, ... 50), or a mix of these
// separated by commas. Values must be positive; at most 1000 levels.
absl::StatusOr<std::vector<double>> ParseLevels(const std::string& spec);
// "4096", "1,4096" or "1x4096"; each dimension >= 0.
absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& spec);

// The automatic --connections for a run: one channel per 16 concurrent requests, between 1 and 4
// (see docs/BENCHMARKS.md, "Connections", for the measurement behind it).
int AutoConnections(const LoadTestConfig& config);

}  // namespace cgelu::loadtest
