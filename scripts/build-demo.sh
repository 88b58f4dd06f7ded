#!/usr/bin/env bash
# Builds the berth-demo binary statically and packages it as the FROM-scratch image berth-demo:latest.
# Idempotent: the image carries the binary's sha256 as a label, and the docker build is skipped when the
# existing image already has the same digest. Uses its own target dir (target/demo) so it does not invalidate
# the workspace's main one. Prints the image id on the last line.
set -euo pipefail

IMAGE="${BERTH_DEMO_IMAGE:-berth-demo:latest}"
TARGET=x86_64-unknown-linux-gnu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "build-demo: $*" >&2; }

cd "$ROOT"
start=$(date +%s)
log "building berth-demo (static, release, $TARGET)"
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR="$ROOT/target/demo" \
    cargo build --release -p berth-demo --target "$TARGET"
BIN="$ROOT/target/demo/$TARGET/release/berth-demo"
if [ ! -x "$BIN" ]; then
    log "expected binary not found at $BIN" >&2
    exit 1
fi
if command -v file >/dev/null 2>&1 && ! file "$BIN" | grep -q 'static'; then
    log "warning: $BIN does not look statically linked: $(file -b "$BIN")"
fi
DIGEST="$(sha256sum "$BIN" | cut -d' ' -f1)"
log "binary built in $(($(date +%s) - start))s, sha256 $DIGEST"

existing="$(docker image inspect --format '{{ index .Config.Labels "berth.demo.sha256" }}' "$IMAGE" 2>/dev/null || true)"
if [ "$existing" = "$DIGEST" ]; then
    log "$IMAGE is up to date (same binary digest); skipping docker build"
else
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    cp "$BIN" "$ctx/berth-demo"
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY berth-demo /berth-demo
LABEL berth.demo.sha256="$DIGEST"
EXPOSE 80
ENTRYPOINT ["/berth-demo"]
DOCKERFILE
    log "building image $IMAGE"
    if ! docker build --quiet -t "$IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
        log "docker build failed:"
        cat "$ctx/build.log" >&2
        exit 1
    fi
    log "image built in $(($(date +%s) - start))s total"
fi
docker image inspect --format '{{.Id}}' "$IMAGE"
