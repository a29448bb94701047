"""End-to-end tests of the built binaries: cgelu-server started as a process, cgelu-client run as a
user would run it. Usage: e2e_test.py BIN_DIR_SERVER BIN_DIR_CLIENT REPO_ROOT (CTest passes them)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import numpy as np

from server_process import ServerProcess

SERVER = CLIENT = REPO = None


def client(*args, timeout=120):
    return subprocess.run([CLIENT, *args], capture_output=True, text=True, timeout=timeout)


def ulp_distance(a, b):
    """Distance in float32 units in the last place between equal-shaped arrays."""
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    # Map the sign-magnitude bit patterns onto a monotonic integer line.
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


class ServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(SERVER)
        cls.target, cls.metrics_port = cls.server.target, cls.server.metrics_port

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_minilm_activations_match_the_models_gelu(self):
        preact = os.path.join(REPO, "examples", "minilm_ffn_preact.npy")
        expected = np.load(os.path.join(REPO, "examples", "minilm_ffn_gelu_expected.npy"))
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "out.npy")
            # Unbounded clip: plain GELU, the model's own activation.
            result = client("infer", "--server", self.target, "--input", preact,
                            "--output", out_path, "--min=-inf", "--max=inf")
            self.assertEqual(result.returncode, 0, result.stderr)
            got = np.load(out_path)
        self.assertEqual(got.dtype, np.float32)
        self.assertEqual(got.shape, expected.shape)
        # The numerics contract: fp32 erf mode within 4 ULP of the correctly rounded value.
        self.assertLessEqual(int(ulp_distance(got, expected).max()), 4)

    def test_minilm_with_the_default_bounds(self):
        preact_path = os.path.join(REPO, "examples", "minilm_ffn_preact.npy")
        expected = np.clip(np.load(os.path.join(REPO, "examples", "minilm_ffn_gelu_expected.npy")),
                           -3, 3)
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "out.npy")
            result = client("infer", "--server", self.target, "--input", preact_path,
                            "--output", out_path)
            self.assertEqual(result.returncode, 0, result.stderr)
            got = np.load(out_path)
        self.assertLessEqual(int(ulp_distance(got, expected).max()), 4)
        self.assertEqual(float(got.max()), 3.0)

    def test_inline_values_are_printed(self):
        result = client("infer", "--server", self.target, "--values", "-1,0,1,10",
                        "--shape", "2,2", "--approximate", "tanh")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("shape: [2,2]", result.stdout)
        values = [float(v) for v in result.stdout.split("values:")[1].split(",")]
        self.assertAlmostEqual(values[0], -0.158808, places=5)
        self.assertEqual(values[1], 0.0)
        self.assertAlmostEqual(values[2], 0.841192, places=5)
        self.assertEqual(values[3], 3.0)

    def test_health_and_metadata(self):
        health = client("health", "--server", self.target)
        self.assertEqual(health.returncode, 0, health.stderr)
        self.assertIn("health: SERVING", health.stdout)
        meta = client("metadata", "--server", self.target)
        self.assertEqual(meta.returncode, 0, meta.stderr)
        self.assertIn("model: clipped_gelu", meta.stdout)

    def test_errors_are_one_line_and_nonzero(self):
        bad = client("infer", "--server", self.target, "--values", "1,2", "--min", "2", "--max", "1")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("min should be < max (got min: 2, max: 1)", bad.stderr)
        self.assertEqual(len(bad.stderr.strip().splitlines()), 1)
        usage = client("infer", "--server", self.target)
        self.assertEqual(usage.returncode, 2)
        missing = client("infer", "--server", self.target, "--input", "/nonexistent.npy")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("/nonexistent.npy", missing.stderr)

    def test_unreachable_server_fails_fast(self):
        start = time.time()
        result = client("health", "--server", "127.0.0.1:1", "--timeout-ms", "2000")
        self.assertEqual(result.returncode, 1)
        self.assertIn("UNAVAILABLE", result.stderr.upper() + result.stderr)
        self.assertLess(time.time() - start, 30)

    def test_metrics_endpoint_serves_histograms(self):
        client("infer", "--server", self.target, "--values", "1,2,3")
        body = urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=10).read().decode()
        for family in ("cgelu_request_duration_seconds_bucket", "cgelu_queue_duration_seconds_bucket",
                       "cgelu_compute_duration_seconds_bucket", "cgelu_batch_size_requests_bucket",
                       "cgelu_requests_total"):
            self.assertIn(family, body)


# The server's own at-once refusals of a request that arrives after shutdown began (inference_service.cc
# while draining, batch_scheduler.cc once the batcher is stopping).
SERVER_REJECTIONS = ("server is shutting down", "batch scheduler is stopping")
# A call that gRPC never put on a connection (no connection was ready: "connections to all backends
# failing", older releases "failed to connect to all addresses"), or failed on a GOAWAY, which gRPC
# does only to a stream not yet sent or numbered above the GOAWAY's last stream id (chttp2:
# kNotSentOnWire / kNotSeenByServer). The server never saw it.
NEVER_SENT = ("connections to all backends failing", "failed to connect to all addresses",
              "GOAWAY received")
# gRPC's bare RST_STREAM(CANCEL) of a call that reached the server after grpc::Server::Shutdown
# began and was never handed to the service (a "zombie" call). Our code finishes every call it
# accepts with its own status and message; the one way gRPC cancels an accepted call is the shutdown
# deadline running out, which the test rules out from the server's log.
CANCELLED_BY_SHUTDOWN = "cgelu-client: CANCELLED: CANCELLED"


class HealthWatch:
    """`cgelu-client health --watch` in the background; each stdout line with its arrival time.
    With hang_up_on set, the watcher goes away as soon as it prints that line, as a client does
    once it has learnt that the server is leaving."""

    def __init__(self, target, hang_up_on=None):
        self.proc = subprocess.Popen(
            [CLIENT, "health", "--watch", "--server", target, "--timeout-ms", "300000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._hang_up_on = hang_up_on
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.strip()))
                self._changed.notify_all()
            if line.strip() == self._hang_up_on:
                self.proc.kill()
        self.proc.stdout.close()

    def wait_for(self, text, timeout):
        with self._changed:
            return self._changed.wait_for(lambda: any(l == text for _, l in self.lines), timeout)

    def finish(self):
        rc = self.proc.wait(timeout=60)
        stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        return rc, stderr


class ShutdownTest(unittest.TestCase):
    maxDiff = None
    DRAIN_TIMEOUT_S = 10
    CLIENTS = 8  # parallel cgelu-client loops: the load
    OK_BEFORE_SIGNAL = 40

    def test_s10_sigterm_under_load_drains_and_exits_zero(self):
        # A 50 ms queue delay keeps several accepted requests waiting in the batcher at any moment,
        # so the signal finds work in flight to drain.
        server = ServerProcess(SERVER, "--drain-timeout-s", str(self.DRAIN_TIMEOUT_S),
                               "--max-queue-delay-us", "50000")
        # An open Watch stream holds the server's shutdown (see the expected failure below), so
        # this watcher hangs up once it has seen NOT_SERVING.
        watch = HealthWatch(server.target, hang_up_on="health: NOT_SERVING")
        self.assertTrue(watch.wait_for("health: SERVING", 30), watch.lines)
        preact = os.path.join(REPO, "examples", "minilm_ffn_preact.npy")  # [4,16,1536] fp32
        outcomes = []  # (started, ended, returncode, stderr), monotonic seconds
        lock = threading.Lock()
        stop = threading.Event()

        def load(tmp, index):
            # Sends until its first failure, as a client that then turns to another replica.
            out_path = os.path.join(tmp, "out%d.npy" % index)
            returncode = 0
            while returncode == 0 and not stop.is_set():
                started = time.monotonic()
                r = client("infer", "--server", server.target, "--input", preact,
                           "--output", out_path, "--timeout-ms", "60000", "--id", "load-%d" % index)
                returncode = r.returncode
                with lock:
                    outcomes.append((started, time.monotonic(), r.returncode, r.stderr.strip()))

        def ok_count():
            with lock:
                return sum(1 for o in outcomes if o[2] == 0)

        with tempfile.TemporaryDirectory() as tmp:
            workers = [threading.Thread(target=load, args=(tmp, i)) for i in range(self.CLIENTS)]
            for w in workers:
                w.start()
            give_up = time.monotonic() + 120
            while ok_count() < self.OK_BEFORE_SIGNAL and time.monotonic() < give_up:
                time.sleep(0.01)
            # The last answers came as a batch closed; half a queue delay later the next is filling.
            time.sleep(0.025)
            # The load keeps running through the drain, as a load test would.
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            try:
                rc = server.proc.wait(timeout=self.DRAIN_TIMEOUT_S + 10)
            finally:
                exited_after = time.monotonic() - signalled
                if server.proc.poll() is None:
                    server.proc.kill()
                stop.set()
                for w in workers:
                    w.join(timeout=120)
        watch.finish()

        self.assertEqual(rc, 0)
        self.assertLess(exited_after, self.DRAIN_TIMEOUT_S)
        stopped = server.event("server stopped")
        self.assertIsNotNone(stopped, server.events[-5:])
        self.assertLess(stopped["drain_seconds"], self.DRAIN_TIMEOUT_S)
        draining = server.event("draining")
        self.assertEqual(draining["signal"], "SIGTERM")

        # Health: SERVING, then NOT_SERVING once the signal came, reported before the server went.
        statuses = [line for _, line in watch.lines]
        self.assertEqual(statuses[0], "health: SERVING")
        self.assertIn("health: NOT_SERVING", statuses)
        not_serving_at = next(t for t, line in watch.lines if line == "health: NOT_SERVING")
        self.assertGreaterEqual(not_serving_at, signalled)
        self.assertLess(not_serving_at - signalled, exited_after)

        # Every request is OK, refused at once by the server, or one the server never took: nothing
        # accepted is lost, and nothing fails before the signal. The drain ended in time (checked
        # above), so gRPC cancelled no accepted call.
        self.assertGreaterEqual(ok_count(), self.OK_BEFORE_SIGNAL)
        unexplained, rejected, never_sent, zombies = [], 0, 0, 0
        for started, ended, code, err in outcomes:
            if code == 0:
                continue
            if ended < signalled:
                unexplained.append(("failed before the signal", err))
            elif "UNAVAILABLE" in err and any(m in err for m in SERVER_REJECTIONS):
                rejected += 1
            elif "UNAVAILABLE" in err and any(m in err for m in NEVER_SENT):
                never_sent += 1
            elif err == CANCELLED_BY_SHUTDOWN:
                zombies += 1
            else:
                unexplained.append(("failed after the signal", err))
        self.assertEqual(unexplained, [])
        # The requests the server held in its queue when the signal came were all answered OK.
        ok_after_signal = sum(1 for _, ended, code, _ in outcomes if code == 0 and ended > signalled)
        self.assertGreaterEqual(ok_after_signal, draining["queued_requests"])
        in_flight = sum(1 for started, ended, _, _ in outcomes if started < signalled < ended)
        self.assertGreater(in_flight, 0)
        sys.stderr.write(
            "S10: %d requests: %d OK, %d refused by the draining server, %d never sent, %d cancelled "
            "by gRPC's shutdown before reaching the service; "
            "%d client calls in flight and %d requests queued in the server at SIGTERM; exit 0 "
            "%.2f s after it (drain %.3f s)\n"
            % (len(outcomes), ok_count(), rejected, never_sent, zombies, in_flight,
               draining["queued_requests"], exited_after, stopped["drain_seconds"]))

    def test_health_watch_prints_each_change_and_exits_1_on_not_serving(self):
        server = ServerProcess(SERVER, "--drain-timeout-s", "1")
        watch = HealthWatch(server.target)
        self.assertTrue(watch.wait_for("health: SERVING", 30), watch.lines)
        self.assertEqual(server.stop(), 0)
        rc, stderr = watch.finish()
        # The server sends NOT_SERVING more than once while it drains; the watcher prints changes.
        self.assertEqual([line for _, line in watch.lines], ["health: SERVING", "health: NOT_SERVING"])
        self.assertEqual(rc, 1)
        self.assertEqual(stderr.strip(), "cgelu-client: health: NOT_SERVING")

    # S10 says the process exits within the drain timeout. It does not while a client keeps a
    # grpc.health.v1 Watch open (gRPC's default health service never ends Watch streams, so
    # grpc::Server::Shutdown waits for the whole deadline): every SIGTERM then costs the full
    # --drain-timeout-s. Clients with gRPC's client-side health checking keep such a stream.
    @unittest.expectedFailure
    def test_s10_an_open_health_watch_does_not_hold_the_exit(self):
        # No metrics endpoint: stopping it takes over a second of its own.
        server = ServerProcess(SERVER, "--drain-timeout-s", "3", metrics_address="")
        watch = HealthWatch(server.target)
        self.assertTrue(watch.wait_for("health: SERVING", 30), watch.lines)
        signalled = time.monotonic()
        self.assertEqual(server.stop(), 0)
        exited_after = time.monotonic() - signalled
        watch.finish()
        self.assertLess(exited_after, 1.0)

    def test_bad_flags_exit_2(self):
        result = subprocess.run([SERVER, "--min", "2", "--max", "1"], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("min should be < max", result.stderr)
        result = subprocess.run([SERVER, "--batch-workers", "0"], capture_output=True, text=True,
                                timeout=30)
        self.assertNotEqual(result.returncode, 0)
        version = subprocess.run([SERVER, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(version.returncode, 0)
        self.assertIn("cgelu-server", version.stdout)


class HelpTest(unittest.TestCase):
    def readme_flags(self):
        """{flag: default} from README.md's "Configuration" table; None where it gives no value."""
        with open(os.path.join(REPO, "README.md")) as f:
            text = f.read()
        table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
        flags = {}
        for row in table.splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) < 3 or not cells[0].startswith("`--"):
                continue
            names = re.findall(r"`(--[a-z0-9-]+)`", cells[0])
            defaults = re.findall(r"`([^`]*)`", cells[1])
            for i, name in enumerate(names):
                flags[name] = defaults[i] if len(defaults) == len(names) else None
        return flags

    def test_server_help_lists_every_flag_with_its_default(self):
        result = subprocess.run([SERVER, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        # CLI11 writes each option as `  --name TYPE[:CHECK]=DEFAULT  text`, e.g.
        # `--backend TEXT:{cpu,torch}=cpu` or `--min FLOAT=-3`.
        shown = {}
        for line in result.stdout.splitlines():
            m = re.match(r"\s+(?:-\w,)?(--[a-z0-9-]+)(?: [A-Z]+(?::(?:\{[^}]*\}|[A-Z]+))?"
                         r"(?:=(\S*))?)?(?:\s|$)", line)
            if m:
                shown[m.group(1)] = m.group(2)
        documented = self.readme_flags()
        self.assertGreater(len(documented), 15)
        # Every flag the binary has is documented, and every documented one exists.
        self.assertEqual(sorted(set(shown) - {"--help"}), sorted(documented))
        for flag, default in documented.items():
            if flag in ("--version",):
                continue
            if default is None:
                # Histogram buckets: the help text names the default range instead.
                self.assertIn("default", self.help_text_of(result.stdout, flag), flag)
                continue
            self.assertEqual(shown[flag], default, flag)

    @staticmethod
    def help_text_of(help_output, flag):
        lines = help_output.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\s+%s\b" % re.escape(flag), line):
                return " ".join([line] + [l for l in lines[i + 1:i + 3] if l.startswith("    ")])
        return ""


if __name__ == "__main__":
    SERVER, CLIENT, REPO = sys.argv[1], sys.argv[2], sys.argv[3]
    # Further arguments pick tests, as unittest takes them (e.g. ShutdownTest).
    unittest.main(argv=sys.argv[:1] + sys.argv[4:], verbosity=2)
