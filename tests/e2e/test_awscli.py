"""The README's tour with the real AWS CLI (pinned, from PyPI), configured only by `berth env`, and curl with
`--cacert` from `berth ca`."""

from __future__ import annotations

import re
import subprocess

import pytest

from berthlib import containers, unique, wait_for


@pytest.fixture(scope="module")
def cli_service(berth):
    """A service created exactly as the README does: image plus the two role ARNs (and a name)."""
    name = unique("cli")
    account = berth.account_id
    out = berth.aws(
        "ecs",
        "create-express-gateway-service",
        "--primary-container",
        "image=berth-demo:latest",
        "--execution-role-arn",
        f"arn:aws:iam::{account}:role/ecsTaskExecutionRole",
        "--infrastructure-role-arn",
        f"arn:aws:iam::{account}:role/ecsInfrastructureRoleForExpressServices",
        "--service-name",
        name,
    )
    arn = out["service"]["serviceArn"]

    def endpoint():
        svc = berth.aws("ecs", "describe-express-gateway-service", "--service-arn", arn)["service"]
        paths = [p for c in svc.get("activeConfigurations") or [] for p in c.get("ingressPaths") or []]
        return paths[0]["endpoint"] if paths and paths[0].get("endpoint") else None

    host = wait_for("describe-express-gateway-service to show an ingress path", endpoint, 60)
    yield {"name": name, "arn": arn, "endpoint": host}
    berth.best_effort_delete(arn)


def test_berth_env_and_ca(berth):
    env = berth.env
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        assert env.get(key), f"berth env does not export {key}: {env}"
    assert env["AWS_ENDPOINT_URL"] == f"https://localhost:{berth.ports.api}"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_CA_BUNDLE"] == str(berth.ca_path)
    assert re.fullmatch(r"\d{12}", env.get("BERTH_ACCOUNT_ID", "")), env
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == berth.credentials()
    ca = berth.run_berth("ca", *berth.common_flags())
    assert ca.returncode == 0, ca.stderr
    assert "-----BEGIN CERTIFICATE-----" in ca.stdout
    assert ca.stdout.strip() == berth.ca_path.read_text().strip()


def test_sts_get_caller_identity(berth):
    """STS over the Query protocol (XML) with the same endpoint and credentials."""
    me = berth.aws("sts", "get-caller-identity")
    assert me["Account"] == berth.account_id
    assert me["Arn"] == f"arn:aws:iam::{berth.account_id}:root"
    assert me["UserId"] == berth.account_id


def test_describe_and_curl(berth, cli_service):
    host = cli_service["endpoint"]
    assert re.fullmatch(rf"{cli_service['name']}-[0-9a-f]{{6}}\.ecs\.us-east-1\.localhost", host), host
    svc = berth.aws("ecs", "describe-express-gateway-service", "--service-arn", cli_service["arn"])["service"]
    assert svc["status"]["statusCode"] == "ACTIVE"
    assert svc["serviceName"] == cli_service["name"]
    config = svc["activeConfigurations"][0]
    assert config["ingressPaths"][0].get("accessType") == "PUBLIC", config["ingressPaths"]
    assert config.get("cpu") == "256" and config.get("memory") == "512", config
    assert config.get("healthCheckPath") == "/ping", config
    assert config["primaryContainer"]["image"] == "berth-demo:latest"
    assert config["primaryContainer"].get("containerPort", 80) == 80

    # curl resolves *.localhost to loopback itself; it trusts only berth's CA here
    url = berth.endpoint_url(host) + "/"

    def curl():
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "5", "--cacert", str(berth.ca_path), "-D", "-", url],
            capture_output=True,
            text=True,
            timeout=15,
        )
        return out if out.returncode == 0 and out.stdout.startswith("HTTP/") and " 200" in out.stdout[:20] else None

    answer = wait_for(f"curl --cacert {url} to answer 200", curl, 30, interval=0.5)
    assert "x-demo-version: dev" in answer.stdout.lower()


def test_list_and_describe_services(berth, cli_service):
    arns = berth.aws("ecs", "list-services", "--cluster", "default")["serviceArns"]
    assert cli_service["arn"] in arns
    described = berth.aws("ecs", "describe-services", "--cluster", "default", "--services", cli_service["arn"])
    assert not described.get("failures"), described
    svc = described["services"][0]
    assert svc["serviceArn"] == cli_service["arn"]
    assert svc["serviceName"] == cli_service["name"]
    assert svc["resourceManagementType"] == "ECS"
    assert svc["status"] == "ACTIVE"
    assert svc["desiredCount"] >= 1
    assert svc["clusterArn"] == f"arn:aws:ecs:us-east-1:{berth.account_id}:cluster/default"
    # ListServices filters by resourceManagementType
    ecs_managed = berth.aws("ecs", "list-services", "--cluster", "default", "--resource-management-type", "ECS")
    assert cli_service["arn"] in ecs_managed["serviceArns"]
    clusters = berth.aws("ecs", "describe-clusters", "--clusters", "default")["clusters"]
    assert clusters[0]["status"] == "ACTIVE"

    # The service's events tell its story, newest first, as ECS words them.
    def steady_events():
        svc = berth.aws("ecs", "describe-services", "--services", cli_service["arn"])["services"][0]
        messages = [e["message"] for e in svc.get("events") or []]
        steady = f"(service {cli_service['name']}) has reached a steady state."
        return messages if messages and messages[0] == steady else None

    messages = wait_for("a steady-state event", steady_events, 60)
    assert any(m.startswith(f"(service {cli_service['name']}) has started 1 tasks: (task ") for m in messages), messages


