"""ECS's deployment APIs end to end, with boto3 and the AWS CLI against the real binary.

ListServiceDeployments / DescribeServiceDeployments after a create and an update (the update's deployment made fast
by UpdateService's own CANARY settings), DescribeServiceRevisions with `ecsManagedResources` whose every ARN is one the
owning service describes (ELBv2 target groups, rules, load balancers and listeners; CloudWatch alarms; Application
Auto Scaling targets and policies; EC2 security groups; CloudWatch Logs groups), UpdateService's validation errors
(strategy combinations, Lambda hooks, members Express does not take), and Stop/ContinueServiceDeployment's errors.
What a deployment does to traffic mid-way is the deployment suites' business; this file is about the API.
"""

from __future__ import annotations

import datetime
import json

import botocore.exceptions
import pytest

from berthlib import unique, wait_for

FINISHED = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["Error"]["Message"]


def cli_error(out) -> str:
    """The error code the AWS CLI printed for a failed command (`An error occurred (Code) when calling ...`)."""
    assert out.returncode != 0, out.stdout
    text = out.stderr
    start = text.index("An error occurred (") + len("An error occurred (")
    return text[start : text.index(")", start)]


def deployments(ecs, name: str) -> list[dict]:
    out, token = [], None
    while True:
        kw = {"service": name, "cluster": "default", "maxResults": 1}
        if token:
            kw["nextToken"] = token
        page = ecs.list_service_deployments(**kw)
        out += page["serviceDeployments"]
        token = page.get("nextToken")
        if not token:
            return out


