#!/usr/bin/env bash
# The cost of berth's own metrics collection (issue 11), two measurements:
#  1. Task sampling: the usage of TASKS running containers read through Driver::task_stats (their cgroup files)
#     ROUNDS times, and through Docker's one-shot stats API (the fallback), per 100 tasks (bench_stats example).
#  2. The proxy with metric deltas in its reports on vs off: the same bench_proxy `serve` (one route to an nginx
#     backend, an in-process fake server taking a report every second), wrk over HTTP and HTTPS, the two modes
#     alternated PAIRS times; req/s and the proxy's CPU time per request, the ratio on/off per pair and the median.
# Result: bench/out/collect.md.
#
# Env: TASKS (default 100), ROUNDS (default 50), DURATION (wrk seconds, default 10), CONNS (default 50),
#      PAIRS (default 3), PORT_BASE (default 29000), BERTH_BENCH_NO_BUILD=1 to skip the build, SKIP_TASKS=1,
#      SKIP_PROXY=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
TASKS="${TASKS:-100}"; ROUNDS="${ROUNDS:-50}"; DURATION="${DURATION:-10}"; CONNS="${CONNS:-50}"
PAIRS="${PAIRS:-3}"; PORT_BASE="${PORT_BASE:-29000}"
HOST=bench.localhost
WORK="$(mktemp -d /tmp/berth-bench-collect.XXXXXX)"
OUT="$ROOT/bench/out/collect.md"
mkdir -p "$ROOT/bench/out" "$WORK/logs"

need() { command -v "$1" >/dev/null 2>&1; }
if [ -z "${SKIP_PROXY:-}" ] && { ! need nginx || ! need wrk; }; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
if [ "${BERTH_BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release -q -p berth-proxy --example bench_proxy -p berth-runtime-docker --example bench_stats
fi
BIN="$ROOT/target/release/examples"

PIDS=()
CONTAINERS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${#CONTAINERS[@]}" -gt 0 ]; then docker rm -f "${CONTAINERS[@]}" >/dev/null 2>&1 || true; fi
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

{
    echo "# berth metrics collection cost ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
} > "$OUT"

# 1. Task sampling.
if [ -z "${SKIP_TASKS:-}" ]; then
    scripts/ensure-docker.sh >/dev/null
    [ -n "$(docker images -q berth-demo:latest)" ] || scripts/build-demo.sh >/dev/null
    IDS=()
    for i in $(seq 1 "$TASKS"); do
        id="bench$(printf '%04d' "$i")$$"
        CONTAINERS+=("berth-task-$id")
        IDS+=("$id")
        docker run -d -q --name "berth-task-$id" --label berth.bench=collect --memory 64m --cpus 0.25 \
            berth-demo:latest >/dev/null
    done
    echo "started $TASKS containers" >&2
    {
        echo "## Task sampling ($TASKS containers, cgroup $(docker info --format '{{.CgroupVersion}}') / $(docker info --format '{{.CgroupDriver}}'))"
        echo
        echo '```'
        echo "\$ target/release/examples/bench_stats $ROUNDS <$TASKS task ids>"
        "$BIN/bench_stats" "$ROUNDS" "${IDS[@]}"
        echo '```'
        echo
    } | tee -a "$OUT"
    docker rm -f "${CONTAINERS[@]}" >/dev/null 2>&1 || true
    CONTAINERS=()
fi

# 2. Proxy requests/s, metric reports on vs off.
if [ -z "${SKIP_PROXY:-}" ]; then
    P_BACKEND=$((PORT_BASE + 81)); P_HTTP=$((PORT_BASE + 70)); P_HTTPS=$((PORT_BASE + 63))
    ports_free $P_BACKEND $P_HTTP $P_HTTPS
    BACKEND=127.0.0.1:$P_BACKEND
    "$BIN/bench_proxy" gen 1 "$BACKEND" "$HOST" "$WORK/routes.json" "$WORK/certs"
    backend_conf "$WORK" "$BACKEND"
    nginx -c "$WORK/backend.conf" -g 'daemon off;' & PIDS+=($!)
    wait_port "$P_BACKEND"
    run_wrk() { wrk -t1 -c"$CONNS" -d"${1}s" --latency -H "Host: $HOST" "$2" 2>&1; }
    rps() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }'; }
    total() { awk '/requests in/ { print $1 }'; }
    ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, clock ticks
    HZ=$(getconf CLK_TCK)
    declare -A R C
    for pair in $(seq 1 "$PAIRS"); do
        # Alternate which mode goes first, so drift of the shared machine does not favour one.
        modes="on off"; [ $((pair % 2)) -eq 0 ] && modes="off on"
        for mode in $modes; do
            rm -f "$WORK/state.json"; cp "$WORK/routes.json" "$WORK/state.json"
            BERTH_BENCH_METRICS=$mode "$BIN/bench_proxy" serve "$WORK/state.json" 127.0.0.1:$P_HTTPS 127.0.0.1:$P_HTTP \
                2>"$WORK/logs/proxy-$mode-$pair.log" & pid=$!
            wait_port "$P_HTTP"; wait_port "$P_HTTPS"
            for proto in http https; do
                port=$P_HTTP; [ "$proto" = https ] && port=$P_HTTPS
                url="$proto://127.0.0.1:$port/"
                curl -sk -o /dev/null --fail -H "Host: $HOST" "$url"
                run_wrk 2 "$url" >/dev/null
                t0=$(ticks "$pid")
                out="$(run_wrk "$DURATION" "$url")"
                t1=$(ticks "$pid")
                R[$pair,$mode,$proto]="$(echo "$out" | rps)"
                # The proxy's CPU time per request (µs): what the metrics cost, less sensitive than req/s to what
                # else the machine runs.
                C[$pair,$mode,$proto]="$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$(echo "$out" | total)" \
                    'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
                echo "pair $pair $mode $proto: ${R[$pair,$mode,$proto]} req/s, ${C[$pair,$mode,$proto]} µs cpu/request" >&2
            done
            kill "$pid"; wait "$pid" 2>/dev/null || true
        done
    done
    {
        echo "## Proxy with metric deltas in its reports on vs off"
        echo
        echo "wrk -t1 -c$CONNS -d${DURATION}s, one route, nginx backend; \`BERTH_BENCH_METRICS=on|off bench_proxy serve\`;"
        echo "cpu = the proxy's user+system time per request. on/off = cpu off ÷ cpu on (the throughput ratio of a"
        echo "CPU-bound proxy); req/s shown too, but on a shared machine it swings with the neighbours."
        echo
        echo "| pair | protocol | on req/s | off req/s | on µs cpu/req | off µs cpu/req | on/off (cpu) |"
        echo "|---|---|---|---|---|---|---|"
        for proto in http https; do
            for pair in $(seq 1 "$PAIRS"); do
                con=${C[$pair,on,$proto]}; coff=${C[$pair,off,$proto]}
                echo "| $pair | $proto | ${R[$pair,on,$proto]} | ${R[$pair,off,$proto]} | $con | $coff | $(awk -v a="$coff" -v b="$con" 'BEGIN { printf "%.3f", a / b }') |"
            done
        done
        echo
        for proto in http https; do
            ratios=$(for pair in $(seq 1 "$PAIRS"); do
                awk -v a="${C[$pair,off,$proto]}" -v b="${C[$pair,on,$proto]}" 'BEGIN { printf "%.3f\n", a / b }'
            done | sort -n)
            echo "median on/off (cpu per request) $proto: $(echo "$ratios" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
            echo
        done
    } | tee -a "$OUT"
fi
