"""observability.dashboard_metric_names: every metric the Grafana dashboard and the alert rules
query is exported by a running cgelu-server (looked up in a live scrape); every family the server
exports is documented in docs/METRICS.md; and README's metric table ("Metrics and logs") matches
the live scrape both ways — every exported family is a row with its type and label names, and
every row is exported (the GPU gauges, which no backend in this tree exports, must be absent)."""

import re

import harness
import promql_names

# Exported only while a GPU backend runs (its unit test: GpuMemoryIsReadAtScrapeTime); a CPU
# server cannot show them, so they are looked up in the documentation instead.
GPU_ONLY = {"cgelu_gpu_memory_used_bytes", "cgelu_gpu_memory_total_bytes"}

_ROW = re.compile(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$")


def readme_table(path):
    """{name: (type, {label names})} from the metric table of README's "Metrics and logs"."""
    with open(path) as f:
        text = f.read()
    start = text.find("\n## Metrics and logs\n")
    harness.check(start >= 0, f"{path}: no '## Metrics and logs' section")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    table = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        name, kind, labels = match.group(1), match.group(2).strip(), match.group(3).strip()
        harness.check(name not in table, f"{path}: {name} is in the metric table twice")
        names = set() if labels in ("", "—", "-") else {l.strip() for l in labels.split(",")}
        table[name] = (kind, names)
    harness.check(len(table) >= 20, f"{path}: only {len(table)} metric rows found: {sorted(table)}")
    return table


def family_labels(exposition):
    """{family: {label names}} over every sample of each family (histogram `le` left out: it is
    what the histogram type means)."""
    labels = {family: set() for family in exposition.types}
    for name, sample_labels, _ in exposition.samples:
        family = name
        if family not in exposition.types:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] in exposition.types:
                    family = name[:-len(suffix)]
        harness.check(family in labels, f"sample {name} belongs to no # TYPE family")
        labels[family] |= set(sample_labels) - {"le"}
    return labels


def check_readme(path, exposition):
    table = readme_table(path)
    exported = family_labels(exposition)
    for family, labels in exported.items():
        harness.check(family in table, f"{family} is exported but not in {path}'s metric table")
        kind, documented = table[family]
        harness.check(kind == exposition.types[family],
                      f"{path}: {family} is documented as {kind}, exported as "
                      f"{exposition.types[family]}")
        harness.check(documented == labels,
                      f"{path}: {family} is documented with labels {sorted(documented)}, "
                      f"exported with {sorted(labels)}")
    for name in table:
        if name in GPU_ONLY:
            harness.check(name not in exported, f"{name} is exported by a CPU server")
            continue
        harness.check(name in exported, f"{path} documents {name}, which cgelu-server does not "
                      "export")
    return len(table)


def test(argv):
    args = harness.parse_args(argv, "--dashboard", "--rules", "--docs", "--readme")

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
    rows = check_readme(args.readme, exposition)
    print(f"{len(checked)} metric names from {len(queries)} queries found in the live scrape; "
          f"{rows} rows of {args.readme} match it")


if __name__ == "__main__":
    harness.main(test)
