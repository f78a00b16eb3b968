#!/usr/bin/env bash
# Starts Docker's daemon (Debian's docker.io, classic builder) for differential tests, if not running.
# Prints nothing on success; exits 0 once `docker info` answers, 1 (with the log's tail on stderr)
# if it does not within 300 s. After an unclean stop dockerd first cleans up what was left (seen
# here: 746 stale network sandboxes, 3.5 min), hence the long wait.
set -u
DOCKER=/usr/bin/docker
LOG=/var/log/tsbuild-dockerd.log
[ -x "$DOCKER" ] || { echo "start-dockerd: $DOCKER is missing (scripts/install-system-deps.sh installs docker.io)" >&2; exit 1; }
timeout 10 $DOCKER info >/dev/null 2>&1 && exit 0
# A machine stopped without stopping dockerd keeps its pid files: dockerd then refuses to start
# ("pid file found"), and its containerd supervisor may take a reused pid for its containerd.
# Remove each pid file whose process is not the program that wrote it.
stale() { # stale PIDFILE COMM
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1" 2>/dev/null)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && return 1
  return 0
}
mkdir -p /var/log
for _ in $(seq 1 300); do
  if ! pgrep -x dockerd >/dev/null; then
    stale /var/run/docker.pid dockerd && rm -f /var/run/docker.pid
    stale /var/run/docker/containerd/containerd.pid containerd && rm -f /var/run/docker/containerd/containerd.pid
    echo "--- start-dockerd $(date -u +%FT%TZ)" >>"$LOG"
    nohup dockerd --iptables=false --bridge=none >>"$LOG" 2>&1 &
  fi
  sleep 1
  timeout 10 $DOCKER info >/dev/null 2>&1 && exit 0
done
echo "start-dockerd: dockerd did not answer within 300 s; the end of $LOG:" >&2
tail -n 20 "$LOG" >&2
exit 1
