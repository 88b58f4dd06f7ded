#!/usr/bin/env python3
"""Live tail: what a session costs the ingest gate, and how late an event reaches it.

ingest:   PutLogEvents calls (100 events each, one stream, boto3, sequential) per second with no live-tail session
          open (the baseline) and with SESSIONS sessions open on the group, rounds interleaved; the ratio is the
          cost of the broadcast hub and the sessions' filtering as a client sees it.
latency:  PutLogEvents of one event → that event in a session's `sessionUpdate` (botocore's decoder, a reader
          thread), median and p95 of N, next to the PutLogEvents call's own round trip (the peer: what any write
          costs the same client in the same run).

Usage: BERTH_BINARY=target/debug/berth python bench/live_tail.py [--rounds 5] [--calls 200] [--sessions 5] [-n 50]
Writes bench/out/live_tail.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from botocore.config import Config  # noqa: E402

from berthlib import BerthInstance, Ports, unique  # noqa: E402


def client(berth: BerthInstance):
    config = Config(inject_host_prefix=False, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return berth.client("logs", config=config)


class Session:
    def __init__(self, logs, group: str):
        self.stream = logs.start_live_tail(logGroupIdentifiers=[group])["responseStream"]
        self.seen: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for event in self.stream:
                for e in event.get("sessionUpdate", {}).get("sessionResults", []):
                    self.seen.put((time.perf_counter(), e["message"]))
        except Exception:  # noqa: BLE001 - closed
            pass

    def close(self):
        self.stream.close()


def put(logs, group: str, messages: list[str]) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": m} for m in messages],
    )


def ingest_rate(logs, group: str, calls: int) -> float:
    batch = [f"bench line {i} " + "x" * 100 for i in range(100)]
    t0 = time.perf_counter()
    for _ in range(calls):
        put(logs, group, batch)
    return calls / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("-n", type=int, default=50)
    args = ap.parse_args()
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    berth = BerthInstance(binary=binary, ports=Ports.from_env())
    berth.start()
    try:
        logs = client(berth)
        group = unique("/bench/tail")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        ingest_rate(logs, group, 20)  # warm-up

        base, tailed = [], []
        for _ in range(args.rounds):
            base.append(ingest_rate(logs, group, args.calls))
            sessions = [Session(client(berth), group) for _ in range(args.sessions)]
            time.sleep(0.5)
            tailed.append(ingest_rate(logs, group, args.calls))
            for s in sessions:
                s.close()
            time.sleep(1.5)  # the sessions end at their next heartbeat

        session = Session(client(berth), group)
        time.sleep(0.5)
        latencies, puts = [], []
        for i in range(args.n):
            marker = unique(f"lat{i}")
            t0 = time.perf_counter()
            put(logs, group, [marker])
            puts.append(time.perf_counter() - t0)
            while True:
                at, message = session.seen.get(timeout=10)
                if message == marker:
                    latencies.append(at - t0)
                    break
            time.sleep(1.1)  # a quiet second, as between a user's actions
        session.close()
    finally:
        berth.stop()
        berth.cleanup()

    def ms(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if q != 50 else statistics.median(xs) * 1000

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    lines = [
        f"{datetime.date.today()}, commit {commit.strip()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"binary `{binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}`.",
        "",
        "| what | median | p95 |",
        "|---|---:|---:|",
        f"| PutLogEvents (100 events) calls/s, no session (baseline) | {statistics.median(base):.0f} | |",
        f"| PutLogEvents (100 events) calls/s, {args.sessions} sessions on the group | {statistics.median(tailed):.0f} | |",
        f"| PutLogEvents round trip (1 event) | {ms(puts, 50):.1f} ms | {ms(puts, 95):.1f} ms |",
        f"| PutLogEvents sent → event in a `sessionUpdate` | {ms(latencies, 50):.1f} ms | {ms(latencies, 95):.1f} ms |",
        "",
        f"**Ingest with {args.sessions} sessions / without: {statistics.median(tailed) / statistics.median(base):.2f}×** "
        f"({args.rounds} interleaved rounds of {args.calls} calls); "
        f"**live-tail latency / PutLogEvents round trip: {ms(latencies, 50) / ms(puts, 50):.2f}×** (n = {args.n}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_tail.md").write_text(text)


if __name__ == "__main__":
    main()
