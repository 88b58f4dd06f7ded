# Shell helpers the benchmark scripts share (sourced, not run).

# Waits (≤ 10 s) until something accepts on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    return 1
}

# Exits when one of the ports already answers: something else would be measured instead of what is under test.
ports_free() {
    for p in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use; set PORT_BASE" >&2; exit 1; fi
    done
}

# Writes $1/backend.conf: a one-worker nginx answering 200 "hello from the backend" on $2 (host:port), logs under
# $1/logs.
backend_conf() {
    mkdir -p "$1/logs"
    cat > "$1/backend.conf" <<CONF
worker_processes 1;
pid $1/backend.pid;
error_log $1/logs/backend-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen $2;
        location / { default_type text/plain; return 200 "hello from the backend\n"; }
    }
}
CONF
}

# Prints the Python a benchmark runs with: $BERTH_PYTHON, else the repository's .venv, else the one
# scripts/ensure-python.sh prepares. Run from the repository root.
bench_python() {
    if [ -n "${BERTH_PYTHON:-}" ]; then
        echo "$BERTH_PYTHON"
    elif [ -x "$PWD/.venv/bin/python" ]; then
        echo "$PWD/.venv/bin/python"
    else
        echo "$(scripts/ensure-python.sh | tail -n 1)/bin/python"
    fi
}
