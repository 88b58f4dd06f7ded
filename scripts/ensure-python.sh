#!/usr/bin/env bash
# Makes sure the repo's Python venv (.venv) exists and holds exactly the pinned packages of
# tests/requirements.txt (boto3, botocore, the AWS CLI, pytest). A fast no-op when the venv is already up to
# date: a stamp file records the sha256 of the requirements file it was installed from. Installs Debian's
# python3-venv when the venv module is missing (fresh Debian 12, as root). Prints the venv path last.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BERTH_VENV:-$ROOT/.venv}"
REQ="$ROOT/tests/requirements.txt"
STAMP="$VENV/.berth-requirements.sha256"
log() { echo "ensure-python: $*" >&2; }

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    log "$PYTHON not found: installing python3 with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c 'import boto3, botocore, pytest, awscli' >/dev/null 2>&1; then
    log "venv up to date ($VENV)"
    echo "$VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        log "python venv module missing: installing python3-venv with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv
    fi
    log "creating venv at $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

log "installing pinned packages from $REQ"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" >"$STAMP"
log "venv ready: $("$VENV/bin/python" --version), $("$VENV/bin/aws" --version 2>&1)"
echo "$VENV"
