#!/usr/bin/env bash
# Scheduling benchmark: load-adaptive steps and deadline-aware admission, on the bundled g2p model.
#
#   scripts/bench-scheduling.sh [OUT_DIR]
#
# 1. Adaptive steps. Open-loop Poisson load at each rate of RATES, once with a fixed K = MAX_STEPS
#    and once with the range MIN_STEPS..MAX_STEPS (the server picks K against
#    engine.adaptive_latency_target_seconds = TARGET). Each run's answers are scored against the
#    references (fastdiss-score: BLEU, PER, WER of the answers given), and the server's
#    fastdiss_adaptive_steps_given_up_total is read before and after.
# 2. Deadline-aware admission under overload. Open loop at OVERLOAD_RATE with K uniform over
#    MIXED_STEPS and deadlines uniform over DEADLINES, for three settings in turn: deadline-blind
#    FIFO, deadline-aware FIFO, deadline-aware shortest-first. Goodput is OK answers per second (the
#    server answers nothing after its deadline); wasted steps are the share of request-steps spent
#    on requests then stopped at their deadline (fastdiss_late_request_steps_total over
#    fastdiss_request_steps_total).
# Every run is one JSON line in OUT_DIR/results.jsonl; scripts/bench-scheduling-report.py prints
# the tables. Environment: DURATION (s, 20), WARMUP (3), RATES ("10 20 40 60 80"), MIN_STEPS (2),
# MAX_STEPS (20), TARGET (1.0), OVERLOAD_RATE (60), MIXED_STEPS (1,2,5,10,20,50), DEADLINES
# (0.25,0.5,1,2), THREADS (1), BUILD (build), CHECKPOINT (models/g2p), PARTS ("adaptive deadline").
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-runs/bench-scheduling}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
RATES=${RATES:-10 20 40 60 80}
MIN_STEPS=${MIN_STEPS:-2}
MAX_STEPS=${MAX_STEPS:-20}
TARGET=${TARGET:-1.0}
OVERLOAD_RATE=${OVERLOAD_RATE:-60}
MIXED_STEPS=${MIXED_STEPS:-1,2,5,10,20,50}
DEADLINES=${DEADLINES:-0.25,0.5,1,2}
THREADS=${THREADS:-1}
BUILD=${BUILD:-build}
CHECKPOINT=${CHECKPOINT:-models/g2p}
PARTS=${PARTS:-adaptive deadline}
INPUT=data/g2p/test.src
REFERENCE=data/g2p/test.tgt

[[ -f "$INPUT" ]] || bash scripts/prepare-data.sh
mkdir -p "$OUT"
: >"$OUT/results.jsonl"
source scripts/server-process.sh

start_server() {  # name, --set overrides...
  local log="$OUT/server-$1.log"
  shift
  launch_server "$log" --model "g2p=$CHECKPOINT" --port 0 --metrics-port 0 --set server.host=127.0.0.1 \
    --set "runtime.threads=$THREADS" --set server.warmup_steps="[1, 5, 20]" --set engine.max_queued_requests=4096 \
    "${@/#/--set=}"
}

counters() {  # prints "given-up request-steps late-steps"
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^fastdiss_adaptive_steps_given_up_total\{model="g2p"\}/ {g=$2}
         /^fastdiss_request_steps_total\{model="g2p"\}/ {r=$2}
         /^fastdiss_late_request_steps_total\{model="g2p"\}/ {l=$2} END {print g, r, l}'
}

measure() {  # name, loadgen flags...
  local name=$1
  shift
  read -r given0 steps0 late0 < <(counters)
  "$BUILD/server/fastdiss-loadgen" --target "127.0.0.1:$GRPC_PORT" --model g2p --input "$INPUT" \
    --duration "$DURATION" --warmup "$WARMUP" --output "$OUT/$name.answers.tsv" --json "$@" >"$OUT/$name.loadgen.json"
  read -r given1 steps1 late1 < <(counters)
  # The answers given, with their references, scored as fastdiss-eval scores its own.
  cut -f5 "$OUT/$name.answers.tsv" >"$OUT/$name.hyp"
  cut -f1 "$OUT/$name.answers.tsv" | awk 'NR==FNR {ref[FNR]=$0; next} {print ref[$1]}' "$REFERENCE" - >"$OUT/$name.ref"
  local score='{}'
  [[ -s "$OUT/$name.hyp" ]] && score=$("$BUILD/trainer/fastdiss-score" --hypotheses "$OUT/$name.hyp" --reference "$OUT/$name.ref" --json)
  python3 - "$OUT/$name.loadgen.json" "$name" "$score" "$given0" "$given1" "$steps0" "$steps1" "$late0" "$late1" \
    >>"$OUT/results.jsonl" <<'EOF'
import json, sys
src, name, score, g0, g1, s0, s1, l0, l1 = sys.argv[1:]
report = json.load(open(src))
request_steps = float(s1) - float(s0)
print(json.dumps({
    "name": name, "rate": report["rate"], "ok": report["ok"], "errors": report["errors"],
    "goodput_rps": report["throughput_rps"], "mean_planned_steps": report["mean_planned_steps"],
    "p50_ms": report["latency"]["all"]["p50_ms"], "p99_ms": report["latency"]["all"]["p99_ms"],
    "score": json.loads(score), "steps_given_up": float(g1) - float(g0), "request_steps": request_steps,
    "late_steps": float(l1) - float(l0),
    "wasted_share": (float(l1) - float(l0)) / request_steps if request_steps else 0.0}))
EOF
  tail -1 "$OUT/results.jsonl"
}

if [[ " $PARTS " == *" adaptive "* ]]; then
  start_server adaptive "engine.adaptive_latency_target_seconds=$TARGET"
  for rate in $RATES; do
    measure "fixed-r$rate" --rate "$rate" --steps "$MAX_STEPS" --deadline-seconds 30
    measure "range-r$rate" --rate "$rate" --step-range "$MIN_STEPS,$MAX_STEPS" --deadline-seconds 30
  done
  stop_server
fi

if [[ " $PARTS " == *" deadline "* ]]; then
  for setting in "blind-fifo engine.deadline_aware=false" "aware-fifo engine.deadline_aware=true" \
                 "aware-shortest engine.deadline_aware=true engine.admission_order=shortest_first"; do
    read -r name sets <<<"$setting"
    read -r -a sets <<<"$sets"
    start_server "$name" "${sets[@]}"
    measure "overload-$name" --rate "$OVERLOAD_RATE" --steps "$MIXED_STEPS" --deadline-seconds "$DEADLINES"
    stop_server
  done
fi
