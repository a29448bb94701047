// WaitFor: polls a condition that other threads make true (a queue filling, a worker finishing),
// for tests that cannot wait on a fake clock because no clock is involved. Fails the test after
// 20 s instead of hanging.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace cgelu::testing {

template <typename Predicate>
void WaitFor(Predicate predicate) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!predicate()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "condition never became true";
    std::this_thread::yield();
  }
}

}  // namespace cgelu::testing
