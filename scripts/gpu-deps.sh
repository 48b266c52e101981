#!/usr/bin/env bash
# Fetches the Debian 12 packages that the server, the clients and the tests need beyond LibTorch,
# and unpacks them into one folder (default .gpu-deps/, git-ignored) that travels with the working
# tree to a machine that has only PyTorch's CUDA LibTorch (the GPU machine), where nothing can be
# installed. Build there with
#
#   cmake -S . -B build-cuda -DFASTDISS_DEPS_ROOT=$PWD/.gpu-deps -DCMAKE_PREFIX_PATH=<torch's> ...
#
# CMakeLists.txt then finds headers, libraries, pkg-config files, protoc and the gRPC plugin in the
# folder and gives every binary an RPATH to its libraries (docs/deploy.md, "The GPU build").
#
# Usage: scripts/gpu-deps.sh [DIR]     (run on Debian 12; needs apt-get and dpkg-deb, not root)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu-deps}
readonly ARCH_LIB=usr/lib/x86_64-linux-gnu

# -dev packages with their runtime libraries, the code generators, and pkgconf to read the .pc files.
packages=(
  libgrpc++-dev libgrpc-dev libgrpc++1.51 libgrpc29 protobuf-compiler-grpc
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler
  libabsl-dev libabsl20220623 libc-ares2 libc-ares-dev libre2-9 libre2-dev
  libssl3 libssl-dev zlib1g zlib1g-dev libbrotli1 libbrotli-dev
  prometheus-cpp-dev libprometheus-cpp-core1.0 libcpp-httplib-dev libcpp-httplib0.11
  libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libxxhash-dev libxxhash0 libgtest-dev libgmock-dev
  pkgconf pkgconf-bin libpkgconf3
)

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download drops root privileges to _apt, which must be able to write the folder.
if [[ "$(id -u)" == 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
if ! (cd "$work" && apt-get download "${packages[@]}") >"$work/download.log" 2>&1; then
  cat "$work/download.log" >&2
  echo "gpu-deps: apt-get download failed (run 'apt-get update' first?)" >&2
  exit 1
fi

rm -rf "$dir"
mkdir -p "$dir/root" "$dir/bin"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
dpkg-deb -f "$work"/libgrpc29_*.deb Version >"$dir/grpc-version"
(cd "$work" && for deb in *.deb; do echo "$deb"; done) >"$dir/packages.txt"

# Keep what a build links and runs: no documentation, no other languages' plugins, no static
# libraries (shared ones are linked) except GoogleTest's, which Debian ships only as archives.
root=$dir/root
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/src" "$root/usr/share/lintian"
rm -f "$root"/usr/bin/grpc_{php,python,ruby}_plugin "$root/$ARCH_LIB"/*_unsecure*
find "$root" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
# Debian 12 still puts a few libraries (zlib) under /lib; one library folder is simpler.
if [[ -d "$root/lib/x86_64-linux-gnu" ]]; then
  cp -a "$root/lib/x86_64-linux-gnu/." "$root/$ARCH_LIB/" && rm -rf "$root/lib"
fi
# Symbolic links to absolute paths (libz.so -> /lib/...) would point outside the folder.
while IFS= read -r link; do
  target=$(readlink "$link")
  ln -sfn "$(basename "$target")" "$link"
  [[ -e "$link" ]] || { echo "gpu-deps: $link -> $target has no copy in the folder" >&2; exit 1; }
done < <(find "$root" -type l -lname '/*')

# Programs that run during the build find their libraries through these wrappers.
for tool in protoc grpc_cpp_plugin pkgconf; do
  cat >"$dir/bin/$tool" <<EOF
#!/bin/sh
# Runs Debian's $tool from this folder with its own libraries (scripts/gpu-deps.sh).
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$here/root/$ARCH_LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/root/usr/bin/$tool" "\$@"
EOF
  chmod +x "$dir/bin/$tool"
done
cat >"$dir/bin/pkg-config" <<EOF
#!/bin/sh
# pkg-config over this folder's .pc files only, with their paths moved under the folder.
here=\$(cd "\$(dirname "\$0")/.." && pwd)
PKG_CONFIG_SYSROOT_DIR="\$here/root" PKG_CONFIG_LIBDIR="\$here/root/$ARCH_LIB/pkgconfig:\$here/root/usr/share/pkgconfig" \\
  exec "\$here/bin/pkgconf" "\$@"
EOF
chmod +x "$dir/bin/pkg-config"

"$dir/bin/protoc" --version >/dev/null
"$dir/bin/pkg-config" --exists grpc++ prometheus-cpp-core cpp-httplib yaml-cpp libxxhash
echo "gpu-deps: ${#packages[@]} packages in $dir: $(du -sh --apparent-size "$dir" | cut -f1) ($(du -sb "$dir" | cut -f1) bytes)"
