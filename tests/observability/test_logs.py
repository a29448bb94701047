"""observability.structured_logs: cgelu-server's logs as an operator's collector sees them.
- --log-format json: every line is one JSON object with ts (RFC 3339 UTC), level and msg;
- one line per start-up and shutdown event, the start-up line carrying the bound ports;
- one line per failed request, carrying its request id (a server-side `srv-N` one when the client
  sent none) and its failure reason; none for successful requests at info;
- --log-format text: one human-readable line per event with key=value fields;
- start-up errors (bad bucket list, --min above --max, bad --log-level) are one structured
  critical line in the chosen format and exit status 2; a bad --log-format, which CLI11 refuses
  before any logger exists, is refused in plain text.
"""

import json

import re
import subprocess

import harness

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test(argv):
    args = harness.parse_args(argv)

    with harness.Processes() as processes:
        server = harness.CgeluServer(processes, args.server)
        good_ids = [f"good-{i}" for i in range(5)]
        bad_ids = ["bad-model-1", "bad-model-2"]
        for request_id in good_ids:
            ok, _, stderr = harness.run_client(args.client, server.grpc_target, request_id)
            harness.check(ok, f"{request_id} failed: {stderr}")
        for request_id in bad_ids + [None]:
            ok, _, _ = harness.run_client(args.client, server.grpc_target, request_id,
                                          model="no_such_model")
            harness.check(not ok, f"{request_id} succeeded")
        exit_code = server.stop()
        harness.check(exit_code == 0, f"cgelu-server exited {exit_code} on SIGTERM")
        events = server.log_events()
        raw = server.log_text()

    harness.check(raw.endswith("\n"), "the last log line is unterminated")
    for event in events:
        keys = list(event)[:3]
        harness.check(keys == ["ts", "level", "msg"], f"line does not start ts, level, msg: {event}")
        harness.check(TIMESTAMP.fullmatch(event["ts"]), f"bad ts: {event}")
        harness.check(event["level"] in {"trace", "debug", "info", "warn", "error", "critical"},
                      f"bad level: {event}")

    messages = [e["msg"] for e in events if e["level"] == "info"]
    harness.check(messages[0] == "server started" and messages.count("server started") == 1,
                  f"info lines: {messages}")
    started = events[0]
    for field in ("grpc_port", "metrics_port", "backend", "version", "model"):
        harness.check(field in started, f"'server started' lacks {field}: {started}")
    harness.check(messages[-1] == "server stopped", f"no 'server stopped' last: {messages}")
    # Start-up and shutdown events only: nothing per request at info.
    harness.check(len(messages) <= 4, f"too many info lines for {len(good_ids)} requests: {messages}")
    for request_id in good_ids:
        harness.check(request_id not in raw, f"successful request {request_id} was logged")
    failures = [e for e in events if e["level"] in {"warn", "error"}]
    logged_ids = [e.get("request_id") for e in failures]
    harness.check(len(logged_ids) == 3 and sorted(logged_ids[:2]) == sorted(bad_ids) and
                  re.fullmatch(r"srv-\d+", logged_ids[2] or ""),
                  f"failed requests logged with ids {logged_ids}, expected {bad_ids} and srv-N")
    for event in failures:
        harness.check(event.get("reason") == "invalid" and event.get("code") == "NOT_FOUND",
                      f"failure line without its reason and code: {event}")

    # Text format: same events, human-readable.
    with harness.Processes() as processes:
        log_path = f"{processes.tmp.name}/text.log"
        process = processes.start("cgelu-server (text)",
                                  [args.server, "--grpc-address", "127.0.0.1:0",
                                   "--metrics-address", "127.0.0.1:0", "--log-format", "text"],
                                  stderr_path=log_path)
        line = harness.wait_until(lambda: next(
            (l for l in open(log_path).read().splitlines() if " server started " in l), None),
            30, "the text 'server started' line")
        harness.check(re.fullmatch(TIMESTAMP.pattern + r" info server started( \w+=\S+)+", line),
                      f"text line: {line!r}")
        harness.check(re.search(r" grpc_port=\d+ ", line), f"no grpc_port in {line!r}")
        process.terminate()
        harness.check(process.wait(timeout=15) == 0, "text-format server did not stop cleanly")

    result = subprocess.run([args.server, "--grpc-address", "127.0.0.1:0",
                             "--metrics-address", "", "--log-format", "xml"],
                            capture_output=True, text=True, timeout=15)
    harness.check(result.returncode != 0 and "xml" in result.stderr,
                  f"--log-format xml: exit {result.returncode}, stderr {result.stderr!r}")

    for flags, msg, needle in ((["--log-level", "loud"], "bad --log-level", "'loud'"),
                               (["--latency-buckets", "0.1,0.05"], "bad --latency-buckets",
                                "(0.05)"),
                               (["--batch-elements-buckets", "4,x"],
                                "bad --batch-elements-buckets", "'x'"),
                               (["--min", "2", "--max", "1"], "bad --min/--max", "")):
        for log_format in ("json", "text"):
            result = subprocess.run([args.server, "--grpc-address", "127.0.0.1:0",
                                     "--metrics-address", "", "--log-format", log_format, *flags],
                                    capture_output=True, text=True, timeout=15)
            lines = result.stderr.splitlines()
            harness.check(result.returncode == 2 and len(lines) == 1,
                          f"{flags}: exit {result.returncode}, stderr {result.stderr!r}")
            if log_format == "json":
                event = json.loads(lines[0])
                harness.check(event["level"] == "critical" and event["msg"] == msg and
                              needle in event["error"], f"{flags}: {event}")
            else:
                harness.check(re.fullmatch(TIMESTAMP.pattern + " critical " + re.escape(msg) +
                                           " error=.*", lines[0]) and needle in lines[0],
                              f"{flags}: {lines[0]!r}")


if __name__ == "__main__":
    harness.main(test)
