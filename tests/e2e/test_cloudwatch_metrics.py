"""CloudWatch metrics with boto3 against the real binary: exact counts and percentiles within the sketch's 1%,
high-resolution periods, a clean restart of the server that loses no acknowledged datapoint (the write buffer is
flushed at the stop), and dashboards with their typed errors."""

from __future__ import annotations

import datetime
import json
import os
import signal
import uuid

import pytest
from botocore.exceptions import ClientError

from berthlib import restarted, wait_for

UTC = datetime.timezone.utc


def _base() -> datetime.datetime:
    """A minute boundary about ten minutes ago: every datum lands after it, within the 1-second tier's 3 hours."""
    now = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - datetime.timedelta(minutes=10)


@pytest.fixture
def cw(berth):
    return berth.client("cloudwatch")


def test_counts_are_exact_and_percentiles_within_one_percent(cw):
    ns = f"E2E/Metrics/{uuid.uuid4().hex[:8]}"
    base = _base()
    # Three minutes, each with the values 1..150 (× the minute's number) twice.
    for k in range(3):
        values = [float(v * (k + 1)) for v in range(1, 151)]
        cw.put_metric_data(Namespace=ns, MetricData=[{
            "MetricName": "Latency", "Timestamp": base + datetime.timedelta(seconds=60 * k + 5),
            "Values": values, "Counts": [2.0] * 150, "Unit": "Milliseconds",
        }])
    window = {"StartTime": base, "EndTime": base + datetime.timedelta(minutes=3), "Period": 60}
    basic = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Statistics=["SampleCount", "Sum"], **window)
    got = sorted((p["Timestamp"], p["SampleCount"], p["Sum"], p["Unit"]) for p in basic["Datapoints"])
    want = [(base + datetime.timedelta(minutes=k), 300.0, 22650.0 * (k + 1), "Milliseconds") for k in range(3)]
    assert got == want
    extended = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", ExtendedStatistics=["p50", "p99"], **window)
    for p in extended["Datapoints"]:
        k = (p["Timestamp"] - base) // datetime.timedelta(minutes=1)
        for stat, want_value in (("p50", 75.0 * (k + 1)), ("p99", 149.0 * (k + 1))):
            assert p["ExtendedStatistics"][stat] == pytest.approx(want_value, rel=0.015), (k, stat, p)
    # GetMetricData answers the same counts, and math over them.
    data = cw.get_metric_data(
        MetricDataQueries=[
            {"Id": "n", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency"}, "Period": 60, "Stat": "SampleCount"}},
            {"Id": "half", "Expression": "n / 2"},
        ],
        StartTime=base, EndTime=base + datetime.timedelta(minutes=3), ScanBy="TimestampAscending",
    )
    results = {r["Id"]: (r["Values"], r["StatusCode"]) for r in data["MetricDataResults"]}
    assert results == {"n": ([300.0] * 3, "Complete"), "half": ([150.0] * 3, "Complete")}


def test_a_clean_server_restart_loses_no_datapoint(berth, cw):
    ns = f"E2E/Restart/{uuid.uuid4().hex[:8]}"
    base = _base()
    sent = []
    for s in range(0, 120, 20):
        batch = [{
            "MetricName": "Hits", "Timestamp": base + datetime.timedelta(seconds=s + i), "Value": float(s + i),
            "StorageResolution": 1,
        } for i in range(20)]
        cw.put_metric_data(Namespace=ns, MetricData=batch)
        sent += [(base + datetime.timedelta(seconds=s + i), float(s + i)) for i in range(20)]
    # At once, before the once-a-second write: the stop itself must write what was acknowledged.
    old_pid = berth.pid_of("server")
    os.kill(old_pid, signal.SIGTERM)
    wait_for("the supervisor to restart the server", lambda: restarted(berth, "server", old_pid), 30, 0.1)

    def read():
        return cw.get_metric_statistics(
            Namespace=ns, MetricName="Hits", StartTime=base, EndTime=base + datetime.timedelta(minutes=2),
            Period=1, Statistics=["Sum", "SampleCount"],
        )["Datapoints"]

    wait_for("the restarted API to answer", lambda: read() is not None, 30)
    points = sorted((p["Timestamp"], p["Sum"]) for p in read())
    assert points == sent
    assert all(p["SampleCount"] == 1.0 for p in read())
    ten = cw.get_metric_statistics(
        Namespace=ns, MetricName="Hits", StartTime=base, EndTime=base + datetime.timedelta(minutes=2),
        Period=10, Statistics=["SampleCount"],
    )["Datapoints"]
    assert sorted(p["SampleCount"] for p in ten) == [10.0] * 12


def test_dashboards(cw):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
                                    "properties": {"metrics": [["App", "Latency"]], "region": "us-east-1"}}]})
    out = cw.put_dashboard(DashboardName=name, DashboardBody=body)
    assert out["DashboardValidationMessages"] == []
    got = cw.get_dashboard(DashboardName=name)
    assert (got["DashboardName"], got["DashboardBody"]) == (name, body)
    assert got["DashboardArn"].startswith("arn:aws:cloudwatch::") and got["DashboardArn"].endswith(f":dashboard/{name}")
    listed = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
    assert [(e["DashboardName"], e["Size"]) for e in listed] == [(name, len(body))]
    cw.tag_resource(ResourceARN=got["DashboardArn"], Tags=[{"Key": "team", "Value": "web"}])
    assert cw.list_tags_for_resource(ResourceARN=got["DashboardArn"])["Tags"] == [{"Key": "team", "Value": "web"}]
    with pytest.raises(ClientError) as bad:
        cw.put_dashboard(DashboardName=name, DashboardBody="{}")
    assert bad.value.response["Error"]["Code"] == "InvalidParameterInput", bad.value.response
    cw.delete_dashboards(DashboardNames=[name])
    # DashboardNotFoundError's Query code is ResourceNotFound, which botocore reports (as it does against AWS).
    with pytest.raises(ClientError) as missing:
        cw.get_dashboard(DashboardName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound", missing.value.response
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
