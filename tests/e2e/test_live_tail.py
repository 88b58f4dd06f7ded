"""CloudWatch Logs Live Tail end to end: boto3's `start_live_tail` against the real binary.

The response is an AWS event stream that botocore decodes itself (prelude and message CRCs, `initial-response`,
`sessionStart`, `sessionUpdate`s): an event put with PutLogEvents, and a line a task prints, arrive in a session
update (the latency is measured and printed; what is asserted is the content), the filter pattern and stream
names are honoured, a quiet session gets empty heartbeat updates, a closed session ends on the server, and an
unknown group is ResourceNotFoundException.

boto3 routes StartLiveTail to the `stream-` host prefix (`stream-logs.<region>.amazonaws.com`); against a custom
endpoint the client turns that off (`inject_host_prefix=False`), as docs/observability.md says.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from berthlib import REGION, unique, wait_for


def live_client(berth):
    """A logs client without the `stream-` host prefix StartLiveTail would put in front of berth's endpoint."""
    config = Config(inject_host_prefix=False, retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return berth.client("logs", config=config)


class Tail:
    """A live tail session read on a thread: every event with the monotonic time it arrived."""

    def __init__(self, client, **request):
        self.response = client.start_live_tail(**request)
        self.stream = self.response["responseStream"]
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for event in self.stream:
                self.events.put((time.monotonic(), event))
        except Exception as exc:  # noqa: BLE001 - handed to the test through the queue
            self.events.put((time.monotonic(), {"error": exc}))

    def next(self, timeout: float = 10) -> tuple[float, dict]:
        return self.events.get(timeout=timeout)

    def session_start(self) -> dict:
        _, event = self.next()
        assert "sessionStart" in event, event
        return event["sessionStart"]

    def results_until(self, done, timeout: float = 10) -> tuple[float, list[dict]]:
        """Collects session results until `done(results)`; returns when the last update arrived and them all."""
        deadline = time.monotonic() + timeout
        results: list[dict] = []
        while True:
            at, event = self.next(timeout=max(0.1, deadline - time.monotonic()))
            assert "sessionUpdate" in event, event
            results.extend(event["sessionUpdate"].get("sessionResults", []))
            if done(results):
                return at, results

    def close(self):
        self.stream.close()


def put(logs, group: str, stream: str, messages: list[str]) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def new_group(logs, *streams: str) -> str:
    group = unique("/e2e/live")
    logs.create_log_group(logGroupName=group)
    for s in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    return group


def sessions_open(berth) -> float:
    text = urllib.request.urlopen(berth.metrics_url, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("berth_live_tail_sessions "):
            return float(line.split()[1])
    raise AssertionError("berth_live_tail_sessions missing from /metrics")


def test_put_log_events_reach_a_live_tail(berth):
    logs = live_client(berth)
    group = new_group(logs, "app/1")
    arn = f"arn:aws:logs:{REGION}:{berth.account_id}:log-group:{group}"
    tail = Tail(logs, logGroupIdentifiers=[arn])
    try:
        start = tail.session_start()
        assert start["logGroupIdentifiers"] == [arn]
        assert len(start["sessionId"]) == 36 and len(start["requestId"]) == 36
        # Quiet: an empty update is the heartbeat, not sampled.
        _, event = tail.next(timeout=5)
        assert event["sessionUpdate"]["sessionResults"] == [], event
        assert event["sessionUpdate"]["sessionMetadata"] == {"sampled": False}

        marker = unique("live")
        sent = time.monotonic()
        put(logs, group, "app/1", [f"hello {marker}"])
        arrived, results = tail.results_until(lambda r: any(marker in e["message"] for e in r))
        print(f"\nPutLogEvents → live tail sessionUpdate: {(arrived - sent) * 1000:.0f} ms")
        [event] = [e for e in results if marker in e["message"]]
        assert event["message"] == f"hello {marker}"
        assert event["logStreamName"] == "app/1"
        assert event["logGroupIdentifier"] == arn
        assert abs(event["timestamp"] - time.time() * 1000) < 60_000
        assert event["ingestionTime"] >= event["timestamp"] - 1000
    finally:
        tail.close()

    # The server ends the session once its client is gone (its next heartbeat finds no reader).
    def closed():
        return sessions_open(berth) == 0 or None

    wait_for("the live tail session to end on the server", closed, 10, interval=0.2)
    assert sessions_open(berth) == 0


def test_filter_pattern_and_stream_names(berth):
    logs = live_client(berth)
    group = new_group(logs, "web/1", "web/2", "worker/1")
    patterned = Tail(logs, logGroupIdentifiers=[group], logEventFilterPattern="ERROR")
    named = Tail(logs, logGroupIdentifiers=[group], logStreamNames=["web/2"])
    prefixed = Tail(logs, logGroupIdentifiers=[group], logStreamNamePrefixes=["web/"])
    try:
        assert patterned.session_start()["logEventFilterPattern"] == "ERROR"
        assert named.session_start()["logStreamNames"] == ["web/2"]
        assert prefixed.session_start()["logStreamNamePrefixes"] == ["web/"]
        put(logs, group, "worker/1", ["INFO worker", "ERROR worker"])
        put(logs, group, "web/1", ["INFO web1"])
        put(logs, group, "web/2", ["INFO web2", "ERROR web2 end"])

        def seen(results, last):
            return any(e["message"] == last for e in results)

        _, got = patterned.results_until(lambda r: seen(r, "ERROR web2 end"))
        assert [e["message"] for e in got] == ["ERROR worker", "ERROR web2 end"]
        _, got = named.results_until(lambda r: seen(r, "ERROR web2 end"))
        assert [(e["logStreamName"], e["message"]) for e in got] == [("web/2", "INFO web2"), ("web/2", "ERROR web2 end")]
        _, got = prefixed.results_until(lambda r: seen(r, "ERROR web2 end"))
        assert [e["message"] for e in got] == ["INFO web1", "INFO web2", "ERROR web2 end"]
    finally:
        for t in (patterned, named, prefixed):
            t.close()


def test_berth_env_turns_host_prefixes_off(berth, monkeypatch):
    """With `berth env`'s exports alone (no client config), boto3 reaches berth for StartLiveTail."""
    env = berth.berth_env()
    assert env["AWS_DISABLE_HOST_PREFIX_INJECTION"] == "true"
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    logs = boto3.session.Session().client("logs")
    group = new_group(logs, "s")
    tail = Tail(logs, logGroupIdentifiers=[group])
    try:
        assert tail.session_start()["logGroupIdentifiers"] == [group]
        put(logs, group, "s", ["via berth env"])
        _, got = tail.results_until(lambda r: len(r) >= 1)
        assert [e["message"] for e in got] == ["via berth env"]
    finally:
        tail.close()


def test_errors_are_aws_shaped(berth):
    logs = live_client(berth)
    group = new_group(logs)
    missing = f"arn:aws:logs:{REGION}:{berth.account_id}:log-group:{unique('/e2e/none')}"
    # (request, error code)
    cases = [
        ({"logGroupIdentifiers": [missing]}, "ResourceNotFoundException"),
        ({"logGroupIdentifiers": [group, missing]}, "ResourceNotFoundException"),
        ({"logGroupIdentifiers": [group], "logEventFilterPattern": "{ $.x = "}, "InvalidParameterException"),
        (
            {"logGroupIdentifiers": [group], "logStreamNames": ["a"], "logStreamNamePrefixes": ["b"]},
            "InvalidParameterException",
        ),
        ({"logGroupIdentifiers": [f"{missing}:*"]}, "InvalidParameterException"),
    ]
    for request, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.start_live_tail(**request)
        assert e.value.response["Error"]["Code"] == code, (request, e.value.response)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_task_line_reaches_a_live_tail(berth):
    name = unique("tailed")
    svc = berth.create_service(name)
    arn = svc["serviceArn"]
    tail = None
    try:
        group = svc["activeConfigurations"][0]["primaryContainer"]["awsLogsConfiguration"]["logGroup"]
        host = berth.wait_endpoint(arn)
        berth.wait_status(host, 200, "/ping", timeout=90)
        tail = Tail(live_client(berth), logGroupIdentifiers=[group], logStreamNamePrefixes=["ecs/"])
        tail.session_start()
        marker = unique("tail")
        sent = time.monotonic()
        assert berth.https_get(host, f"/ping?{marker}").status == 200
        arrived, results = tail.results_until(lambda r: any(marker in e["message"] for e in r))
        print(f"\nrequest → the app's log line in a live tail: {(arrived - sent) * 1000:.0f} ms")
        [line] = [e for e in results if marker in e["message"]]
        assert f'"GET /ping?{marker}" 200' in line["message"], line
        assert line["logStreamName"].startswith("ecs/Main/")
        assert line["logGroupIdentifier"] == group
    finally:
        if tail is not None:
            tail.close()
        berth.best_effort_delete(arn)
