#!/usr/bin/env bash
# The metric store (issue 11): ingest cost at 10,000 datapoints/s through PutMetricData and through
# record_metrics (what the proxies' reports and the task samplers feed), unpaced throughput, stored bytes per
# series per day in each tier after roll-up, and Get latency. In process, through berth-control's public API over
# the in-memory driver and a store file (crates/berth-control/examples/bench_metrics.rs says how).
# Result: bench/out/metrics.md.
#
# Env: BENCH_SECONDS (default 5), BENCH_GETS (default 200), BERTH_BENCH_NO_BUILD=1 to reuse the last binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out/metrics.md"
mkdir -p "$ROOT/bench/out"
if [ "${BERTH_BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release -q -p berth-control --example bench_metrics
fi
{
    echo "# Metric store benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) CPUs"
    echo
    "$ROOT/target/release/examples/bench_metrics"
} | tee "$OUT"
