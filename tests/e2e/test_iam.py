"""IAM, STS and the two roles at work, with the real AWS CLI and boto3: the AWS documentation's CLI flow, PassRole,
trust policies, provisioning as the infrastructure role, role sessions and narrow user policies."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import botocore.exceptions
import pytest

from berthlib import DEMO_IMAGE, trust_policy, unique, wait_for
from elblib import elbv2

EXEC_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
INFRA_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"


def error_of(exc: botocore.exceptions.ClientError) -> tuple[str, str]:
    return exc.response["Error"]["Code"], exc.response["Error"]["Message"]


def make_user(berth, policy: dict | None) -> tuple[str, dict]:
    """A user with an access key and (optionally) one inline policy; returns its name and its key."""
    iam = berth.client("iam")
    name = unique("user")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key


def as_user(berth, key: dict, service: str, token: str | None = None):
    return berth.client(service, key["AccessKeyId"], key["SecretAccessKey"], token)


def make_role(berth, service: str, managed: str | None, inline: dict | None = None) -> str:
    iam = berth.client("iam")
    name = unique("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))["Role"]["Arn"]
    if managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    if inline:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    return arn


def service_names(berth) -> set[str]:
    arns = berth.ecs().list_services(cluster="default")["serviceArns"]
    return {a.rsplit("/", 1)[-1] for a in arns}


def test_the_aws_documentation_cli_flow(berth, tmp_path):
    """create-role with trust policy files, attach-role-policy with the managed ARNs, create the service."""
    suffix = unique("doc")
    exec_name, infra_name = f"ecsTaskExecutionRole-{suffix}", f"ecsInfrastructureRoleForExpressServices-{suffix}"
    (tmp_path / "exec.json").write_text(json.dumps(trust_policy("ecs-tasks.amazonaws.com"), indent=2))
    infra_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowAccessInfrastructureForECSExpressServices",
                "Effect": "Allow",
                "Principal": {"Service": "ecs.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    (tmp_path / "infra.json").write_text(json.dumps(infra_trust, indent=2))
    exec_role = berth.aws(
        "iam", "create-role", "--role-name", exec_name, "--assume-role-policy-document", f"file://{tmp_path}/exec.json"
    )["Role"]
    # The CLI decodes the URL-encoded document IAM returns into JSON.
    assert exec_role["AssumeRolePolicyDocument"] == trust_policy("ecs-tasks.amazonaws.com")
    assert exec_role["RoleId"].startswith("AROA") and exec_role["Arn"].endswith(f":role/{exec_name}")
    berth.aws("iam", "attach-role-policy", "--role-name", exec_name, "--policy-arn", EXEC_POLICY)
    infra_role = berth.aws(
        "iam", "create-role", "--role-name", infra_name, "--assume-role-policy-document", f"file://{tmp_path}/infra.json"
    )["Role"]
    berth.aws("iam", "attach-role-policy", "--role-name", infra_name, "--policy-arn", INFRA_POLICY)

    got = berth.aws("iam", "get-role", "--role-name", infra_name)["Role"]
    assert got["AssumeRolePolicyDocument"] == infra_trust
    attached = berth.aws("iam", "list-attached-role-policies", "--role-name", infra_name)["AttachedPolicies"]
    assert attached == [
        {"PolicyName": "AmazonECSInfrastructureRoleforExpressGatewayServices", "PolicyArn": INFRA_POLICY}
    ]
    version = berth.aws("iam", "get-policy", "--policy-arn", INFRA_POLICY)["Policy"]["DefaultVersionId"]
    doc = berth.aws("iam", "get-policy-version", "--policy-arn", INFRA_POLICY, "--version-id", version)
    sids = {s.get("Sid") for s in doc["PolicyVersion"]["Document"]["Statement"]}
    assert "ELBOperations" in sids and "CloudWatchLogsCreateOperations" in sids

    name = unique("docflow")
    out = berth.aws(
        "ecs",
        "create-express-gateway-service",
        "--primary-container",
        f"image={DEMO_IMAGE}",
        "--execution-role-arn",
        exec_role["Arn"],
        "--infrastructure-role-arn",
        infra_role["Arn"],
        "--service-name",
        name,
    )
    arn = out["service"]["serviceArn"]
    try:
        host = berth.wait_endpoint(arn)
        assert berth.wait_status(host, 200, "/ping").text == "pong"
    finally:
        berth.best_effort_delete(arn)
    # A role in use by attachments cannot be deleted until they are gone.
    denied = berth.aws("iam", "delete-role", "--role-name", exec_name, check=False)
    assert denied.returncode != 0 and "DeleteConflict" in denied.stderr


def test_list_policies_scopes(berth):
    iam = berth.client("iam")
    name = unique("pol")
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    aws = {p["Arn"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    local = {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert EXEC_POLICY in aws and INFRA_POLICY in aws and arn not in aws
    assert arn in local and EXEC_POLICY not in local
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"] == doc
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))
    assert error_of(e.value)[0] == "EntityAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_policy(PolicyName=unique("bad"), PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*"}]}')
    assert error_of(e.value)[0] == "MalformedPolicyDocument"
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_policy(PolicyArn=arn)
    assert error_of(e.value)[0] == "NoSuchEntity"


def test_a_user_without_passrole_is_denied(berth):
    _, key = make_user(
        berth, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}
    )
    ecs = as_user(berth, key, "ecs")
    name = unique("nopass")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_express_gateway_service(
            serviceName=name, primaryContainer={"image": DEMO_IMAGE}, **berth.role_arns()
        )
    code, message = error_of(e.value)
    assert code == "AccessDeniedException", (code, message)
    assert "is not authorized to perform: iam:PassRole on resource: arn:aws:iam::" in message, message
    assert name not in service_names(berth)


def test_a_user_with_passrole_for_the_right_service_can_create(berth):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}},
            },
        ],
    }
    _, key = make_user(berth, policy)
    ecs = as_user(berth, key, "ecs")
    name = unique("pass")
    arn = ecs.create_express_gateway_service(
        serviceName=name, primaryContainer={"image": DEMO_IMAGE}, **berth.role_arns()
    )["service"]["serviceArn"]
    try:
        assert name in service_names(berth)
    finally:
        berth.best_effort_delete(arn)


def elb_resources(berth) -> dict[str, set[str]]:
    """Every load balancer, listener, rule, target group and security group berth holds, by ARN or id."""
    elb = elbv2(berth)
    lbs = {lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]}
    listeners = {l["ListenerArn"] for lb in lbs for l in elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]}
    rules = {r["RuleArn"] for l in listeners for r in elb.describe_rules(ListenerArn=l)["Rules"]}
    groups = {g["TargetGroupArn"] for g in elb.describe_target_groups()["TargetGroups"]}
    sgs = {g["GroupId"] for g in berth.client("ec2").describe_security_groups()["SecurityGroups"]}
    return {"lbs": lbs, "listeners": listeners, "rules": rules, "target_groups": groups, "security_groups": sgs}


def test_an_infrastructure_role_without_an_elb_permission_fails_cleanly(berth):
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "elasticloadbalancing:CreateRule", "Resource": "*"}],
    }
    infra = make_role(berth, "ecs.amazonaws.com", INFRA_POLICY, deny)
    role_name = infra.rsplit("/", 1)[-1]
    name = unique("noelb")
    before, resources = service_names(berth), elb_resources(berth)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=name,
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=berth.role_arns()["executionRoleArn"],
            infrastructureRoleArn=infra,
        )
    code, message = error_of(e.value)
    assert code == "AccessDeniedException", (code, message)
    assert f"assumed-role/{role_name}/ECSGateway" in message, message
    assert "elasticloadbalancing:CreateRule on resource: arn:aws:elasticloadbalancing:" in message, message
    # Earlier tests' services may finish deleting meanwhile: what matters is that nothing new appears.
    assert service_names(berth) <= before, "nothing is left behind"
    after = elb_resources(berth)
    for kind, arns in after.items():
        assert arns <= resources[kind], (kind, arns - resources[kind])
    # A role with no policies at all fails on the first thing berth does.
    bare = make_role(berth, "ecs.amazonaws.com", None)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=name,
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=berth.role_arns()["executionRoleArn"],
            infrastructureRoleArn=bare,
        )
    assert error_of(e.value)[0] == "AccessDeniedException"
    assert service_names(berth) <= before


def test_a_role_without_create_load_balancer_shares_an_existing_one(berth):
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "elasticloadbalancing:CreateLoadBalancer", "Resource": "*"}],
    }
    infra = make_role(berth, "ecs.amazonaws.com", INFRA_POLICY, deny)
    first = berth.create_service(unique("lbowner"))["serviceArn"]
    try:
        lbs = elb_resources(berth)["lbs"]
        assert lbs
        second = berth.ecs().create_express_gateway_service(
            serviceName=unique("sharer"),
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=berth.role_arns()["executionRoleArn"],
            infrastructureRoleArn=infra,
        )["service"]["serviceArn"]
        berth.best_effort_delete(second)
        assert elb_resources(berth)["lbs"] <= lbs
    finally:
        berth.best_effort_delete(first)


def test_a_deletion_waits_for_the_infrastructure_role(berth):
    """The role loses its policy: the deletion is accepted but keeps every resource, the service stays DRAINING
    with the denial as its reason; once the policy is back the deletion completes by itself."""
    iam = berth.client("iam")
    infra = make_role(berth, "ecs.amazonaws.com", INFRA_POLICY)
    role_name = infra.rsplit("/", 1)[-1]
    before = elb_resources(berth)
    arn = berth.ecs().create_express_gateway_service(
        serviceName=unique("waits"),
        primaryContainer={"image": DEMO_IMAGE},
        executionRoleArn=berth.role_arns()["executionRoleArn"],
        infrastructureRoleArn=infra,
    )["service"]["serviceArn"]
    created = elb_resources(berth)
    mine = {kind: created[kind] - before[kind] for kind in created}
    assert len(mine["target_groups"]) == 2 and len(mine["security_groups"]) == 2, mine
    iam.detach_role_policy(RoleName=role_name, PolicyArn=INFRA_POLICY)
    try:
        status = berth.ecs().delete_express_gateway_service(serviceArn=arn)["service"]["status"]
        assert status["statusCode"] == "DRAINING"
        assert f"assumed-role/{role_name}/ECSGateway" in status["statusReason"], status
        time.sleep(3)  # several reconciler passes (resync: 1 s): none of them may go further
        status = berth.describe_service(arn)["status"]
        assert status["statusCode"] == "DRAINING", status
        assert "elasticloadbalancing:" in status["statusReason"] and role_name in status["statusReason"], status
        events = berth.ecs().describe_services(cluster="default", services=[arn])["services"][0]["events"]
        assert any(f"assumed-role/{role_name}/ECSGateway" in e["message"] for e in events), events
        now = elb_resources(berth)
        for kind, ids in mine.items():
            assert ids <= now[kind], (kind, ids - now[kind])
    finally:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=INFRA_POLICY)
    berth.wait_inactive(arn, timeout=60)
    after = elb_resources(berth)
    assert not (mine["target_groups"] & after["target_groups"]), after
    assert not (mine["rules"] & after["rules"]), after
    wait_for(
        "the service's security groups to go",
        lambda: not (mine["security_groups"] & elb_resources(berth)["security_groups"]),
        30,
    )


def test_wrong_trust_principal_and_missing_roles_are_clear_errors(berth):
    wrong = make_role(berth, "ec2.amazonaws.com", EXEC_POLICY)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=unique("trust"),
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=wrong,
            infrastructureRoleArn=berth.role_arns()["infrastructureRoleArn"],
        )
    code, message = error_of(e.value)
    assert code == "InvalidParameterException"
    assert "does not allow ecs-tasks.amazonaws.com" in message, message
    missing = f"arn:aws:iam::{berth.account_id}:role/{unique('nope')}"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=unique("trust"),
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=berth.role_arns()["executionRoleArn"],
            infrastructureRoleArn=missing,
        )
    code, message = error_of(e.value)
    assert code == "InvalidParameterException" and "does not exist" in message, message


def test_assume_role_credentials_work_as_the_role(berth):
    user, key = make_user(
        berth,
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]},
    )
    iam = berth.client("iam")
    role = unique("session")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{berth.account_id}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200)[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="list",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}
        ),
    )
    sts = as_user(berth, key, "sts")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{berth.account_id}:user/{user}"
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="e2e", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    left = (creds["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 880 <= left <= 905, left
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{berth.account_id}:assumed-role/{role}/e2e"

    session = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    me = berth.client("sts", *session).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{berth.account_id}:assumed-role/{role}/e2e"
    assert me["UserId"].endswith(":e2e")
    ecs = berth.client("ecs", *session)
    assert "clusterArns" in ecs.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName=unique("c"))
    code, message = error_of(e.value)
    assert code == "AccessDeniedException"
    assert f"assumed-role/{role}/e2e is not authorized to perform: ecs:CreateCluster" in message, message
    # Without the session token the key is not accepted.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.client("ecs", creds["AccessKeyId"], creds["SecretAccessKey"]).list_clusters()
    assert error_of(e.value)[0] == "UnrecognizedClientException"
    # The role's MaxSessionDuration bounds DurationSeconds; root may not assume roles at all.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="long", DurationSeconds=7201)
    assert error_of(e.value)[0] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="root")
    assert error_of(e.value)[0] == "AccessDenied"


def test_a_role_whose_trust_policy_names_someone_else_cannot_be_assumed(berth):
    _, key = make_user(
        berth,
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]},
    )
    role_arn = make_role(berth, "ecs-tasks.amazonaws.com", None)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_user(berth, key, "sts").assume_role(RoleArn=role_arn, RoleSessionName="xx")
    code, message = error_of(e.value)
    assert code == "AccessDenied" and "sts:AssumeRole" in message, message


def test_a_user_with_a_narrow_policy_can_do_exactly_what_it_allows(berth):
    name, key = make_user(
        berth,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["ecs:ListClusters", "ecs:DescribeClusters"], "Resource": "*"},
                {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::*:user/${aws:username}"},
                {"Effect": "Deny", "Action": "ecs:DescribeClusters", "Resource": "*"},
            ],
        },
    )
    ecs = as_user(berth, key, "ecs")
    assert "clusterArns" in ecs.list_clusters()
    for call in (lambda: ecs.describe_clusters(), lambda: ecs.create_cluster(clusterName=unique("c"))):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e.value)[0] == "AccessDeniedException"
    iam = as_user(berth, key, "iam")
    assert iam.get_user()["User"]["UserName"] == name
    assert iam.get_user(UserName=name)["User"]["UserId"].startswith("AIDA")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.get_user(UserName="someone-else")
    code, message = error_of(e.value)
    assert code == "AccessDenied", (code, message)
    assert message.endswith("because no identity-based policy allows the iam:GetUser action"), message
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_user(UserName=unique("x"))
    assert error_of(e.value)[0] == "AccessDenied"
    # Deleting the key takes effect at once.
    berth.client("iam").delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    time.sleep(0.1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_of(e.value)[0] == "UnrecognizedClientException"


def test_access_keys_are_sealed_at_rest(berth):
    """Long-term secrets (the root user's, an IAM user's) are in no database page or WAL frame in plain text, yet
    both authenticate; the root user's is only in the data directory's credentials file (0600)."""
    _, key = make_user(berth, None)
    root_key, root_secret = berth.credentials()
    assert as_user(berth, key, "sts").get_caller_identity()["Arn"].endswith(":user/" + key["UserName"])
    assert berth.client("sts").get_caller_identity()["Arn"].endswith(":root")
    secrets = {"user's secret key": key["SecretAccessKey"], "root user's secret key": root_secret}
    assert berth.in_plain_text_at_rest(secrets) == []
    assert (berth.data_dir / "credentials").stat().st_mode & 0o777 == 0o600


def test_trust_updates_and_role_tags(berth):
    """A role's trust policy can be replaced (and a wrong one then fails the create); tags are kept and listed."""
    iam = berth.client("iam")
    arn = make_role(berth, "ecs-tasks.amazonaws.com", EXEC_POLICY)
    name = arn.rsplit("/", 1)[-1]
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "web"}])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "team", "Value": "web"}]
    assert iam.get_role(RoleName=name)["Role"]["Tags"] == [{"Key": "team", "Value": "web"}]
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy("ec2.amazonaws.com")))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == trust_policy("ec2.amazonaws.com")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument='{"Version":"2012-10-17","Statement":[]}')
    assert error_of(e.value)[0] == "MalformedPolicyDocument"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().create_express_gateway_service(
            serviceName=unique("retrust"),
            primaryContainer={"image": DEMO_IMAGE},
            executionRoleArn=arn,
            infrastructureRoleArn=berth.role_arns()["infrastructureRoleArn"],
        )
    assert error_of(e.value)[0] == "InvalidParameterException"
