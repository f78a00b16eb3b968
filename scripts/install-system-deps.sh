#!/usr/bin/env bash
# Installs the Debian packages that tsbuild's tests and examples need (idempotent; we run as root).
#   runc            OCI runtime for RUN steps
#   util-linux      unshare + mount for the chroot fallback and overlay mounts (part of the base system)
#   busybox-static  the base image of tests and examples
#   skopeo umoci    real OCI clients the store is checked against
#   docker.io       Docker's classic builder: the differential-test oracle and `docker load` round trips
#   attr jq zstd xz-utils bzip2   archive formats and inspection in tests
#   docker-registry apache2-utils   the reference registry (push/pull tests) and htpasswd for its auth
#   g++ make python3   node-gyp builds the native addons at `npm ci`: @tsbuild/sys (flock, mount, umount) and fs-xattr
#   libdeflate0     the layer gzip's compressor, which @tsbuild/sys loads (dlopen) when present
#   openssl         makes the self-signed certificate of the HTTPS test (NODE_EXTRA_CA_CERTS under the launcher)
set -euo pipefail
pkgs=(runc busybox-static skopeo umoci docker.io attr jq zstd xz-utils bzip2 iproute2 docker-registry apache2-utils g++ make python3 libdeflate0 openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-system-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
