#!/usr/bin/env bash
# Builds docker/Dockerfile with podman and checks the image by running its server.
#
#   docker/check-image.sh
#
# Where the image registry is unreachable, the Debian 12 base image is made here with debootstrap
# (from Debian's own archive) and imported into podman as localhost/debian-base:bookworm; the
# build uses it for both stages. `podman run` fails on setrlimit in this sandbox, so the check
# mounts the built image's filesystem and runs /usr/local/bin/fastdiss-server from it under
# chroot, with the image's own config, user-independent paths and bundled model; then calls
# the health service and Generate through fastdiss-client (also from the image).
# Needs root, podman, debootstrap (apt-get install podman debootstrap fuse-overlayfs).
# Environment: IMAGE (fastdiss-server:check), BASE_DIR (build/debian-base), MIRROR (default: the
# archive this machine's own apt configuration uses for bookworm, from `apt-get indextargets`).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/fastdiss-server:check}
BASE_DIR=${BASE_DIR:-build/debian-base}
if [[ -z "${MIRROR:-}" ]]; then
  MIRROR=$(apt-get indextargets --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
             awk '$2 == "bookworm" { print $1; exit }')
  [[ -n "$MIRROR" ]] || { echo "check-image: apt has no bookworm archive configured; set MIRROR" >&2; exit 1; }
fi
BASE=localhost/debian-base:bookworm
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { echo "check-image: $tool is missing (apt-get install podman debootstrap)" >&2; exit 1; }
done
for model in g2p de-en; do
  [[ -d models/$model ]] || { echo "check-image: the bundled models/$model is missing" >&2; exit 1; }
done

if ! podman image exists "$BASE"; then
  echo "check-image: making the Debian 12 base with debootstrap"
  rm -rf "$BASE_DIR"
  debootstrap --variant=minbase bookworm "$BASE_DIR" "$MIRROR" >/dev/null
  tar -C "$BASE_DIR" -c . | podman import - "$BASE"
  rm -rf "$BASE_DIR"
fi

echo "check-image: building $IMAGE"
start=$(date +%s)
podman build --isolation chroot -f docker/Dockerfile --build-arg BASE="$BASE" --build-arg RUNTIME_BASE="$BASE" \
  -t "$IMAGE" .
echo "check-image: built in $(( $(date +%s) - start )) s; size $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"

container=$(podman create "$IMAGE")
root=$(podman mount "$container")
server_pid=
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  umount "$root/proc" 2>/dev/null || true
  podman unmount "$container" >/dev/null 2>&1 || true
  podman rm "$container" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The image's user, entry point and config, as `podman run` would use them.
user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
mapfile -t entry < <(podman image inspect "$IMAGE" --format '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
echo "check-image: entry point ${entry[*]} as user $user"
mount -t proc proc "$root/proc"
log=$(mktemp)
chroot --userspec="$user" "$root" "${entry[@]}" --port 8599 --metrics-port 9599 --set server.host=127.0.0.1 \
  >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  grep -q "ready, health SERVING" "$log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
cat "$log"
grep -q "ready, health SERVING" "$log" || { echo "check-image: the server did not become ready" >&2; exit 1; }

client=(chroot --userspec="$user" "$root" /usr/local/bin/fastdiss-client --target 127.0.0.1:8599)
health=$("${client[@]}" --health)
echo "check-image: health: $health"
[[ "$health" == SERVING ]]
answer=$("${client[@]}" --model de-en --steps 5 --seed 1 --json "Ein Mann fährt Fahrrad.")
echo "check-image: Generate: $answer"
[[ "$answer" == *'"model":"de-en"'* ]]
metrics=$(curl -s http://127.0.0.1:9599/metrics | grep -c '^fastdiss_request_duration_seconds_count{model="de-en"} 1$' || true)
[[ "$metrics" == 1 ]] || { echo "check-image: the metrics endpoint did not count the request" >&2; exit 1; }
kill -TERM "$server_pid"
wait "$server_pid"
echo "check-image: SIGTERM: exit $?; $(tail -1 "$log")"
server_pid=
echo "check-image: OK"
