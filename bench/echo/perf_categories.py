"""Summarises a `perf record -g` profile of a server by category of work and by thread.

Usage: perf_categories.py PERF_DATA. Categories match symbol (and library) names; the first
matching category wins, in the order listed. Percentages are of all samples in the file.
"""
import re
import subprocess
import sys

CATEGORIES = [
    ("clipped GELU kernel", r"ClippedGelu"),
    ("absl deadlock graph", r"GraphCycles|Deadlock"),
    ("scheduler: context switches, wake-ups",
     r"finish_task_switch|_raw_spin_unlock|__schedule|\bschedule\b|futex|try_to_wake_up|"
     r"sched_yield|do_sched|pv_queued|select_task|enqueue_|dequeue_|update_curr|ttwu"),
    ("memory copies (user and socket)", r"memmove|memcpy|_copy_from_iter|_copy_to_iter|copy_user"),
    ("zero fill (memset)", r"memset"),
    ("malloc/free", r"malloc|_int_free|cfree|unlink_chunk|consolidate|operator new|"
                    r"operator delete|tcache"),
    ("page faults", r"page_fault|clear_page|unmap_page|handle_mm|do_anonymous|zap_|rmqueue|"
                    r"free_pages|lru"),
    ("TCP/IP stack", r"tcp_|ip_|__dev_|skb|sock_|net_rx|inet|loopback|napi|netif"),
    ("TBB", r"libtbb"),
    ("protobuf", r"protobuf"),
    ("prometheus-cpp", r"prometheus"),
    ("gRPC and abseil", r"grpc|gpr_|libgpr|libgrpc|absl"),
]


def report(perf_data, sort):
    return subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--sort", sort,
                           "--stdio"], capture_output=True, text=True, check=True).stdout


def main():
    perf_data = sys.argv[1]
    totals = {name: 0.0 for name, _ in CATEGORIES}
    other = 0.0
    for line in report(perf_data, "dso,sym").splitlines():
        match = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if not match:
            continue
        percent, symbol = float(match.group(1)), match.group(2) + " " + match.group(3)
        for name, pattern in CATEGORIES:
            if re.search(pattern, symbol):
                totals[name] += percent
                break
        else:
            other += percent
    for name, percent in sorted(totals.items(), key=lambda item: -item[1]):
        if percent >= 0.05:
            print(f"  {percent:5.1f}%  {name}")
    print(f"  {other:5.1f}%  other")
    threads = [re.match(r"\s+([0-9.]+)%\s+(.*\S)", line)
               for line in report(perf_data, "comm").splitlines()]
    print("  by thread: " + ", ".join(f"{m.group(2)} {m.group(1)}%" for m in threads if m))


if __name__ == "__main__":
    main()
