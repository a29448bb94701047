"""End-to-end tests of the built binaries: cgelu-server started as a process, cgelu-client run as a
user would run it. Usage: e2e_test.py BIN_DIR_SERVER BIN_DIR_CLIENT REPO_ROOT (CTest passes them)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import numpy as np

SERVER = CLIENT = REPO = None


def start_server(*extra_args):
    """Starts cgelu-server on free loopback ports; returns (process, grpc_port, metrics_port)."""
    proc = subprocess.Popen(
        [SERVER, "--grpc-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
         "--log-format", "json", *extra_args],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError("cgelu-server exited before starting: rc=%s" % proc.wait())
        event = json.loads(line)
        if event.get("msg") == "server started":
            # Keep draining stderr so the server never blocks on a full pipe.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, event["grpc_port"], event["metrics_port"]
    proc.kill()
    raise RuntimeError("cgelu-server did not report its ports within 60 s")


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
        cls.proc, cls.port, cls.metrics_port = start_server()
        cls.target = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=60)

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


class ShutdownTest(unittest.TestCase):
    def test_s10_sigterm_under_load_drains_and_exits_zero(self):
        proc, port, _ = start_server("--drain-timeout-s", "20")
        target = "127.0.0.1:%d" % port
        outcomes = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                r = client("infer", "--server", target, "--values", "0.5,1.5,-2", "--timeout-ms", "10000")
                outcomes.append((r.returncode, r.stderr))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        while len(outcomes) < 8:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        stop.set()
        for w in workers:
            w.join(timeout=60)
        self.assertEqual(rc, 0)
        for code, err in outcomes:
            # Accepted requests finish OK; later ones are refused (UNAVAILABLE) or find no server.
            if code != 0:
                self.assertIn("UNAVAILABLE", err, err)

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


if __name__ == "__main__":
    SERVER, CLIENT, REPO = sys.argv[1], sys.argv[2], sys.argv[3]
    unittest.main(argv=sys.argv[:1], verbosity=2)
