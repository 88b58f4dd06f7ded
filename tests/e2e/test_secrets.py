"""Secrets Manager, SSM Parameter Store, secrets in a task's environment and private registries, end to end.

boto3 and the AWS CLI against the real binary; values checked at rest in the SQLite files; a real task on real
Docker reading its secrets through the demo app's /env; a private registry (Debian's `docker-registry` with
htpasswd on a loopback port) pulled from with the right password and refused with a wrong one.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from berthlib import DEMO_IMAGE, REGION, BerthInstance, docker, terminate, unique, wait_for


@pytest.fixture(scope="module", autouse=True)
def execution_role_reads_secrets(berth):
    """As the AWS docs say for secrets: the execution role needs `secretsmanager:GetSecretValue` and
    `ssm:GetParameters` besides AmazonECSTaskExecutionRolePolicy (berth evaluates the role's policies at launch)."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"], "Resource": "*"}
        ],
    }
    berth.client("iam").put_role_policy(
        RoleName="ecsTaskExecutionRole", PolicyName="secrets", PolicyDocument=json.dumps(policy)
    )


def client(berth: BerthInstance, service: str):
    key, secret = berth.credentials()
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
    return session.client(
        service,
        endpoint_url=berth.api_url,
        verify=str(berth.ca_path),
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30),
    )


def error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def at_rest(berth: BerthInstance) -> bytes:
    data = b""
    for name in ("berth.db", "berth.db-wal"):
        path = berth.data_dir / name
        if path.exists():
            data += path.read_bytes()
    return data


def env_of(berth: BerthInstance, host: str) -> dict[str, str]:
    body = berth.wait_status(host, 200, "/env").text
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def stopped_reasons(berth: BerthInstance, service_name: str) -> list[str]:
    arns = berth.task_arns(service_name, desired="STOPPED")
    return [t.get("stoppedReason", "") for t in berth.describe_tasks(arns)] if arns else []


def test_secrets_manager_with_boto3_and_cli(berth):
    sm = client(berth, "secretsmanager")
    name = unique("e2e/db")
    created = sm.create_secret(Name=name, SecretString='{"user":"app","password":"pw-one-e2e"}', Tags=[{"Key": "team", "Value": "a"}])
    arn = created["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:{REGION}:{berth.account_id}:secret:{name}-")
    assert len(arn.rsplit("-", 1)[1]) == 6
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="x")
    assert error_code(e) == "ResourceExistsException"

    assert sm.get_secret_value(SecretId=name)["SecretString"] == '{"user":"app","password":"pw-one-e2e"}'
    assert sm.get_secret_value(SecretId=arn)["VersionStages"] == ["AWSCURRENT"]
    put = sm.put_secret_value(SecretId=arn, SecretString='{"user":"app","password":"pw-two-e2e"}')
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["VersionId"] == created["VersionId"]
    desc = sm.describe_secret(SecretId=name)
    assert desc["VersionIdsToStages"][put["VersionId"]] == ["AWSCURRENT"]
    assert desc["VersionIdsToStages"][created["VersionId"]] == ["AWSPREVIOUS"]
    assert {"Key": "team", "Value": "a"} in desc["Tags"]
    sm.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "e2e"}])
    sm.untag_resource(SecretId=arn, TagKeys=["team"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "env", "Value": "e2e"}]

    # The AWS CLI, as a user would type it.
    cli = berth.aws("secretsmanager", "get-secret-value", "--secret-id", name)
    assert json.loads(cli["SecretString"])["password"] == "pw-two-e2e"
    listed = berth.aws("secretsmanager", "list-secrets", "--filters", f"Key=name,Values={name}")
    assert [s["Name"] for s in listed["SecretList"]] == [name]
    berth.aws("secretsmanager", "update-secret", "--secret-id", name, "--description", "the db")
    assert sm.describe_secret(SecretId=arn)["Description"] == "the db"

    # Encrypted at rest: neither value is in the database files.
    raw = at_rest(berth)
    assert b"pw-one-e2e" not in raw and b"pw-two-e2e" not in raw
    assert name.encode() in raw, "the check reads the right files"
    key = (berth.data_dir / "secrets.key").stat()
    assert (key.st_mode & 0o777, key.st_size) == (0o600, 32), "a 256-bit key readable by its owner only"
    assert "pw-one-e2e" not in berth.log_text() and "pw-two-e2e" not in berth.log_text()

    # Scheduled deletion, then force.
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=arn, RecoveryWindowInDays=5)
    assert error_code(e) == "InvalidParameterException"
    deleted = sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    assert 6.9 * 86400 < deleted["DeletionDate"].timestamp() - time.time() < 7.1 * 86400
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert error_code(e) == "InvalidRequestException"
    names = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    assert name in names and name not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    berth.aws("secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=name)
    assert error_code(e) == "ResourceNotFoundException"


def test_parameter_store_with_boto3_and_cli(berth):
    ssm = client(berth, "ssm")
    base = "/" + unique("e2e")
    assert ssm.put_parameter(Name=f"{base}/db/host", Value="db.internal", Type="String")["Version"] == 1
    ssm.put_parameter(Name=f"{base}/db/password", Value="ssm-pw-e2e", Type="SecureString")
    ssm.put_parameter(Name=f"{base}/hosts", Value="a,b,c", Type="StringList")
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=f"{base}/db/host", Value="other", Type="String")
    assert error_code(e) == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=f"{base}/db/host", Value="db2.internal", Overwrite=True)["Version"] == 2

    hidden = ssm.get_parameter(Name=f"{base}/db/password")["Parameter"]
    assert hidden["Type"] == "SecureString" and hidden["Value"] != "ssm-pw-e2e"
    shown = ssm.get_parameter(Name=f"{base}/db/password", WithDecryption=True)["Parameter"]
    assert shown["Value"] == "ssm-pw-e2e"
    assert shown["ARN"] == f"arn:aws:ssm:{REGION}:{berth.account_id}:parameter{base}/db/password"
    assert ssm.get_parameter(Name=f"{base}/db/host:1")["Parameter"]["Value"] == "db.internal"

    many = ssm.get_parameters(Names=[f"{base}/hosts", f"{base}/nope"], WithDecryption=True)
    assert [p["Value"] for p in many["Parameters"]] == ["a,b,c"]
    assert many["InvalidParameters"] == [f"{base}/nope"]

    paginator = ssm.get_paginator("get_parameters_by_path")
    pages = list(paginator.paginate(Path=base, Recursive=True, WithDecryption=True, PaginationConfig={"PageSize": 1}))
    assert len(pages) >= 3
    got = {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}
    assert got == {f"{base}/db/host": "db2.internal", f"{base}/db/password": "ssm-pw-e2e", f"{base}/hosts": "a,b,c"}
    one_level = ssm.get_parameters_by_path(Path=base)["Parameters"]
    assert [p["Name"] for p in one_level] == [f"{base}/hosts"]

    cli = berth.aws("ssm", "get-parameter", "--name", f"{base}/db/password", "--with-decryption")
    assert cli["Parameter"]["Value"] == "ssm-pw-e2e"
    described = berth.aws(
        "ssm", "describe-parameters", "--parameter-filters", f"Key=Path,Option=Recursive,Values={base}"
    )
    kinds = {p["Name"]: p["Type"] for p in described["Parameters"]}
    assert kinds[f"{base}/db/password"] == "SecureString" and len(kinds) == 3

    assert b"ssm-pw-e2e" not in at_rest(berth)
    assert b"db2.internal" in at_rest(berth), "String parameters are plain; the check reads the right files"

    berth.aws("ssm", "delete-parameter", "--name", f"{base}/hosts")
    deleted = ssm.delete_parameters(Names=[f"{base}/db/host", f"{base}/db/password", f"{base}/gone"])
    assert sorted(deleted["DeletedParameters"]) == [f"{base}/db/host", f"{base}/db/password"]
    assert deleted["InvalidParameters"] == [f"{base}/gone"]
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"{base}/hosts")
    assert error_code(e) == "ParameterNotFound"


