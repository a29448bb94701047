// FakeClock: a Clock whose time moves only when a test calls AdvanceMicros, so tests of anything
// that waits (the batcher's queue delay, deadlines) never sleep and never depend on machine speed.
//
// A thread in WaitUntil counts as asleep from the moment it is registered (with the caller's lock
// still held) until AdvanceMicros wakes it or it returns for another reason (its condition variable
// was notified). Tests call BlockUntilWaiters / BlockUntilWaitersWithDeadline to know that the code
// under test has reached its wait before they move time, instead of sleeping.
//
// Thread-safety: all methods may be called from any thread. The mutex and condition variable of a
// thread asleep in WaitUntil must outlive any AdvanceMicros call running concurrently (destroy the
// object that owns them on the thread that advances time, or after it).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "server/batching/clock.h"

namespace cgelu::testing {

class FakeClock final : public cgelu::batching::Clock {
 public:
  explicit FakeClock(int64_t start_us = 0) : now_us_(start_us) {}

  int64_t NowMicros() const override;
  // Returns at once when `deadline_us` has already been reached (without counting as asleep);
  // otherwise sleeps on `cv` until it is notified or AdvanceMicros reaches the deadline.
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 int64_t deadline_us) override;

  // Moves time forward by `delta_us` (>= 0; a negative value aborts the test program) and wakes
  // every sleeper whose deadline is now reached. When it returns, those sleepers no longer count
  // as asleep and each has been notified while provably inside its wait, so no wake-up is lost.
  void AdvanceMicros(int64_t delta_us);

  // Blocks until at least `n` threads are asleep in WaitUntil.
  void BlockUntilWaiters(int n);
  // Blocks until at least `n` threads are asleep in WaitUntil with exactly `deadline_us`. Use it
  // when a sleeper may still be registered from before a notification it has not yet seen: the
  // deadline tells which wait the code under test has reached.
  void BlockUntilWaitersWithDeadline(int n, int64_t deadline_us);

  // How many times a thread has gone to sleep in WaitUntil so far. A waiter that is woken without
  // cause and waits again counts twice, so tests can check that nothing woke it.
  int64_t Sleeps() const;

 private:
  struct Sleeper {
    std::condition_variable* cv;
    std::mutex* mu;
    int64_t deadline_us;
  };
  mutable std::mutex mu_;
  std::condition_variable sleepers_changed_;
  int64_t now_us_ ABSL_GUARDED_BY(mu_);
  // Points into the stack frames of the threads in WaitUntil; each removes its own entry (or
  // AdvanceMicros does when it wakes it) before leaving WaitUntil.
  std::vector<Sleeper*> sleepers_ ABSL_GUARDED_BY(mu_);
  int64_t sleeps_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cgelu::testing
