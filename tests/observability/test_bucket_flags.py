"""observability.bucket_flags: the histogram bucket flags reach the scrape of the built binary.
cgelu-server runs with custom --latency-buckets, --batch-requests-buckets and
--batch-elements-buckets; after a request, every series of every histogram shows exactly the
configured `le` bounds plus +Inf, and the observations land in them."""

import math

import harness

LATENCY = [0.0005, 0.002, 0.03, 1.5]
BATCH_REQUESTS = [1, 3, 9]
BATCH_ELEMENTS = [2, 50, 7000]
HISTOGRAMS = {
    "cgelu_request_duration_seconds": LATENCY,
    "cgelu_input_preparation_duration_seconds": LATENCY,
    "cgelu_queue_duration_seconds": LATENCY,
    "cgelu_compute_duration_seconds": LATENCY,
    "cgelu_output_preparation_duration_seconds": LATENCY,
    "cgelu_batch_size_requests": BATCH_REQUESTS,
    "cgelu_batch_size_elements": BATCH_ELEMENTS,
}


def csv(bounds):
    return ",".join(str(b) for b in bounds)


def test(argv):
    args = harness.parse_args(argv)

    with harness.Processes() as processes:
        server = harness.CgeluServer(processes, args.server, [
            "--latency-buckets", csv(LATENCY),
            "--batch-requests-buckets", csv(BATCH_REQUESTS),
            "--batch-elements-buckets", csv(BATCH_ELEMENTS)])
        ok, _, stderr = harness.run_client(args.client, server.grpc_target, "buckets-1",
                                           values="1,2,3,4,5", shape="5")
        harness.check(ok, f"cgelu-client failed: {stderr}")
        exposition = harness.scrape(server.metrics_url)

    for name, bounds in HISTOGRAMS.items():
        harness.check(exposition.types.get(name) == "histogram", f"{name} is not a histogram")
        by_series = {}
        for sample, labels, value in exposition.samples:
            if sample != f"{name}_bucket":
                continue
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            by_series.setdefault(key, {})[float(labels["le"])] = value
        harness.check(len(by_series) >= 2, f"{name}: series {sorted(by_series)}")
        for key, buckets in by_series.items():
            harness.check(sorted(buckets) == [*map(float, bounds), math.inf],
                          f"{name}{dict(key)}: le bounds {sorted(buckets)}, configured {bounds}")
    # The one request (5 elements, one batch) is in the right batch buckets.
    model = {"model": "clipped_gelu"}
    for name, bound, below in (("cgelu_batch_size_requests", 1, None),
                               ("cgelu_batch_size_elements", 50, 2)):
        at = [v for s, l, v in exposition.samples if s == f"{name}_bucket" and
              l.get("model") == "clipped_gelu" and float(l["le"]) == bound]
        harness.check(at == [1], f"{name}{{le={bound}}} is {at}, expected [1]")
        if below is not None:
            under = [v for s, l, v in exposition.samples if s == f"{name}_bucket" and
                     l.get("model") == "clipped_gelu" and float(l["le"]) == below]
            harness.check(under == [0], f"{name}{{le={below}}} is {under}, expected [0]")
    harness.check(exposition.sum("cgelu_request_duration_seconds_count", **model) == 1,
                  "the request was not counted")
    print(f"{len(HISTOGRAMS)} histograms carry the configured buckets")


if __name__ == "__main__":
    harness.main(test)
