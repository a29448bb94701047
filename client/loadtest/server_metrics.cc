#include "server_metrics.h"

#include <curl/curl.h>

#include <cmath>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cgelu::loadtest {
namespace {

absl::Status BadLine(absl::string_view line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("metrics line '", line, "': ", why));
}

bool ParseValue(absl::string_view text, double* value) {
  if (text == "+Inf" || text == "Inf") return *value = INFINITY, true;
  if (text == "-Inf") return *value = -INFINITY, true;
  if (text == "NaN") return *value = NAN, true;
  return absl::SimpleAtod(text, value);
}

size_t WriteToString(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

bool ModelMatches(const MetricSample& sample, const std::string& model) {
  auto it = sample.labels.find("model");
  return it == sample.labels.end() || it->second == model;
}

// Sum of every matching series of `name` in `snapshot`; nullopt when none exists.
std::optional<double> Total(const MetricsSnapshot& snapshot, const std::string& name,
                            const std::string& model) {
  std::optional<double> total;
  for (const auto& sample : snapshot.samples) {
    if (sample.name == name && ModelMatches(sample, model))
      total = total.value_or(0) + sample.value;
  }
  return total;
}

}  // namespace

absl::StatusOr<std::vector<MetricSample>> ParsePrometheusText(const std::string& text) {
  std::vector<MetricSample> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    MetricSample sample;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ' && line[pos] != '\t') ++pos;
    sample.name = std::string(line.substr(0, pos));
    if (sample.name.empty()) return BadLine(line, "no metric name");
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (true) {
        while (pos < line.size() && (line[pos] == ' ' || line[pos] == ',')) ++pos;
        if (pos >= line.size()) return BadLine(line, "unterminated labels");
        if (line[pos] == '}') {
          ++pos;
          break;
        }
        const size_t eq = line.find('=', pos);
        if (eq == absl::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return BadLine(line, "label without =\"value\"");
        }
        std::string key(absl::StripAsciiWhitespace(line.substr(pos, eq - pos)));
        std::string value;
        pos = eq + 2;
        while (pos < line.size() && line[pos] != '"') {
          if (line[pos] == '\\' && pos + 1 < line.size()) {
            ++pos;
            value += line[pos] == 'n' ? '\n' : line[pos];
          } else {
            value += line[pos];
          }
          ++pos;
        }
        if (pos >= line.size()) return BadLine(line, "unterminated label value");
        ++pos;  // closing quote
        sample.labels.emplace(std::move(key), std::move(value));
      }
    }
    std::vector<absl::string_view> rest =
        absl::StrSplit(line.substr(pos), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (rest.empty() || rest.size() > 2)
      return BadLine(line, "expected a value and an optional timestamp");
    if (!ParseValue(rest[0], &sample.value)) return BadLine(line, "value is not a number");
    samples.push_back(std::move(sample));
  }
  return samples;
}

absl::StatusOr<std::string> HttpGet(const std::string& url, double timeout_s) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string body;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode result = curl_easy_perform(curl);
  long http_code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_code);
  curl_easy_cleanup(curl);
  if (result != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", error[0] != 0 ? error : curl_easy_strerror(result)));
  }
  if (http_code != 200) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": HTTP ", http_code));
  }
  return body;
}

absl::StatusOr<MetricsSnapshot> Scrape(const std::string& url) {
  auto body = HttpGet(url, 5.0);
  if (!body.ok()) return body.status();
  auto samples = ParsePrometheusText(*body);
  if (!samples.ok()) return samples.status();
  return MetricsSnapshot{*std::move(samples)};
}

ServerBreakdown Difference(const MetricsSnapshot& before, const MetricsSnapshot& after,
                           const std::string& model) {
  ServerBreakdown out;
  // Mean of a histogram over the interval, and its count delta.
  auto histogram = [&](const std::string& family, double* mean, double* count) {
    auto sum_after = Total(after, family + "_sum", model);
    auto count_after = Total(after, family + "_count", model);
    if (!sum_after || !count_after) {
      out.missing.push_back(family);
      return;
    }
    const double dcount = *count_after - Total(before, family + "_count", model).value_or(0);
    const double dsum = *sum_after - Total(before, family + "_sum", model).value_or(0);
    if (count != nullptr) *count = dcount;
    *mean = dcount > 0 ? dsum / dcount : 0;
  };
  histogram("cgelu_request_duration_seconds", &out.mean_request_s, &out.requests);
  histogram("cgelu_input_preparation_duration_seconds", &out.mean_input_s, nullptr);
  histogram("cgelu_queue_duration_seconds", &out.mean_queue_s, nullptr);
  histogram("cgelu_output_preparation_duration_seconds", &out.mean_output_s, nullptr);
  histogram("cgelu_compute_duration_seconds", &out.mean_compute_s, nullptr);
  histogram("cgelu_batch_size_requests", &out.mean_batch_requests, &out.batches);
  histogram("cgelu_batch_size_elements", &out.mean_batch_elements, nullptr);

  std::map<std::string, double> before_by_code;
  for (const auto& sample : before.samples) {
    if (sample.name == "cgelu_requests_total" && ModelMatches(sample, model)) {
      before_by_code[sample.labels.count("code") ? sample.labels.at("code") : ""] += sample.value;
    }
  }
  bool have_codes = false;
  for (const auto& sample : after.samples) {
    if (sample.name != "cgelu_requests_total" || !ModelMatches(sample, model)) continue;
    have_codes = true;
    const std::string code = sample.labels.count("code") ? sample.labels.at("code") : "";
    out.requests_by_code[code] += sample.value;
  }
  for (auto it = out.requests_by_code.begin(); it != out.requests_by_code.end();) {
    it->second -= before_by_code[it->first];
    it = it->second == 0 ? out.requests_by_code.erase(it) : std::next(it);
  }
  if (!have_codes) out.missing.push_back("cgelu_requests_total");
  return out;
}

}  // namespace cgelu::loadtest
