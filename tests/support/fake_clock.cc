#include "tests/support/fake_clock.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cgelu::testing {

int64_t FakeClock::NowMicros() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_us_;
}

void FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          int64_t deadline_us) {
  Sleeper self{&cv, lock.mutex(), deadline_us};
  {
    std::lock_guard<std::mutex> clock_lock(mu_);
    if (now_us_ >= deadline_us) return;
    sleepers_.push_back(&self);
    ++sleeps_;
  }
  sleepers_changed_.notify_all();
  // The caller's lock has been held since registration, so AdvanceMicros, which takes that lock
  // before notifying, cannot notify before this thread is inside wait().
  cv.wait(lock);
  std::lock_guard<std::mutex> clock_lock(mu_);
  // AdvanceMicros may already have removed the entry when it woke this thread.
  auto it = std::find(sleepers_.begin(), sleepers_.end(), &self);
  if (it != sleepers_.end()) sleepers_.erase(it);
}

int64_t FakeClock::Sleeps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sleeps_;
}

void FakeClock::AdvanceMicros(int64_t delta_us) {
  if (delta_us < 0) {
    std::fprintf(stderr, "FakeClock::AdvanceMicros(%lld): time cannot go back\n",
                 static_cast<long long>(delta_us));
    std::abort();
  }
  std::vector<Sleeper> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    now_us_ += delta_us;
    auto not_due = [this](const Sleeper* s) { return s->deadline_us > now_us_; };
    auto first_due = std::stable_partition(sleepers_.begin(), sleepers_.end(), not_due);
    for (auto it = first_due; it != sleepers_.end(); ++it) due.push_back(**it);
    sleepers_.erase(first_due, sleepers_.end());
  }
  sleepers_changed_.notify_all();
  // Taking each sleeper's mutex proves it is inside wait() (or already past it); notifying after
  // releasing it spares the woken thread from blocking on that mutex straight away.
  for (const Sleeper& s : due) {
    { std::lock_guard<std::mutex> wait_lock(*s.mu); }
    s.cv->notify_all();
  }
}

void FakeClock::BlockUntilWaiters(int n) {
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_changed_.wait(lock, [&] { return static_cast<int>(sleepers_.size()) >= n; });
}

void FakeClock::BlockUntilWaitersWithDeadline(int n, int64_t deadline_us) {
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_changed_.wait(lock, [&] {
    return std::count_if(sleepers_.begin(), sleepers_.end(),
                         [&](const Sleeper* s) { return s->deadline_us == deadline_us; }) >= n;
  });
}

}  // namespace cgelu::testing
