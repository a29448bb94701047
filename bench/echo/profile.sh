#!/usr/bin/env bash
# Where the time goes (docs/BENCHMARKS.md): cgelu-server and the echo server under the same closed
# loop (4096 fp32 elements per request), alternately, ROUNDS times. For each run: throughput, the
# server process's CPU time per request (from /proc/PID/stat over a 5 s window in the middle of
# the run), and a perf profile of that window, summarised by category and by thread
# (perf_categories.py). Needs `perf` (Debian package linux-perf) and perf_event_paranoid <= 2.
# Usage: bench/echo/profile.sh BUILD_DIR OUT_DIR [CONCURRENCY=64] [ROUNDS=2]
set -euo pipefail
build=$(realpath "$1")
out=$2
concurrency=${3:-64}
rounds=${4:-2}
mkdir -p "$out"
here=$(dirname "$(realpath "$0")")
source "$here/servers.sh"
loadtest=$build/client/loadtest/cgelu-loadtest
ticks=$(getconf CLK_TCK)
uptime >"$out/uptime-profile.txt"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of the process

profile() {  # profile NAME TARGET PID
  local name=$1 target=$2 pid=$3
  "$loadtest" --server "$target" --shape 4096 --dtype fp32 --concurrency "$concurrency" \
    --warmup 1 --duration 9 --no-progress --json "$out/$name.json" >"$out/$name.txt" &
  local load=$!
  sleep 3
  local before after
  before=$(cpu_ticks "$pid")
  perf record -q -F 999 -g -p "$pid" -o "$out/$name.perf" -- sleep 5 2>/dev/null
  after=$(cpu_ticks "$pid")
  wait "$load"
  python3 - "$out/$name.json" "$before" "$after" "$ticks" "$name" <<'PY'
import json, sys
report, before, after, ticks, name = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
level = json.load(open(report))["levels"][0]
cpu_s = (after - before) / ticks
print(f"{name}: {level['throughput_rps']:.0f} requests/s, server CPU {cpu_s:.2f} s in 5 s, "
      f"{cpu_s * 1e6 / (level['throughput_rps'] * 5):.1f} us CPU per request")
PY
  python3 "$here/perf_categories.py" "$out/$name.perf"
}

for round in $(seq "$rounds"); do
  start_cgelu "$out/cgelu-$round.log"
  profile "cgelu-$round" "$cgelu_target" "${started_pids[-1]}"
  stop_servers
  start_echo "$out/echo-$round.log"
  profile "echo-$round" "$echo_target" "${started_pids[-1]}"
  stop_servers
done
