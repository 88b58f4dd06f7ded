"""CloudWatch alarms end to end: boto3 (and the pinned AWS CLI) against the real binary.

An alarm on a custom metric (PutMetricData, high resolution) goes OK → ALARM → OK on berth's 10-second cadence,
with its reasons and its history; SetAlarmState shows a forced state that the next evaluation recomputes; the
errors are CloudWatch's; a kill -9 of the server keeps every alarm's state and history.
"""

from __future__ import annotations

import json
import os
import signal

import botocore.exceptions
import pytest

from berthlib import REGION, restarted, unique, wait_for

LOW, HIGH, THRESHOLD = 20.0, 500.0, 100.0


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def put_alarm(cw, name: str, namespace: str, **kw) -> None:
    args = dict(
        AlarmName=name,
        AlarmDescription="p-latency too high",
        Namespace=namespace,
        MetricName="Latency",
        Dimensions=[{"Name": "Service", "Value": "web"}],
        Statistic="Average",
        Period=10,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=THRESHOLD,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="missing",
        Unit="Milliseconds",
        Tags=[{"Key": "team", "Value": "web"}],
    )
    args.update(kw)
    cw.put_metric_alarm(**args)


def publish(cw, namespace: str, value: float) -> None:
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": [{"Name": "Service", "Value": "web"}],
                "Value": value,
                "Unit": "Milliseconds",
                "StorageResolution": 1,
            }
        ],
    )


def alarm(cw, name: str) -> dict:
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == [name]
    return alarms[0]


def state_while_publishing(cw, name: str, namespace: str, value: float, want: str, timeout: float = 60) -> dict:
    """Publishes `value` about once a second until the alarm is in `want`; returns the alarm then."""

    def probe():
        publish(cw, namespace, value)
        a = alarm(cw, name)
        return a if a["StateValue"] == want else None

    return wait_for(f"{name} in {want}", probe, timeout, 1.0)


def state_updates(cw, name: str) -> list[str]:
    items = cw.describe_alarm_history(
        AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending"
    )["AlarmHistoryItems"]
    return [i["HistorySummary"] for i in items]


