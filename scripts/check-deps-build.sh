#!/bin/bash
# Builds and tests the project against the dependency folder of scripts/gpu-deps.sh with the
# system's own copies of those libraries hidden, as the GPU machine lacks them: every header
# folder, CMake package, pkg-config file, -dev link and tool that the folder carries is covered,
# in a private mount namespace, by an empty one. A build that still reaches for a system copy
# fails here instead of on the GPU machine. LibTorch, the compiler and the C library stay the
# system's (the GPU machine brings its own LibTorch).
#
#   sudo scripts/check-deps-build.sh [BUILD_DIR [CTEST_ARGS...]]
#
# BUILD_DIR defaults to build-deps (git-ignored); DEPS to .gpu-deps. CTEST_ARGS go to ctest
# (default: -E soak). Needs root for the mount namespace. Prints what it hid, then builds every
# target and runs the tests inside the same namespace, so the binaries load their libraries from
# the folder (by rpath), not from the system.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=$(realpath "${DEPS:-.gpu-deps}")
BUILD=${1:-build-deps}
[ $# -gt 0 ] && shift
CTEST_ARGS=("$@")
[ ${#CTEST_ARGS[@]} -eq 0 ] && CTEST_ARGS=(-E soak)

if [ ! -f "$DEPS/root/usr/lib/x86_64-linux-gnu/pkgconfig/grpc++.pc" ]; then
  echo "check-deps-build: $DEPS is not a folder made by scripts/gpu-deps.sh" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "check-deps-build: needs root (it hides system files in a private mount namespace)" >&2
  exit 2
fi
if [ -z "${FASTDISS_DEPS_NAMESPACE:-}" ]; then
  exec unshare --mount env FASTDISS_DEPS_NAMESPACE=1 "$0" "$BUILD" "${CTEST_ARGS[@]}"
fi

mount --make-rprivate /
cover=$(mktemp -d)
mkdir "$cover/dir"
: >"$cover/file"
printf '#!/bin/sh\necho "hidden by check-deps-build.sh: $0" >&2\nexit 1\n' >"$cover/tool"
chmod +x "$cover/tool"

hidden=0 links=0
hide() {  # covers one system path, if it exists, with an empty folder, file or failing tool
  local path=$1 with
  # A bind mount lands on a link's target: for libz.so that is the runtime libz.so.1 that every
  # program loads. Links (the -dev .so names) stay; without the headers, CMake packages and
  # pkg-config files beside them nothing finds them.
  if [ -L "$path" ]; then
    links=$((links + 1))
    return 0
  elif [ -d "$path" ]; then
    with=$cover/dir
  elif [ -x "$path" ] && [[ $path == */bin/* ]]; then
    with=$cover/tool
  elif [ -e "$path" ]; then
    with=$cover/file
  else
    return 0
  fi
  mount --bind "$with" "$path"
  hidden=$((hidden + 1))
}

usr=$DEPS/root/usr
lib=lib/x86_64-linux-gnu
for entry in "$usr"/include/*; do
  name=${entry##*/}
  # The architecture folder holds the C library's headers too: hide only what the folder carries.
  [ "$name" = x86_64-linux-gnu ] && continue
  hide "/usr/include/$name"
done
for entry in "$usr"/include/x86_64-linux-gnu/*; do hide "/usr/include/x86_64-linux-gnu/${entry##*/}"; done
for entry in "$usr/$lib"/cmake/* "$usr"/share/cmake/*; do
  hide "/usr/$lib/cmake/${entry##*/}"
  hide "/usr/share/cmake/${entry##*/}"
done
for entry in "$usr/$lib"/pkgconfig/*.pc "$usr"/share/pkgconfig/*.pc; do
  hide "/usr/$lib/pkgconfig/${entry##*/}"
  hide "/usr/share/pkgconfig/${entry##*/}"
done
for entry in "$usr/$lib"/*.so "$usr/$lib"/*.a; do hide "/usr/$lib/${entry##*/}"; done
for tool in protoc grpc_cpp_plugin; do hide "/usr/bin/$tool"; done
echo "check-deps-build: hid $hidden system paths that $DEPS also carries ($links links left)"

start=$(date +%s)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTDISS_DEPS_ROOT="$DEPS" >/dev/null
ninja -C "$BUILD"
echo "check-deps-build: built in $(($(date +%s) - start)) s"
# The binaries must take the carried libraries, not the system's runtime copies.
deps_lib=$DEPS/root/usr/$lib
loads() {  # BINARY LIBRARY: fails unless BINARY loads LIBRARY* from the folder
  if [[ $(ldd "$BUILD/$1") != *"$deps_lib/$2"* ]]; then
    echo "check-deps-build: $1 does not load $2 from $deps_lib" >&2
    exit 1
  fi
}
loads server/fastdiss-server libgrpc++.so
loads server/fastdiss-server libprotobuf.so
loads trainer/fastdiss-train libabsl_
(cd "$BUILD" && ctest --output-on-failure -j2 "${CTEST_ARGS[@]}")
