#!/usr/bin/env bash
# Benchmarks the store's archive paths (import, save, load, export) against docker, skopeo and
# tar|gzip on the same data, and prints a table: seconds, MB/s (of the uncompressed data) and peak
# RSS of the measured process, with our time as a ratio of the reference's. One run each.
#
# usage: bench/store.sh [--small]
#   default: a ~1 GB image (half compressible text, half random) and a 20,000-small-file image
#   --small: 100 MB and 2,000 files (about a minute)
# Needs: node, built packages (npx tsc -b), /usr/bin/time (Debian 'time'), skopeo, docker (optional).
# Docker figures time the client; the work happens in dockerd (its RSS is not counted).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIG_MB=1024; FILES=20000
[ "${1:-}" = --small ] && { BIG_MB=100; FILES=2000; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing: apt-get install time" >&2; exit 1; }
# the bin as the installed `tsbuild` command runs it: its launcher line (`node FILE` would skip it)
TSB="$REPO/packages/cli/bin/tsbuild.cjs"
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0
W=$(mktemp -d /var/tmp/tsbuild-bench.XXXXXX)
TAG=tsbuild-bench-$$
cleanup() {
  if [ -n "${HAVE_DOCKER:-}" ]; then
    $DOCKER rm -f "$TAG-c-big" "$TAG-c-small" >/dev/null 2>&1 || true
    $DOCKER rmi -f "$TAG:big" "$TAG:small" >/dev/null 2>&1 || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT
HAVE_DOCKER=
if bash scripts/start-dockerd.sh; then HAVE_DOCKER=1; else echo "bench: dockerd unavailable; docker columns skipped" >&2; fi

# ---- data ----
# shellcheck source=lib.sh
. "$REPO/bench/lib.sh"
echo "bench: making data in $W ..." >&2
make_big_tree "$W/big" "$BIG_MB"; make_small_tree "$W/small" "$FILES"
for k in big small; do tar -C "$W/$k" -cf "$W/$k.tar" .; done
declare -A MB
for k in big small; do MB[$k]=$(( $(stat -c %s "$W/$k.tar") / 1000000 )); done

# ---- measuring ----
# measure NAME CMD... : runs CMD under /usr/bin/time -v; records seconds and peak RSS (MB).
declare -A SEC RSS
measure() {
  local name=$1; shift
  sync
  /usr/bin/time -v -o "$W/time.txt" "$@" >"$W/out.txt" 2>"$W/err.txt" || { echo "bench: $name failed:" >&2; cat "$W/err.txt" >&2; return 1; }
  SEC[$name]=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$W/time.txt")
  RSS[$name]=$(awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$W/time.txt")
  echo "bench: $name ${SEC[$name]}s ${RSS[$name]}MB" >&2
}

for k in big small; do
  R="$W/root-$k"; R2="$W/root2-$k"
  measure "ours:import:$k" $TSB --root "$R" import "$W/$k.tar" "$TAG:$k"
  measure "ours:save:$k" $TSB --root "$R" save -o "$W/ours-$k.tar" "$TAG:$k"
  measure "ours:load:$k" $TSB --root "$R2" load -i "$W/ours-$k.tar"
  measure "ours:export:$k" $TSB --root "$R" export -o "$W/ours-exp-$k.tar" "$TAG:$k"
  measure "tar|gzip:import:$k" bash -c "tar -C '$W/$k' -c . | gzip -6 > '$W/tgz-$k.tar.gz'"
  measure "skopeo:save:$k" skopeo copy -q "oci:$R:docker.io/library/$TAG:$k" "docker-archive:$W/sk-$k.tar:$TAG:$k"
  measure "skopeo:load:$k" skopeo copy -q "docker-archive:$W/sk-$k.tar" "oci:$W/sk-oci-$k:x"
  if [ -n "$HAVE_DOCKER" ]; then
    measure "docker:import:$k" $DOCKER import "$W/$k.tar" "$TAG:$k"
    measure "docker:save:$k" $DOCKER save -o "$W/d-$k.tar" "$TAG:$k"
    $DOCKER rmi -f "$TAG:$k" >/dev/null
    measure "docker:load:$k" $DOCKER load -i "$W/d-$k.tar"
    $DOCKER create --name "$TAG-c-$k" "$TAG:$k" /bin/true >/dev/null
    measure "docker:export:$k" $DOCKER export -o "$W/d-exp-$k.tar" "$TAG-c-$k"
    $DOCKER rm -f "$TAG-c-$k" >/dev/null
    $DOCKER rmi -f "$TAG:$k" >/dev/null
  fi
  rm -f "$W"/*-"$k".tar "$W"/*-"$k".tar.gz; rm -rf "$R" "$R2" "$W/sk-oci-$k"
done

# ---- table ----
row() { # op data tool
  local key="$3:$1:$2" ref
  [ -n "${SEC[$key]:-}" ] || return 0
  local s=${SEC[$key]} mbs
  mbs=$(awk -v mb="${MB[$2]}" -v s="$s" 'BEGIN { printf "%.0f", (s > 0 ? mb / s : 0) }')
  ref=""
  if [ "$3" = ours ]; then
    for other in docker skopeo tar\|gzip; do
      [ -n "${SEC[$other:$1:$2]:-}" ] && ref="$ref $(awk -v a="$s" -v b="${SEC[$other:$1:$2]}" -v o="$other" 'BEGIN { printf "%s x%.2f", o, (b > 0 ? a / b : 0) }')"
    done
  fi
  printf '%-8s %-6s %6sMB  %-9s %8.2fs %7s MB/s %7s MB RSS %s\n' "$1" "$2" "${MB[$2]}" "$3" "$s" "$mbs" "${RSS[$key]}" "$ref"
}
echo
printf '%-8s %-6s %8s  %-9s %9s %12s %14s %s\n' OP DATA SIZE TOOL TIME SPEED PEAK "OURS/REF TIME"
for k in big small; do
  for op in import save load export; do
    for tool in ours docker skopeo 'tar|gzip'; do row "$op" "$k" "$tool"; done
  done
done