def test_an_alarm_on_a_custom_metric_goes_ok_alarm_ok_with_history(berth):
    cw = berth.client("cloudwatch")
    name, namespace = unique("e2e-latency"), unique("E2E/Alarms")
    put_alarm(cw, name, namespace)
    created = alarm(cw, name)
    assert created["StateValue"] == "INSUFFICIENT_DATA"
    assert created["StateReason"] == "Unchecked: Initial alarm creation"
    assert created["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{berth.account_id}:alarm:{name}"
    assert (created["Period"], created["EvaluationPeriods"], created["DatapointsToAlarm"]) == (10, 2, 2)
    assert (created["Threshold"], created["ComparisonOperator"], created["Unit"]) == (
        THRESHOLD,
        "GreaterThanThreshold",
        "Milliseconds",
    )
    assert created["Dimensions"] == [{"Name": "Service", "Value": "web"}]
    assert created["ActionsEnabled"] is True

    ok = state_while_publishing(cw, name, namespace, LOW, "OK")
    assert ok["StateReason"].startswith("Threshold Crossed: "), ok["StateReason"]
    high = state_while_publishing(cw, name, namespace, HIGH, "ALARM")
    reason = high["StateReason"]
    assert reason.startswith("Threshold Crossed: 2 out of the last 2 datapoints [500.0 ("), reason
    assert reason.endswith(
        "were greater than the threshold (100.0) (minimum 2 datapoints for OK -> ALARM transition)."
    ), reason
    data = json.loads(high["StateReasonData"])
    assert (data["version"], data["statistic"], data["period"], data["threshold"]) == ("1.0", "Average", 10, 100.0)
    # The older period may mix the last low and the first high values; the newest is all high.
    assert len(data["recentDatapoints"]) == 2 and data["recentDatapoints"][-1] == HIGH, data
    assert all(v > THRESHOLD for v in data["recentDatapoints"]), data
    assert high["StateTransitionedTimestamp"] >= ok["StateTransitionedTimestamp"]
    state_while_publishing(cw, name, namespace, LOW, "OK")

    assert state_updates(cw, name) == [
        "Alarm updated from INSUFFICIENT_DATA to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    items = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items][0] == "Alarm updated from ALARM to OK", "newest first by default"
    change = json.loads(items[1]["HistoryData"])
    assert (change["oldState"]["stateValue"], change["newState"]["stateValue"]) == ("OK", "ALARM")
    config = cw.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in config] == [f'Alarm "{name}" created']

    # The alarm is found by its metric, and by the AWS CLI.
    by_metric = cw.describe_alarms_for_metric(
        Namespace=namespace, MetricName="Latency", Dimensions=[{"Name": "Service", "Value": "web"}]
    )["MetricAlarms"]
    assert [a["AlarmName"] for a in by_metric] == [name]
    out = berth.aws("cloudwatch", "describe-alarms", "--alarm-name-prefix", name, "--state-value", "OK")
    assert [a["AlarmName"] for a in out["MetricAlarms"]] == [name]

    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    assert len(state_updates(cw, name)) == 3, "history outlives the alarm"


def test_set_alarm_state_is_recomputed_by_the_next_evaluation(berth):
    cw = berth.client("cloudwatch")
    name, namespace = unique("e2e-forced"), unique("E2E/Alarms")
    put_alarm(cw, name, namespace, EvaluationPeriods=1, DatapointsToAlarm=1)
    state_while_publishing(cw, name, namespace, LOW, "OK")
    cw.set_alarm_state(
        AlarmName=name,
        StateValue="ALARM",
        StateReason="testing the pager",
        StateReasonData=json.dumps({"version": "1.0", "recentDatapoints": [999.0], "threshold": THRESHOLD}),
    )
    forced = alarm(cw, name)
    assert (forced["StateValue"], forced["StateReason"]) == ("ALARM", "testing the pager")
    state_while_publishing(cw, name, namespace, LOW, "OK", timeout=30)
    assert state_updates(cw, name)[-2:] == ["Alarm updated from OK to ALARM", "Alarm updated from ALARM to OK"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="x", StateReasonData="{not json")
    assert error_of(e) == ("InvalidFormat", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.set_alarm_state(AlarmName=unique("missing"), StateValue="ALARM", StateReason="x")
    assert error_of(e) == ("ResourceNotFound", 404)
    cw.delete_alarms(AlarmNames=[name])


def test_put_metric_alarm_refuses_what_cloudwatch_refuses(berth):
    cw = berth.client("cloudwatch")
    namespace = unique("E2E/Alarms")
    cases = [
        (dict(Period=45), "InvalidParameterValue"),
        (dict(EvaluationPeriods=2, DatapointsToAlarm=3), "InvalidParameterValue"),
        (dict(ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold"), "InvalidParameterValue"),
        (dict(ExtendedStatistic="p99"), "InvalidParameterCombination"),
        (dict(AlarmActions=["arn:aws:sqs:us-east-1:123456789012:queue"]), "ValidationError"),
    ]
    for extra, code in cases:
        name = unique("e2e-bad")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            put_alarm(cw, name, namespace, **extra)
        assert error_of(e) == (code, 400), extra
        assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_a_killed_server_keeps_alarm_state_and_history(berth):
    cw = berth.client("cloudwatch")
    name, namespace = unique("e2e-durable"), unique("E2E/Alarms")
    # `ignore`: datapoints still in flight when the server dies cannot move the state.
    put_alarm(cw, name, namespace, EvaluationPeriods=1, DatapointsToAlarm=1, TreatMissingData="ignore")
    state_while_publishing(cw, name, namespace, HIGH, "ALARM")
    before = alarm(cw, name)
    history = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]

    old_pid = berth.pid_of("server")
    os.kill(old_pid, signal.SIGKILL)
    wait_for("the supervisor to restart the server", lambda: restarted(berth, "server", old_pid), 30, 0.1)
    cw = berth.client("cloudwatch")
    after = wait_for("the restarted API to answer", lambda: alarm(cw, name), 30)
    for key in ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp", "Threshold"):
        assert after[key] == before[key], key
    assert cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"] == history
    # Evaluation goes on from the stored state.
    state_while_publishing(cw, name, namespace, LOW, "OK")
    cw.delete_alarms(AlarmNames=[name])


def test_alarms_read_the_same_in_every_protocol(berth, tmp_path):
    """The same alarm, history and errors over JSON 1.0 (boto3 as it is), Smithy RPC v2 CBOR and Query (botocore
    forced to each through a model copy)."""
    cw = berth.client("cloudwatch")
    name, namespace = unique("e2e-protocols"), unique("E2E/Alarms")
    topic = f"arn:aws:sns:{REGION}:{berth.account_id}:ops"
    put_alarm(cw, name, namespace, EvaluationPeriods=1, DatapointsToAlarm=1, AlarmActions=[topic])
    state_while_publishing(cw, name, namespace, HIGH, "ALARM")
    # berth accepts SNS actions and records them as not executable (docs/alarms.md).
    action = wait_for(
        "the SNS action's history item",
        lambda: cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"],
        10,
    )
    assert action[0]["HistorySummary"].startswith(f"Failed to execute action {topic}. Received error: "), action
    assert json.loads(action[0]["HistoryData"])["actionState"] == "Failed"
    clients = {"json": cw}
    for protocol in ("smithy-rpc-v2-cbor", "query"):
        clients[protocol] = berth.forced_protocol_client("cloudwatch", protocol, tmp_path / protocol)
    answers = {}
    for protocol, client in clients.items():
        alarms = client.describe_alarms(AlarmNames=[name])
        history = client.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")
        answers[protocol] = (alarms["MetricAlarms"], alarms.get("CompositeAlarms"), history["AlarmHistoryItems"])
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.set_alarm_state(AlarmName=unique("missing"), StateValue="OK", StateReason="x")
        assert error_of(e) == ("ResourceNotFound", 404), protocol
    metric_alarms, composites, history = answers["json"]
    assert [a["StateValue"] for a in metric_alarms] == ["ALARM"]
    assert metric_alarms[0]["AlarmActions"] == [topic]
    assert composites == []
    assert [i["HistoryItemType"] for i in history][:2] == ["ConfigurationUpdate", "StateUpdate"]
    assert answers["smithy-rpc-v2-cbor"] == answers["json"]
    assert answers["query"] == answers["json"]
    cw.delete_alarms(AlarmNames=[name])
