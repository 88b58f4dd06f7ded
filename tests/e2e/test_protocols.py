"""Answers a client can read, whatever it spoke: a service berth does not serve (CloudWatch over Smithy RPC v2 CBOR
and over Query, through botocore itself), an action berth does not implement (`InvalidAction`, as AWS answers an
unknown action), and a body over the API's limit (413 in the protocol's error shape, the connection still usable)."""

from __future__ import annotations

import copy
import http.client
import json
import ssl
import xml.etree.ElementTree as ET

import boto3
import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

from berthlib import REGION, error_code

# A little over the API's 10 MiB limit.
OVERSIZED = 11 * 1024 * 1024


def _cloudwatch(berth, tmp_path, protocol: str):
    """A boto3 CloudWatch client that speaks `protocol`: botocore picks the first protocol of the model's `protocols`
    it supports, so the model is loaded from a copy whose `protocols` lists only the one wanted (botocore's data
    loader searches extra paths before its own)."""
    original = botocore.session.get_session().get_component("data_loader").load_service_model("cloudwatch", "service-2")
    model = copy.deepcopy(original)
    model["metadata"]["protocols"] = [protocol]
    model["metadata"]["protocol"] = protocol
    version = model["metadata"]["apiVersion"]
    (tmp_path / "cloudwatch" / version).mkdir(parents=True)
    (tmp_path / "cloudwatch" / version / "service-2.json").write_text(json.dumps(model))
    # A fresh session: loaders cache the models they loaded.
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    key, secret = berth.credentials()
    client = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION, botocore_session=session
    ).client(
        "cloudwatch",
        endpoint_url=berth.api_url,
        verify=str(berth.ca_path),
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )
    assert client.meta.service_model.resolved_protocol == protocol
    return client


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "query"])
def test_an_unserved_service_is_answered_in_the_clients_protocol(berth, tmp_path, protocol):
    cloudwatch = _cloudwatch(berth, tmp_path, protocol)
    with pytest.raises(ClientError) as exc:
        cloudwatch.list_metrics(Namespace="AWS/ECS")
    error = exc.value.response["Error"]
    # botocore parsed a typed error (no MemoryError from a CBOR parser fed JSON, no XML parser fed JSON).
    # CloudWatch is awsQueryCompatible: over CBOR its SDKs read the Query code from `x-amzn-query-error`.
    assert (error["Code"], error.get("Type")) == ("InvalidAction", "Sender"), exc.value.response
    assert "monitoring" in error["Message"] or "GraniteServiceVersion20100801" in error["Message"], error
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    if protocol == "query":
        assert headers["content-type"].startswith("text/xml"), headers
    else:
        assert (headers["content-type"], headers["smithy-protocol"]) == ("application/cbor", "rpc-v2-cbor"), headers
        assert headers["x-amzn-query-error"] == "InvalidAction;Sender", headers


def test_unimplemented_query_actions_are_invalid_action(berth):
    """An operation berth does not implement is unknown to it: AWS's answer to an unknown action, `InvalidAction`
    (HTTP 400), in each protocol's error shape (never `NotImplemented`/501)."""
    calls = [
        (berth.client("elbv2").create_load_balancer, {"Name": "nope"}),
        (berth.client("iam").create_group, {"GroupName": "nope"}),
        (berth.client("ec2").create_vpc, {"CidrBlock": "10.1.0.0/16"}),
    ]
    for call, kwargs in calls:
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert exc.value.response["Error"]["Code"] == "InvalidAction", exc.value.response
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, exc.value.response


def _connection(berth) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    return http.client.HTTPSConnection("localhost", berth.ports.api, context=ctx, timeout=60)


def _signed(berth, service: str, headers: dict[str, str], body: bytes, path: str = "/") -> dict[str, str]:
    key, secret = berth.credentials()
    request = AWSRequest(method="POST", url=berth.api_url + path, data=body, headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, REGION).add_auth(request)
    return dict(request.headers.items())


def test_an_oversized_body_is_a_readable_413_and_the_connection_goes_on(berth):
    body = b"x" * OVERSIZED
    list_clusters = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
    }
    cases = [
        # (headers, path, how the error names its code)
        ({"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"}, "/", "json"),
        ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "/", "query"),
        (
            {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            "cbor",
        ),
    ]
    service = {"json": "logs", "query": "iam", "cbor": "monitoring"}
    for headers, path, shape in cases:
        conn = _connection(berth)
        try:
            conn.request("POST", path, body=body, headers=_signed(berth, service[shape], headers, body, path))
            resp = conn.getresponse()
            raw = resp.read()
            assert resp.status == 413, (shape, resp.status, raw[:300])
            if shape == "json":
                assert error_code(json.loads(raw)["__type"]) == "RequestEntityTooLargeException", raw
            elif shape == "query":
                codes = [e.text for e in ET.fromstring(raw).iter() if e.tag.rsplit("}", 1)[-1] == "Code"]
                assert codes == ["RequestEntityTooLargeException"], raw
            else:
                assert resp.getheader("content-type") == "application/cbor", resp.getheaders()
                assert b"__type" in raw and b"RequestEntityTooLargeException" in raw, raw
            assert resp.getheader("connection") != "close", resp.getheaders()
            # The same connection carries the next request.
            conn.request("POST", "/", body=b"{}", headers=_signed(berth, "ecs", list_clusters, b"{}"))
            again = conn.getresponse()
            assert again.status == 200, (again.status, again.read()[:300])
            assert "clusterArns" in json.loads(again.read())
        finally:
            conn.close()

    # botocore reads it as a typed error, over JSON and over Query.
    logs = berth.client("logs")
    with pytest.raises(ClientError) as exc:
        logs.put_log_events(
            logGroupName="nope", logStreamName="nope", logEvents=[{"timestamp": 0, "message": "m" * OVERSIZED}]
        )
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException", exc.value.response
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    iam = berth.client("iam")
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="nope", AssumeRolePolicyDocument="x" * OVERSIZED)
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException", exc.value.response
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
