"""`berth deploy`, `ls`, `status`, `open`, `scale` and `rm` end to end: the CLI binary against a real berth on real
Docker, run the way a user on the machine runs it (`berth.berth_cli`: no AWS_* variables, the local berth's
credentials and CA). Covers the default roles (created after consent the first time, found the second), the URL
answering over HTTPS, every output format, an update through deploy, and the exit codes scripts rely on."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re

import pytest

from berthlib import EXPRESS_ROLES, docker, strip_scheme, unique, wait_for

STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\] ")


def last_line(text: str) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""


def ok(proc, what: str):
    assert proc.returncode == 0, f"{what} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def delete_default_roles(berth) -> None:
    iam = berth.client("iam")
    for name, _, policy in EXPRESS_ROLES:
        try:
            iam.detach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/service-role/{policy}")
        except iam.exceptions.NoSuchEntityException:
            pass
        try:
            iam.delete_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            pass


def role_exists(berth, name: str) -> bool:
    iam = berth.client("iam")
    try:
        iam.get_role(RoleName=name)
        return True
    except iam.exceptions.NoSuchEntityException:
        return False


@pytest.fixture(scope="module")
def deployed(berth):
    """A service deployed by `berth deploy` after the default roles were removed: (name, url, the deploy run)."""
    delete_default_roles(berth)
    assert not role_exists(berth, "ecsTaskExecutionRole")
    name = unique("cli")
    # No terminal and no --yes: the roles cannot be created, and the error names --yes.
    refused = berth.berth_cli("deploy", "berth-demo:latest", "--name", name)
    assert refused.returncode == 2, refused.stderr
    assert "--yes" in refused.stderr, refused.stderr
    assert "ecsTaskExecutionRole" in refused.stderr, refused.stderr
    assert not role_exists(berth, "ecsTaskExecutionRole"), "a role was created without consent"
    assert berth.berth_cli("status", name).returncode == 3, "nothing may have been created"

    run = ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--yes"), "deploy --yes")
    url = last_line(run.stdout)
    yield name, url, run
    berth.berth_cli("rm", name, "--yes")


def test_the_first_deploy_creates_the_roles_and_ends_with_a_url_that_answers(berth, deployed):
    name, url, run = deployed
    # The load balancer's port is named when it is not 443 (the tests' proxy is on a high port): the URL opens as printed.
    assert re.fullmatch(rf"https://[a-z0-9.-]+:{berth.ports.https}", url), run.stdout
    iam = berth.client("iam")
    for role, service, policy in EXPRESS_ROLES:
        assert f"Created role {role}" in run.stderr, run.stderr
        doc = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        assert doc["Statement"][0]["Principal"]["Service"] == service
        attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
        assert attached == [policy]
    # Without a terminal: timestamped progress lines on stderr, only the changes, ending with the outcome.
    progress = [l for l in run.stderr.splitlines() if STAMP.match(l)]
    assert len(progress) >= 5, run.stderr
    assert any("Task " in l and "RUNNING healthy" in l for l in progress), run.stderr
    assert progress[-1].endswith("Deployment successful"), run.stderr
    assert "\x1b[" not in run.stderr and "\x1b[" not in run.stdout
    # Only changes: a step's state is printed once (events may repeat a message: berth emits each event once).
    steps = [l[l.index("]"):] for l in progress if "] Event " not in l]
    assert len(steps) == len(set(steps)), run.stderr
    host = strip_scheme(url)
    resp = berth.https_get(host, "/ping")
    assert (resp.status, resp.text) == (200, "pong")
    svc = berth.describe_service(f"arn:aws:ecs:us-east-1:{berth.account_id}:service/default/{name}")
    assert svc["status"]["statusCode"] == "ACTIVE"


def test_a_second_deploy_finds_the_roles_and_an_unchanged_one_does_nothing(berth, deployed):
    name, url, _ = deployed
    other = unique("cli2")
    run = ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", other, "--output", "json"), "second deploy")
    try:
        assert "Created role" not in run.stderr and "[y/N]" not in run.stderr, run.stderr
        doc = json.loads(run.stdout)  # stdout is pure JSON; the progress went to stderr
        assert doc["action"] == "created" and doc["deploymentStatus"] == "SUCCESSFUL", doc
        assert doc["serviceName"] == other and doc["url"].startswith("https://")
        svc = berth.describe_service(doc["serviceArn"])
        config = svc["activeConfigurations"][0]
        assert config["executionRoleArn"] == berth.role_arns()["executionRoleArn"]
        assert svc["infrastructureRoleArn"] == berth.role_arns()["infrastructureRoleArn"]
    finally:
        berth.berth_cli("rm", other, "--yes")
    same = ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "-o", "json"), "unchanged deploy")
    assert json.loads(same.stdout)["action"] == "unchanged"
    assert "nothing to deploy" in same.stderr


def test_ls_and_status_in_every_format(berth, deployed):
    name, url, _ = deployed
    host = strip_scheme(url)
    for _ in range(30):
        assert berth.https_get(host, "/").status == 200

    def listed():
        doc = json.loads(ok(berth.berth_cli("ls", "-o", "json"), "ls -o json").stdout)
        rows = [s for s in doc["services"] if s["serviceName"] == name]
        return rows[0] if rows and (rows[0]["requests"] or 0) >= 30 else None

    row = wait_for("ls to count the requests", listed, timeout=30, interval=1)
    assert row["url"] == url and row["status"] == "ACTIVE"
    assert (row["healthyTasks"], row["desiredTasks"]) == (1, 1)
    # 30 requests (31 with the /ping of the first test) over the 4-5 minutes the window spans.
    assert row["requests"] in (30, 31) and row["targetErrors5xx"] == 0 and row["errorRatePercent"] == 0, row
    assert row["requests"] / 5 <= row["requestsPerMinute"] <= row["requests"] / 4, row
    text = ok(berth.berth_cli("ls", "-o", "text"), "ls -o text").stdout
    fields = [l.split("\t") for l in text.splitlines() if l.startswith(name + "\t")]
    assert fields and fields[0][:3] == [name, "ACTIVE", url] and fields[0][4] == "1/1", text
    table = ok(berth.berth_cli("ls"), "ls").stdout
    assert table.splitlines()[0].split() == ["NAME", "STATUS", "URL", "REVISION", "TASKS", "REQ/MIN", "5XX"]

    doc = json.loads(ok(berth.berth_cli("status", name, "-o", "json"), "status -o json").stdout)
    assert doc["url"] == url and doc["image"] == "berth-demo:latest"
    assert doc["deployment"]["status"] == "SUCCESSFUL"
    assert [t["health"] for t in doc["tasks"]] == ["healthy"]
    assert doc["scaling"]["minTaskCount"] == 1 and doc["scaling"]["desiredCount"] == 1
    assert any(a["alarmName"].endswith("deployment-rollback") for a in doc["alarms"]), doc["alarms"]
    assert any("steady state" in e["message"] or "started" in e["message"] for e in doc["events"]), doc["events"]
    table = ok(berth.berth_cli("status", name), "status").stdout
    for heading in ("Deployment", "Tasks", "Scaling", "Alarms", "Events"):
        assert re.search(rf"^{heading}$", table, re.M), table
    assert re.search(rf"^URL\s+{re.escape(url)}$", table, re.M), table
    text = ok(berth.berth_cli("status", name, "-o", "text"), "status -o text").stdout
    assert f"URL\t{url}" in text.splitlines(), text
    # By ARN too.
    arn = f"arn:aws:ecs:us-east-1:{berth.account_id}:service/default/{name}"
    assert json.loads(ok(berth.berth_cli("status", arn, "-o", "json"), "status ARN").stdout)["serviceName"] == name
    opened = ok(berth.berth_cli("open", name), "open")
    assert opened.stdout.strip() == url


def test_scale_sets_the_task_bounds_and_refuses_min_above_max(berth, deployed):
    name, _, _ = deployed
    bad = berth.berth_cli("scale", name, "--min", "4", "--max", "3")
    assert bad.returncode == 2 and "--min 4" in bad.stderr, bad.stderr
    out = json.loads(ok(berth.berth_cli("scale", name, "--min", "2", "--max", "3", "-o", "json"), "scale").stdout)
    assert (out["scalingTarget"]["minTaskCount"], out["scalingTarget"]["maxTaskCount"]) == (2, 3)
    arn = f"arn:aws:ecs:us-east-1:{berth.account_id}:service/default/{name}"
    target = berth.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/default/{name}"]
    )["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in target] == [(2, 3)]
    wait_for("two running tasks", lambda: len(berth.task_arns(name)) == 2, timeout=60)
    ok(berth.berth_cli("scale", name, "--min", "1", "--max", "2"), "scale back")
    config = berth.describe_service(arn)["activeConfigurations"][0]["scalingTarget"]
    assert (config["minTaskCount"], config["maxTaskCount"]) == (1, 2)


def test_deploy_with_env_updates_the_service_through_a_new_revision(berth, deployed):
    name, url, _ = deployed
    run = ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--env", "GREETING=hello-cli", "-o", "json"),
             "deploy --env")
    doc = json.loads(run.stdout)
    assert doc["action"] == "updated" and doc["deploymentStatus"] == "SUCCESSFUL", doc
    assert doc["url"] == url
    host = strip_scheme(url)
    body = wait_for("the new revision to serve", lambda: (lambda r: r.text if "GREETING=hello-cli" in r.text else None)(
        berth.https_get(host, "/env")), timeout=30)
    assert "GREETING=hello-cli" in body
    # Only the environment changed: the same image, the same port.
    config = berth.describe_service(doc["serviceArn"])["activeConfigurations"][0]
    assert config["primaryContainer"]["image"] == "berth-demo:latest"
    assert {"name": "GREETING", "value": "hello-cli"} in config["primaryContainer"]["environment"]


def test_exit_codes(berth, deployed):
    name, _, _ = deployed
    missing = berth.berth_cli("status", "no-such-service")
    assert missing.returncode == 3 and "no service named" in missing.stderr, missing.stderr
    for cmd in (["open", "no-such-service"], ["scale", "no-such-service", "--max", "2"], ["rm", "no-such-service", "--yes"]):
        assert berth.berth_cli(*cmd).returncode == 3, cmd
    key_env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY": "x" * 40,
               "AWS_CA_BUNDLE": str(berth.ca_path)}
    down = berth.berth_cli("ls", "--endpoint-url", "https://127.0.0.1:1", env=key_env)
    assert down.returncode == 6 and "cannot reach berth" in down.stderr, down.stderr
    # A read-only IAM user: may describe and list, not deploy.
    iam = berth.client("iam")
    user = unique("readonly")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    listed = berth.berth_cli("status", name, "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    denied = berth.berth_cli("deploy", "berth-demo:latest", "--name", unique("denied"), "--yes", env=env)
    assert denied.returncode == 4, denied.stderr
    assert "AccessDenied" in denied.stderr and "IAM" in denied.stderr, denied.stderr
    update = berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--env", "X=1", env=env)
    assert update.returncode == 4, update.stderr
    bad = berth.berth_cli("deploy", "berth-demo:latest", "--env", "NOEQUALS")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_rm_asks_first_then_deletes(berth):
    name = unique("cli-rm")
    run = ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--detach", "-o", "json"), "deploy --detach")
    doc = json.loads(run.stdout)
    assert doc["deploymentStatus"] == "IN_PROGRESS" and "Watching" not in run.stderr
    refused = berth.berth_cli("rm", name)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert berth.describe_service(doc["serviceArn"])["status"]["statusCode"] == "ACTIVE"
    gone = json.loads(ok(berth.berth_cli("rm", name, "--yes", "--wait", "-o", "json"), "rm --yes --wait").stdout)
    assert gone["status"] == "INACTIVE"
    assert berth.describe_service(doc["serviceArn"])["status"]["statusCode"] == "INACTIVE"
    assert berth.berth_cli("status", name).returncode == 3


def test_a_deployment_that_rolls_back_exits_1_with_the_reason(berth):
    name = unique("cli-fail")
    ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name), "deploy")
    try:
        # A revision whose container exits at once: the circuit breaker rolls the deployment back.
        run = berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--env", "DEMO_EXIT_CODE=3", timeout=300)
        assert run.returncode == 1, f"{run.returncode}\n{run.stderr}"
        assert f"the deployment of {name} did not complete: rolled back" in run.stderr, run.stderr
        assert re.search(r"Task \w+ STOPPED: .*\(exit 3\)", run.stderr), run.stderr
        assert not run.stdout.strip(), run.stdout
        doc = json.loads(ok(berth.berth_cli("status", name, "-o", "json"), "status").stdout)
        assert doc["deployment"]["status"] == "ROLLBACK_SUCCESSFUL"
        assert [t["health"] for t in doc["tasks"] if t["lastStatus"] == "RUNNING"] == ["healthy"]
    finally:
        berth.berth_cli("rm", name, "--yes")


def test_private_needs_a_private_subnet_then_serves_on_the_internal_side_only(berth):
    ec2 = berth.client("ec2")
    gateway = docker("network", "inspect", "berth-default", "--format", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()

    def default_vpc():
        return [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]

    wait_for("the default VPC to take the network's subnet",
             lambda: ipaddress.ip_network(default_vpc()["CidrBlock"]).supernet_of(ipaddress.ip_network(f"{gateway}/32")),
             30)
    vpc = default_vpc()
    private = [s for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
               if not s["MapPublicIpOnLaunch"]]
    name = unique("cli-priv")
    created_subnet = None
    if not private:
        refused = berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--private")
        assert refused.returncode == 1, refused.stderr
        assert "no private subnet" in refused.stderr and "create-subnet" in refused.stderr, refused.stderr
        net = ipaddress.ip_network(vpc["CidrBlock"])
        block = list(net.subnets(new_prefix=min(28, max(net.prefixlen + 2, 24))))[-2]
        created_subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=str(block))["Subnet"]["SubnetId"]
    try:
        doc = json.loads(ok(berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--private", "-o", "json"),
                            "deploy --private").stdout)
        svc = berth.describe_service(doc["serviceArn"])
        assert svc["activeConfigurations"][0]["ingressPaths"][0]["accessType"] == "PRIVATE"
        host = strip_scheme(doc["url"])
        assert berth.https_get(host, "/ping").status == 404, "a private service is not on the public listener"
        # Deploying it again with --private changes nothing.
        again = berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--private")
        assert again.returncode == 0 and "nothing to deploy" in again.stderr, again.stderr
    finally:
        berth.berth_cli("rm", name, "--yes", "--wait")
        if created_subnet:
            with contextlib.suppress(Exception):
                ec2.delete_subnet(SubnetId=created_subnet)
