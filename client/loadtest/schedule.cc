#include "schedule.h"

#include <cmath>

namespace cgelu::loadtest {

ArrivalSchedule::ArrivalSchedule(Arrival arrival, double rate_per_s, uint64_t seed)
    : arrival_(arrival), period_ns_(1e9 / rate_per_s), rng_(seed), gap_(1.0) {}

int64_t ArrivalSchedule::NextOffsetNs() {
  if (arrival_ == Arrival::kConstant) {
    // Computed from the index, not accumulated, so rounding never drifts the rate.
    return static_cast<int64_t>(std::llround(static_cast<double>(index_++) * period_ns_));
  }
  poisson_offset_ns_ += gap_(rng_) * period_ns_;
  return static_cast<int64_t>(poisson_offset_ns_);
}

OpenLoopPacer::OpenLoopPacer(Clock& clock, ArrivalSchedule schedule, const PacerOptions& options)
    : clock_(clock), schedule_(std::move(schedule)), options_(options) {}

PacerStats OpenLoopPacer::Run(const SendFn& send) {
  PacerStats stats;
  while (stats.measured_sends < options_.max_measured_sends) {
    const int64_t offset = schedule_.NextOffsetNs();
    if (offset >= options_.stop_ns - options_.start_ns) break;
    const int64_t scheduled = options_.start_ns + offset;
    clock_.SleepUntilNs(scheduled);
    const bool measured = scheduled >= options_.measure_from_ns;
    const int64_t sent_at = clock_.NowNs();  // before `send`, which may take time
    if (!send(scheduled, measured)) break;   // not sent: not counted
    if (measured) {
      const int64_t lateness = sent_at - scheduled;
      stats.last_measured_sent_ns = sent_at;
      stats.lateness_ns.Record(lateness);
      if (lateness > options_.late_threshold_ns) ++stats.late_sends;
      if (stats.first_measured_ns < 0) stats.first_measured_ns = scheduled;
      stats.last_measured_ns = scheduled;
      ++stats.measured_sends;
    } else {
      ++stats.warmup_sends;
    }
  }
  return stats;
}

}  // namespace cgelu::loadtest
