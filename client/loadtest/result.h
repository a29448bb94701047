// What one load level measured, as the runner produces it and the report writers print it.
//
// Accounting. A request belongs to the level's measurement window by its send time: open loop, its
// scheduled time; closed loop, the moment its slot sent it (the two are the same there). Window
// requests are counted in `sent` as their RPC starts, once each, and each ends exactly once, as ok
// or as an error with its gRPC code; the runner waits for all of them, so sent == ok +
// sum(errors) is a property of the runner that the tests check, not how `sent` is computed.
// Warm-up requests are never in sent, ok, errors or the latency, even when they complete inside
// the window. Latency is recorded for ok window requests, from the scheduled send time to the
// response. Throughput is by arrival instead: ok responses (window or warm-up requests alike) that
// arrived inside the window, divided by its length (with --requests the window closes at the last
// window request's response).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "histogram.h"
#include "server_metrics.h"

namespace cgelu::loadtest {

struct LevelResult {
  bool open_loop = false;
  double level = 0;  // concurrency, or requested rate in requests/s
  double window_s = 0;
  bool interrupted = false;  // Cancel() cut the window short
  int64_t sent = 0;          // window requests sent (see above)
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;  // gRPC status code name -> count
  std::string first_error;                // message of the first error, for the report
  int64_t ok_in_window = 0;
  double throughput_rps = 0;
  LatencyHistogram latency_ns;  // ok requests, from scheduled send to response

  // Open loop only.
  double sent_rps = 0;     // measured sends / the time they took to leave (>= the window)
  int64_t late_sends = 0;  // left more than 1 ms after their scheduled time
  LatencyHistogram send_lateness_ns;
  bool generator_fell_behind = false;  // more than 1% of sends late

  // --verify.
  int64_t verified = 0;
  int64_t mismatches = 0;
  std::string first_mismatch;

  // --metrics-url.
  std::optional<ServerBreakdown> server;
  std::string server_error;  // why the breakdown is missing, if it is

  int64_t errors_total() const {
    int64_t total = 0;
    for (const auto& [code, count] : errors) total += count;
    return total;
  }
};

// Everything a report needs to describe the run.
struct RunDescription {
  std::string label;
  std::string target;
  std::string model;
  bool open_loop = false;
  std::string arrival;  // open loop: "constant" or "poisson"
  int connections = 0;
  std::string payload;  // e.g. "FP32 [4096]"
  double warmup_s = 0;
  double duration_s = 0;  // 0: until `requests` completed
  int64_t requests = 0;
  bool verify = false;
};

}  // namespace cgelu::loadtest
