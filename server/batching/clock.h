// Clock: where everything that waits gets its time. Production uses RealClock (steady_clock);
// tests use FakeClock (tests/support/fake_clock.h), advance it by hand, and wait until a thread is
// asleep in WaitUntil instead of sleeping.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace cgelu::batching {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic microseconds since an arbitrary epoch.
  virtual int64_t NowMicros() const = 0;
  // Blocks the caller on `cv` (with `lock` held on entry and on return, released while waiting)
  // until `cv` is notified, the clock reaches `deadline_us`, or a spurious wake-up. Callers loop
  // and re-check their predicate. `deadline_us` = INT64_MAX waits for a notification only.
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         int64_t deadline_us) = 0;
};

// steady_clock. A process-wide instance; never destroyed.
Clock& RealClock();

}  // namespace cgelu::batching
