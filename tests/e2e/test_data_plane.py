"""The proxy's answers to misbehaving targets and its client protocols, end to end through the real proxy.

Targets here are small Python servers on loopback, registered as IP targets (RegisterTargets) in an Express
service's idle target group, which a user rule forwards a host under the listener's wildcard certificate to. So
every request below goes client → berth proxy (TLS, routing, health checks, draining) → a target whose behaviour
the test controls: 502 when it resets or sends garbage, 503 with no registered target (a group of unhealthy
targets fails open), 504 when it does not answer in time, WebSocket echo, HTTP/2 clients, and deregistration under
load without a failed request."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time

import pytest

from berthlib import REGION, RequestLoop, unique, wait_for
from elblib import elbv2, forward, free_priority, get, service_resources, wait_version

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _Handler(socketserver.BaseRequestHandler):
    """HTTP/1.1 with keep-alive; the path picks the behaviour."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(30)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            if not self.server.owner.answer(sock, path, headers):  # type: ignore[attr-defined]
                return


class Target:
    """A loopback HTTP target whose health and behaviour the test sets."""

    def __init__(self, name: str, healthy: bool = True, slow_secs: float = 0) -> None:
        self.name, self.healthy, self.slow_secs = name, healthy, slow_secs
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.allow_reuse_address = True
        self.server.server_bind()
        self.server.server_activate()
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.hits = 0
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def spec(self) -> dict:
        return {"Id": "127.0.0.1", "Port": self.port}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, sock: socket.socket, status: str, body: bytes, extra: str = "") -> bool:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
            f"X-Demo-Version: {self.name}\r\n{extra}\r\n"
        )
        sock.sendall(head.encode() + body)
        return True

    def answer(self, sock: socket.socket, path: str, headers: dict[str, str]) -> bool:
        if path.startswith("/ping"):
            return self._reply(sock, "200 OK" if self.healthy else "500 Internal Server Error", b"ping")
        self.hits += 1
        if path == "/reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return False
        if path == "/garbage":
            sock.sendall(b"this is not HTTP at all\r\n\r\n")
            return False
        if path == "/slow":
            time.sleep(self.slow_secs)
            return self._reply(sock, "200 OK", b"late")
        if path == "/ws":
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest())
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            opcode, payload = read_frame(sock)
            sock.sendall(frame(opcode, payload, mask=False))
            return False
        return self._reply(sock, "200 OK", f"hello from {self.name}".encode())


def frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    assert len(payload) < 126
    head = bytes([0x80 | opcode, (0x80 if mask else 0) | len(payload)])
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_exact(sock, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed mid-frame")
        out += chunk
    return out


def read_frame(sock) -> tuple[int, bytes]:
    b0, b1 = read_exact(sock, 2)
    length = b1 & 0x7F
    assert length < 126, "test frames are short"
    key = read_exact(sock, 4) if b1 & 0x80 else None
    payload = read_exact(sock, length)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


@pytest.fixture(scope="module")
def routed(berth):
    """An Express service and a user rule sending `host` to the service's idle target group (no tasks in it)."""
    arn = berth.create_service(unique("dplane"), environment={"DEMO_VERSION": "D"})["serviceArn"]
    try:
        endpoint = berth.wait_endpoint(arn)
        wait_version(berth, endpoint, "D")
        client = elbv2(berth)
        res = service_resources(client, endpoint)
        host = f"{unique('dp')}.ecs.{REGION}.localhost"  # under the listener's default wildcard certificate
        rule = client.create_rule(
            ListenerArn=res["listener"],
            Priority=free_priority(client, res["listener"], 700),
            Conditions=[{"Field": "host-header", "Values": [host]}],
            Actions=forward((res["idle"], 1)),
        )["Rules"][0]
        yield {"client": client, "group": res["idle"], "host": host, "endpoint": endpoint, "rule": rule}
    finally:
        berth.best_effort_delete(arn)


def target_health(client, group: str) -> dict[int, dict]:
    descs = client.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return {d["Target"]["Port"]: d["TargetHealth"] for d in descs}


def health_states(client, group: str) -> dict[int, str]:
    return {port: h["State"] for port, h in target_health(client, group).items()}


class registered:
    """Registers targets for the length of a `with` block and waits until each one's health is `state` (and,
    when given, its reason `reason`)."""

    def __init__(self, routed, *targets: Target, state: str = "healthy", reason: str | None = None) -> None:
        self.client, self.group, self.targets = routed["client"], routed["group"], targets
        self.state, self.reason = state, reason

    def _ready(self) -> bool:
        health = target_health(self.client, self.group)
        return all(
            (h := health.get(t.port)) is not None
            and h["State"] == self.state
            and (self.reason is None or h.get("Reason") == self.reason)
            for t in self.targets
        )

    def __enter__(self):
        self.client.register_targets(TargetGroupArn=self.group, Targets=[t.spec for t in self.targets])
        ports = sorted(t.port for t in self.targets)
        wait_for(f"targets {ports} to be {self.state} ({self.reason})", self._ready, 30, interval=0.1)
        return self

    def __exit__(self, *exc) -> None:
        present = target_health(self.client, self.group)
        still = [t.spec for t in self.targets if t.port in present]  # the test may have deregistered some
        if still:
            self.client.deregister_targets(TargetGroupArn=self.group, Targets=still)
        for t in self.targets:
            t.close()


def test_a_reset_or_garbage_from_the_target_is_502_and_the_proxy_keeps_serving(berth, routed):
    t = Target("T1")
    with registered(routed, t):
        assert get(berth, routed["host"], "/").status == 200
        assert get(berth, routed["host"], "/reset").status == 502
        assert get(berth, routed["host"], "/garbage").status == 502
        ok = get(berth, routed["host"], "/")
        assert (ok.status, ok.header("x-demo-version")) == (200, "T1")


def test_no_registered_target_is_503_and_an_unhealthy_group_fails_open(berth, routed):
    client, group = routed["client"], routed["group"]
    # The group has no registered target: nothing to fail open to, 503.
    statuses = [get(berth, routed["host"], "/").status for _ in range(3)]
    assert statuses == [503] * 3, statuses
    before = client.describe_target_groups(TargetGroupArns=[group])["TargetGroups"][0]
    # ALB calls a target that fails from the start unhealthy after unhealthy-threshold × interval: 2 × 5 s here.
    client.modify_target_group(
        TargetGroupArn=group,
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
    )
    sick = Target("S", healthy=False)
    try:
        with registered(routed, sick, state="unhealthy", reason="Target.ResponseCodeMismatch"):
            # Every registered target is unhealthy: ALB fails open and routes to all of them.
            r = get(berth, routed["host"], "/")
            assert (r.status, r.header("x-demo-version"), sick.hits) == (200, "S", 1), r
            # Beside a healthy target, the unhealthy one gets nothing.
            well = Target("W")
            with registered(routed, well):
                seen = [get(berth, routed["host"], "/").header("x-demo-version") for _ in range(10)]
                assert seen == ["W"] * 10, seen
                assert sick.hits == 1, "an unhealthy target beside a healthy one gets no request"
            sick.healthy = True  # the target recovers: two passing checks 5 s apart bring it back
            wait_for("the recovered target to be healthy", lambda: health_states(client, group) == {sick.port: "healthy"}, 30, 0.2)
            r = get(berth, routed["host"], "/")
            assert (r.status, r.header("x-demo-version")) == (200, "S"), r
    finally:
        client.modify_target_group(
            TargetGroupArn=group,
            HealthCheckIntervalSeconds=before["HealthCheckIntervalSeconds"],
            HealthCheckTimeoutSeconds=before["HealthCheckTimeoutSeconds"],
            HealthyThresholdCount=before["HealthyThresholdCount"],
            UnhealthyThresholdCount=before["UnhealthyThresholdCount"],
        )


def test_a_target_that_does_not_answer_in_time_is_504(berth, routed):
    slow = Target("SLOW", slow_secs=berth.proxy_request_timeout_secs + 4)
    with registered(routed, slow):
        started = time.monotonic()
        r = get(berth, routed["host"], "/slow", timeout=berth.proxy_request_timeout_secs + 10)
        assert r.status == 504, r
        assert time.monotonic() - started < slow.slow_secs, "the proxy gave up before the target answered"


def test_websocket_echo_through_the_proxy(berth, routed):
    t = Target("WS")
    with registered(routed, t):
        ctx = ssl.create_default_context(cafile=str(berth.ca_path))
        raw = socket.create_connection(("127.0.0.1", berth.ports.https), timeout=10)
        with ctx.wrap_socket(raw, server_hostname=routed["host"]) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(
                (
                    f"GET /ws HTTP/1.1\r\nHost: {routed['host']}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(1)
                assert chunk, "closed during the handshake"
                head += chunk
            assert head.startswith(b"HTTP/1.1 101"), head
            expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            fields = dict(ln.split(": ", 1) for ln in head.decode().split("\r\n")[1:] if ": " in ln)
            assert {k.lower(): v for k, v in fields.items()}.get("sec-websocket-accept") == expected, head
            s.sendall(frame(0x1, b"hello through berth", mask=True))
            assert read_frame(s) == (0x1, b"hello through berth")


def test_an_http2_client_is_served_over_alpn(berth, routed):
    endpoint = routed["endpoint"]
    out = subprocess.run(
        [
            "curl", "-sS", "--http2", "--cacert", str(berth.ca_path), "--max-time", "10",
            "--resolve", f"{endpoint}:{berth.ports.https}:127.0.0.1",
            "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
            f"https://{endpoint}:{berth.ports.https}/",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.stdout == "2 200", (out.stdout, out.stderr)


def test_deregistration_drains_under_load_without_a_failed_request(berth, routed):
    a, b = Target("A"), Target("B")
    client, group = routed["client"], routed["group"]
    with registered(routed, b):
        with registered(routed, a):
            with RequestLoop(berth, routed["host"], pause=0.005, max_seconds=120) as loop:
                wait_for("both targets to serve", lambda: {"A", "B"} <= set(loop.versions()), 20, 0.1)
                client.deregister_targets(TargetGroupArn=group, Targets=[a.spec])
                wait_for("A to leave the group", lambda: a.port not in health_states(client, group), 30, 0.1)
                served = len(loop.results)
                wait_for("requests after A left", lambda: len(loop.results) >= served + 50, 30, 0.1)
            assert loop.failures() == [], loop.failures()[:5]
            assert loop.trailing_versions(30) == ["B"] * 30
