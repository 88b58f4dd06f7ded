"""Security group EGRESS enforced on real containers (iptables on this host): revoking a service group's default
egress rule stops its task from opening connections to another service's task and to a listener on the host,
while the load balancer still reaches it and berth's own task endpoint stays reachable; authorizing egress to the
peer's group opens exactly that; restoring the default rule lifts the restriction. DNS keeps working with all
egress revoked (Docker's embedded resolver forwards from the task's namespace; berth exempts its upstreams, as
AWS never blocks the VPC's DNS server)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

from berthlib import BerthInstance, Ports, container_labels, docker, pick_free_ports, unique, wait_for
from dnslib import query, upstream_resolver, wait_resolution
from test_ec2 import NETWORK, container_ip, ec2, probe_from, task_container

EVERYTHING = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def network_gateway() -> str:
    out = docker("network", "inspect", NETWORK, "--format", "{{json .IPAM.Config}}")
    config = next(c for c in json.loads(out.stdout) if ":" not in c["Subnet"])
    if config.get("Gateway"):
        return config["Gateway"]
    first, _ = config["Subnet"].split("/")
    a, b, c, d = (int(x) for x in first.split("."))
    return f"{a}.{b}.{c}.{d + 1}"


def egress_chain(instance: str) -> str:
    return subprocess.run(["iptables", "-S", f"BERTH-EG-{instance}"], capture_output=True, text=True, timeout=10,
                          check=True).stdout


def accept_all(listener: socket.socket) -> None:
    """Accepts and closes connections until the listener is closed (so the backlog never fills)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()


def test_egress_rules_limit_where_a_task_connects(berth):
    client = ec2(berth)
    a, b = berth.create_service(unique("ega"))["serviceArn"], berth.create_service(unique("egb"))["serviceArn"]
    # A listener on the host, on the network's gateway address: reached through INPUT, not FORWARD.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    gateway = network_gateway()
    listener.bind((gateway, 0))
    listener.listen(64)
    threading.Thread(target=accept_all, args=(listener,), daemon=True).start()
    host_target = f"{gateway}:{listener.getsockname()[1]}"
    a_sg = None
    try:
        a_host = berth.wait_endpoint(a)
        berth.wait_endpoint(b)
        berth.wait_status(a_host, 200, "/ping", timeout=60)
        a_sg = berth.describe_service(a)["activeConfigurations"][0]["networkConfiguration"]["securityGroups"][0]
        b_sg = berth.describe_service(b)["activeConfigurations"][0]["networkConfiguration"]["securityGroups"][0]
        egress = client.describe_security_groups(GroupIds=[a_sg])["SecurityGroups"][0]["IpPermissionsEgress"]
        assert [(p["IpProtocol"], [r["CidrIp"] for r in p["IpRanges"]]) for p in egress] == [("-1", ["0.0.0.0/0"])]

        # B admits A on its port, so only A's egress can stand in the way.
        client.authorize_security_group_ingress(GroupId=b_sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a_sg}]}])
        a_ct, b_ct = task_container(a), task_container(b)
        b_target = f"{container_ip(b_ct['ID'])}:80"
        credentials = f"169.254.170.2:{berth.task_ports[0]}"
        wait_for("A to reach B", lambda: probe_from(a_ct["ID"], b_target), 15, interval=0.2)
        assert probe_from(a_ct["ID"], host_target), "the host listener is reachable with the default egress rule"

        # -- revoke A's default egress: A reaches neither B nor the host, but still berth's credentials endpoint
        client.revoke_security_group_egress(GroupId=a_sg, IpPermissions=EVERYTHING)
        wait_for("A's connection to B to be refused", lambda: not probe_from(a_ct["ID"], b_target), 15,
                 interval=0.2)
        assert not probe_from(a_ct["ID"], host_target), "the host (INPUT path) is refused too"
        assert probe_from(a_ct["ID"], credentials), "berth's task endpoint stays reachable, as AWS's link-local ones"
        assert probe_from(b_ct["ID"], host_target), "B's egress is untouched"
        for _ in range(3):
            assert berth.https_get(a_host, "/ping").status == 200, "inbound through the load balancer still works"
        instance = container_labels(a_ct["ID"])["berth.instance"]
        a_ip = container_ip(a_ct["ID"])
        chain = egress_chain(instance)
        assert f"-A BERTH-EG-{instance} -s {a_ip}/32 -j DROP" in chain, chain

        # -- authorize A's egress to B's group on 80: A reaches B (only), within a second or two
        to_b = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": b_sg}]}]
        client.authorize_security_group_egress(GroupId=a_sg, IpPermissions=to_b)
        start = time.monotonic()
        wait_for("A's connection to B to open", lambda: probe_from(a_ct["ID"], b_target), 10, interval=0.1)
        print(f"\nA reached B {time.monotonic() - start:.2f}s after AuthorizeSecurityGroupEgress")
        assert not probe_from(a_ct["ID"], host_target), "only B's group on 80 was opened"

        # -- restore the default: everything again
        client.revoke_security_group_egress(GroupId=a_sg, IpPermissions=to_b)
        client.authorize_security_group_egress(GroupId=a_sg, IpPermissions=EVERYTHING)
        wait_for("A to reach the host again", lambda: probe_from(a_ct["ID"], host_target), 10, interval=0.1)
        assert probe_from(a_ct["ID"], b_target)
        assert f"-s {a_ip}/32" not in egress_chain(instance), "an unrestricted task has no egress rules"
        a_sg = None
    finally:
        listener.close()
        if a_sg is not None:
            try:
                client.authorize_security_group_egress(GroupId=a_sg, IpPermissions=EVERYTHING)
            except Exception:  # noqa: BLE001 (already there, or the group is gone)
                pass
        berth.best_effort_delete(a)
        berth.best_effort_delete(b)
    berth.wait_inactive(a)
    berth.wait_inactive(b)


