#include "report.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace cgelu::loadtest {
namespace {

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double Ms(double ns) { return ns / 1e6; }

constexpr double kPercentiles[] = {50, 90, 95, 99, 99.9};

std::string LevelName(const LevelResult& level) {
  return level.open_loop ? absl::StrFormat("%g/s", level.level)
                         : absl::StrFormat("c=%g", level.level);
}

std::string ErrorsByCode(const LevelResult& level) {
  return absl::StrJoin(level.errors, ";", absl::PairFormatter(":"));
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\"", "\"\""}}), "\"");
}

std::string XmlEscape(const std::string& text) {
  return absl::StrReplaceAll(text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// 1, 2 or 5 times a power of ten, so that about `target` steps cover `span`.
double NiceStep(double span, int target) {
  const double raw = span / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

// The nearest 1, 2 or 5 times a power of ten at or above (`up`) or at or below `v` > 0.
double LogTick(double v, bool up) {
  const double power = std::pow(10.0, std::floor(std::log10(v)));
  if (up) {
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
      if (m * power >= v * (1 - 1e-12)) return m * power;
    }
  }
  for (double m : {5.0, 2.0, 1.0}) {
    if (m * power <= v * (1 + 1e-12)) return m * power;
  }
  return power;
}

std::string FormatTick(double v) { return absl::StrFormat("%g", v); }

}  // namespace

void PrintTable(std::ostream& out, const RunDescription& run,
                const std::vector<LevelResult>& levels, const std::string& metrics_url) {
  out << absl::StrFormat("cgelu-loadtest: %s (%s), model %s, payload %s\n", run.label, run.target,
                         run.model, run.payload);
  std::string window = run.duration_s > 0 ? absl::StrFormat("%g s measured", run.duration_s)
                                          : absl::StrFormat("%d requests", run.requests);
  if (run.duration_s > 0 && run.requests > 0)
    absl::StrAppend(&window, absl::StrFormat(" or %d requests", run.requests));
  out << absl::StrFormat("%s, %d connections, %g s warm-up and %s per level%s\n",
                         run.open_loop ? absl::StrCat("open loop (", run.arrival, " arrivals)")
                                       : std::string("closed loop"),
                         run.connections, run.warmup_s, window,
                         run.verify ? ", verifying a sample of responses" : "");
  out << "latency in ms from the scheduled send to the response, ok requests only; percentiles "
         "within +0.1%\n\n";

  const bool open = !levels.empty() && levels.front().open_loop;
  std::string header = absl::StrFormat("%-11s %10s", open ? "rate/s" : "concurrency", "thru/s");
  if (open) absl::StrAppend(&header, absl::StrFormat(" %10s %8s %9s", "sent/s", "late", "lateMax"));
  absl::StrAppend(&header, absl::StrFormat(" %9s %9s %7s %8s %8s %8s %8s %8s %8s %8s %8s", "sent",
                                           "ok", "errors", "min", "mean", "p50", "p90", "p95",
                                           "p99", "p99.9", "max"));
  if (run.verify) absl::StrAppend(&header, absl::StrFormat(" %9s", "mismatch"));
  out << header << "\n";
  for (const LevelResult& l : levels) {
    const LatencyHistogram& h = l.latency_ns;
    std::string row = absl::StrFormat("%-11g %10.1f", l.level, l.throughput_rps);
    if (open) {
      absl::StrAppend(&row, absl::StrFormat(" %10.1f %8d %9.3f", l.sent_rps, l.late_sends,
                                            Ms(l.send_lateness_ns.max())));
    }
    absl::StrAppend(&row, absl::StrFormat(" %9d %9d %7d %8.3f %8.3f", l.sent, l.ok,
                                          l.errors_total(), Ms(h.min()), Ms(h.mean())));
    for (double p : kPercentiles)
      absl::StrAppend(&row, absl::StrFormat(" %8.3f", Ms(h.Percentile(p))));
    absl::StrAppend(&row, absl::StrFormat(" %8.3f", Ms(h.max())));
    if (run.verify) absl::StrAppend(&row, absl::StrFormat(" %4d/%-4d", l.mismatches, l.verified));
    out << row << "\n";
  }

  for (const LevelResult& l : levels) {
    if (l.interrupted) {
      out << absl::StrFormat("%s was interrupted after %.3f s of its window\n", LevelName(l),
                             l.window_s);
    }
    if (!l.errors.empty()) {
      out << absl::StrFormat("%s errors by code: %s (first: %s)\n", LevelName(l),
                             absl::StrJoin(l.errors, ", ", absl::PairFormatter(" ")),
                             l.first_error);
    }
    if (l.mismatches > 0) {
      out << absl::StrFormat("%s: %d of %d verified responses mismatched; first: %s\n",
                             LevelName(l), l.mismatches, l.verified, l.first_mismatch);
    }
  }

  if (!metrics_url.empty()) {
    out << absl::StrFormat("\nserver side (%s), means over each level:\n", metrics_url);
    out << absl::StrFormat("%-11s %9s %11s %9s %9s %11s %10s %8s %11s %12s %s\n",
                           open ? "rate/s" : "concurrency", "requests", "request ms", "input ms",
                           "queue ms", "compute ms", "output ms", "batches", "reqs/batch",
                           "elems/batch", "codes");
    for (const LevelResult& l : levels) {
      if (!l.server) {
        out << absl::StrFormat("%-11g unavailable: %s\n", l.level, l.server_error);
        continue;
      }
      const ServerBreakdown& s = *l.server;
      out << absl::StrFormat(
          "%-11g %9.0f %11.3f %9.3f %9.3f %11.3f %10.3f %8.0f %11.2f %12.0f %s\n", l.level,
          s.requests, s.mean_request_s * 1e3, s.mean_input_s * 1e3, s.mean_queue_s * 1e3,
          s.mean_compute_s * 1e3, s.mean_output_s * 1e3, s.batches, s.mean_batch_requests,
          s.mean_batch_elements, absl::StrJoin(s.requests_by_code, ",", absl::PairFormatter("=")));
      if (!s.missing.empty()) {
        out << absl::StrFormat("           (not exported by the server: %s)\n",
                               absl::StrJoin(s.missing, ", "));
      }
    }
  }
}

std::vector<std::string> Warnings(const std::vector<LevelResult>& levels) {
  std::vector<std::string> warnings;
  for (const LevelResult& l : levels) {
    if (l.generator_fell_behind) {
      warnings.push_back(absl::StrFormat(
          "warning: at %s the load generator could not keep up: %d of %d sends left more than 1 "
          "ms late (p99 %.3f ms, max %.3f ms); latencies still count from the scheduled times",
          LevelName(l), l.late_sends, l.send_lateness_ns.count(),
          Ms(l.send_lateness_ns.Percentile(99)), Ms(l.send_lateness_ns.max())));
    }
    if (l.sent == 0) {
      warnings.push_back(
          absl::StrFormat("warning: %s sent no request in its window", LevelName(l)));
    }
  }
  return warnings;
}

std::string ToCsv(const RunDescription& run, const std::vector<LevelResult>& levels) {
  std::string csv =
      "label,target,mode,level,window_s,sent,ok,errors,throughput_rps,latency_min_ms,"
      "latency_mean_ms,latency_p50_ms,latency_p90_ms,latency_p95_ms,latency_p99_ms,"
      "latency_p999_ms,latency_max_ms,sent_rps,late_sends,send_lateness_max_ms,verified,"
      "mismatches,server_requests,server_request_ms,server_input_ms,server_queue_ms,"
      "server_compute_ms,server_output_ms,server_batch_requests,server_batch_elements,"
      "errors_by_code,interrupted\n";
  for (const LevelResult& l : levels) {
    const LatencyHistogram& h = l.latency_ns;
    absl::StrAppend(&csv, CsvField(run.label), ",", CsvField(run.target), ",",
                    l.open_loop ? "rate" : "concurrency", ",", l.level, ",", l.window_s, ",",
                    l.sent, ",", l.ok, ",", l.errors_total(), ",",
                    absl::StrFormat("%.3f", l.throughput_rps));
    absl::StrAppend(&csv, absl::StrFormat(",%.6f,%.6f", Ms(h.min()), Ms(h.mean())));
    for (double p : kPercentiles)
      absl::StrAppend(&csv, absl::StrFormat(",%.6f", Ms(h.Percentile(p))));
    absl::StrAppend(&csv, absl::StrFormat(",%.6f", Ms(h.max())));
    if (l.open_loop) {
      absl::StrAppend(&csv, absl::StrFormat(",%.3f,%d,%.6f", l.sent_rps, l.late_sends,
                                            Ms(l.send_lateness_ns.max())));
    } else {
      absl::StrAppend(&csv, ",,,");
    }
    absl::StrAppend(&csv, ",", l.verified, ",", l.mismatches);
    if (l.server) {
      const ServerBreakdown& s = *l.server;
      absl::StrAppend(
          &csv, absl::StrFormat(",%.0f,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f", s.requests,
                                s.mean_request_s * 1e3, s.mean_input_s * 1e3, s.mean_queue_s * 1e3,
                                s.mean_compute_s * 1e3, s.mean_output_s * 1e3,
                                s.mean_batch_requests, s.mean_batch_elements));
    } else {
      absl::StrAppend(&csv, ",,,,,,,,");
    }
    absl::StrAppend(&csv, ",", CsvField(ErrorsByCode(l)), ",", l.interrupted ? "1" : "0", "\n");
  }
  return csv;
}

nlohmann::json ToJson(const RunDescription& run, const std::vector<LevelResult>& levels) {
  nlohmann::json report = {
      {"tool", "cgelu-loadtest"},
      {"label", run.label},
      {"target", run.target},
      {"model", run.model},
      {"mode", run.open_loop ? "open" : "closed"},
      {"connections", run.connections},
      {"payload", run.payload},
      {"warmup_s", run.warmup_s},
      {"duration_s", run.duration_s},
      {"requests_per_level", run.requests},
      {"verify", run.verify},
      {"latency_precision", "percentiles never below the exact value, at most 0.1% above"},
  };
  if (run.open_loop) report["arrival"] = run.arrival;
  nlohmann::json out_levels = nlohmann::json::array();
  for (const LevelResult& l : levels) {
    const LatencyHistogram& h = l.latency_ns;
    nlohmann::json latency = {{"min", Ms(h.min())},          {"mean", Ms(h.mean())},
                              {"max", Ms(h.max())},          {"p50", Ms(h.Percentile(50))},
                              {"p90", Ms(h.Percentile(90))}, {"p95", Ms(h.Percentile(95))},
                              {"p99", Ms(h.Percentile(99))}, {"p99.9", Ms(h.Percentile(99.9))}};
    nlohmann::json level = {
        {l.open_loop ? "rate_rps" : "concurrency", l.level},
        {"window_s", l.window_s},
        {"interrupted", l.interrupted},
        {"sent", l.sent},
        {"ok", l.ok},
        {"errors", l.errors},
        {"throughput_rps", l.throughput_rps},
        {"latency_ms", latency},
    };
    if (!l.first_error.empty()) level["first_error"] = l.first_error;
    if (l.open_loop) {
      level["sent_rps"] = l.sent_rps;
      level["late_sends"] = l.late_sends;
      level["send_lateness_ms"] = {{"mean", Ms(l.send_lateness_ns.mean())},
                                   {"p99", Ms(l.send_lateness_ns.Percentile(99))},
                                   {"max", Ms(l.send_lateness_ns.max())}};
      level["generator_fell_behind"] = l.generator_fell_behind;
    }
    if (run.verify) {
      level["verify"] = {{"checked", l.verified}, {"mismatches", l.mismatches}};
      if (!l.first_mismatch.empty()) level["verify"]["first_mismatch"] = l.first_mismatch;
    }
    if (l.server) {
      const ServerBreakdown& s = *l.server;
      level["server"] = {{"requests", s.requests},
                         {"mean_request_ms", s.mean_request_s * 1e3},
                         {"mean_input_ms", s.mean_input_s * 1e3},
                         {"mean_queue_ms", s.mean_queue_s * 1e3},
                         {"mean_compute_ms", s.mean_compute_s * 1e3},
                         {"mean_output_ms", s.mean_output_s * 1e3},
                         {"batches", s.batches},
                         {"mean_batch_requests", s.mean_batch_requests},
                         {"mean_batch_elements", s.mean_batch_elements},
                         {"requests_by_code", s.requests_by_code},
                         {"missing", s.missing}};
    } else if (!l.server_error.empty()) {
      level["server_error"] = l.server_error;
    }
    out_levels.push_back(std::move(level));
  }
  report["levels"] = std::move(out_levels);
  return report;
}

ChartSeries SeriesOf(const RunDescription& run, const std::vector<LevelResult>& levels) {
  ChartSeries series{run.label, {}};
  for (const LevelResult& l : levels) {
    if (l.ok == 0) continue;
    series.points.push_back({LevelName(l), l.throughput_rps, Ms(l.latency_ns.Percentile(50)),
                             Ms(l.latency_ns.Percentile(99))});
  }
  return series;
}

absl::StatusOr<ChartSeries> SeriesFromJson(const nlohmann::json& report) {
  if (!report.is_object() || report.value("tool", "") != "cgelu-loadtest" ||
      !report.contains("levels") || !report["levels"].is_array()) {
    return absl::InvalidArgumentError("not a cgelu-loadtest --json report");
  }
  ChartSeries series{report.value("label", ""), {}};
  try {
    for (const auto& level : report["levels"]) {
      if (level.at("ok").get<int64_t>() == 0) continue;
      const bool open = level.contains("rate_rps");
      const double value = level.at(open ? "rate_rps" : "concurrency").get<double>();
      series.points.push_back(
          {open ? absl::StrFormat("%g/s", value) : absl::StrFormat("c=%g", value),
           level.at("throughput_rps").get<double>(), level.at("latency_ms").at("p50").get<double>(),
           level.at("latency_ms").at("p99").get<double>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed cgelu-loadtest report: ", e.what()));
  }
  return series;
}

std::string RenderSvg(const std::vector<ChartSeries>& series, const std::string& title) {
  constexpr double kWidth = 860, kHeight = 520;
  constexpr double kLeft = 80, kRight = 30, kTop = 60, kBottom = 60;
  constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c",
                                     "#9467bd", "#ff7f0e", "#8c564b"};
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;

  double max_x = 0, min_y = INFINITY, max_y = 0;
  for (const auto& s : series) {
    for (const auto& p : s.points) {
      max_x = std::max(max_x, p.throughput_rps);
      min_y = std::min({min_y, p.p50_ms, p.p99_ms});
      max_y = std::max({max_y, p.p50_ms, p.p99_ms});
    }
  }
  if (max_x <= 0) max_x = 1;
  if (!(min_y > 0) || !std::isfinite(min_y)) min_y = 0.01;
  if (max_y <= min_y) max_y = min_y * 10;
  const double x_step = NiceStep(max_x * 1.05, 6);
  const double x_max = std::ceil(max_x * 1.05 / x_step) * x_step;
  // Latency on a log axis: a sweep spans orders of magnitude.
  const double y_lo = LogTick(min_y / 1.2, /*up=*/false);
  const double y_hi = LogTick(max_y * 1.2, /*up=*/true);
  auto px = [&](double x) { return kLeft + x / x_max * plot_w; };
  auto py = [&](double y) {
    return kTop + plot_h -
           (std::log10(y) - std::log10(y_lo)) / (std::log10(y_hi) - std::log10(y_lo)) * plot_h;
  };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%g\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kWidth / 2, XmlEscape(title));
  // Grid and ticks.
  for (double x = 0; x <= x_max * (1 + 1e-9); x += x_step) {
    absl::StrAppend(
        &svg, absl::StrFormat("<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
                              "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                              px(x), kTop, px(x), kTop + plot_h, px(x), kTop + plot_h + 18,
                              FormatTick(x)));
  }
  for (double decade = std::pow(10.0, std::floor(std::log10(y_lo))); decade < y_hi * 1.001;
       decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double y = decade * m;
      if (y < y_lo * 0.999) continue;
      if (y > y_hi * 1.001) break;
      absl::StrAppend(
          &svg, absl::StrFormat("<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"%s\"/>"
                                "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                                kLeft, py(y), kLeft + plot_w, py(y), m == 1.0 ? "#bbb" : "#eee",
                                kLeft - 6, py(y) + 4, FormatTick(y)));
    }
  }
  absl::StrAppend(
      &svg,
      absl::StrFormat(
          "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n"
          "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">throughput (responses/s)</text>\n"
          "<text transform=\"translate(20 %g) rotate(-90)\" text-anchor=\"middle\">latency (ms, "
          "log "
          "scale): solid p50, dashed p99</text>\n",
          kLeft, kTop, plot_w, plot_h, kLeft + plot_w / 2, kHeight - 16, kTop + plot_h / 2));

  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* color = kColors[i % std::size(kColors)];
    for (bool p99 : {false, true}) {
      std::string points;
      for (const auto& p : s.points) {
        absl::StrAppend(&points, absl::StrFormat("%.1f,%.1f ", px(p.throughput_rps),
                                                 py(p99 ? p.p99_ms : p.p50_ms)));
      }
      absl::StrAppend(
          &svg, absl::StrFormat(
                    "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                    points, color, p99 ? " stroke-dasharray=\"6 4\"" : ""));
      for (const auto& p : s.points) {
        const double y = p99 ? p.p99_ms : p.p50_ms;
        absl::StrAppend(&svg, absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                                              "fill=\"%s\" stroke=\"%s\"><title>%s %s: %.1f/s, %s "
                                              "%.3f ms</title></circle>\n",
                                              px(p.throughput_rps), py(y), p99 ? "white" : color,
                                              color, XmlEscape(s.label), XmlEscape(p.level),
                                              p.throughput_rps, p99 ? "p99" : "p50", y));
        if (p99) {
          absl::StrAppend(
              &svg, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\" "
                                    "text-anchor=\"middle\">%s</text>\n",
                                    px(p.throughput_rps), py(y) - 8, color, XmlEscape(p.level)));
        }
      }
    }
    const double ly = kTop + 16 + 18 * static_cast<double>(i);
    absl::StrAppend(
        &svg, absl::StrFormat(
                  "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"/>"
                  "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\" "
                  "stroke-dasharray=\"6 4\"/><text x=\"%g\" y=\"%g\">%s</text>\n",
                  kLeft + 12, ly, kLeft + 36, ly, color, kLeft + 42, ly, kLeft + 66, ly, color,
                  kLeft + 74, ly + 4, XmlEscape(s.label)));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace cgelu::loadtest
