#include "schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace cgelu::loadtest {
namespace {

// Time moves only when the code under test sleeps, plus any delay a test injects, exactly as a
// descheduled or overloaded sender would see it.
class FakeClock final : public Clock {
 public:
  int64_t NowNs() override { return now_ns_; }
  void SleepUntilNs(int64_t deadline_ns) override {
    ++sleeps_;
    now_ns_ = std::max(now_ns_, deadline_ns);
    auto it = oversleep_at_sleep_.find(sleeps_);
    if (it != oversleep_at_sleep_.end()) now_ns_ += it->second;
  }
  void Advance(int64_t ns) { now_ns_ += ns; }
  // The `n`-th call to SleepUntilNs (1-based) returns `ns` later than asked.
  void OversleepAt(int n, int64_t ns) { oversleep_at_sleep_[n] = ns; }

 private:
  int64_t now_ns_ = 1'000'000'000;
  int sleeps_ = 0;
  std::map<int, int64_t> oversleep_at_sleep_;
};

struct Send {
  int64_t scheduled_ns;
  int64_t actual_ns;
  bool measured;
};

TEST(ArrivalScheduleTest, ConstantIsEvenlySpacedWithoutDrift) {
  ArrivalSchedule schedule(Arrival::kConstant, 3.0, 1);  // a period of 333,333,333.3 ns
  std::vector<int64_t> offsets;
  for (int i = 0; i < 3001; ++i) offsets.push_back(schedule.NextOffsetNs());
  EXPECT_EQ(offsets[0], 0);
  EXPECT_EQ(offsets[1], 333'333'333);
  EXPECT_EQ(offsets[3], 1'000'000'000);
  EXPECT_EQ(offsets[3000], 1'000'000'000'000);  // rounding does not accumulate
}

TEST(ArrivalScheduleTest, PoissonHasTheRequestedRateAndExponentialGaps) {
  ArrivalSchedule schedule(Arrival::kPoisson, 1000.0, 7);
  constexpr int kArrivals = 200000;
  std::vector<double> gaps;
  int64_t previous = 0;
  for (int i = 0; i < kArrivals; ++i) {
    const int64_t offset = schedule.NextOffsetNs();
    ASSERT_GE(offset, previous);
    gaps.push_back(static_cast<double>(offset - previous));
    previous = offset;
  }
  double mean = 0;
  for (double g : gaps) mean += g;
  mean /= kArrivals;
  double variance = 0;
  for (double g : gaps) variance += (g - mean) * (g - mean);
  variance /= kArrivals;
  EXPECT_NEAR(mean, 1e6, 1e6 * 0.01);                  // 1 ms mean gap
  EXPECT_NEAR(std::sqrt(variance) / mean, 1.0, 0.02);  // exponential: std dev == mean
  // Memoryless: about e^-1 of the gaps exceed the mean.
  const auto above = std::count_if(gaps.begin(), gaps.end(), [&](double g) { return g > mean; });
  EXPECT_NEAR(static_cast<double>(above) / kArrivals, std::exp(-1.0), 0.01);

  // The same seed gives the same schedule.
  ArrivalSchedule a(Arrival::kPoisson, 50.0, 3), b(Arrival::kPoisson, 50.0, 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.NextOffsetNs(), b.NextOffsetNs());
}

class PacerTest : public ::testing::Test {
 protected:
  PacerStats Run(ArrivalSchedule schedule, PacerOptions options) {
    OpenLoopPacer pacer(clock_, schedule, options);
    return pacer.Run([&](int64_t scheduled, bool measured) {
      sends_.push_back({scheduled, clock_.NowNs(), measured});
      clock_.Advance(send_cost_ns_);
      return true;
    });
  }
  FakeClock clock_;
  int64_t send_cost_ns_ = 0;
  std::vector<Send> sends_;
};

TEST_F(PacerTest, SendsExactlyOnScheduleWhenOnTime) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.measure_from_ns = options.start_ns + 100'000'000;  // 100 ms warm-up
  options.stop_ns = options.start_ns + 1'100'000'000;        // then 1 s measured
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kConstant, 100, 1), options);
  ASSERT_EQ(sends_.size(), 110u);
  for (size_t i = 0; i < sends_.size(); ++i) {
    EXPECT_EQ(sends_[i].scheduled_ns, options.start_ns + static_cast<int64_t>(i) * 10'000'000);
    EXPECT_EQ(sends_[i].actual_ns, sends_[i].scheduled_ns);
    EXPECT_EQ(sends_[i].measured, i >= 10);
  }
  EXPECT_EQ(stats.warmup_sends, 10);
  EXPECT_EQ(stats.measured_sends, 100);
  EXPECT_EQ(stats.late_sends, 0);
  EXPECT_EQ(stats.lateness_ns.max(), 0);
  EXPECT_EQ(stats.first_measured_ns, options.measure_from_ns);
  EXPECT_EQ(stats.last_measured_ns, options.start_ns + 1'090'000'000);
}

