"""A bounded request loop through berth's HTTPS proxy, for tests that measure what clients see while a service
changes under them (deployments, rollbacks, restarts).

`Traffic(berth, host)` runs several client workers in background threads. Most keep one TLS connection alive
across requests (as a browser or an SDK does); some open a fresh connection for every request (as a CLI does).
Each worker connects to the proxy's HTTPS port with SNI and Host = `host`, verified against berth's CA (the host
name too, unless `check_hostname=False`: a user's custom domain is served with the listener's default
certificate). Every request is recorded as a `Sample`: when it was sent, its status (0 for a connection error or
a timeout), the `x-demo-version` header, the error. `window(t0, t1)` summarises a time window: how many requests,
which failed, and the share answered by each version. The loop is bounded (`max_seconds`) even if a test forgets
to stop it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic() when the request was sent
    status: int  # HTTP status; 0 when the request got no answer (connection error, timeout)
    version: str | None  # the answer's x-demo-version header
    error: str | None  # repr of the exception when status is 0
    worker: int
    elapsed: float  # seconds until the answer (or the error)

    @property
    def failed(self) -> bool:
        return self.status != 200


@dataclass
class Window:
    """The samples sent in [t0, t1)."""

    t0: float
    t1: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.failed]

    @property
    def versions(self) -> Counter:
        """Answers per x-demo-version (every answer carries the header, failed ones too; None when absent)."""
        return Counter(s.version for s in self.samples if s.status != 0)

    @property
    def answered(self) -> int:
        return sum(1 for s in self.samples if s.status != 0)

    def share(self, version: str) -> float:
        """Share of the answered requests that `version` answered, in percent (0 when nothing answered)."""
        answered = self.answered
        return 100.0 * self.versions[version] / answered if answered else 0.0

    def describe(self) -> str:
        statuses = Counter(s.status for s in self.samples)
        return (
            f"[{self.t0:.1f}, {self.t1:.1f}) {self.n} requests, statuses {dict(statuses)}, "
            f"versions {dict(self.versions)}"
        )


class _ProxyConnection(http.client.HTTPSConnection):
    """An HTTPS connection to the proxy on 127.0.0.1 with SNI = the virtual host (which need not resolve)."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class Traffic:
    """Sends GETs to `https://host/path` through berth's proxy from `workers` threads until stopped.

    `fresh` of the workers open a new connection per request; the others keep theirs alive (and reconnect after an
    error or a `Connection: close`). Each worker pauses `pause` seconds between requests, which bounds the rate."""

    def __init__(
        self,
        berth: Any,
        host: str,
        path: str = "/",
        workers: int = 4,
        fresh: int = 1,
        pause: float = 0.02,
        timeout: float = 5.0,
        check_hostname: bool = True,
        max_seconds: float = 300.0,
    ):
        self.berth, self.host, self.path = berth, host, path
        self.workers, self.fresh, self.pause, self.timeout = workers, fresh, pause, timeout
        self.max_seconds = max_seconds
        self.context = ssl.create_default_context(cafile=str(berth.ca_path))
        self.context.check_hostname = check_hostname
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # ------------------------------------------------------------------ running

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.monotonic()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()

    def _connection(self) -> _ProxyConnection:
        return _ProxyConnection(self.host, self.berth.ports.https, self.context, self.timeout)

    def _run(self, worker: int) -> None:
        keep_alive = worker >= self.fresh
        deadline = time.monotonic() + self.max_seconds  # bounded even if the test never stops it
        host_header = self.host if self.berth.ports.https == 443 else f"{self.host}:{self.berth.ports.https}"
        headers = {"Host": host_header, "User-Agent": "berth-e2e-traffic"}
        conn: _ProxyConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                conn = self._connection()
            t = time.monotonic()
            try:
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                sample = Sample(t, resp.status, resp.getheader("x-demo-version"), None, worker, time.monotonic() - t)
                if not keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except Exception as exc:  # noqa: BLE001 - every failure is a sample
                sample = Sample(t, 0, None, repr(exc), worker, time.monotonic() - t)
                conn.close()
                conn = None
            with self._lock:
                self._samples.append(sample)
            self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ reading

    @staticmethod
    def now() -> float:
        """The clock samples are stamped with."""
        return time.monotonic()

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return sorted(self._samples, key=lambda s: s.t)

    def window(self, t0: float | None = None, t1: float | None = None) -> Window:
        """The samples sent in [t0, t1) (from the start, to now, when not given)."""
        lo = float("-inf") if t0 is None else t0
        hi = float("inf") if t1 is None else t1
        return Window(
            lo if t0 is not None else (self.started_at or 0.0),
            hi if t1 is not None else time.monotonic(),
            [s for s in self.samples if lo <= s.t < hi],
        )

    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.failed]

    def count_since(self, t0: float) -> int:
        with self._lock:
            return sum(1 for s in self._samples if s.t >= t0)

    def wait_requests(self, n: int, since: float | None = None, timeout: float = 30.0) -> None:
        """Blocks until `n` requests were sent since `since` (default: now), at most `timeout` seconds; it only
        paces the test (assertions count the window's samples themselves)."""
        t0 = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        while self.count_since(t0) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def timeline(self, t0: float | None = None, step: float = 5.0) -> str:
        """Per-`step` windows since `t0` (default: the start), one line each, for failure messages."""
        start = self.started_at if t0 is None else t0
        end = self.stopped_at or time.monotonic()
        lines = []
        t = start or 0.0
        while t < end:
            w = self.window(t, t + step)
            fails = Counter((s.status, s.version) for s in w.failures)
            lines.append(
                f"  +{t - (start or 0.0):6.1f}s n={w.n:4d} versions={dict(w.versions)} failures={dict(fails)}"
            )
            t += step
        return "\n".join(lines)
