#!/usr/bin/env bash
# Writes a minimal busybox root filesystem into DIR (from Debian's busybox-static):
# /bin/busybox, one symlink per applet in /bin, /etc/passwd and /etc/group with root, nobody
# and an unprivileged user `app` (uid 1000), /tmp (1777), /root.
# usage: make-busybox-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: make-busybox-rootfs.sh DIR}
bb=$(command -v busybox || echo /bin/busybox)
[ -x "$bb" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir"/{bin,etc,tmp,root,home/app,usr/bin,usr/sbin,sbin,var}
cp "$bb" "$dir/bin/busybox"
# one symlink per applet, made in one process (a `ln` per applet costs seconds on a loaded machine)
"$dir/bin/busybox" --list | node -e '
  const fs = require("fs"), bin = process.argv[1];
  for (const a of fs.readFileSync(0, "utf8").split("\n")) {
    if (!a || a === "busybox") continue;
    try { fs.unlinkSync(bin + "/" + a); } catch {}
    fs.symlinkSync("busybox", bin + "/" + a);
  }' "$dir/bin"
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
app:x:1000:
staff:x:50:app
nogroup:x:65534:
G
chmod 1777 "$dir/tmp"; chmod 700 "$dir/root"; chown 1000:1000 "$dir/home/app"
