// Tests of the two Clock implementations: the steady clock used in production and the FakeClock
// every waiting test relies on. A broken FakeClock would make the batcher tests prove nothing.
#include "server/batching/clock.h"

#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace cgelu::batching {
namespace {

constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

TEST(FakeClockTest, TimeMovesOnlyWhenAdvanced) {
  cgelu::testing::FakeClock clock(/*start_us=*/42);
  EXPECT_EQ(clock.NowMicros(), 42);
  EXPECT_EQ(clock.NowMicros(), 42);
  clock.AdvanceMicros(8);
  EXPECT_EQ(clock.NowMicros(), 50);
  clock.AdvanceMicros(0);
  EXPECT_EQ(clock.NowMicros(), 50);
}

TEST(FakeClockTest, DeadlineAlreadyReachedReturnsAtOnce) {
  cgelu::testing::FakeClock clock(/*start_us=*/100);
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  clock.WaitUntil(cv, lock, 100);
  clock.WaitUntil(cv, lock, 7);
  EXPECT_TRUE(lock.owns_lock());
}

TEST(FakeClockTest, SleeperWakesExactlyWhenItsDeadlineIsReached) {
  cgelu::testing::FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  int64_t woke_at_us = -1;
  std::thread sleeper([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (clock.NowMicros() < 500) clock.WaitUntil(cv, lock, 500);
    woke_at_us = clock.NowMicros();
  });
  clock.BlockUntilWaitersWithDeadline(1, 500);
  clock.AdvanceMicros(499);
  // Not due: the sleeper is still registered and has not run on.
  clock.BlockUntilWaitersWithDeadline(1, 500);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(woke_at_us, -1);
  }
  clock.AdvanceMicros(1);
  sleeper.join();
  EXPECT_EQ(woke_at_us, 500);
}

TEST(FakeClockTest, NotifyingTheCallersConditionVariableWakesTheSleeper) {
  cgelu::testing::FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::thread sleeper([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!ready) clock.WaitUntil(cv, lock, kNoDeadline);
  });
  clock.BlockUntilWaiters(1);
  {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
  }
  cv.notify_all();
  sleeper.join();
  EXPECT_EQ(clock.NowMicros(), 0);
}

TEST(FakeClockTest, AdvanceWakesOnlyTheSleepersThatAreDue) {
  cgelu::testing::FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  int early_woke_at_us = -1;
  int late_woke_at_us = -1;
  auto sleep_until = [&](int64_t deadline_us, int* woke_at_us) {
    std::unique_lock<std::mutex> lock(mu);
    while (clock.NowMicros() < deadline_us) clock.WaitUntil(cv, lock, deadline_us);
    *woke_at_us = static_cast<int>(clock.NowMicros());
  };
  std::thread early([&] { sleep_until(100, &early_woke_at_us); });
  std::thread late([&] { sleep_until(300, &late_woke_at_us); });
  clock.BlockUntilWaiters(2);
  clock.AdvanceMicros(200);
  early.join();
  clock.BlockUntilWaitersWithDeadline(1, 300);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(late_woke_at_us, -1);
  }
  clock.AdvanceMicros(100);
  late.join();
  EXPECT_EQ(early_woke_at_us, 200);
  EXPECT_EQ(late_woke_at_us, 300);
}

TEST(RealClockTest, IsMonotonic) {
  Clock& clock = RealClock();
  int64_t previous_us = clock.NowMicros();
  for (int i = 0; i < 1000; ++i) {
    const int64_t now_us = clock.NowMicros();
    EXPECT_GE(now_us, previous_us);
    previous_us = now_us;
  }
  EXPECT_EQ(&clock, &RealClock());
}

TEST(RealClockTest, DeadlineInThePastReturns) {
  Clock& clock = RealClock();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  clock.WaitUntil(cv, lock, clock.NowMicros() - 1);
  EXPECT_TRUE(lock.owns_lock());
}

TEST(RealClockTest, UnboundedWaitEndsOnNotification) {
  for (const int64_t deadline_us : {kNoDeadline, kNoDeadline - 1}) {
    Clock& clock = RealClock();
    std::mutex mu;
    std::condition_variable cv;
    bool ready = false;
    bool waiting = false;
    std::thread sleeper([&] {
      std::unique_lock<std::mutex> lock(mu);
      waiting = true;
      cv.notify_all();
      while (!ready) clock.WaitUntil(cv, lock, deadline_us);
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return waiting; });
      ready = true;
    }
    cv.notify_all();
    sleeper.join();
  }
}

}  // namespace
}  // namespace cgelu::batching
