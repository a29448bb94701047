// Test helpers: fetch a page over plain HTTP and parse the Prometheus text exposition format into
// samples, so tests can assert on what a real scraper would read.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cgelu::testing {

// GET http://127.0.0.1:port/path with HTTP/1.0; the body of a 200 answer, else an error.
absl::StatusOr<std::string> HttpGet(int port, absl::string_view path);

struct Exposition {
  // "# TYPE" of each family: counter, gauge, histogram, ...
  std::map<std::string, std::string> types;
  // Each sample keyed by name and its labels sorted by name, as `name{a="x",b="y"}`.
  std::map<std::string, double> samples;

  // The sample `name` with exactly these labels (any order, same syntax as above without braces,
  // e.g. `model="m",code="OK"`); nullopt when absent.
  std::optional<double> Get(absl::string_view name, absl::string_view labels = "") const;
  // Sum over every sample named `name` whose labels include all of `labels`.
  double Sum(absl::string_view name, absl::string_view labels = "") const;
  // The (le, cumulative count) pairs of histogram `name` for the series whose labels include all
  // of `labels`, sorted by le (+Inf last).
  std::vector<std::pair<double, double>> Buckets(absl::string_view name,
                                                 absl::string_view labels) const;
  // How many samples are named `name`.
  size_t Count(absl::string_view name) const;

 private:
  std::vector<std::pair<std::string, double>> Matching(absl::string_view name,
                                                       absl::string_view labels) const;
};

// INVALID_ARGUMENT for a line that is not a comment, a blank or `name{labels} value`.
absl::StatusOr<Exposition> ParseExposition(absl::string_view text);

}  // namespace cgelu::testing
