#!/usr/bin/env bash
# Installs every Debian 12 package fastdiss needs to build, test, train and serve.
# Idempotent: apt-get skips what is already installed. Runs as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # scripts/format.sh --check (in .ci/run): the sources are clang-formatted (.clang-format).
  clang-format
  # LibTorch (CPU) and a real BLAS: without libopenblas0-pthread LibTorch falls back to the
  # reference BLAS, measured 30x slower on a 1024x1024 float matmul.
  libtorch-dev libopenblas0-pthread
  # torch.distributed's Gloo backend for data-parallel training on CPU.
  libgloo-dev
  # base/: Abseil's Status, yaml-cpp for config files, JSON, xxHash for checkpoint manifests.
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libxxhash-dev
  # Serving: gRPC, protobuf, metrics, HTTP for the metrics endpoint.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libcpp-httplib-dev
  # Allocator: glibc returns large tensors to the kernel on every free (measured 3-5x slower).
  libjemalloc-dev
  # Tests; the TLS tests make their certificates with openssl.
  libgtest-dev libgmock-dev openssl
  # The tokenizer is trained by the real spm_train program; its library is never linked.
  sentencepiece
  # Data preparation fetches Debian packages of real text and parses them with Python's stdlib;
  # tests/check_manifests.py reads the deployment YAML with python3-yaml.
  dpkg-dev python3 python3-yaml
  # The es-en task's two Bibles are SWORD modules; mod2imp exports them as text.
  libsword-utils
  # The Python client example (clients/python) and its test: gRPC and protobuf for Python.
  python3-grpcio python3-protobuf
  # scripts/check-prometheus.sh scrapes a running server with the real Prometheus.
  prometheus
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
