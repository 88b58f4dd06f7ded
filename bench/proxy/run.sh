#!/usr/bin/env bash
# berth proxy vs nginx vs HAProxy as reverse proxies in front of the same nginx backend, on loopback.
# Plain HTTP and HTTPS, keep-alive on both sides, small responses, wrk. Also: the proxy's RSS with 1,000
# routes and the time to apply a new 1,000-route table. Result: bench/out/proxy.md.
#
# Env: DURATION (wrk seconds, default 10), CONNS (default 50), THREADS (wrk threads, default 1),
#      PORT_BASE (default 28000: ports PORT_BASE+1..+99 must be free), BERTH_BENCH_NO_BUILD=1 to skip the build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-1}"
PORT_BASE="${PORT_BASE:-28000}"
HOST=bench.localhost
WORK="$(mktemp -d /tmp/berth-bench-proxy.XXXXXX)"
OUT="$ROOT/bench/out/proxy.md"
mkdir -p "$ROOT/bench/out"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need haproxy || ! need wrk; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light haproxy wrk >/dev/null
fi
if [ "${BERTH_BENCH_NO_BUILD:-}" != 1 ]; then
    cargo build --release -q -p berth-proxy --example bench_proxy
fi
BIN="$ROOT/target/release/examples/bench_proxy"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# Ports (offsets from PORT_BASE): backend 81; nginx 80/43; haproxy 90/53; berth 70/63 (+ metrics 79).
P_BACKEND=$((PORT_BASE + 81)); P_NGINX=$((PORT_BASE + 80)); P_NGINX_TLS=$((PORT_BASE + 43))
P_HAPROXY=$((PORT_BASE + 90)); P_HAPROXY_TLS=$((PORT_BASE + 53))
P_BERTH=$((PORT_BASE + 70)); P_BERTH_TLS=$((PORT_BASE + 63)); P_METRICS=$((PORT_BASE + 79))
ports_free $P_BACKEND $P_NGINX $P_NGINX_TLS $P_HAPROXY $P_HAPROXY_TLS $P_BERTH $P_BERTH_TLS $P_METRICS
BACKEND=127.0.0.1:$P_BACKEND
mkdir -p "$WORK/logs" "$WORK/certs"
"$BIN" gen 1 "$BACKEND" "$HOST" "$WORK/routes-1.json" "$WORK/certs"
"$BIN" gen 1000 "$BACKEND" "$HOST" "$WORK/routes-1000.json" "$WORK/certs-1000"

backend_conf "$WORK" "$BACKEND"

cat > "$WORK/nginx.conf" <<CONF
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server $BACKEND; keepalive 128; }
    server {
        listen 127.0.0.1:$P_NGINX;
        listen 127.0.0.1:$P_NGINX_TLS ssl http2;
        server_name $HOST;
        ssl_certificate $WORK/certs/cert.pem;
        ssl_certificate_key $WORK/certs/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Port \$server_port;
        }
    }
}
CONF

cat > "$WORK/haproxy.cfg" <<CONF
global
    nbthread $(nproc)
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$P_HAPROXY
    bind 127.0.0.1:$P_HAPROXY_TLS ssl crt $WORK/certs/combined.pem alpn h2,http/1.1
    option forwardfor
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    http-request set-header X-Forwarded-Port %[dst_port]
    default_backend be
backend be
    server s1 $BACKEND
CONF

nginx -c "$WORK/backend.conf" -g "daemon off;" & PIDS+=($!)
wait_port $P_BACKEND

# wrk's latency distribution and requests/s.
run_wrk() { # url
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST" "$1" 2>&1
}
parse() { # wrk output on stdin → "rps p50 p99"
    awk '
        function ms(v) { if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
                         if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
                         if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 } return v }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec:/ { rps = $2 }
        /Non-2xx/ { bad = $NF } /Socket errors/ { err = $0 }
        END { printf "%.0f %.3f %.3f %s\n", rps, p50, p99, (bad == "" ? 0 : bad) }'
}

