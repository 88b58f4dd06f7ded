#!/usr/bin/env bash
# Scale-out reaction benchmark (bench/scaling/reaction.py): load start → the new task serving, median of 5 runs.
# Builds nothing. BERTH_BINARY selects the binary (default target/release/berth); needs berth-demo:latest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export BERTH_BINARY="${BERTH_BINARY:-$ROOT/target/release/berth}"
PY="${BERTH_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PY="$ROOT/.venv/bin/python"
    else
        PY="$(scripts/ensure-python.sh | tail -n 1)/bin/python"
    fi
fi
exec "$PY" bench/scaling/reaction.py "$@"
