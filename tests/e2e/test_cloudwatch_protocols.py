"""CloudWatch over each of the three protocols its model lists, spoken by real clients against the real binary:
boto3 as it is (AWS JSON 1.0), botocore forced to Smithy RPC v2 CBOR and to Query (a model copy listing only that
protocol; a `before-send` hook proves what went on the wire), and the AWS CLI. Data written through any protocol
reads back the same through every protocol, and a bad request gets the same error code in all of them.

The data tests need the CloudWatch API (PutMetricData, GetMetricData, GetMetricStatistics, ListMetrics); the
protocol and error tests run on the routing and decoding alone.
"""

from __future__ import annotations

import datetime
import gzip
import json
import uuid

import pytest
from botocore.exceptions import ClientError

from berthlib import wait_for

PROTOCOLS = ["json", "smithy-rpc-v2-cbor", "query"]


class WireLog:
    """What a client put on the wire, recorded by a `before-send` hook (botocore's last event before sending)."""

    def __init__(self, client):
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        client.meta.events.register("before-send.cloudwatch", self._record)

    def _record(self, request, **_):
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        self.requests.append((request.url, headers, body))

    def assert_spoke(self, protocol: str) -> None:
        assert self.requests, "the client sent nothing"
        for url, headers, body in self.requests:
            content_type = headers.get("content-type")
            if protocol == "json":
                assert content_type == "application/x-amz-json-1.0", headers
                assert "x-amz-target" in headers and "smithy-protocol" not in headers, headers
                json.loads(gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body)
            elif protocol == "smithy-rpc-v2-cbor":
                assert "/service/GraniteServiceVersion20100801/operation/" in url, url
                assert headers.get("smithy-protocol") == "rpc-v2-cbor", headers
                # The Smithy spec: a request without a body carries no Content-Type.
                assert content_type == ("application/cbor" if body else None), headers
                assert "x-amz-target" not in headers, headers
            else:
                assert content_type.startswith("application/x-www-form-urlencoded"), headers
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                assert b"Action=" in body and b"Version=2010-08-01" in body, body


@pytest.fixture
def clients(berth, tmp_path):
    """One CloudWatch client per protocol, each with the log of what it sent."""
    out = {}
    for protocol in PROTOCOLS:
        if protocol == "json":
            client = berth.client("cloudwatch")
            # What boto3 speaks on its own.
            assert client.meta.service_model.resolved_protocol == "json"
        else:
            client = berth.forced_protocol_client("cloudwatch", protocol, tmp_path / protocol)
        out[protocol] = (client, WireLog(client))
    return out


def _response_content_type(response) -> str:
    return response["ResponseMetadata"]["HTTPHeaders"].get("content-type", "")


def _bad_unit(client, namespace: str):
    # botocore checks types and required members, not enum values: the server must refuse the unit.
    client.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "m", "Value": 1.0, "Unit": "Parsecs"}])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_client_speaks_its_protocol_and_reads_the_answer(clients, protocol):
    """Routing and decoding: the request arrives in the protocol the client spoke, and the answer (an error the
    model spells the same way everywhere) comes back in it, parsed by botocore into the Query code."""
    client, wire = clients[protocol]
    with pytest.raises(ClientError) as exc:
        _bad_unit(client, "E2E/Protocols")
    wire.assert_spoke(protocol)
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    assert (response["Error"]["Code"], response["Error"].get("Type")) == ("InvalidParameterValue", "Sender"), response
    assert "Unit" in response["Error"]["Message"], response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    want = {"json": "application/x-amz-json-1.0", "smithy-rpc-v2-cbor": "application/cbor", "query": "text/xml"}
    assert _response_content_type(response) == want[protocol], headers
    if protocol != "query":
        # awsQueryCompatible: the shape in __type, the Query code in the header botocore reads.
        assert response["Error"]["QueryErrorCode"] == "InvalidParameterValueException", response
        assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender", headers


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_large_bodies_arrive_gzipped_and_are_read(clients, protocol):
    """botocore gzips PutMetricData bodies of 10 KiB and more (the model's `requestcompression`) in every protocol:
    the server inflates them (a bad unit at the end of 300 datums is found, not a body it cannot parse)."""
    client, wire = clients[protocol]
    data = [{"MetricName": f"m{i}", "Value": float(i), "Dimensions": [{"Name": "Shard", "Value": str(i)}]}
            for i in range(300)]
    data[-1]["Unit"] = "Parsecs"
    with pytest.raises(ClientError) as exc:
        client.put_metric_data(Namespace="E2E/Protocols", MetricData=data)
    wire.assert_spoke(protocol)
    assert all(headers.get("content-encoding") == "gzip" for _, headers, _ in wire.requests), wire.requests[-1][1]
    error = exc.value.response["Error"]
    assert error["Code"] == "InvalidParameterValue" and "Unit" in error["Message"], exc.value.response


