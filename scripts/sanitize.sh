#!/usr/bin/env bash
# Builds fastdiss with sanitizers and runs the unit and server integration tests under them.
#
#   scripts/sanitize.sh [address|thread|all] [ctest arguments...]
#
# address: -fsanitize=address,undefined into build-asan/ (LeakSanitizer on, any UBSan report
#          fails the test). thread: -fsanitize=thread into build-tsan/. all (default): both.
# Debian's LibTorch, gRPC and Abseil are not instrumented. What is reported inside them, and only
# that, is suppressed by scripts/sanitizers/*.supp, each entry with its reason. Extra arguments go
# to ctest (e.g. -R engine). JOBS sets the build's parallelism (default: nproc); TARGETS (space-
# separated) builds only those targets instead of everything, e.g. with -R to run their tests.
#
# ThreadSanitizer must see every lock: our server's locks are absl::Mutex, and Debian's Abseil is
# not instrumented, so TSan would take every lock for none and report races that cannot happen.
# The thread pass therefore fetches Debian's own Abseil source (apt-get source, the installed
# version, through a private deb-src list that leaves the system's apt config alone), builds its
# shared libraries with -fsanitize=thread into build-tsan-deps/, and runs the tests with those
# first on LD_LIBRARY_PATH: same version, same sonames, same inline namespace, so gRPC's Abseil is
# the instrumented one too. LibTorch's OpenMP pool (libgomp, not instrumented) is held to one
# thread (OMP_NUM_THREADS=1) in that pass, for the same reason.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-all}
shift || true
jobs=${JOBS:-$(nproc)}

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

# The same environment at build time (gtest discovery runs the test binaries) and at test time
# (the integration tests start fastdiss-server and fastdiss-train, which inherit it).
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$root/scripts/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$root/scripts/sanitizers/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/sanitizers/tsan.supp"

run() {  # NAME FLAGS
  local name=$1 flags=$2 dir=build-$1
  shift 2
  echo "== $name: building $dir ($flags)"
  local start=$SECONDS
  # -O1 keeps the build and the tests fast enough; frame pointers give whole stacks.
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer $flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
  local targets=()
  read -r -a targets <<<"${TARGETS:-}"
  cmake --build "$dir" --parallel "$jobs" ${targets[@]:+--target "${targets[@]}"}
  local built=$SECONDS
  echo "== $name: built in $((built - start)) s; testing"
  # The soak case has its own script and runs for a minute; the rest is every unit and
  # integration test.
  # Every process's reports (the servers the integration tests start too) go to files here.
  local reports=$root/$dir/sanitizer-reports
  rm -rf "$reports" && mkdir -p "$reports"
  local rc=0
  ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/asan" UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
    TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$reports/tsan" \
    ctest --test-dir "$dir" --output-on-failure --timeout 1200 -LE soak "$@" || rc=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "== $name: sanitizer reports ($reports):"
    cat "$reports"/*
    rc=1
  fi
  [[ $rc -eq 0 ]] || { echo "== $name: FAILED after $((SECONDS - built)) s of tests"; return 1; }
  echo "== $name: tests passed in $((SECONDS - built)) s (build + tests $((SECONDS - start)) s), no sanitizer report"
}

# Debian's Abseil, built with -fsanitize=thread; sets TSAN_ABSL_LIBS to the folder of its .so files.
build_tsan_abseil() {
  local deps=$root/build-tsan-deps version
  version=$(dpkg-query -W -f='${Version}' libabsl-dev)
  TSAN_ABSL_LIBS=$deps/lib
  if [[ -f $deps/lib/.version && $(cat "$deps/lib/.version") == "$version" ]]; then return; fi
  echo "== tsan: building Debian's Abseil $version with -fsanitize=thread"
  rm -rf "$deps" && mkdir -p "$deps/apt/lists/partial" "$deps/apt/sources.d" "$deps/lib"
  # The system's Debian sources, as deb-src, in a private list.
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$deps/apt/sources.d/src.sources"
  local apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$deps/apt/sources.d"
                  -o "Dir::State::Lists=$deps/apt/lists" -o "Dir::Cache=$deps/apt/cache" -qq)
  apt-get "${apt_opts[@]}" update
  (cd "$deps" && apt-get "${apt_opts[@]}" source --download-only "abseil=$version" &&
     dpkg-source -x abseil_*.dsc src >/dev/null)
  # As debian/rules configures it (C++17, shared). All of it: besides the locks, absl::Status
  # and Cord count references with atomics that TSan must see when a Status crosses threads.
  cmake -S "$deps/src" -B "$deps/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 \
    -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_FLAGS="-O1 -g -fsanitize=thread" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" >/dev/null
  cmake --build "$deps/build" --parallel "$jobs"
  find "$deps/build" -name 'libabsl_*.so*' -exec cp -P {} "$deps/lib/" \;
  echo "$version" >"$deps/lib/.version"
}

run_tsan() {
  build_tsan_abseil
  (
    export LD_LIBRARY_PATH="$TSAN_ABSL_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=1
    run tsan "-fsanitize=thread" "$@"
  )
}

case $mode in
  address) run asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined" "$@" ;;
  thread) run_tsan "$@" ;;
  all)
    run asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined" "$@"
    run_tsan "$@"
    ;;
  *) echo "usage: $0 [address|thread|all] [ctest arguments...]" >&2; exit 2 ;;
esac
