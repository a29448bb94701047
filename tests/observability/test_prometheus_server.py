"""observability.prometheus_server: Debian's Prometheus server, running the example scrape config
deploy/monitoring/prometheus/prometheus.yml (only its target and intervals substituted, see
harness.live_config) with its alert rules, scrapes a running cgelu-server on loopback every second
while the test sends a known load through cgelu-client; then the answers of Prometheus's HTTP API
are checked against what the test sent:
- the request and failure counters Prometheus stored equal the requests sent, exactly;
- rate(cgelu_requests_total) is close to the rate the clients achieved;
- histogram_quantile(0.99, ...) of the request duration falls in the very bucket that holds the
  99th percentile of the server's own histogram, below the slowest call the clients timed, and
  above a floor the test sets: the server runs with --max-queue-delay-us 2600 and batches of up
  to 64 requests, so the oldest request of every batch waits at least 2.6 ms for company; with 4
  clients a batch holds at most 4 requests, so at least a quarter of all requests take over 2.5 ms
  (a bucket bound), and the 99th percentile's bucket lies above it;
- every query of the Grafana dashboard evaluates;
- every alert rule loads healthy, and its expression, queried as is, returns nothing on this
  healthy server (a rule that would fire, `for:` aside, fails the test); once the server is
  stopped, CgeluTargetDown's expression returns that target.
"""

import bisect
import concurrent.futures
import math
import time

import harness
import promql_names

LOAD_SECONDS = 6.0
CLIENTS = 4
INVALID_REQUESTS = 5
QUEUE_DELAY_US = 2600  # just above FLOOR_S, see the module docstring
FLOOR_S = 0.0025       # a bound of the default latency buckets


def drive_load(client, target):
    """CLIENTS threads, each running cgelu-client back to back for LOAD_SECONDS; returns
    (ok, failed, slowest call in seconds, first start, last end) in wall-clock time."""
    deadline = time.monotonic() + LOAD_SECONDS

    def worker(index):
        ok = failed = 0
        slowest = 0.0
        while time.monotonic() < deadline:
            success, seconds, _ = harness.run_client(client, target, f"load-{index}-{ok + failed}")
            ok += success
            failed += not success
            slowest = max(slowest, seconds)
        return ok, failed, slowest

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(worker, range(CLIENTS)))
    ended = time.time()
    return (sum(r[0] for r in results), sum(r[1] for r in results), max(r[2] for r in results),
            started, ended)


def quantile_bucket(exposition, name, q):
    """(lower, upper) bounds of the bucket holding quantile q of histogram `name` (summed over
    series), the way histogram_quantile picks it."""
    cumulative = {}
    for sample_name, labels, value in exposition.samples:
        if sample_name == f"{name}_bucket":
            bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            cumulative[bound] = cumulative.get(bound, 0) + value
    bounds = sorted(cumulative)
    counts = [cumulative[b] for b in bounds]
    rank = q * counts[-1]
    index = bisect.bisect_left(counts, rank)
    return (bounds[index - 1] if index > 0 else 0.0), bounds[index]


