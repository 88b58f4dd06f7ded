"""Helpers for tests that drive the ELBv2 API and send traffic through the real proxy: a boto3 `elbv2` client,
one HTTPS request with chosen SNI/Host/source address, and lookups of the resources behind an Express endpoint."""

from __future__ import annotations

import http.client
import socket
import ssl

import boto3
from botocore.config import Config

from berthlib import REGION, Response, wait_for


def elbv2(berth):
    key, secret = berth.credentials()
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
    return session.client(
        "elbv2",
        endpoint_url=berth.api_url,
        verify=str(berth.ca_path),
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
    )


def insecure_context() -> ssl.SSLContext:
    # A custom domain is served with the listener's default certificate (as on ALB without an ACM certificate
    # for it), so these requests do not verify the name.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def get(berth, host: str, path: str = "/", source: str | None = None, timeout: float = 5) -> Response:
    """One HTTPS request to the proxy with SNI and Host = `host`, optionally from a given loopback address."""
    raw = socket.create_connection(
        ("127.0.0.1", berth.ports.https), timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        tls = insecure_context().wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    conn = http.client.HTTPSConnection(host, berth.ports.https, timeout=timeout)
    conn.sock = tls
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{berth.ports.https}", "User-Agent": "berth-e2e"})
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def wait_version(berth, host: str, version: str, path: str = "/", timeout: float = 60) -> Response:
    def probe():
        r = get(berth, host, path, timeout=3)
        return r if r.status == 200 and r.header("x-demo-version") == version else None

    return wait_for(f"https://{host}{path} to answer version {version}", probe, timeout, interval=0.1)


def service_resources(client, endpoint: str) -> dict:
    """The load balancer, HTTPS listener, Express rule and target groups (live first) serving `endpoint`."""
    for lb in client.describe_load_balancers()["LoadBalancers"]:
        listeners = client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        https = next(li for li in listeners if li["Port"] == 443)
        for rule in client.describe_rules(ListenerArn=https["ListenerArn"])["Rules"]:
            hosts = [v for c in rule["Conditions"] if c["Field"] == "host-header" for v in c["Values"]]
            if endpoint in hosts:
                groups = sorted(
                    rule["Actions"][0]["ForwardConfig"]["TargetGroups"], key=lambda g: -g["Weight"]
                )
                return {
                    "lb": lb,
                    "listeners": listeners,
                    "listener": https["ListenerArn"],
                    "rule": rule,
                    "live": groups[0]["TargetGroupArn"],
                    "idle": groups[1]["TargetGroupArn"],
                }
    raise AssertionError(f"no rule routes {endpoint}")


def free_priority(client, listener: str, start: int) -> int:
    used = {r["Priority"] for r in client.describe_rules(ListenerArn=listener)["Rules"]}
    p = start
    while str(p) in used:
        p += 1
    return p


def forward(*groups: tuple[str, int]) -> list[dict]:
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": g, "Weight": w} for g, w in groups]}}]
