#!/usr/bin/env bash
# Scale-out reaction benchmark (bench/scaling/reaction.py): load start → the new task serving, median of 5 runs.
# Builds nothing. BERTH_BINARY selects the binary (default target/release/berth); needs berth-demo:latest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export BERTH_BINARY="${BERTH_BINARY:-$ROOT/target/release/berth}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
PY="$(bench_python)"
exec "$PY" bench/scaling/reaction.py "$@"
