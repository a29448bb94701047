"""gRPC server reflection, read by grpcio-reflection's client (what grpcurl and Postman use):
the services are listed and their descriptors resolve. Usage: reflection_test.py PATH/TO/cgelu-server"""
import json
import signal
import subprocess
import sys
import threading
import time
import unittest

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)
from google.protobuf.descriptor_pool import DescriptorPool

SERVER = None


class ReflectionTest(unittest.TestCase):
    def test_lists_and_describes_services(self):
        proc = subprocess.Popen(
            [SERVER, "--grpc-address", "127.0.0.1:0", "--metrics-address", "", "--log-format", "json"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        try:
            port = None
            deadline = time.time() + 60
            while port is None and time.time() < deadline:
                event = json.loads(proc.stderr.readline() or '{"msg": "exited"}')
                if event["msg"] == "exited":
                    self.fail("cgelu-server exited: rc=%s" % proc.wait())
                if event["msg"] == "server started":
                    port = event["grpc_port"]
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
                database = ProtoReflectionDescriptorDatabase(channel)
                services = set(database.get_services())
                self.assertIn("inference.GRPCInferenceService", services)
                self.assertIn("grpc.health.v1.Health", services)
                pool = DescriptorPool(database)
                service = pool.FindServiceByName("inference.GRPCInferenceService")
                methods = {m.name for m in service.methods}
                self.assertEqual(methods, {"ServerLive", "ServerReady", "ModelReady",
                                           "ServerMetadata", "ModelMetadata", "ModelInfer"})
                request = pool.FindMessageTypeByName("inference.ModelInferRequest")
                self.assertEqual(request.fields_by_name["raw_input_contents"].number, 7)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    SERVER = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
