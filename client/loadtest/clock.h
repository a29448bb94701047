// Clock: where the load tester reads time and waits for it. Production uses SteadyClock(); the
// scheduler's tests inject a fake clock that advances only when the code under test sleeps, so its
// timing logic (send times, lateness, catch-up) is checked exactly and without real sleeps.
//
// Times are monotonic nanoseconds since an arbitrary epoch. Thread-safety: SteadyClock() may be
// used from any thread; a fake clock need only be as thread-safe as its test.
#pragma once

#include <cstdint>

namespace cgelu::loadtest {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() = 0;
  // Returns once NowNs() >= deadline_ns (at once if it already is); may return later than asked
  // when the thread is descheduled, which the open-loop scheduler measures as lateness.
  virtual void SleepUntilNs(int64_t deadline_ns) = 0;
};

// std::chrono::steady_clock. A process-wide instance; never destroyed.
Clock& SteadyClock();

}  // namespace cgelu::loadtest
