"""Helpers shared by berth's end-to-end tests and benchmarks.

`BerthInstance` starts the real `target/release/berth up` binary with a fresh data directory and its own ports,
waits until it is ready, and gives the tests real clients: a boto3 ECS client, the pinned AWS CLI, raw SigV4-signed
requests and an HTTPS client that reaches the proxy with the endpoint's host name as SNI and Host, verified against
berth's own CA. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import configparser
import contextlib
import copy
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import boto3
import botocore.auth
import botocore.credentials
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
DEMO_IMAGE = os.environ.get("BERTH_DEMO_IMAGE", "berth-demo:latest")
REGION = "us-east-1"
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# The roles every service in the suites is created with: (name, trusted service, AWS managed policy).
EXPRESS_ROLES = [
    ("ecsTaskExecutionRole", "ecs-tasks.amazonaws.com", "AmazonECSTaskExecutionRolePolicy"),
    ("ecsInfrastructureRoleForExpressServices", "ecs.amazonaws.com", "AmazonECSInfrastructureRoleforExpressGatewayServices"),
]


def trust_policy(service: str) -> dict[str, Any]:
    """A role trust policy letting one AWS service principal assume the role (as in the AWS docs)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


class TimeoutError_(AssertionError):
    """A bounded wait ran out of time (an assertion failure, so pytest reports it as a test failure)."""


