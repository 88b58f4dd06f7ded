"""Crash-only: kill -9 the server while a service runs. The proxy keeps serving its last route table, the
supervisor restarts the server, and the new server adopts the running tasks by their labels — same task ARNs,
no duplicate containers. Then the same for the proxy."""

from __future__ import annotations

import os
import signal
import time

import pytest

from berthlib import RequestLoop, containers, process_alive, restarted, serving_service, wait_for


@pytest.fixture(scope="module")
def running_service(berth):
    with serving_service(berth, "sturdy") as service:
        wait_for("exactly one running task", lambda: len(berth.task_arns(service["name"])) == 1, 30)
        yield service


def test_kill_server_keeps_traffic_and_adopts_tasks(berth, running_service):
    name, arn, endpoint = running_service["name"], running_service["arn"], running_service["endpoint"]
    tasks_before = sorted(berth.task_arns(name))
    containers_before = sorted(c["ID"] for c in containers(f"berth.service={arn}"))
    assert len(containers_before) == 1
    old_pid = berth.pid_of("server")
    assert process_alive(old_pid)

    with RequestLoop(berth, endpoint, "/ping", pause=0.02) as loop:
        wait_for("the request loop to get going", lambda: len(loop.results) >= 10, 10)
        os.kill(old_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # traffic during the outage: keep it running a few seconds whatever the supervisor does
        new_pid = wait_for("the supervisor to restart the server", lambda: restarted(berth, "server", old_pid), 30, 0.1)
        restart_secs = time.monotonic() - killed_at
        wait_for("the restarted API to answer", lambda: berth.ecs(max_attempts=1).list_clusters(), 30)
        time.sleep(max(0.0, 4 - (time.monotonic() - killed_at)))
        outage = [r for r in loop.results if r[0] >= killed_at]
        # and a little more after the server is back (the proxy re-syncs with the new server)
        time.sleep(2)
    assert len(outage) >= 20, f"only {len(outage)} requests during the outage"
    failures = loop.failures()
    assert not failures, f"{len(failures)} of {len(loop.results)} requests failed: {failures[:5]}"
    assert restart_secs < 10, f"server restarted after {restart_secs:.1f}s"
    assert new_pid != old_pid

    # adopted: the same tasks, no duplicate containers — checked over a few seconds of reconciliation
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert sorted(berth.task_arns(name)) == tasks_before
        now = sorted(c["ID"] for c in containers(f"berth.service={arn}"))
        assert now == containers_before, f"containers changed across the restart: {containers_before} → {now}"
        time.sleep(1)
    tasks = berth.describe_tasks(tasks_before)
    assert [t["lastStatus"] for t in tasks] == ["RUNNING"]
    assert berth.describe_service(arn)["status"]["statusCode"] == "ACTIVE"
    assert berth.https_get(endpoint, "/ping").status == 200


def test_kill_proxy_is_restarted(berth, running_service):
    endpoint = running_service["endpoint"]
    old_pid = berth.pid_of("proxy")
    os.kill(old_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for("the supervisor to restart the proxy", lambda: restarted(berth, "proxy", old_pid), 30, 0.1)
    berth.wait_status(endpoint, 200, "/ping", timeout=30)
    assert time.monotonic() - killed_at < 15
    # the server was untouched and the task too
    assert len(containers(f"berth.service={running_service['arn']}")) == 1
