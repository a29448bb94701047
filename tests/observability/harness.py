"""Shared helpers of the observability tests: start cgelu-server and Prometheus on loopback, scrape
and parse /metrics, query Prometheus's HTTP API, and clean every process up.

Every child gets PR_SET_PDEATHSIG, so it dies with the test even if CTest kills the test on a
timeout; `Processes` also terminates them in order on normal exit. Only the standard library is
used. Binaries and paths come from the command line that CTest passes (see CMakeLists.txt).
"""

import argparse
import ctypes
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def free_port():
    """A loopback port nobody listens on right now (Prometheus cannot bind port 0 and report it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_until(predicate, timeout_s, what, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError, TestFailure) as error:
            last_error = error
        time.sleep(interval_s)
    raise TestFailure(f"timed out after {timeout_s} s waiting for {what} (last error: {last_error})")


class Processes:
    """Context manager owning the children of one test; stops them newest first."""

    def __init__(self):
        self.children = []  # (name, Popen)
        self.tmp = tempfile.TemporaryDirectory(prefix="cgelu-obs-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.tmp.cleanup()
        return False

    def start(self, name, argv, stderr_path=None):
        stderr = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr, preexec_fn=_die_with_parent)
        finally:
            if stderr_path:
                stderr.close()  # the child holds its own copy
        self.children.append((name, process))
        return process


class CgeluServer:
    """cgelu-server on 127.0.0.1 with ports chosen by the kernel, logging JSON lines to a file."""

    def __init__(self, processes, binary, extra_args=()):
        self.log_path = os.path.join(processes.tmp.name, "server.log")
        self.process = processes.start(
            "cgelu-server",
            [binary, "--grpc-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
             "--log-format", "json", "--kernel-threads", "1", *extra_args],
            stderr_path=self.log_path)
        started = wait_until(self._started_event, 30, "cgelu-server's 'server started' log line")
        self.grpc_port = started["grpc_port"]
        self.metrics_port = started["metrics_port"]
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def _started_event(self):
        check(self.process.poll() is None,
              f"cgelu-server exited with {self.process.returncode}: {self.log_text()}")
        for event in self.log_events():
            if event.get("msg") == "server started":
                return event
        return None

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_events(self):
        """Every complete log line, parsed; a line that is not JSON fails the test."""
        events = []
        for line in self.log_text().splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # still being written
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise TestFailure(f"log line is not JSON ({error}): {line!r}")
        return events

    def stop(self, timeout_s=15):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


def run_client(client_binary, target, request_id, model=None, values="1,2,3", shape="3"):
    """One Infer call through cgelu-client (`request_id` None: the request carries no id);
    returns (ok, seconds the call took end to end, stderr)."""
    argv = [client_binary, "infer", "--server", target, "--values", values, "--shape", shape]
    if request_id is not None:
        argv += ["--id", request_id]
    if model is not None:
        argv += ["--model", model]
    started = time.monotonic()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=30, preexec_fn=_die_with_parent)
    return result.returncode == 0, time.monotonic() - started, result.stderr


# --- the Prometheus text format -------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Exposition:
    def __init__(self, text):
        self.types = {}
        self.samples = []  # (name, {labels}, value)
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
            elif line and not line.startswith("#"):
                match = _SAMPLE.match(line)
                check(match is not None, f"unparsable sample line: {line!r}")
                labels = dict(_LABEL.findall(match.group(3) or ""))
                self.samples.append((match.group(1), labels, float(match.group(4))))

    def names(self):
        return {name for name, _, _ in self.samples}

    def sum(self, name, **labels):
        return sum(value for n, l, value in self.samples
                   if n == name and all(l.get(k) == v for k, v in labels.items()))


def scrape(url):
    return Exposition(http_get(url))


# --- the Prometheus server ------------------------------------------------------------------

def live_config(example_path, targets, interval="1s"):
    """The example scrape config `example_path` (deploy/monitoring/prometheus/prometheus.yml)
    made live: its one static `targets` list replaced by `targets`, every scrape and evaluation
    interval set to `interval`, and its rule files given as absolute paths next to the example.
    Anything else stays as the example has it, so the test proves the example itself; a change of
    shape that these substitutions no longer fit fails the test instead of being skipped."""
    with open(example_path) as f:
        text = f.read()
    text, n = re.subn(r"^([ \t]*- targets: )\[[^\]]*\][ \t]*$",
                      lambda m: m.group(1) + json.dumps(targets), text, flags=re.M)
    check(n == 1, f"{example_path}: expected one static `- targets: [...]` line, found {n}")
    text, n = re.subn(r"^([ \t]*(?:scrape|evaluation)_interval: )\S+", rf"\g<1>{interval}", text,
                      flags=re.M)
    check(n >= 2, f"{example_path}: expected the scrape and evaluation intervals, found {n}")
    block = re.search(r"^rule_files:\n((?:[ \t]+- .*\n)+)", text, flags=re.M)
    check(block is not None, f"{example_path}: no rule_files list")
    directory = os.path.dirname(os.path.abspath(example_path))
    rules = re.sub(r"^([ \t]+- )(.*)$",
                   lambda m: m.group(1) + json.dumps(os.path.join(directory, m.group(2).strip())),
                   block.group(1), flags=re.M)
    return text[:block.start(1)] + rules + text[block.end(1):]


class Prometheus:
    """Debian's Prometheus on 127.0.0.1:<free port>, TSDB in the test's temp dir, running
    `config_text` (see live_config)."""

    def __init__(self, processes, binary, config_text):
        workdir = os.path.join(processes.tmp.name, "prometheus")
        os.makedirs(workdir)
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            f.write(config_text)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = processes.start(
            "prometheus",
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={workdir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stderr_path=os.path.join(workdir, "prometheus.log"))
        self.log_path = os.path.join(workdir, "prometheus.log")
        wait_until(self._ready, 30, "Prometheus /-/ready")

    def _ready(self):
        check(self.process.poll() is None, f"prometheus exited: {open(self.log_path).read()}")
        return http_get(f"{self.url}/-/ready", timeout=1).strip() != ""

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as error:
            raise TestFailure(f"{url}: HTTP {error.code}: {error.read().decode()}")
        check(body.get("status") == "success", f"{url}: {body}")
        return body["data"]

    def query(self, expr, at=None):
        """The instant vector of `expr` as [(labels, value)]."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, expr, at=None):
        result = self.query(expr, at)
        check(len(result) == 1, f"{expr}: expected one series, got {result}")
        return result[0][1]


def finite(value):
    return not (math.isnan(value) or math.isinf(value))


def parse_args(argv, *extra_paths):
    """The arguments every observability test gets from CTest: --server and --client (the built
    binaries), plus one required path per name in `extra_paths` (e.g. "--promtool")."""
    parser = argparse.ArgumentParser()
    for flag in ("--server", "--client", *extra_paths):
        parser.add_argument(flag, required=True)
    return parser.parse_args(argv)


def main(test):
    """Runs `test(args)` and turns a TestFailure into exit status 1 with the message."""
    try:
        test(sys.argv[1:])
    except TestFailure as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        sys.exit(1)
    print("PASS")
