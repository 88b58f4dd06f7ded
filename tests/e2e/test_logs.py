"""CloudWatch Logs end to end: boto3 and the pinned AWS CLI v1 against the real binary.

Log groups and streams, PutLogEvents with AWS's rejections, GetLogEvents tokens followed to both ends,
FilterLogEvents with filter patterns through boto3's paginator and the CLI's automatic paging, retention, tags,
AWS-shaped errors, and an IAM user whose policy allows one log group being denied another.
"""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from berthlib import REGION, unique

DAY_MS = 24 * 60 * 60 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def messages(events: list[dict]) -> list[str]:
    return [e["message"] for e in events]


def test_groups_streams_events_and_tokens_with_boto3(berth):
    logs = berth.client("logs")
    group = unique("/e2e/app")
    arn = f"arn:aws:logs:{REGION}:{berth.account_id}:log-group:{group}"
    logs.create_log_group(logGroupName=group, tags={"team": "web"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName=group)
    assert error_of(e)[0] == "ResourceAlreadyExistsException" and error_of(e)[2] == 400
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.create_log_group(logGroupName="bad name with spaces")
    assert error_of(e)[0] == "InvalidParameterException" and error_of(e)[2] == 400

    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in described] == [group]
    assert described[0]["arn"] == f"{arn}:*" and described[0]["logGroupArn"] == arn
    assert abs(described[0]["creationTime"] - now_ms()) < 120_000
    assert "retentionInDays" not in described[0]

    logs.create_log_stream(logGroupName=group, logStreamName="ecs/Main/1")
    t = now_ms() - 60_000
    sent = [f"line {i:02d}" for i in range(25)]
    put = logs.put_log_events(
        logGroupName=group,
        logStreamName="ecs/Main/1",
        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(sent)],
    )
    assert "rejectedLogEventsInfo" not in put
    # Too old and too new events are reported, the others stored.
    mixed = logs.put_log_events(
        logGroupName=group,
        logStreamName="ecs/Main/1",
        logEvents=[
            {"timestamp": now_ms() - 15 * DAY_MS, "message": "ancient"},
            {"timestamp": now_ms() - 14 * DAY_MS - 3_600_000, "message": "also ancient"},
        ],
    )
    assert mixed["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(
            logGroupName=group,
            logStreamName="ecs/Main/1",
            logEvents=[{"timestamp": t + 10, "message": "b"}, {"timestamp": t, "message": "a"}],
        )
    assert error_of(e)[0] == "InvalidParameterException"
    assert "chronological" in error_of(e)[1]

    # Forward from the head, 10 at a time, until the same token comes back.
    got, token, pages = [], None, 0
    for _ in range(10):
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=group, logStreamName="ecs/Main/1", startFromHead=True, limit=10, **kw)
        pages += 1
        got += messages(page["events"])
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert got == sent and pages == 4
    assert token.startswith("f/")
    # Backward from the newest events to the start.
    newest = logs.get_log_events(logGroupName=group, logStreamName="ecs/Main/1", limit=10)
    assert messages(newest["events"]) == sent[15:]
    chunks, token = [messages(newest["events"])], newest["nextBackwardToken"]
    for _ in range(10):
        page = logs.get_log_events(logGroupName=group, logStreamName="ecs/Main/1", limit=10, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        chunks.insert(0, messages(page["events"]))
        token = page["nextBackwardToken"]
    assert sum(chunks, []) == sent
    # The ARN works as the group identifier, and the time window applies.
    window = logs.get_log_events(
        logGroupIdentifier=arn, logStreamName="ecs/Main/1", startTime=t + 3, endTime=t + 6, startFromHead=True
    )
    assert messages(window["events"]) == sent[3:6]

    streams = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    assert streams[0]["logStreamName"] == "ecs/Main/1"
    assert streams[0]["lastEventTimestamp"] == t + 24 and streams[0]["firstEventTimestamp"] == t
    assert streams[0]["arn"] == f"{arn}:log-stream:ecs/Main/1"

    # Missing resources.
    for call in (
        lambda: logs.get_log_events(logGroupName=group, logStreamName="nope"),
        lambda: logs.describe_log_streams(logGroupName=unique("/e2e/missing")),
        lambda: logs.put_log_events(
            logGroupName=unique("/e2e/missing"), logStreamName="s", logEvents=[{"timestamp": t, "message": "x"}]
        ),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e)[0] == "ResourceNotFoundException", error_of(e)

    # Tags through both API generations.
    logs.tag_resource(resourceArn=arn, tags={"env": "prod"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web", "env": "prod"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"env": "prod"}

    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


def test_filter_patterns_and_paginators_with_boto3(berth):
    logs = berth.client("logs")
    group = unique("/e2e/filter")
    logs.create_log_group(logGroupName=group)
    t = now_ms() - 60_000
    lines = {
        "web/1": ["[ERROR 400] BAD REQUEST", "[INFO] ok", '{"level":"error","latency":900}'],
        "web/2": ["[ERROR 419] MISSING ARGUMENTS", '{"level":"info","latency":12}'],
        "batch": ["[ERROR 500] nightly job"],
    }
    i = 0
    for stream, msgs in lines.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = []
        for m in msgs:
            events.append({"timestamp": t + i, "message": m})
            i += 1
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def run(pattern: str, **kw) -> list[str]:
        paginator = logs.get_paginator("filter_log_events")
        out = []
        for page in paginator.paginate(logGroupName=group, filterPattern=pattern, PaginationConfig={"PageSize": 2}, **kw):
            out += messages(page["events"])
        return out

    assert run("ERROR") == ["[ERROR 400] BAD REQUEST", "[ERROR 419] MISSING ARGUMENTS", "[ERROR 500] nightly job"]
    assert run("ERROR -ARGUMENTS", logStreamNamePrefix="web/") == ["[ERROR 400] BAD REQUEST"]
    assert run("?ARGUMENTS ?nightly") == ["[ERROR 419] MISSING ARGUMENTS", "[ERROR 500] nightly job"]
    assert run('"MISSING ARGUMENTS"') == ["[ERROR 419] MISSING ARGUMENTS"]
    assert run("%ERROR 4[01]%") == ["[ERROR 400] BAD REQUEST", "[ERROR 419] MISSING ARGUMENTS"]
    assert run('{ $.level = "error" }') == ['{"level":"error","latency":900}']
    assert run("{ $.latency > 100 || $.level = info }") == ['{"level":"error","latency":900}', '{"level":"info","latency":12}']
    assert len(run("")) == 6
    assert run("", logStreamNames=["batch"]) == ["[ERROR 500] nightly job"]
    event = logs.filter_log_events(logGroupName=group, filterPattern="nightly")["events"][0]
    assert event["logStreamName"] == "batch" and event["timestamp"] == t + 5 and event["eventId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName=group, filterPattern="{ $.latency > }")
    code, message, status = error_of(e)
    assert (code, status) == ("InvalidParameterException", 400) and "Invalid filter pattern" in message

    # DescribeLogGroups through its paginator, one group per page.
    extra = [f"{group}/{n}" for n in ("a", "b", "c")]
    for g in extra:
        logs.create_log_group(logGroupName=g)
    paged = []
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=group, PaginationConfig={"PageSize": 1}
    ):
        assert len(page["logGroups"]) <= 1
        paged += [g["logGroupName"] for g in page["logGroups"]]
    assert paged == sorted([group, *extra])
    for g in [group, *extra]:
        logs.delete_log_group(logGroupName=g)


def test_retention_deletes_older_events(berth):
    logs = berth.client("logs")
    group = unique("/e2e/retention")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": now_ms() - 3 * DAY_MS, "message": "old"}]
    )
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": now_ms(), "message": "new"}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert error_of(e)[0] == "InvalidParameterException"
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    got = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert messages(got["events"]) == ["new"]
    expired = logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": now_ms() - 2 * DAY_MS, "message": "late"}]
    )
    assert expired["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    logs.delete_log_group(logGroupName=group)


def test_logs_with_the_aws_cli(berth):
    group = unique("/e2e/cli")
    berth.aws("logs", "create-log-group", "--log-group-name", group, "--tags", "team=cli")
    berth.aws("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s")
    t = now_ms() - 10_000
    events = [{"timestamp": t + i, "message": f"cli event {i} {'ERROR' if i % 3 == 0 else 'INFO'}"} for i in range(9)]
    berth.aws("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s", "--log-events", json.dumps(events))
    got = berth.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "s", "--start-from-head")
    assert messages(got["events"]) == [e["message"] for e in events]
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")
    # The CLI follows nextToken by itself (one event per request here).
    filtered = berth.aws(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR", "--page-size", "1"
    )
    assert messages(filtered["events"]) == [events[i]["message"] for i in (0, 3, 6)]
    listed = berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert [g["logGroupName"] for g in listed["logGroups"]] == [group]
    berth.aws("logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "7")
    listed = berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert listed["logGroups"][0]["retentionInDays"] == 7
    tags = berth.aws("logs", "list-tags-for-resource", "--resource-arn", listed["logGroups"][0]["logGroupArn"])
    assert tags["tags"] == {"team": "cli"}
    missing = berth.aws("logs", "describe-log-streams", "--log-group-name", unique("/e2e/none"), check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    bad = berth.aws("logs", "create-log-group", "--log-group-name", "no:colons", check=False)
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr
    berth.aws("logs", "delete-log-group", "--log-group-name", group)
    assert berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)["logGroups"] == []


def test_a_user_allowed_one_log_group_is_denied_another(berth):
    root = berth.client("logs")
    mine, theirs = unique("/e2e/mine"), unique("/e2e/theirs")
    for g in (mine, theirs):
        root.create_log_group(logGroupName=g)
        root.create_log_stream(logGroupName=g, logStreamName="s")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents", "logs:GetLogEvents", "logs:CreateLogStream", "logs:DescribeLogStreams"],
                "Resource": [
                    f"arn:aws:logs:{REGION}:{berth.account_id}:log-group:{mine}",
                    f"arn:aws:logs:{REGION}:{berth.account_id}:log-group:{mine}:log-stream:*",
                ],
            }
        ],
    }
    iam = berth.client("iam")
    name = unique("logs-user")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="one-group", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    logs = berth.client("logs", key["AccessKeyId"], key["SecretAccessKey"])

    t = now_ms()
    logs.put_log_events(logGroupName=mine, logStreamName="s", logEvents=[{"timestamp": t, "message": "mine"}])
    assert messages(logs.get_log_events(logGroupName=mine, logStreamName="s")["events"]) == ["mine"]
    logs.create_log_stream(logGroupName=mine, logStreamName="second")
    for call in (
        lambda: logs.put_log_events(logGroupName=theirs, logStreamName="s", logEvents=[{"timestamp": t, "message": "x"}]),
        lambda: logs.get_log_events(logGroupName=theirs, logStreamName="s"),
        lambda: logs.describe_log_streams(logGroupName=theirs),
        lambda: logs.delete_log_group(logGroupName=mine),
        lambda: logs.create_log_group(logGroupName=unique("/e2e/new")),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        code, message, status = error_of(e)
        assert (code, status) == ("AccessDeniedException", 400), (code, message)
        assert f"user/{name}" in message and "logs:" in message, message
    assert root.get_log_events(logGroupName=theirs, logStreamName="s")["events"] == []
    for g in (mine, theirs):
        root.delete_log_group(logGroupName=g)
