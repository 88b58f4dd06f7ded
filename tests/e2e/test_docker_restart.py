"""A Docker restart loses no request: dockerd is stopped and started again (`scripts/ensure-docker.sh stop`, then
`scripts/ensure-docker.sh`, the way a machine's Docker is started) while a request loop runs against a service of
two tasks. With live-restore (which ensure-docker turns on) the containers and their networking run on while the
daemon is away; berth's driver and shippers ride it out: no request fails, the same tasks serve before and after
(none replaced), and the service's log group holds every request line exactly once.

The measurements (requests, failures, daemon downtime, log lines lost or duplicated) are printed before anything is
asserted, so a run of an older binary or on a daemon without live-restore still reports them. A daemon without
live-restore is warned about once at start: `berth server` is pointed at a fake daemon's socket that says so.
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import re
import socketserver
import subprocess
import threading
import time
from pathlib import Path

from berthlib import ANSI, ROOT, RequestLoop, containers, docker, pick_free_ports, terminate, unique, wait_for

ENSURE_DOCKER = ROOT / "scripts" / "ensure-docker.sh"


def live_restore() -> str:
    return docker("info", "--format", "{{.LiveRestoreEnabled}}").stdout.strip()


def docker_answers() -> bool:
    return docker("info", "--format", "{{.ID}}", check=False, timeout=5).returncode == 0


def ensure_docker(*args: str) -> None:
    out = subprocess.run(["bash", str(ENSURE_DOCKER), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"ensure-docker.sh {' '.join(args)} exited {out.returncode}:\n{out.stdout}{out.stderr}"


def request_counts(logs, group: str, marker: str) -> collections.Counter:
    """How many times each request number's line is in the log group (all streams)."""
    pattern = re.compile(re.escape(marker) + r'-(\d+)"')
    counts: collections.Counter = collections.Counter()
    kw = {"logGroupName": group, "filterPattern": f'"{marker}"'}
    while True:
        page = logs.filter_log_events(**kw)
        for event in page["events"]:
            m = pattern.search(event["message"])
            if m:
                counts[int(m.group(1))] += 1
        token = page.get("nextToken")
        if not token:
            return counts
        kw["nextToken"] = token


