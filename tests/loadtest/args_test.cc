#include "args.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cgelu/client/npy.h"

namespace cgelu::loadtest {
namespace {

absl::StatusOr<ParsedArgs> Parse(const std::vector<const char*>& args) {
  std::vector<const char*> argv = {"cgelu-loadtest"};
  argv.insert(argv.end(), args.begin(), args.end());
  return ParseArgs(static_cast<int>(argv.size()), argv.data());
}

// A file under the test's temporary directory holding `bytes`; returns its path.
std::string WriteTempFile(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A bad argument: INVALID_ARGUMENT, one non-empty line that contains `expected`.
void ExpectOneLineError(const std::vector<const char*>& args, const std::string& expected) {
  auto parsed = Parse(args);
  std::string joined;
  for (const char* a : args) joined += std::string(a) + " ";
  ASSERT_FALSE(parsed.ok()) << joined;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << joined;
  const std::string message(parsed.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << joined << ": " << message;
  EXPECT_NE(message.find(expected), std::string::npos) << joined << ": " << message;
}

TEST(ParseLevelsTest, ListsAndRanges) {
  EXPECT_EQ(*ParseLevels("1,8,64"), (std::vector<double>{1, 8, 64}));
  EXPECT_EQ(*ParseLevels("1:256:x2"), (std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256}));
  EXPECT_EQ(*ParseLevels("1:100:x10"), (std::vector<double>{1, 10, 100}));
  EXPECT_EQ(*ParseLevels("10:50:+10"), (std::vector<double>{10, 20, 30, 40, 50}));
  EXPECT_EQ(*ParseLevels("10:35:10"), (std::vector<double>{10, 20, 30}));
  EXPECT_EQ(*ParseLevels("1:4"), (std::vector<double>{1, 2, 4}));
  EXPECT_EQ(*ParseLevels("1:2:x2, 100"), (std::vector<double>{1, 2, 100}));
  const auto fractional = *ParseLevels("0.1:0.3:+0.1");
  ASSERT_EQ(fractional.size(), 3u);
  EXPECT_DOUBLE_EQ(fractional[2], 0.3);
}

TEST(ParseLevelsTest, RejectsBadSpecs) {
  for (const char* spec : {"", "0", "-1", "abc", "1,,2", "8:1", "1:8:x1", "1:8:x0.5", "1:8:+0",
                           "1:2:3:4", "1:100000:+1", "nan", "inf"}) {
    EXPECT_FALSE(ParseLevels(spec).ok()) << spec;
  }
}

TEST(ParseShapeTest, Forms) {
  EXPECT_EQ(*ParseShape("4096"), (std::vector<int64_t>{4096}));
  EXPECT_EQ(*ParseShape("16,4096"), (std::vector<int64_t>{16, 4096}));
  EXPECT_EQ(*ParseShape("2x3x4"), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(*ParseShape("[0]"), (std::vector<int64_t>{0}));
  EXPECT_TRUE(ParseShape("")->empty());  // a scalar
  EXPECT_FALSE(ParseShape("-1").ok());
  EXPECT_FALSE(ParseShape("4,a").ok());
  EXPECT_FALSE(ParseShape("65536,65536").ok());  // 2^32 elements
}

TEST(ParseArgsTest, DefaultsAreAClosedLoopAtConcurrencyOne) {
  auto parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const LoadTestConfig& c = parsed->config;
  EXPECT_EQ(c.mode, LoopMode::kClosed);
  EXPECT_EQ(c.concurrency_levels, std::vector<int>{1});
  EXPECT_EQ(c.channel.target, "localhost:8001");
  EXPECT_EQ(c.shape, std::vector<int64_t>{4096});
  EXPECT_EQ(c.datatype, "FP32");
  EXPECT_FALSE(c.infer.min.has_value());
  EXPECT_FALSE(c.verify);
  EXPECT_FALSE(parsed->help.has_value());
}

TEST(ParseArgsTest, ClosedLoopSweep) {
  auto parsed = Parse({"--server",      "dns:///cgelu:8001",
                       "--concurrency", "1:64:x4",
                       "--connections", "3",
                       "--duration",    "5",
                       "--warmup",      "1",
                       "--dtype",       "BF16",
                       "--shape",       "2,8",
                       "--min",         "-1",
                       "--max",         "2.5",
                       "--approximate", "tanh",
                       "--verify",      "--csv",
                       "a.csv",         "--json",
                       "a.json",        "--svg",
                       "a.svg"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const LoadTestConfig& c = parsed->config;
  EXPECT_EQ(c.channel.target, "dns:///cgelu:8001");
  EXPECT_EQ(c.concurrency_levels, (std::vector<int>{1, 4, 16, 64}));
  EXPECT_EQ(c.connections, 3);
  EXPECT_EQ(c.duration_s, 5);
  EXPECT_EQ(c.warmup_s, 1);
  EXPECT_EQ(c.datatype, "BF16");
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(c.infer.min, -1);
  EXPECT_EQ(c.infer.max, 2.5);
  EXPECT_EQ(c.infer.approximate, "tanh");
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(c.csv_path, "a.csv");
  EXPECT_EQ(c.label, "dns:///cgelu:8001");
}

TEST(ParseArgsTest, OpenLoop) {
  auto parsed = Parse({"--rate", "100,200", "--arrival", "poisson", "--requests", "500"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const LoadTestConfig& c = parsed->config;
  EXPECT_EQ(c.mode, LoopMode::kOpen);
  EXPECT_EQ(c.rate_levels, (std::vector<double>{100, 200}));
  EXPECT_EQ(c.arrival, Arrival::kPoisson);
  EXPECT_EQ(c.requests, 500);
  EXPECT_EQ(c.duration_s, 0);  // --requests alone: the level lasts until they complete
  EXPECT_EQ(Parse({"--requests", "5", "--duration", "3"})->config.duration_s, 3);
}

TEST(ParseArgsTest, TlsFlags) {
  auto parsed = Parse({"--tls-ca", "/dev/null", "--tls-server-name", "cgelu.local"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->config.channel.tls.enabled);
  EXPECT_EQ(parsed->config.channel.tls.server_name_override, "cgelu.local");
  EXPECT_FALSE(Parse({})->config.channel.tls.enabled);
  EXPECT_TRUE(Parse({"--tls"})->config.channel.tls.enabled);
  const std::string cert = WriteTempFile("client.pem", "cert"),
                    key = WriteTempFile("client.key", "key");
  auto mtls = Parse({"--tls-cert", cert.c_str(), "--tls-key", key.c_str()});
  ASSERT_TRUE(mtls.ok()) << mtls.status();
  EXPECT_TRUE(mtls->config.channel.tls.enabled);
  ExpectOneLineError({"--tls-cert", cert.c_str()}, "--tls-cert and --tls-key go together");
  ExpectOneLineError({"--tls-key", key.c_str()}, "--tls-cert and --tls-key go together");
}

TEST(ParseArgsTest, TlsServerNameAloneTurnsTlsOn) {
  // A name to check the server's certificate against only means something over TLS, so it asks
  // for TLS as --tls-ca does, instead of being ignored by a plaintext channel.
  auto parsed = Parse({"--tls-server-name", "cgelu.local"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->config.channel.tls.enabled);
  EXPECT_EQ(parsed->config.channel.tls.server_name_override, "cgelu.local");
}

TEST(ParseArgsTest, TlsFilesMustBeReadableWhenParsed) {
  // The tests may run as root, who can read any file: a directory and a missing path stand for
  // files this process cannot read.
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "/no-such.pem";
  const std::string cert = WriteTempFile("readable.pem", "cert");
  for (const std::string& bad : {missing, dir}) {
    ExpectOneLineError({"--tls-ca", bad.c_str()}, "--tls-ca: cannot read " + bad);
    ExpectOneLineError({"--tls-cert", bad.c_str(), "--tls-key", cert.c_str()},
                       "--tls-cert: cannot read " + bad);
    ExpectOneLineError({"--tls-cert", cert.c_str(), "--tls-key", bad.c_str()},
                       "--tls-key: cannot read " + bad);
  }
}

TEST(ParseArgsTest, InputNpyIsReadAndCheckedWhenParsed) {
  client::Tensor tensor{"FP32", {2, 3}, std::string(6 * sizeof(float), '\0')};
  const std::string good = WriteTempFile("good.npy", client::SerializeNpy(tensor));
  auto parsed = Parse({"--input", good.c_str()});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.input_npy, good);

  const std::string serialized = client::SerializeNpy(tensor);
  const std::string garbage = WriteTempFile("garbage.npy", "not a numpy file");
  const std::string truncated =
      WriteTempFile("truncated.npy", serialized.substr(0, serialized.size() - 4));
  std::string int32 = serialized;  // the header says '<i4' instead of '<f4'
  int32.replace(int32.find("<f4"), 3, "<i4");
  const std::string wrong_dtype = WriteTempFile("int32.npy", int32);
  for (const std::string& bad : {garbage, truncated, wrong_dtype}) {
    ExpectOneLineError({"--input", bad.c_str()}, "--input: " + bad + ": ");
  }
  ExpectOneLineError({"--input", ::testing::TempDir().c_str()}, "--input");  // a directory
}

TEST(ParseArgsTest, HelpIsNotAnError) {
  auto parsed = Parse({"--help"});
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->help.has_value());
  EXPECT_NE(parsed->help->find("--concurrency"), std::string::npos);
}

TEST(ParseArgsTest, BadArgumentsAreOneLineErrors) {
  const std::vector<std::vector<const char*>> bad = {
      {"--concurrency", "1", "--rate", "10"},
      {"--concurrency", "1.5"},
      {"--concurrency", "0"},
      {"--rate", "abc"},
      {"--arrival", "burst"},
      {"--dtype", "int32"},
      {"--duration", "0"},
      {"--duration", "-3"},
      {"--requests", "0"},
      {"--min", "2", "--max", "1"},
      {"--min", "nan"},
      {"--approximate", "fast"},
      {"--shape", "4,-1"},
      {"--connections", "-1"},
      {"--verify-fraction", "2"},
      {"--no-such-flag"},
      {"--server", ""},
      {"--input", "/no/such/file.npy"},
      {"--plot", "/dev/null"},
      {"extra-positional"},
  };
  for (const auto& args : bad) {
    auto parsed = Parse(args);
    std::string joined;
    for (const char* a : args) joined += std::string(a) + " ";
    ASSERT_FALSE(parsed.ok()) << joined;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << joined;
    EXPECT_EQ(parsed.status().message().find('\n'), std::string::npos) << joined;
    EXPECT_FALSE(parsed.status().message().empty()) << joined;
  }
  EXPECT_EQ(Parse({"--min", "2", "--max", "1"}).status().message(),
            "min should be < max (got min: 2, max: 1)");
}

TEST(AutoConnectionsTest, OnePerSixteenInFlightUpToFour) {
  LoadTestConfig c;
  c.concurrency_levels = {1};
  EXPECT_EQ(AutoConnections(c), 1);
  c.concurrency_levels = {1, 8, 16};
  EXPECT_EQ(AutoConnections(c), 1);
  c.concurrency_levels = {17};
  EXPECT_EQ(AutoConnections(c), 2);
  c.concurrency_levels = {1, 256};
  EXPECT_EQ(AutoConnections(c), 4);
  c.mode = LoopMode::kOpen;
  EXPECT_EQ(AutoConnections(c), 4);
}

}  // namespace
}  // namespace cgelu::loadtest
