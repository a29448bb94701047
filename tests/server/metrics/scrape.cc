#include "tests/server/metrics/scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cgelu::testing {
namespace {

// Parses `a="x",b="y"` (escapes kept as written) into sorted `key="value"` strings.
absl::StatusOr<std::vector<std::string>> ParseLabels(absl::string_view text) {
  std::vector<std::string> labels;
  size_t i = 0;
  while (i < text.size()) {
    const size_t equals = text.find('=', i);
    if (equals == absl::string_view::npos || equals + 1 >= text.size() || text[equals + 1] != '"') {
      return absl::InvalidArgumentError(absl::StrCat("bad labels: ", text));
    }
    size_t end = equals + 2;
    while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
    if (end >= text.size()) return absl::InvalidArgumentError(absl::StrCat("bad labels: ", text));
    labels.emplace_back(text.substr(i, end + 1 - i));
    i = end + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  std::sort(labels.begin(), labels.end());
  return labels;
}

std::string Key(absl::string_view name, const std::vector<std::string>& labels) {
  return labels.empty() ? std::string(name)
                        : absl::StrCat(name, "{", absl::StrJoin(labels, ","), "}");
}

}  // namespace

absl::StatusOr<std::string> HttpGet(int port, absl::string_view path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to 127.0.0.1:", port));
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char buffer[8192];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return absl::UnavailableError("no HTTP header in the answer");
  const absl::string_view status_line =
      absl::string_view(response).substr(0, response.find("\r\n"));
  if (!absl::StrContains(status_line, " 200 ")) {
    return absl::UnavailableError(absl::StrCat("HTTP answer: ", status_line));
  }
  return response.substr(body + 4);
}

absl::StatusOr<Exposition> ParseExposition(absl::string_view text) {
  Exposition exposition;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      const std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() != 2) return absl::InvalidArgumentError(absl::StrCat("bad TYPE: ", line));
      exposition.types[parts[0]] = parts[1];
      continue;
    }
    if (line.front() == '#') continue;
    const size_t brace = line.find('{');
    const size_t space = line.find(' ');
    absl::string_view name, rest;
    std::vector<std::string> labels;
    if (brace != absl::string_view::npos && brace < space) {
      const size_t close = line.rfind('}');
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("no '}': ", line));
      }
      name = line.substr(0, brace);
      absl::StatusOr<std::vector<std::string>> parsed =
          ParseLabels(line.substr(brace + 1, close - brace - 1));
      if (!parsed.ok()) return parsed.status();
      labels = *std::move(parsed);
      rest = line.substr(close + 1);
    } else if (space != absl::string_view::npos) {
      name = line.substr(0, space);
      rest = line.substr(space);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("no value: ", line));
    }
    const std::vector<absl::string_view> value_and_time =
        absl::StrSplit(rest, ' ', absl::SkipWhitespace());
    double value;
    if (value_and_time.empty()) return absl::InvalidArgumentError(absl::StrCat("no value: ", line));
    if (value_and_time[0] == "+Inf") {
      value = INFINITY;
    } else if (!absl::SimpleAtod(value_and_time[0], &value)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value: ", line));
    }
    exposition.samples[Key(name, labels)] = value;
  }
  return exposition;
}

std::optional<double> Exposition::Get(absl::string_view name, absl::string_view labels) const {
  absl::StatusOr<std::vector<std::string>> parsed = ParseLabels(labels);
  if (!parsed.ok()) return std::nullopt;
  auto it = samples.find(Key(name, *parsed));
  if (it == samples.end()) return std::nullopt;
  return it->second;
}

std::vector<std::pair<std::string, double>> Exposition::Matching(absl::string_view name,
                                                                 absl::string_view labels) const {
  std::vector<std::pair<std::string, double>> matching;
  absl::StatusOr<std::vector<std::string>> wanted = ParseLabels(labels);
  if (!wanted.ok()) return matching;
  for (const auto& [key, value] : samples) {
    if (absl::string_view(key).substr(0, key.find('{')) != name) continue;
    bool all = true;
    for (const std::string& label : *wanted) {
      all = all && (absl::StrContains(key, absl::StrCat("{", label, ",")) ||
                    absl::StrContains(key, absl::StrCat(",", label, ",")) ||
                    absl::StrContains(key, absl::StrCat(",", label, "}")) ||
                    absl::StrContains(key, absl::StrCat("{", label, "}")));
    }
    if (all) matching.emplace_back(key, value);
  }
  return matching;
}

double Exposition::Sum(absl::string_view name, absl::string_view labels) const {
  double sum = 0;
  for (const auto& [key, value] : Matching(name, labels)) sum += value;
  return sum;
}

std::vector<std::pair<double, double>> Exposition::Buckets(absl::string_view name,
                                                           absl::string_view labels) const {
  std::vector<std::pair<double, double>> buckets;
  for (const auto& [key, value] : Matching(absl::StrCat(name, "_bucket"), labels)) {
    const size_t start = key.find("le=\"");
    if (start == std::string::npos) continue;
    const std::string le = key.substr(start + 4, key.find('"', start + 4) - start - 4);
    double bound = INFINITY;
    if (le != "+Inf" && !absl::SimpleAtod(le, &bound)) continue;
    buckets.emplace_back(bound, value);
  }
  std::sort(buckets.begin(), buckets.end());
  return buckets;
}

size_t Exposition::Count(absl::string_view name) const {
  size_t count = 0;
  for (const auto& [key, value] : samples) {
    count += absl::string_view(key).substr(0, key.find('{')) == name;
  }
  return count;
}

}  // namespace cgelu::testing