def wait_for(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Calls fn until it returns a truthy value or the deadline passes; exceptions count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise TimeoutError_(f"timed out after {timeout:.0f}s waiting for {what}; {detail}")
        time.sleep(interval)


def free_port_check(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"port {host}:{port} is already in use ({exc}); set BERTH_E2E_*_PORT") from exc


def port_free(host: str, port: int) -> bool:
    try:
        free_port_check(host, port)
        return True
    except RuntimeError:
        return False


def pick_free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def error_code(type_value: str | None) -> str:
    """'com.amazonaws.ecs#ServiceNotFoundException' or 'X:http://...' → 'ServiceNotFoundException'."""
    if not type_value:
        return ""
    return type_value.split(":")[0].split("#")[-1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------- docker helpers


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def containers(*labels: str, all_states: bool = False) -> list[dict[str, Any]]:
    """Docker containers matching every `key=value` (or `key`) label; each as `docker ps --format json` rows."""
    args = ["ps", "--no-trunc", "--format", "{{json .}}"]
    if all_states:
        args.append("-a")
    for label in labels:
        args += ["--filter", f"label={label}"]
    out = docker(*args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def container_labels(container_id: str) -> dict[str, str]:
    out = docker("inspect", "--format", "{{json .Config.Labels}}", container_id, check=False).stdout.strip()
    return json.loads(out) if out and out != "null" else {}


def managed_container_ids() -> set[str]:
    return {c["ID"] for c in containers("berth.managed=true", all_states=True)}


# ---------------------------------------------------------------------------------------------- the instance


@dataclass
class Ports:
    api: int
    https: int
    http: int
    internal: int

    @classmethod
    def from_env(cls, prefix: str = "BERTH_E2E", base: tuple[int, int, int, int] = (19443, 18443, 18080, 19444)):
        """Ports from `<prefix>_{API,HTTPS,HTTP,INTERNAL}_PORT`; otherwise the `base` ports when all four are free,
        else four free ports the kernel picks (other programs on this machine may hold the defaults)."""
        names = ("API", "HTTPS", "HTTP", "INTERNAL")
        ports = list(base)
        if not all(port_free("127.0.0.1", p) for p in base):
            ports = pick_free_ports(4)
        for i, name in enumerate(names):
            if f"{prefix}_{name}_PORT" in os.environ:
                ports[i] = int(os.environ[f"{prefix}_{name}_PORT"])
        return cls(api=ports[0], https=ports[1], http=ports[2], internal=ports[3])


@dataclass
class BerthInstance:
    binary: Path
    ports: Ports
    drain_timeout_secs: int = 5
    # Deployment bakes (`[deploy] canary_bake_secs / bake_secs`): 0 so suites that only update run at full
    # speed; deployment tests set their own.
    canary_bake_secs: int = 0
    bake_secs: int = 0
    # Short, so the 504 test does not wait a minute; no demo request comes near it.
    proxy_request_timeout_secs: int = 8
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="berth-e2e-")))
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    account_id: str = ""
    preexisting_containers: set[str] = field(default_factory=set)
    # The task endpoint's credentials and API ports (on 169.254.170.2), distinct per instance.
    task_ports: list[int] = field(default_factory=lambda: pick_free_ports(2))
    # The server's and the proxy's `/metrics` ports, distinct per instance (never the shared defaults).
    metrics_ports: list[int] = field(default_factory=lambda: pick_free_ports(2))
    # The web console's HTTPS port, distinct per instance.
    console_port: int = field(default_factory=lambda: pick_free_ports(1)[0])
    # More `[proxy]` settings, e.g. `address_pool = ["127.0.0.5"]`.
    extra_proxy_config: list[str] = field(default_factory=list)
    # More sections at the end of the config, e.g. `["[runtime]", 'dns_servers = ["192.0.2.53"]']`.
    extra_config: list[str] = field(default_factory=list)
    _log_file: Any = None
    _ecs: Any = None

    # ------------------------------------------------------------------ paths

    @property
    def log_path(self) -> Path:
        return self.data_dir / "berth.log"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "berth-e2e.toml"

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "ca.pem"

    @property
    def api_url(self) -> str:
        return f"https://localhost:{self.ports.api}"

    @property
    def console_url(self) -> str:
        return f"https://localhost:{self.console_port}"

    @property
    def metrics_url(self) -> str:
        """The server's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.metrics_ports[0]}/metrics"

    @property
    def proxy_metrics_url(self) -> str:
        """The proxy's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.metrics_ports[1]}/metrics"

    def pid_of(self, child: str) -> int:
        return int((self.data_dir / f"{child}.pid").read_text().strip())

    # ------------------------------------------------------------------ lifecycle

    def common_flags(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--config", str(self.config_path)]

    def start(self, ready_timeout: float = 90) -> None:
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} does not exist: build it with `cargo build --release -p berth`")
        for port in (self.ports.api, self.ports.internal, self.ports.https, self.ports.http):
            free_port_check("127.0.0.1", port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    "# written by tests/e2e/berthlib.py",
                    f'region = "{REGION}"',
                    'base_domain = "localhost"',
                    "[api]",
                    f'listen = "127.0.0.1:{self.ports.api}"',
                    "[internal]",
                    f'listen = "127.0.0.1:{self.ports.internal}"',
                    "[proxy]",
                    f'https_listen = "127.0.0.1:{self.ports.https}"',
                    f'http_listen = "127.0.0.1:{self.ports.http}"',
                    f"request_timeout_secs = {self.proxy_request_timeout_secs}",
                    f'metrics_listen = "127.0.0.1:{self.metrics_ports[1]}"',
                    *self.extra_proxy_config,
                    "[deploy]",
                    f"drain_timeout_secs = {self.drain_timeout_secs}",
                    f"canary_bake_secs = {self.canary_bake_secs}",
                    f"bake_secs = {self.bake_secs}",
                    "[metrics]",
                    f'listen = "127.0.0.1:{self.metrics_ports[0]}"',
                    "[console]",
                    f'listen = "127.0.0.1:{self.console_port}"',
                    "[task_endpoint]",
                    f"credentials_port = {self.task_ports[0]}",
                    f"api_port = {self.task_ports[1]}",
                    *self.extra_config,
                    "",
                ]
            )
        )
        self.preexisting_containers = managed_container_ids()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["BERTH_DATA_DIR"] = str(self.data_dir)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        self._log_file = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - closed in stop()
        cmd = [
            str(self.binary),
            "up",
            *self.common_flags(),
            "--api-listen",
            f"127.0.0.1:{self.ports.api}",
            "--https-listen",
            f"127.0.0.1:{self.ports.https}",
            "--http-listen",
            f"127.0.0.1:{self.ports.http}",
            "--internal-listen",
            f"127.0.0.1:{self.ports.internal}",
        ]
        self._log_file.write(f"### {shlex.join(cmd)}\n".encode())
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.data_dir,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"berth up exited with {self.proc.returncode} before it was ready")
            return (
                "berth is up" in self.log_text()
                and (self.data_dir / "credentials").exists()
                and self.ca_path.exists()
                and tcp_open("127.0.0.1", self.ports.api)
                and tcp_open("127.0.0.1", self.ports.https)
            )

        try:
            deadline = time.monotonic() + ready_timeout
            while not ready():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"berth up was not ready within {ready_timeout:.0f}s")
                time.sleep(0.1)
            self.env = self.berth_env()
            self.account_id = self.env.get("BERTH_ACCOUNT_ID", "")
            # The API answers a signed call (bounded: the store may still be opening).
            wait_for("the API to answer ListClusters", lambda: self.ecs().list_clusters() is not None, 30)
            self.ensure_express_roles()
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- berth log tail ---\n{self.log_tail()}") from exc

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM `berth up`, wait; SIGKILL its process group if it does not stop. Returns its exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    code = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
                    code = None
            else:
                code = self.proc.returncode
            # Children that outlived the supervisor (a bug, but do not leak them): they share its session.
            for child in ("server", "proxy"):
                with contextlib.suppress(Exception):
                    pid = self.pid_of(child)
                    if os.getsid(pid) == self.proc.pid:
                        os.kill(pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def remove_containers(self) -> list[str]:
        """Removes the berth-managed containers this instance created (not those that existed before it)."""
        removed = []
        for c in containers("berth.managed=true", all_states=True):
            if c["ID"] in self.preexisting_containers:
                continue
            service = container_labels(c["ID"]).get("berth.service", "")
            if self.account_id and service and f":{self.account_id}:" not in service:
                continue  # another berth instance's task that started while we ran
            docker("rm", "-f", c["ID"], check=False)
            removed.append(c["ID"])
        return removed

    def cleanup(self, keep_dir: bool = False) -> None:
        self.stop()
        self.remove_containers()
        if not keep_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------------ logs

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(ANSI.sub("", line) for line in self.log_text().splitlines()[-lines:])

    # ------------------------------------------------------------------ berth CLI

    def run_berth(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["BERTH_DATA_DIR"] = str(self.data_dir)
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )

    def berth_env(self) -> dict[str, str]:
        """Runs `berth env` and parses its `export K=V` lines."""
        out = self.run_berth("env", *self.common_flags())
        if out.returncode != 0:
            raise RuntimeError(f"berth env failed ({out.returncode}): {out.stderr}")
        return parse_exports(out.stdout)

    # ------------------------------------------------------------------ credentials and AWS clients

    def in_plain_text_at_rest(self, values: dict[str, str]) -> list[str]:
        """The names of `values` (name -> value) found in the database file or its WAL."""
        at_rest = [(self.data_dir / f).read_bytes() for f in ("berth.db", "berth.db-wal")
                   if (self.data_dir / f).exists()]
        return [name for name, value in values.items() if any(value.encode() in data for data in at_rest)]

    def credentials(self) -> tuple[str, str]:
        cp = configparser.ConfigParser()
        cp.read(self.data_dir / "credentials")
        return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]

    def ecs(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_attempts: int = 3,
        timeout: float = 30,
    ):
        default = access_key is None and secret_key is None and max_attempts == 3 and timeout == 30
        if default and self._ecs is not None:
            return self._ecs
        key, secret = self.credentials()
        session = boto3.session.Session(
            aws_access_key_id=access_key or key,
            aws_secret_access_key=secret_key or secret,
            region_name=REGION,
        )
        client = session.client(
            "ecs",
            endpoint_url=self.api_url,
            verify=str(self.ca_path),
            config=Config(
                retries={"mode": "standard", "max_attempts": max_attempts},
                connect_timeout=5,
                read_timeout=timeout,
            ),
        )
        if default:
            self._ecs = client
        return client

    def client(
        self,
        service: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        token: str | None = None,
        config: Config | None = None,
    ):
        """A boto3 client for any service berth serves (root credentials unless others are given; `config` replaces
        the default botocore Config)."""
        key, secret = self.credentials()
        session = boto3.session.Session(
            aws_access_key_id=access_key or key,
            aws_secret_access_key=secret_key or secret,
            aws_session_token=token,
            region_name=REGION,
        )
        return session.client(
            service,
            endpoint_url=self.api_url,
            verify=str(self.ca_path),
            config=config or Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

    def forced_protocol_client(self, service: str, protocol: str, model_dir: Path):
        """A boto3 client for `service` that speaks `protocol`, one of those its model lists (e.g. CloudWatch over
        `smithy-rpc-v2-cbor` or `query` where botocore picks `json`): botocore picks the first protocol of the model's
        `protocols` it supports, so the model is loaded from a copy under `model_dir` whose `protocols` lists only
        the one wanted (botocore's data loader searches extra paths before its own)."""
        loader = botocore.session.get_session().get_component("data_loader")
        model = copy.deepcopy(loader.load_service_model(service, "service-2"))
        model["metadata"]["protocols"] = [protocol]
        model["metadata"]["protocol"] = protocol
        version = model["metadata"]["apiVersion"]
        (model_dir / service / version).mkdir(parents=True, exist_ok=True)
        (model_dir / service / version / "service-2.json").write_text(json.dumps(model))
        # A fresh session: loaders cache the models they loaded.
        session = botocore.session.get_session()
        session.get_component("data_loader").search_paths.insert(0, str(model_dir))
        key, secret = self.credentials()
        client = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION, botocore_session=session
        ).client(
            service,
            endpoint_url=self.api_url,
            verify=str(self.ca_path),
            config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )
        assert client.meta.service_model.resolved_protocol == protocol
        return client

    def ensure_express_roles(self) -> None:
        """Creates the two roles of `role_arns()` as the AWS documentation's CLI flow does (trust policy for
        ecs-tasks.amazonaws.com / ecs.amazonaws.com, the managed policy attached), unless they exist."""
        iam = self.client("iam")
        for name, service, policy in EXPRESS_ROLES:
            try:
                iam.get_role(RoleName=name)
                continue
            except iam.exceptions.NoSuchEntityException:
                pass
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(service)))
            iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/service-role/{policy}")

    def berth_cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Runs a `berth` client command (deploy, ls, status, ...) against this instance, the way a user on this
        machine would: no AWS_* variables, the local data dir as the fallback endpoint and credentials. `env`
        adds or overrides variables (e.g. another user's AWS_ACCESS_KEY_ID). Returns the completed process
        (text stdout/stderr); never raises on a non-zero exit."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        full["BERTH_DATA_DIR"] = str(self.data_dir)
        full["BERTH_CONFIG"] = str(self.config_path)
        full["NO_COLOR"] = "1"
        full.update(env or {})
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def aws_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.env)
        env["AWS_CONFIG_FILE"] = os.devnull
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["AWS_PAGER"] = ""
        return env

    def aws(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """Runs the pinned AWS CLI with the environment from `berth env`; returns its parsed JSON output."""
        aws_bin = Path(os.environ.get("BERTH_AWS_CLI", Path(sys.executable).parent / "aws"))
        cmd = [str(aws_bin), *args, "--output", "json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.aws_env(), check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"`aws {shlex.join(args)}` exited {out.returncode}:\n{out.stderr}\n{out.stdout}")
        if not check:
            return out
        return json.loads(out.stdout) if out.stdout.strip() else {}

    def signed_request(
        self,
        operation: str,
        body: bytes | str,
        access_key: str | None = None,
        secret_key: str | None = None,
        when=None,
    ) -> Response:
        """POSTs a raw ECS JSON 1.1 request, SigV4-signed by botocore (optionally at a fixed time)."""
        if isinstance(body, str):
            body = body.encode()
        key, secret = self.credentials()
        request = AWSRequest(
            method="POST",
            url=self.api_url + "/",
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"{ECS_TARGET_PREFIX}.{operation}",
            },
        )
        signer = botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(access_key or key, secret_key or secret), "ecs", REGION
        )
        patch = (
            mock.patch("botocore.auth.get_current_datetime", return_value=when)
            if when is not None
            else contextlib.nullcontext()
        )
        with patch:
            signer.add_auth(request)
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        conn = http.client.HTTPSConnection("localhost", self.ports.api, context=ctx, timeout=30)
        try:
            conn.request("POST", "/", body=body, headers=dict(request.headers.items()))
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    # ------------------------------------------------------------------ the data plane

    def endpoint_url(self, endpoint: str) -> str:
        return f"https://{endpoint}" + ("" if self.ports.https == 443 else f":{self.ports.https}")

    def https_get(self, host: str, path: str = "/", timeout: float = 5, method: str = "GET") -> Response:
        """One request on a new TLS connection to the proxy: SNI and Host = `host`, verified against berth's CA."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        raw = socket.create_connection(("127.0.0.1", self.ports.https), timeout=timeout)
        try:
            tls = ctx.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        conn = http.client.HTTPSConnection(host, self.ports.https, timeout=timeout, context=ctx)
        conn.sock = tls
        try:
            host_header = host if self.ports.https == 443 else f"{host}:{self.ports.https}"
            conn.request(method, path, headers={"Host": host_header, "User-Agent": "berth-e2e"})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def http_get(self, host: str, path: str = "/", timeout: float = 5) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.ports.http, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host, "User-Agent": "berth-e2e"})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def wait_status(self, host: str, status: int, path: str = "/", timeout: float = 60) -> Response:
        def probe():
            r = self.https_get(host, path, timeout=3)
            return r if r.status == status else None

        return wait_for(f"https://{host}{path} to answer {status}", probe, timeout, interval=0.1)

    # ------------------------------------------------------------------ services

    def role_arns(self) -> dict[str, str]:
        return {
            "executionRoleArn": f"arn:aws:iam::{self.account_id}:role/ecsTaskExecutionRole",
            "infrastructureRoleArn": f"arn:aws:iam::{self.account_id}:role/ecsInfrastructureRoleForExpressServices",
        }

    def create_service(self, name: str, image: str = DEMO_IMAGE, environment: dict[str, str] | None = None, **kw):
        container: dict[str, Any] = {"image": image}
        if environment:
            container["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
        resp = self.ecs().create_express_gateway_service(
            serviceName=name, primaryContainer=container, **self.role_arns(), **kw
        )
        return resp["service"]

    def describe_service(self, arn: str) -> dict[str, Any]:
        return self.ecs().describe_express_gateway_service(serviceArn=arn)["service"]

    def wait_endpoint(self, arn: str, timeout: float = 60) -> str:
        """Waits until the service is ACTIVE with an endpoint; returns the endpoint host."""

        def probe():
            svc = self.describe_service(arn)
            if svc["status"]["statusCode"] != "ACTIVE":
                return None
            return service_endpoint(svc)

        return wait_for(f"{arn} to be ACTIVE with an endpoint", probe, timeout)

    def delete_service(self, arn: str, wait: bool = True, timeout: float = 90) -> dict[str, Any]:
        resp = self.ecs().delete_express_gateway_service(serviceArn=arn)["service"]
        if wait:
            self.wait_inactive(arn, timeout)
        return resp

    def wait_inactive(self, arn: str, timeout: float = 90) -> None:
        wait_for(
            f"{arn} to be INACTIVE",
            lambda: self.describe_service(arn)["status"]["statusCode"] == "INACTIVE",
            timeout,
            interval=0.5,
        )

    def best_effort_delete(self, arn: str) -> None:
        with contextlib.suppress(Exception):
            if self.describe_service(arn)["status"]["statusCode"] == "ACTIVE":
                self.ecs(max_attempts=1).delete_express_gateway_service(serviceArn=arn)

    def task_arns(self, service_name: str, desired: str = "RUNNING", cluster: str = "default") -> list[str]:
        arns: list[str] = []
        token = None
        while True:
            kw: dict[str, Any] = {"cluster": cluster, "serviceName": service_name, "desiredStatus": desired}
            if token:
                kw["nextToken"] = token
            page = self.ecs().list_tasks(**kw)
            arns += page.get("taskArns", [])
            token = page.get("nextToken")
            if not token:
                return arns

    def describe_tasks(self, arns: list[str], cluster: str = "default") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(arns), 100):
            out += self.ecs().describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"]
        return out


def service_endpoint(svc: dict[str, Any]) -> str | None:
    for config in svc.get("activeConfigurations") or []:
        for path in config.get("ingressPaths") or []:
            if path.get("endpoint"):
                return strip_scheme(path["endpoint"])
    return None


def strip_scheme(endpoint: str) -> str:
    """The endpoint is a host name; tolerate a URL form (https://host[:port]/) by taking its host."""
    m = re.match(r"^(?:https?://)?([^/:]+)", endpoint)
    return m.group(1) if m else endpoint


def parse_exports(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = shlex.split(line)
        if parts and parts[0] == "export":
            parts = parts[1:]
        for part in parts:
            if "=" in part:
                k, v = part.split("=", 1)
                env[k] = v
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def terminate(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM a child and wait for it (bounded); SIGKILL it if it does not stop."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def serving_service(berth: BerthInstance, prefix: str):
    """An Express service of the demo image answering /ping, deleted afterwards: {"name", "arn", "endpoint"}."""
    name = unique(prefix)
    arn = berth.create_service(name)["serviceArn"]
    try:
        endpoint = berth.wait_endpoint(arn)
        berth.wait_status(endpoint, 200, "/ping", timeout=60)
        yield {"name": name, "arn": arn, "endpoint": endpoint}
    finally:
        berth.best_effort_delete(arn)


class RequestLoop:
    """Sends GETs through the proxy in a background thread until stopped; records every outcome. A `{n}` in the
    path is replaced by the request's number (0, 1, ...)."""

    def __init__(self, berth: BerthInstance, host: str, path: str = "/", pause: float = 0.02, max_seconds: float = 300):
        self.berth, self.host, self.path, self.pause, self.max_seconds = berth, host, path, pause, max_seconds
        self.results: list[tuple[float, int, str | None, str | None]] = []  # (t, status, version, error)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds  # bounded even if the test forgets to stop it
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                path = self.path.replace("{n}", str(len(self.results)))
                r = self.berth.https_get(self.host, path, timeout=5)
                self.results.append((t, r.status, r.header("x-demo-version"), None))
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                self.results.append((t, 0, None, repr(exc)))
            time.sleep(self.pause)

    def failures(self) -> list[tuple[float, int, str | None, str | None]]:
        return [r for r in self.results if r[1] != 200]

    def versions(self) -> list[str | None]:
        return [r[2] for r in self.results if r[1] == 200]

    def trailing_versions(self, n: int) -> list[str | None]:
        return [r[2] for r in self.results[-n:]]


def restarted(berth: BerthInstance, child: str, old_pid: int) -> int | None:
    """The pid of `berth up`'s `child` ("server" or "proxy") once the supervisor restarted it (a live process with
    another pid than `old_pid`), else None: a probe for `wait_for`."""
    try:
        pid = berth.pid_of(child)
    except (OSError, ValueError):
        return None
    return pid if pid != old_pid and process_alive(pid) else None