def test_deployments_and_revisions_after_create_and_update(berth):
    ecs = berth.ecs()
    name = unique("dapi")
    svc = berth.create_service(name)
    arn = svc["serviceArn"]
    try:
        berth.wait_endpoint(arn)
        first_revision = svc["activeConfigurations"][0]["serviceRevisionArn"]
        # The create's deployment.
        created = wait_for("the create's deployment", lambda: deployments(ecs, name) or None, 30)
        assert created[0]["targetServiceRevisionArn"] == first_revision
        assert created[0]["serviceArn"] == arn
        assert created[0]["clusterArn"].endswith(":cluster/default")

        # Fast deployments from now on: a CANARY with no bakes, set through UpdateService (berth's departure).
        fast = {
            "strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0},
            "bakeTimeInMinutes": 0,
        }
        updated = ecs.update_service(cluster="default", service=name, deploymentConfiguration=fast)["service"]
        assert updated["deploymentConfiguration"]["strategy"] == "CANARY"
        assert updated["deploymentConfiguration"]["canaryConfiguration"] == fast["canaryConfiguration"]

        new = ecs.update_express_gateway_service(
            serviceArn=arn,
            primaryContainer={"image": svc["activeConfigurations"][0]["primaryContainer"]["image"],
                              "environment": [{"name": "V", "value": "2"}]},
        )["service"]
        second_revision = new["targetConfiguration"]["serviceRevisionArn"]
        assert second_revision != first_revision

        listed = deployments(ecs, name)
        assert len(listed) == 2, listed
        newest = listed[0]
        assert newest["targetServiceRevisionArn"] == second_revision
        assert [d["targetServiceRevisionArn"] for d in listed].count(first_revision) == 1
        # Status filter and the createdAt window find it.
        second = datetime.timedelta(seconds=1)
        in_window = ecs.list_service_deployments(
            service=arn, createdAt={"after": newest["createdAt"] - second, "before": newest["createdAt"] + second}
        )["serviceDeployments"]
        assert newest["serviceDeploymentArn"] in [d["serviceDeploymentArn"] for d in in_window]
        later = ecs.list_service_deployments(service=arn, createdAt={"after": newest["createdAt"] + second})
        assert later["serviceDeployments"] == []

        def finished():
            d = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"]])
            got = d["serviceDeployments"][0]
            return got if got["status"] in FINISHED else None

        done = wait_for("the update's deployment to finish", finished, 180, interval=1)
        assert done["status"] == "SUCCESSFUL", done
        assert done["targetServiceRevision"]["arn"] == second_revision
        assert [s["arn"] for s in done["sourceServiceRevisions"]] == [first_revision]
        assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0
        assert done["deploymentConfiguration"]["strategy"] == "CANARY"
        assert done["finishedAt"] >= done["startedAt"] >= done["createdAt"]
        assert done["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE", done
        by_status = ecs.list_service_deployments(service=name, status=["SUCCESSFUL"])["serviceDeployments"]
        assert newest["serviceDeploymentArn"] in [d["serviceDeploymentArn"] for d in by_status]

        # The same through the AWS CLI.
        cli = berth.aws("ecs", "describe-service-deployments", "--service-deployment-arns", newest["serviceDeploymentArn"])
        assert cli["serviceDeployments"][0]["status"] == "SUCCESSFUL"
        assert cli["failures"] == []
        cli_list = berth.aws("ecs", "list-service-deployments", "--service", name, "--cluster", "default")
        assert cli_list["serviceDeployments"][0]["serviceDeploymentArn"] == newest["serviceDeploymentArn"]

        # DescribeServices: the current deployment and the service's revision.
        service = ecs.describe_services(cluster="default", services=[name])["services"][0]
        assert service["currentServiceDeployment"] == newest["serviceDeploymentArn"]
        assert service["deployments"][0]["status"] == "PRIMARY"
        assert service["deployments"][0]["rolloutState"] == "COMPLETED"
        assert second_revision in [r["arn"] for r in service["currentServiceRevisions"]]

        # A finished deployment can be neither stopped nor continued.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.stop_service_deployment(serviceDeploymentArn=newest["serviceDeploymentArn"], stopType="ROLLBACK")
        assert error_of(e)[0] == "ConflictException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.continue_service_deployment(serviceDeploymentArn=newest["serviceDeploymentArn"], hookId="ecs-pause-x")
        assert error_of(e)[0] == "InvalidParameterException"

    finally:
        berth.best_effort_delete(arn)


def test_service_revisions_name_resources_that_exist(berth):
    name = unique("drev")
    svc = berth.create_service(name)
    arn = svc["serviceArn"]
    try:
        berth.wait_endpoint(arn)
        first = svc["activeConfigurations"][0]["serviceRevisionArn"]
        new = berth.ecs().update_express_gateway_service(serviceArn=arn, healthCheckPath="/ping?v=2")["service"]
        second = new["targetConfiguration"]["serviceRevisionArn"]
        check_revisions(berth, name, [first, second])
    finally:
        berth.best_effort_delete(arn)


def check_revisions(berth, name: str, revisions: list[str]) -> None:
    """DescribeServiceRevisions' ecsManagedResources, each ARN cross-checked with its own service's API."""
    ecs = berth.ecs()
    got = ecs.describe_service_revisions(serviceRevisionArns=revisions)
    assert got["failures"] == []
    assert [r["serviceRevisionArn"] for r in got["serviceRevisions"]] == revisions
    elb = berth.client("elbv2")
    for revision in got["serviceRevisions"]:
        assert revision["launchType"] == "FARGATE"
        assert revision["containerImages"][0]["image"]
        assert revision["taskDefinition"] == ecs.describe_task_definition(taskDefinition=revision["taskDefinition"])[
            "taskDefinition"
        ]["taskDefinitionArn"]
        managed = revision["ecsManagedResources"]
        path = managed["ingressPaths"][0]
        assert path["accessType"] == "PUBLIC"
        lb = path["loadBalancer"]
        assert lb["status"] == "ACTIVE"
        lbs = elb.describe_load_balancers(LoadBalancerArns=[lb["arn"]])["LoadBalancers"]
        assert lbs[0]["Scheme"] == lb["scheme"]
        assert sorted(lbs[0]["SecurityGroups"]) == sorted(lb["securityGroupIds"])
        listeners = elb.describe_listeners(LoadBalancerArn=lb["arn"])["Listeners"]
        assert path["listener"]["arn"] in [l["ListenerArn"] for l in listeners]
        rules = elb.describe_rules(RuleArns=[path["rule"]["arn"]])["Rules"]
        forwarded = {
            g["TargetGroupArn"] for a in rules[0]["Actions"] for g in (a.get("ForwardConfig") or {}).get("TargetGroups", [])
        }
        tg = path["targetGroups"][0]
        assert tg["arn"] in forwarded
        groups = elb.describe_target_groups(TargetGroupArns=[tg["arn"]])["TargetGroups"]
        assert (groups[0]["HealthCheckPath"], groups[0]["Port"]) == (tg["healthCheckPath"], tg["port"])
        assert revision["resolvedConfiguration"]["loadBalancers"][0]["targetGroupArn"] == tg["arn"]
        assert revision["resolvedConfiguration"]["loadBalancers"][0]["productionListenerRule"] == path["rule"]["arn"]
        certs = elb.describe_listener_certificates(ListenerArn=path["listener"]["arn"])["Certificates"]
        assert path["certificate"]["arn"] in [c["CertificateArn"] for c in certs]
        assert path["certificate"]["domainName"] == path["endpoint"].removeprefix("https://")

        aas = berth.client("application-autoscaling")
        target = managed["autoScaling"]["scalableTarget"]
        targets = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[f"service/default/{name}"])[
            "ScalableTargets"
        ]
        assert targets[0]["ScalableTargetARN"] == target["arn"]
        assert (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) == (target["minCapacity"], target["maxCapacity"])
        policies = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=f"service/default/{name}")[
            "ScalingPolicies"
        ]
        assert sorted(p["PolicyARN"] for p in policies) == sorted(
            p["arn"] for p in managed["autoScaling"]["applicationAutoScalingPolicies"]
        )

        cw = berth.client("cloudwatch")
        alarm_arns = [a["arn"] for a in managed["metricAlarms"]]
        names = [a.rsplit(":alarm:", 1)[1] for a in alarm_arns]
        described = cw.describe_alarms(AlarmNames=names)["MetricAlarms"]
        assert sorted(a["AlarmArn"] for a in described) == sorted(alarm_arns)
        scaling_alarms = [a["AlarmName"] for p in policies for a in p["Alarms"]]
        assert set(scaling_alarms) <= set(names)

        ec2 = berth.client("ec2")
        group_ids = [g["arn"].rsplit("/", 1)[1] for g in managed["serviceSecurityGroups"]]
        group_ids += [g["arn"].rsplit("/", 1)[1] for g in path["loadBalancerSecurityGroups"]]
        found = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
        assert sorted(g["GroupId"] for g in found) == sorted(group_ids)

        logs = berth.client("logs")
        log_group = managed["logGroups"][0]
        groups = logs.describe_log_groups(logGroupNamePrefix=log_group["logGroupName"])["logGroups"]
        assert log_group["arn"] in [g["arn"] for g in groups] + [g["arn"].removesuffix(":*") for g in groups]
        statuses = {
            lb["status"],
            tg["status"],
            path["listener"]["status"],
            path["rule"]["status"],
            target["status"],
            log_group["status"],
            *[a["status"] for a in managed["metricAlarms"]],
            *[g["status"] for g in managed["serviceSecurityGroups"]],
        }
        assert statuses == {"ACTIVE"}

    # The CLI answers the same, and an unknown revision is MISSING.
    cli = berth.aws("ecs", "describe-service-revisions", "--service-revision-arns", revisions[0], revisions[0] + "9")
    assert cli["serviceRevisions"][0]["serviceRevisionArn"] == revisions[0]
    assert [(f["arn"], f["reason"]) for f in cli["failures"]] == [(revisions[0] + "9", "MISSING")]


