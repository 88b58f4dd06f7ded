#!/usr/bin/env bash
# `berth deploy` next to the AWS CLI (bench/cli/deploy.py): image → first 200 through the HTTPS load balancer, median
# of 5 interleaved rounds. Builds nothing. BERTH_BINARY selects the binary (default target/release/berth); needs
# berth-demo:latest (scripts/build-demo.sh). Result in bench/out/cli-deploy.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export BERTH_BINARY="${BERTH_BINARY:-$ROOT/target/release/berth}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
PY="$(bench_python)"
exec "$PY" bench/cli/deploy.py "$@"
