// The server-side breakdown: cgelu-server's Prometheus metrics, scraped before and after a level.
//
// The scrape is an HTTP GET through libcurl (already a dependency of prometheus-cpp on every
// machine that builds the server; it brings timeouts, chunked transfer, redirects and https for a
// metrics endpoint behind TLS, which a hand-written socket client would have to re-implement).
// The parser reads the Prometheus text exposition format (version 0.0.4): comments and blank lines
// are skipped, label values may hold escaped quotes, and a sample's optional timestamp is ignored.
//
// Means are differences of a histogram's _sum over its _count between the two scrapes, summed over
// the series whose `model` label matches (series without a model label always match).
// Thread-safety: free functions, no shared state; curl is initialised once per process.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cgelu::loadtest {

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// INVALID_ARGUMENT naming the line for a sample line that cannot be read.
absl::StatusOr<std::vector<MetricSample>> ParsePrometheusText(const std::string& text);

// The body of `url`; UNAVAILABLE with curl's reason when the endpoint cannot be reached or does
// not answer 200 within `timeout_s`.
absl::StatusOr<std::string> HttpGet(const std::string& url, double timeout_s);

struct MetricsSnapshot {
  std::vector<MetricSample> samples;
};
absl::StatusOr<MetricsSnapshot> Scrape(const std::string& url);

// What the server measured during one level (differences between two snapshots).
struct ServerBreakdown {
  double requests = 0;        // cgelu_request_duration_seconds_count delta
  double mean_request_s = 0;  // arrival to Finish()
  double mean_input_s = 0;    // parse and validate
  double mean_queue_s = 0;    // enqueue to batch closed
  double mean_compute_s = 0;  // per batch
  double mean_output_s = 0;   // after the kernel to Finish()
  double batches = 0;
  double mean_batch_requests = 0;
  double mean_batch_elements = 0;
  std::map<std::string, double> requests_by_code;  // cgelu_requests_total{code} delta
  // The metric families missing from the scrape (e.g. the target is not cgelu-server).
  std::vector<std::string> missing;
};

ServerBreakdown Difference(const MetricsSnapshot& before, const MetricsSnapshot& after,
                           const std::string& model);

}  // namespace cgelu::loadtest