# (what, deploymentConfiguration, expected error code)
BAD_CONFIGURATIONS = [
    ("canary settings under LINEAR", {"strategy": "LINEAR", "canaryConfiguration": {"canaryPercent": 5.0}}, "InvalidParameterException"),
    ("linear settings under CANARY", {"strategy": "CANARY", "linearConfiguration": {"stepPercent": 10.0}}, "InvalidParameterException"),
    ("canary percent below 0.1", {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.01}}, "InvalidParameterException"),
    ("linear step below 3", {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 1.0}}, "InvalidParameterException"),
    ("blue/green without bakeTimeInMinutes", {"strategy": "BLUE_GREEN"}, "InvalidParameterException"),
    ("a canary bake beyond a day", {"strategy": "CANARY", "canaryConfiguration": {"canaryBakeTimeInMinutes": 1441}}, "InvalidParameterException"),
    ("early success under BLUE_GREEN", {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1, "earlySuccessCriteria": {"enable": True, "healthyPercent": 50}}, "InvalidParameterException"),
    (
        "a Lambda hook",
        {
            "strategy": "CANARY",
            "lifecycleHooks": [
                {
                    "targetType": "AWS_LAMBDA",
                    "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:gate",
                    "roleArn": "arn:aws:iam::123456789012:role/hooks",
                    "lifecycleStages": ["POST_SCALE_UP"],
                }
            ],
        },
        "UnsupportedFeatureException",
    ),
    (
        "a pause at PRODUCTION_TRAFFIC_SHIFT",
        {"strategy": "CANARY", "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]},
        "InvalidParameterException",
    ),
    (
        "a pause timeout beyond 20160 minutes",
        {
            "strategy": "CANARY",
            "lifecycleHooks": [
                {
                    "targetType": "PAUSE",
                    "lifecycleStages": ["POST_SCALE_UP"],
                    "timeoutConfiguration": {"timeoutInMinutes": 20161, "action": "ROLLBACK"},
                }
            ],
        },
        "InvalidParameterException",
    ),
    ("an alarm that does not exist", {"strategy": "CANARY", "alarms": {"alarmNames": ["no-such"], "enable": True, "rollback": True}}, "InvalidParameterException"),
]