def test_secrets_reach_the_container_and_a_missing_one_stops_the_task(berth):
    sm = client(berth, "secretsmanager")
    ssm = client(berth, "ssm")
    secret_arn = sm.create_secret(Name=unique("e2e/app"), SecretString='{"apiKey":"key-e2e-123","n":7}')["ARN"]
    param = "/" + unique("e2e") + "/token"
    ssm.put_parameter(Name=param, Value="token-e2e-456", Type="SecureString")
    param_arn = f"arn:aws:ssm:{REGION}:{berth.account_id}:parameter{param}"
    container = {
        "image": DEMO_IMAGE,
        "environment": [{"name": "PLAIN", "value": "plain-value"}],
        "secrets": [
            {"name": "API_KEY", "valueFrom": f"{secret_arn}:apiKey::"},
            {"name": "WHOLE", "valueFrom": secret_arn},
            {"name": "TOKEN", "valueFrom": param_arn},
            {"name": "TOKEN_BY_NAME", "valueFrom": param},
        ],
    }
    name = unique("sec")
    arn = berth.ecs().create_express_gateway_service(serviceName=name, primaryContainer=container, **berth.role_arns())[
        "service"
    ]["serviceArn"]
    try:
        host = berth.wait_endpoint(arn)
        env = wait_for("the task's /env", lambda: env_of(berth, host), 90)
        assert env["API_KEY"] == "key-e2e-123"
        assert json.loads(env["WHOLE"]) == {"apiKey": "key-e2e-123", "n": 7}
        assert env["TOKEN"] == "token-e2e-456" and env["TOKEN_BY_NAME"] == "token-e2e-456"
        assert env["PLAIN"] == "plain-value"

        # The task definition names the references, never the values.
        td_arn = berth.describe_service(arn)["activeConfigurations"][0]["taskDefinitionArn"]
        td = berth.ecs().describe_task_definition(taskDefinition=td_arn)["taskDefinition"]
        assert {s["name"] for s in td["containerDefinitions"][0]["secrets"]} == {"API_KEY", "WHOLE", "TOKEN", "TOKEN_BY_NAME"}
        assert "key-e2e-123" not in json.dumps(td, default=str)
        assert b"key-e2e-123" not in at_rest(berth) and b"token-e2e-456" not in at_rest(berth)
    finally:
        berth.best_effort_delete(arn)

    # A secret that does not exist: the task stops with ECS's reason, the service stays.
    missing = f"arn:aws:secretsmanager:{REGION}:{berth.account_id}:secret:does-not-exist"
    name2 = unique("sec-missing")
    arn2 = berth.ecs().create_express_gateway_service(
        serviceName=name2,
        primaryContainer={"image": DEMO_IMAGE, "secrets": [{"name": "X", "valueFrom": missing}]},
        **berth.role_arns(),
    )["service"]["serviceArn"]
    try:
        reasons = wait_for("a stopped task", lambda: stopped_reasons(berth, name2), 60)
        assert reasons[0].startswith("ResourceInitializationError: unable to pull secrets or registry auth:"), reasons
        assert "ResourceNotFoundException" in reasons[0], reasons
        stopped = berth.describe_tasks(berth.task_arns(name2, desired="STOPPED"))[0]
        assert stopped["stopCode"] == "TaskFailedToStart" and stopped["lastStatus"] == "STOPPED"
        assert berth.describe_service(arn2)["status"]["statusCode"] == "ACTIVE"
    finally:
        berth.best_effort_delete(arn2)


