"""observability.dashboard_metric_names: every metric the Grafana dashboard and the alert rules
query is exported by a running cgelu-server (looked up in a live scrape), and every family the
server exports is documented in docs/METRICS.md."""

import argparse
import re

import harness
import promql_names

# Exported only while a GPU backend runs (its unit test: GpuMemoryIsReadAtScrapeTime); a CPU
# server cannot show them, so they are looked up in the documentation instead.
GPU_ONLY = {"cgelu_gpu_memory_used_bytes", "cgelu_gpu_memory_total_bytes"}


def test(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--rules", required=True)
    parser.add_argument("--docs", required=True)
    args = parser.parse_args(argv)

    with open(args.docs) as f:
        docs = f.read()
    documented = set(re.findall(r"`([a-z_:][a-z0-9_:]*)`", docs))

    with harness.Processes() as processes:
        server = harness.CgeluServer(processes, args.server)
        ok, _, stderr = harness.run_client(args.client, server.grpc_target, "dash-1")
        harness.check(ok, f"cgelu-client failed: {stderr}")
        exposition = harness.scrape(server.metrics_url)

    exported = exposition.names()
    queries = (promql_names.dashboard_queries(args.dashboard) +
               promql_names.rule_queries(args.rules))
    checked = set()
    for where, expr in queries:
        for name in promql_names.metric_names(expr):
            checked.add(name)
            if name in promql_names.SYNTHESIZED:
                continue
            if name in GPU_ONLY:
                harness.check(name in documented, f"{where}: {name} is not in {args.docs}")
                continue
            harness.check(name in exported,
                          f"{where}: `{expr}` uses {name}, which cgelu-server does not export")
    harness.check(len(checked) >= 15, f"suspiciously few metric names found: {sorted(checked)}")

    # Every exported family (histograms by their base name) is documented.
    for family in exposition.types:
        harness.check(family in documented, f"{family} is exported but not in {args.docs}")
    print(f"{len(checked)} metric names from {len(queries)} queries found in the live scrape")


if __name__ == "__main__":
    harness.main(test)
