"""cgelu-server as a child process for the end-to-end and soak tests (tests/e2e)."""
import json
import signal
import subprocess
import threading
import time


def parse_log_line(line):
    """One JSON log event; a line that is not JSON (gRPC's own logging) is kept as {"raw": line}."""
    try:
        event = json.loads(line)
    except ValueError:
        return {"raw": line}
    return event if isinstance(event, dict) else {"raw": line}


class ServerProcess:
    """cgelu-server (the binary at `server_bin`) started on free loopback ports. Its JSON log
    events are kept in `events` (a thread reads stderr to the end, so the server never blocks on a
    full pipe)."""

    def __init__(self, server_bin, *extra_args, metrics_address="127.0.0.1:0"):
        self.proc = subprocess.Popen(
            [server_bin, "--grpc-address", "127.0.0.1:0", "--metrics-address", metrics_address,
             "--log-format", "json", *extra_args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.events = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("cgelu-server exited before starting: rc=%s" % self.proc.wait())
            event = parse_log_line(line)
            self.events.append(event)
            if event.get("msg") == "server started":
                self.port, self.metrics_port = event["grpc_port"], event["metrics_port"]
                self.target = "127.0.0.1:%d" % self.port
                self._reader = threading.Thread(target=self._read_log, daemon=True)
                self._reader.start()
                return
        self.proc.kill()
        raise RuntimeError("cgelu-server did not report its ports within 60 s")

    def _read_log(self):
        for line in self.proc.stderr:
            self.events.append(parse_log_line(line))
        self.proc.stderr.close()

    def events_with(self, msg):
        """Every log event with this message, after the process has exited."""
        self._reader.join(timeout=30)
        return [e for e in self.events if e.get("msg") == msg]

    def event(self, msg):
        """The first log event with this message, after the process has exited."""
        return next(iter(self.events_with(msg)), None)

    def stop(self, timeout=60):
        """SIGTERM (unless it has exited), then its exit status within `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)
