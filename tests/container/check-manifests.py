#!/usr/bin/python3
"""Checks deploy/k8s for the mistakes a cluster only shows at run time.

    tests/container/check-manifests.py [deploy/k8s]      # Debian's python3 with python3-yaml

Reads the files named by kustomization.yaml (PyYAML; no cluster and no kubectl needed) and checks:
every selector matches the pod labels; probes and Service target ports name real container ports;
the gRPC port is the one the server is told to listen on; terminationGracePeriodSeconds outlasts
the preStop sleep plus --drain-timeout-s; --kernel-threads equals the CPU limit; the Prometheus
annotations name the metrics container port and the --metrics-address port; the HPA targets the
Deployment; the PDB leaves at least one pod when the Deployment has its minimum replica count.
Prints one line per check and "N passed, N failed"; exits non-zero on any failure.
"""

import pathlib
import sys

import yaml

GRACE_MARGIN_S = 5


def load(directory):
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((directory / name).read_text()):
            if doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def flag_values(args):
    values = {}
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            values[key] = value
    return values


def cpu_cores(quantity):
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def main():
    directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/k8s")
    objects = load(directory)
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'PASS' if ok else 'FAIL'}: {name}{'' if ok else ' — ' + detail}")

    deployments = [o for (kind, _), o in objects.items() if kind == "Deployment"]
    check("exactly one Deployment", len(deployments) == 1, f"found {len(deployments)}")
    if len(deployments) != 1:
        return finish(results)
    deployment = deployments[0]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    flags = flag_values(container.get("args", []))

    def selects_pods(selector):
        return selector and all(labels.get(k) == v for k, v in selector.items())

    check("Deployment selector matches its pod labels",
          selects_pods(deployment["spec"]["selector"]["matchLabels"]), str(labels))

    grpc_port = int(flags.get("grpc-address", "0.0.0.0:8001").rsplit(":", 1)[1])
    metrics_port = int(flags.get("metrics-address", "0.0.0.0:8002").rsplit(":", 1)[1])
    check("container port 'grpc' is the --grpc-address port", ports.get("grpc") == grpc_port,
          f"{ports.get('grpc')} vs {grpc_port}")
    check("container port 'metrics' is the --metrics-address port",
          ports.get("metrics") == metrics_port, f"{ports.get('metrics')} vs {metrics_port}")

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container.get(probe, {})
        check(f"{probe} is a gRPC probe on the gRPC port",
              spec.get("grpc", {}).get("port") == grpc_port, str(spec))

    for (kind, name), obj in objects.items():
        if kind != "Service":
            continue
        check(f"Service {name} selects the pods", selects_pods(obj["spec"].get("selector")),
              str(obj["spec"].get("selector")))
        for port in obj["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            known = target in ports if isinstance(target, str) else target in ports.values()
            check(f"Service {name} port {port['name']} targets a container port", known,
                  str(target))

    prestop = container.get("lifecycle", {}).get("preStop", {})
    prestop_s = 0
    if "exec" in prestop and prestop["exec"]["command"][0] == "sleep":
        prestop_s = float(prestop["exec"]["command"][1])
    elif "sleep" in prestop:
        prestop_s = float(prestop["sleep"]["seconds"])
    drain_s = float(flags.get("drain-timeout-s", 30))  # the server's default
    grace_s = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(f"grace period {grace_s}s > preStop {prestop_s:g}s + drain {drain_s:g}s + "
          f"{GRACE_MARGIN_S}s", grace_s >= prestop_s + drain_s + GRACE_MARGIN_S,
          "the kubelet would kill the server mid-drain")

    cpu_limit = container.get("resources", {}).get("limits", {}).get("cpu")
    threads = flags.get("kernel-threads")
    check("--kernel-threads equals the CPU limit",
          cpu_limit is not None and threads is not None and cpu_cores(cpu_limit) == int(threads),
          f"kernel-threads {threads}, cpu limit {cpu_limit}")

    annotations = pod["metadata"].get("annotations", {})
    check("prometheus.io/scrape is on", annotations.get("prometheus.io/scrape") == "true")
    check("prometheus.io/port is the metrics port",
          annotations.get("prometheus.io/port") == str(metrics_port),
          str(annotations.get("prometheus.io/port")))
    check("prometheus.io/path is /metrics", annotations.get("prometheus.io/path") == "/metrics")

    min_replicas = deployment["spec"].get("replicas", 1)
    for (kind, name), obj in objects.items():
        if kind == "HorizontalPodAutoscaler":
            ref = obj["spec"]["scaleTargetRef"]
            check(f"HPA {name} scales the Deployment",
                  ref["kind"] == "Deployment" and ref["name"] == deployment["metadata"]["name"],
                  str(ref))
            min_replicas = obj["spec"].get("minReplicas", 1)
            check(f"HPA {name} keeps at least the Deployment's replicas",
                  min_replicas >= deployment["spec"].get("replicas", 1), str(min_replicas))
    for (kind, name), obj in objects.items():
        if kind == "PodDisruptionBudget":
            check(f"PDB {name} selects the pods",
                  selects_pods(obj["spec"]["selector"]["matchLabels"]), "")
            available = obj["spec"].get("minAvailable")
            check(f"PDB {name} allows an eviction at {min_replicas} replicas",
                  isinstance(available, int) and 1 <= available < min_replicas, str(available))
    return finish(results)


def finish(results):
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
