"""The deployment alarm Express creates for every service, end to end: real containers, real proxy counts.

Two services of the demo image under the same bounded request loop through their HTTPS endpoints: one answers 500
to 20% of its `/` requests (`DEMO_FAIL_RATE=0.2`, `/ping` stays healthy, so its health checks pass), the other
never fails. The first one's alarm goes ALARM from the proxies' `AWS/ApplicationELB` counts (berth's 10-second
periods, 2 of 3); the second stays OK and never entered ALARM. Both are tagged `AmazonECSManaged=true` and leave
with their service.
"""

from __future__ import annotations

import json

from berthlib import RequestLoop, serving_service, unique, wait_for


def alarm_of(cw, service: str) -> dict | None:
    alarms = cw.describe_alarms(AlarmNames=[f"default-{service}-deployment-rollback"])["MetricAlarms"]
    return alarms[0] if alarms else None


def test_the_deployment_alarm_follows_real_errors_and_leaves_with_its_service(berth):
    cw = berth.client("cloudwatch")
    ecs = berth.ecs()
    bad_name = unique("alarm-bad")
    bad_arn = berth.create_service(bad_name, environment={"DEMO_FAIL_RATE": "0.2"})["serviceArn"]
    try:
        bad_host = berth.wait_endpoint(bad_arn, timeout=90)
        berth.wait_status(bad_host, 200, "/ping", timeout=90)
        with serving_service(berth, "alarm-good") as good:
            for name in (bad_name, good["name"]):
                alarm = alarm_of(cw, name)
                assert alarm is not None, f"{name} has no deployment alarm"
                tags = cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
                assert tags == [{"Key": "AmazonECSManaged", "Value": "true"}]
            with RequestLoop(berth, bad_host, pause=0.02, max_seconds=120) as bad_loop, RequestLoop(
                berth, good["endpoint"], pause=0.02, max_seconds=120
            ) as good_loop:
                fired = wait_for(
                    f"{bad_name}'s alarm to go ALARM",
                    lambda: (a := alarm_of(cw, bad_name)) and a["StateValue"] == "ALARM" and a,
                    timeout=90,
                    interval=1,
                )
                # The good one has seen the same stretch of traffic, evaluated on the same periods.
                wait_for(
                    f"{good['name']}'s alarm to be OK",
                    lambda: alarm_of(cw, good["name"])["StateValue"] == "OK",
                    timeout=30,
                    interval=1,
                )
            bad_statuses = [r[1] for r in bad_loop.results]
            assert bad_statuses.count(500) > 0 and bad_statuses.count(200) > 0, bad_statuses[:50]
            assert good_loop.failures() == [], good_loop.failures()[:5]
            assert fired["StateReason"].startswith("Threshold Crossed"), fired["StateReason"]
            history = cw.describe_alarm_history(
                AlarmName=f"default-{good['name']}-deployment-rollback", HistoryItemType="StateUpdate"
            )["AlarmHistoryItems"]
            states = [json.loads(h["HistoryData"])["newState"]["stateValue"] for h in history]
            assert "ALARM" not in states, states
        # serving_service deleted the good one: its alarm went with it.
        assert alarm_of(cw, good["name"]) is None
    finally:
        ecs.delete_express_gateway_service(serviceArn=bad_arn)
    assert alarm_of(cw, bad_name) is None, "the deletion takes the alarm at once"
