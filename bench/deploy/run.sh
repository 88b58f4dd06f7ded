#!/usr/bin/env bash
# Update latency (bench/deploy/update.py): UpdateExpressGatewayService → 100% on the new revision → old tasks gone,
# median of 5, next to the `docker run` floor. Builds nothing. BERTH_BINARY selects the binary (default
# target/release/berth); needs berth-demo:latest (scripts/build-demo.sh). Result in bench/out/update.md.
#   bench/deploy/run.sh                                   # bakes 0, 5 rounds
#   bench/deploy/run.sh --rounds 1 --canary-bake 180 --bake 180 --no-floor   # AWS's default bakes, total time
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export BERTH_BINARY="${BERTH_BINARY:-$ROOT/target/release/berth}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
PY="$(bench_python)"
exec "$PY" bench/deploy/update.py "$@"
