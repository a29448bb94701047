#!/usr/bin/env bash
# Slow suite, not part of ctest: builds the Dockerfile for real and proves the image serves.
#
#   tests/container/run-image-test.sh            # from the repository root; ../shared beside it
#
# Steps, each one a check:
#   1. build the image with shared/tools/container-build and run `cgelu-server --version` in it;
#   2. start the image's server on loopback ports (18001 gRPC, 18002 metrics by default, away from
#      the ports the unit tests use), ask the image's own cgelu-client for health: SERVING;
#   3. send examples/minilm_ffn_preact.npy (real MiniLM activations) through the image's client and
#      compare the answer with clip(examples/minilm_ffn_gelu_expected.npy, -3, 3) (the server's
#      default bounds): at most 4 ULP apart, the accuracy contract;
#   4. scrape /metrics from this machine: cgelu_requests_total counts the request;
#   5. SIGTERM: the server drains and exits 0.
# Environment: CGELU_IMAGE_TAG (default localhost/cgelu:test), CGELU_IMAGE_GRPC_PORT (18001),
# CGELU_IMAGE_METRICS_PORT (18002), CGELU_SHARED_DIR (default ../shared beside the repository),
# CGELU_PYTHON (default /usr/bin/python3, which has Debian's numpy).
# Build layers are cached (BUILDAH_LAYERS), so a rerun after a source edit skips the dependencies.
# On a busy 2-core machine the first run took 17 minutes, reruns 4 to 13; needs root (buildah).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
shared=${CGELU_SHARED_DIR:-$root/../shared}
tag=${CGELU_IMAGE_TAG:-localhost/cgelu:test}
grpc_port=${CGELU_IMAGE_GRPC_PORT:-18001}
metrics_port=${CGELU_IMAGE_METRICS_PORT:-18002}
store=(--storage-driver vfs)
# Debian's interpreter: scripts/install-deps.sh installs numpy for it (python3-numpy).
python=${CGELU_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
passed=0 failed=0
server_pid='' ctr='' client_ctr=''

cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  for c in "$ctr" "$client_ctr"; do
    [[ -n $c ]] && buildah "${store[@]}" rm "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1" >&2; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
  exit
}

# The process that `buildah run` started for $1, found among its descendants by executable name.
descendant_named() {
  local pid=$1 name=$2 child
  for child in $(ps -o pid= --ppid "$pid"); do
    if [[ $(ps -o comm= -p "$child") == "$name" ]]; then
      echo "$child"
      return 0
    fi
    descendant_named "$child" "$name" && return 0
  done
  return 1
}

echo "== 1. build $tag"
export BUILDAH_LAYERS=true
if "$shared/tools/container-build" --tag "$tag" --context "$root" -- cgelu-server --version \
  >"$work/build.log" 2>&1; then
  if version=$(grep '^cgelu-server ' "$work/build.log"); then pass "image builds; $version"
  else fail "cgelu-server --version printed no version line"; fi
else
  tail -30 "$work/build.log" >&2
  fail "image build"
  finish
fi
size_bytes=$(podman "${store[@]}" image inspect --format '{{.Size}}' "$tag")
echo "image size: $(numfmt --to=iec "$size_bytes")"

echo "== 2. serve on 127.0.0.1:$grpc_port (metrics :$metrics_port)"
ctr=$(buildah "${store[@]}" from "$tag")
client_ctr=$(buildah "${store[@]}" from "$tag")
buildah "${store[@]}" run --isolation chroot --network host "$ctr" -- cgelu-server \
  --grpc-address "127.0.0.1:$grpc_port" --metrics-address "127.0.0.1:$metrics_port" \
  --drain-timeout-s 5 --log-format json >"$work/server.log" 2>&1 &
server_pid=$!
client() {
  buildah "${store[@]}" run --isolation chroot --network host "$client_ctr" -- cgelu-client "$@"
}
serving=0
for _ in $(seq 1 60); do
  if client health --server "127.0.0.1:$grpc_port" --timeout-ms 1000 >"$work/health" 2>&1; then
    serving=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
cat "$work/health"
if ((serving)); then pass "health SERVING from the image's server"
else
  cat "$work/server.log" >&2
  fail "server in the image never became SERVING"
  finish
fi

echo "== 3. infer examples/minilm_ffn_preact.npy"
buildah "${store[@]}" copy "$client_ctr" "$root/examples/minilm_ffn_preact.npy" /tmp/in.npy \
  >/dev/null
if client infer --server "127.0.0.1:$grpc_port" --input /tmp/in.npy --output /tmp/out.npy; then
  buildah "${store[@]}" run --isolation chroot "$client_ctr" -- cat /tmp/out.npy >"$work/out.npy"
  if "$python" - "$work/out.npy" "$root/examples/minilm_ffn_gelu_expected.npy" <<'PY'
import sys
import numpy as np
out, expected = np.load(sys.argv[1]), np.clip(np.load(sys.argv[2]), -3.0, 3.0)
assert out.dtype == np.float32 and out.shape == expected.shape, (out.dtype, out.shape)
def ordered(a):  # float bits mapped onto a line where neighbouring floats differ by 1
    i = a.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)
ulp = np.abs(ordered(out) - ordered(expected)).max()
print(f"shape {list(out.shape)}, max {ulp} ULP from the exact GELU clipped to [-3, 3]")
sys.exit(0 if ulp <= 4 else 1)
PY
  then pass "MiniLM activations come back within 4 ULP"
  else fail "MiniLM activations differ from the expected output"; fi
else
  fail "cgelu-client infer"
fi

echo "== 4. scrape http://127.0.0.1:$metrics_port/metrics"
if "$python" - "$metrics_port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
lines = [l for l in text.splitlines() if l.startswith("cgelu_requests_total")]
print("\n".join(l for l in lines if float(l.rsplit(" ", 1)[1]) != 0))
sys.exit(0 if any(float(l.rsplit(" ", 1)[1]) >= 1 for l in lines) else 1)
PY
then pass "/metrics counts the request"
else fail "/metrics has no cgelu_requests_total >= 1"; fi

echo "== 5. SIGTERM drains and exits 0"
if server=$(descendant_named "$server_pid" cgelu-server); then
  kill -TERM "$server"
  if wait "$server_pid"; then pass "server exited 0 after SIGTERM"
  else fail "server exit status $? after SIGTERM"; fi
  server_pid=''
  grep -E '"server stopped"|server stopped' "$work/server.log" || true
else
  fail "cannot find the cgelu-server process under buildah run"
fi
finish
