// --backend names: every backend this build lists can be made and computes clipped GELU; anything
// else is refused with the list.
#include "server/backends.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace cgelu::server {
namespace {

TEST(Backends, EveryListedBackendComputesClippedGelu) {
  const std::vector<std::string> names = AvailableBackends();
  ASSERT_THAT(names, ::testing::Contains("cpu"));
  for (const std::string& name : names) {
    auto backend = MakeBackend(name, 1);
    ASSERT_TRUE(backend.ok()) << name << ": " << backend.status();
    EXPECT_EQ((*backend)->name(), name);
    const float in[4] = {-1.0f, 0.0f, 1.0f, 10.0f};
    float out[4];
    kernels::Segment segment{in, out, 4, kernels::DType::kFP32, {.min = -3, .max = 3}};
    ASSERT_TRUE((*backend)->Run({&segment, 1}).ok()) << name;
    for (int i = 0; i < 4; ++i) {
      const double x = in[i];
      const double ref = std::min(3.0, 0.5 * x * std::erfc(-x / std::sqrt(2.0)));
      EXPECT_NEAR(out[i], ref, 1e-6) << name << " x=" << x;
    }
  }
}

TEST(Backends, UnknownNamesAndBadThreadCountsAreRefused) {
  auto cuda = MakeBackend("cuda", 0);
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cuda.status().message()), ::testing::HasSubstr("cpu"));
  EXPECT_EQ(MakeBackend("cpu", -1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cgelu::server
