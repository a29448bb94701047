// The open-loop scheduler: when each request is meant to be sent, and the loop that sends it then.
//
// Open loop means arrivals do not wait for responses: request i is due at start + offset_i, where
// the offsets are either evenly spaced (constant arrival) or a Poisson process (exponential gaps
// from a seeded generator, so runs are repeatable). Every latency is measured from the *scheduled*
// time, never from when the request actually left, so a stalled server or a stalled load generator
// cannot hide queueing (no coordinated omission). The pacer also measures how late each send left;
// a generator that cannot keep up is reported, not silently turned into a lower rate.
//
// Time comes from an injected Clock so all of this is tested with a fake clock.
// Thread-safety: an ArrivalSchedule or OpenLoopPacer is used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <random>

#include "clock.h"
#include "histogram.h"

namespace cgelu::loadtest {

enum class Arrival { kConstant, kPoisson };

class ArrivalSchedule {
 public:
  // `rate_per_s` > 0 requests per second.
  ArrivalSchedule(Arrival arrival, double rate_per_s, uint64_t seed);
  // Offset of the next arrival from the start, in ns: the first is 0 for constant arrivals and one
  // exponential gap for Poisson ones; offsets never decrease.
  int64_t NextOffsetNs();

 private:
  Arrival arrival_;
  double period_ns_;
  int64_t index_ = 0;
  double poisson_offset_ns_ = 0;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

struct PacerOptions {
  int64_t start_ns = 0;                    // the schedule's time zero
  int64_t stop_ns = INT64_MAX;             // no arrival scheduled at or after this is sent
  int64_t measure_from_ns = 0;             // sends scheduled before this are warm-up
  int64_t max_measured_sends = INT64_MAX;  // stop after this many measured sends
  int64_t late_threshold_ns = 1'000'000;   // a send leaving later than this is "late"
};

struct PacerStats {
  int64_t warmup_sends = 0;
  int64_t measured_sends = 0;
  int64_t late_sends = 0;              // measured sends later than late_threshold_ns
  LatencyHistogram lateness_ns;        // of every measured send
  int64_t first_measured_ns = -1;      // scheduled time of the first measured send
  int64_t last_measured_ns = -1;       // scheduled time of the last measured send
  int64_t last_measured_sent_ns = -1;  // when the last measured send actually left
};

// Callback: send one request due at `scheduled_ns` (a Clock time). It should return quickly; if it
// blocks (an in-flight cap), the sends after it leave late and are counted so. `measured` is false
// for warm-up sends. Returning false stops the pacer; that request counts as not sent.
using SendFn = std::function<bool(int64_t scheduled_ns, bool measured)>;

class OpenLoopPacer {
 public:
  OpenLoopPacer(Clock& clock, ArrivalSchedule schedule, const PacerOptions& options);
  // Sends until stop_ns, max_measured_sends or `send` returning false. When it falls
  // behind it sends every overdue request at once (each keeps its scheduled time) rather than
  // skipping or re-spacing them.
  PacerStats Run(const SendFn& send);

 private:
  Clock& clock_;
  ArrivalSchedule schedule_;
  PacerOptions options_;
};

}  // namespace cgelu::loadtest
