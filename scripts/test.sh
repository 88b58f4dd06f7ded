#!/usr/bin/env bash
# Every check berth has, in one command (CI runs exactly this through .ci/run):
#   Docker Engine and the pinned Python venv (installed when missing), rustfmt, clippy (-D warnings), the binary
#   (dev profile: the Rust tests build the same artifacts, so the end-to-end tests cost no second compile of the
#   tree), the demo image, the Rust test suites (nextest, or cargo test without it) and the end-to-end tests
#   (pytest: the real binary on real Docker, driven by boto3 and the AWS CLI). Release builds are for
#   scripts/demo.sh and bench/, where speed is measured.
# Prints the time of each stage and a summary; exits non-zero when any stage fails.
#
# Environment: BERTH_TEST_SKIP="fmt clippy ..." skips stages by name (for local iteration; CI skips nothing).
# Extra arguments are passed to pytest (e.g. scripts/test.sh -k lifecycle).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
SKIP=" ${BERTH_TEST_SKIP:-} "
STARTED=$SECONDS
declare -a SUMMARY=()
FAILED=""

stage() {
    local name="$1"
    shift
    if [[ "$SKIP" == *" $name "* ]]; then
        SUMMARY+=("$(printf '%-10s skipped' "$name")")
        return 0
    fi
    printf '\n\033[1m==> [%s] %s\033[0m\n' "$name" "$*"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    if [ $rc -eq 0 ]; then
        SUMMARY+=("$(printf '%-10s ok     %4ds' "$name" "$dt")")
        printf '==> [%s] ok in %ds\n' "$name" "$dt"
    else
        SUMMARY+=("$(printf '%-10s FAILED %4ds (exit %d)' "$name" "$dt" "$rc")")
        printf '==> [%s] FAILED in %ds (exit %d)\n' "$name" "$dt" "$rc"
        FAILED="$name"
    fi
    return $rc
}

summary() {
    printf '\n==> stage timings\n'
    printf '    %s\n' "${SUMMARY[@]}"
    printf '    %-10s        %4ds\n' "total" "$((SECONDS - STARTED))"
}

finish() {
    summary
    if [ -n "$FAILED" ]; then
        echo "test.sh: stage '$FAILED' failed"
        exit 1
    fi
    echo "test.sh: all stages passed"
    exit 0
}

run_or_finish() { stage "$@" || finish; }

ensure_tools() {
    scripts/ensure-tools.sh && scripts/ensure-chromium.sh
}

ensure_python() {
    VENV="$("$ROOT/scripts/ensure-python.sh" | tail -n 1)" && [ -x "$VENV/bin/python" ]
}

rust_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_PYTHON=1 BERTH_PYTHON="$VENV/bin/python" \
            cargo nextest run --workspace --no-fail-fast --no-tests=warn
    else
        echo "cargo-nextest not installed: using cargo test"
        BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_PYTHON=1 BERTH_PYTHON="$VENV/bin/python" \
            cargo test --workspace --no-fail-fast
    fi
}

e2e() {
    # Two suites, each with its own berth on its own ports, run side by side (most of their time is spent waiting on
    # deployments and health checks, not on the CPU): tests/e2e (the AWS API with boto3 and the AWS CLI) and
    # tests/ui (the berth CLI and the web console in headless Chromium). test_docker_restart stops dockerd, so it
    # runs alone after both.
    local rc=0 ui_rc=0 ui_log="$ROOT/target/ui/pytest.log"
    mkdir -p "$ROOT/target/ui"
    BERTH_BINARY="$ROOT/target/debug/berth" "$VENV/bin/python" -m pytest tests/ui -x -v --durations=10 "$@" \
        >"$ui_log" 2>&1 &
    local ui_pid=$!
    BERTH_BINARY="$ROOT/target/debug/berth" "$VENV/bin/python" -m pytest tests/e2e -x -v --durations=10 \
        --ignore=tests/e2e/test_docker_restart.py "$@" || rc=$?
    wait "$ui_pid" || ui_rc=$?
    printf '\n==> tests/ui (CLI and console), run beside tests/e2e: %s\n' "$ui_log"
    cat "$ui_log"
    if [ $rc -eq 0 ] && [ $ui_rc -eq 0 ]; then
        BERTH_BINARY="$ROOT/target/debug/berth" "$VENV/bin/python" -m pytest tests/e2e/test_docker_restart.py -x -v \
            "$@" || rc=$?
    fi
    for code in $rc $ui_rc; do
        if [ "$code" -eq 5 ]; then
            echo "pytest collected no tests: that is a failure here"
        fi
    done
    [ $rc -eq 0 ] && [ $ui_rc -eq 0 ]
}

VENV="$ROOT/.venv"
run_or_finish docker scripts/ensure-docker.sh
run_or_finish registry scripts/ensure-registry.sh
run_or_finish python ensure_python
# The user-facing suites' tools: tmux (the CLI's live display through a pseudo-terminal), Chromium and its WebDriver.
run_or_finish tools ensure_tools
run_or_finish fmt cargo fmt --all -- --check
# clippy, build and the Rust tests are independent of each other's results: run all, report every failure.
stage clippy cargo clippy --workspace --all-targets -- -D warnings
run_or_finish build cargo build --workspace --bins --tests
run_or_finish demo scripts/build-demo.sh
stage rust rust_tests
[ -n "$FAILED" ] && finish
stage e2e e2e "$@"
finish
