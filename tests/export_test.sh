#!/usr/bin/env bash
# CTest case: fastdiss-export copies a checkpoint for serving: float16 weights, no trainer state,
# and --source-units / --source-lowercase declare the model's source rule; bad values or input are
# refused.
# Usage: export_test.sh FASTDISS_EXPORT CHECKPOINT_DIR
set -euo pipefail
export_bin=$1 checkpoint=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$export_bin" --checkpoint "$checkpoint" --output "$work/plain" --float16 2>"$work/log" || fail "$(cat "$work/log")"
grep -q "dtype: float16" "$work/plain/model.yaml" || fail "no float16 weights: $(cat "$work/plain/model.yaml")"
grep -q 'source_units: "text"\|source_units: text' "$work/plain/model.yaml" || fail "source_units not kept as text"

"$export_bin" --checkpoint "$work/plain" --output "$work/spelled" --source-units characters \
  --source-lowercase true 2>"$work/log" ||
  fail "$(cat "$work/log")"
grep -q 'source_units: "characters"\|source_units: characters' "$work/spelled/model.yaml" ||
  fail "source_units not set: $(cat "$work/spelled/model.yaml")"
grep -q "source_lowercase: true" "$work/spelled/model.yaml" || fail "source_lowercase not set"
# The tokenizer travels unchanged.
cmp -s "$work/plain/tokenizer.model" "$work/spelled/tokenizer.model" || fail "tokenizer changed"

status=0
"$export_bin" --checkpoint "$work/plain" --output "$work/bad" --source-units letters 2>"$work/log" || status=$?
[[ $status -eq 2 ]] || fail "--source-units letters exited $status"
grep -q "source_units" "$work/log" || fail "unclear message: $(cat "$work/log")"
status=0
"$export_bin" --checkpoint "$work/plain" --output "$work/bad" --source-lowercase yes 2>"$work/log" || status=$?
[[ $status -eq 2 ]] || fail "--source-lowercase yes exited $status"
status=0
"$export_bin" --checkpoint "$work/missing" --output "$work/none" 2>"$work/log" || status=$?
[[ $status -eq 1 ]] || fail "a missing checkpoint exited $status"
echo "fastdiss-export: float16, source_units and bad input all behave"
