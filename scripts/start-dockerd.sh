#!/usr/bin/env bash
# Starts Docker's daemon (Debian's docker.io, classic builder) for differential tests, if not running.
# Prints nothing; exits 0 once `docker info` answers, 1 if it does not within 60 s.
set -u
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || exit 1
$DOCKER info >/dev/null 2>&1 && exit 0
mkdir -p /var/log
nohup dockerd --iptables=false --bridge=none >/var/log/tsbuild-dockerd.log 2>&1 &
for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && exit 0; sleep 1; done
exit 1
