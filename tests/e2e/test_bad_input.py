"""Bad input gets AWS's error codes and shapes (so SDKs raise the exceptions users already catch), and a failed
call leaves nothing behind."""

from __future__ import annotations

import datetime
import json
import secrets

import pytest
from botocore.exceptions import ClientError

from berthlib import error_code, unique


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _msg(excinfo) -> str:
    return excinfo.value.response["Error"].get("Message", "")


def _assert_error_shape(resp, code: str, status: int = 400) -> dict:
    assert resp.status == status, (resp.status, resp.text)
    body = resp.json()
    assert error_code(body.get("__type")) == code, body
    assert error_code(resp.header("x-amzn-errortype")) == code, resp.headers
    assert body.get("message"), body
    return body


def _service_arns(berth) -> list[str]:
    try:
        return sorted(berth.ecs().list_services(cluster="default").get("serviceArns", []))
    except ClientError as err:  # the default cluster is created on first use
        if err.response["Error"]["Code"] == "ClusterNotFoundException":
            return []
        raise


def test_wrong_secret_is_invalid_signature(berth):
    key, _ = berth.credentials()
    client = berth.ecs(access_key=key, secret_key=secrets.token_urlsafe(30), max_attempts=1)
    with pytest.raises(ClientError) as exc:
        client.list_clusters()
    assert _code(exc) == "InvalidSignatureException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_access_key_is_unrecognized_client(berth):
    client = berth.ecs(access_key="AKIA" + secrets.token_hex(8).upper(), secret_key="x" * 40, max_attempts=1)
    with pytest.raises(ClientError) as exc:
        client.list_clusters()
    assert _code(exc) == "UnrecognizedClientException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unsigned_request_is_rejected(berth):
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    conn = http.client.HTTPSConnection("localhost", berth.ports.api, context=ctx, timeout=10)
    try:
        conn.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
            },
        )
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 403, (resp.status, body)
    assert error_code(json.loads(body).get("__type")) == "MissingAuthenticationTokenException", body


def test_stale_date_is_signature_expired(berth):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    resp = berth.signed_request("ListClusters", "{}", when=when)
    body = _assert_error_shape(resp, "InvalidSignatureException")
    assert "Signature expired" in body["message"], body


def test_fresh_raw_signed_request_works(berth):
    """The raw signer used by the tests below is accepted when the request is valid."""
    resp = berth.signed_request("ListClusters", "{}")
    assert resp.status == 200, resp.text
    assert "clusterArns" in resp.json()


def test_malformed_json_is_serialization_exception(berth):
    before = _service_arns(berth)
    resp = berth.signed_request("CreateExpressGatewayService", b'{"serviceName": "broken", ')
    _assert_error_shape(resp, "SerializationException")
    assert _service_arns(berth) == before


def test_wrong_member_type_is_rejected(berth):
    resp = berth.signed_request("DescribeExpressGatewayService", json.dumps({"serviceArn": 42}))
    assert resp.status == 400, resp.text
    err = resp.json()
    assert error_code(err.get("__type")) == "InvalidParameterException", err
    assert "serviceArn" in err.get("message", ""), err


def test_missing_required_member_is_named(berth):
    before = _service_arns(berth)
    body = {
        "serviceName": unique("noinfra"),
        "primaryContainer": {"image": "berth-demo:latest"},
        "executionRoleArn": berth.role_arns()["executionRoleArn"],
    }
    resp = berth.signed_request("CreateExpressGatewayService", json.dumps(body))
    assert resp.status == 400, resp.text
    err = resp.json()
    assert error_code(err.get("__type")) == "InvalidParameterException", err
    assert "infrastructureRoleArn" in err["message"], err
    assert _service_arns(berth) == before


def test_unknown_operation(berth):
    resp = berth.signed_request("FlyToTheMoon", "{}")
    assert resp.status == 400, resp.text
    assert error_code(resp.json().get("__type")) == "UnknownOperationException", resp.text
    assert "FlyToTheMoon" in resp.json().get("message", ""), resp.text


def test_unknown_service_arn_is_the_error_each_operation_models(berth):
    """Each operation answers the not-found error its model lists, so typed SDKs raise their typed exception:
    Describe's model names ResourceNotFoundException, Update's and Delete's ServiceNotFoundException."""
    ecs = berth.ecs(max_attempts=1)
    arn = f"arn:aws:ecs:us-east-1:{berth.account_id}:service/default/{unique('ghost')}"
    with pytest.raises(ecs.exceptions.ResourceNotFoundException):
        ecs.describe_express_gateway_service(serviceArn=arn)
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.delete_express_gateway_service(serviceArn=arn)
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.update_express_gateway_service(serviceArn=arn, primaryContainer={"image": "berth-demo:latest"})


@pytest.mark.parametrize(("cpu", "memory"), [("256", "4096"), ("1024", "512"), ("3", "512")])
def test_invalid_cpu_memory_pair(berth, cpu, memory):
    # The default cluster exists (as after any first service), so ListTasks below can only miss the service.
    berth.ecs().create_cluster(clusterName="default")
    before = _service_arns(berth)
    name = unique("badsize")
    with pytest.raises(ClientError) as exc:
        berth.create_service(name, cpu=cpu, memory=memory)
    assert _code(exc) == "InvalidParameterException"
    message = _msg(exc)
    # actionable: names what was wrong and what would be accepted
    assert cpu in message and memory in message, message
    assert "memory" in message.lower() and "cpu" in message.lower(), message
    assert _service_arns(berth) == before
    # nothing half-created: no service by that name (ListTasks on it is ServiceNotFound, as in ECS), no tasks
    with pytest.raises(ClientError) as err:
        berth.task_arns(name)
    assert _code(err) == "ServiceNotFoundException", err.value.response


def test_invalid_role_arn_is_rejected(berth):
    before = _service_arns(berth)
    with pytest.raises(ClientError) as exc:
        berth.ecs(max_attempts=1).create_express_gateway_service(
            serviceName=unique("badrole"),
            primaryContainer={"image": "berth-demo:latest"},
            executionRoleArn="ecsTaskExecutionRole",
            infrastructureRoleArn=berth.role_arns()["infrastructureRoleArn"],
        )
    assert _code(exc) == "InvalidParameterException"
    assert "executionRoleArn" in _msg(exc) and "ecsTaskExecutionRole" in _msg(exc), _msg(exc)
    assert _service_arns(berth) == before
