#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace cgelu::loadtest {
namespace {

constexpr int kSubBucketBits = 10;  // 1024 buckets per power of two
constexpr int64_t kExactLimit = int64_t{1} << (kSubBucketBits + 1);  // 2048: counted exactly
constexpr int kMaxBits = 42;  // values >= 2^42 share the last bucket
constexpr int64_t kMaxTracked = (int64_t{1} << kMaxBits) - 1;
constexpr int kNumBuckets =
    static_cast<int>(kExactLimit) + (kMaxBits - kSubBucketBits - 1) * (1 << kSubBucketBits);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kNumBuckets, 0) {}

int LatencyHistogram::BucketIndex(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kMaxTracked);
  if (value < kExactLimit) return static_cast<int>(value);
  // value has `top` + 1 significant bits, top >= 11; keep the leading 11 bits (1024..2047).
  const int top = 63 - std::countl_zero(static_cast<uint64_t>(value));
  const int shift = top - kSubBucketBits;
  const int64_t leading = value >> shift;  // in [1024, 2048)
  return static_cast<int>(kExactLimit) + (shift - 1) * (1 << kSubBucketBits) +
         static_cast<int>(leading - (int64_t{1} << kSubBucketBits));
}

int64_t LatencyHistogram::BucketUpperEdge(int index) {
  if (index < kExactLimit) return index;
  const int rel = index - static_cast<int>(kExactLimit);
  const int shift = rel / (1 << kSubBucketBits) + 1;
  const int64_t leading = (int64_t{1} << kSubBucketBits) + rel % (1 << kSubBucketBits);
  return ((leading + 1) << shift) - 1;
}

void LatencyHistogram::Record(int64_t value) {
  value = std::max<int64_t>(value, 0);
  ++counts_[BucketIndex(value)];
  if (count_ == 0 || value < min_) min_ = value;
  if (count_ == 0 || value > max_) max_ = value;
  ++count_;
  sum_ += static_cast<double>(value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t LatencyHistogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  if (percent <= 0) return min_;
  if (percent >= 100) return max_;
  // Nearest rank: the ceil(p/100 * N)-th smallest value, at least the first. The relative nudge
  // keeps a product that should be a whole number (99.99% of 200000) from rounding one rank up.
  const double exact_rank = percent / 100.0 * static_cast<double>(count_);
  const auto rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(exact_rank * (1 - 1e-12))));
  int64_t seen = 0;
  for (int i = 0; i < kNumBuckets - 1; ++i) {
    seen += static_cast<int64_t>(counts_[i]);
    if (seen >= rank) return std::clamp(BucketUpperEdge(i), min_, max_);
  }
  return max_;  // the last bucket holds every value beyond the tracked range
}

}  // namespace cgelu::loadtest
