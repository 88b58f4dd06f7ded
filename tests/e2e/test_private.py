"""Load balancers with their own listeners: a private service (private subnet) is served by an internal load
balancer on the task network's gateway address only, to containers in the VPC, and not on the public listener;
narrowing its load balancer group closes connections at accept. A public load balancer with an address from
`proxy.address_pool` serves only its own hosts there, and refuses at accept what its group does not admit."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from berthlib import BerthInstance, Ports, docker, pick_free_ports, service_endpoint, unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
NETWORK = "berth-default"

# Runs inside a container on the task network (the berth-boto3 image's Python): one HTTPS GET with SNI.
PROBE = r"""
import http.client, socket, ssl, sys
host, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile="/ca.pem")
try:
    raw = socket.create_connection((addr, port), timeout=5)
    tls = ctx.wrap_socket(raw, server_hostname=host)
    c = http.client.HTTPSConnection(host, port, timeout=5, context=ctx)
    c.sock = tls
    c.request("GET", "/ping", headers={"Host": "%s:%d" % (host, port)})
    print(c.getresponse().status)
except (OSError, ssl.SSLError, http.client.HTTPException) as e:
    print("closed", type(e).__name__)
"""

EVERYONE_443 = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                 "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]


@pytest.fixture(scope="module")
def python_image() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "build-boto3-image.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr
    return "berth-boto3:latest"


def gateway() -> str:
    return docker("network", "inspect", NETWORK, "--format", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()


def https_from_container(berth, image: str, host: str, addr: str, port: int) -> str:
    """An HTTPS GET /ping from a fresh container on the task network: the status, or `closed <error>`."""
    out = docker("run", "--rm", "--network", NETWORK, "-v", f"{berth.ca_path}:/ca.pem:ro",
                 "--entrypoint", "/py/bin/python3", image, "-c", PROBE, host, addr, str(port),
                 check=False, timeout=60)
    return out.stdout.strip() or f"closed exit {out.returncode}: {out.stderr.strip()[-200:]}"


def https_status(berth, addr: str, port: int, host: str, source: str | None = None) -> int | str:
    """One HTTPS GET /ping to `addr:port` from the host (optionally from `source`): the status or `closed`."""
    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    try:
        raw = socket.create_connection((addr, port), timeout=5, source_address=(source, 0) if source else None)
    except OSError:
        return "closed"
    try:
        tls = ctx.wrap_socket(raw, server_hostname=host)
        conn = http.client.HTTPSConnection(host, port, timeout=5, context=ctx)
        conn.sock = tls
        conn.request("GET", "/ping", headers={"Host": f"{host}:{port}", "User-Agent": "berth-e2e"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status
    except (OSError, ssl.SSLError, http.client.HTTPException):
        raw.close()
        return "closed"


def private_subnet(ec2) -> str:
    """A new subnet (private: MapPublicIpOnLaunch false) in the last block of the default VPC."""
    vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]
    net = ipaddress.ip_network(vpc["CidrBlock"])
    block = list(net.subnets(new_prefix=min(28, max(net.prefixlen + 2, 24))))[-1]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=str(block))["Subnet"]
    assert subnet["MapPublicIpOnLaunch"] is False
    return subnet["SubnetId"]


def lb_group(ec2, service_name: str) -> str:
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"ecs-express-{service_name}-lb-*"]}])["SecurityGroups"]
    return groups[0]["GroupId"]


def test_a_private_service_is_served_on_the_vpc_side_only(berth, python_image):
    ec2, elb = berth.client("ec2"), berth.client("elbv2")
    wait_for("the default VPC to take the network's subnet",
             lambda: ipaddress.ip_network([v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]["CidrBlock"])
             .supernet_of(ipaddress.ip_network(f"{gateway()}/32")), 30)
    subnet = private_subnet(ec2)
    name = unique("priv")
    arn = berth.create_service(name, networkConfiguration={"subnets": [subnet]})["serviceArn"]
    try:
        host = berth.wait_endpoint(arn)
        svc = berth.describe_service(arn)
        assert svc["activeConfigurations"][0]["ingressPaths"][0]["accessType"] == "PRIVATE"
        internal = [lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["Scheme"] == "internal"]
        assert len(internal) == 1 and internal[0]["DNSName"].startswith("internal-"), internal

        gw, port = gateway(), berth.ports.https
        got = wait_for(f"{host} to answer through the internal load balancer at {gw}:{port}",
                       lambda: (lambda s: s if s == "200" else None)(https_from_container(berth, python_image, host, gw, port)),
                       120, interval=0.5)
        assert got == "200"
        # Served on the VPC side from the host as well, and NOT on the public listener.
        assert https_status(berth, gw, port, host) == 200
        assert berth.https_get(host, "/ping").status == 404, "a private service is not on the public listener"

        # Narrowing its load balancer group refuses the connection itself (closed before TLS).
        group = lb_group(ec2, name)
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=EVERYONE_443)
        started = time.monotonic()
        wait_for("the internal load balancer to refuse", lambda: https_status(berth, gw, port, host) == "closed", 10,
                 interval=0.05)
        print(f"\ninternal load balancer closed connections {time.monotonic() - started:.3f}s after the revoke")
        assert https_from_container(berth, python_image, host, gw, port).startswith("closed")
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=EVERYONE_443)
        wait_for("the internal load balancer to serve again", lambda: https_status(berth, gw, port, host) == 200, 10,
                 interval=0.05)
    finally:
        berth.best_effort_delete(arn)
    wait_for("the private subnet to be free", lambda: _try_delete_subnet(ec2, subnet), 60)


def _try_delete_subnet(ec2, subnet: str) -> bool:
    try:
        ec2.delete_subnet(SubnetId=subnet)
        return True
    except ec2.exceptions.ClientError:
        return False


def test_mixed_public_and_private_subnets_are_refused(berth):
    ec2 = berth.client("ec2")
    subnet = private_subnet(ec2)
    try:
        public = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["MapPublicIpOnLaunch"]][0]
        with pytest.raises(berth.ecs().exceptions.InvalidParameterException) as err:
            berth.create_service(unique("mixed"), networkConfiguration={"subnets": [public, subnet]})
        assert public in str(err.value) and subnet in str(err.value)
    finally:
        ec2.delete_subnet(SubnetId=subnet)


def test_a_pool_address_serves_only_its_own_hosts(berth):
    # A second berth whose internet-facing load balancers take 127.0.0.7 from the pool.
    api, https, http_, internal = pick_free_ports(4)
    other = BerthInstance(binary=berth.binary, ports=Ports(api=api, https=https, http=http_, internal=internal),
                          extra_proxy_config=['address_pool = ["127.0.0.7"]'])
    try:
        other.start()
        other.ensure_express_roles()
        ec2, elb = other.client("ec2"), other.client("elbv2")
        name = unique("pool")
        arn = other.create_service(name)["serviceArn"]
        host = service_endpoint(other.describe_service(arn)) or other.wait_endpoint(arn)
        wait_for(f"{host} on 127.0.0.7", lambda: https_status(other, "127.0.0.7", https, host) == 200, 90,
                 interval=0.2)
        assert other.https_get(host, "/ping").status == 404, "not on the default socket"
        [lb] = elb.describe_load_balancers()["LoadBalancers"]
        assert lb["Scheme"] == "internet-facing"

        # Narrow its group to 127.0.0.1: 127.0.0.2 is refused at accept on the load balancer's own address.
        group = lb_group(ec2, name)
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=EVERYONE_443)
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
        wait_for("127.0.0.2 to be refused", lambda: https_status(other, "127.0.0.7", https, host, "127.0.0.2") == "closed",
                 10, interval=0.05)
        assert https_status(other, "127.0.0.7", https, host, "127.0.0.1") == 200

        # The idle timeout attribute applies to the load balancer's client connections.
        elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"],
                                            Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "2"}])
        ctx = ssl.create_default_context(cafile=str(other.ca_path))

        def idle_closed_after() -> float | None:
            raw = socket.create_connection(("127.0.0.7", https), timeout=10, source_address=("127.0.0.1", 0))
            tls = ctx.wrap_socket(raw, server_hostname=host)
            started = time.monotonic()
            try:
                data = tls.recv(1)  # the proxy closes an idle connection: EOF
            except (OSError, ssl.SSLError):
                data = b""
            finally:
                tls.close()
            elapsed = time.monotonic() - started
            return elapsed if data == b"" and elapsed < 8 else None

        closed = wait_for("an idle connection to be closed after ~2 s", idle_closed_after, 30, interval=0.2)
        print(f"\nidle connection on the load balancer's address closed after {closed:.2f}s (attribute: 2 s)")
        assert closed >= 1.5
        other.delete_service(arn, wait=False)
    finally:
        other.cleanup()
