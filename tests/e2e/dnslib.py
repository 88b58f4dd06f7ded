"""DNS for the egress tests: an upstream resolver beyond the host (a tiny DNS responder in its own network
namespace, reached through a veth pair, i.e. forwarded by the host as a real upstream resolver is), and a DNS
query made from inside a container's network namespace to Docker's embedded resolver (127.0.0.11), exactly
as the container's C library would send it."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

from berthlib import docker

# The responder: answers `A <ip>` for every name under `suffix`, NXDOMAIN otherwise; UDP and TCP on port 53.
RESPONDER = textwrap.dedent('''
    import socket, struct, sys, threading
    host, suffix, ip = sys.argv[1], sys.argv[2], sys.argv[3]

    def answer(q):
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace")); i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        ok = ".".join(labels).lower().endswith(suffix) and qtype == 1
        out = q[:2] + struct.pack(">HHHHH", 0x8180 | (0 if ok else 3), 1, int(ok), 0, 0) + q[12:i + 5]
        return out + (b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(ip) if ok else b"")

    def tcp():
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, 53)); s.listen(16)
        while True:
            c, _ = s.accept()
            try:
                n = struct.unpack(">H", c.recv(2))[0]; a = answer(c.recv(n)); c.sendall(struct.pack(">H", len(a)) + a)
            except Exception:
                pass
            c.close()

    threading.Thread(target=tcp, daemon=True).start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((host, 53))
    print("ready", flush=True)
    while True:
        q, peer = u.recvfrom(4096)
        try:
            u.sendto(answer(q), peer)
        except Exception:
            pass
''')


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def upstream_resolver(suffix: str, answer: str) -> Iterator[str]:
    """A DNS server answering `answer` for names under `suffix`, in a network namespace behind a veth pair;
    yields its address. Removed on exit."""
    tag = os.getpid() % 100000
    ns, host_if, ns_if = f"berth-e2e-dns-{tag}", f"bdns{tag}h", f"bdns{tag}n"
    net = f"10.254.{tag % 200 + 20}"
    host_ip, server_ip = f"{net}.1", f"{net}.2"
    proc = None
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _run("ip", "link", "set", ns_if, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{server_ip}/30", "dev", ns_if)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        _run("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", host_ip)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", RESPONDER, server_ip, suffix, answer],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "the DNS responder did not start"
        assert query(None, f"check.{suffix.lstrip('.')}", server=server_ip) == answer, "the responder answers"
        yield server_ip
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


QUERY = textwrap.dedent('''
    import socket, struct, sys
    name, server = sys.argv[1], sys.argv[2]
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(4)
    s.sendto(q, (server, 53))
    try:
        r = s.recv(512)
    except OSError:
        print("timeout"); sys.exit(0)
    ok = (r[3] & 15) == 0 and struct.unpack(">H", r[6:8])[0] > 0
    print(socket.inet_ntoa(r[-4:]) if ok else f"rcode {r[3] & 15}")
''')


def query(container_id: str | None, name: str, server: str = "127.0.0.11") -> str | None:
    """The A record `server` answers for `name` (None on a timeout or an error), asked from inside the network
    namespace of `container_id` (Docker's embedded resolver listens on 127.0.0.11 there), or from the host."""
    cmd = [sys.executable, "-c", QUERY, name, server]
    if container_id is not None:
        pid = docker("inspect", container_id, "--format", "{{.State.Pid}}").stdout.strip()
        cmd = ["nsenter", "-t", pid, "-n", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    answer = out.stdout.strip()
    try:
        socket.inet_aton(answer)
    except OSError:
        return None
    return answer


def wait_resolution(container_id: str, name: str, want: str | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = query(container_id, name)
        if got == want or time.monotonic() > deadline:
            assert got == want, f"{name} resolved to {got}, wanted {want}"
            return
        time.sleep(0.2)
