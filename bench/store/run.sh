#!/usr/bin/env bash
# The store under load (issue 10): DescribeExpressGatewayService and CreateExpressGatewayService with 32
# concurrent clients, idle and while 50 Express services reconcile and a FilterLogEvents loop scans a
# 100,000-event log group. In process, through berth-control's public API over the in-memory driver
# (crates/berth-control/examples/bench_store.rs says how). With BASE=<git ref>, the same bench file is also
# built against that ref's code (a temporary worktree) and the two run alternately, for a before/after ratio;
# the base dispatches requests on the worker (as main's server did), this tree on spawn_blocking (as it does now).
# Result: bench/out/store.md.
#
# Env: BASE (a git ref to compare with; unset: this tree only), RUNS (default 1), BENCH_SECONDS (default 8),
#      BENCH_WRITE_SECONDS (default 4), BENCH_CLIENTS (default 32), BENCH_SERVICES (default 50),
#      BENCH_EVENTS (default 100000), BERTH_BENCH_NO_BUILD=1 to reuse the binaries of the last run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-1}"
OUT="$ROOT/bench/out/store.md"
BIN="$ROOT/bench/out/store-bin"
mkdir -p "$BIN"
WORK="$(mktemp -d /tmp/berth-bench-store.XXXXXX)"
cleanup() {
    if [ -d "$WORK/base" ]; then git worktree remove --force "$WORK/base" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${BERTH_BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release -q -p berth-control --example bench_store
    cp target/release/examples/bench_store "$BIN/after"
    if [ -n "${BASE:-}" ]; then
        git worktree add -q --detach "$WORK/base" "$BASE"
        mkdir -p "$WORK/base/crates/berth-control/examples"
        cp crates/berth-control/examples/bench_store.rs "$WORK/base/crates/berth-control/examples/"
        (cd "$WORK/base" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q -p berth-control --example bench_store)
        cp target/release/examples/bench_store "$BIN/before"
    fi
fi

{
    echo "# Store benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) CPUs"
    echo
    for run in $(seq 1 "$RUNS"); do
        if [ -n "${BASE:-}" ]; then
            echo "## run $run: before ($BASE)"
            echo
            BENCH_DISPATCH=worker "$BIN/before"
            echo
        fi
        echo "## run $run: this tree"
        echo
        BENCH_DISPATCH=blocking "$BIN/after"
        echo
    done
} | tee "$OUT"
