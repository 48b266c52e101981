#!/usr/bin/env bash
# The commands that made the bundled models/g2p, and that continue it: configs/g2p.yaml at
# d_model 256 with 4+4 layers, the baseline objective (it beat the FastDiSS runs by dev BLEU at
# K = 5 in the H200 grid; models/README.md), a dev evaluation every 250 steps. Two stretches:
#
#  1. From scratch on one H200 (scripts/gpu-check.sh's run "baseline-d256-s2", 2026-11-30):
#     seed 2, 16,384-token batches, 1,001 steps in 5.3 minutes.
#       DEVICE=cuda MINUTES=5.33 SEED=2 bash scripts/train-bundled-g2p.sh
#  2. On from stretch 1's float16 export (train.init_from: its weights, a fresh optimizer) on the
#     2-core CPU, 110 minutes at one thread, then resumed from last/ for 32 minutes at two (THREADS=2,
#     MINUTES=32, the same other settings), then for 58 and 80 more minutes at one (MINUTES=150,
#     stopped and resumed at step 3,250; then MINUTES=80; then MINUTES=140, stopped with SIGTERM at
#     step 6,593), best dev at step 6,250: seed 3, 4,096-token batches, peak lr 4e-4 after 200
#     warm-up steps. That checkpoint predates model.source_lowercase,
#     so its resumptions add --set model.source_lowercase=false (the export declares the rule).
#       DEVICE=cpu MINUTES=110 FROM=models/g2p SEED=3 MAX_TOKENS=4096 LR=0.0004 WARMUP=200 \
#         OUTPUT=runs/g2p-cpu-ft bash scripts/train-bundled-g2p.sh
#
# Then the best dev checkpoint is exported with float16 weights and without the trainer state.
# Rerunning continues from OUTPUT/last (train.resume: auto; the resume is exact, FROM is then
# ignored), so a long training can be stopped at any moment and carried on. Environment: DEVICE
# (cpu | cuda | cuda:N), MINUTES (this stretch; 0 = until MAX_STEPS), MAX_STEPS (100000000), FROM
# (a checkpoint to start from; empty = from scratch), SEED, MAX_TOKENS, LR, WARMUP, THREADS (1),
# BUILD (build), OUTPUT (runs/g2p-bundled), EXPORT (models/g2p; empty skips). Arguments are passed
# on to fastdiss-train (e.g. --set model.source_lowercase=false to resume a run that predates it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-30}
OUTPUT=${OUTPUT:-runs/g2p-bundled}
EXPORT=${EXPORT-models/g2p}
[[ -f data/g2p/train.src ]] || bash scripts/prepare-data.sh
"$BUILD/trainer/fastdiss-train" --config configs/g2p.yaml --set "train.output_dir=$OUTPUT" \
  --set model.d_model=256 --set model.ffn_dim=1024 --set model.encoder_layers=4 --set model.decoder_layers=4 \
  --set objective.scp=false --set objective.mans=false --set "train.init_from=${FROM:-}" \
  --set "train.seed=${SEED:-2}" --set "train.max_tokens=${MAX_TOKENS:-16384}" --set "train.lr=${LR:-0.001}" \
  --set "train.warmup_steps=${WARMUP:-400}" --set "train.threads=${THREADS:-1}" \
  --set "train.max_steps=${MAX_STEPS:-100000000}" --set "train.max_minutes=$MINUTES" --set "train.device=$DEVICE" \
  --set eval.every=250 --set eval.dev_sentences=500 --set eval.max_rows=512 --set eval.keep_last=1 "$@"
if [[ -n "$EXPORT" ]]; then
  "$BUILD/trainer/fastdiss-export" --checkpoint "$OUTPUT/best" --output "$EXPORT" --float16 \
    --source-units characters --source-lowercase true
fi
