#!/usr/bin/env bash
# Fetches the project's real tasks from Debian packages and writes them under DATA_DIR:
#   de-en/{train,dev,test,phrases}.{de,en}  German->English (trans-de-en, the Ding dictionary)
#   g2p/{train,dev,test}.{src,tgt}          spelling->phonemes (festlex-cmu, the CMU dictionary)
#   es-en/{train,dev,test}.{es,en}          Spanish->English Bible verses (sword-text-sparv, -web)
# See scripts/prepare_data.py for what is kept and how it is split.
#
# Usage: scripts/prepare-data.sh [--force] [DATA_DIR]
#   DATA_DIR defaults to $DATA_DIR, else data/ at the repository root (git-ignored).
#   Nothing is downloaded when every task is already complete; --force rebuilds them.
# Needs apt-get, dpkg-deb, python3 (standard library only) and SWORD's mod2imp (libsword-utils).
# The split is deterministic.
set -euo pipefail

readonly PACKAGES=(trans-de-en festlex-cmu sword-text-sparv sword-text-web)
readonly TRANS_FILE=usr/share/trans/de-en
readonly CMUDICT_FILE=usr/share/festival/dicts/cmu/cmudict-0.4.out
readonly SWORD_DIR=usr/share/sword
readonly BIBLE_ES=spaRV1909eb BIBLE_EN=engWEB2015eb

die() {
  echo "prepare-data: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

force=0
data_dir="${DATA_DIR:-}"
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) data_dir="$1" ;;
  esac
  shift
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="${data_dir:-$repo_root/data}"
prepare_py="$repo_root/scripts/prepare_data.py"

for tool in python3 apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

if ((force == 0)) && python3 "$prepare_py" --check --out "$data_dir"; then
  echo "prepare-data: $data_dir is complete; nothing to do (--force rebuilds it)"
  exit 0
fi

command -v mod2imp >/dev/null ||
  die "mod2imp not found: the es-en Bibles need SWORD's exporter (scripts/install-deps.sh installs libsword-utils)"

work="$(mktemp -d "${TMPDIR:-/tmp}/fastdiss-data.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# apt-get download drops root privileges to _apt, which must be able to write the folder.
if [[ "$(id -u)" == 0 ]] && id _apt >/dev/null 2>&1; then
  chown _apt "$work"
fi

download() {
  (cd "$work" && apt-get download "${PACKAGES[@]}") >"$work/download.log" 2>&1
}

echo "prepare-data: downloading ${PACKAGES[*]}"
if ! download; then
  echo "prepare-data: apt-get download failed; running apt-get update and trying again" >&2
  if ! apt-get update >"$work/update.log" 2>&1; then
    cat "$work/update.log" >&2
    die "apt-get update failed (it needs root and access to a Debian mirror)"
  fi
  if ! download; then
    cat "$work/download.log" >&2
    die "apt-get download ${PACKAGES[*]} failed; are they in this system's apt sources?"
  fi
fi

sources=()
for package in "${PACKAGES[@]}"; do
  debs=("$work/${package}"_*.deb)
  [[ -f "${debs[0]}" ]] || die "apt-get download left no ${package}_*.deb in $work"
  dpkg-deb -x "${debs[0]}" "$work/root"
  sources+=("$package $(dpkg-deb -f "${debs[0]}" Version) (Debian)")
done
[[ -f "$work/root/$TRANS_FILE" ]] || die "trans-de-en has no $TRANS_FILE"
[[ -f "$work/root/$CMUDICT_FILE" ]] || die "festlex-cmu has no $CMUDICT_FILE"
# The Bibles are read through SWORD's own exporter, from the unpacked modules only.
for module in "$BIBLE_ES" "$BIBLE_EN"; do
  SWORD_PATH="$work/root/$SWORD_DIR" mod2imp "$module" >"$work/$module.imp" 2>"$work/$module.log" ||
    { cat "$work/$module.log" >&2; die "mod2imp $module failed"; }
  [[ -s "$work/$module.imp" ]] || die "mod2imp $module wrote nothing (module not in the packages?)"
done

args=(--out "$data_dir"
      --trans "$work/root/$TRANS_FILE" --trans-source "${sources[0]}"
      --cmudict "$work/root/$CMUDICT_FILE" --cmudict-source "${sources[1]}"
      --bible-es "$work/$BIBLE_ES.imp" --bible-en "$work/$BIBLE_EN.imp"
      --bible-source "${sources[2]}, ${sources[3]}")
((force)) && args+=(--force)
python3 "$prepare_py" "${args[@]}"

echo "prepare-data: done; files in $data_dir:"
wc -l "$data_dir"/de-en/*.{de,en} "$data_dir"/g2p/*.{src,tgt} "$data_dir"/es-en/*.{es,en}
