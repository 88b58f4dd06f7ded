"""Target-group attributes the proxy enforces, end to end: duration-based stickiness (`AWSALB`) and slow start,
set with ModifyTargetGroupAttributes on an Express service's live target group.

The live group holds the service's task plus loopback targets registered as IP targets (RegisterTargets), so
the group has several targets whose answers tell them apart (`X-Demo-Version`). Requests go through the real
proxy to the service's endpoint. Slow start is observed loosely (a newly registered target's share right after
it turns healthy against its share once the 30 s window has passed); its exact ramp is covered by the proxy's
unit tests with an injected clock."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from berthlib import unique, wait_for
from elblib import elbv2, insecure_context, service_resources, wait_version


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"ping" if self.path.startswith("/ping") else f"hello from {self.server.name}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Demo-Version", self.server.name)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Target:
    """A loopback HTTP target answering with its name."""

    def __init__(self, name: str) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.name = name  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def spec(self) -> dict:
        return {"Id": "127.0.0.1", "Port": self.port}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def request(berth, host: str, cookie: str | None = None) -> tuple[str, list[str]]:
    """One HTTPS GET through the proxy: (which target answered, the Set-Cookie headers)."""
    raw = socket.create_connection(("127.0.0.1", berth.ports.https), timeout=5)
    tls = insecure_context().wrap_socket(raw, server_hostname=host)
    conn = http.client.HTTPSConnection(host, berth.ports.https, timeout=5)
    conn.sock = tls
    try:
        headers = {"Host": host, "User-Agent": "berth-e2e"}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("GET", "/", headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        return resp.getheader("x-demo-version") or "?", resp.headers.get_all("set-cookie") or []
    finally:
        conn.close()


def cookie_value(set_cookies: list[str], name: str) -> str | None:
    for c in set_cookies:
        key, _, rest = c.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


@pytest.fixture(scope="module")
def live(berth):
    """An Express service (its task answers `S`) and its live target group."""
    arn = berth.create_service(unique("sticky"), environment={"DEMO_VERSION": "S"})["serviceArn"]
    try:
        endpoint = berth.wait_endpoint(arn)
        wait_version(berth, endpoint, "S")
        client = elbv2(berth)
        res = service_resources(client, endpoint)
        yield {"client": client, "group": res["live"], "host": endpoint}
    finally:
        berth.best_effort_delete(arn)


def set_attributes(client, group: str, **attrs: str) -> dict[str, str]:
    out = client.modify_target_group_attributes(
        TargetGroupArn=group, Attributes=[{"Key": k.replace("__", "."), "Value": v} for k, v in attrs.items()]
    )
    return {a["Key"]: a["Value"] for a in out["Attributes"]}


def wait_healthy(client, group: str, targets: list[Target]) -> None:
    def ready() -> bool:
        descs = client.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        states = {d["Target"]["Port"]: d["TargetHealth"]["State"] for d in descs}
        return all(states.get(t.port) == "healthy" for t in targets)

    wait_for(f"targets {[t.port for t in targets]} healthy", ready, 30, interval=0.05)


def test_lb_cookie_pins_a_client_to_its_target(berth, live):
    client, group, host = live["client"], live["group"], live["host"]
    targets = [Target("T1"), Target("T2")]
    client.register_targets(TargetGroupArn=group, Targets=[t.spec for t in targets])
    try:
        wait_healthy(client, group, targets)
        attrs = set_attributes(
            client,
            group,
            stickiness__enabled="true",
            stickiness__type="lb_cookie",
            stickiness__lb_cookie__duration_seconds="300",
        )
        assert (attrs["stickiness.enabled"], attrs["stickiness.type"]) == ("true", "lb_cookie")

        # The proxy serves the new table within moments: wait until responses carry AWSALB.
        wait_for("AWSALB on responses", lambda: cookie_value(request(berth, host)[1], "AWSALB"), 10, interval=0.1)

        # Without the cookie, requests go round the three targets; each response pins its target.
        seen: Counter[str] = Counter()
        cookies: dict[str, str] = {}
        for _ in range(30):
            target, set_cookies = request(berth, host)
            seen[target] += 1
            alb = cookie_value(set_cookies, "AWSALB")
            assert alb and cookie_value(set_cookies, "AWSALBCORS") == alb, set_cookies
            assert any(c.startswith("AWSALBCORS=") and "SameSite=None" in c and "Secure" in c for c in set_cookies)
            cookies.setdefault(target, alb)
        assert set(seen) == {"S", "T1", "T2"} and min(seen.values()) >= 5, seen

        # With a target's cookie, every request (each on a new connection) reaches that target.
        for target, alb in cookies.items():
            answers = Counter(request(berth, host, cookie=f"AWSALB={alb}")[0] for _ in range(12))
            assert answers == Counter({target: 12}), (target, answers)

        # A tampered cookie pins nothing (the value is sealed with the server's key).
        alb = cookies["T1"]
        tampered = alb[:-1] + ("0" if alb[-1] != "0" else "1")
        answers = Counter(request(berth, host, cookie=f"AWSALB={tampered}")[0] for _ in range(12))
        assert len(answers) == 3, answers

        # ALB's validation.
        for key, value in [("stickiness.type", "source_ip"), ("stickiness.app_cookie.cookie_name", "AWSALBAPP-1")]:
            with pytest.raises(ClientError) as e:
                client.modify_target_group_attributes(TargetGroupArn=group, Attributes=[{"Key": key, "Value": value}])
            assert e.value.response["Error"]["Code"] == "ValidationError", (key, e.value.response)
    finally:
        set_attributes(client, group, stickiness__enabled="false")
        client.deregister_targets(TargetGroupArn=group, Targets=[t.spec for t in targets])
        for t in targets:
            t.close()


def test_slow_start_gives_a_new_target_a_growing_share(berth, live):
    client, group, host = live["client"], live["group"], live["host"]
    settled = Target("T1")
    client.register_targets(TargetGroupArn=group, Targets=[settled.spec])
    newcomer = Target("N")
    try:
        wait_healthy(client, group, [settled])
        set_attributes(client, group, slow_start__duration_seconds="30")
        with pytest.raises(ClientError) as e:
            set_attributes(client, group, load_balancing__algorithm__type="least_outstanding_requests")
        assert e.value.response["Error"]["Code"] == "InvalidConfigurationRequest", e.value.response
        time.sleep(0.5)  # the proxy takes the new table
        client.register_targets(TargetGroupArn=group, Targets=[newcomer.spec])
        wait_healthy(client, group, [newcomer])
        healthy_at = time.monotonic()
        early = Counter(request(berth, host)[0] for _ in range(90))
        early_elapsed = time.monotonic() - healthy_at
        # Past the window, the newcomer gets its full share (a third of three targets).
        time.sleep(max(0.0, 31 - (time.monotonic() - healthy_at)))
        late = Counter(request(berth, host)[0] for _ in range(90))
        early_share, late_share = early["N"] / 90, late["N"] / 90
        print(f"slow start: newcomer share {early_share:.2f} over the first {early_elapsed:.1f} s, {late_share:.2f} after")
        assert early_share < late_share / 2, (early, late)
        assert abs(late_share - 1 / 3) < 0.1, late
    finally:
        set_attributes(client, group, slow_start__duration_seconds="0")
        client.deregister_targets(TargetGroupArn=group, Targets=[settled.spec, newcomer.spec])
        settled.close()
        newcomer.close()
