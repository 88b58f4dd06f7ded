#!/usr/bin/env python3
"""Deploy latency: berth vs. the floor on the same machine, in the same run.

berth:  from the CreateExpressGatewayService call (boto3) to the first 200 through the service's HTTPS endpoint
        (berth's proxy, TLS verified against berth's CA); each round creates, measures and deletes a service.
floor:  `docker run -d` of the same image to its first 200 on the container's IP, direct (no proxy, no TLS).

Both are polled the same way (a new connection every 10 ms). One untimed warm-up round of each comes first.
Prints a markdown table and the ratio, and writes it to bench/out/deploy.md.

Usage: bench/run.sh [--rounds N]   (builds nothing; needs target/release/berth and berth-demo:latest)
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from berthlib import DEMO_IMAGE, BerthInstance, Ports, docker, unique  # noqa: E402

POLL = 0.01
TIMEOUT = 120.0


def first_200(probe, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe() == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(POLL)
    raise RuntimeError(f"no 200 within {timeout:.0f}s")


def berth_round(berth: BerthInstance, ecs) -> float:
    name = unique("bench")
    container = {"image": DEMO_IMAGE}
    t0 = time.perf_counter()
    svc = ecs.create_express_gateway_service(serviceName=name, primaryContainer=container, **berth.role_arns())
    arn = svc["service"]["serviceArn"]
    try:
        endpoint = None
        for config in svc["service"].get("activeConfigurations") or []:
            for path in config.get("ingressPaths") or []:
                endpoint = endpoint or path.get("endpoint")
        deadline = time.monotonic() + TIMEOUT
        while not endpoint:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{arn}: no endpoint within {TIMEOUT:.0f}s")
            time.sleep(POLL)
            described = ecs.describe_express_gateway_service(serviceArn=arn)["service"]
            for config in described.get("activeConfigurations") or []:
                for path in config.get("ingressPaths") or []:
                    endpoint = endpoint or path.get("endpoint")
        host = endpoint.removeprefix("https://").split("/")[0].split(":")[0]
        first_200(lambda: berth.https_get(host, "/", timeout=2).status)
        return time.perf_counter() - t0
    finally:
        ecs.delete_express_gateway_service(serviceArn=arn)
        berth.wait_inactive(arn, timeout=berth.drain_timeout_secs + 60)


def floor_round() -> float:
    t0 = time.perf_counter()
    cid = docker("run", "-d", "--label", "berth.bench=floor", DEMO_IMAGE).stdout.strip()
    try:
        ip = ""
        deadline = time.monotonic() + TIMEOUT
        while not ip:
            if time.monotonic() > deadline:
                raise RuntimeError(f"container {cid[:12]} has no IP")
            ip = docker(
                "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid
            ).stdout.strip()
            if not ip:
                time.sleep(POLL)

        def probe() -> int:
            conn = http.client.HTTPConnection(ip, 80, timeout=2)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                return resp.status
            finally:
                conn.close()

        first_200(probe)
        return time.perf_counter() - t0
    finally:
        docker("rm", "-f", cid, check=False)


def remove_floor_containers() -> None:
    """Removes what a failed `floor_round` may have left."""
    for row in docker("ps", "-aq", "--filter", "label=berth.bench=floor", check=False).stdout.split():
        docker("rm", "-f", row, check=False)


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "berth"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "deploy.md"))
    args = ap.parse_args()

    if subprocess.run(["docker", "image", "inspect", DEMO_IMAGE], capture_output=True).returncode != 0:
        print(f"{DEMO_IMAGE} is missing: run scripts/build-demo.sh", file=sys.stderr)
        return 2

    berth = BerthInstance(
        binary=Path(args.binary),
        ports=Ports.from_env("BERTH_BENCH", (29443, 28443, 28080, 29444)),
        drain_timeout_secs=2,
    )
    print(f"starting berth ({args.binary}) in {berth.data_dir}", flush=True)
    berth.start()
    berth_times: list[float] = []
    floor_times: list[float] = []
    try:
        ecs = berth.ecs()
        print("warm-up (not counted)", flush=True)
        floor_round()
        berth_round(berth, ecs)
        # interleave the two so that machine noise hits both alike
        for i in range(args.rounds):
            floor_times.append(floor_round())
            berth_times.append(berth_round(berth, ecs))
            print(f"round {i + 1:2d}: floor {floor_times[-1] * 1000:7.0f} ms   berth {berth_times[-1] * 1000:7.0f} ms",
                  flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"benchmark failed: {exc}\n--- berth log tail ---\n{berth.log_tail(40)}", file=sys.stderr)
        return 1
    finally:
        berth.cleanup()
        remove_floor_containers()

    b, f = stats(berth_times), stats(floor_times)
    ratio = b["median"] / f["median"]
    docker_version = docker("version", "--format", "{{.Server.Version}}", check=False).stdout.strip()
    git_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
    lines = [
        f"### Deploy latency (median of {args.rounds})",
        "",
        f"{datetime.date.today().isoformat()}, commit {git_rev or '?'}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Docker {docker_version}, image `{DEMO_IMAGE}`.",
        "",
        "| what | median | min | max |",
        "|---|---:|---:|---:|",
        f"| floor: `docker run -d` → first 200 on the container IP, direct | {f['median'] * 1000:.0f} ms "
        f"| {f['min'] * 1000:.0f} ms | {f['max'] * 1000:.0f} ms |",
        f"| berth: `CreateExpressGatewayService` → first 200 through `https://<endpoint>` | "
        f"{b['median'] * 1000:.0f} ms | {b['min'] * 1000:.0f} ms | {b['max'] * 1000:.0f} ms |",
        "",
        f"**Ratio berth / floor (medians): {ratio:.2f}×** (target ≤ 1.5×).",
        "",
        "Both polled with a new connection every 10 ms; one untimed warm-up round each; rounds interleaved.",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    (out.with_suffix(".json")).write_text(
        json.dumps({"berth_s": berth_times, "floor_s": floor_times, "ratio": ratio}, indent=2) + "\n"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
