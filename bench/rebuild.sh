#!/usr/bin/env bash
# Rebuild benchmark: how fast tsbuild answers when (almost) nothing changed.
# Prints the median of N runs (default 5) of:
#   help       tsbuild --help (start-up floor)
#   images     tsbuild images
#   small      no-change rebuild of a 5-step busybox Dockerfile
#   20k        no-change rebuild of `COPY . .` over 20,000 small files (~150 MB)
#   20k-late   rebuild after one file's content changed in that context (COPY and RUN run again)
#
# usage: bench/rebuild.sh [--runs N] [--cpu-prof DIR]
#   --cpu-prof DIR  also writes a V8 CPU profile of one no-change 20k rebuild into DIR
# Materials are kept (and reused) in $REBUILD_DIR (default /var/tmp/tsb-rebuild).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=5
prof=
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --cpu-prof) prof=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
W=${REBUILD_DIR:-/var/tmp/tsb-rebuild}
ROOT=$W/root
MAIN=$repo/packages/cli/bin/tsbuild.cjs
TSB=("$MAIN" --root "$ROOT") # run as a program, as the installed `tsbuild` (its launcher line)
mkdir -p "$W"

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# bench NAME PREP CMD...: runs PREP then CMD (timed) $runs times, prints the median
bench() {
  local name=$1 prep=$2 t=()
  shift 2
  for _ in $(seq 1 "$runs"); do
    $prep
    t+=("$(timed "$@")")
  done
  printf '%-10s %8s   (%s)\n' "$name" "$(printf '%s\n' "${t[@]}" | median)" "${t[*]}"
}

# ---------- materials (made once) ----------
if [ ! -f "$W/busybox.tar" ]; then
  d=$(mktemp -d); bash "$repo/scripts/make-busybox-rootfs.sh" "$d"
  tar -C "$d" --numeric-owner -cf "$W/busybox.tar" .; rm -rf "$d"
fi
if ! "${TSB[@]}" inspect busybox:latest >/dev/null 2>&1; then
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  "${TSB[@]}" import "$W/busybox.tar" busybox:latest >/dev/null
fi
if [ ! -f "$W/small/Dockerfile" ]; then
  mkdir -p "$W/small"
  cat > "$W/small/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app
WORKDIR /app
RUN echo building > /app/build.log
COPY config.txt /app/config.txt
CMD ["cat", "/app/config.txt"]
EOF
  head -c 4096 /dev/urandom | base64 > "$W/small/config.txt"
fi
if [ ! -f "$W/files20k/Dockerfile" ]; then
  rm -rf "$W/files20k"; mkdir -p "$W/files20k"
  make_files20k "$W/files20k"
  printf 'FROM busybox\nWORKDIR /src\nCOPY . .\nRUN ls -R /src | wc -l > /count\n' > "$W/files20k/Dockerfile"
fi

build_small() { "${TSB[@]}" build -q -t rebuild-small "$W/small"; }
build_20k() { "${TSB[@]}" build -q -t rebuild-20k "$W/files20k"; }
noop() { :; }
edit_one() { echo "edit $RANDOM $(now)" > "$W/files20k/d99/f199.dat"; }

# warm: every cache record and the stat index exist before timing
build_small >/dev/null; build_20k >/dev/null

echo "# $(uptime)"
echo "# median of $runs (seconds), then every run"
bench help noop "${TSB[@]}" --help
bench images noop "${TSB[@]}" images
bench small noop build_small
bench 20k noop build_20k
bench 20k-late edit_one build_20k
if [ -n "$prof" ]; then
  mkdir -p "$prof"
  build_20k >/dev/null
  node --cpu-prof --cpu-prof-dir="$prof" "$MAIN" --root "$ROOT" build -q -t rebuild-20k "$W/files20k" >/dev/null
  echo "# CPU profile of a no-change 20k rebuild in $prof"
fi
echo "# $(uptime)"
