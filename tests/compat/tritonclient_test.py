"""Triton's own Python gRPC client (tritonclient, from PyPI) against the built cgelu-server, used
exactly as its documentation shows: the wire compatibility users rely on.
Usage: tritonclient_test.py PATH/TO/cgelu-server (CTest passes it; run with .venv-tests/bin/python)."""
import json
import math
import signal
import subprocess
import sys
import threading
import time
import unittest

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

SERVER = None


def reference(x, lo=-3.0, hi=3.0):
    """Clipped erf-GELU in float64 through erfc, as the numerics contract defines it."""
    x = np.asarray(x, dtype=np.float64)
    y = np.array([0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x.ravel()]).reshape(x.shape)
    return np.minimum(np.maximum(y, lo), hi)


class TritonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen(
            [SERVER, "--grpc-address", "127.0.0.1:0", "--metrics-address", "", "--log-format", "json"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            line = cls.proc.stderr.readline()
            if not line:
                raise RuntimeError("cgelu-server exited: rc=%s" % cls.proc.wait())
            event = json.loads(line)
            if event.get("msg") == "server started":
                port = event["grpc_port"]
        threading.Thread(target=cls.proc.stderr.read, daemon=True).start()
        cls.client = grpcclient.InferenceServerClient("127.0.0.1:%d" % port)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(timeout=60)

    def infer(self, array, datatype, **kwargs):
        tensor = grpcclient.InferInput("INPUT0", list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        result = self.client.infer("clipped_gelu", [tensor],
                                   outputs=[grpcclient.InferRequestedOutput("OUTPUT0")], **kwargs)
        return result

    def test_health_and_metadata(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        self.assertTrue(self.client.is_model_ready("clipped_gelu"))
        self.assertEqual(self.client.get_server_metadata().name, "cgelu")
        meta = self.client.get_model_metadata("clipped_gelu", as_json=True)
        self.assertEqual(meta["inputs"][0]["name"], "INPUT0")
        self.assertEqual(meta["outputs"][0]["name"], "OUTPUT0")
        with self.assertRaises(InferenceServerException) as err:
            self.client.get_model_metadata("resnet50")
        self.assertEqual(err.exception.status(), "StatusCode.NOT_FOUND")

    def test_fp32_fp64_fp16_with_parameters_and_id(self):
        x = np.linspace(-6, 6, 97, dtype=np.float32).reshape(1, 97)
        result = self.infer(x, "FP32", request_id="abc", parameters={"min": -0.1, "max": 5})
        self.assertEqual(result.get_response().id, "abc")
        out = result.as_numpy("OUTPUT0")
        self.assertEqual(out.dtype, np.float32)
        np.testing.assert_allclose(out, reference(x, -0.1, 5), rtol=1e-6, atol=1e-7)
        x64 = x.astype(np.float64)
        out64 = self.infer(x64, "FP64").as_numpy("OUTPUT0")
        self.assertEqual(out64.dtype, np.float64)
        np.testing.assert_allclose(out64, reference(x64), rtol=1e-13, atol=1e-300)
        x16 = x.astype(np.float16)
        out16 = self.infer(x16, "FP16").as_numpy("OUTPUT0")
        self.assertEqual(out16.dtype, np.float16)
        np.testing.assert_allclose(out16.astype(np.float64), reference(x16), rtol=1e-3, atol=1e-4)

    def test_tanh_mode(self):
        x = np.array([-1.0, 0.0, 1.0, 2.0], dtype=np.float32)
        out = self.infer(x, "FP32", parameters={"approximate": "tanh", "min": -10, "max": 10})
        t = x.astype(np.float64)
        ref = 0.5 * t * (1 + np.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t ** 3)))
        np.testing.assert_allclose(out.as_numpy("OUTPUT0"), ref, rtol=1e-6, atol=1e-12)

    def test_s1_large_tensor_with_default_client_settings(self):
        x = np.random.default_rng(1).standard_normal((1, 1400000), dtype=np.float32)
        out = self.infer(x, "FP32").as_numpy("OUTPUT0")
        self.assertEqual(out.shape, x.shape)
        np.testing.assert_allclose(out[0, :1000], reference(x[0, :1000]), rtol=1e-6, atol=1e-7)

    def test_s13_empty_and_scalar(self):
        empty = self.infer(np.zeros((0,), dtype=np.float32), "FP32").as_numpy("OUTPUT0")
        self.assertEqual(empty.shape, (0,))
        scalar = self.infer(np.array(1.0, dtype=np.float32), "FP32").as_numpy("OUTPUT0")
        self.assertEqual(scalar.shape, ())
        self.assertAlmostEqual(float(scalar), 0.8413447, places=6)

    def test_s7_error_reaches_the_client(self):
        with self.assertRaises(InferenceServerException) as err:
            self.infer(np.ones((2,), dtype=np.float32), "FP32", parameters={"min": 2, "max": 1})
        self.assertEqual(err.exception.status(), "StatusCode.INVALID_ARGUMENT")
        self.assertIn("min should be < max (got min: 2, max: 1)", err.exception.message())

    def test_s11_int32_is_refused(self):
        with self.assertRaises(InferenceServerException) as err:
            self.infer(np.ones((2,), dtype=np.int32), "INT32")
        self.assertEqual(err.exception.status(), "StatusCode.INVALID_ARGUMENT")


if __name__ == "__main__":
    SERVER = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