def test_the_aws_cli_gets_the_same_error(berth):
    out = berth.aws(
        "cloudwatch", "put-metric-data", "--endpoint-url", berth.api_url, "--namespace", "E2E/Protocols",
        "--metric-data", json.dumps([{"MetricName": "m", "Value": 1.0, "Unit": "Parsecs"}]), check=False,
    )
    assert out.returncode != 0, out.stdout
    assert "(InvalidParameterValue)" in out.stderr, out.stderr


def _minute_ago() -> datetime.datetime:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(second=0, microsecond=0) - datetime.timedelta(minutes=2)


def _metric_data(at: datetime.datetime) -> list[dict]:
    dims = [{"Name": "Service", "Value": "web"}, {"Name": "Route", "Value": "/checkout"}]
    return [
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": at, "Value": v, "Unit": "Milliseconds"}
        for v in (10.0, 20.0, 30.0)
    ] + [
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": at, "Unit": "Milliseconds",
         "StatisticValues": {"SampleCount": 2.0, "Sum": 100.0, "Minimum": 40.0, "Maximum": 60.0}},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": at, "Unit": "Milliseconds",
         "Values": [1.0, 2.0], "Counts": [1.0, 3.0]},
    ]


# What the five datums above add up to in their minute: 3 values, a statistic set of 2, 1×1.0 and 3×2.0.
EXPECTED = {"SampleCount": 9.0, "Sum": 167.0, "Minimum": 1.0, "Maximum": 60.0}


