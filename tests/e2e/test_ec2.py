"""EC2 through the AWS CLI and boto3: the default VPC and subnets, security groups and their rules, the two
groups an Express service gets, and security groups enforced between real containers (iptables on this host)."""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import subprocess
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from berthlib import DEMO_IMAGE, container_labels, containers, docker, unique, wait_for

NETWORK = "berth-default"


def ec2(berth):
    key, secret = berth.credentials()
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
    ).client(
        "ec2",
        endpoint_url=berth.api_url,
        verify=str(berth.ca_path),
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30),
    )


def code_of(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def expect_error(code: str, fn, *args, **kw) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn(*args, **kw)
    assert code_of(info.value) == code, info.value.response
    return info.value


def network_subnet() -> str:
    out = docker("network", "inspect", NETWORK, "--format", "{{json .IPAM.Config}}")
    configs = json.loads(out.stdout)
    return next(c["Subnet"] for c in configs if ":" not in c["Subnet"])


def test_default_vpc_subnets_and_group_with_the_cli(berth):
    vpcs = berth.aws("ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true")["Vpcs"]
    assert len(vpcs) == 1, vpcs
    vpc = vpcs[0]
    assert vpc["IsDefault"] is True and vpc["State"] == "available"
    # The VPC is backed by the task network: its CIDR is the Docker network's subnet.
    wait_for(
        "the default VPC to take the network's subnet",
        lambda: berth.aws("ec2", "describe-vpcs", "--vpc-ids", vpc["VpcId"])["Vpcs"][0]["CidrBlock"]
        == network_subnet(),
        timeout=15,
    )
    cidr = ipaddress.ip_network(network_subnet())
    subnets = berth.aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc['VpcId']}")["Subnets"]
    assert len(subnets) >= 2, subnets
    assert len({s["AvailabilityZone"] for s in subnets}) == len(subnets)
    for s in subnets:
        assert ipaddress.ip_network(s["CidrBlock"]).subnet_of(cidr), (s, cidr)
        assert s["DefaultForAz"] is True and s["MapPublicIpOnLaunch"] is True
    groups = berth.aws("ec2", "describe-security-groups", "--group-names", "default")["SecurityGroups"]
    assert [g["VpcId"] for g in groups] == [vpc["VpcId"]]
    egress = groups[0]["IpPermissionsEgress"]
    assert egress and egress[0]["IpProtocol"] == "-1" and egress[0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"

    bad = berth.aws("ec2", "describe-vpcs", "--vpc-ids", "vpc-0123456789abcdef0", check=False)
    assert bad.returncode != 0 and "InvalidVpcID.NotFound" in bad.stderr, bad.stderr
    bad = berth.aws("ec2", "describe-security-groups", "--filters", "Name=bogus,Values=x", check=False)
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr, bad.stderr


def test_security_group_lifecycle_and_errors(berth):
    client = ec2(berth)
    vpc_id = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    name = unique("grp")
    created = client.create_security_group(
        GroupName=name,
        Description="e2e group",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "e2e"}]}],
    )
    gid = created["GroupId"]
    assert gid.startswith("sg-") and len(gid) == 20, gid
    other = client.create_security_group(GroupName=unique("peer"), Description="peer", VpcId=vpc_id)["GroupId"]
    try:
        expect_error("InvalidGroup.Duplicate", client.create_security_group, GroupName=name, Description="again")
        expect_error("InvalidVpcID.NotFound", client.create_security_group, GroupName=unique("x"), Description="x",
                     VpcId="vpc-00000000000000000")

        [group] = client.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        assert group["GroupName"] == name and group["VpcId"] == vpc_id and group["Description"] == "e2e group"
        assert group["IpPermissions"] == []
        assert group["IpPermissionsEgress"][0]["IpProtocol"] == "-1", "new groups allow all egress, as on AWS"
        assert {"Key": "team", "Value": "e2e"} in group["Tags"]
        by_tag = client.describe_security_groups(Filters=[{"Name": "tag:team", "Values": ["e2e"]}])["SecurityGroups"]
        assert [g["GroupId"] for g in by_tag] == [gid]
        by_name = client.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                           {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
        assert [g["GroupId"] for g in by_name] == [gid]

        perms = [{
            "IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100,
            "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office"}],
            "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            "UserIdGroupPairs": [{"GroupId": other}],
        }]
        added = client.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        assert added["Return"] is True and len(added["SecurityGroupRules"]) == 3
        expect_error("InvalidPermission.Duplicate", client.authorize_security_group_ingress, GroupId=gid,
                     IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100,
                                     "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        expect_error("InvalidParameterValue", client.authorize_security_group_ingress, GroupId=gid,
                     IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2,
                                     "IpRanges": [{"CidrIp": "10.0.0.0/33"}]}])
        expect_error("InvalidParameterValue", client.authorize_security_group_ingress, GroupId=gid,
                     IpPermissions=[{"IpProtocol": "tcp", "FromPort": 9, "ToPort": 2,
                                     "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        expect_error("InvalidGroup.NotFound", client.authorize_security_group_ingress, GroupId="sg-00000000000000000",
                     IpPermissions=perms)
        [group] = client.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        [perm] = group["IpPermissions"]
        assert (perm["FromPort"], perm["ToPort"], perm["IpProtocol"]) == (8000, 8100, "tcp")
        assert perm["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "office"}]
        assert perm["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
        assert perm["UserIdGroupPairs"][0]["GroupId"] == other

        rules = client.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
        rules = rules["SecurityGroupRules"]
        assert len(rules) == 4 and sum(r["IsEgress"] for r in rules) == 1, rules
        ref = next(r for r in rules if r.get("ReferencedGroupInfo"))
        assert ref["ReferencedGroupInfo"]["GroupId"] == other

        # The referenced group cannot go while a rule points at it.
        expect_error("DependencyViolation", client.delete_security_group, GroupId=other)

        # Revoke by permission, then by rule id; unknown ones are refused.
        revoked = client.revoke_security_group_ingress(
            GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100,
                                         "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        assert revoked["Return"] is True and len(revoked["RevokedSecurityGroupRules"]) == 1
        expect_error("InvalidPermission.NotFound", client.revoke_security_group_ingress, GroupId=gid,
                     IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100,
                                     "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        expect_error("InvalidSecurityGroupRuleId.NotFound", client.revoke_security_group_ingress, GroupId=gid,
                     SecurityGroupRuleIds=["sgr-00000000000000000"])
        client.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[ref["SecurityGroupRuleId"]])
        client.delete_security_group(GroupId=other)
        other = None

        # Egress: revoke the default, authorize one.
        client.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1",
                                                                         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        client.authorize_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "udp", "FromPort": 53,
                                                                            "ToPort": 53,
                                                                            "IpRanges": [{"CidrIp": "10.0.0.2/32"}]}])
        [group] = client.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        assert [(p["IpProtocol"], p["FromPort"]) for p in group["IpPermissionsEgress"]] == [("udp", 53)]

        # Tags on any EC2 id.
        client.create_tags(Resources=[gid, vpc_id], Tags=[{"Key": "Name", "Value": name}])
        tags = client.describe_tags(Filters=[{"Name": "resource-id", "Values": [gid]}])["Tags"]
        assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tags} == {
            ("team", "e2e", "security-group"), ("Name", name, "security-group")}
        expect_error("InvalidGroup.NotFound", client.create_tags, Resources=["sg-00000000000000000"],
                     Tags=[{"Key": "a", "Value": "b"}])

        default = client.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        expect_error("CannotDelete", client.delete_security_group, GroupId=default)
    finally:
        for g in (gid, other):
            if g:
                try:
                    client.delete_security_group(GroupId=g)
                except ClientError:
                    pass
    expect_error("InvalidGroup.NotFound", client.describe_security_groups, GroupIds=[gid])
    expect_error("InvalidGroupId.Malformed", client.describe_security_groups, GroupIds=["nope"])


