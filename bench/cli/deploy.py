#!/usr/bin/env python3
"""`berth deploy` next to the AWS CLI: image → a URL that answers, as a user of each tool sees it.

One berth (bakes 0) with AWS's two default roles. Each round, interleaved:

  berth deploy    `berth deploy berth-demo:latest --name <n>`: the process's whole run (it watches the deployment
                  to SUCCESSFUL and prints the URL last), then the first 200 on that URL through the proxy
  aws (peer)      `aws ecs create-express-gateway-service ...` (the pinned AWS CLI, the same berth), then
                  GET /ping through the proxy every 20 ms until the first 200 (the endpoint from the answer)

Both end on a 200 from the new service through the HTTPS load balancer with berth's CA verified. Prints medians
and the ratio berth deploy / aws, and writes a markdown table to bench/out/cli-deploy.md.

Usage: bench/cli/run.sh [--rounds 5]
       (builds nothing; BERTH_BINARY selects the binary, default target/release/berth; needs berth-demo:latest)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from berthlib import DEMO_IMAGE, BerthInstance, Ports, pick_free_ports, strip_scheme, unique, wait_for  # noqa: E402


def first_200(berth: BerthInstance, host: str, timeout: float = 60) -> float:
    """Polls GET /ping through the proxy every 20 ms; returns the monotonic time of the first 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if berth.https_get(host, "/ping", timeout=2).status == 200:
                return time.monotonic()
        except Exception:  # noqa: BLE001 - not yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"{host} never answered 200 within {timeout} s")


def berth_round(berth: BerthInstance, name: str) -> float:
    t0 = time.monotonic()
    run = berth.berth_cli("deploy", DEMO_IMAGE, "--name", name, "--yes", timeout=120)
    if run.returncode != 0:
        raise AssertionError(f"berth deploy exited {run.returncode}: {run.stderr[-2000:]}")
    url = run.stdout.strip().splitlines()[-1]
    return first_200(berth, strip_scheme(url)) - t0


def aws_round(berth: BerthInstance, name: str, roles: dict[str, str]) -> float:
    t0 = time.monotonic()
    out = berth.aws(
        "ecs",
        "create-express-gateway-service",
        "--service-name",
        name,
        "--primary-container",
        json.dumps({"image": DEMO_IMAGE}),
        "--execution-role-arn",
        roles["executionRoleArn"],
        "--infrastructure-role-arn",
        roles["infrastructureRoleArn"],
    )
    service = out["service"]
    host = next(
        p["endpoint"] for c in service.get("activeConfigurations", []) for p in c.get("ingressPaths", [])
    ) if service.get("activeConfigurations") else berth.wait_endpoint(service["serviceArn"])
    return first_200(berth, strip_scheme(host)) - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    berth = BerthInstance(binary=binary, ports=Ports(*pick_free_ports(4)))
    berth.start()
    results: dict[str, list[float]] = {"berth deploy": [], "aws": []}
    try:
        # Warm-up: the CLI creates AWS's two default roles (asked first; --yes answers), and one service of each
        # tool is deployed and removed, so the image and the load balancer exist before anything is timed.
        warm = unique("warm")
        berth_round(berth, warm)
        roles = berth.role_arns()
        aws_round(berth, unique("warmaws"), roles)
        for i in range(args.rounds):
            results["berth deploy"].append(berth_round(berth, unique(f"cli{i}")))
            results["aws"].append(aws_round(berth, unique(f"aws{i}"), roles))
            print(f"round {i + 1}: berth deploy {results['berth deploy'][-1]:.2f} s, aws {results['aws'][-1]:.2f} s")
    finally:
        berth.stop()
        berth.remove_containers()
    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["berth deploy"] / med["aws"]
    lines = [
        f"# berth deploy vs the AWS CLI ({platform.node()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"image → first 200 through the HTTPS load balancer, median of {args.rounds} interleaved rounds, bakes 0",
        "",
        "| tool | median (s) | rounds (s) |",
        "|---|---|---|",
        *(f"| {k} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |" for k, v in results.items()),
        "",
        f"ratio berth deploy / aws: {ratio:.2f}×",
    ]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli-deploy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
