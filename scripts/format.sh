#!/usr/bin/env bash
# Formats the C++ sources git tracks with clang-format (.clang-format: Google style, 100 columns).
#
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; list the files that differ and exit 1 if any do
#
# Needs clang-format (Debian's clang-format, from scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is missing (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- '*.cc' '*.h')
if [[ "${1:-}" == --check ]]; then
  unformatted=()
  for file in "${files[@]}"; do
    clang-format "$file" | cmp -s - "$file" || unformatted+=("$file")
  done
  if ((${#unformatted[@]})); then
    printf 'format: not clang-formatted (run scripts/format.sh): %s\n' "${unformatted[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files clang-formatted"
else
  clang-format -i "${files[@]}"
fi
