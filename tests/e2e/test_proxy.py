"""The data plane under load: the proxy is replaced (SIGHUP to `berth up`, the binary-upgrade path) while
clients keep sending requests, over new connections and over keep-alive ones, and none fails; a slowloris
client is cut off while others are served."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import threading
import time

import pytest

from berthlib import RequestLoop, process_alive, serving_service, wait_for


@pytest.fixture(scope="module")
def running_service(berth):
    with serving_service(berth, "steady") as service:
        yield service


class KeepAliveLoop:
    """GETs over one reused HTTPS connection per thread; http.client reconnects by itself after a response
    that says `Connection: close`, so only a connection dropped under a request counts as a failure."""

    def __init__(self, berth, host: str, path: str, threads: int = 4, max_seconds: float = 300):
        self.berth, self.host, self.path, self.max_seconds = berth, host, path, max_seconds
        self.ok = 0
        self.closes = 0  # responses that told the client to reconnect (the old proxy draining)
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> KeepAliveLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.berth.ca_path))
        port = self.berth.ports.https
        host_header = self.host if port == 443 else f"{self.host}:{port}"
        conn = None
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(self.host, port, timeout=5, context=ctx)
                    conn.sock = ctx.wrap_socket(
                        socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname=self.host
                    )
                conn.request("GET", self.path, headers={"Host": host_header, "User-Agent": "berth-e2e-keepalive"})
                resp = conn.getresponse()
                resp.read()
                with self._lock:
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"status {resp.status}")
                    if (resp.getheader("connection") or "").lower() == "close":
                        self.closes += 1
                if resp.will_close:
                    conn.close()
                    conn = None
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                with self._lock:
                    self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()


def test_proxy_replacement_under_load_fails_no_request(berth, running_service):
    endpoint = running_service["endpoint"]
    old_pid = berth.pid_of("proxy")
    assert process_alive(old_pid)
    up_pid = berth.proc.pid
    with RequestLoop(berth, endpoint, "/ping", pause=0.005) as fresh, KeepAliveLoop(berth, endpoint, "/ping") as kept:
        wait_for("both loops to get going", lambda: len(fresh.results) >= 10 and kept.ok >= 40, 20, 0.1)
        os.kill(up_pid, signal.SIGHUP)
        replaced_at = time.monotonic()

        def new_proxy():
            try:
                pid = berth.pid_of("proxy")
            except (OSError, ValueError):
                return None
            return pid if pid != old_pid and process_alive(pid) else None

        new_pid = wait_for("a new proxy to start", new_proxy, 30, 0.05)
        wait_for("the old proxy to drain and exit", lambda: not process_alive(old_pid), 40, 0.1)
        served_after = kept.ok
        wait_for("the new proxy to serve the keep-alive clients", lambda: kept.ok >= served_after + 40, 20, 0.1)
        during = [r for r in fresh.results if r[0] >= replaced_at]
    assert len(during) >= 10, f"only {len(during)} new-connection requests during the replacement"
    failures = fresh.failures()
    assert not failures, f"{len(failures)} of {len(fresh.results)} new-connection requests failed: {failures[:5]}"
    assert not kept.failures, f"{len(kept.failures)} keep-alive requests failed (of {kept.ok}): {kept.failures[:5]}"
    assert kept.closes >= 1, "the old proxy never asked a keep-alive client to reconnect"
    assert process_alive(new_pid)
    assert berth.https_get(endpoint, "/ping").status == 200


def test_slowloris_is_cut_off_while_others_are_served(berth, running_service):
    endpoint = running_service["endpoint"]
    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    slow = ctx.wrap_socket(socket.create_connection(("127.0.0.1", berth.ports.https), timeout=5),
                           server_hostname=endpoint)
    slow.sendall(f"GET /ping HTTP/1.1\r\nHost: {endpoint}\r\n".encode())
    closed = threading.Event()

    def dribble():
        # One header byte per second, never finishing the head (bounded: 60 s).
        for i in range(60):
            try:
                slow.sendall(b"X" if i else b"X-Slow: ")
                slow.settimeout(1)
                if slow.recv(1024) == b"":
                    closed.set()
                    return
            except socket.timeout:
                continue
            except OSError:
                closed.set()
                return

    t = threading.Thread(target=dribble, daemon=True)
    t.start()
    served = 0
    while not closed.is_set() and t.is_alive():
        assert berth.https_get(endpoint, "/ping").status == 200
        served += 1
        time.sleep(0.2)
    t.join(timeout=5)
    slow.close()
    assert closed.is_set(), "the slow client was never cut off"
    assert served >= 5, f"only {served} other requests were served meanwhile"

