#include "args.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cgelu/client/npy.h"

namespace cgelu::loadtest {
namespace {

constexpr size_t kMaxLevels = 1000;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrReplaceAll(what, {{"\n", " "}}));
}

// Whether this process can open `path` for reading; a directory is not a readable file.
bool Readable(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return false;
  return std::ifstream(path, std::ios::binary).is_open();
}

absl::StatusOr<double> ParsePositive(absl::string_view text, absl::string_view spec) {
  double value = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(text), &value) || !std::isfinite(value) ||
      value <= 0) {
    return Invalid(
        absl::StrCat("bad level '", text, "' in '", spec, "': expected a positive number"));
  }
  return value;
}

}  // namespace

absl::StatusOr<std::vector<double>> ParseLevels(const std::string& spec) {
  std::vector<double> levels;
  if (absl::StripAsciiWhitespace(spec).empty()) return Invalid("empty level list");
  for (absl::string_view item : absl::StrSplit(spec, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.size() == 1) {
      auto value = ParsePositive(parts[0], spec);
      if (!value.ok()) return value.status();
      levels.push_back(*value);
      continue;
    }
    if (parts.size() > 3) {
      return Invalid(absl::StrCat("bad range '", item, "': expected START:END[:xFACTOR|:+STEP]"));
    }
    auto start = ParsePositive(parts[0], spec);
    if (!start.ok()) return start.status();
    auto end = ParsePositive(parts[1], spec);
    if (!end.ok()) return end.status();
    if (*end < *start) {
      return Invalid(absl::StrCat("bad range '", item, "': end is below start"));
    }
    absl::string_view step_text = parts.size() == 3 ? absl::StripAsciiWhitespace(parts[2]) : "x2";
    const bool geometric = absl::ConsumePrefix(&step_text, "x");
    absl::ConsumePrefix(&step_text, "+");
    auto step = ParsePositive(step_text, spec);
    if (!step.ok()) return step.status();
    if (geometric && *step <= 1) {
      return Invalid(absl::StrCat("bad range '", item, "': the factor must be above 1"));
    }
    // A relative epsilon keeps 0.1:0.3:+0.1 from losing its end to rounding.
    const double limit = *end * (1 + 1e-9);
    for (double v = *start; v <= limit; v = geometric ? v * *step : v + *step) {
      levels.push_back(std::min(v, *end));
      if (levels.size() > kMaxLevels) break;
    }
  }
  if (levels.size() > kMaxLevels) {
    return Invalid(absl::StrCat("'", spec, "' gives more than ", kMaxLevels, " levels"));
  }
  return levels;
}

absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& spec) {
  std::vector<int64_t> shape;
  const std::string normalized = absl::StrReplaceAll(spec, {{"x", ","}, {"[", ""}, {"]", ""}});
  if (absl::StripAsciiWhitespace(normalized).empty()) return shape;  // a scalar
  double elements = 1;
  for (absl::string_view dim : absl::StrSplit(normalized, ',')) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(dim), &value) || value < 0) {
      return Invalid(absl::StrCat("bad shape '", spec, "': dimensions must be integers >= 0"));
    }
    shape.push_back(value);
    elements *= static_cast<double>(value);
  }
  // A payload is held in memory several times over; 2^31 elements is far past any useful test.
  if (elements > static_cast<double>(int64_t{1} << 31)) {
    return Invalid(absl::StrCat("shape '", spec, "' has more than 2^31 elements"));
  }
  return shape;
}

int AutoConnections(const LoadTestConfig& config) {
  if (config.mode == LoopMode::kOpen) return 4;
  const int peak =
      *std::max_element(config.concurrency_levels.begin(), config.concurrency_levels.end());
  return std::clamp((peak + 15) / 16, 1, 4);
}

