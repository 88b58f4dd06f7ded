"""Application Auto Scaling end to end: boto3's `application-autoscaling` client (JSON 1.1) against the real binary.

What an Express service provisions (the scalable target tagged AmazonECSManaged, the target tracking policy named
after the service and its metric, with its AlarmHigh/AlarmLow), RegisterScalableTarget moving the desired count into
new bounds (seen through ECS DescribeServices), a user's own target tracking and step policies, scheduled actions,
tags, activities, the alarms in CloudWatch, AWS-shaped errors, an UpdateExpressGatewayService scalingTarget that changes target and policy
without a deployment, and deletion removing them. The load-driven scale-out belongs to the metrics suites.
"""

from __future__ import annotations

import time

import botocore.exceptions
import pytest

from berthlib import REGION, unique, wait_for

NS = "ecs"
DIM = "ecs:service:DesiredCount"


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def desired(berth, name: str) -> int:
    return berth.ecs().describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]


def target_of(aas, rid: str) -> dict:
    targets = aas.describe_scalable_targets(ServiceNamespace=NS, ResourceIds=[rid])["ScalableTargets"]
    assert len(targets) == 1, targets
    return targets[0]


def test_express_scaling_round_trip_with_boto3(berth):
    berth.ensure_express_roles()
    aas = berth.client("application-autoscaling")
    name = unique("scale")
    rid = f"service/default/{name}"
    svc = berth.create_service(
        name,
        scalingTarget={
            "minTaskCount": 1,
            "maxTaskCount": 4,
            "autoScalingMetric": "AVERAGE_CPU",
            "autoScalingTargetValue": 60,
        },
    )
    arn = svc["serviceArn"]
    try:
        # What Express provisioned.
        target = target_of(aas, rid)
        assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableDimension"]) == (1, 4, DIM)
        assert target["ScalableTargetARN"].startswith(f"arn:aws:application-autoscaling:{REGION}:{berth.account_id}:scalable-target/")
        assert target["SuspendedState"] == {
            "DynamicScalingInSuspended": False,
            "DynamicScalingOutSuspended": False,
            "ScheduledScalingSuspended": False,
        }
        tags = aas.list_tags_for_resource(ResourceARN=target["ScalableTargetARN"])["Tags"]
        assert tags == {"AmazonECSManaged": "true"}
        policies = aas.describe_scaling_policies(ServiceNamespace=NS, ResourceId=rid)["ScalingPolicies"]
        assert [p["PolicyName"] for p in policies] == [f"{name}ECSServiceAverageCPUUtilization"]
        tt = policies[0]["TargetTrackingScalingPolicyConfiguration"]
        assert tt["TargetValue"] == 60.0
        assert tt["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
        alarm_names = sorted(a["AlarmName"] for a in policies[0]["Alarms"])
        assert len(alarm_names) == 2
        assert alarm_names[0].startswith(f"TargetTracking-{rid}-AlarmHigh-")
        assert alarm_names[1].startswith(f"TargetTracking-{rid}-AlarmLow-")
        # The alarms are CloudWatch's, as target tracking creates them (berth's 10-second defaults).
        cw = berth.client("cloudwatch")
        alarms = cw.describe_alarms(AlarmNamePrefix=f"TargetTracking-{rid}-")["MetricAlarms"]
        assert sorted(a["AlarmName"] for a in alarms) == alarm_names
        shape = sorted(
            (a["ComparisonOperator"], a["Threshold"], a["Period"], a["EvaluationPeriods"], a["Namespace"], a["MetricName"])
            for a in alarms
        )
        assert shape == [
            ("GreaterThanThreshold", 60.0, 10, 1, "AWS/ECS", "CPUUtilization"),
            ("LessThanThreshold", 54.0, 10, 30, "AWS/ECS", "CPUUtilization"),
        ]
        assert all(a["AlarmActions"] == [policies[0]["PolicyARN"]] for a in alarms)

        # RegisterScalableTarget moves the desired count into the new bounds; the reconciler follows.
        aas.register_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM, MinCapacity=2)
        assert target_of(aas, rid)["MinCapacity"] == 2
        assert desired(berth, name) == 2
        wait_for("two running tasks", lambda: len(berth.task_arns(name)) == 2, timeout=60)
        acts = aas.describe_scaling_activities(ServiceNamespace=NS, ResourceId=rid)["ScalingActivities"]
        assert acts[0]["Description"] == "Setting desired count to 2."
        assert acts[0]["StatusCode"] == "Successful"
        assert "minimum capacity 2" in acts[0]["Cause"]

        # A user's own policies: target tracking on memory and step scaling.
        put = aas.put_scaling_policy(
            PolicyName="mem",
            ServiceNamespace=NS,
            ResourceId=rid,
            ScalableDimension=DIM,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 75.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"},
                "ScaleInCooldown": 30,
                "DisableScaleIn": True,
            },
        )
        assert put["PolicyARN"].endswith(f":resource/ecs/{rid}:policyName/mem")
        assert [a["AlarmName"].split("-AlarmHigh-")[0] for a in put["Alarms"]] == [f"TargetTracking-{rid}"]
        aas.put_scaling_policy(
            PolicyName="steps",
            ServiceNamespace=NS,
            ResourceId=rid,
            ScalableDimension=DIM,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2},
                ],
                "Cooldown": 60,
            },
        )
        names = [p["PolicyName"] for p in aas.describe_scaling_policies(ServiceNamespace=NS, ResourceId=rid)["ScalingPolicies"]]
        assert sorted(names) == sorted([f"{name}ECSServiceAverageCPUUtilization", "mem", "steps"])
        paged = aas.get_paginator("describe_scaling_policies").paginate(
            ServiceNamespace=NS, ResourceId=rid, PaginationConfig={"PageSize": 1}
        )
        assert sorted(p["PolicyName"] for page in paged for p in page["ScalingPolicies"]) == sorted(names)
        aas.delete_scaling_policy(PolicyName="steps", ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM)

        # Scheduled actions.
        aas.put_scheduled_action(
            ServiceNamespace=NS,
            ScheduledActionName="nightly",
            ResourceId=rid,
            ScalableDimension=DIM,
            Schedule="cron(0 22 * * ? *)",
            ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 3},
        )
        actions = aas.describe_scheduled_actions(ServiceNamespace=NS, ResourceId=rid)["ScheduledActions"]
        assert [(a["ScheduledActionName"], a["Schedule"], a["ScalableTargetAction"]) for a in actions] == [
            ("nightly", "cron(0 22 * * ? *)", {"MinCapacity": 1, "MaxCapacity": 3})
        ]
        aas.delete_scheduled_action(ServiceNamespace=NS, ScheduledActionName="nightly", ResourceId=rid, ScalableDimension=DIM)
        assert aas.describe_scheduled_actions(ServiceNamespace=NS, ResourceId=rid)["ScheduledActions"] == []

        # Tags.
        t_arn = target["ScalableTargetARN"]
        aas.tag_resource(ResourceARN=t_arn, Tags={"team": "web"})
        aas.untag_resource(ResourceARN=t_arn, TagKeys=["team"])
        assert aas.list_tags_for_resource(ResourceARN=t_arn)["Tags"] == {"AmazonECSManaged": "true"}

        # Errors in AWS's shape.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            aas.register_scalable_target(ServiceNamespace=NS, ResourceId="service/default/nope", ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2)
        assert error_of(e)[0] == "ValidationException" and error_of(e)[2] == 400
        with pytest.raises(botocore.exceptions.ClientError) as e:
            aas.delete_scaling_policy(PolicyName="nope", ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM)
        assert error_of(e)[0] == "ObjectNotFoundException"
        with pytest.raises(aas.exceptions.ObjectNotFoundException):
            aas.put_scaling_policy(
                PolicyName="x",
                ServiceNamespace=NS,
                ResourceId="service/default/other",
                ScalableDimension=DIM,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": 50.0,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                },
            )

        # A new scalingTarget changes target and policy without a deployment.
        revision = berth.describe_service(arn)["activeConfigurations"][0]["serviceRevisionArn"]
        berth.ecs().update_express_gateway_service(
            serviceArn=arn, scalingTarget={"maxTaskCount": 8, "autoScalingTargetValue": 40}
        )
        assert target_of(aas, rid)["MaxCapacity"] == 8
        policy = next(
            p
            for p in aas.describe_scaling_policies(ServiceNamespace=NS, ResourceId=rid)["ScalingPolicies"]
            if p["PolicyName"] == f"{name}ECSServiceAverageCPUUtilization"
        )
        assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 40.0
        time.sleep(2)
        active = berth.describe_service(arn)["activeConfigurations"]
        assert [c["serviceRevisionArn"] for c in active] == [revision]
        assert active[0]["scalingTarget"]["maxTaskCount"] == 8
    finally:
        berth.delete_service(arn)
    # Deleting the service removed its scaling.
    assert aas.describe_scalable_targets(ServiceNamespace=NS, ResourceIds=[rid])["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace=NS, ResourceId=rid)["ScalingPolicies"] == []
    wait_for(
        "the policies' alarms to be deleted",
        lambda: berth.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"TargetTracking-{rid}-")["MetricAlarms"] == [],
        timeout=30,
    )
