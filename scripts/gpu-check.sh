#!/usr/bin/env bash
# The GPU checks, in one prepared run on a machine with an NVIDIA GPU and PyTorch's CUDA LibTorch
# (no gRPC there, so model/ and trainer/ only). Writes logs and a results archive under $OUT.
#
#   OUT=/tmp/gpu TRAIN_MINUTES=4 DEADLINE_SECONDS=560 bash scripts/gpu-check.sh
#
# 1. Builds model/ and trainer/ against the CUDA LibTorch, with NCCL when nccl.h is found.
# 2. Serving step latency on the GPU: fastdiss-step-bench on the bundled models/de-en.
# 3. fastdiss-train on CUDA under a torchrun environment (WORLD_SIZE=1: a real NCCL process group
#    of one; one GPU cannot hold two NCCL ranks), then resumed from its CUDA checkpoint.
# 4. The ablation grid of issue 4 on the GPU (scripts/ablation-grid.sh; docs/results.md): both
#    tasks x 4 variants x 2 seeds, 16 processes side by side for the same minutes, scored at one
#    common step per task. Tokenizers come from TOKENIZER_G2P and TOKENIZER_DE_EN (this machine
#    may lack spm_train). The de-en FastDiSS seed-1 checkpoint is exported in float16 too.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
TRAIN_MINUTES=${TRAIN_MINUTES:-4}      # at most; less when the build ate into DEADLINE_SECONDS
DEADLINE_SECONDS=${DEADLINE_SECONDS:-560}
SCORE_SECONDS=${SCORE_SECONDS:-150}    # kept for scoring and packing after training
MAX_TOKENS=${MAX_TOKENS:-16384}
EVAL_EVERY=${EVAL_EVERY:-200}
TOKENIZER_G2P=${TOKENIZER_G2P:-runs/ablation/g2p/baseline-s1/tokenizer.model}
TOKENIZER_DE_EN=${TOKENIZER_DE_EN:-runs/de-en-fastdiss/tokenizer.model}
BUILD=build-cuda
ROOT=runs/gpu-ablation
mkdir -p "$OUT"
start=$(date +%s)
say() { echo "[$(($(date +%s) - start)) s] $*"; }

say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/machine.txt"
nproc | tee -a "$OUT/machine.txt"

say "build"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
nccl_header=$(find $(python3 -c 'import site; print(" ".join(site.getsitepackages()))') /usr/include /usr/local \
  -name nccl.h -path '*include*' 2>/dev/null | head -1)
echo "nccl.h: ${nccl_header:-none}"
export PATH=/usr/local/cuda/bin:$PATH
if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DFASTDISS_BUILD_SERVER=OFF -DFASTDISS_BUILD_TESTS=OFF ${nccl_header:+-DNCCL_INCLUDE_DIR=$(dirname "$nccl_header")} \
    >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; exit 1
fi
grep -i "backends" "$OUT/build.log"
if ! ninja -C "$BUILD" -k 0 fastdiss-train fastdiss-eval fastdiss-export fastdiss-step-bench >>"$OUT/build.log" 2>&1; then
  grep -B2 -A6 "error" "$OUT/build.log" | head -80; exit 1
fi
say "built"

say "serving step latency (bundled de-en, float16 weights upcast)"
"$BUILD/model/fastdiss-step-bench" --checkpoint models/de-en --device cuda --rows 1,8,32,128,512 \
  --iterations 200 2>&1 | tee -a "$OUT/machine.txt"

say "training on CUDA over NCCL (WORLD_SIZE=1), then resuming"
smoke=(--config configs/g2p.yaml --set train.device=cuda --set "data.tokenizer=$TOKENIZER_G2P"
       --set train.output_dir=runs/gpu-smoke --set eval.every=20 --set eval.dev_sentences=50 --set train.log_every=10)
for steps in 40 60; do
  WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
    timeout 120 "$BUILD/trainer/fastdiss-train" "${smoke[@]}" --set train.max_steps=$steps >>"$OUT/smoke.log" 2>&1
  echo "exit $? at max_steps=$steps" | tee -a "$OUT/smoke.log"
done
grep -E "device|NCCL|resuming|step (40|60)/|eval step|done|exit" "$OUT/smoke.log"
[[ $(grep -c "^done at step" "$OUT/smoke.log") == 2 ]] || echo "SMOKE FAILED: both runs must end with 'done at step'"

left=$((DEADLINE_SECONDS - ($(date +%s) - start) - SCORE_SECONDS - 20))
TRAIN_MINUTES=$(python3 -c "print(round(max(0.5, min($TRAIN_MINUTES, $left / 60)), 2))")
say "ablation grid: ${TRAIN_MINUTES} min per run, $MAX_TOKENS tokens per batch"
DEVICE=cuda BUILD=$BUILD ROOT=$ROOT TRAIN_MINUTES=$TRAIN_MINUTES MAX_TOKENS=$MAX_TOKENS EVAL_EVERY=$EVAL_EVERY \
  MAX_ROWS=2048 SCORE_JOBS=4 TOKENIZER_G2P=$TOKENIZER_G2P TOKENIZER_DE_EN=$TOKENIZER_DE_EN \
  timeout $((DEADLINE_SECONDS - ($(date +%s) - start))) bash scripts/ablation-grid.sh 2>&1 | tee "$OUT/grid.txt"
say "scored"
best=$(ls -d $ROOT/de-en/fastdiss-s1/step-* 2>/dev/null | sed 's/.*step-//' | sort -n | tail -1)
[[ -n "$best" ]] && "$BUILD/trainer/fastdiss-export" --checkpoint "$ROOT/de-en/fastdiss-s1/step-$best" --output "$OUT/de-en-gpu" --float16 \
  && tar czf "$OUT/de-en-gpu.tgz" -C "$OUT" de-en-gpu && rm -rf "$OUT/de-en-gpu"
tar czf "$OUT/gpu-ablation.tgz" $ROOT/*/*/eval.json $ROOT/*/*/eval.log $ROOT/*/*/metrics.jsonl* $ROOT/*/*/train.log \
  runs/gpu-smoke/metrics.jsonl
say "done"
