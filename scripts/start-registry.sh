#!/usr/bin/env bash
# Runs the CNCF distribution registry (Debian's docker-registry) in the foreground for tests:
# listening on 127.0.0.1 on a free port, filesystem storage under DIR/data, config in DIR/config.yml.
#   start-registry.sh DIR [HTPASSWD_FILE]
# With HTPASSWD_FILE (bcrypt, e.g. `htpasswd -Bbn user pass`), every request needs Basic auth.
# The registry logs "listening on 127.0.0.1:PORT" on stderr once it accepts connections; stop it
# with SIGTERM (the script execs it, so its PID is the registry's).
set -euo pipefail
dir=${1:?usage: start-registry.sh DIR [HTPASSWD_FILE]}
htpasswd=${2:-}
mkdir -p "$dir/data"
{
  echo 'version: 0.1'
  echo 'log: {level: info, accesslog: {disabled: true}}'
  echo "storage: {filesystem: {rootdirectory: \"$dir/data\"}, delete: {enabled: true}}"
  echo 'http: {addr: "127.0.0.1:0", secret: tsbuild-test}'
  if [ -n "$htpasswd" ]; then echo "auth: {htpasswd: {realm: tsbuild-test, path: \"$htpasswd\"}}"; fi
} >"$dir/config.yml"
exec /usr/bin/docker-registry serve "$dir/config.yml"