declare -A RESULT
bench_one() { # name port-http port-https
    local name=$1
    wait_port "$2"; wait_port "$3"
    for proto in http https; do
        local port=$2 url
        [ "$proto" = https ] && port=$3
        url="$proto://127.0.0.1:$port/"
        curl -sk -o /dev/null --fail -H "Host: $HOST" "$url" || { echo "$name $proto does not answer" >&2; exit 1; }
        run_wrk "$url" > /dev/null    # warm-up (short)
        local out
        out="$(run_wrk "$url")"
        echo "$out" > "$WORK/logs/wrk-$name-$proto.txt"
        RESULT[$name,$proto]="$(echo "$out" | parse)"
        echo "$name $proto: ${RESULT[$name,$proto]}" >&2
    done
}

nginx -c "$WORK/nginx.conf" -g "daemon off;" & NGINX=$!; PIDS+=($NGINX)
wait_port $P_NGINX
DURATION_SAVED=$DURATION
bench_one nginx $P_NGINX $P_NGINX_TLS
kill "$NGINX"; wait "$NGINX" 2>/dev/null || true

haproxy -f "$WORK/haproxy.cfg" & HAPROXY=$!; PIDS+=($HAPROXY)
wait_port $P_HAPROXY
bench_one haproxy $P_HAPROXY $P_HAPROXY_TLS
kill "$HAPROXY"; wait "$HAPROXY" 2>/dev/null || true

"$BIN" serve "$WORK/routes-1.json" 127.0.0.1:$P_BERTH_TLS 127.0.0.1:$P_BERTH 127.0.0.1:$P_METRICS 2>"$WORK/logs/berth.log" & BERTH=$!; PIDS+=($BERTH)
wait_port $P_BERTH
# The target becomes healthy after its first probes.
for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" http://127.0.0.1:$P_BERTH/)" = 200 ] && break
    sleep 0.1
done
bench_one berth $P_BERTH $P_BERTH_TLS
kill "$BERTH"; wait "$BERTH" 2>/dev/null || true

# Memory with 1,000 routes (1,000 target groups, each probed), after the targets are healthy.
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
"$BIN" serve "$WORK/routes-1.json" 127.0.0.1:$P_BERTH_TLS 127.0.0.1:$P_BERTH 2>/dev/null & B1=$!; PIDS+=($B1)
wait_port $P_BERTH; sleep 2
RSS1="$(rss_of "$B1")"
kill "$B1"; wait "$B1" 2>/dev/null || true
"$BIN" serve "$WORK/routes-1000.json" 127.0.0.1:$P_BERTH_TLS 127.0.0.1:$P_BERTH 2>/dev/null & B1000=$!; PIDS+=($B1000)
wait_port $P_BERTH; sleep 3
RSS1000="$(rss_of "$B1000")"
kill "$B1000"; wait "$B1000" 2>/dev/null || true
# Time to apply a new table with 1,000 routes (publication by a fake server → served), three times.
APPLY="$("$BIN" apply 1000 "$BACKEND")"
echo "$APPLY" >&2

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
{
    echo "# berth proxy vs nginx vs HAProxy"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)),"
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s keep-alive on loopback; backend: nginx (1 worker) answering a 23-byte body;"
    echo "proxies: nginx $(nproc) workers, HAProxy $(nproc) threads, berth $(nproc) listener workers; all share the same $(nproc) CPUs with wrk and the backend."
    echo
    echo "| proxy | protocol | requests/s | p50 ms | p99 ms | non-2xx | rps vs nginx | p99 vs nginx |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for proto in http https; do
        read -r nr n50 n99 _ <<<"${RESULT[nginx,$proto]}"
        for name in nginx haproxy berth; do
            read -r rps p50 p99 bad <<<"${RESULT[$name,$proto]}"
            echo "| $name | $proto | $rps | $p50 | $p99 | $bad | $(ratio "$rps" "$nr") | $(ratio "$p99" "$n99") |"
        done
    done
    echo
    echo "berth proxy memory (VmRSS): 1 route $((RSS1 / 1024)) MiB; 1,000 routes (1,000 target groups, each health-checked) $((RSS1000 / 1024)) MiB."
    echo
    echo "Applying a new 1,000-route table (fake server publishes → proxy serves; JSON parse, prober sync, snapshot build):"
    echo
    echo '```'
    echo "$APPLY"
    echo '```'
} > "$OUT"
cat "$OUT"
