# Sourced by compare.sh and tune_batcher.sh: start cgelu-server or cgelu-echo-server on 127.0.0.1
# port 0 and learn the ports they chose. Every server started here is stopped on exit.
started_pids=()
stop_servers() {
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  started_pids=()
}
trap stop_servers EXIT

# wait_for_port LOG PATTERN: prints the first number after PATTERN in LOG, within 30 s.
wait_for_port() {
  local log=$1 pattern=$2
  for _ in $(seq 300); do
    local port
    port=$(grep -o "${pattern}[0-9]*" "$log" | head -1 | sed "s/${pattern}//")
    if [[ -n $port ]]; then echo "$port"; return 0; fi
    sleep 0.1
  done
  echo "no ${pattern} in $log:" >&2; cat "$log" >&2; return 1
}

# start_cgelu LOG [SERVER FLAGS...]: sets cgelu_target and metrics_url.
start_cgelu() {
  local log=$1; shift
  "$build/server/cgelu-server" --grpc-address 127.0.0.1:0 --metrics-address 127.0.0.1:0 "$@" \
    >"$log" 2>&1 &
  started_pids+=($!)
  cgelu_target=127.0.0.1:$(wait_for_port "$log" grpc_port=)
  metrics_url=http://127.0.0.1:$(wait_for_port "$log" metrics_port=)/metrics
}

# start_echo LOG: sets echo_target.
start_echo() {
  local log=$1
  "$build/bench/echo/cgelu-echo-server" --grpc-address 127.0.0.1:0 >"$log" 2>&1 &
  started_pids+=($!)
  echo_target=127.0.0.1:$(wait_for_port "$log" "listening on 127.0.0.1:")
}