def test_update_service_validation_with_boto3_and_the_cli(berth):
    ecs = berth.ecs()
    name = unique("dval")
    arn = berth.create_service(name)["serviceArn"]
    try:
        before = ecs.describe_services(cluster="default", services=[name])["services"][0]["deploymentConfiguration"]
        for what, config, code in BAD_CONFIGURATIONS:
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ecs.update_service(cluster="default", service=name, deploymentConfiguration=config)
            assert error_of(e)[0] == code, what
            if "earlySuccessCriteria" in config:
                continue  # the pinned CLI's vendored model (botocore 1.43) predates earlySuccessCriteria
            out = berth.aws(
                "ecs", "update-service", "--cluster", "default", "--service", name,
                "--deployment-configuration", json.dumps(config), check=False,
            )
            assert cli_error(out) == code, what
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster="default", service=name, deploymentConfiguration=BAD_CONFIGURATIONS[7][1])
        assert "berth runs no Lambda functions" in error_of(e)[1]
        after = ecs.describe_services(cluster="default", services=[name])["services"][0]["deploymentConfiguration"]
        assert after == before, "a refused update stores nothing"

        # Members an Express service does not take are named.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.update_service(cluster="default", service=name, platformVersion="1.4.0")
        assert error_of(e)[0] == "InvalidParameterException"
        assert "platformVersion" in error_of(e)[1]
        # desiredCount within the scaling target's bounds (1 to 20 by default).
        out = berth.aws("ecs", "update-service", "--service", name, "--desired-count", "21", check=False)
        assert cli_error(out) == "InvalidParameterException"
        ok = berth.aws("ecs", "update-service", "--service", name, "--desired-count", "2")
        assert ok["service"]["desiredCount"] == 2
        # A good configuration with a PAUSE hook is stored and shown.
        good = {
            "strategy": "LINEAR",
            "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 0},
            "bakeTimeInMinutes": 0,
            "lifecycleHooks": [
                {
                    "targetType": "PAUSE",
                    "lifecycleStages": ["POST_SCALE_UP"],
                    "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "CONTINUE"},
                }
            ],
        }
        shown = berth.aws(
            "ecs", "update-service", "--service", name, "--deployment-configuration", json.dumps(good)
        )["service"]["deploymentConfiguration"]
        assert shown["strategy"] == "LINEAR"
        assert shown["linearConfiguration"] == good["linearConfiguration"]
        assert shown["lifecycleHooks"][0]["targetType"] == "PAUSE"
        described = ecs.describe_services(cluster="default", services=[name])["services"][0]
        assert described["deploymentConfiguration"]["strategy"] == "LINEAR"
    finally:
        berth.best_effort_delete(arn)


def test_deployment_operation_errors_with_the_cli(berth):
    name = unique("derr")
    arn = berth.create_service(name)["serviceArn"]
    try:
        unknown = arn.replace(":service/", ":service-deployment/") + "/NoSuchDeployment00000"
        out = berth.aws("ecs", "stop-service-deployment", "--service-deployment-arn", unknown, "--stop-type", "ROLLBACK", check=False)
        assert cli_error(out) == "ServiceDeploymentNotFoundException"
        out = berth.aws(
            "ecs", "continue-service-deployment", "--service-deployment-arn", unknown, "--hook-id", "ecs-pause-x", check=False
        )
        assert cli_error(out) == "ServiceDeploymentNotFoundException"
        described = berth.aws("ecs", "describe-service-deployments", "--service-deployment-arns", unknown)
        assert described["serviceDeployments"] == []
        assert [(f["arn"], f["reason"]) for f in described["failures"]] == [(unknown, "MISSING")]
        out = berth.aws("ecs", "list-service-deployments", "--service", name + "-nope", check=False)
        assert cli_error(out) == "ServiceNotFoundException"
        out = berth.aws("ecs", "list-service-deployments", "--service", name, "--cluster", "no-such-cluster", check=False)
        assert cli_error(out) == "ClusterNotFoundException"
        out = berth.aws("ecs", "list-service-deployments", "--service", name, "--max-results", "101", check=False)
        assert cli_error(out) == "InvalidParameterException"
    finally:
        berth.best_effort_delete(arn)
