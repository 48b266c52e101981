#!/usr/bin/env bash
# Peak memory of a server held at engine.max_rows_per_batch with inputs at the models' longest.
#
#   scripts/bench-memory.sh [ROWS...]        (default: 64 256)
#
# For each ROWS, fastdiss-server runs configs/server.yaml (g2p and de-en) with
# engine.max_rows_per_batch=ROWS, and fastdiss-loadgen keeps 2 x ROWS calls open (closed loop) for
# DURATION seconds (default 60) at K = 50, so the batch stays full: g2p words of exactly its
# max_source_tokens (40) letters, de-en sentences near its limit of 48 tokens. RSS and the malloc
# heap are read from /metrics every second. Prints one line per ROWS: idle RSS, peak RSS, peak heap
# in use, and the bound of docs/reliability.md's sizing rule, 1.2 x (300 MiB + 1 MiB per row in
# flight, summed over both models); exits 1 if any peak passed its bound. Environment: BUILD
# (build), DURATION (60), OUT (runs/bench-memory).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DURATION=${DURATION:-60}
OUT=${OUT:-runs/bench-memory}
rows_list=("$@")
over=0
[[ ${#rows_list[@]} -gt 0 ]] || rows_list=(64 256)
mkdir -p "$OUT"
source scripts/server-process.sh

# 40 letters each (g2p's max_source_tokens, one token per letter).
printf '%s\n' abcdefghijklmnopqrstuvwxyzabcdefghijklmn supercalifragilisticexpialidociousnesses \
  pneumonoultramicroscopicsilicovolcanocon antidisestablishmentarianismsandthemores >"$OUT/g2p.txt"
# Long German sentences of the de-en test split's style, 44-47 tokens each (checked by the server:
# a longer one would be refused, and every refusal is printed below).
printf '%s\n' \
  "Der alte Mann, der jeden Morgen mit seinem Hund durch den Park geht, hat mir gestern erzählt, dass er früher als Lehrer in einer kleinen Schule gearbeitet hat." \
  "Wenn du morgen Zeit hast, können wir zusammen in die Stadt fahren, ein neues Fahrrad kaufen und danach in dem kleinen Café am Markt zu Mittag essen." \
  >"$OUT/de-en.txt"

for rows in "${rows_list[@]}"; do
  launch_server "$OUT/server-$rows.log" --config configs/server.yaml --port 0 --metrics-port 0 \
    --set server.host=127.0.0.1 --set "engine.max_rows_per_batch=$rows" --set "engine.max_queued_requests=$((4 * rows))" \
    --set engine.deadline_aware=false --set server.default_deadline_seconds=600
  idle=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^process_resident_memory_bytes / {print $2}')
  (
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
        awk '/^process_resident_memory_bytes / {r = $2} /^fastdiss_heap_bytes\{state="in_use"\}/ {u = $2} END {print r, u}' || true
      sleep 1
    done
  ) >"$OUT/memory-$rows.txt" &
  sampler=$!
  "$BUILD/server/fastdiss-loadgen" --target "127.0.0.1:$GRPC_PORT" \
    --model-input "g2p=$OUT/g2p.txt" --model-input "de-en=$OUT/de-en.txt" \
    --concurrency $((2 * rows)) --duration "$DURATION" --warmup 5 --steps 50 --deadline-seconds 600 >"$OUT/loadgen-$rows.txt"
  stop_server
  wait "$sampler" 2>/dev/null || true
  grep -E '^errors|^answers' "$OUT/loadgen-$rows.txt" | sed "s/^/  rows $rows: /"
  # Both models hold ROWS rows each at the limit.
  awk -v rows="$rows" -v idle="$idle" '
    {if ($1 > r) r = $1; if ($2 > u) u = $2}
    END {bound = 1.2 * (300 + 2 * rows)
         printf "rows %d: idle RSS %.0f MiB, peak RSS %.0f MiB, peak heap in use %.0f MiB; bound %.0f MiB: %s\n",
                rows, idle / 1048576, r / 1048576, u / 1048576, bound, r / 1048576 <= bound ? "within" : "OVER"
         exit r / 1048576 > bound}' \
    "$OUT/memory-$rows.txt" | tee -a "$OUT/summary.txt" || over=1
done
exit "$over"
