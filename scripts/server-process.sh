# Sourced by the benchmark scripts: run one fastdiss-server in the background at a time.
#   launch_server LOG ARGS...  starts "$BUILD/server/fastdiss-server ARGS..." with its output in LOG,
#                              waits until it serves, and sets SERVER_PID, GRPC_PORT, METRICS_PORT
#   wait_for_line LOG PATTERN  waits until LOG has PATTERN (exits if SERVER_PID dies first)
#   stop_server                SIGTERM, and waits for it to drain and exit (also run at exit)
SERVER_PID=

stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

wait_for_line() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$1" >&2; exit 1; }
    sleep 0.1
  done
}

launch_server() {
  local log=$1
  shift
  "$BUILD/server/fastdiss-server" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_for_line "$log" "ready, health SERVING"
  GRPC_PORT=$(grep -o "gRPC listening on [^ ]*" "$log" | grep -o "[0-9]*$")
  METRICS_PORT=$(grep -o "metrics on http://[^ ]*" "$log" | sed 's/.*:\([0-9]*\)\/metrics/\1/')
}
