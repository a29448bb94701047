#include "server_metrics.h"

#include <gtest/gtest.h>

namespace cgelu::loadtest {
namespace {

constexpr char kBefore[] = R"(# HELP cgelu_queue_duration_seconds Time in the queue
# TYPE cgelu_queue_duration_seconds histogram
cgelu_queue_duration_seconds_bucket{model="clipped_gelu",backend="cpu",le="0.001"} 5
cgelu_queue_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.002
cgelu_queue_duration_seconds_count{model="clipped_gelu",backend="cpu"} 10
cgelu_queue_duration_seconds_sum{model="other",backend="cpu"} 100
cgelu_queue_duration_seconds_count{model="other",backend="cpu"} 100
cgelu_request_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.01
cgelu_request_duration_seconds_count{model="clipped_gelu",backend="cpu"} 10
cgelu_compute_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.001
cgelu_compute_duration_seconds_count{model="clipped_gelu",backend="cpu"} 4
cgelu_batch_size_requests_sum{model="clipped_gelu"} 10
cgelu_batch_size_requests_count{model="clipped_gelu"} 4
cgelu_batch_size_elements_sum{model="clipped_gelu"} 40960
cgelu_batch_size_elements_count{model="clipped_gelu"} 4
cgelu_input_preparation_duration_seconds_sum{model="clipped_gelu"} 0.001
cgelu_input_preparation_duration_seconds_count{model="clipped_gelu"} 10
cgelu_output_preparation_duration_seconds_sum{model="clipped_gelu"} 0.002
cgelu_output_preparation_duration_seconds_count{model="clipped_gelu"} 10
cgelu_requests_total{model="clipped_gelu",code="OK"} 10
)";

constexpr char kAfter[] =
    R"(cgelu_queue_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.012
cgelu_queue_duration_seconds_count{model="clipped_gelu",backend="cpu"} 110
cgelu_queue_duration_seconds_sum{model="other",backend="cpu"} 200
cgelu_queue_duration_seconds_count{model="other",backend="cpu"} 101
cgelu_request_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.21
cgelu_request_duration_seconds_count{model="clipped_gelu",backend="cpu"} 110
cgelu_compute_duration_seconds_sum{model="clipped_gelu",backend="cpu"} 0.026
cgelu_compute_duration_seconds_count{model="clipped_gelu",backend="cpu"} 29
cgelu_batch_size_requests_sum{model="clipped_gelu"} 110
cgelu_batch_size_requests_count{model="clipped_gelu"} 29
cgelu_batch_size_elements_sum{model="clipped_gelu"} 450560
cgelu_batch_size_elements_count{model="clipped_gelu"} 29
cgelu_input_preparation_duration_seconds_sum{model="clipped_gelu"} 0.006
cgelu_input_preparation_duration_seconds_count{model="clipped_gelu"} 110
cgelu_output_preparation_duration_seconds_sum{model="clipped_gelu"} 0.004
cgelu_output_preparation_duration_seconds_count{model="clipped_gelu"} 110
cgelu_requests_total{model="clipped_gelu",code="OK"} 108
cgelu_requests_total{model="clipped_gelu",code="UNAVAILABLE"} 2
)";

TEST(ParsePrometheusTextTest, ReadsNamesLabelsAndValues) {
  auto samples = ParsePrometheusText(
      "# a comment\n\n"
      "up 1\n"
      "x_total{a=\"1\", b=\"q\\\"uote\\\\d\"} 2.5e3 1700000000000\n"
      "h_bucket{le=\"+Inf\"} +Inf\n"
      "g NaN\n");
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 4u);
  EXPECT_EQ((*samples)[0].name, "up");
  EXPECT_EQ((*samples)[0].value, 1);
  EXPECT_EQ((*samples)[1].name, "x_total");
  EXPECT_EQ((*samples)[1].labels.at("a"), "1");
  EXPECT_EQ((*samples)[1].labels.at("b"), "q\"uote\\d");
  EXPECT_EQ((*samples)[1].value, 2500);
  EXPECT_EQ((*samples)[2].labels.at("le"), "+Inf");
  EXPECT_TRUE(std::isinf((*samples)[2].value));
  EXPECT_TRUE(std::isnan((*samples)[3].value));
}

TEST(ParsePrometheusTextTest, RejectsMalformedLines) {
  for (const char* text :
       {"x{a=\"1\" 3\n", "x{a=1} 3\n", "x abc\n", "x\n", "x 1 2 3\n", "{a=\"1\"} 3\n"}) {
    EXPECT_FALSE(ParsePrometheusText(text).ok()) << text;
  }
}

TEST(DifferenceTest, MeansAreSumDeltaOverCountDeltaForTheModel) {
  auto before = ParsePrometheusText(kBefore);
  auto after = ParsePrometheusText(kAfter);
  ASSERT_TRUE(before.ok() && after.ok());
  const ServerBreakdown b = Difference({*before}, {*after}, "clipped_gelu");
  EXPECT_DOUBLE_EQ(b.requests, 100);
  EXPECT_DOUBLE_EQ(b.mean_request_s, 0.2 / 100);
  EXPECT_DOUBLE_EQ(b.mean_queue_s, 0.01 / 100);  // the "other" model is left out
  EXPECT_DOUBLE_EQ(b.mean_compute_s, 0.025 / 25);
  EXPECT_DOUBLE_EQ(b.mean_input_s, 0.005 / 100);
  EXPECT_DOUBLE_EQ(b.mean_output_s, 0.002 / 100);
  EXPECT_DOUBLE_EQ(b.batches, 25);
  EXPECT_DOUBLE_EQ(b.mean_batch_requests, 4);
  EXPECT_DOUBLE_EQ(b.mean_batch_elements, 16384);
  EXPECT_EQ(b.requests_by_code, (std::map<std::string, double>{{"OK", 98}, {"UNAVAILABLE", 2}}));
  EXPECT_TRUE(b.missing.empty());
}

TEST(DifferenceTest, ReportsFamiliesTheServerDoesNotExport) {
  auto other = ParsePrometheusText("process_cpu_seconds_total 3\n");
  ASSERT_TRUE(other.ok());
  const ServerBreakdown b = Difference({*other}, {*other}, "clipped_gelu");
  EXPECT_EQ(b.missing.size(), 8u);
  EXPECT_EQ(b.requests, 0);
}

TEST(ScrapeTest, UnreachableEndpointIsAClearError) {
  auto body = HttpGet("http://127.0.0.1:1/metrics", 2.0);
  ASSERT_FALSE(body.ok());
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(body.status().message().find("127.0.0.1:1"), std::string::npos) << body.status();
}

}  // namespace
}  // namespace cgelu::loadtest
