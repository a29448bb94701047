#include "clock.h"

#include <chrono>
#include <thread>

namespace cgelu::loadtest {
namespace {

class Steady final : public Clock {
 public:
  int64_t NowNs() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void SleepUntilNs(int64_t deadline_ns) override {
    std::this_thread::sleep_until(
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns)));
  }
};

}  // namespace

Clock& SteadyClock() {
  static auto* clock = new Steady;
  return *clock;
}

}  // namespace cgelu::loadtest
