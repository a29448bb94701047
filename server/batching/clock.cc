#include "server/batching/clock.h"

#include <chrono>
#include <limits>

namespace cgelu::batching {
namespace {

class SteadyClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 int64_t deadline_us) override {
    // steady_clock counts nanoseconds: a deadline past what it can represent (INT64_MAX among
    // them) would overflow inside wait_until and turn into a deadline in the past, i.e. a busy
    // loop. Such a deadline is ~292 years away, so waiting for a notification only is exact.
    constexpr int64_t kMaxRepresentableUs =
        std::numeric_limits<std::chrono::steady_clock::rep>::max() /
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::microseconds(1))
            .count();
    if (deadline_us >= kMaxRepresentableUs) {
      cv.wait(lock);
      return;
    }
    cv.wait_until(lock, std::chrono::steady_clock::time_point(
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::microseconds(deadline_us))));
  }
};

}  // namespace

Clock& RealClock() {
  static SteadyClock* const clock = new SteadyClock();
  return *clock;
}

}  // namespace cgelu::batching
