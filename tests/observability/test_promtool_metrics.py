"""observability.promtool_check_metrics: `promtool check metrics` (Prometheus's own linter:
names, units, _total suffixes, HELP, histogram shape) finds nothing to say about a live scrape of
cgelu-server, before and after it served requests, failures included."""

import subprocess

import harness


def promtool_check(promtool, text, when):
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30)
    output = (result.stdout + result.stderr).strip()
    harness.check(result.returncode == 0 and not output,
                  f"promtool check metrics ({when}) exited {result.returncode}: {output}")


def test(argv):
    args = harness.parse_args(argv, "--promtool")

    with harness.Processes() as processes:
        server = harness.CgeluServer(processes, args.server)
        promtool_check(args.promtool, harness.http_get(server.metrics_url), "at start-up")
        for i in range(3):
            ok, _, stderr = harness.run_client(args.client, server.grpc_target, f"lint-{i}")
            harness.check(ok, f"cgelu-client failed: {stderr}")
        ok, _, _ = harness.run_client(args.client, server.grpc_target, "lint-bad", model="nope")
        harness.check(not ok, "a request for an unknown model succeeded")
        text = harness.http_get(server.metrics_url)
        promtool_check(args.promtool, text, "after requests")
        scrape = harness.Exposition(text)
        harness.check(scrape.sum("cgelu_requests_total", code="OK") == 3,
                      "cgelu_requests_total{code=OK} is not 3")
        harness.check(scrape.sum("cgelu_request_failures_total", reason="invalid") == 1,
                      "cgelu_request_failures_total{reason=invalid} is not 1")


if __name__ == "__main__":
    harness.main(test)
