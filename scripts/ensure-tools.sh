#!/usr/bin/env bash
# Makes sure the command-line tools the UI suites drive are installed: tmux (tests/ui/test_cli_progress.py runs
# `berth deploy` inside it to see the live display through a real pseudo-terminal). Installs Debian's package with
# apt-get when the command is missing. Idempotent: when every tool is on PATH it does nothing. Run as root on
# Debian 12 (or have the tools installed).
set -euo pipefail

log() { echo "ensure-tools: $*"; }
TOOLS=(tmux)

missing=()
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
    log "present: ${TOOLS[*]}"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]} and no apt-get here: install them with this system's package manager" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    log "missing ${missing[*]}: run as root (apt-get install -y ${missing[*]})" >&2
    exit 1
fi
log "installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
for tool in "${missing[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || { log "$tool is still missing after apt-get" >&2; exit 1; }
done
log "installed ${missing[*]}"
