"""Faults in what users deploy: an image that cannot be pulled, a container that crashes at start. The service
stays ACTIVE, its tasks stop with ECS-style reasons visible in DescribeTasks, and nothing else breaks."""

from __future__ import annotations

import time

import pytest

from berthlib import serving_service, unique, wait_for


@pytest.fixture(scope="module")
def healthy_service(berth):
    """A bystander service that must keep answering while the faulty ones fail around it."""
    with serving_service(berth, "bystander") as service:
        yield service


def _stopped_tasks(berth, name):
    arns = berth.task_arns(name, desired="STOPPED")
    return [t for t in berth.describe_tasks(arns) if t["lastStatus"] == "STOPPED"] if arns else []


def test_missing_image(berth, healthy_service):
    name = unique("noimage")
    arn = berth.create_service(name, image="berth-e2e-does-not-exist:v0")["serviceArn"]
    try:
        stopped = wait_for("a task stopped for its image", lambda: _stopped_tasks(berth, name), 90, interval=0.5)
        task = stopped[0]
        assert task["desiredStatus"] == "STOPPED"
        assert task.get("stoppedReason", "").startswith("CannotPullContainerError"), task.get("stoppedReason")
        assert task.get("stopCode") == "TaskFailedToStart", task.get("stopCode")
        assert task.get("stoppedAt")
        # the service itself stays ACTIVE (it keeps trying, as ECS does)
        svc = berth.describe_service(arn)
        assert svc["status"]["statusCode"] == "ACTIVE", svc["status"]
        # nothing else broke: the bystander answers, the API answers
        assert berth.https_get(healthy_service["endpoint"], "/ping").status == 200
        assert berth.describe_service(healthy_service["arn"])["status"]["statusCode"] == "ACTIVE"
        # the faulty service's endpoint is routed (its rule is published with the service) but its target group
        # has no registered target (the container never ran): every request is a 503 at once, never a hang
        endpoint = berth.wait_endpoint(arn, timeout=30)
        statuses = [berth.https_get(endpoint, "/", timeout=3).status for _ in range(10)]
        assert statuses == [503] * 10, statuses
    finally:
        berth.delete_service(arn, wait=True, timeout=berth.drain_timeout_secs + 60)
    assert berth.https_get(healthy_service["endpoint"], "/ping").status == 200


def test_crash_at_start(berth, healthy_service):
    name = unique("crash")
    arn = berth.create_service(name, environment={"DEMO_EXIT_CODE": "3"})["serviceArn"]
    started = time.monotonic()
    try:
        # replaced: at least two tasks have stopped, each with the container's exit code
        stopped = wait_for(
            "two crashed tasks stopped", lambda: (s := _stopped_tasks(berth, name)) and len(s) >= 2 and s, 90, 0.5
        )
        for task in stopped:
            assert task["desiredStatus"] == "STOPPED"
            assert [c.get("exitCode") for c in task["containers"]] == [3], task["containers"]
            assert task.get("stopCode") == "EssentialContainerExited", task.get("stopCode")
            assert task.get("stoppedReason"), task
        assert berth.describe_service(arn)["status"]["statusCode"] == "ACTIVE"
        # no task ever passes (or fails) its health checks: each is replaced while its checks are still initial,
        # which gets no traffic, not even fail-open traffic; so every request is a 503
        endpoint = berth.wait_endpoint(arn, timeout=30)
        statuses = [berth.https_get(endpoint, "/", timeout=3).status for _ in range(10)]
        assert statuses == [503] * 10, statuses

        # backoff: let it crash for a while, then count. An immediate-restart loop would start a task every
        # ~0.1-0.5 s (dozens in this window); with backoff the gaps between attempts grow.
        time.sleep(max(0.0, 25 - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
        all_stopped = _stopped_tasks(berth, name)
        starts = sorted(t["createdAt"] for t in all_stopped)
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
        print(f"{len(all_stopped)} crashed tasks in {elapsed:.0f}s; gaps between starts: {gaps}")
        assert len(all_stopped) <= 12, f"{len(all_stopped)} crashed tasks in {elapsed:.0f}s: no backoff? {gaps}"
        # Backoff of 1 s, 2 s, 4 s, 8 s … leaves room for at least four attempts in 25 s, and the last gap is
        # longer than the first.
        assert len(gaps) >= 3, f"{len(all_stopped)} crashed tasks in {elapsed:.0f}s: retried too rarely? {gaps}"
        assert gaps[-1] > gaps[0], f"restart gaps do not grow: {gaps}"
        assert berth.https_get(healthy_service["endpoint"], "/ping").status == 200
    finally:
        berth.delete_service(arn, wait=True, timeout=berth.drain_timeout_secs + 60)
