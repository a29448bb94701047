#include "server/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cgelu::server {
namespace {

using ::testing::HasSubstr;

// A real /proc/<pid>/stat line for a command whose name holds spaces and parentheses. utime 250,
// stime 150, starttime 12345, vsize 104857600, rss 2560 pages.
constexpr const char* kStat =
    "4242 (cgelu (srv) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 12345 "
    "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0\n";

TEST(ParseProcStatTest, ReadsFieldsAfterTheCommandName) {
  absl::StatusOr<ProcStat> stat = ParseProcStat(kStat, 100, 4096);
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_DOUBLE_EQ(stat->cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(stat->start_seconds_after_boot, 123.45);
  EXPECT_EQ(stat->virtual_memory_bytes, 104857600);
  EXPECT_EQ(stat->resident_memory_bytes, 2560.0 * 4096);
}

TEST(ParseProcStatTest, RejectsTruncatedOrGarbledText) {
  EXPECT_THAT(ParseProcStat("4242 cgelu S 1", 100, 4096).status().message(), HasSubstr("')'"));
  EXPECT_THAT(ParseProcStat("4242 (cgelu) S 1 2 3", 100, 4096).status().message(),
              HasSubstr("fields"));
  std::string garbled = kStat;
  garbled.replace(garbled.find(" 250 "), 5, " abc ");
  EXPECT_THAT(ParseProcStat(garbled, 100, 4096).status().message(), HasSubstr("not a number"));
}

TEST(ParseBootTimeTest, FindsBtime) {
  EXPECT_EQ(*ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").ok());
  EXPECT_FALSE(ParseBootTime("btime soon\n").ok());
}

TEST(ParseMaxOpenFilesTest, ReadsTheSoftLimit) {
  constexpr const char* kLimits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max open files            1024                 524288               files     \n";
  EXPECT_EQ(*ParseMaxOpenFiles(kLimits), 1024);
  EXPECT_EQ(*ParseMaxOpenFiles("Max open files  unlimited unlimited files\n"), std::nullopt);
  EXPECT_FALSE(ParseMaxOpenFiles("Max cpu time unlimited unlimited seconds\n").ok());
  EXPECT_FALSE(ParseMaxOpenFiles("Max open files  lots lots files\n").ok());
}

class ProcessCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("proc-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "77" / "fd");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::filesystem::path& relative, const std::string& text) {
    std::ofstream(root_ / relative) << text;
  }
  std::map<std::string, std::pair<prometheus::MetricType, double>> Collect() {
    std::map<std::string, std::pair<prometheus::MetricType, double>> values;
    for (const prometheus::MetricFamily& family : ProcessCollector(root_, "77").Collect()) {
      EXPECT_EQ(family.metric.size(), 1u) << family.name;
      const prometheus::ClientMetric& metric = family.metric.front();
      values[family.name] = {family.type, family.type == prometheus::MetricType::Counter
                                              ? metric.counter.value
                                              : metric.gauge.value};
    }
    return values;
  }

  std::filesystem::path root_;
};

TEST_F(ProcessCollectorTest, ReadsEveryValueFromTheTree) {
  Write("stat", "cpu 1 2 3\nbtime 1700000000\n");
  Write("77/stat", kStat);
  Write("77/limits", "Max open files            4096                 4096                 files\n");
  for (const char* fd : {"0", "1", "2", "7"}) Write(std::filesystem::path("77/fd") / fd, "");
  const auto values = Collect();
  using prometheus::MetricType;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(values.size(), 6u);
  EXPECT_EQ(values.at("process_cpu_seconds_total"),
            std::make_pair(MetricType::Counter, 400 / ticks));
  EXPECT_EQ(values.at("process_resident_memory_bytes"),
            std::make_pair(MetricType::Gauge, 2560 * page));
  EXPECT_EQ(values.at("process_virtual_memory_bytes"),
            std::make_pair(MetricType::Gauge, 104857600.0));
  EXPECT_EQ(values.at("process_start_time_seconds"),
            std::make_pair(MetricType::Gauge, 1700000000 + 12345 / ticks));
  EXPECT_EQ(values.at("process_open_fds"), std::make_pair(MetricType::Gauge, 4.0));
  EXPECT_EQ(values.at("process_max_fds"), std::make_pair(MetricType::Gauge, 4096.0));
}

TEST_F(ProcessCollectorTest, LeavesOutWhatCannotBeRead) {
  Write("77/stat", "garbage");
  Write("77/limits", "Max open files  unlimited unlimited files\n");
  std::filesystem::remove(root_ / "77" / "fd");
  EXPECT_TRUE(Collect().empty());
}

}  // namespace
}  // namespace cgelu::server
