"""Bring-your-own task definitions with boto3 and the AWS CLI: RegisterTaskDefinition (`--cli-input-json`),
Describe/List/Deregister/DeleteTaskDefinitions, and an Express service created with `--task-definition-arn` that
answers over HTTPS with the task definition's environment (the demo's /env) on the definition's port."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from berthlib import unique, wait_for


def definition(berth, family: str, greeting: str) -> dict:
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "0.25 vCPU",
        "memory": "0.5 GB",
        "executionRoleArn": berth.role_arns()["executionRoleArn"],
        "containerDefinitions": [
            {
                "name": "Main",
                "image": "berth-demo:latest",
                "essential": True,
                "portMappings": [{"containerPort": 8081, "name": "web", "protocol": "tcp"}],
                "environment": [{"name": "GREETING", "value": greeting}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": f"/ecs/{family}",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "byo",
                    },
                },
            }
        ],
        "tags": [{"key": "team", "value": "web"}],
    }


def env_of(berth, host: str) -> dict[str, str]:
    body = berth.wait_status(host, 200, "/env", timeout=90).text
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def test_register_describe_list_deregister_delete_with_boto3(berth):
    ecs = berth.ecs()
    family = unique("td-boto")
    first = ecs.register_task_definition(**definition(berth, family, "one"))
    td = first["taskDefinition"]
    assert td["revision"] == 1 and td["status"] == "ACTIVE"
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8081
    assert first["tags"] == [{"key": "team", "value": "web"}]
    second = ecs.register_task_definition(**definition(berth, family, "two"))["taskDefinition"]
    assert second["revision"] == 2

    described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert described["taskDefinition"]["taskDefinitionArn"] == second["taskDefinitionArn"]
    assert described["tags"] == [{"key": "team", "value": "web"}]
    listed = ecs.list_task_definitions(familyPrefix=family, sort="DESC")["taskDefinitionArns"]
    assert listed == [second["taskDefinitionArn"], td["taskDefinitionArn"]]

    # Fargate's rules, as ECS words them.
    bad = definition(berth, unique("td-bad"), "x")
    bad["memory"] = "4096"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.register_task_definition(**bad)
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert "No Fargate configuration exists for given values: 256 CPU, 4096 memory" in str(e.value)

    inactive = ecs.deregister_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert inactive["status"] == "INACTIVE" and "deregisteredAt" in inactive
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [second["taskDefinitionArn"]]
    assert td["taskDefinitionArn"] in ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]

    deleted = ecs.delete_task_definitions(taskDefinitions=[td["taskDefinitionArn"], second["taskDefinitionArn"]])
    assert [d["status"] for d in deleted["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert [f["arn"] for f in deleted["failures"]] == [second["taskDefinitionArn"]]
    assert "still in ACTIVE status" in deleted["failures"][0]["reason"]
    after = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert after["status"] == "DELETE_IN_PROGRESS"
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == []


def test_cli_registers_and_an_express_service_runs_the_definition(berth, tmp_path):
    family = unique("td-cli")
    path = tmp_path / "td.json"
    path.write_text(json.dumps(definition(berth, family, "hello-from-my-task-definition")))
    registered = berth.aws("ecs", "register-task-definition", "--cli-input-json", f"file://{path}")
    td_arn = registered["taskDefinition"]["taskDefinitionArn"]
    assert td_arn.endswith(f":task-definition/{family}:1")

    # Express refuses the members the task definition gives.
    refused = berth.aws(
        "ecs", "create-express-gateway-service",
        "--task-definition-arn", td_arn,
        "--cpu", "512",
        "--infrastructure-role-arn", berth.role_arns()["infrastructureRoleArn"],
        check=False,
    )
    assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr and "cpu" in refused.stderr

    name = unique("byo")
    created = berth.aws(
        "ecs", "create-express-gateway-service",
        "--task-definition-arn", td_arn,
        "--infrastructure-role-arn", berth.role_arns()["infrastructureRoleArn"],
        "--service-name", name,
    )
    arn = created["service"]["serviceArn"]
    try:
        config = created["service"]["activeConfigurations"][0]
        assert config["taskDefinitionArn"] == td_arn
        assert config["primaryContainer"]["containerPort"] == 8081
        host = berth.wait_endpoint(arn)
        env = env_of(berth, host)
        assert env.get("GREETING") == "hello-from-my-task-definition"
        assert env.get("PORT") == "8081"
        # The running task names the user's definition, and berth registered no family of its own.
        tasks = berth.describe_tasks(berth.task_arns(name))
        assert tasks and {t["taskDefinitionArn"] for t in tasks} == {td_arn}
        families = berth.aws("ecs", "list-task-definitions", "--family-prefix", f"default-{name}")
        assert families["taskDefinitionArns"] == []

        # Deregistered: running tasks serve on; the definition can no longer be deployed.
        berth.aws("ecs", "deregister-task-definition", "--task-definition", td_arn)
        again = berth.aws(
            "ecs", "update-express-gateway-service", "--service-arn", arn, "--task-definition-arn", td_arn, check=False
        )
        assert again.returncode != 0 and "ClientException" in again.stderr and "inactive" in again.stderr
        assert berth.https_get(host, "/ping").status == 200

        # A second definition through boto3's update: the new revision's tasks carry its environment.
        second = berth.ecs().register_task_definition(**definition(berth, family, "second-revision"))
        td2 = second["taskDefinition"]["taskDefinitionArn"]
        updated = berth.ecs().update_express_gateway_service(serviceArn=arn, taskDefinitionArn=td2)
        assert updated["service"]["targetConfiguration"]["taskDefinitionArn"] == td2
        wait_for(
            "the service to answer with the second definition's environment",
            lambda: env_of(berth, host).get("GREETING") == "second-revision",
            480,
            interval=1,
        )
    finally:
        berth.best_effort_delete(arn)
