#!/usr/bin/env bash
# The whole ablation grid of issue 4 at one time budget: every task x variant x seed trains side
# by side (scripts/ablation.sh PHASE=train), each stopped by train.max_minutes with a checkpoint
# every EVAL_EVERY steps; then each task is scored (PHASE=eval) at the last checkpoint step that
# every one of its runs reached, so all variants are compared at the same step budget, and each
# run's metrics.jsonl is cut at that step (the whole curve stays in metrics.jsonl.full).
#
#   DEVICE=cuda TRAIN_MINUTES=4 bash scripts/ablation-grid.sh
#
# Environment: DEVICE (cpu), BUILD (build), ROOT (runs/ablation-grid), TASKS ("g2p de-en"),
# VARIANTS ("baseline scp mans fastdiss"), SEEDS ("1 2"), TRAIN_MINUTES (4), MAX_TOKENS (config's),
# EVAL_EVERY (200), TOKENIZER_G2P / TOKENIZER_DE_EN (an existing .model each; empty: spm_train),
# SCORE_JOBS (runs scored at once; default all), and scripts/ablation.sh's STEPS, GAP_STEPS,
# TEST_LIMIT, THREADS, MAX_ROWS.
set -uo pipefail
cd "$(dirname "$0")/.."
export DEVICE=${DEVICE:-cpu} BUILD=${BUILD:-build} OUT_ROOT=${ROOT:-runs/ablation-grid}
TASKS=${TASKS:-g2p de-en}
VARIANTS=${VARIANTS:-baseline scp mans fastdiss}
SEEDS=${SEEDS:-1 2}
TRAIN_MINUTES=${TRAIN_MINUTES:-4}
EVAL_EVERY=${EVAL_EVERY:-200}
SCORE_JOBS=${SCORE_JOBS:-1000}

for task in $TASKS; do
  extra=(--set "eval.every=$EVAL_EVERY" --set eval.keep_last=100000)
  [[ -n "${MAX_TOKENS:-}" ]] && extra+=(--set "train.max_tokens=$MAX_TOKENS")
  tokenizer=${TOKENIZER_G2P:-}; [[ $task == de-en ]] && tokenizer=${TOKENIZER_DE_EN:-}
  [[ -n "$tokenizer" ]] && extra+=(--set "data.tokenizer=$tokenizer")
  for variant in $VARIANTS; do
    for seed in $SEEDS; do
      PHASE=train MAX_STEPS=100000000 MAX_MINUTES=$TRAIN_MINUTES \
        bash scripts/ablation.sh "$task" "$variant" "$seed" "${extra[@]}" >/dev/null 2>&1 &
    done
  done
done
wait

for task in $TASKS; do
  common=$(for run in "$OUT_ROOT/$task"/*-s*; do
             ls -d "$run"/step-* 2>/dev/null | sed 's/.*step-//' | awk -v e="$EVAL_EVERY" '$1 % e == 0' |
               sort -n | tail -1
           done | sort -n | head -1)
  if [[ -z "$common" ]]; then
    echo "$task: some run reached no checkpoint (see $OUT_ROOT/$task/*/train.log)" >&2
    continue
  fi
  echo "$task: every run scored at step $common"
  for run in "$OUT_ROOT/$task"/*-s*; do
    name=$(basename "$run")
    python3 - "$run/metrics.jsonl" "$common" "$name" <<'PY'
import json, os, shutil, sys
path, last, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if not os.path.exists(path + ".full"):
    shutil.copy(path, path + ".full")
events = [json.loads(line) for line in open(path + ".full")]
print(f"  {name} trained to step {max(e.get('step', 0) for e in events)}")
open(path, "w").writelines(json.dumps(e) + "\n" for e in events if e.get("step", 0) <= last)
PY
    while (($(jobs -rp | wc -l) >= SCORE_JOBS)); do wait -n; done
    PHASE=eval CHECKPOINT=step-$common bash scripts/ablation.sh "$task" "${name%-s*}" "${name##*-s}" \
      >"$run/eval.log" 2>&1 &
  done
done
wait
# Tables (and, with matplotlib, plots) of what was scored, beside the runs.
python3 scripts/ablation-report.py --docs "$OUT_ROOT" "$OUT_ROOT"
