#!/usr/bin/env bash
# The batcher's knobs, one at a time from the defaults, measured at concurrency 1 and 64 with 4096
# fp32 elements per request (docs/BENCHMARKS.md, "Tuning the batcher").
# Usage: bench/echo/tune_batcher.sh BUILD_DIR OUT_DIR [DURATION_S=5]
# Then: python3 bench/echo/summarize.py OUT_DIR
set -euo pipefail
build=$(realpath "$1")
out=$2
duration=${3:-5}
mkdir -p "$out"
here=$(dirname "$(realpath "$0")")
source "$here/servers.sh"
loadtest=$build/client/loadtest/cgelu-loadtest
# Both servers and the load generator share this machine's cores with anything else running:
# the load average before and after goes with the figures.
uptime >"$out/uptime-$(basename "$0" .sh).txt"

configs=(
  "defaults|"
  "delay-0us|--max-queue-delay-us 0"
  "delay-500us|--max-queue-delay-us 500"
  "delay-2000us|--max-queue-delay-us 2000"
  "batch-1|--max-batch-requests 1"
  "batch-8|--max-batch-requests 8"
  "workers-2|--batch-workers 2"
)
for config in "${configs[@]}"; do
  name=${config%%|*}
  read -r -a flags <<<"${config#*|}"
  start_cgelu "$out/server-$name.log" "${flags[@]}"
  echo "tune: $name (${flags[*]:-defaults})" >&2
  "$loadtest" --server "$cgelu_target" --metrics-url "$metrics_url" --label "$name" \
    --shape 4096 --dtype fp32 --concurrency 1,64 --connections 4 --duration "$duration" \
    --warmup 1 --no-progress --json "$out/tune-$name.json" >"$out/tune-$name.txt"
  stop_servers
done
uptime >>"$out/uptime-$(basename "$0" .sh).txt"
echo "done: $out" >&2
