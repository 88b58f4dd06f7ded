#!/usr/bin/env bash
# Makes sure a Docker Engine answers on this machine: installs docker.io (Debian) when dockerd is missing,
# starts dockerd in the background when it is not running, and waits (at most 60 s) for it to answer.
# Idempotent: when `docker info` already answers, it does nothing. Run as root on a fresh Debian 12 machine.
set -euo pipefail

log() { echo "ensure-docker: $*"; }
LOG_FILE=/var/log/berth-dockerd.log
WAIT_SECS=60

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    log "Docker daemon already reachable ($(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}'))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    log "Docker is not reachable and this script needs root to install or start it" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "dockerd not found: installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y docker.io
    log "installed docker.io"
else
    log "dockerd is installed ($(command -v dockerd))"
fi

# The package's postinst may have started it already (on systems with a running init).
if docker info >/dev/null 2>&1; then
    log "Docker daemon is reachable"
    exit 0
fi

if command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd >/dev/null 2>&1; then
    log "dockerd is running but not answering yet; waiting"
else
    log "starting dockerd in the background (log: $LOG_FILE)"
    # Its own session (setsid): a daemon started from a job must not die with that job's process group.
    setsid nohup dockerd >>"$LOG_FILE" 2>&1 </dev/null &
    log "dockerd started (pid $!)"
fi

for ((i = 0; i < WAIT_SECS; i++)); do
    if docker info >/dev/null 2>&1; then
        log "Docker daemon reachable after ${i}s ($(docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}'))"
        exit 0
    fi
    sleep 1
done

log "Docker daemon did not answer within ${WAIT_SECS}s; last lines of $LOG_FILE:" >&2
tail -n 20 "$LOG_FILE" >&2 || true
exit 1
