#include "server/logging.h"

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/support/fake_clock.h"

namespace cgelu::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp(std::string_view format, std::string_view level = "info") {
    out_.str("");
    ASSERT_TRUE(
        SetUpLogging(format, level, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)).ok());
  }
  std::vector<std::string> Lines() const {
    return absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  }
  void TearDown() override { ASSERT_TRUE(SetUpLogging("text", "off").ok()); }

  std::ostringstream out_;
};

TEST_F(LoggingTest, JsonLinesHaveTimestampLevelMessageAndTypedFields) {
  SetUp("json");
  LogEvent(spdlog::level::info, "server started",
           {{"address", "0.0.0.0:8001"},
            {"workers", 4},
            {"max_bytes", size_t{1} << 40},
            {"delay_s", 0.25},
            {"cuda", false}});
  LogEvent(spdlog::level::err, "request failed \"quoted\"\nsecond line",
           {{"request_id", std::string("r-17")}, {"msg", "reserved"}});
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();

  const nlohmann::ordered_json started = nlohmann::ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& item : started.items()) keys.push_back(item.key());
  EXPECT_THAT(keys, ElementsAre("ts", "level", "msg", "address", "workers", "max_bytes", "delay_s",
                                "cuda"));
  EXPECT_TRUE(std::regex_match(started["ts"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << started["ts"];
  EXPECT_EQ(started["level"], "info");
  EXPECT_EQ(started["msg"], "server started");
  EXPECT_EQ(started["address"], "0.0.0.0:8001");
  EXPECT_EQ(started["workers"], 4);
  EXPECT_EQ(started["max_bytes"], uint64_t{1} << 40);
  EXPECT_EQ(started["delay_s"], 0.25);
  EXPECT_EQ(started["cuda"], false);

  const nlohmann::json failed = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(failed["level"], "error");
  EXPECT_EQ(failed["msg"], "request failed \"quoted\"\nsecond line");
  EXPECT_EQ(failed["request_id"], "r-17");
  EXPECT_EQ(failed["_msg"], "reserved");
}

TEST_F(LoggingTest, JsonSurvivesInvalidUtf8) {
  SetUp("json");
  LogEvent(spdlog::level::warn, "unknown model", {{"model", std::string("bad\xff\xfe")}});
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json line = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line["level"], "warn");
  EXPECT_THAT(line["model"].get<std::string>(), HasSubstr("bad"));
}

TEST_F(LoggingTest, PlainSpdlogCallsUseTheSameFormat) {
  SetUp("json");
  spdlog::warn("disk {} full", "/tmp");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json line = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line["msg"], "disk /tmp full");
  EXPECT_EQ(line.size(), 3u);
}

TEST_F(LoggingTest, TextLinesAreLogfmtLike) {
  SetUp("text");
  LogEvent(spdlog::level::info, "server stopped",
           {{"reason", "signal SIGTERM"}, {"served", 12}, {"clean", true}, {"note", ""}});
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z info server stopped )"
                           R"(reason="signal SIGTERM" served=12 clean=true note="")")))
      << lines[0];
}

TEST_F(LoggingTest, LevelFiltersEvents) {
  SetUp("json", "WARNING");
  LogEvent(spdlog::level::info, "per request detail", {{"request_id", "r-1"}});
  LogEvent(spdlog::level::debug, "more detail");
  LogEvent(spdlog::level::warn, "kept");
  LogEvent(spdlog::level::critical, "kept too");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "kept");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["level"], "critical");
}

TEST(LogRequestIdTest, KeepsTheClientsIdOrMakesAUniqueOne) {
  EXPECT_EQ(LogRequestId("r-17"), "r-17");
  const std::string first = LogRequestId("");
  const std::string second = LogRequestId("");
  EXPECT_THAT(first, ::testing::StartsWith("srv-"));
  EXPECT_THAT(second, ::testing::StartsWith("srv-"));
  EXPECT_NE(first, second);
}

TEST_F(LoggingTest, RateLimiterCapsLinesPerKeyAndReportsTheRest) {
  SetUp("json");
  cgelu::testing::FakeClock clock(5'000'000);
  LogRateLimiter limiter("lines suppressed", "reason", {"rejected", "timeout"}, 3, &clock);
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limiter.Allow(0);
  EXPECT_EQ(allowed, 3);
  EXPECT_TRUE(limiter.Allow(1)) << "each key has its own budget";
  EXPECT_TRUE(Lines().empty()) << "nothing reported while the window lasts: " << out_.str();

  clock.AdvanceMicros(999'999);
  EXPECT_FALSE(limiter.Allow(0)) << "still the first second";
  clock.AdvanceMicros(1);
  EXPECT_TRUE(limiter.Allow(0)) << "a new window";
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  nlohmann::json report = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(report["level"], "warn");
  EXPECT_EQ(report["msg"], "lines suppressed");
  EXPECT_EQ(report["reason"], "rejected");
  EXPECT_EQ(report["suppressed"], 98);
  EXPECT_EQ(report["window_s"], 1.0);

  // Key 1 suppressed nothing: its new window reports nothing.
  clock.AdvanceMicros(2'000'000);
  EXPECT_TRUE(limiter.Allow(1));
  EXPECT_EQ(Lines().size(), 1u) << out_.str();

  // Flush reports what the current windows dropped, once.
  for (int i = 0; i < 5; ++i) limiter.Allow(1);
  limiter.Flush();
  limiter.Flush();
  lines = Lines();
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  report = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(report["reason"], "timeout");
  EXPECT_EQ(report["suppressed"], 3);
}

TEST(SetUpLoggingTest, RejectsUnknownFormatAndLevel) {
  absl::Status status = SetUpLogging("xml", "info");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'xml' is not one of: text, json"));
  status = SetUpLogging("json", "verbose");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'verbose' is not one of"));
}

}  // namespace
}  // namespace cgelu::server