def _read_all(client, namespace: str, at: datetime.datetime) -> dict:
    dims = [{"Name": "Service", "Value": "web"}, {"Name": "Route", "Value": "/checkout"}]
    start, end = at - datetime.timedelta(minutes=5), at + datetime.timedelta(minutes=5)
    stats = client.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=dims, StartTime=start, EndTime=end, Period=60,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"],
    )
    data = client.get_metric_data(
        MetricDataQueries=[
            {"Id": "s", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Latency", "Dimensions": dims},
                                       "Period": 60, "Stat": "Sum"}},
            {"Id": "n", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Latency", "Dimensions": dims},
                                       "Period": 60, "Stat": "SampleCount"}},
        ],
        StartTime=start, EndTime=end, ScanBy="TimestampAscending",
    )
    metrics = client.list_metrics(Namespace=namespace)
    return {
        "datapoints": sorted(
            ({k: v for k, v in d.items()} for d in stats["Datapoints"]), key=lambda d: d["Timestamp"]
        ),
        "results": {r["Id"]: (r["Timestamps"], r["Values"]) for r in data["MetricDataResults"]},
        "metrics": sorted(
            (m["MetricName"], sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics["Metrics"]
        ),
    }


@pytest.mark.parametrize("writer", PROTOCOLS)
def test_data_written_in_one_protocol_reads_the_same_in_all(clients, writer):
    namespace = f"E2E/Protocols/{writer}/{uuid.uuid4().hex[:8]}"
    at = _minute_ago()
    client, wire = clients[writer]
    client.put_metric_data(Namespace=namespace, MetricData=_metric_data(at))
    wire.assert_spoke(writer)
    # The datapoint is visible once the write batch is stored; then every reader must answer exactly it.
    wait_for(
        "the datapoint to be readable",
        lambda: clients["json"][0].get_metric_statistics(
            Namespace=namespace, MetricName="Latency",
            Dimensions=[{"Name": "Service", "Value": "web"}, {"Name": "Route", "Value": "/checkout"}],
            StartTime=at - datetime.timedelta(minutes=5), EndTime=at + datetime.timedelta(minutes=5), Period=60,
            Statistics=["SampleCount"],
        )["Datapoints"],
        timeout=30,
    )
    answers = {}
    for reader in PROTOCOLS:
        reader_client, reader_wire = clients[reader]
        answers[reader] = _read_all(reader_client, namespace, at)
        reader_wire.assert_spoke(reader)
    first = answers["json"]
    assert len(first["datapoints"]) == 1, first
    point = first["datapoints"][0]
    assert point["Timestamp"] == at, point
    assert {k: point[k] for k in EXPECTED} == EXPECTED, point
    assert point["Average"] == pytest.approx(167.0 / 9.0), point
    assert point["Unit"] == "Milliseconds", point
    assert first["results"] == {"s": ([at], [167.0]), "n": ([at], [9.0])}, first["results"]
    assert first["metrics"] == [("Latency", [("Route", "/checkout"), ("Service", "web")])], first["metrics"]
    # All three protocols answer the same data.
    assert answers["smithy-rpc-v2-cbor"] == first, answers
    assert answers["query"] == first, answers


def test_the_aws_cli_writes_and_reads(berth, clients):
    namespace = f"E2E/Protocols/cli/{uuid.uuid4().hex[:8]}"
    at = _minute_ago()
    data = json.loads(json.dumps(_metric_data(at), default=lambda t: t.isoformat()))
    berth.aws("cloudwatch", "put-metric-data", "--endpoint-url", berth.api_url, "--namespace", namespace,
              "--metric-data", json.dumps(data))
    dims = ["Name=Service,Value=web", "Name=Route,Value=/checkout"]
    start = (at - datetime.timedelta(minutes=5)).isoformat()
    end = (at + datetime.timedelta(minutes=5)).isoformat()

    def stats():
        return berth.aws(
            "cloudwatch", "get-metric-statistics", "--endpoint-url", berth.api_url, "--namespace", namespace,
            "--metric-name", "Latency", "--dimensions", *dims, "--start-time", start, "--end-time", end,
            "--period", "60", "--statistics", "SampleCount", "Sum", "Minimum", "Maximum",
        )["Datapoints"]

    wait_for("the datapoint to be readable", stats, timeout=30)
    points = stats()
    assert len(points) == 1, points
    assert {k: points[0][k] for k in EXPECTED} == EXPECTED, points
    listed = berth.aws("cloudwatch", "list-metrics", "--endpoint-url", berth.api_url, "--namespace", namespace)
    assert [m["MetricName"] for m in listed["Metrics"]] == ["Latency"], listed
    # What the CLI wrote, boto3 over CBOR reads the same.
    cbor = _read_all(clients["smithy-rpc-v2-cbor"][0], namespace, at)
    assert {k: cbor["datapoints"][0][k] for k in EXPECTED} == EXPECTED, cbor


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_the_service_refuses_gets_the_same_code_in_every_protocol(clients, protocol):
    """A rule of the API (not of the model): GetMetricStatistics takes Statistics or ExtendedStatistics, not both."""
    client, wire = clients[protocol]
    now = datetime.datetime.now(datetime.timezone.utc)
    with pytest.raises(ClientError) as exc:
        client.get_metric_statistics(
            Namespace="E2E/Protocols", MetricName="m", StartTime=now - datetime.timedelta(hours=1), EndTime=now,
            Period=60, Statistics=["Sum"], ExtendedStatistics=["p99"],
        )
    wire.assert_spoke(protocol)
    error = exc.value.response["Error"]
    assert (error["Code"], error.get("Type")) == ("InvalidParameterCombination", "Sender"), exc.value.response
    assert "mutually exclusive" in error["Message"], error
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, exc.value.response
