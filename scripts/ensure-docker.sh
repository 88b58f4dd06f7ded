#!/usr/bin/env bash
# Makes sure a Docker Engine answers on this machine, with live-restore on: installs docker.io (Debian) when
# dockerd is missing, turns `live-restore` on in /etc/docker/daemon.json (merged into what is there), starts dockerd
# in the background when it is not running (or through systemd when systemd runs it), makes a running daemon
# take the setting (a reload, SIGHUP; a restart only if the reload did not take), and waits (at most 60 s) for it.
# Idempotent: when the daemon answers with live-restore on, it does nothing. Run as root on a fresh Debian 12.
#
# live-restore keeps containers (and their networking) running while dockerd is stopped or restarted, so a Docker
# restart or upgrade does not stop berth's tasks. Docker refuses it in swarm mode: on a swarm node it is left off.
#
#   scripts/ensure-docker.sh           the above
#   scripts/ensure-docker.sh stop      stops dockerd (bounded: SIGTERM, then SIGKILL after 30 s); with live-restore
#                                      the containers keep running
#   scripts/ensure-docker.sh restart   stop, then the above
set -euo pipefail

log() { echo "ensure-docker: $*"; }
LOG_FILE=/var/log/berth-dockerd.log
DAEMON_JSON=${BERTH_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
WAIT_SECS=60
STOP_SECS=30

reachable() { docker info >/dev/null 2>&1; }
version() { docker version --format '{{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo unknown; }
live_restore_on() { [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" = "true" ]; }
in_swarm() {
    local state
    state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
    [ "$state" = "active" ] || [ "$state" = "pending" ]
}
# systemd runs this machine and has a docker unit (on a container or a bare CI box there is none).
with_systemd() {
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 &&
        systemctl list-unit-files docker.service >/dev/null 2>&1 &&
        systemctl cat docker.service >/dev/null 2>&1
}
dockerd_pids() { pgrep -x dockerd 2>/dev/null || true; }
# daemon.json asks for live-restore (so that the next start of dockerd has it too).
configured() { command -v jq >/dev/null 2>&1 && [ "$(jq '."live-restore"' "$DAEMON_JSON" 2>/dev/null)" = "true" ]; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        log "$1 needs root" >&2
        exit 1
    fi
}

stop_dockerd() {
    need_root "stopping dockerd"
    if with_systemd; then
        log "stopping docker.service"
        timeout "$STOP_SECS" systemctl stop docker.service docker.socket 2>/dev/null || systemctl kill -s KILL docker.service || true
        return 0
    fi
    local pids
    pids=$(dockerd_pids)
    if [ -z "$pids" ]; then
        log "dockerd is not running"
        return 0
    fi
    log "stopping dockerd (pid $(echo $pids))"
    # shellcheck disable=SC2086 # one word per pid
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < STOP_SECS * 10; i++)); do
        [ -z "$(dockerd_pids)" ] && { log "dockerd stopped"; return 0; }
        sleep 0.1
    done
    log "dockerd did not stop within ${STOP_SECS}s: killing it" >&2
    pids=$(dockerd_pids)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    sleep 0.5
}

start_dockerd() {
    if with_systemd; then
        log "starting docker.service"
        systemctl start docker.service
    elif [ -n "$(dockerd_pids)" ]; then
        log "dockerd is running but not answering yet; waiting"
    else
        log "starting dockerd in the background (log: $LOG_FILE)"
        # Its own session (setsid): a daemon started from a job must not die with that job's process group.
        setsid nohup dockerd >>"$LOG_FILE" 2>&1 </dev/null &
        log "dockerd started (pid $!)"
    fi
    # Polled every 0.1 s: this is also the restart path, where every tenth of a second is downtime.
    for ((i = 0; i < WAIT_SECS * 10; i++)); do
        if reachable; then
            log "Docker daemon reachable after $((i / 10)).$((i % 10))s ($(version))"
            return 0
        fi
        sleep 0.1
    done
    log "Docker daemon did not answer within ${WAIT_SECS}s; last lines of $LOG_FILE:" >&2
    tail -n 20 "$LOG_FILE" >&2 || true
    exit 1
}

# Sets "live-restore": true in daemon.json, keeping every other setting (a file that is not a JSON object is left
# alone, with a warning).
configure_live_restore() {
    if ! command -v jq >/dev/null 2>&1; then
        log "jq not found: installing it with apt-get (to edit $DAEMON_JSON)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update >&2 && apt-get install -y jq >&2
    fi
    local current='{}'
    if [ -s "$DAEMON_JSON" ]; then
        if ! current=$(jq -e 'if type == "object" then . else error("not a JSON object") end' "$DAEMON_JSON"); then
            log "$DAEMON_JSON is not a JSON object; leaving it alone (live-restore stays as it is)" >&2
            return 0
        fi
    fi
    if [ "$(jq '."live-restore"' <<<"$current")" = "true" ]; then
        return 0
    fi
    mkdir -p "$(dirname "$DAEMON_JSON")"
    local tmp
    tmp=$(mktemp "$DAEMON_JSON.XXXXXX")
    jq '. + {"live-restore": true}' <<<"$current" >"$tmp"
    chmod 0644 "$tmp"
    mv "$tmp" "$DAEMON_JSON"
    log "turned live-restore on in $DAEMON_JSON"
}

# Makes a running daemon take the configuration: live-restore is one of the settings dockerd reloads on SIGHUP.
reload_dockerd() {
    if with_systemd; then
        systemctl reload docker.service || return 1
    else
        local pids
        pids=$(dockerd_pids)
        [ -n "$pids" ] || return 1
        # shellcheck disable=SC2086
        kill -HUP $pids
    fi
    for ((i = 0; i < 50; i++)); do
        live_restore_on && return 0
        sleep 0.1
    done
    return 1
}

case "${1:-}" in
    stop)
        stop_dockerd
        exit 0
        ;;
    restart)
        stop_dockerd
        ;;
    "") ;;
    *)
        echo "usage: $0 [stop|restart]" >&2
        exit 2
        ;;
esac

if command -v docker >/dev/null 2>&1 && reachable && { { live_restore_on && configured; } || in_swarm; }; then
    if in_swarm && ! live_restore_on; then
        log "Docker daemon is a swarm node: live-restore stays off (Docker refuses it in swarm mode)"
    fi
    log "Docker daemon already reachable ($(version)), live-restore $(live_restore_on && echo on || echo off)"
    exit 0
fi

need_root "installing, configuring or starting Docker"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "dockerd not found: installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y docker.io
    log "installed docker.io"
else
    log "dockerd is installed ($(command -v dockerd))"
fi

if reachable && in_swarm; then
    log "Docker daemon is a swarm node: live-restore stays off (Docker refuses it in swarm mode)"
    exit 0
fi
configure_live_restore

# The package's postinst may have started it already (on systems with a running init).
if reachable; then
    if live_restore_on; then
        log "Docker daemon is reachable ($(version)), live-restore on"
        exit 0
    fi
    log "Docker daemon runs without live-restore: reloading its configuration"
    if reload_dockerd; then
        log "live-restore is on (reloaded, nothing restarted)"
        exit 0
    fi
    log "the reload did not turn live-restore on: restarting dockerd" >&2
    stop_dockerd
fi

start_dockerd
if ! live_restore_on && ! in_swarm; then
    log "warning: dockerd runs without live-restore although $DAEMON_JSON asks for it" >&2
fi
