#!/usr/bin/env bash
# Installs what tests/ui needs when it is missing (Debian packages, through apt): tmux (the CLI's live progress
# display is read through a pseudo-terminal) and Chromium with chromium-driver (the console's browser tests, driven
# through WebDriver). Idempotent; prints the versions.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ -x "$ROOT/scripts/ensure-chromium.sh" ]; then
    "$ROOT/scripts/ensure-chromium.sh"
fi
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tmux -V
