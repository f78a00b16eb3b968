#!/usr/bin/env bash
# Differential check of one build against Docker's classic builder (the oracle):
# builds CONTEXT with tsbuild and with `DOCKER_BUILDKIT=0 docker build`, then compares the image
# config (.Config keys) and the flattened file systems (type, mode, owner, size, content hash,
# link target; mtimes aside; Docker's container artefacts ignored; permission bits only: Docker's
# tar headers also carry the file-type bits in the mode field, ours do not, as in the OCI spec). Prints the differences;
# exits 1 when there are any. Both sides use a busybox base made by make-busybox-rootfs.sh.
# usage: scripts/diff-docker.sh CONTEXT [extra build flags...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ctx=${1:?usage: diff-docker.sh CONTEXT [flags]}; shift
export DOCKER_BUILDKIT=0
DOCKER=/usr/bin/docker
work=$(mktemp -d /var/tmp/tsb-diff.XXXXXX)
tag=tsb-diff-$$
cleanup() {
  $DOCKER rm -f "$tag-c" >/dev/null 2>&1 || true
  $DOCKER rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash "$repo/scripts/start-dockerd.sh"
if ! $DOCKER image inspect busybox:latest >/dev/null 2>&1; then
  bash "$repo/scripts/make-busybox-rootfs.sh" "$work/bb"
  tar -C "$work/bb" --numeric-owner -c . | $DOCKER import - busybox:latest >/dev/null
fi
# the same base bytes on both sides
$DOCKER create --name "$tag-base" busybox:latest true >/dev/null
$DOCKER export "$tag-base" > "$work/base.tar"; $DOCKER rm "$tag-base" >/dev/null
tsb() { node "$repo/packages/cli/dist/src/main.js" --root "$work/store" "$@"; }
tsb import "$work/base.tar" busybox:latest >/dev/null
echo "== tsbuild" >&2
tsb build -t "$tag" "$@" "$ctx" >"$work/tsb.log" 2>&1 || { cat "$work/tsb.log"; echo "tsbuild failed" >&2; exit 1; }
echo "== docker" >&2
$DOCKER build -q -t "$tag" "$@" "$ctx" >"$work/docker.log" 2>&1 || { cat "$work/docker.log"; echo "docker failed" >&2; exit 1; }
tsb export -o "$work/tsb.tar" "$tag"
$DOCKER create --name "$tag-c" "$tag" true >/dev/null
$DOCKER export -o "$work/docker.tar" "$tag-c"
tsb inspect "$tag" > "$work/tsb.json"
$DOCKER image inspect "$tag" > "$work/docker.json"
python3 - "$work" <<'PY'
import json, sys, tarfile, hashlib
w = sys.argv[1]
keys = ["Env","Cmd","Entrypoint","WorkingDir","User","ExposedPorts","Volumes","Labels","Shell","Healthcheck","StopSignal","OnBuild"]
def cfg(p):
    c = json.load(open(p))[0]["Config"] or {}
    return {k: c.get(k) for k in keys if c.get(k) not in (None, "", [], {})}
def files(p):
    out = {}
    with tarfile.open(p) as t:
        for m in t:
            n = "/" + (m.name[2:] if m.name.startswith("./") else m.name.lstrip("/")).rstrip("/")
            if n in ("/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab") or n.split("/")[1] in ("proc", "sys", "dev"):
                continue
            kind = "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "f" if m.isfile() else "c" if m.ischr() else "b" if m.isblk() else "p"
            h = hashlib.sha256(t.extractfile(m).read()).hexdigest()[:12] if m.isfile() else ""
            out[n] = f"{kind} {m.mode & 0o7777:o} {m.uid}:{m.gid} {m.size if m.isfile() else ''} {m.linkname if (m.issym() or m.islnk()) else ''} {h}"
    return out
bad = 0
a, b = cfg(f"{w}/tsb.json"), cfg(f"{w}/docker.json")
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        bad += 1; print(f"config {k}: tsbuild={json.dumps(a.get(k))} docker={json.dumps(b.get(k))}")
fa, fb = files(f"{w}/tsb.tar"), files(f"{w}/docker.tar")
for n in sorted(set(fa) | set(fb)):
    if fa.get(n) != fb.get(n):
        bad += 1; print(f"file {n}: tsbuild=[{fa.get(n)}] docker=[{fb.get(n)}]")
print(f"{bad} differences")
sys.exit(1 if bad else 0)
PY
