#!/usr/bin/env bash
# Repeated `tsbuild load -i` of one saved archive: seconds, MB/s (of the uncompressed tar, as
# bench/store.sh counts it), peak RSS and CPU of each run, and the median MB/s. store.sh times one
# run per operation; this shows the spread (the first run after the previous root was deleted is
# usually the slow one: extra kernel time).
#
# usage: bench/load.sh [--runs N] [--small]
#   default: the ~1 GB image of store.sh (half compressible text, half random), 5 runs
#   --small: 20,000 small files (76 MB)
# Data is made once and kept in $LOAD_BENCH_DIR (default /var/tmp/tsb-load-bench).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=5
kind=big
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --small) kind=small; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
W=${LOAD_BENCH_DIR:-/var/tmp/tsb-load-bench}
# the bin as the installed `tsbuild` command runs it: its launcher line (`node FILE` would skip it)
TSB="$repo/packages/cli/bin/tsbuild.cjs"
mkdir -p "$W"
# shellcheck source=lib.sh
. "$repo/bench/lib.sh"
if [ ! -f "$W/$kind.saved.tar" ]; then
  echo "# making the $kind image (once)" >&2
  src=$W/$kind-src
  rm -rf "$src"; mkdir -p "$src"
  if [ "$kind" = big ]; then make_big_tree "$src" 1024; else make_small_tree "$src" 20000; fi
  tar -C "$src" -cf "$W/$kind.tar" .
  rm -rf "$W/root" "$src"
  $TSB --root "$W/root" import "$W/$kind.tar" "bench:$kind" >/dev/null
  $TSB --root "$W/root" save -o "$W/$kind.saved.tar" "bench:$kind"
  rm -rf "$W/root"
fi
MB=$(( $(stat -c %s "$W/$kind.tar") / 1000000 ))
rates=()
for i in $(seq 1 "$runs"); do
  rm -rf "$W/r"; sync
  /usr/bin/time -f '%e %M %U %S' -o "$W/time.txt" $TSB --root "$W/r" load -i "$W/$kind.saved.tar" >/dev/null
  read -r s m u sy < "$W/time.txt"
  rate=$(awk -v mb="$MB" -v s="$s" 'BEGIN {printf "%.0f", mb / s}')
  rates+=("$rate")
  echo "load $kind ${MB}MB run $i: ${s}s ${rate} MB/s peak RSS $((m / 1024))MB cpu ${u}u+${sy}s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
rm -rf "$W/r"
echo "median: $(printf '%s\n' "${rates[@]}" | median) MB/s over $runs runs"
