"""Answers a client can read, whatever it spoke: a service berth does not serve (ACM PCA over Smithy RPC v2 CBOR, SNS
over Query, through botocore itself), an action berth does not implement (`InvalidAction`, as AWS answers an
unknown action), and a body over the API's limit (413 in the protocol's error shape, the connection still usable)."""

from __future__ import annotations

import http.client
import json
import ssl
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from berthlib import REGION, error_code

# A little over the API's 10 MiB limit.
OVERSIZED = 11 * 1024 * 1024


@pytest.mark.parametrize(("service", "protocol", "call"), [
    ("acm-pca", "smithy-rpc-v2-cbor", "list_certificate_authorities"),
    ("sns", "query", "list_topics"),
])
def test_an_unserved_service_is_answered_in_the_clients_protocol(berth, tmp_path, service, protocol, call):
    client = berth.forced_protocol_client(service, protocol, tmp_path)
    with pytest.raises(ClientError) as exc:
        getattr(client, call)()
    error = exc.value.response["Error"]
    # botocore parsed a typed error (no MemoryError from a CBOR parser fed JSON, no XML parser fed JSON); over CBOR
    # the code is the Query spelling in `x-amzn-query-error`, which botocore prefers to `__type`.
    assert (error["Code"], error.get("Type")) == ("InvalidAction", "Sender"), exc.value.response
    assert "berth does not serve" in error["Message"], error
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
