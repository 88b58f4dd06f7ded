#!/usr/bin/env bash
# Builds berth-boto3:latest, a FROM-scratch image with this machine's Python 3.11 (interpreter, stdlib and the
# shared libraries they link), boto3 and its dependencies from the project's .venv, and
# scripts/boto3-image/whoami.py as the entrypoint (no registry needed). Used by tests/e2e/test_task_role.py.
# Idempotent: the image carries a hash of its inputs as a label; the build is skipped when it matches.
# Prints the image id on the last line.
set -euo pipefail

IMAGE="${BERTH_BOTO3_IMAGE:-berth-boto3:latest}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "build-boto3-image: $*" >&2; }

PY="$(readlink -f "$ROOT/.venv/bin/python")"
PREFIX="$(cd "$(dirname "$PY")/.." && pwd)"
VER="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
SITE="$("$ROOT/.venv/bin/python" -c 'import boto3, os; print(os.path.dirname(os.path.dirname(boto3.__file__)))')"
PKGS=(boto3 botocore dateutil jmespath urllib3 s3transfer six.py)

HASH="$( { sha256sum "$PY" "$ROOT/scripts/boto3-image/whoami.py" "$0"; \
    for p in "${PKGS[@]}"; do echo "$p"; done; ls "$SITE" | grep -E '^(boto3|botocore|urllib3|s3transfer)-'; } \
    | sha256sum | cut -d' ' -f1)"
existing="$(docker image inspect --format '{{ index .Config.Labels "berth.boto3.hash" }}' "$IMAGE" 2>/dev/null || true)"
if [ "$existing" = "$HASH" ]; then
    log "$IMAGE is up to date; skipping the build"
    docker image inspect --format '{{.Id}}' "$IMAGE"
    exit 0
fi

start=$(date +%s)
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/py/bin" "$root/py/lib" "$root/app/site" "$root/tmp"
cp "$PY" "$root/py/bin/python3"
# The stdlib without tests, idle and the build-time extras; lib-dynload keeps the extension modules.
tar -C "$PREFIX/lib" --exclude="python$VER/site-packages" --exclude="python$VER/test" \
    --exclude="python$VER/idlelib" --exclude="python$VER/tkinter" --exclude="python$VER/ensurepip" \
    --exclude='__pycache__' -cf - "python$VER" | tar -C "$root/py/lib" -xf -
for p in "${PKGS[@]}"; do cp -r "$SITE/$p" "$root/app/site/"; done
find "$root/app/site" -name '__pycache__' -prune -exec rm -rf {} +
cp "$ROOT/scripts/boto3-image/whoami.py" "$root/app/whoami.py"
# Every shared library the interpreter and the extension modules need, at the paths they were found.
{ ldd "$PY"; find "$PREFIX/lib/python$VER/lib-dynload" -name '*.so' -exec ldd {} \; ; } 2>/dev/null \
    | awk '/=> \// { print $3 } /^\s*\/lib/ { print $1 }' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# The linker at its canonical path.
if [ -e /lib64/ld-linux-x86-64.so.2 ]; then mkdir -p "$root/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"; fi
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PYTHONHOME=/py PYTHONPATH=/app/site PYTHONDONTWRITEBYTECODE=1 LD_LIBRARY_PATH=$PREFIX/lib
LABEL berth.boto3.hash="$HASH"
EXPOSE 80
ENTRYPOINT ["/py/bin/python3", "-u", "/app/whoami.py"]
DOCKERFILE
log "building image $IMAGE"
if ! docker build --quiet -t "$IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
    log "docker build failed:"
    cat "$ctx/build.log" >&2
    exit 1
fi
log "image built in $(($(date +%s) - start))s"
docker image inspect --format '{{.Id}}' "$IMAGE"
