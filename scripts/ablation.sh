#!/usr/bin/env bash
# One ablation run of issue 4: trains one variant on one task with one seed, then scores its
# last checkpoint on the test set at every K, with the approximation gap at K = 5 and 20.
#
#   scripts/ablation.sh TASK VARIANT SEED [extra fastdiss-train --set ...]
#     TASK     de-en | g2p              (configs/TASK.yaml, data from scripts/prepare-data.sh)
#     VARIANT  baseline | scp | mans | fastdiss   (objective.scp / objective.mans off/on)
#     SEED     train.seed (the same seed gives the same data order and initial weights)
#
# Every run of one task gets the same budget: train.max_steps and train.max_minutes from the
# environment (MAX_STEPS, default the config's; MAX_MINUTES, default 0 = no limit), so the
# variants see the same data. Output: runs/ablation/TASK/VARIANT-sSEED/ (the training run,
# metrics.jsonl with the loss curve) and its eval.json (fastdiss-eval --json), which
# scripts/ablation-report.py turns into docs/results.md and docs/results.json.
# Environment: STEPS (1,2,5,10,20,50,200), GAP_STEPS (5,20), TEST_LIMIT (0 = whole test set),
# MAX_ROWS (256, rows per decoding batch; a GPU takes far more),
# THREADS (1), BUILD (build), OUT_ROOT (runs/ablation), DEVICE (cpu; cuda trains and decodes on
# the GPU), PHASE (all; train or eval for one half), CHECKPOINT (last; e.g. step-2000 scores that
# periodic checkpoint, so runs stopped by time are compared at one step).
set -euo pipefail
cd "$(dirname "$0")/.."

TASK=${1:?task: de-en or g2p}
VARIANT=${2:?variant: baseline, scp, mans or fastdiss}
SEED=${3:?seed}
shift 3
BUILD=${BUILD:-build}
STEPS=${STEPS:-1,2,5,10,20,50,200}
GAP_STEPS=${GAP_STEPS:-5,20}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-cpu}

case "$VARIANT" in
  baseline) scp=false mans=false ;;
  scp) scp=true mans=false ;;
  mans) scp=false mans=true ;;
  fastdiss) scp=true mans=true ;;
  *) echo "ablation: unknown variant '$VARIANT'" >&2; exit 2 ;;
esac
case "$TASK" in
  de-en) source=data/de-en/test.de reference=data/de-en/test.en ;;
  g2p) source=data/g2p/test.src reference=data/g2p/test.tgt ;;
  *) echo "ablation: unknown task '$TASK'" >&2; exit 2 ;;
esac
[[ -f "$source" ]] || { echo "ablation: $source is missing (run scripts/prepare-data.sh)" >&2; exit 1; }

out=${OUT_ROOT:-runs/ablation}/$TASK/$VARIANT-s$SEED
budget=()
[[ -n "${MAX_STEPS:-}" ]] && budget+=(--set "train.max_steps=$MAX_STEPS")
[[ -n "${MAX_MINUTES:-}" ]] && budget+=(--set "train.max_minutes=$MAX_MINUTES")
PHASE=${PHASE:-all}
CHECKPOINT=${CHECKPOINT:-last}
mkdir -p "$out"
if [[ "$PHASE" != eval ]]; then
  "$BUILD/trainer/fastdiss-train" --config "configs/$TASK.yaml" --set "train.output_dir=$out" \
    --set "train.seed=$SEED" --set "objective.scp=$scp" --set "objective.mans=$mans" \
    --set "train.threads=$THREADS" --set "train.device=$DEVICE" "${budget[@]}" "$@" 2>&1 | tee -a "$out/train.log"
fi
[[ "$PHASE" == train ]] && exit 0
limit=()
[[ "${TEST_LIMIT:-0}" != 0 ]] && limit=(--limit "$TEST_LIMIT")
"$BUILD/trainer/fastdiss-eval" --checkpoint "$out/$CHECKPOINT" --source "$source" --reference "$reference" \
  --steps "$STEPS" --gap-steps "$GAP_STEPS" --seed "$SEED" --threads "$THREADS" --device "$DEVICE" --max-rows "${MAX_ROWS:-256}" "${limit[@]}" --json \
  >"$out/eval.json"
echo "ablation: $out/eval.json"