TEST_F(PacerTest, AStallDelaysSendsButNotTheirScheduledTimes) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.stop_ns = options.start_ns + 100'000'000;  // 10 sends, 10 ms apart
  // The 3rd sleep (for the send due at 20 ms) comes back 35 ms late, at 55 ms.
  clock_.OversleepAt(3, 35'000'000);
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kConstant, 100, 1), options);
  ASSERT_EQ(sends_.size(), 10u);
  for (size_t i = 0; i < sends_.size(); ++i) {
    // No coordinated omission: every send keeps its slot on the schedule...
    EXPECT_EQ(sends_[i].scheduled_ns, options.start_ns + static_cast<int64_t>(i) * 10'000'000);
  }
  // ...the overdue ones (20, 30, 40, 50 ms) leave at once, the rest on time.
  EXPECT_EQ(sends_[2].actual_ns - sends_[2].scheduled_ns, 35'000'000);
  EXPECT_EQ(sends_[3].actual_ns - sends_[3].scheduled_ns, 25'000'000);
  EXPECT_EQ(sends_[4].actual_ns - sends_[4].scheduled_ns, 15'000'000);
  EXPECT_EQ(sends_[5].actual_ns - sends_[5].scheduled_ns, 5'000'000);
  EXPECT_EQ(sends_[6].actual_ns, sends_[6].scheduled_ns);
  EXPECT_EQ(stats.late_sends, 4);
  EXPECT_EQ(stats.lateness_ns.max(), 35'000'000);
  EXPECT_EQ(stats.lateness_ns.count(), 10);
  EXPECT_EQ(stats.lateness_ns.mean(), (35 + 25 + 15 + 5) * 1e6 / 10);
}

TEST_F(PacerTest, LatenessAtOrBelowTheThresholdIsNotLate) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.stop_ns = options.start_ns + 50'000'000;
  options.late_threshold_ns = 1'000'000;
  clock_.OversleepAt(1, 1'000'000);  // exactly the threshold
  clock_.OversleepAt(2, 1'000'001);  // just past it
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kConstant, 100, 1), options);
  EXPECT_EQ(stats.measured_sends, 5);
  EXPECT_EQ(stats.late_sends, 1);
}

TEST_F(PacerTest, ASlowSenderFallsBehindAndIsCounted) {
  // Each send costs 2 ms of the sender's time at 1000 requests/s: it cannot keep up.
  send_cost_ns_ = 2'000'000;
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.stop_ns = options.start_ns + 100'000'000;
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kConstant, 1000, 1), options);
  ASSERT_EQ(stats.measured_sends, 100);  // all scheduled requests are still sent, none skipped
  EXPECT_EQ(sends_.back().scheduled_ns, options.start_ns + 99'000'000);
  EXPECT_EQ(sends_.back().actual_ns, options.start_ns + 99 * 2'000'000);
  EXPECT_EQ(stats.lateness_ns.max(), 99'000'000);
  EXPECT_EQ(stats.last_measured_sent_ns, options.start_ns + 198'000'000);
  EXPECT_EQ(stats.late_sends, 98);  // send i is i ms late: only 0 and 1 ms are within threshold
}

TEST_F(PacerTest, StopsAfterMaxMeasuredSends) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.measure_from_ns = options.start_ns + 20'000'000;
  options.max_measured_sends = 7;
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kConstant, 1000, 1), options);
  EXPECT_EQ(stats.warmup_sends, 20);
  EXPECT_EQ(stats.measured_sends, 7);
  EXPECT_EQ(sends_.size(), 27u);
}

TEST_F(PacerTest, StopsWhenTheSenderSaysSo) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  OpenLoopPacer pacer(clock_, ArrivalSchedule(Arrival::kConstant, 1000, 1), options);
  int calls = 0;
  const PacerStats stats = pacer.Run([&](int64_t, bool) { return ++calls < 3; });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(stats.measured_sends, 2);  // the refused third send was not made
  EXPECT_EQ(stats.lateness_ns.count(), 2);
}

TEST_F(PacerTest, PoissonSendsFollowTheScheduleAndTheRate) {
  PacerOptions options;
  options.start_ns = clock_.NowNs();
  options.stop_ns = options.start_ns + 10'000'000'000;  // 10 s at 500/s
  const PacerStats stats = Run(ArrivalSchedule(Arrival::kPoisson, 500, 11), options);
  EXPECT_NEAR(static_cast<double>(stats.measured_sends), 5000, 5000 * 0.05);
  EXPECT_EQ(stats.late_sends, 0);
  for (size_t i = 1; i < sends_.size(); ++i) {
    EXPECT_GE(sends_[i].scheduled_ns, sends_[i - 1].scheduled_ns);
    EXPECT_EQ(sends_[i].actual_ns, sends_[i].scheduled_ns);
    EXPECT_LT(sends_[i].scheduled_ns, options.stop_ns);
  }
}

}  // namespace
}  // namespace cgelu::loadtest
