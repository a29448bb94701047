// LatencyHistogram: a log-linear (HDR-style) histogram of non-negative integer values, used for
// latencies in nanoseconds.
//
// Precision: values below 2048 are counted exactly; above, each power-of-two range is split into
// 1024 equal buckets, so a bucket spans at most 1/1024 (about 0.1%) of its values. Percentile()
// reports the upper edge of the bucket holding the nearest-rank value, capped at the largest value
// recorded: the result is never below the exact nearest-rank percentile and at most 0.1% above it.
// count, min, max and mean are exact. Values above 2^42 ns (about 73 minutes) share the last
// bucket; min and max still hold them exactly.
//
// Memory is fixed (about 270 KB) whatever the number of samples. Not thread-safe: callers record
// under their own lock, or keep one histogram per thread and Merge() them.
#pragma once

#include <cstdint>
#include <vector>

namespace cgelu::loadtest {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Negative values are recorded as 0.
  void Record(int64_t value);
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  // 0 when empty.
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  // Nearest-rank percentile, `percent` in [0, 100] (clamped): the smallest value v such that at
  // least percent% of the recorded values are <= v, to the precision above. 0 when empty;
  // Percentile(0) is min(), Percentile(100) is max().
  int64_t Percentile(double percent) const;

  // Bucket geometry, exposed for tests.
  static int BucketIndex(int64_t value);
  // The largest value that falls into bucket `index`.
  static int64_t BucketUpperEdge(int index);

 private:
  std::vector<uint64_t> counts_;
  int64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace cgelu::loadtest
