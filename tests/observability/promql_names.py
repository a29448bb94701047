"""Metric names referenced by PromQL expressions (the dashboard's and the alert rules'), so tests
can look each one up in a live scrape."""

import json
import re

import harness

# PromQL functions, aggregations and keywords: every identifier that is not a metric name.
_NOT_METRICS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "histogram_quantile", "max_over_time", "min_over_time", "avg_over_time",
    "sum_over_time", "count_over_time", "last_over_time", "absent", "absent_over_time", "time",
    "timestamp", "vector", "scalar", "clamp_min", "clamp_max", "abs", "label_values",
    "label_replace", "changes", "resets", "predict_linear", "le", "inf", "nan",
}

# Series Prometheus makes itself for every target; never in a scrape.
SYNTHESIZED = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}


def metric_names(expr):
    """Identifiers of `expr` that name series."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                     # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    text = re.sub(r"\$\w+", "", text)                          # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", text):
        word = match.group(1)
        if word.lower() in _NOT_METRICS:
            continue
        names.add(word)
    return names


def dashboard_queries(path):
    """Every PromQL string of a Grafana dashboard: panel targets and query variables."""
    with open(path) as f:
        dashboard = json.load(f)
    queries = []

    def walk_panels(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((panel["title"], target["expr"]))
            walk_panels(panel.get("panels", []))

    walk_panels(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            queries.append((f"variable {variable['name']}", inner.group(1) if inner else query))
    harness.check(queries, f"{path}: no queries found")
    return queries


def rule_queries(path):
    """The `expr` of every rule in a Prometheus rule file (the subset of YAML these files use)."""
    queries, current, block = [], None, None
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        stripped = line.strip()
        if block is not None:
            indent = len(line) - len(line.lstrip())
            if stripped and indent > block[0]:
                block[1].append(stripped)
                continue
            queries.append((current, " ".join(block[1])))
            block = None
        if stripped.startswith("- alert:") or stripped.startswith("- record:"):
            current = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("expr:"):
            value = stripped[len("expr:"):].strip()
            if value in ("|", ">", "|-", ">-"):
                block = (len(line) - len(line.lstrip()), [])
            else:
                queries.append((current, value))
    if block is not None:
        queries.append((current, " ".join(block[1])))
    harness.check(queries, f"{path}: no rules found")
    return queries


def grafana_to_promql(expr, rate_interval="5s"):
    """Substitutes the dashboard's variables so Prometheus can evaluate the query."""
    return (expr.replace("$__rate_interval", rate_interval).replace("$job", "cgelu")
            .replace("$instance", ".*").replace("$model", ".*"))