def task_container(arn: str) -> dict:
    running = wait_for(f"a running container of {arn}", lambda: containers(f"berth.service={arn}") or None, 60)
    return running[0]


def container_ip(container_id: str) -> str:
    out = docker("inspect", container_id, "--format", "{{json .NetworkSettings.Networks}}")
    return json.loads(out.stdout)[NETWORK]["IPAddress"]


def probe_from(container_id: str, target: str) -> bool:
    """Opens a TCP connection from inside a task container (the demo binary's probe mode)."""
    out = docker("exec", container_id, "/berth-demo", "probe", target, "1000", check=False, timeout=30)
    assert out.returncode in (0, 1), out
    return out.returncode == 0


def probe_from_stranger(target: str) -> bool:
    """Opens a TCP connection from a container on the task network that belongs to no service."""
    out = docker("run", "--rm", "--network", NETWORK, "--entrypoint", "/berth-demo", DEMO_IMAGE,
                 "probe", target, "1000", check=False, timeout=60)
    assert out.returncode in (0, 1), out
    return out.returncode == 0


def test_express_groups_are_created_and_enforced(berth):
    client = ec2(berth)
    vpc_id = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    user_group = client.create_security_group(GroupName=unique("extra"), Description="user group")["GroupId"]
    expect = berth.ecs()
    with pytest.raises(ClientError) as info:
        berth.create_service(unique("badsg"), networkConfiguration={"securityGroups": ["sg-00000000000000000"]})
    assert code_of(info.value) == "InvalidParameterException", info.value.response
    assert "InvalidGroup.NotFound" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        berth.create_service(unique("badsn"), networkConfiguration={"subnets": ["subnet-00000000000000000"]})
    assert code_of(info.value) == "InvalidParameterException", info.value.response

    a_name, b_name = unique("sga"), unique("sgb")
    a = berth.create_service(a_name)["serviceArn"]
    b = berth.create_service(b_name, networkConfiguration={"securityGroups": [user_group]})["serviceArn"]
    try:
        a_host, b_host = berth.wait_endpoint(a), berth.wait_endpoint(b)
        berth.wait_status(a_host, 200, "/ping", timeout=60)
        berth.wait_status(b_host, 200, "/ping", timeout=60)

        # -- the groups, as AWS shows them
        a_net = berth.describe_service(a)["activeConfigurations"][0]["networkConfiguration"]
        b_net = berth.describe_service(b)["activeConfigurations"][0]["networkConfiguration"]
        assert len(a_net["securityGroups"]) == 1 and a_net["subnets"], a_net
        assert b_net["securityGroups"][1:] == [user_group], "user groups are added after Express's own"
        a_sg, b_sg = a_net["securityGroups"][0], b_net["securityGroups"][0]
        svc = expect.describe_services(services=[a])["services"][0]
        assert svc["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == [a_sg]

        managed = client.describe_security_groups(
            Filters=[{"Name": "tag:AmazonECSManaged", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc_id]}]
        )["SecurityGroups"]
        by_id = {g["GroupId"]: g for g in managed}
        assert a_sg in by_id, managed
        [ingress] = by_id[a_sg]["IpPermissions"]
        assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 80, 80)
        [pair] = ingress["UserIdGroupPairs"]
        a_lb = pair["GroupId"]
        lb_perms = {(p["FromPort"], r.get("CidrIp") or r.get("CidrIpv6"))
                    for p in by_id[a_lb]["IpPermissions"] for r in p["IpRanges"] + p["Ipv6Ranges"]}
        assert lb_perms == {(443, "0.0.0.0/0"), (443, "::/0"), (80, "0.0.0.0/0"), (80, "::/0")}, lb_perms
        expect_error("DependencyViolation", client.delete_security_group, GroupId=user_group)

        # -- enforcement: B's task and a stranger container cannot open A's port; the proxy can.
        a_ct, b_ct = task_container(a), task_container(b)
        target = f"{container_ip(a_ct['ID'])}:80"
        start = time.monotonic()
        wait_for("B's connection to A to be refused", lambda: not probe_from(b_ct["ID"], target), 15, interval=0.2)
        assert not probe_from(b_ct["ID"], target)
        assert not probe_from_stranger(target)
        assert berth.https_get(a_host, "/ping").status == 200, "the load balancer still reaches A"
        instance = container_labels(a_ct["ID"])["berth.instance"]
        chain = subprocess.run(["iptables", "-S", f"BERTH-SG-{instance}"], capture_output=True, text=True,
                               timeout=10, check=True).stdout
        assert f"-d {target.split(':')[0]}/32 -j DROP" in chain, chain

        # -- authorizing B's group on A's group lets B in (and only B)
        client.authorize_security_group_ingress(GroupId=a_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": b_sg}]}])
        start = time.monotonic()
        wait_for("B's connection to A to open", lambda: probe_from(b_ct["ID"], target), 10, interval=0.1)
        opened_after = time.monotonic() - start
        print(f"\nB reached A {opened_after:.2f}s after AuthorizeSecurityGroupIngress")
        assert opened_after < 5, opened_after
        assert not probe_from_stranger(target), "a container outside the groups is still refused"
        # ... and revoking closes it again
        client.revoke_security_group_ingress(GroupId=a_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": b_sg}]}])
        wait_for("B's connection to A to be refused again", lambda: not probe_from(b_ct["ID"], target), 10,
                 interval=0.1)
    finally:
        berth.best_effort_delete(a)
        berth.best_effort_delete(b)
    berth.wait_inactive(a)
    berth.wait_inactive(b)

    # -- the groups Express created go with their services; the user's group stays
    def gone() -> bool:
        left = client.describe_security_groups(
            Filters=[{"Name": "group-id", "Values": [a_sg, a_lb, b_sg]}])["SecurityGroups"]
        return not left

    wait_for("the Express groups to be deleted", gone, 15, interval=0.5)
    client.delete_security_group(GroupId=user_group)


def https_status_from(berth, source: str, host: str, path: str = "/ping") -> int | str:
    """One HTTPS request to the proxy from client address `source` (a loopback alias): the status, or
    `"closed"` when the connection ends without an HTTP answer."""
    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    raw = socket.create_connection(("127.0.0.1", berth.ports.https), timeout=5, source_address=(source, 0))
    try:
        tls = ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    conn = http.client.HTTPSConnection(host, berth.ports.https, timeout=5, context=ctx)
    conn.sock = tls
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{berth.ports.https}", "User-Agent": "berth-e2e"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (ConnectionError, http.client.RemoteDisconnected, ssl.SSLError):
        return "closed"
    finally:
        conn.close()


def test_the_load_balancer_group_filters_client_sources(berth):
    client = ec2(berth)
    arn = berth.create_service(unique("lbsrc"))["serviceArn"]
    try:
        host = berth.wait_endpoint(arn)
        berth.wait_status(host, 200, "/ping", timeout=60)
        assert https_status_from(berth, "127.0.0.2", host) == 200, "Express's group admits everyone"
        sg = berth.describe_service(arn)["activeConfigurations"][0]["networkConfiguration"]["securityGroups"][0]
        [pair] = client.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["IpPermissions"][0][
            "UserIdGroupPairs"]
        lb = pair["GroupId"]
        everyone = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                     "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]
        only_me = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}]

        # -- narrow the load balancer group to 127.0.0.1: 127.0.0.2 is refused within a second
        client.revoke_security_group_ingress(GroupId=lb, IpPermissions=everyone)
        client.authorize_security_group_ingress(GroupId=lb, IpPermissions=only_me)
        start = time.monotonic()
        wait_for("127.0.0.2 to be refused", lambda: https_status_from(berth, "127.0.0.2", host) == 403, 5,
                 interval=0.05)
        refused_after = time.monotonic() - start
        print(f"\n127.0.0.2 refused {refused_after:.3f}s after AuthorizeSecurityGroupIngress")
        assert refused_after < 1, refused_after
        for _ in range(5):
            assert https_status_from(berth, "127.0.0.1", host) == 200, "the allowed source is still served"
            assert https_status_from(berth, "127.0.0.2", host) == 403

        # -- restore: served again
        client.revoke_security_group_ingress(GroupId=lb, IpPermissions=only_me)
        client.authorize_security_group_ingress(GroupId=lb, IpPermissions=everyone)
        start = time.monotonic()
        wait_for("127.0.0.2 to be served again", lambda: https_status_from(berth, "127.0.0.2", host) == 200, 5,
                 interval=0.05)
        served_after = time.monotonic() - start
        print(f"127.0.0.2 served again {served_after:.3f}s after the restore")
        assert served_after < 1, served_after
    finally:
        berth.best_effort_delete(arn)
