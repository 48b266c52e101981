#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into build-fuzz/, replays the
# regression inputs of fuzz/regressions/, then fuzzes each target for SECONDS.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default 300 s each; targets: tokenizer config
#                                               checkpoint request)
#
# Corpora grow in runs/fuzz/corpus/TARGET, seeded from fuzz/corpus/TARGET (in the repository), both
# bundled tokenizers, configs/*.yaml, and the files of a tiny checkpoint the checkpoint
# target writes itself. Needs clang (apt-get install clang; not part of install-deps.sh).
# A crash leaves its input in runs/fuzz/crash-TARGET-*; copy it into fuzz/regressions/TARGET/ once
# fixed, so every later run replays it. The summary (executions, coverage, findings) is printed
# and written to runs/fuzz/summary.txt. JOBS sets the build's parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-300}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(tokenizer config checkpoint request)
jobs=${JOBS:-$(nproc)}
CC=${CC:-clang}
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install clang)" >&2; exit 1; }

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-fuzz "${generator[@]}" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="-O1 -g $flags -fsanitize=fuzzer-no-link" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DFASTDISS_FUZZ=ON -DFASTDISS_BUILD_TESTS=OFF \
  -DFASTDISS_DISTRIBUTED=OFF >/dev/null
cmake --build build-fuzz --parallel "$jobs" --target "${targets[@]/#/fastdiss_fuzz_}"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p runs/fuzz
summary=runs/fuzz/summary.txt
: >"$summary"
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz/fastdiss_fuzz_$t
  corpus=runs/fuzz/corpus/$t
  mkdir -p "$corpus"
  [[ -d fuzz/corpus/$t ]] && cp -n fuzz/corpus/$t/* "$corpus"/ 2>/dev/null || true
  case $t in
    tokenizer) cp models/g2p/tokenizer.model "$corpus/g2p.model"; cp models/de-en/tokenizer.model "$corpus/de-en.model" ;;
    config) cp configs/*.yaml "$corpus"/ ;;
    # The tiny checkpoint's weights.pt (220 KB) is made by the target rather than kept in git.
    checkpoint) FASTDISS_FUZZ_WRITE_SEEDS="$corpus" "$bin" ;;
  esac
  if [[ -d fuzz/regressions/$t ]] && compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    echo "== $t: replaying fuzz/regressions/$t"
    "$bin" fuzz/regressions/$t/*
  fi
  echo "== $t: fuzzing for $SECONDS_EACH s"
  log=runs/fuzz/$t.log
  set +e
  # One input at most 1 MiB (a checkpoint's weights.pt seed is larger than libFuzzer's default).
  "$bin" "$corpus" -max_total_time="$SECONDS_EACH" -max_len=1048576 -len_control=0 -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="runs/fuzz/crash-$t-" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  units=$(find "$corpus" -type f | wc -l)
  crashes=$(find runs/fuzz -maxdepth 1 -name "crash-$t-*" | wc -l)
  line="$t: ${SECONDS_EACH} s, $execs executions, coverage $cov edges ($ft features), corpus $units inputs, exit $rc, crash inputs $crashes"
  echo "$line" | tee -a "$summary"
  [[ $rc -eq 0 ]] || tail -40 "$log"
done
