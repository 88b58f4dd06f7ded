#!/usr/bin/env bash
# Runs berth's benchmarks: deploy latency vs. the `docker run` floor (bench/deploy.py).
# Builds berth and the demo image first (both are no-ops when up to date); result in bench/out/deploy.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/ensure-docker.sh
VENV="$(scripts/ensure-python.sh | tail -n 1)"
if [ "${BERTH_BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release -p berth
    scripts/build-demo.sh >/dev/null
fi
exec "$VENV/bin/python" bench/deploy.py "$@"
