#!/usr/bin/env bash
# The commands that made the bundled models/g2p, and that continue it: configs/g2p.yaml at
# d_model 256 with 4+4 layers, the baseline objective (it beat the FastDiSS runs by dev BLEU at
# K = 5 in that grid; models/README.md), seed 2, 16,384-token batches, a dev evaluation every 250
# steps. The bundled checkpoint is scripts/gpu-check.sh's run "baseline-d256-s2": 1,001 steps in
# 5.3 minutes on one H200, beside six other runs. Then the best dev checkpoint is exported with
# float16 weights and without the trainer state.
#
#   DEVICE=cuda MINUTES=30 bash scripts/train-bundled-g2p.sh
#
# Rerunning continues from runs/g2p-bundled/last (train.resume: auto; the resume is exact), so a
# long training can be stopped at any moment and carried on. Environment: DEVICE (cpu | cuda |
# cuda:N), MINUTES (this stretch; 0 = until MAX_STEPS),
# MAX_STEPS (100000000), BUILD (build), OUTPUT (runs/g2p-bundled), EXPORT (models/g2p; empty skips).
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
  --set objective.scp=false --set objective.mans=false --set train.seed=2 --set train.max_tokens=16384 \
  --set "train.max_steps=${MAX_STEPS:-100000000}" --set "train.max_minutes=$MINUTES" --set "train.device=$DEVICE" \
  --set eval.every=250 --set eval.dev_sentences=500 --set eval.max_rows=2048 --set eval.keep_last=1
if [[ -n "$EXPORT" ]]; then
  "$BUILD/trainer/fastdiss-export" --checkpoint "$OUTPUT/best" --output "$EXPORT" --float16
fi
