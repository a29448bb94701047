#!/usr/bin/env python3
"""Markdown tables from the --json reports that compare.sh and tune_batcher.sh leave in OUT_DIR.

Usage: python3 bench/echo/summarize.py OUT_DIR
"""
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def level(report):
    (only,) = report["levels"]
    return only


def fmt(x, digits=3):
    return f"{x:.{digits}f}"


def table(out):
    runs = {}
    for path in glob.glob(os.path.join(out, "table-*-c*-r*.json")):
        m = re.search(r"table-(\w+)-c(\d+)-r(\d+)\.json$", path)
        runs.setdefault((m.group(1), int(m.group(2))), []).append(level(load(path)))
    if not runs:
        return
    print("| concurrency | server | throughput/s (median, range) | p50 ms | p99 ms | "
          "throughput vs echo | p99 vs echo |")
    print("|---|---|---|---|---|---|---|")
    for c in sorted({c for _, c in runs}):
        med = {}
        for server in ("cgelu", "echo"):
            levels = runs.get((server, c), [])
            if not levels:
                continue
            thr = [l["throughput_rps"] for l in levels]
            med[server] = (statistics.median(thr),
                           statistics.median(l["latency_ms"]["p50"] for l in levels),
                           statistics.median(l["latency_ms"]["p99"] for l in levels))
            errors = sum(sum(l["errors"].values()) for l in levels)
            row = [str(c), server,
                   f"{med[server][0]:.0f} ({min(thr):.0f}–{max(thr):.0f})",
                   fmt(med[server][1]), fmt(med[server][2])]
            if server == "cgelu":
                row += ["", ""]
            else:
                cg = med.get("cgelu")
                row += [f"cgelu {cg[0] / med['echo'][0]:.2f}×" if cg else "",
                        f"cgelu {cg[2] / med['echo'][2]:.2f}×" if cg else ""]
            if errors:
                row[1] += f" ({errors} errors)"
            print("| " + " | ".join(row) + " |")
    print()
    print("cgelu-server's own view (--metrics-url), medians over the repeats:\n")
    print("| concurrency | server request ms | input ms | queue ms | compute ms per batch | "
          "output ms | requests per batch |")
    print("|---|---|---|---|---|---|---|")
    for c in sorted({c for s, c in runs if s == "cgelu"}):
        servers = [l["server"] for l in runs[("cgelu", c)] if "server" in l]
        if not servers:
            continue
        med = lambda k: statistics.median(s[k] for s in servers)
        print(f"| {c} | {fmt(med('mean_request_ms'))} | {fmt(med('mean_input_ms'))} | "
              f"{fmt(med('mean_queue_ms'))} | {fmt(med('mean_compute_ms'))} | "
              f"{fmt(med('mean_output_ms'))} | {med('mean_batch_requests'):.2f} |")
    print()


def connections(out):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "connections-*-n*.json"))):
        m = re.search(r"connections-(\w+)-n(\d+)\.json$", path)
        l = level(load(path))
        rows.append((m.group(1), int(m.group(2)), l))
    if not rows:
        return
    print("| server | connections | throughput/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for server, n, l in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {server} | {n} | {l['throughput_rps']:.0f} | {fmt(l['latency_ms']['p50'])} | "
              f"{fmt(l['latency_ms']['p99'])} |")
    print()


def sweep(out):
    reports = {s: os.path.join(out, f"sweep-{s}.json") for s in ("cgelu", "echo")}
    if not all(os.path.exists(p) for p in reports.values()):
        return
    data = {s: {l["concurrency"]: l for l in load(p)["levels"]} for s, p in reports.items()}
    print("| concurrency | cgelu thr/s | cgelu p50 | cgelu p99 | echo thr/s | echo p50 | echo p99 |")
    print("|---|---|---|---|---|---|---|")
    for c in sorted(data["cgelu"]):
        cg, ec = data["cgelu"][c], data["echo"].get(c)
        cells = [f"{c:g}", f"{cg['throughput_rps']:.0f}", fmt(cg["latency_ms"]["p50"]),
                 fmt(cg["latency_ms"]["p99"])]
        cells += ([f"{ec['throughput_rps']:.0f}", fmt(ec["latency_ms"]["p50"]),
                   fmt(ec["latency_ms"]["p99"])] if ec else ["", "", ""])
        print("| " + " | ".join(cells) + " |")
    print()


def tune(out):
    paths = sorted(glob.glob(os.path.join(out, "tune-*.json")))
    if not paths:
        return
    print("| server flags | concurrency | throughput/s | p50 ms | p99 ms | requests per batch | "
          "queue ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        report = load(path)
        for l in report["levels"]:
            s = l.get("server", {})
            print(f"| {report['label']} | {l['concurrency']:g} | {l['throughput_rps']:.0f} | "
                  f"{fmt(l['latency_ms']['p50'])} | {fmt(l['latency_ms']['p99'])} | "
                  f"{s.get('mean_batch_requests', float('nan')):.2f} | "
                  f"{fmt(s.get('mean_queue_ms', float('nan')))} | {sum(l['errors'].values())} |")
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py OUT_DIR")
    for part in (table, connections, sweep, tune):
        part(sys.argv[1])
