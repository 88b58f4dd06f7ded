#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium, its WebDriver (chromedriver) and NSS's certutil (to trust berth's
# CA in a test profile) are installed, for the console's browser tests (tests/ui/browser.py). A fast no-op when
# they are; otherwise one bounded apt-get install (as root). Prints the versions last.
set -euo pipefail
log() { echo "ensure-chromium: $*" >&2; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing ${missing[*]}: run as root, or: sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -q
    timeout 1200 apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

chromium --version
chromedriver --version
log "certutil: $(command -v certutil)"
