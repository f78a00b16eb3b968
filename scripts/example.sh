#!/usr/bin/env bash
# Builds examples/hello end to end on a fresh machine: system packages, npm install, compile,
# a busybox base image imported from Debian's busybox-static, then `tsbuild build`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
npm run build
tsbuild() { node packages/cli/bin/tsbuild.cjs "$@"; }
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
bash scripts/make-busybox-rootfs.sh "$base"
tar -C "$base" --numeric-owner -c . | tsbuild import - busybox:latest
tsbuild -t hello examples/hello
tsbuild images
tsbuild history hello
