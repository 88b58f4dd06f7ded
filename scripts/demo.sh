#!/usr/bin/env bash
# berth in one command: image in, HTTPS URL out.
#
# On a fresh Debian 12 machine (as root) this installs and starts Docker Engine if needed, sets up a Python venv
# with the pinned AWS CLI, builds berth and the demo image, starts `berth up` in the background (unless it is
# already running), creates an Express service from berth-demo:latest with the real AWS CLI, and prints the
# service's https:// URL and the app's answer fetched through it with curl --cacert (berth's own CA).
# Idempotent: a second run reuses the running berth and the ACTIVE service named "demo".
#
# Environment: BERTH_DATA_DIR (default ~/.berth), BERTH_DEMO_SERVICE (default demo), BERTH_UP_ARGS (extra
# flags for `berth up` and `berth env`, e.g. "--config berth.toml").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA_DIR="${BERTH_DATA_DIR:-$HOME/.berth}"
export BERTH_DATA_DIR="$DATA_DIR"
SERVICE="${BERTH_DEMO_SERVICE:-demo}"
IMAGE="${BERTH_DEMO_IMAGE:-berth-demo:latest}"
read -r -a UP_ARGS <<<"${BERTH_UP_ARGS:-}"
BERTH="$ROOT/target/release/berth"
LOG="$DATA_DIR/berth.log"
PIDFILE="$DATA_DIR/berth-up.pid"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

step "Docker Engine"
"$ROOT/scripts/ensure-docker.sh"

step "Python venv with the AWS CLI"
VENV="$("$ROOT/scripts/ensure-python.sh" | tail -n 1)"
export PATH="$VENV/bin:$PATH"

step "Rust toolchain"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) and run again"
cargo --version

step "Build berth"
cargo build --release -p berth

step "Build the demo image ($IMAGE)"
"$ROOT/scripts/build-demo.sh"

step "Start berth"
mkdir -p "$DATA_DIR"
running_pid=""
if [ -f "$PIDFILE" ]; then
    pid="$(cat "$PIDFILE")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q 'berth' "/proc/$pid/cmdline" 2>/dev/null; then
        running_pid="$pid"
    fi
fi
eval_env() {
    local out
    out="$("$BERTH" env --data-dir "$DATA_DIR" "${UP_ARGS[@]}" 2>/dev/null)" || return 1
    eval "$out"
}
api_answers() { eval_env && aws ecs list-clusters --cli-connect-timeout 2 --cli-read-timeout 5 >/dev/null 2>&1; }

if [ -n "$running_pid" ]; then
    echo "berth is already running (pid $running_pid, log $LOG)"
elif [ -f "$DATA_DIR/credentials" ] && api_answers; then
    running_pid="unknown"
    echo "a berth for $DATA_DIR is already answering; using it"
else
    nohup "$BERTH" up --data-dir "$DATA_DIR" "${UP_ARGS[@]}" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    echo "started berth up (pid $!, log $LOG)"
fi

# Wait (bounded) until `berth env` works and the API answers a signed call.
deadline=$((SECONDS + 60))
until api_answers; do
    if [ -z "$running_pid" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        tail -n 30 "$LOG" >&2
        die "berth up exited; last lines of $LOG above"
    fi
    if [ $SECONDS -ge $deadline ]; then
        tail -n 30 "$LOG" >&2
        die "the berth API did not answer within 60 s; last lines of $LOG above"
    fi
    sleep 0.5
done
echo "API: $AWS_ENDPOINT_URL (account $BERTH_ACCOUNT_ID, CA $AWS_CA_BUNDLE)"

step "Create the two roles (the AWS documentation's CLI flow), unless they exist"
for spec in "ecsTaskExecutionRole ecs-tasks.amazonaws.com AmazonECSTaskExecutionRolePolicy" \
    "ecsInfrastructureRoleForExpressServices ecs.amazonaws.com AmazonECSInfrastructureRoleforExpressGatewayServices"; do
    set -- $spec
    if ! aws iam get-role --role-name "$1" >/dev/null 2>&1; then
        (
            set -x
            aws iam create-role --role-name "$1" --query 'Role.Arn' --output text --assume-role-policy-document \
                "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"$2\"},\"Action\":\"sts:AssumeRole\"}]}"
            aws iam attach-role-policy --role-name "$1" --policy-arn "arn:aws:iam::aws:policy/service-role/$3"
        )
    fi
done

step "Create the Express service \"$SERVICE\" with the AWS CLI"
service_arn="arn:aws:ecs:${AWS_DEFAULT_REGION}:${BERTH_ACCOUNT_ID}:service/default/${SERVICE}"
status="$(aws ecs describe-express-gateway-service --service-arn "$service_arn" \
    --query 'service.status.statusCode' --output text 2>/dev/null || true)"
if [ "$status" = "ACTIVE" ]; then
    echo "service $SERVICE is already ACTIVE: reusing it"
else
    (
        set -x
        aws ecs create-express-gateway-service \
            --primary-container "image=$IMAGE" \
            --execution-role-arn "arn:aws:iam::${BERTH_ACCOUNT_ID}:role/ecsTaskExecutionRole" \
            --infrastructure-role-arn "arn:aws:iam::${BERTH_ACCOUNT_ID}:role/ecsInfrastructureRoleForExpressServices" \
            --service-name "$SERVICE" \
            --query 'service.serviceArn' --output text
    )
fi

endpoint=""
deadline=$((SECONDS + 60))
while [ -z "$endpoint" ] || [ "$endpoint" = "None" ]; do
    [ $SECONDS -lt $deadline ] || die "no endpoint in describe-express-gateway-service after 60 s"
    endpoint="$(aws ecs describe-express-gateway-service --service-arn "$service_arn" \
        --query 'service.activeConfigurations[0].ingressPaths[0].endpoint' --output text 2>/dev/null || true)"
    [ -n "$endpoint" ] && [ "$endpoint" != "None" ] || sleep 0.5
done
endpoint="${endpoint#https://}"
endpoint="${endpoint%%/*}"

# The proxy's HTTPS port: the default is 443; a config/flag may move it.
https_port=443
for ((i = 0; i < ${#UP_ARGS[@]}; i++)); do
    if [ "${UP_ARGS[$i]}" = "--https-listen" ]; then https_port="${UP_ARGS[$((i + 1))]##*:}"; fi
done
url="https://$endpoint"
[ "$https_port" = 443 ] || url="https://$endpoint:$https_port"

step "Fetch $url through berth's HTTPS proxy"
deadline=$((SECONDS + 30))
until answer="$(curl -sS --fail --include --max-time 5 --cacert "$AWS_CA_BUNDLE" "$url/" 2>&1)"; do
    if [ $SECONDS -ge $deadline ]; then
        echo "$answer" >&2
        die "$url did not answer 200 within 30 s (log: $LOG)"
    fi
    sleep 0.5
done

step "Done: the app's answer through $url"
echo "$answer" | tr -d '\r' | grep -iv '^\(date\|content-length\):' | head -n 20
echo
echo "Service URL: $url"
echo "Try:  curl --cacert $AWS_CA_BUNDLE $url/ping"
echo "      eval \"\$($BERTH env --data-dir $DATA_DIR)\" && aws ecs describe-express-gateway-service --service-arn $service_arn"
echo "Stop: kill \$(cat $PIDFILE)"
