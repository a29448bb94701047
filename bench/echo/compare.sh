#!/usr/bin/env bash
# cgelu-server against the gRPC echo baseline, both on this machine in one run
# (docs/BENCHMARKS.md, "Service load test"):
#   1. the table: 4096 fp32 elements per request at concurrency 1, 8 and 64, each level run
#      against both servers back to back, REPEATS times (medians are reported);
#   2. the connections check: concurrency 64 over 1, 2, 4 and 8 channels;
#   3. the sweep 1..256 (x2) against both, drawn on one chart.
# Usage: bench/echo/compare.sh BUILD_DIR OUT_DIR [DURATION_S=10] [REPEATS=3]
# Then: python3 bench/echo/summarize.py OUT_DIR
set -euo pipefail
build=$(realpath "$1")
out=$2
duration=${3:-10}
repeats=${4:-3}
mkdir -p "$out"
here=$(dirname "$(realpath "$0")")
source "$here/servers.sh"
loadtest=$build/client/loadtest/cgelu-loadtest
# Both servers and the load generator share this machine's cores with anything else running:
# the load average before and after goes with the figures.
uptime >"$out/uptime-$(basename "$0" .sh).txt"

start_cgelu "$out/cgelu-server.log"
start_echo "$out/echo-server.log"
echo "cgelu $cgelu_target (metrics $metrics_url), echo $echo_target" >&2

run() {  # run NAME TARGET [FLAGS...]
  local name=$1 target=$2; shift 2
  local extra=()
  [[ $target == "$cgelu_target" ]] && extra=(--metrics-url "$metrics_url")
  "$loadtest" --server "$target" --shape 4096 --dtype fp32 --no-progress \
    --json "$out/$name.json" "${extra[@]}" "$@" >"$out/$name.txt"
}

for rep in $(seq "$repeats"); do
  for c in 1 8 64; do
    for server in cgelu echo; do
      target=$cgelu_target; [[ $server == echo ]] && target=$echo_target
      echo "table: repeat $rep, concurrency $c, $server" >&2
      run "table-$server-c$c-r$rep" "$target" --label "$server" --concurrency "$c" \
        --connections 4 --duration "$duration" --warmup 2
    done
  done
done

for n in 1 2 4 8; do
  for server in cgelu echo; do
    target=$cgelu_target; [[ $server == echo ]] && target=$echo_target
    echo "connections: $n, $server" >&2
    run "connections-$server-n$n" "$target" --label "$server" --concurrency 64 --connections "$n" \
      --duration 5 --warmup 1
  done
done

for server in cgelu echo; do
  target=$cgelu_target; [[ $server == echo ]] && target=$echo_target
  echo "sweep: $server" >&2
  run "sweep-$server" "$target" --label "$server" --concurrency 1:256:x2 --duration 5 --warmup 1 \
    --svg "$out/sweep-$server.svg"
done
"$loadtest" --plot "$out/sweep-cgelu.json" "$out/sweep-echo.json" --svg "$out/sweep.svg"
uptime >>"$out/uptime-$(basename "$0" .sh).txt"
echo "done: $out" >&2
