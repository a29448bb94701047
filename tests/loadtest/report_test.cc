#include "report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_split.h"

namespace cgelu::loadtest {
namespace {

LevelResult Level(double concurrency, int64_t ok, int64_t base_ns) {
  LevelResult l;
  l.level = concurrency;
  l.window_s = 2;
  l.ok = ok;
  l.ok_in_window = ok;
  l.throughput_rps = static_cast<double>(ok) / 2;
  for (int64_t i = 1; i <= ok; ++i) l.latency_ns.Record(base_ns * i / ok + base_ns);
  l.errors["UNAVAILABLE"] = 2;
  l.sent = l.ok + 2;
  l.first_error = "queue full";
  return l;
}

RunDescription SampleRun() {
  RunDescription run;
  run.label = "cgelu, \"cpu\"";
  run.target = "127.0.0.1:8001";
  run.model = "clipped_gelu";
  run.connections = 2;
  run.payload = "FP32 [4096]";
  run.warmup_s = 1;
  run.duration_s = 2;
  return run;
}

TEST(ReportTest, TableShowsEveryLevelAndTheErrorsByCode) {
  std::vector<LevelResult> levels = {Level(1, 100, 1'000'000), Level(8, 400, 2'000'000)};
  levels[1].server = ServerBreakdown{.requests = 400,
                                     .mean_request_s = 0.0015,
                                     .mean_queue_s = 0.0004,
                                     .mean_compute_s = 0.0008,
                                     .batches = 100,
                                     .mean_batch_requests = 4,
                                     .mean_batch_elements = 16384,
                                     .requests_by_code = {{"OK", 400}},
                                     .missing = {}};
  std::ostringstream out;
  PrintTable(out, SampleRun(), levels, "http://127.0.0.1:8002/metrics");
  const std::string table = out.str();
  EXPECT_NE(table.find("closed loop, 2 connections"), std::string::npos) << table;
  EXPECT_NE(table.find("concurrency     thru/s      sent        ok  errors"), std::string::npos)
      << table;
  EXPECT_NE(table.find("\n8                200.0       402       400       2"), std::string::npos)
      << table;
  EXPECT_NE(table.find("c=8 errors by code: UNAVAILABLE 2 (first: queue full)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("server side"), std::string::npos);
  // The breakdown's header names every column its rows print, in order.
  const size_t header = table.find("concurrency  requests  request ms  input ms");
  ASSERT_NE(header, std::string::npos) << table;
  const std::string header_line = table.substr(header, table.find('\n', header) - header);
  const std::string row_line = table.substr(table.find("\n8  ", header) + 1);
  EXPECT_EQ(header_line.find("codes"), row_line.find("OK=400")) << header_line << "\n" << row_line;
  EXPECT_NE(table.find("unavailable"), std::string::npos);  // level 1 has no breakdown
  EXPECT_NE(table.find("OK=400"), std::string::npos);
}

TEST(ReportTest, CsvHasAHeaderAndOneRowPerLevelWithTheSameColumns) {
  const std::string csv = ToCsv(SampleRun(), {Level(1, 100, 1'000'000), Level(8, 400, 2'000'000)});
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("label,target,mode,level,window_s,sent,ok,errors,", 0), 0u) << lines[0];
  // The label holds a comma and quotes: it is quoted, so every row splits into the header's
  // column count once quoted fields are respected.
  EXPECT_EQ(
      lines[1].rfind("\"cgelu, \"\"cpu\"\"\",127.0.0.1:8001,concurrency,1,2,102,100,2,50.000,", 0),
      0u)
      << lines[1];
  const auto columns = [](const std::string& line) {
    size_t n = 1;
    bool quoted = false;
    for (char ch : line) {
      if (ch == '"') quoted = !quoted;
      if (ch == ',' && !quoted) ++n;
    }
    return n;
  };
  EXPECT_EQ(columns(lines[1]), columns(lines[0]));
  EXPECT_EQ(columns(lines[2]), columns(lines[0]));
  EXPECT_NE(lines[2].find("UNAVAILABLE:2"), std::string::npos);
}

TEST(ReportTest, JsonRoundTripsIntoAChartSeries) {
  const RunDescription run = SampleRun();
  std::vector<LevelResult> levels = {Level(1, 100, 1'000'000), Level(8, 400, 2'000'000),
                                     Level(64, 0, 1)};
  const nlohmann::json json = ToJson(run, levels);
  EXPECT_EQ(json["levels"].size(), 3u);
  EXPECT_EQ(json["levels"][1]["concurrency"], 8);
  EXPECT_EQ(json["levels"][1]["sent"], 402);
  EXPECT_EQ(json["levels"][1]["ok"], 400);
  EXPECT_EQ(json["levels"][1]["errors"]["UNAVAILABLE"], 2);
  EXPECT_DOUBLE_EQ(json["levels"][1]["latency_ms"]["p50"].get<double>(),
                   levels[1].latency_ns.Percentile(50) / 1e6);

  auto series = SeriesFromJson(nlohmann::json::parse(json.dump()));
  ASSERT_TRUE(series.ok()) << series.status();
  const ChartSeries direct = SeriesOf(run, levels);
  ASSERT_EQ(series->points.size(), 2u);  // the level without a success is not drawn
  ASSERT_EQ(direct.points.size(), 2u);
  EXPECT_EQ(series->label, direct.label);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(series->points[i].level, direct.points[i].level);
    EXPECT_DOUBLE_EQ(series->points[i].p99_ms, direct.points[i].p99_ms);
  }
  EXPECT_FALSE(SeriesFromJson(nlohmann::json{{"tool", "other"}}).ok());
  EXPECT_FALSE(
      SeriesFromJson(nlohmann::json::parse(R"({"tool":"cgelu-loadtest","levels":[{"ok":"x"}]})"))
          .ok());
}

TEST(ReportTest, SvgHasBothPercentilesForEverySeriesAndEscapesLabels) {
  const RunDescription run = SampleRun();
  ChartSeries a = SeriesOf(run, {Level(1, 100, 1'000'000), Level(8, 400, 2'000'000)});
  ChartSeries b = a;
  b.label = "echo <baseline>";
  const std::string svg = RenderSvg({a, b}, "throughput & latency");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t polylines = 0;
  for (size_t pos = svg.find("<polyline"); pos != std::string::npos;
       pos = svg.find("<polyline", pos + 1)) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 4u);  // p50 and p99 of each series
  EXPECT_NE(svg.find("echo &lt;baseline&gt;"), std::string::npos);
  EXPECT_NE(svg.find("throughput &amp; latency"), std::string::npos);
  EXPECT_EQ(svg.find("<baseline>"), std::string::npos);
  EXPECT_NE(svg.find("c=8"), std::string::npos);
  // An empty chart still renders.
  EXPECT_NE(RenderSvg({}, "empty").find("</svg>"), std::string::npos);
}

TEST(ReportTest, WarnsWhenTheGeneratorFellBehind) {
  LevelResult l = Level(1000, 100, 1'000'000);
  l.open_loop = true;
  l.generator_fell_behind = true;
  l.late_sends = 30;
  for (int i = 0; i < 100; ++i) l.send_lateness_ns.Record(i < 70 ? 0 : 5'000'000);
  // Errors (Level() has two) and mismatches are results, shown by the table: not warnings.
  LevelResult mismatched = Level(2, 10, 1000);
  mismatched.verified = 3;
  mismatched.mismatches = 1;
  const auto warnings = Warnings({l, mismatched});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("at 1000/s the load generator could not keep up: 30 of 100 sends"),
            std::string::npos)
      << warnings[0];
}

TEST(ReportTest, WarnsWhenALevelSentNothingInItsWindow) {
  LevelResult empty;
  empty.level = 4;
  const auto warnings = Warnings({Level(1, 100, 1'000'000), empty});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "warning: c=4 sent no request in its window");
}

}  // namespace
}  // namespace cgelu::loadtest
