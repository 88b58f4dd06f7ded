#!/usr/bin/env bash
# Makes sure Debian's `docker-registry` and `htpasswd` (apache2-utils) are installed, for the private-registry
# end-to-end test (tests/e2e/test_secrets.py starts its own registry on a loopback port with a temporary config).
# Idempotent and quick when both are present. The package's own service (port 5000) is left stopped and disabled
# where systemd runs it. When the packages cannot be installed (not root, no apt), it says so and exits 0: the test
# then skips itself with the same message.
set -uo pipefail

log() { echo "ensure-registry: $*"; }

if command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1; then
    log "docker-registry and htpasswd are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install docker-registry and apache2-utils (needs root and apt-get): the private-registry test will skip"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends docker-registry apache2-utils; then
    log "apt-get install failed; updating the package lists and retrying once"
    apt-get update && apt-get install -y --no-install-recommends docker-registry apache2-utils || {
        log "could not install docker-registry and apache2-utils: the private-registry test will skip"
        exit 0
    }
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
log "installed $(command -v docker-registry) and $(command -v htpasswd)"