def test_invalid_secret_references_are_refused_at_create(berth):
    with pytest.raises(ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=unique("bad"),
            primaryContainer={"image": DEMO_IMAGE, "secrets": [{"name": "X", "valueFrom": "arn:aws:s3:::bucket/key"}]},
            **berth.role_arns(),
        )
    assert error_code(e) == "InvalidParameterException"
    assert "valueFrom" in e.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------- private registry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(demo_image):
    """Debian's docker-registry on a loopback port with htpasswd auth (alice/right), holding the demo image."""
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if not binary or not htpasswd:
        pytest.skip("docker-registry and htpasswd are not installed (apt-get install docker-registry apache2-utils)")
    work = Path(tempfile.mkdtemp(prefix="berth-registry-"))
    port = free_port()
    (work / "htpasswd").write_text(
        subprocess.run([htpasswd, "-Bbn", "alice", "right"], capture_output=True, text=True, check=True, timeout=30).stdout
    )
    (work / "config.yml").write_text(
        f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {work}/data
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: berth-e2e
    path: {work}/htpasswd
"""
    )
    log = open(work / "registry.log", "w")
    proc = subprocess.Popen([binary, "serve", str(work / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    image = f"127.0.0.1:{port}/berth-demo-private:latest"
    docker_config = work / "docker-config"
    docker_config.mkdir()
    env_cli = {"DOCKER_CONFIG": str(docker_config), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    try:
        wait_for("the registry to listen", lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 20)
        subprocess.run(
            ["docker", "login", f"127.0.0.1:{port}", "-u", "alice", "--password-stdin"],
            input="right", text=True, capture_output=True, check=True, timeout=60, env=env_cli,
        )
        docker("tag", demo_image, image)
        subprocess.run(["docker", "push", image], capture_output=True, check=True, timeout=120, env=env_cli)
        # Only the registry has it now: berth must pull.
        docker("rmi", image)
        yield image
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, timeout=60)
        terminate(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def test_private_registry_right_and_wrong_password(berth, registry):
    sm = client(berth, "secretsmanager")
    good = sm.create_secret(Name=unique("e2e/reg-good"), SecretString='{"username":"alice","password":"right"}')["ARN"]
    bad = sm.create_secret(Name=unique("e2e/reg-bad"), SecretString='{"username":"alice","password":"wrong"}')["ARN"]

    good_name = unique("private")
    good_arn = berth.ecs().create_express_gateway_service(
        serviceName=good_name,
        primaryContainer={"image": registry, "repositoryCredentials": {"credentialsParameter": good}},
        **berth.role_arns(),
    )["service"]["serviceArn"]
    try:
        host = berth.wait_endpoint(good_arn)
        assert berth.wait_status(host, 200, "/ping", timeout=120).text == "pong"
        assert not stopped_reasons(berth, good_name)
    finally:
        berth.best_effort_delete(good_arn)

    # The image is now in Docker's cache: a wrong password must still be refused (berth pulls whenever a task has
    # registry credentials, so the registry checks them every time).
    assert docker("image", "inspect", registry, check=False).returncode == 0, "the good pull cached the image"
    bad_name = unique("private-bad")
    bad_arn = berth.ecs().create_express_gateway_service(
        serviceName=bad_name,
        primaryContainer={"image": registry, "repositoryCredentials": {"credentialsParameter": bad}},
        **berth.role_arns(),
    )["service"]["serviceArn"]
    try:
        reasons = wait_for("the wrong password to stop a task", lambda: stopped_reasons(berth, bad_name), 90)
        assert reasons[0].startswith("CannotPullContainerError:"), reasons
    finally:
        berth.best_effort_delete(bad_arn)
