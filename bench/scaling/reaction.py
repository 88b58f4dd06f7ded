#!/usr/bin/env python3
"""Scale-out reaction: load start → the new task serving its first request, with the breakdown from the APIs.

Each run: a fresh Express service (demo image) with `scalingTarget` REQUEST_COUNT_PER_TARGET, min 1, max 2, a low
target (60 requests per target per minute by default); once it serves, bounded loopback load (threads, a new TLS
connection per request through berth's proxy) until a response carries a second `x-demo-host`; then the load stops
and the service is deleted (its tasks waited for). The stages, each from the one before:

  detection      load start → AlarmHigh's transition to ALARM   (cloudwatch DescribeAlarmHistory, StateUpdate)
  decision       → the scaling activity's StartTime             (application-autoscaling DescribeScalingActivities)
  container      → the new task's startedAt                     (ecs DescribeTasks; createdAt when startedAt is absent)
  health+route   → the first response from the new host         (client clock)

All clocks are this machine's (berth runs here). Each load starts after a random wait (`--jitter`, 0..10 s), so its
phase against the alarm's clock-aligned 10-s periods varies from run to run. Prints a markdown table (per run and the median) and writes it to
bench/out/reaction.md.

Usage: bench/scaling/run.sh [--runs 5] [--target 60] [--threads 4]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from berthlib import BerthInstance, Ports, pick_free_ports, unique, wait_for  # noqa: E402

STAGES = ("detection", "decision", "container", "health+route")


class Load:
    """`threads` loops of GET / through the proxy, each pausing `pause` s; bounded by `max_seconds`. Records
    (sent, received, status, x-demo-host) and sets `second_host` when a host other than `first_host` answers."""

    def __init__(self, berth, endpoint, first_host, threads, pause, max_seconds):
        self.berth, self.endpoint, self.first_host = berth, endpoint, first_host
        self.threads, self.pause, self.max_seconds = threads, pause, max_seconds
        self.results: list[tuple[float, float, int, str | None]] = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.second_host = threading.Event()
        self.new_host_at: float | None = None
        self.started_at: float | None = None
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        self.started_at = time.time()
        for w in self.workers:
            w.start()

    def stop(self) -> None:
        self.stop_ev.set()
        for w in self.workers:
            w.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            sent = time.time()
            try:
                r = self.berth.https_get(self.endpoint, "/", timeout=5)
                status, host = r.status, r.header("x-demo-host")
            except Exception:  # noqa: BLE001 - every failure is recorded
                status, host = 0, None
            received = time.time()
            with self.lock:
                self.results.append((sent, received, status, host))
                if status == 200 and host and host != self.first_host and self.new_host_at is None:
                    self.new_host_at = received
                    self.second_host.set()
            time.sleep(self.pause)

    def failures(self) -> int:
        return sum(1 for r in self.results if r[2] != 200)


def ts(value) -> float:
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


def one_run(berth: BerthInstance, args) -> dict:
    ecs, cw, aas = berth.ecs(), berth.client("cloudwatch"), berth.client("application-autoscaling")
    name = unique("react")
    arn = berth.create_service(
        name,
        scalingTarget={
            "minTaskCount": 1,
            "maxTaskCount": 2,
            "autoScalingMetric": "REQUEST_COUNT_PER_TARGET",
            "autoScalingTargetValue": args.target,
        },
    )["serviceArn"]
    resource_id = f"service/default/{name}"
    try:
        endpoint = berth.wait_endpoint(arn, timeout=90)
        first = berth.wait_status(endpoint, 200, "/", timeout=90)
        first_host = first.header("x-demo-host")
        first_tasks = set(berth.task_arns(name))
        policies = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"]
        high = [a["AlarmName"] for p in policies for a in p.get("Alarms", []) if "-AlarmHigh-" in a["AlarmName"]]
        assert len(high) == 1, policies
        high_name = high[0]
        state_before = cw.describe_alarms(AlarmNames=[high_name])["MetricAlarms"][0]["StateValue"]
        assert state_before != "ALARM", f"{high_name} already in ALARM before the load"

        # The alarm's 10-s periods are aligned to the clock: without a random phase, runs of equal length start
        # their load at the same point of a period and measure the same detection time over and over.
        time.sleep(random.uniform(0, args.jitter))
        load = Load(berth, endpoint, first_host, args.threads, args.pause, args.timeout + 10)
        load.start()
        t0 = load.started_at
        try:
            if not load.second_host.wait(args.timeout):
                raise RuntimeError(f"no second host within {args.timeout} s (tasks: {berth.task_arns(name)})")
        finally:
            load.stop()
        t_new = load.new_host_at
        requests, failures = len(load.results), load.failures()

        history = cw.describe_alarm_history(
            AlarmName=high_name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending"
        )["AlarmHistoryItems"]
        to_alarm = [
            ts(i["Timestamp"])
            for i in history
            if json.loads(i["HistoryData"])["newState"]["stateValue"] == "ALARM" and ts(i["Timestamp"]) >= t0 - 1
        ]
        activities = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource_id)[
            "ScalingActivities"
        ]
        scale_outs = [
            ts(a["StartTime"])
            for a in activities
            if "AlarmHigh" in a.get("Cause", "") and a["StatusCode"] == "Successful" and ts(a["StartTime"]) >= t0 - 1
        ]
        new_arns = [a for a in berth.task_arns(name) if a not in first_tasks]
        new_tasks = berth.describe_tasks(new_arns) if new_arns else []
        started = [ts(t.get("startedAt") or t["createdAt"]) for t in new_tasks]
        created = [ts(t["createdAt"]) for t in new_tasks]
        if not (to_alarm and scale_outs and started):
            raise RuntimeError(f"missing evidence: alarm {to_alarm}, activities {activities}, new tasks {new_tasks}")
        marks = [t0, min(to_alarm), min(scale_outs), min(started), t_new]
        return {
            "name": name,
            "total": t_new - t0,
            "stages": [b - a for a, b in zip(marks, marks[1:])],
            "created_to_started": min(started) - min(created),
            "requests": requests,
            "failures": failures,
        }
    finally:
        berth.best_effort_delete(arn)
        try:
            berth.wait_inactive(arn, timeout=120)
            wait_for(f"{name}'s tasks to stop", lambda: not berth.task_arns(name), timeout=120, interval=1)
        except AssertionError as exc:
            print(f"warning: {exc}", file=sys.stderr)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cpus ({cpu}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def table(runs: list[dict]) -> str:
    head = "| run | " + " | ".join(STAGES) + " | total (load → new host) | requests | failed |"
    rows = [head, "|---|" + "---:|" * (len(STAGES) + 3)]
    for i, r in enumerate(runs, 1):
        cells = " | ".join(f"{s:.2f} s" for s in r["stages"])
        rows.append(f"| {i} | {cells} | {r['total']:.2f} s | {r['requests']} | {r['failures']} |")
    med = [statistics.median(r["stages"][k] for r in runs) for k in range(len(STAGES))]
    total = statistics.median(r["total"] for r in runs)
    rows.append("| **median** | " + " | ".join(f"{s:.2f} s" for s in med) + f" | **{total:.2f} s** | | |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--target", type=float, default=60, help="requests per target per minute")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between one thread's requests")
    ap.add_argument("--jitter", type=float, default=10, help="random wait (0..N s) before each load start")
    ap.add_argument("--timeout", type=float, default=120, help="seconds a run may wait for the second host")
    args = ap.parse_args()

    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    api, https, http_, internal = pick_free_ports(4)
    berth = BerthInstance(binary=binary, ports=Ports(api=api, https=https, http=http_, internal=internal))
    runs: list[dict] = []
    before = machine()
    try:
        berth.start()
        berth.ensure_express_roles()
        for i in range(args.runs):
            r = one_run(berth, args)
            runs.append(r)
            print(
                f"run {i + 1}: total {r['total']:.1f} s = "
                + " + ".join(f"{n} {s:.2f}" for n, s in zip(STAGES, r["stages"]))
                + f" (task created→started {r['created_to_started']:.2f} s; {r['requests']} requests, {r['failures']} failed)",
                flush=True,
            )
    finally:
        berth.cleanup()
    out = [
        f"binary: {binary}",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine (start): {before}",
        f"machine (end): {machine()}",
        f"runs {args.runs}, target {args.target:g} requests/target/minute, {args.threads} threads × pause {args.pause} s,"
        f" load start at a random 0..{args.jitter:g} s phase",
        "",
        table(runs),
    ]
    text = "\n".join(out)
    print(text)
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "reaction.md").write_text(text + "\n")
    return 0 if all(r["failures"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