def test(argv):
    args = harness.parse_args(argv, "--prometheus", "--dashboard", "--rules", "--scrape-config")

    with harness.Processes() as processes:
        server = harness.CgeluServer(processes, args.server,
                                     ["--max-queue-delay-us", str(QUEUE_DELAY_US),
                                      "--max-batch-requests", "64"])
        target = f"127.0.0.1:{server.metrics_port}"
        prometheus = harness.Prometheus(
            processes, args.prometheus, harness.live_config(args.scrape_config, [target]))
        # Two scrapes before any request: every counter's history starts at a stored 0.
        harness.wait_until(
            lambda: prometheus.scalar('count_over_time(up{job="cgelu"}[1m])') >= 2 and
            prometheus.scalar('up{job="cgelu"}') == 1,
            20, "two successful scrapes of cgelu-server")

        ok, failed, slowest_s, started, ended = drive_load(args.client, server.grpc_target)
        harness.check(failed == 0, f"{failed} of {ok + failed} load requests failed")
        harness.check(ok >= 20, f"only {ok} requests in {LOAD_SECONDS} s")
        for i in range(INVALID_REQUESTS):
            success, _, _ = harness.run_client(args.client, server.grpc_target, f"bad-{i}",
                                               model="no_such_model")
            harness.check(not success, "a request for an unknown model succeeded")
        sent = ok + INVALID_REQUESTS

        # The exact totals, once a scrape after the load has landed.
        harness.wait_until(
            lambda: prometheus.scalar('sum(cgelu_request_duration_seconds_count{job="cgelu"})')
            == sent, 15, f"Prometheus to store {sent} requests")
        stored_ok = prometheus.scalar('sum(cgelu_requests_total{job="cgelu",code="OK"})')
        harness.check(stored_ok == ok, f"Prometheus stored {stored_ok} OK requests, sent {ok}")
        stored_invalid = prometheus.scalar(
            'sum(cgelu_request_failures_total{job="cgelu",reason="invalid"})')
        harness.check(stored_invalid == INVALID_REQUESTS,
                      f"Prometheus stored {stored_invalid} invalid requests, sent {INVALID_REQUESTS}")
        stored_batched = prometheus.scalar('sum(cgelu_batch_size_requests_sum{job="cgelu"})')
        harness.check(stored_batched == ok,
                      f"batches held {stored_batched} requests in all, {ok} were computed")
        final = harness.scrape(server.metrics_url)

        # Rate over the load window, evaluated at its end.
        window = max(2, round(ended - started))
        rate = prometheus.scalar(
            f'sum(rate(cgelu_requests_total{{job="cgelu",code="OK"}}[{window}s]))', at=ended)
        client_rate = ok / (ended - started)
        harness.check(0.5 * client_rate <= rate <= 1.5 * client_rate,
                      f"Prometheus rate {rate:.1f}/s, clients sent {client_rate:.1f}/s")

        # p99 over a window holding every request (rate's extrapolation scales every bucket alike,
        # so the quantile is exact up to the bucket's linear interpolation).
        everything = math.ceil(time.time() - started) + 5
        p99 = prometheus.scalar(
            'histogram_quantile(0.99, sum by (le) '
            f'(rate(cgelu_request_duration_seconds_bucket{{job="cgelu"}}[{everything}s])))')
        p50 = prometheus.scalar(
            'histogram_quantile(0.5, sum by (le) '
            f'(rate(cgelu_request_duration_seconds_bucket{{job="cgelu"}}[{everything}s])))')
        lower, upper = quantile_bucket(final, "cgelu_request_duration_seconds", 0.99)
        harness.check(harness.finite(p99) and lower <= p99 <= upper,
                      f"p99 {p99} s outside the bucket ({lower}, {upper}] holding the 99th "
                      "percentile of the server's histogram")
        harness.check(0 < p50 <= p99, f"p50 {p50} s, p99 {p99} s")
        harness.check(p99 <= slowest_s, f"p99 {p99} s above the slowest client call, {slowest_s:.4f} s")
        harness.check(p99 >= FLOOR_S, f"p99 {p99} s below {FLOOR_S} s, which at least a quarter "
                      "of the requests waited in the queue alone")
        quick = prometheus.scalar(
            f'sum(cgelu_queue_duration_seconds_bucket{{job="cgelu",le="{FLOOR_S}"}})')
        harness.check(quick <= 0.75 * ok, f"{quick} of {ok} requests queued {FLOOR_S} s or less: "
                      "the oldest request of each batch did not wait --max-queue-delay-us")

        # Every dashboard query evaluates; all but the GPU ones return data from a CPU server.
        for title, expr in promql_names.dashboard_queries(args.dashboard):
            result = prometheus.query(promql_names.grafana_to_promql(expr, f"{everything}s"))
            if "gpu_memory" not in expr:
                harness.check(result, f"dashboard panel '{title}': `{expr}` returned no data")

        # Every rule of the file loaded healthy, and no alert condition holds on this healthy
        # server: each expression, queried now, returns nothing.
        alerts = promql_names.rule_queries(args.rules)
        groups = prometheus.api("rules")["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        harness.check(sorted(rules) == sorted(name for name, _ in alerts),
                      f"rules loaded: {sorted(rules)}, in {args.rules}: {[n for n, _ in alerts]}")
        for name, expr in alerts:
            harness.check(rules[name]["health"] == "ok", f"rule {name}: {rules[name]}")
            result = prometheus.query(expr)
            harness.check(not result, f"{name}'s condition holds on a healthy server: "
                          f"`{expr}` returned {result}")

        # A condition that must hold: the replica stops, its target goes down.
        harness.check(server.stop() == 0, "cgelu-server did not stop cleanly on SIGTERM")
        harness.wait_until(lambda: prometheus.scalar(f'up{{job="cgelu",instance="{target}"}}') == 0,
                           15, "Prometheus to see the stopped target down")
        down = dict(alerts)["CgeluTargetDown"]
        result = prometheus.query(down)
        harness.check([labels.get("instance") for labels, _ in result] == [target],
                      f"CgeluTargetDown's `{down}` returned {result} for the stopped {target}")
        print(f"sent {sent} requests ({client_rate:.1f}/s OK); Prometheus: rate {rate:.1f}/s, "
              f"p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms in bucket ({lower}, {upper}]; "
              f"slowest client call {slowest_s * 1e3:.1f} ms")


if __name__ == "__main__":
    harness.main(test)
