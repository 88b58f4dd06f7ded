#!/usr/bin/env bash
# Route costs at scale (issue 10): reconciler passes over 1,000 Express services on the in-memory driver (idle, and
# during one deployment), and the proxy applying a 1,000-route table in which one target group changed.
#
#   bench/routes/run.sh                 # this tree only
#   BASE=main bench/routes/run.sh       # also the same benchmarks on <BASE>'s code, in the same session, as ratios
#
# Env: SERVICES (default 1000), PASSES (idle passes, default 50), CHANGES (one-group tables, default 100), ROUNDS
# (runs of each binary, alternating base and this tree, default 2). BASE is exported (git archive) to
# target/bench-base with this tree's bench programs copied in (they use only public APIs main has too), and built
# in target/bench-base-target. Result: bench/out/routes.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SERVICES="${SERVICES:-1000}"
PASSES="${PASSES:-50}"
CHANGES="${CHANGES:-100}"
ROUNDS="${ROUNDS:-2}"
OUT="$ROOT/bench/out/routes.md"
WORK="$(mktemp -d /tmp/berth-bench-routes.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$ROOT/bench/out"

# Builds the two bench programs of the tree at $1 with target dir $2 into $3.
build() {
    local tree="$1" target="$2" bin="$3"
    mkdir -p "$bin"
    (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release -q \
        -p berth-control --example bench_routes -p berth-proxy --example bench_proxy)
    cp "$target/release/examples/bench_routes" "$target/release/examples/bench_proxy" "$bin/"
}

TREES=()
if [ -n "${BASE:-}" ]; then
    BASE_TREE="$ROOT/target/bench-base"
    # A plain export of BASE (no worktree registered); files whose content did not change keep their mtime.
    rm -rf "$WORK/export" && mkdir -p "$WORK/export" "$BASE_TREE"
    git archive "$BASE" | tar -x -C "$WORK/export"
    (cd "$WORK/export" && find . -type f) | while read -r f; do
        if ! cmp -s "$WORK/export/$f" "$BASE_TREE/$f"; then
            mkdir -p "$(dirname "$BASE_TREE/$f")"
            cp "$WORK/export/$f" "$BASE_TREE/$f"
        fi
    done
    mkdir -p "$BASE_TREE/crates/berth-control/examples"
    # bench_routes builds on the base tree's tests/common (Harness::report_as_proxy): BASE must have it (any main from 0d7b777 on).
    cp crates/berth-control/examples/bench_routes.rs "$BASE_TREE/crates/berth-control/examples/"
    cp crates/berth-proxy/examples/bench_proxy.rs "$BASE_TREE/crates/berth-proxy/examples/"
    # Its own target dir (cargo would take one tree's artifacts as fresh for the other), seeded once with this
    # tree's dependencies, BASE's sources then touched so that every berth crate is built from them.
    BASE_TARGET="$ROOT/target/bench-base-target"
    if [ ! -d "$BASE_TARGET/release" ]; then
        mkdir -p "$BASE_TARGET" && cp -a "$ROOT/target/release" "$BASE_TARGET/"
        find "$BASE_TREE/crates" -type f -exec touch {} +
    fi
    build "$BASE_TREE" "$BASE_TARGET" "$WORK/base"
    TREES+=(base)
fi
build "$ROOT" "$ROOT/target" "$WORK/head"
TREES+=(head)

# Runs every binary ROUNDS times, alternating; each line of output is "<tree> <metric> <value>".
for round in $(seq 1 "$ROUNDS"); do
    for tree in "${TREES[@]}"; do
        echo "round $round: $tree" >&2
        "$WORK/$tree/bench_routes" "$SERVICES" "$PASSES" | sed "s/^/$tree /" >>"$WORK/results"
        "$WORK/$tree/bench_proxy" apply-one "$SERVICES" "$CHANGES" | sed "s/^/$tree /" >>"$WORK/results"
        # Tables 30 ms apart, as a deployment publishes them.
        BENCH_APPLY_GAP_MS=30 "$WORK/$tree/bench_proxy" apply-one "$SERVICES" "$CHANGES" | grep '^apply_one' \
            | sed "s/^apply_one/apply_one_gap30ms/; s/^/$tree /" >>"$WORK/results"
    done
done

# The median over rounds of each metric, per tree, and head/base.
python3 - "$WORK/results" "$SERVICES" >"$OUT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tree, metric, value = line.split()
    rows.setdefault(metric, {}).setdefault(tree, []).append(float(value))
print(f"# Route costs at {sys.argv[2]} services\n")
print("| metric | base | this tree | this / base |")
print("|---|---:|---:|---:|")
for metric, by in rows.items():
    base = statistics.median(by["base"]) if "base" in by else None
    head = statistics.median(by.get("head", [0]))
    ratio = f"{head / base:.3f}x" if base else "-"
    print(f"| {metric} | {'-' if base is None else f'{base:g}'} | {head:g} | {ratio} |")
PY
cat "$OUT"
