#!/usr/bin/env python3
"""Update latency: UpdateExpressGatewayService → 100% on the new revision → old tasks gone, next to the floor.

One berth (`[deploy] canary_bake_secs` / `bake_secs` from the flags, 0 and 0 by default) and one Express service of
the demo image. Each round updates it with a new `DEMO_VERSION` while a request loop runs through the HTTPS
endpoint (a new TLS connection per request, berth's CA verified), reading `x-demo-version`, and records:

  first new       the call → the first response from the new version        (client clock)
  100% new        the call → the first response after which every response is the new version (the loop keeps
                  running 2 s after the old tasks are gone, so "every" is checked, not assumed)
  new share       of the 200s between "first new" and "100% new", the share from the new version (the canary's
                  share as the client saw it)
  old tasks gone  the call → every container of the tasks that ran before the call is gone from `docker ps`
                  (polled every 20 ms), confirmed by DescribeTasks showing them STOPPED

Floor (the same run, interleaved): `docker run -d` of the same image → its first 200 on the container's IP,
direct (bench/deploy.py's `floor_round`). Prints medians, the ratio "old tasks gone" / floor (target ≤ 2× with
bakes 0), failed requests, and writes a markdown table to bench/out/update.md.

With `--canary-bake 180 --bake 180` (AWS's defaults) one round measures the total time to compare with the 10–12
minutes AWS users report (express-mode reference §4.2).

Usage: bench/deploy/run.sh [--rounds 5] [--canary-bake 0] [--bake 0] [--drain 30] [--pause 0.01]
       (builds nothing; BERTH_BINARY selects the binary, default target/release/berth; needs berth-demo:latest)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from berthlib import DEMO_IMAGE, BerthInstance, Ports, docker, pick_free_ports, unique, wait_for  # noqa: E402


def _create_bench():
    """bench/deploy.py (the create benchmark), loaded by path for its floor: one `docker run -d` → first 200 on
    the container IP, direct."""
    spec = importlib.util.spec_from_file_location("bench_deploy_create", ROOT / "bench" / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_create = _create_bench()
floor_round, remove_floor_containers = _create.floor_round, _create.remove_floor_containers


class Loop:
    """GET / through the proxy on a new TLS connection each time, until stopped (bounded by `max_seconds`).
    Records (monotonic time the response arrived, status, x-demo-version)."""

    def __init__(self, berth: BerthInstance, host: str, pause: float, max_seconds: float):
        self.berth, self.host, self.pause, self.max_seconds = berth, host, pause, max_seconds
        self.results: list[tuple[float, int, str | None]] = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_ev.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                r = self.berth.https_get(self.host, "/", timeout=5)
                status, version = r.status, r.header("x-demo-version")
            except Exception:  # noqa: BLE001 - every failure is recorded
                status, version = 0, None
            with self.lock:
                self.results.append((time.monotonic(), status, version))
            time.sleep(self.pause)

    def snapshot(self) -> list[tuple[float, int, str | None]]:
        with self.lock:
            return list(self.results)

    def first_of(self, version: str, after: float) -> float | None:
        return next((t for t, s, v in self.snapshot() if t >= after and s == 200 and v == version), None)


def all_new_since(results: list[tuple[float, int, str | None]], version: str, after: float) -> float | None:
    """The arrival of the first response after `after` from which on every response is a 200 from `version`."""
    mark = None
    for t, status, v in results:
        if t < after:
            continue
        if status == 200 and v == version:
            if mark is None:
                mark = t
        else:
            mark = None
    return mark


def containers_of(task_arns: list[str]) -> set[str]:
    """The running containers of the tasks (berth names a task's container `berth-task-<task id>`)."""
    wanted = {f"berth-task-{a.rsplit('/', 1)[-1]}" for a in task_arns}
    running = docker("ps", "--format", "{{.Names}}", check=False).stdout.split()
    return wanted & set(running)


def deployment_status(berth: BerthInstance, service_arn: str) -> str | None:
    """The newest deployment's status, if this berth has the deployment APIs."""
    try:
        ecs = berth.ecs()
        arns = ecs.list_service_deployments(service=service_arn, cluster="default").get("serviceDeployments", [])
        if not arns:
            return None
        return arns[0].get("status")
    except Exception:  # noqa: BLE001 - an older berth answers UnsupportedFeature
        return None


def update_round(berth: BerthInstance, svc: dict, version: str, args) -> dict:
    ecs = berth.ecs()
    name, arn, host = svc["name"], svc["arn"], svc["endpoint"]
    old_tasks = berth.task_arns(name)
    if not old_tasks:
        raise RuntimeError(f"{name} runs no task before the update")
    budget = args.canary_bake + args.bake + 180
    with Loop(berth, host, args.pause, budget + 60) as loop:
        wait_for(f"{name} to answer through the loop", lambda: loop.first_of(svc["version"], 0.0), 30, 0.05)
        t0 = time.monotonic()
        wall0 = time.time()
        ecs.update_express_gateway_service(
            serviceArn=arn,
            primaryContainer={"image": DEMO_IMAGE, "environment": [{"name": "DEMO_VERSION", "value": version}]},
        )
        t_call = time.monotonic() - t0

        def old_gone() -> float | None:
            # `docker ps` first (one cheap call): the API is asked only once the containers are gone, so the
            # poll's own cost stays small next to what it measures.
            if containers_of(old_tasks):
                return None
            at = time.monotonic()
            tasks = berth.describe_tasks(old_tasks)
            if any(t.get("lastStatus") != "STOPPED" for t in tasks):
                return None
            return at

        t_gone = wait_for(f"{name}'s old tasks to be gone", old_gone, budget, interval=0.02)
        time.sleep(2.0)  # the loop keeps reading: 100% must still hold after the old tasks are gone
        results = loop.snapshot()
    t_first = next((t for t, s, v in results if t >= t0 and s == 200 and v == version), None)
    t_all = all_new_since(results, version, t0)
    if t_first is None or t_all is None:
        tail = results[-10:]
        raise RuntimeError(f"{version}: no steady new version (first {t_first}, all {t_all}); last responses {tail}")
    during = [r for r in results if r[0] >= t0]
    failed = [r for r in during if r[1] != 200]
    # Between the first new response and 100%: the canary's share, as the client saw it.
    mixed = [r for r in during if t_first <= r[0] < t_all and r[1] == 200]
    share = sum(1 for r in mixed if r[2] == version) / len(mixed) if mixed else None
    svc["version"] = version
    return {
        "version": version,
        "started": wall0,
        "call": t_call,
        "first_new": t_first - t0,
        "all_new": t_all - t0,
        "old_gone": t_gone - t0,
        "canary_share": share,
        "canary_requests": len(mixed),
        "requests": len(during),
        "failed": len(failed),
        "deployment": deployment_status(berth, arn),
    }


def machine() -> str:
    load = os.getloadavg()
    docker_version = docker("version", "--format", "{{.Server.Version}}", check=False).stdout.strip()
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cpus, Docker {docker_version}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def share(r: dict) -> str:
    if r["canary_share"] is None:
        return "-"
    return f"{r['canary_share'] * 100:.1f}% of {r['canary_requests']}"


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--canary-bake", type=int, default=0, help="[deploy] canary_bake_secs")
    ap.add_argument("--bake", type=int, default=0, help="[deploy] bake_secs")
    ap.add_argument("--drain", type=int, default=30, help="[deploy] drain_timeout_secs (berth's default 30)")
    ap.add_argument("--pause", type=float, default=0.01, help="seconds between the loop's requests")
    ap.add_argument("--no-floor", action="store_true", help="skip the docker run floor")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "update.md"))
    args = ap.parse_args()

    if subprocess.run(["docker", "image", "inspect", DEMO_IMAGE], capture_output=True).returncode != 0:
        print(f"{DEMO_IMAGE} is missing: run scripts/build-demo.sh", file=sys.stderr)
        return 2
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    api, https, http_, internal = pick_free_ports(4)
    kw: dict = {"drain_timeout_secs": args.drain}
    fields = {f.name for f in dataclasses.fields(BerthInstance)}
    bakes_set = {"canary_bake_secs", "bake_secs"} <= fields
    if bakes_set:
        kw.update(canary_bake_secs=args.canary_bake, bake_secs=args.bake)
    else:
        print("warning: this berthlib cannot set [deploy] bakes; berth's defaults apply", file=sys.stderr)
    berth = BerthInstance(binary=binary, ports=Ports(api=api, https=https, http=http_, internal=internal), **kw)
    rounds: list[dict] = []
    floors: list[float] = []
    before = machine()
    print(f"starting berth ({binary}) in {berth.data_dir}", flush=True)
    try:
        berth.start()
        name = unique("upd")
        arn = berth.create_service(name, environment={"DEMO_VERSION": "v0"})["serviceArn"]
        endpoint = berth.wait_endpoint(arn, timeout=90)
        berth.wait_status(endpoint, 200, "/", timeout=90)
        svc = {"name": name, "arn": arn, "endpoint": endpoint, "version": "v0"}
        if not args.no_floor:
            floor_round()  # warm-up, not counted
        for i in range(1, args.rounds + 1):
            if not args.no_floor:
                floors.append(floor_round())
            r = update_round(berth, svc, f"v{i}", args)
            rounds.append(r)
            floor = f"floor {ms(floors[-1])}   " if floors else ""
            print(
                f"round {i}: {floor}first new {ms(r['first_new'])}, 100% new {ms(r['all_new'])}, "
                f"old tasks gone {ms(r['old_gone'])} (call {ms(r['call'])}; new share before 100% {share(r)}; "
                f"{r['requests']} requests, "
                f"{r['failed']} failed; deployment {r['deployment']})",
                flush=True,
            )
        berth.delete_service(arn, wait=False)
    except Exception as exc:  # noqa: BLE001
        print(f"benchmark failed: {exc}\n--- berth log tail ---\n{berth.log_tail(40)}", file=sys.stderr)
        return 1
    finally:
        berth.cleanup()
        remove_floor_containers()

    med = {k: statistics.median(r[k] for r in rounds) for k in ("first_new", "all_new", "old_gone")}
    git_rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    bakes = f"canary_bake_secs {args.canary_bake}, bake_secs {args.bake}" if bakes_set else "bakes: berth's defaults"
    lines = [
        f"### Update latency ({bakes}; median of {len(rounds)})",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_rev or '?'}, binary "
        f"`{binary}`, drain_timeout_secs {args.drain}, request loop pause {args.pause} s.",
        f"Machine at start: {before}. At end: {machine()}.",
        "",
        "| round | first new | 100% new | old tasks gone | new share before 100% | requests | failed | deployment |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(rounds, 1):
        lines.append(
            f"| {i} | {ms(r['first_new'])} | {ms(r['all_new'])} | {ms(r['old_gone'])} | {share(r)} | {r['requests']} "
            f"| {r['failed']} | {r['deployment'] or '-'} |"
        )
    lines.append(
        f"| **median** | {ms(med['first_new'])} | {ms(med['all_new'])} | **{ms(med['old_gone'])}** | | | | |"
    )
    if args.canary_bake or args.bake:
        total = med["old_gone"]
        lines += [
            "",
            f"**Total (call → old tasks gone): {total / 60:.1f} min**, of which the bakes are "
            f"{(args.canary_bake + args.bake) / 60:.1f} min; AWS users report 10–12 minutes for the same update "
            f"with these bakes (express-mode reference §4.2): {10 * 60 / total:.1f}–{12 * 60 / total:.1f}× berth's.",
        ]
    if floors:
        f = statistics.median(floors)
        lines += [
            "",
            f"Floor (`docker run -d` → first 200 on the container IP, direct; median of {len(floors)}, rounds "
            f"interleaved): **{ms(f)}** (min {ms(min(floors))}, max {ms(max(floors))}).",
            "",
            f"**Ratio old tasks gone / floor: {med['old_gone'] / f:.2f}×**; 100% new / floor: "
            f"{med['all_new'] / f:.2f}×" + (" (target ≤ 2× with bakes 0)." if not (args.canary_bake or args.bake) else "."),
        ]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"rounds": rounds, "floor_s": floors}, indent=2) + "\n")
    print(f"written to {out}")
    return 0 if all(r["failed"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
