#!/usr/bin/env bash
# Configures and builds fastdiss into ./build (incremental; Ninja when present).
# Extra arguments go to CMake, e.g. scripts/build.sh -DFASTDISS_BUILD_TESTS=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f build/Makefile ]; then generator=(-G Ninja); fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
# LibTorch translation units need about 1 GiB of memory each; one job per core.
cmake --build build --parallel "$(nproc)"
