#!/usr/bin/env bash
# Serving benchmark: one checkpoint, the three batching policies and a plain PyTorch server, the
# same load.
#
#   scripts/bench-server.sh [CHECKPOINT_DIR] [OUT_DIR]
#
# For each policy (step, request, none) it starts fastdiss-server on free ports, then runs
# fastdiss-loadgen: closed loop at CONCURRENCY with K fixed at FIXED_STEPS, closed loop and open
# loop at RATE with K uniform over STEPS, texts from INPUT; and it reads the server's
# rows-per-forward histogram before and after each run. With the step policy it also measures idle
# latency (one call at a time) at each K of IDLE_STEPS. With PYTORCH=1 the closed loops also run
# against bench/pytorch_server.py (the same network and weights in PyTorch eager mode behind
# grpcio, request-level batching of up to CONCURRENCY calls, THREADS torch threads).
# Each measurement lands in OUT_DIR as JSON (loadgen's report plus "mean_rows_per_forward");
# scripts/bench-server-report.py turns them into docs/serving.md's tables and plot.
# Environment: DURATION (s, default 30), WARMUP (3), CONCURRENCY (32), RATE (20), STEPS (1,2,5,10,20),
# IDLE_STEPS (1 5 20; empty skips), FIXED_STEPS (5; empty skips), PYTORCH (0), INPUT (data/de-en/test.de), THREADS (runtime.threads, default 1;
# 0 = all cores), BUILD (build), DEVICE (cpu; the model's device), RATE=0 skips the open loop,
# SERVER_SETS (more fastdiss-server --set overrides, space-separated, e.g. engine.max_rows_per_batch=1024),
# POLICIES (step request none), PRECISION (float32; bfloat16 serves the linear layers in bfloat16,
# models.NAME.precision, and runs the PyTorch server under torch.autocast with bfloat16).
# The server runs without clamping (server.default_clamp=false) unless SERVER_SETS says otherwise:
# bench/pytorch_server.py does not clamp, and docs/serving.md's figures were made before it was
# the default.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKPOINT=${1:-models/de-en}
OUT=${2:-runs/bench-server}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-20}
STEPS=${STEPS:-1,2,5,10,20}
IDLE_STEPS=${IDLE_STEPS-1 5 20}
FIXED_STEPS=${FIXED_STEPS-5}
PYTORCH=${PYTORCH:-0}
INPUT=${INPUT:-data/de-en/test.de}
THREADS=${THREADS:-1}
BUILD=${BUILD:-build}
DEVICE=${DEVICE:-cpu}
POLICIES=${POLICIES:-step request none}
PRECISION=${PRECISION:-float32}
read -r -a server_sets <<<"${SERVER_SETS:-}"

[[ -f "$INPUT" ]] || { echo "bench-server: $INPUT is missing (run scripts/prepare-data.sh)" >&2; exit 1; }
[[ -d "$CHECKPOINT" ]] || { echo "bench-server: no checkpoint at $CHECKPOINT" >&2; exit 1; }
mkdir -p "$OUT"
source scripts/server-process.sh

start_server() {  # policy
  launch_server "$OUT/server-$1.log" --model "bench=$CHECKPOINT" --port 0 --metrics-port 0 \
    --set server.host=127.0.0.1 --set "engine.policy=$1" --set "runtime.threads=$THREADS" \
    --set server.warmup_steps="[1, 5, 20]" --set "models.bench.device=$DEVICE" --set server.default_clamp=false \
    --set "models.bench.precision=$PRECISION" \
    "${server_sets[@]/#/--set=}"
}

rows() {  # prints "rows-sum forwards step-seconds-sum" from the server's histograms
  [[ -n "$METRICS_PORT" ]] || { echo 0 0 0; return; }  # the PyTorch server has none
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^fastdiss_batch_rows_sum\{model="bench"\}/ {s=$2} /^fastdiss_batch_rows_count\{model="bench"\}/ {c=$2}
         /^fastdiss_step_duration_seconds_sum\{model="bench"\}/ {t=$2} END {print s, c, t}'
}

measure() {  # name, loadgen flags...
  local name=$1; shift
  read -r sum0 count0 time0 < <(rows)
  "$BUILD/server/fastdiss-loadgen" --target "127.0.0.1:$GRPC_PORT" --input "$INPUT" --duration "$DURATION" \
    --warmup "$WARMUP" --json "$@" >"$OUT/$name.loadgen.json"
  read -r sum1 count1 time1 < <(rows)
  python3 - "$OUT/$name.loadgen.json" "$OUT/$name.json" "$sum0" "$count0" "$sum1" "$count1" "$time0" "$time1" "$name" <<'EOF'
import json, sys
src, dst, s0, c0, s1, c1, t0, t1, name = sys.argv[1:]
report = json.load(open(src))
forwards = float(c1) - float(c0)
report["name"] = name
report["forwards"] = forwards
report["mean_rows_per_forward"] = (float(s1) - float(s0)) / forwards if forwards else 0.0
# Over the whole run, warm-up included: the server's histograms have no window.
report["mean_forward_ms"] = 1e3 * (float(t1) - float(t0)) / forwards if forwards else 0.0
json.dump(report, open(dst, "w"), indent=1)
print(f"{name}: {report['throughput_rps']:.1f} req/s, p50 {report['latency']['all']['p50_ms']:.0f} ms, "
      f"p99 {report['latency']['all']['p99_ms']:.0f} ms, {report['mean_rows_per_forward']:.1f} rows/forward "
      f"({report['mean_forward_ms']:.1f} ms each), "
      f"errors {report['errors']}")
EOF
  rm "$OUT/$name.loadgen.json"
}

for policy in $POLICIES; do
  start_server "$policy"
  if [[ "$policy" == step ]]; then
    for k in $IDLE_STEPS; do measure "idle-k$k" --concurrency 1 --steps "$k"; done
  fi
  [[ -n "$FIXED_STEPS" ]] && measure "fixed-$policy" --concurrency "$CONCURRENCY" --steps "$FIXED_STEPS"
  measure "closed-$policy" --concurrency "$CONCURRENCY" --steps "$STEPS"
  [[ "$RATE" != 0 ]] && measure "open-$policy" --rate "$RATE" --steps "$STEPS"
  stop_server
done
if [[ "$PYTORCH" == 1 ]]; then
  GRPC_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  METRICS_PORT=
  /usr/bin/python3 bench/pytorch_server.py --checkpoint "$CHECKPOINT" --port "$GRPC_PORT" --threads "$THREADS" \
    --max-batch "$CONCURRENCY" $([[ "$PRECISION" == bfloat16 ]] && echo --autocast-bf16) \
    >"$OUT/server-pytorch.log" 2>&1 &
  SERVER_PID=$!
  wait_for_line "$OUT/server-pytorch.log" "serving"
  [[ -n "$FIXED_STEPS" ]] && measure "fixed-pytorch" --concurrency "$CONCURRENCY" --steps "$FIXED_STEPS"
  measure "closed-pytorch" --concurrency "$CONCURRENCY" --steps "$STEPS"
  stop_server
fi
{
  echo "checkpoint: $CHECKPOINT ($(grep -o "version [^ ]*" "$OUT/server-step.log" | head -1))"
  echo "runtime: $(grep -o "runtime .*" "$OUT/server-step.log")"
  echo "machine: $(nproc) cores, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs), device $DEVICE"
  echo "load: DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY RATE=$RATE STEPS=$STEPS INPUT=$INPUT"
} >"$OUT/setup.txt"
cat "$OUT/setup.txt"