def test_dns_resolves_with_all_egress_revoked(berth):
    gateway = network_gateway()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((gateway, 0))
    listener.listen(64)
    threading.Thread(target=accept_all, args=(listener,), daemon=True).start()
    host_target = f"{gateway}:{listener.getsockname()[1]}"
    with upstream_resolver(".berth-dns.test", "192.0.2.77") as resolver:
        # A berth whose tasks' DNS is forwarded to that resolver (beyond the host, as the host's own usually is).
        api, https, http_, internal = pick_free_ports(4)
        other = BerthInstance(binary=berth.binary, ports=Ports(api=api, https=https, http=http_, internal=internal),
                              extra_config=["[runtime]", f'dns_servers = ["{resolver}"]'])
        try:
            other.start()
            other.ensure_express_roles()
            client = other.client("ec2")
            arn = other.create_service(unique("dns"))["serviceArn"]
            other.wait_endpoint(arn)
            ct = task_container(arn)
            name = "web.berth-dns.test"
            wait_resolution(ct["ID"], name, "192.0.2.77", 30)
            assert probe_from(ct["ID"], host_target)

            group = other.describe_service(arn)["activeConfigurations"][0]["networkConfiguration"]["securityGroups"][0]
            client.revoke_security_group_egress(GroupId=group, IpPermissions=EVERYTHING)
            wait_for("the task's connection to the host to be refused",
                     lambda: not probe_from(ct["ID"], host_target), 15, interval=0.2)
            assert query(ct["ID"], name) == "192.0.2.77", "DNS resolves with all egress revoked"
            assert query(ct["ID"], "other.berth-dns.test") == "192.0.2.77"

            # The exemption is what lets it through: the forwarded queries leave with the task's address.
            instance = container_labels(ct["ID"])["berth.instance"]
            ip = container_ip(ct["ID"])
            exempt = [f"-A BERTH-EG-{instance} -s {ip}/32 -d {resolver}/32 -p {p} -m {p} --dport 53 -j RETURN"
                      for p in ("tcp", "udp")]
            chain = egress_chain(instance)
            assert all(rule in chain for rule in exempt), chain
            for rule in exempt:
                subprocess.run(["iptables", "-w", "5", *rule.replace("-A ", "-D ", 1).split()], check=True,
                               timeout=10)
            assert query(ct["ID"], "again.berth-dns.test") is None, "without the exemption the lookup fails"
            # berth puts its rules back on its next resync (every 10 s).
            wait_resolution(ct["ID"], "back.berth-dns.test", "192.0.2.77", 40)
            assert not probe_from(ct["ID"], host_target), "and TCP elsewhere stays blocked"
            other.delete_service(arn, wait=False)
        finally:
            other.cleanup()
            listener.close()