absl::StatusOr<ParsedArgs> ParseArgs(int argc, const char* const* argv) {
  ParsedArgs parsed;
  LoadTestConfig& c = parsed.config;
  CLI::App app{
      "cgelu-loadtest: load-tests an Open Inference Protocol (KServe v2) gRPC server such as "
      "cgelu-server, closed loop (a concurrency sweep) or open loop (a rate sweep)."};
  app.set_help_flag("-h,--help", "Print this help and exit");

  std::string concurrency_spec, rate_spec, arrival = "constant", shape_spec = "4096",
                                           dtype = "fp32", approximate;
  double min_value = 0, max_value = 0;
  bool tls = false, no_progress = false;

  app.add_option("--server", c.channel.target,
                 "Target: HOST:PORT, unix:PATH, or dns:///NAME:PORT (round-robin over every "
                 "resolved address)")
      ->capture_default_str();
  app.add_option("--lb-policy", c.channel.load_balancing_policy,
                 "gRPC load balancing across resolved addresses: round_robin or pick_first")
      ->check(CLI::IsMember({"round_robin", "pick_first"}))
      ->capture_default_str();
  app.add_option("--connections", c.connections,
                 "Channels (TCP connections) the calls are spread over; 0 = automatic: one per 16 "
                 "concurrent requests, 1 to 4 (4 in open loop)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--connect-timeout", c.connect_timeout_s,
                 "Seconds to wait for the server before giving up")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* concurrency = app.add_option(
      "--concurrency", concurrency_spec,
      "Closed loop: requests kept in flight, a list or range: 1,8,64 or 1:256:x2 (default 1)");
  auto* rate = app.add_option("--rate", rate_spec,
                              "Open loop: requests per second, a list or range: 100,1000 or "
                              "1000:8000:+1000");
  concurrency->excludes(rate);
  app.add_option("--arrival", arrival, "Open loop arrivals: constant or poisson")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  app.add_option("--max-in-flight", c.max_in_flight,
                 "Open loop: outstanding requests before sends wait (waiting shows as late sends)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}))
      ->capture_default_str();
  auto* duration = app.add_option("--duration", c.duration_s, "Measured seconds per level")
                       ->check(CLI::PositiveNumber)
                       ->capture_default_str();
  app.add_option("--warmup", c.warmup_s, "Unmeasured seconds before each level")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--requests", c.requests,
                 "Measured requests per level; without --duration the level lasts until they "
                 "complete")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", c.timeout_ms, "Deadline of each request, in ms")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();

  app.add_option("--model", c.infer.model, "Model name")->capture_default_str();
  app.add_option("--model-version", c.infer.model_version, "Model version (empty: the server's)");
  app.add_option("--input-name", c.infer.input_name, "Input tensor name")->capture_default_str();
  auto* shape = app.add_option("--shape", shape_spec, "Input shape, e.g. 4096 or 16,4096")
                    ->capture_default_str();
  auto* dtype_opt = app.add_option("--dtype", dtype, "Input datatype: fp32, fp64, fp16 or bf16")
                        ->check(CLI::IsMember({"fp32", "fp64", "fp16", "bf16"}, CLI::ignore_case))
                        ->capture_default_str();
  auto* min_opt = app.add_option("--min", min_value, "Lower clip bound sent with each request");
  auto* max_opt = app.add_option("--max", max_value, "Upper clip bound sent with each request");
  app.add_option("--approximate", approximate, "GELU form sent with each request: none or tanh")
      ->check(CLI::IsMember({"none", "tanh"}));
  app.add_option("--input", c.input_npy,
                 "Send this .npy tensor (fp32/fp64/fp16) instead of random data (read and checked "
                 "before the run)")
      ->check(CLI::ExistingFile)
      ->excludes(shape)
      ->excludes(dtype_opt);
  app.add_option("--distinct-inputs", c.distinct_inputs,
                 "Random payloads generated and cycled through")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the random payloads and Poisson arrivals")
      ->capture_default_str();

  app.add_flag("--verify", c.verify,
               "Compare a sample of responses with the clipped GELU reference and count "
               "mismatches (unset bounds are the protocol defaults -3, 3, none)");
  app.add_option("--verify-fraction", c.verify_fraction, "Fraction of responses --verify checks")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--metrics-url", c.metrics_url,
                 "Server's Prometheus endpoint, e.g. http://localhost:8002/metrics: scraped "
                 "before and after each level for the server-side breakdown");
  app.add_option("--csv", c.csv_path, "Write one CSV row per level to this file");
  app.add_option("--json", c.json_path, "Write the full report as JSON to this file");
  app.add_option("--svg", c.svg_path, "Write a throughput vs p50/p99 latency chart to this file");
  app.add_option("--label", c.label, "Name of this run in the chart and the JSON");
  app.add_flag("--no-progress", no_progress, "No progress line on stderr");
  auto* plot = app.add_option("--plot", c.plot_json,
                              "Do not run: draw --svg from these --json reports, one line per run")
                   ->check(CLI::ExistingFile);

  app.add_flag("--tls", tls, "Connect with TLS (implied by each --tls-* option)");
  app.add_option("--tls-ca", c.channel.tls.root_certs_path, "PEM roots (default: the system's)");
  app.add_option("--tls-cert", c.channel.tls.client_cert_path, "PEM client certificate (mTLS)");
  app.add_option("--tls-key", c.channel.tls.client_key_path, "PEM client key (mTLS)");
  app.add_option("--tls-server-name", c.channel.tls.server_name_override,
                 "Name expected in the server's certificate");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    parsed.help = app.help();
    return parsed;
  } catch (const CLI::ParseError& e) {
    return Invalid(absl::StrReplaceAll(e.what(), {{"\n", " "}}));
  } catch (const std::exception& e) {
    return Invalid(absl::StrReplaceAll(e.what(), {{"\n", " "}}));
  }

  if (plot->count() > 0 && c.svg_path.empty()) return Invalid("--plot needs --svg FILE");

  if (rate->count() > 0) {
    c.mode = LoopMode::kOpen;
    auto levels = ParseLevels(rate_spec);
    if (!levels.ok()) return Invalid(absl::StrCat("--rate: ", levels.status().message()));
    c.rate_levels = *levels;
  } else if (concurrency->count() > 0) {
    auto levels = ParseLevels(concurrency_spec);
    if (!levels.ok()) return Invalid(absl::StrCat("--concurrency: ", levels.status().message()));
    c.concurrency_levels.clear();
    for (double level : *levels) {
      if (level != std::floor(level) || level > 100000) {
        return Invalid(absl::StrCat("--concurrency: ", level, " is not a whole number 1..100000"));
      }
      c.concurrency_levels.push_back(static_cast<int>(level));
    }
  }
  c.arrival = arrival == "poisson" ? Arrival::kPoisson : Arrival::kConstant;
  if (c.requests > 0 && duration->count() == 0) c.duration_s = 0;  // until the requests complete

  if (!c.input_npy.empty()) {
    // Read now, so a broken file is a bad argument rather than a failed run. ReadNpy's messages
    // name the file.
    auto tensor = client::ReadNpy(c.input_npy);
    if (!tensor.ok()) return Invalid(absl::StrCat("--input: ", tensor.status().message()));
  } else {
    auto parsed_shape = ParseShape(shape_spec);
    if (!parsed_shape.ok())
      return Invalid(absl::StrCat("--shape: ", parsed_shape.status().message()));
    c.shape = *parsed_shape;
    c.datatype = absl::AsciiStrToUpper(dtype);  // the check above accepted any case
  }
  if (min_opt->count() > 0) c.infer.min = min_value;
  if (max_opt->count() > 0) c.infer.max = max_value;
  for (const auto& [name, bound] : {std::pair{"--min", c.infer.min}, {"--max", c.infer.max}}) {
    if (bound.has_value() && std::isnan(*bound)) return Invalid(absl::StrCat(name, " is NaN"));
  }
  if (c.infer.min && c.infer.max && *c.infer.min > *c.infer.max) {
    return Invalid(
        absl::StrCat("min should be < max (got min: ", *c.infer.min, ", max: ", *c.infer.max, ")"));
  }
  if (!approximate.empty()) c.infer.approximate = approximate;
  c.infer.timeout = std::chrono::milliseconds(c.timeout_ms);
  if (absl::StripAsciiWhitespace(c.channel.target).empty()) return Invalid("--server is empty");
  const client::TlsOptions& t = c.channel.tls;
  c.channel.tls.enabled = tls || !t.root_certs_path.empty() || !t.client_cert_path.empty() ||
                          !t.client_key_path.empty() || !t.server_name_override.empty();
  if (t.client_cert_path.empty() != t.client_key_path.empty()) {
    return Invalid("--tls-cert and --tls-key go together");
  }
  for (const auto& [flag, path] : {std::pair{"--tls-ca", t.root_certs_path},
                                   {"--tls-cert", t.client_cert_path},
                                   {"--tls-key", t.client_key_path}}) {
    if (!path.empty() && !Readable(path))
      return Invalid(absl::StrCat(flag, ": cannot read ", path));
  }
  if (c.label.empty()) c.label = c.channel.target;
  c.progress = !no_progress;
  return parsed;
}

}  // namespace cgelu::loadtest
