#!/usr/bin/env bash
# Checks fastdiss-server's metrics with the real Prometheus (Debian's `prometheus` package):
# starts a server on free ports, puts load on it with fastdiss-loadgen, runs Prometheus scraping
# it every second, and asks Prometheus's HTTP API that
#   - the request latency histogram was scraped (fastdiss_request_duration_seconds_count > 0), and
#   - histogram_quantile(0.99, ...) over its buckets returns a number.
#
#   scripts/check-prometheus.sh [CHECKPOINT_DIR]      (default: the bundled models/de-en)
# Environment: BUILD (build). Exits 0 when both hold, 1 otherwise, printing what it saw.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKPOINT=${1:-models/de-en}
BUILD=${BUILD:-build}
command -v prometheus >/dev/null || { echo "check-prometheus: prometheus is not installed (scripts/install-deps.sh)" >&2; exit 1; }
[[ -d "$CHECKPOINT" ]] || { echo "check-prometheus: no checkpoint at $CHECKPOINT" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"$BUILD/server/fastdiss-server" --model "check=$CHECKPOINT" --port 0 --metrics-port 0 \
  --set server.host=127.0.0.1 >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do
  grep -q "ready, health SERVING" "$WORK/server.log" && break
  sleep 0.1
done
grep -q "ready, health SERVING" "$WORK/server.log" || { cat "$WORK/server.log" >&2; exit 1; }
GRPC_PORT=$(grep -o "gRPC listening on [^ ]*" "$WORK/server.log" | grep -o "[0-9]*$")
METRICS_PORT=$(grep -o "metrics on http://[^ ]*" "$WORK/server.log" | sed 's/.*:\([0-9]*\)\/metrics/\1/')

PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fastdiss
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

printf '%s\n' "Ein Mann fährt Fahrrad." "Zwei Hunde spielen im Schnee." "Das Haus ist rot." >"$WORK/inputs.txt"
"$BUILD/server/fastdiss-loadgen" --target "127.0.0.1:$GRPC_PORT" --input "$WORK/inputs.txt" --concurrency 4 \
  --steps 1,5 --duration 20 --warmup 0 >"$WORK/loadgen.txt" &
PIDS+=($!)

query() {  # prints the first result's value, or nothing
  curl -s --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys
r = json.load(sys.stdin)
if r.get("status") == "success" and r["data"]["result"]:
    print(r["data"]["result"][0]["value"][1])'
}

COUNT_QUERY='sum(fastdiss_request_duration_seconds_count{model="check"})'
P99_QUERY='histogram_quantile(0.99, sum by (le) (rate(fastdiss_request_duration_seconds_bucket{model="check"}[10s])))'
count="" p99=""
for _ in $(seq 60); do
  sleep 1
  count=$(query "$COUNT_QUERY" || true)
  p99=$(query "$P99_QUERY" || true)
  if [[ -n "$count" && "$count" != "0" && -n "$p99" && "$p99" != "NaN" ]]; then break; fi
done
echo "prometheus: $COUNT_QUERY = ${count:-<none>}"
echo "prometheus: $P99_QUERY = ${p99:-<none>} s"
if [[ -n "$count" && "$count" != "0" ]] && python3 -c "import math, sys; v = float(sys.argv[1]); sys.exit(0 if math.isfinite(v) and v > 0 else 1)" "${p99:-nan}"; then
  echo "check-prometheus: OK"
  exit 0
fi
echo "check-prometheus: FAILED" >&2
tail -5 "$WORK/prometheus.log" >&2
exit 1