def test_docker_restart_loses_no_request_and_no_log_line(berth):
    lr_at_start = live_restore()
    logs = berth.client("logs")
    name = unique("dockerd")
    svc = berth.create_service(name, scalingTarget={"minTaskCount": 2, "maxTaskCount": 2})
    arn = svc["serviceArn"]
    group = svc["activeConfigurations"][0]["primaryContainer"]["awsLogsConfiguration"]["logGroup"]
    try:
        host = berth.wait_endpoint(arn)
        berth.wait_status(host, 200, "/ping", timeout=90)
        wait_for("two running tasks", lambda: len(berth.task_arns(name)) == 2, 60)
        tasks_before = sorted(berth.task_arns(name))
        wait_for(
            "both tasks RUNNING, each in its container",
            lambda: [t["lastStatus"] for t in berth.describe_tasks(tasks_before)] == ["RUNNING", "RUNNING"]
            and len(containers(f"berth.service={arn}")) == 2,
            60,
        )
        containers_before = sorted(c["ID"] for c in containers(f"berth.service={arn}"))

        marker = unique("req")
        with RequestLoop(berth, host, f"/ping?{marker}-{{n}}", pause=0.005, max_seconds=120) as loop:
            wait_for("the request loop to get going", lambda: len(loop.results) >= 50, 30, 0.05)
            stop_at = time.monotonic()
            ensure_docker("stop")
            stopped_at = time.monotonic()
            assert not docker_answers(), "dockerd still answers after ensure-docker.sh stop"
            ensure_docker()
            back_at = time.monotonic()
            # The driver's calls, the reconciler and the shippers reconnect while requests go on.
            time.sleep(5)
        downtime = back_at - stopped_at
        sent = len(loop.results)
        failures = loop.failures()
        during = [r for r in loop.results if stop_at <= r[0] <= back_at]
        # The loop numbers its requests by their place in `results`.
        ok = [i for i, r in enumerate(loop.results) if r[1] == 200]

        def all_logged():
            counts = request_counts(logs, group, marker)
            return counts if all(counts[i] for i in ok) else None

        try:
            wait_for("every served request's line in the log group", all_logged, 30, 0.5)
            time.sleep(2)  # anything shipped twice would arrive now
        except AssertionError:
            pass  # reported and asserted below, after the measurements are printed
        counts = request_counts(logs, group, marker)
        lost = [i for i in ok if counts[i] == 0]
        duplicated = {i: c for i, c in counts.items() if c > 1}
        tasks_after = sorted(berth.task_arns(name))
        containers_after = sorted(c["ID"] for c in containers(f"berth.service={arn}"))
        print(
            f"\ndocker restart (live-restore {lr_at_start}): {sent} requests, {len(failures)} failed "
            f"({len(during)} sent while dockerd was stopping or down); dockerd stop {stopped_at - stop_at:.2f} s, "
            f"down {downtime:.2f} s; log lines: {len(lost)} lost, {len(duplicated)} duplicated; "
            f"tasks replaced: {len(set(tasks_before) - set(tasks_after))} of {len(tasks_before)}"
        )

        assert lr_at_start == "true", "run scripts/ensure-docker.sh: the daemon runs without live-restore"
        # The server said so at start, once, and did not warn.
        log = berth.log_text()
        assert "without live-restore" not in log
        assert log.count("Docker's live-restore is on") >= 1
        assert len(during) >= 20, f"only {len(during)} requests while dockerd was away"
        assert not failures, f"{len(failures)} of {sent} requests failed: {failures[:5]}"
        assert tasks_after == tasks_before, "tasks were replaced"
        assert containers_after == containers_before, "containers were replaced"
        assert [t["lastStatus"] for t in berth.describe_tasks(tasks_after)] == ["RUNNING", "RUNNING"]
        assert lost == [], f"{len(lost)} request lines never reached the log group: {lost[:10]}"
        assert duplicated == {}, f"request lines shipped more than once: {dict(list(duplicated.items())[:10])}"
    finally:
        if not docker_answers():
            ensure_docker()
        berth.best_effort_delete(arn)


class _FakeDockerInfo(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers what `berth server` asks Docker first (version, ping, info) as a daemon without live-restore."""

    daemon_threads = True


class _FakeDockerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            body, kind = b"OK", "text/plain"
        elif path.endswith("/version"):
            body, kind = json.dumps({"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}).encode(), "application/json"
        elif path.endswith("/info"):
            body, kind = json.dumps({"LiveRestoreEnabled": False, "Swarm": {"LocalNodeState": "inactive"}}).encode(), "application/json"
        else:
            body, kind = b'{"message": "not in this fake"}', "application/json"
            self.send_response(500)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):  # unix sockets have no client address to log
        pass

    def address_string(self):
        return "unix"


def test_a_daemon_without_live_restore_is_warned_about_at_start(tmp_path):
    """`berth server` on a daemon without live-restore says so once, at start (a fake daemon answers `info`)."""
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    sock = tmp_path / "docker.sock"
    fake = _FakeDockerInfo(str(sock), _FakeDockerHandler)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    api, internal = pick_free_ports(2)
    config = tmp_path / "berth.toml"
    config.write_text(
        "\n".join(
            [
                "[api]",
                f'listen = "127.0.0.1:{api}"',
                "[internal]",
                f'listen = "127.0.0.1:{internal}"',
                "[runtime]",
                f'docker_socket = "{sock}"',
                "[task_endpoint]",
                "enabled = false",
                "",
            ]
        )
    )
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["RUST_LOG"] = "info"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(binary), "server", "--data-dir", str(tmp_path / "data"), "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )
        try:
            text = lambda: ANSI.sub("", log.read_text(errors="replace"))  # noqa: E731
            wait_for("the live-restore warning", lambda: "without live-restore" in text(), 30, 0.1)
            time.sleep(1)  # a second warning would come now
        finally:
            terminate(server, timeout=15)
            fake.shutdown()
    warnings = [line for line in text().splitlines() if "without live-restore" in line]
    assert len(warnings) == 1, warnings
    assert "WARN" in warnings[0] and "scripts/ensure-docker.sh" in warnings[0], warnings[0]