def test_tasks_and_task_definition(berth, cli_service):
    def running():
        arns = berth.aws(
            "ecs", "list-tasks", "--cluster", "default", "--service-name", cli_service["name"]
        )["taskArns"]
        if not arns:
            return None
        tasks = berth.aws("ecs", "describe-tasks", "--cluster", "default", "--tasks", *arns)["tasks"]
        return tasks if tasks and all(t["lastStatus"] == "RUNNING" for t in tasks) else None

    tasks = wait_for("a RUNNING task", running, 60)
    task = tasks[0]
    assert re.fullmatch(rf"arn:aws:ecs:us-east-1:{berth.account_id}:task/default/[0-9a-f]{{32}}", task["taskArn"])
    assert task["desiredStatus"] == "RUNNING"
    assert task["clusterArn"].endswith(":cluster/default")
    assert task.get("launchType") == "FARGATE"
    assert task.get("cpu") == "256" and task.get("memory") == "512"
    assert task.get("group") == f"service:{cli_service['name']}"
    assert task.get("createdAt") and task.get("startedAt")
    container = task["containers"][0]
    assert container["lastStatus"] == "RUNNING"
    assert container["image"] == "berth-demo:latest"
    task_id = task["taskArn"].rsplit("/", 1)[1]
    assert len(containers(f"berth.task={task_id}")) == 1

    td = berth.aws("ecs", "describe-task-definition", "--task-definition", task["taskDefinitionArn"])
    td = td["taskDefinition"]
    assert td["taskDefinitionArn"] == task["taskDefinitionArn"]
    assert td["status"] == "ACTIVE"
    assert td["cpu"] == "256" and td["memory"] == "512"
    assert td["executionRoleArn"].endswith(":role/ecsTaskExecutionRole")
    cdef = td["containerDefinitions"][0]
    assert cdef["image"] == "berth-demo:latest"
    assert any(p["containerPort"] == 80 for p in cdef.get("portMappings", []))
    family_rev = f"{td['family']}:{td['revision']}"
    assert berth.aws("ecs", "describe-task-definition", "--task-definition", family_rev)["taskDefinition"][
        "taskDefinitionArn"
    ] == td["taskDefinitionArn"]
    listed = berth.aws("ecs", "list-task-definitions")["taskDefinitionArns"]
    assert td["taskDefinitionArn"] in listed


def test_tags(berth, cli_service):
    arn = cli_service["arn"]
    berth.aws("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=team,value=web", "key=env,value=test")
    tags = berth.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert {"key": "team", "value": "web"} in tags and {"key": "env", "value": "test"} in tags
    berth.aws("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "team")
    tags = berth.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert {"key": "env", "value": "test"} in tags
    assert all(t["key"] != "team" for t in tags)


def test_clusters(berth):
    name = unique("c")
    created = berth.aws("ecs", "create-cluster", "--cluster-name", name)["cluster"]
    arn = created["clusterArn"]
    assert arn == f"arn:aws:ecs:us-east-1:{berth.account_id}:cluster/{name}"
    assert created["status"] == "ACTIVE"
    described = berth.aws("ecs", "describe-clusters", "--clusters", name)
    assert described["clusters"][0]["clusterName"] == name
    assert described["clusters"][0]["status"] == "ACTIVE"
    assert arn in berth.aws("ecs", "list-clusters")["clusterArns"]
    deleted = berth.aws("ecs", "delete-cluster", "--cluster", arn)["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert arn not in berth.aws("ecs", "list-clusters")["clusterArns"]
    missing = berth.aws("ecs", "describe-clusters", "--clusters", "no-such-cluster-x")
    assert missing["failures"][0]["reason"] == "MISSING"


def test_stop_task_is_replaced(berth, cli_service):
    name = cli_service["name"]
    before = wait_for(
        "a running task",
        lambda: berth.aws("ecs", "list-tasks", "--cluster", "default", "--service-name", name)["taskArns"],
        60,
    )
    victim = before[0]
    stopped = berth.aws("ecs", "stop-task", "--cluster", "default", "--task", victim, "--reason", "e2e test")["task"]
    assert stopped["taskArn"] == victim
    assert stopped["desiredStatus"] == "STOPPED"

    def replaced():
        arns = berth.aws("ecs", "list-tasks", "--cluster", "default", "--service-name", name)["taskArns"]
        new = [a for a in arns if a != victim]
        if not new:
            return None
        tasks = berth.aws("ecs", "describe-tasks", "--cluster", "default", "--tasks", *new)["tasks"]
        return [t for t in tasks if t["lastStatus"] == "RUNNING"]

    wait_for("a replacement task to be RUNNING", replaced, 60)
    old = wait_for(
        "the stopped task to reach STOPPED",
        lambda: [
            t
            for t in berth.aws("ecs", "describe-tasks", "--cluster", "default", "--tasks", victim)["tasks"]
            if t["lastStatus"] == "STOPPED"
        ],
        60,
    )[0]
    assert old["desiredStatus"] == "STOPPED"
    assert "e2e test" in old.get("stoppedReason", ""), old
    assert old.get("stoppedAt")
    # Raises unless the replacement task answers.
    assert berth.wait_status(cli_service["endpoint"], 200, "/ping", timeout=60).text == "pong"
    stopped_list = berth.aws(
        "ecs", "list-tasks", "--cluster", "default", "--service-name", name, "--desired-status", "STOPPED"
    )["taskArns"]
    assert victim in stopped_list
