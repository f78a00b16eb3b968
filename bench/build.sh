#!/usr/bin/env bash
# Build benchmark: the same workloads through tsbuild, Docker's classic builder and buildah, in one run.
# Prints, per workload and scenario, the median seconds of each tool and the tsbuild/peer ratios:
#   cold     build with an empty cache (tsbuild: a fresh store holding only the base image)
#   nochange rebuild with nothing changed
#   late     rebuild after the content of one late-copied file (late.txt) changed
#   save     save the image to a tar (docker save / buildah push docker-archive: / tsbuild save)
#
# usage: bench/build.sh [--runs N] [--only w1,w2] [--skip-peers]
#   workloads: small files20k bigrun stages instr60 debian
# needs: docker.io (dockerd is started), buildah, debootstrap (for the debian workload); run as root.
# Materials are kept in $BENCH_DIR (default /var/tmp/tsb-bench) between runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=3
only=small,files20k,bigrun,stages,instr60,debian
peers=1
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --skip-peers) peers=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/tsb-bench}
mkdir -p "$W"
export DOCKER_BUILDKIT=0
DOCKER=/usr/bin/docker
# the bin as the installed `tsbuild` command runs it: its launcher line (`node FILE` would skip it)
TSB="$repo/packages/cli/bin/tsbuild.cjs"

log() { echo "# $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ratio() { if [ "$2" = - ] || [ "$1" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; fi; }

# ---------- materials ----------
if [ ! -f "$W/busybox.tar" ]; then
  d=$(mktemp -d); bash "$repo/scripts/make-busybox-rootfs.sh" "$d"
  tar -C "$d" --numeric-owner -cf "$W/busybox.tar" .; rm -rf "$d"
fi
if [[ ,$only, == *,debian,* ]] && [ ! -f "$W/debian.tar" ]; then
  log "debootstrap --variant=minbase bookworm (once)"
  [ -d "$W/debian" ] || debootstrap --variant=minbase bookworm "$W/debian" http://deb.debian.org/debian >/dev/null
  tar -C "$W/debian" --numeric-owner -cf "$W/debian.tar" .
fi
make_context() { # name
  local name=$1 ctx=$W/ctx/$1
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$here/workloads/$name/Dockerfile" "$ctx/"
  echo "late v0" > "$ctx/late.txt"
  case $name in
    small) head -c 4096 /dev/urandom | base64 > "$ctx/config.txt" ;;
    files20k) make_files20k "$ctx" ;;
  esac
}
import_bases() {
  $DOCKER image inspect busybox:latest >/dev/null 2>&1 || $DOCKER import "$W/busybox.tar" busybox:latest >/dev/null
  if [[ ,$only, == *,debian,* ]]; then
    $DOCKER image inspect debian-minbase:latest >/dev/null 2>&1 || $DOCKER import "$W/debian.tar" debian-minbase:latest >/dev/null
  fi
  if [ $peers = 1 ]; then
    buildah inspect docker.io/library/busybox:latest >/dev/null 2>&1 || buildah pull -q docker-daemon:busybox:latest >/dev/null
    if [[ ,$only, == *,debian,* ]]; then
      buildah inspect localhost/debian-minbase:latest >/dev/null 2>&1 || buildah pull -q docker-daemon:debian-minbase:latest >/dev/null
    fi
  fi
}
fresh_tsb_root() { # dir
  rm -rf "$1"; mkdir -p "$1"
  $TSB --root "$1" import "$W/busybox.tar" busybox:latest >/dev/null
  if [[ ,$only, == *,debian,* ]]; then $TSB --root "$1" import "$W/debian.tar" debian-minbase:latest >/dev/null; fi
}

# build commands, per tool
tsb_build() { $TSB --root "$W/tsb-root" build -q -t "bench-$1" "$W/ctx/$1"; }
# host network like tsbuild's default (the test dockerd runs with --bridge=none)
docker_build() { $DOCKER build --network host -q -t "bench-$1" "$W/ctx/$1"; }
buildah_build() { buildah build --layers --isolation chroot -q -t "bench-$1" "$W/ctx/$1"; }
tsb_cold_prep() { fresh_tsb_root "$W/tsb-root"; }
docker_cold_prep() { $DOCKER rmi -f "bench-$1" >/dev/null 2>&1 || true; $DOCKER builder prune -af >/dev/null 2>&1 || true; $DOCKER image prune -f >/dev/null 2>&1 || true; }
buildah_cold_prep() { buildah rmi -f "bench-$1" >/dev/null 2>&1 || true; buildah rmi --prune >/dev/null 2>&1 || true; }
tsb_save() { $TSB --root "$W/tsb-root" save -o "$W/out-tsb.tar" "bench-$1"; }
docker_save() { $DOCKER save -o "$W/out-docker.tar" "bench-$1"; }
buildah_save() { rm -f "$W/out-buildah.tar"; buildah push -q "bench-$1" "docker-archive:$W/out-buildah.tar:bench-$1:latest"; }

tools=(tsb)
[ $peers = 1 ] && tools+=(docker buildah)
$DOCKER info >/dev/null 2>&1 || bash "$repo/scripts/start-dockerd.sh"
import_bases
fresh_tsb_root "$W/tsb-root"

printf '%-9s %-9s %9s %9s %9s %10s %11s\n' workload scenario tsbuild docker buildah ts/docker ts/buildah
IFS=, read -ra wls <<<"$only"
for wl in "${wls[@]}"; do
  make_context "$wl"
  declare -A res=()
  for tool in "${tools[@]}"; do
    cold=(); nochange=(); late=(); save=()
    n=$runs
    for i in $(seq 1 "$n"); do
      echo "late v0" > "$W/ctx/$wl/late.txt"
      "${tool}_cold_prep" "$wl"
      cold+=("$(timed "${tool}_build" "$wl")")
      nochange+=("$(timed "${tool}_build" "$wl")")
      echo "late v$i $RANDOM" > "$W/ctx/$wl/late.txt"
      late+=("$(timed "${tool}_build" "$wl")")
      save+=("$(timed "${tool}_save" "$wl")")
    done
    res[$tool,cold]=$(printf '%s\n' "${cold[@]}" | median)
    res[$tool,nochange]=$(printf '%s\n' "${nochange[@]}" | median)
    res[$tool,late]=$(printf '%s\n' "${late[@]}" | median)
    res[$tool,save]=$(printf '%s\n' "${save[@]}" | median)
  done
  for sc in cold nochange late save; do
    t=${res[tsb,$sc]}; d=${res[docker,$sc]:--}; b=${res[buildah,$sc]:--}
    printf '%-9s %-9s %9s %9s %9s %10s %11s\n' "$wl" "$sc" "$t" "$d" "$b" "$(ratio "$t" "$d")" "$(ratio "$t" "$b")"
  done
  unset res
done
