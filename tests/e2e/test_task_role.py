"""Task roles: boto3 inside a task gets its task role's credentials from berth's ECS-style credentials endpoint
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN) and calls berth's API as that role with
no configuration; a task without a task role gets no credentials; a wrong token is refused."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from berthlib import containers, docker, trust_policy, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRED_VARS = {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}


@pytest.fixture(scope="module")
def boto3_image() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "build-boto3-image.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr
    return "berth-boto3:latest"


def make_task_role(berth, service: str = "ecs-tasks.amazonaws.com") -> tuple[str, str]:
    iam = berth.client("iam")
    name = unique("taskrole")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))["Role"]["Arn"]
    return name, arn


def task_env(berth, service_arn: str) -> tuple[str, dict[str, str]]:
    """The running task of the service: its id and its container's environment."""

    def probe():
        rows = containers(f"berth.service={service_arn}")
        return rows[0]["ID"] if rows else None

    cid = wait_for(f"a container of {service_arn}", probe, 60)
    inspect = json.loads(docker("inspect", cid).stdout)[0]
    env = dict(kv.split("=", 1) for kv in inspect["Config"]["Env"])
    return inspect["Config"]["Labels"]["berth.task"], env


def get(url: str, token: str | None) -> tuple[int, bytes]:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        conn.request("GET", u.path, headers={"Authorization": token} if token is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_boto3_in_a_task_calls_as_its_task_role(berth, boto3_image):
    role_name, role_arn = make_task_role(berth)
    name = unique("whoami")
    svc = berth.create_service(name, image=boto3_image, taskRoleArn=role_arn)
    try:
        host = berth.wait_endpoint(svc["serviceArn"], timeout=90)
        task_id, env = task_env(berth, svc["serviceArn"])
        assert CRED_VARS <= env.keys()
        assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://169.254.170.2:")

        def whoami():
            r = berth.https_get(host, "/whoami", timeout=30)
            return r.json() if r.status == 200 else None

        ident = wait_for("the task's /whoami", whoami, 60)
        assert ident["ok"], ident
        assert ident["Arn"] == f"arn:aws:sts::{berth.account_id}:assumed-role/{role_name}/{task_id}"
        assert ident["Account"] == berth.account_id
        assert ident["UserId"].startswith("AROA") and ident["UserId"].endswith(f":{task_id}")

        # The endpoint itself: the right token gets the role's session, a wrong or missing one is refused,
        # an unknown id is not found.
        url, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        status, body = get(url, token)
        assert status == 200, body
        creds = json.loads(body)
        assert creds["RoleArn"] == role_arn
        assert creds["AccessKeyId"].startswith("ASIA") and creds["Token"] and creds["Expiration"].endswith("Z")
        sts = berth.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])
        assert sts.get_caller_identity()["Arn"] == ident["Arn"]
        assert get(url, token + "x")[0] == 401
        assert get(url, None)[0] == 401
        assert get(url.rsplit("/", 1)[0] + "/00000000-0000-4000-a000-000000000000", token)[0] == 404

        # Nothing of it is at rest in plain text: the token is stored hashed, the session's secrets sealed.
        secrets = {"task token": token, "secret key": creds["SecretAccessKey"], "session token": creds["Token"]}
        assert berth.in_plain_text_at_rest(secrets) == []
    finally:
        berth.best_effort_delete(svc["serviceArn"])


def test_a_task_without_a_task_role_gets_no_credentials(berth, boto3_image):
    svc = berth.create_service(unique("norole"), image=boto3_image)
    try:
        host = berth.wait_endpoint(svc["serviceArn"], timeout=90)
        _, env = task_env(berth, svc["serviceArn"])
        assert not CRED_VARS & env.keys()
        resp = wait_for("the task's /env", lambda: (r := berth.https_get(host, "/env")).status == 200 and r, 30)
        assert not CRED_VARS & set(resp.json())
        ident = berth.https_get(host, "/whoami", timeout=30).json()
        assert not ident["ok"] and "NoCredentials" in ident["error"], ident
    finally:
        berth.best_effort_delete(svc["serviceArn"])
