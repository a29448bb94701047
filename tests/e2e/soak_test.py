"""Soak test (slow suite): cgelu-loadtest keeps cgelu-server busy for a long while; every answer must be
OK and correct, and the server's resident memory must stop growing once it has warmed up.

Usage: soak_test.py CGELU_SERVER CGELU_LOADTEST (CTest passes them). CGELU_SOAK_MINUTES (default 10)
is the measured time; CGELU_SOAK_CONCURRENCY (default 32) the requests kept in flight.

Memory: the server's VmRSS is sampled every second. Allocators and gRPC's pools grow during the
first minutes of load and then stay put, so the peak of the last fifth of the run is compared with
the peak of the first fifth after the warm-up. It may exceed it by at most
max(RSS_SLACK_MIB, RSS_SLACK_FRACTION of it): a leak of even 32 bytes per request at a few thousand
requests per second for ten minutes is well over 64 MiB and fails.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from server_process import ServerProcess

RSS_SLACK_MIB = 64
RSS_SLACK_FRACTION = 0.10
WARMUP_S = 30


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS for pid %d" % pid)


def main():
    server_bin, loadtest_bin = sys.argv[1], sys.argv[2]
    minutes = float(os.environ.get("CGELU_SOAK_MINUTES", "10"))
    concurrency = int(os.environ.get("CGELU_SOAK_CONCURRENCY", "32"))
    duration_s = max(1, int(minutes * 60))
    # Failed requests would log a line each; the events are read below.
    server = ServerProcess(server_bin, "--max-queue-delay-us", "200")
    samples = []  # (seconds since the load started, RSS MiB)
    done = threading.Event()

    def sample():
        start = time.monotonic()
        while not done.wait(1.0):
            samples.append((time.monotonic() - start, rss_mib(server.proc.pid)))

    sampler = threading.Thread(target=sample)
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "soak.json")
        sampler.start()
        try:
            load = subprocess.run(
                [loadtest_bin, "--server", server.target, "--concurrency",
                 str(concurrency), "--warmup", str(WARMUP_S), "--duration", str(duration_s),
                 "--shape", "16,4096", "--distinct-inputs", "8", "--verify", "--no-progress",
                 "--metrics-url", "http://127.0.0.1:%d/metrics" % server.metrics_port,
                 "--json", report_path],
                capture_output=True, text=True, timeout=duration_s + WARMUP_S + 600)
        finally:
            done.set()
            sampler.join()
        print(load.stdout)
        failures = []
        if load.returncode != 0:
            failures.append("cgelu-loadtest exited %d: %s" % (load.returncode, load.stderr.strip()))
        with open(report_path) as f:
            level = json.load(f)["levels"][0]

    server_rc = server.stop(timeout=120)
    if server_rc != 0:
        failures.append("cgelu-server exited %d after SIGTERM" % server_rc)

    errors = sum(level["errors"].values())  # the report counts errors by gRPC status code
    if errors != 0:
        failures.append("%d errors %s, the first: %s"
                        % (errors, level["errors"], level.get("first_error")))
    if level["ok"] == 0:
        failures.append("no request succeeded")
    if level["verify"]["mismatches"] != 0:
        failures.append("%d wrong answers, the first: %s"
                        % (level["verify"]["mismatches"], level["verify"].get("first_mismatch")))
    if level.get("interrupted"):
        failures.append("the load test was interrupted")
    failed = server.events_with("request failed")
    if failed:
        failures.append("the server logged %d failed requests, the first: %s"
                        % (len(failed), json.dumps(failed[0])))

    measured = [(t, r) for t, r in samples if t >= WARMUP_S]
    if len(measured) < 10:
        failures.append("only %d RSS samples in the measured window" % len(measured))
    else:
        fifth = max(1, len(measured) // 5)
        early = max(r for _, r in measured[:fifth])
        late = max(r for _, r in measured[-fifth:])
        allowed = max(RSS_SLACK_MIB, RSS_SLACK_FRACTION * early)
        print("soak: %d OK requests in %d s at concurrency %d (%.0f/s); server RSS %.1f MiB "
              "early, %.1f MiB late, peak %.1f MiB (growth allowed %.1f MiB)"
              % (level["ok"], duration_s, concurrency, level["throughput_rps"], early, late,
                 max(r for _, r in samples), allowed))
        if late - early > allowed:
            failures.append("server RSS grew from %.1f to %.1f MiB during the run"
                            % (early, late))

    for failure in failures:
        print("soak: FAIL: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
