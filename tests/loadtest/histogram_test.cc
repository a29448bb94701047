#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace cgelu::loadtest {
namespace {

// The nearest-rank percentile of `sorted` data, in integer arithmetic: `percent` has at most two
// decimals, so rank = ceil(hundredths * N / 10000) exactly.
int64_t ExactPercentile(const std::vector<int64_t>& sorted, double percent) {
  const auto hundredths = static_cast<uint64_t>(std::llround(percent * 100));
  const uint64_t rank = (hundredths * sorted.size() + 9999) / 10000;
  return sorted[std::max<uint64_t>(rank, 1) - 1];
}

TEST(LatencyHistogramTest, EmptyIsAllZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.Percentile(0), 1);
  EXPECT_EQ(h.Percentile(1), 1);
  EXPECT_EQ(h.Percentile(50), 50);
  EXPECT_EQ(h.Percentile(50.5), 51);
  EXPECT_EQ(h.Percentile(90), 90);
  EXPECT_EQ(h.Percentile(99), 99);
  EXPECT_EQ(h.Percentile(99.9), 100);
  EXPECT_EQ(h.Percentile(100), 100);
}

TEST(LatencyHistogramTest, TextbookNearestRank) {
  // The classic example: 15, 20, 35, 40, 50 -> p30 = 20, p40 = 20, p50 = 35, p100 = 50.
  LatencyHistogram h;
  for (int64_t v : {50, 15, 40, 20, 35}) h.Record(v);
  EXPECT_EQ(h.Percentile(5), 15);
  EXPECT_EQ(h.Percentile(30), 20);
  EXPECT_EQ(h.Percentile(40), 20);
  EXPECT_EQ(h.Percentile(50), 35);
  EXPECT_EQ(h.Percentile(100), 50);
}

TEST(LatencyHistogramTest, BucketsCoverEveryValueOnceWithinPrecision) {
  int previous_index = -1;
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{2047}, int64_t{2048}, int64_t{2049},
                    int64_t{4095}, int64_t{4096}, int64_t{123456789}, (int64_t{1} << 41) + 5}) {
    const int index = LatencyHistogram::BucketIndex(v);
    EXPECT_GE(index, previous_index);
    previous_index = index;
    const int64_t upper = LatencyHistogram::BucketUpperEdge(index);
    EXPECT_GE(upper, v);
    EXPECT_LE(static_cast<double>(upper - v), static_cast<double>(v) / 1024.0) << v;
    EXPECT_EQ(LatencyHistogram::BucketIndex(upper), index) << v;
    EXPECT_EQ(LatencyHistogram::BucketIndex(upper + 1), index + 1) << v;
  }
}

TEST(LatencyHistogramTest, PercentilesMatchSortedDataWithinStatedPrecision) {
  // Log-normal latencies around 1 ms with a long tail, as a real run produces.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency_ns(std::log(1e6), 0.8);
  std::vector<int64_t> data(200000);
  for (auto& v : data) v = static_cast<int64_t>(latency_ns(rng));
  LatencyHistogram h;
  for (int64_t v : data) h.Record(v);
  std::sort(data.begin(), data.end());
  for (double p : {0.0, 1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    const int64_t exact = ExactPercentile(data, p);
    const int64_t approx = h.Percentile(p);
    EXPECT_GE(approx, exact) << "p" << p;
    EXPECT_LE(static_cast<double>(approx), static_cast<double>(exact) * (1 + 1.0 / 1024))
        << "p" << p;
  }
  EXPECT_EQ(h.min(), data.front());
  EXPECT_EQ(h.max(), data.back());
  double sum = 0;
  for (int64_t v : data) sum += static_cast<double>(v);
  EXPECT_NEAR(h.mean(), sum / static_cast<double>(data.size()), 1e-6 * h.mean());
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (int64_t v = 0; v < 5000; v += 7) {
    (v % 2 == 0 ? a : b).Record(v * 1013);
    all.Record(v * 1013);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double p : {1.0, 50.0, 99.0, 99.9}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
  LatencyHistogram empty;
  empty.Merge(all);
  EXPECT_EQ(empty.min(), all.min());
}

TEST(LatencyHistogramTest, NegativeAndHugeValuesAreClamped) {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(int64_t{1} << 50);  // far beyond the tracked range
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), int64_t{1} << 50);
  EXPECT_EQ(h.Percentile(100), int64_t{1} << 50);
  EXPECT_EQ(h.Percentile(50), 0);
}

}  // namespace
}  // namespace cgelu::loadtest
