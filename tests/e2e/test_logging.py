"""Containers' output in CloudWatch Logs, end to end: the real binary, real Docker, the demo image.

Express creates the service's log group as the infrastructure role (tagged AmazonECSManaged=true), each task
writes `ecs/Main/<task id>` as the execution role, and the demo's request lines (it prints one per request on
stdout) are readable with boto3 (GetLogEvents, FilterLogEvents) and the AWS CLI. An execution role without the
logs permissions stops the task with ECS's ResourceInitializationError, and the group with its events outlives
the deleted service.
"""

from __future__ import annotations

import json
import time

from berthlib import DEMO_IMAGE, REGION, trust_policy, unique, wait_for


def task_id_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def test_request_lines_reach_the_log_stream(berth):
    logs = berth.client("logs")
    name = unique("logged")
    svc = berth.create_service(name)
    arn = svc["serviceArn"]
    try:
        config = svc["activeConfigurations"][0]
        group = config["primaryContainer"]["awsLogsConfiguration"]["logGroup"]
        assert group.startswith(f"/aws/ecs/default/{name}-") and len(group) == len(f"/aws/ecs/default/{name}-") + 4
        assert config["primaryContainer"]["awsLogsConfiguration"]["logStreamPrefix"] == "ecs"

        # The task definition shows the awslogs driver.
        td = berth.ecs().describe_task_definition(taskDefinition=config["taskDefinitionArn"])["taskDefinition"]
        lc = td["containerDefinitions"][0]["logConfiguration"]
        assert lc["logDriver"] == "awslogs"
        assert lc["options"] == {
            "awslogs-group": group,
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "ecs",
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        }

        # The group exists, tagged as Express's, and never expires.
        described = logs.describe_log_groups(logGroupNamePrefix="/aws/ecs/")["logGroups"]
        mine = [g for g in described if g["logGroupName"] == group]
        assert len(mine) == 1 and "retentionInDays" not in mine[0], described
        assert logs.list_tags_for_resource(resourceArn=mine[0]["logGroupArn"])["tags"] == {"AmazonECSManaged": "true"}

        host = berth.wait_endpoint(arn)
        berth.wait_status(host, 200, "/ping", timeout=90)
        marker = unique("marker")
        sent = time.monotonic()
        assert berth.https_get(host, f"/ping?{marker}").status == 200
        task = task_id_of(berth.task_arns(name)[0])
        stream = f"ecs/Main/{task}"
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        assert stream in [s["logStreamName"] for s in streams], streams

        def events_with_marker():
            events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
            return [e for e in events if marker in e["message"]] or None

        hits = wait_for("the request's log line in GetLogEvents", events_with_marker, 30, interval=0.05)
        latency = time.monotonic() - sent
        print(f"\nrequest → log line readable via GetLogEvents: {latency * 1000:.0f} ms")
        assert f'"GET /ping?{marker}" 200' in hits[0]["message"], hits
        # The demo's start line came first.
        first = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=1)["events"]
        assert first and "listening on" in first[0]["message"], first

        filtered = logs.filter_log_events(logGroupName=group, filterPattern=f'"{marker}"')["events"]
        assert [e["logStreamName"] for e in filtered] == [stream]

        cli = berth.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head")
        assert any(marker in e["message"] for e in cli["events"]), cli

        # Several requests arrive in order.
        for i in range(5):
            assert berth.https_get(host, f"/ping?{marker}-{i}").status == 200

        def ordered():
            events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
            # In the order the stream holds them, not the order we look for them.
            seen = [i for e in events for i in range(5) if f"{marker}-{i}\"" in e["message"]]
            return seen if len(seen) >= 5 else None

        assert wait_for("five request lines", ordered, 30, interval=0.1) == [0, 1, 2, 3, 4]
    finally:
        berth.best_effort_delete(arn)

    # Deleting the service keeps the group and its events.
    berth.wait_inactive(arn)
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]] == [group]
    kept = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert any(marker in e["message"] for e in kept)


def test_execution_role_without_logs_permissions_stops_the_task(berth):
    iam = berth.client("iam")
    role = unique("exec-nologs")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust_policy("ecs-tasks.amazonaws.com")))
    iam.put_role_policy(
        RoleName=role,
        PolicyName="ecr-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}],
            }
        ),
    )
    roles = berth.role_arns()
    roles["executionRoleArn"] = f"arn:aws:iam::{berth.account_id}:role/{role}"
    name = unique("nologs")
    arn = berth.ecs().create_express_gateway_service(
        serviceName=name, primaryContainer={"image": DEMO_IMAGE}, **roles
    )["service"]["serviceArn"]
    try:

        def stopped():
            arns = berth.task_arns(name, desired="STOPPED")
            return berth.describe_tasks(arns) if arns else None

        task = wait_for("a stopped task", stopped, 60)[0]
        reason = task["stoppedReason"]
        assert reason.startswith(
            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
            "failed to create Cloudwatch log stream: AccessDeniedException: User: "
            f"arn:aws:sts::{berth.account_id}:assumed-role/{role}/"
        ), reason
        assert "is not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:" in reason, reason
        assert task["stopCode"] == "TaskFailedToStart" and task["lastStatus"] == "STOPPED"
    finally:
        berth.best_effort_delete(arn)
