#!/usr/bin/env bash
# Start-up benchmark: median wall time of cold-started tsbuild commands that do little work
# (no-change rebuilds, save of a small image, images), beside `node -e 0` as the floor.
# usage: bench/startup.sh [--runs N] [--entry FILE]   (default: the bin, packages/cli/bin/tsbuild.cjs;
#   --entry packages/cli/dist/src/main.js for the unbundled modules)
# Materials: $BENCH_DIR/startup/ (a store with busybox:latest and the small and instr60 images).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=10
entry=$repo/packages/cli/bin/tsbuild.cjs
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --entry) entry=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/tsb-bench}
S=${STARTUP_DIR:-$W/startup}
# shellcheck source=lib.sh
. "$here/lib.sh"
# the bin runs as a program, as the installed `tsbuild` does (its launcher line); other entries by node
if [ -x "$entry" ] && [ "$(head -c 9 "$entry")" = '#!/bin/sh' ]; then TSB=("$entry" --root "$S/root"); else TSB=(node "$entry" --root "$S/root"); fi
mkdir -p "$S"
if [ ! -f "$W/busybox.tar" ]; then
  d=$(mktemp -d); bash "$repo/scripts/make-busybox-rootfs.sh" "$d"
  tar -C "$d" --numeric-owner -cf "$W/busybox.tar" .; rm -rf "$d"
fi
for wl in small instr60; do
  if [ ! -f "$S/ctx/$wl/Dockerfile" ]; then
    mkdir -p "$S/ctx/$wl"; cp "$here/workloads/$wl/Dockerfile" "$S/ctx/$wl/"
    echo "late v0" > "$S/ctx/$wl/late.txt"
    [ $wl = small ] && head -c 4096 /dev/urandom | base64 > "$S/ctx/$wl/config.txt"
  fi
done
if [ ! -f "$S/root/index.json" ]; then
  "${TSB[@]}" import "$W/busybox.tar" busybox:latest >/dev/null
fi
"${TSB[@]}" build -q -t st-small "$S/ctx/small" >/dev/null
"${TSB[@]}" build -q -t st-instr60 "$S/ctx/instr60" >/dev/null
# one run: "wall cpu" seconds (cpu = user + sys, less disturbed by other load on the machine)
once() {
  local t
  t=$(mktemp)
  /usr/bin/time -o "$t" -f '%e %U %S' "$@" >/dev/null 2>&1 || { echo "command failed: $*" >&2; rm -f "$t"; return 1; }
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$t"; rm -f "$t"
}
run() { # label cmd...
  local label=$1; shift
  local res
  res=$(for _ in $(seq "$runs"); do once "$@"; done)
  printf '%-18s wall %s  cpu %s\n' "$label" "$(echo "$res" | cut -d' ' -f1 | median)" "$(echo "$res" | cut -d' ' -f2 | median)"
}
echo "# load: $(cat /proc/loadavg)"
run 'node -e 0' node -e 0
run 'node -e 0 (no CA env)' env -u NODE_EXTRA_CA_CERTS node -e 0
run 'small nochange' "${TSB[@]}" build -q -t st-small "$S/ctx/small"
run 'instr60 nochange' "${TSB[@]}" build -q -t st-instr60 "$S/ctx/instr60"
run 'save small' "${TSB[@]}" save -o "$S/out.tar" st-small
run 'images' "${TSB[@]}" images
echo "# load: $(cat /proc/loadavg)"
