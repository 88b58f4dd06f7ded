"""The live progress display of `berth deploy`, seen through a real pseudo-terminal: the deploy runs inside tmux
(scripts/ensure-tools.sh installs it) and `tmux capture-pane` reads the screen while it runs. On a terminal the
display is redrawn in place (one header, one line per step and resource, a spinner), ends with the URL, and Ctrl-C
stops watching only (exit 130, the deployment keeps going); without a terminal the same deploy prints timestamped
lines. A berth of its own with a 6-second canary bake, so the canary step is on screen long enough to read."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from berthlib import BerthInstance, Ports, unique, wait_for

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\] ")


@pytest.fixture(scope="module")
def slow_berth(demo_image, artifacts):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: run scripts/ensure-tools.sh", pytrace=False)
    binary = Path(os.environ.get("BERTH_BINARY", Path(__file__).resolve().parents[2] / "target" / "release" / "berth"))
    instance = BerthInstance(
        binary=binary, ports=Ports.from_env(prefix="BERTH_UI_PROGRESS", base=(29543, 28543, 28180, 29544)),
        canary_bake_secs=6, bake_secs=2,
    )
    try:
        instance.start()
        yield instance
    finally:
        try:
            shutil.copyfile(instance.log_path, artifacts / "berth-progress.log")
        except OSError:
            pass
        instance.cleanup()


class Tmux:
    """One tmux server on its own socket, running one command in a 110x60 window."""

    def __init__(self, socket: str):
        self.socket = socket

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, f"tmux {args}: {out.stderr}"
        return out.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "main", "-x", "110", "-y", "60", command)

    def pane(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "main")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def berth_command(berth: BerthInstance, *args: str) -> str:
    """A shell command running `berth ARGS` as a local user (no AWS_* variables), then printing its exit code and
    waiting, so the pane stays readable after it ends."""
    unset = " ".join(f"-u {k}" for k in os.environ if k.startswith("AWS_"))
    env = f"env {unset} BERTH_DATA_DIR={shlex.quote(str(berth.data_dir))} BERTH_CONFIG={shlex.quote(str(berth.config_path))} TERM=xterm-256color"
    return f"{env} {shlex.quote(str(berth.binary))} {shlex.join(args)}; echo EXIT=$?; sleep 120"


@pytest.fixture
def tmux():
    t = Tmux(f"berth-ui-{os.getpid()}-{time.monotonic_ns()}")
    yield t
    t.kill()


def watch_pane(tmux: Tmux, until, timeout: float) -> list[str]:
    """Captures the pane every 0.3 s until `until(pane)`; returns every capture (bounded by `timeout`)."""
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pane = tmux.pane()
        frames.append(pane)
        if until(pane):
            return frames
        time.sleep(0.3)
    raise AssertionError(f"the pane did not reach the expected state in {timeout}s; last:\n{frames[-1] if frames else ''}")


def create(berth: BerthInstance, name: str) -> str:
    run = berth.berth_cli("deploy", "berth-demo:latest", "--name", name, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_the_live_display_redraws_in_place_and_ends_with_the_url(slow_berth, tmux, artifacts):
    name = unique("live")
    url = create(slow_berth, name)
    tmux.start(berth_command(slow_berth, "deploy", "berth-demo:latest", "--name", name, "--env", "V=2"))
    frames = watch_pane(tmux, lambda p: "EXIT=" in p, timeout=120)
    (artifacts / "progress-frames.txt").write_text("\n=====\n".join(frames))
    running = [f for f in frames if "EXIT=" not in f and "Updating" in f]
    assert len(running) >= 5, "too few captures while it ran"
    for f in frames:
        # Redrawn in place: one header and one line per step on screen at any time, never a scrolling log.
        assert len(re.findall(r"Updating " + re.escape(name), f)) <= 1, f
        assert len(re.findall(r"^\s+\S\s+Deployment\s", f, re.M)) <= 1, f
        assert len(re.findall(r"^\s+\S\s+Traffic\s", f, re.M)) <= 1, f
    # The spinner turns and the canary step shows while it runs.
    heads = [l for f in running for l in f.splitlines() if "Updating " + name in l]
    assert {h[0] for h in heads} & set(SPINNER), heads[:3]
    assert len({h[0] for h in heads}) >= 2, "the spinner never moved"
    assert any(re.search(r"Traffic\s+5% to revision \d+ \(canary\)", f) for f in running), running[-1]
    # The canary's bake counts down on screen (never in the plain lines: it would print every second).
    assert any(re.search(r"\(canary\) · bake \ds left", f) for f in running), running[-1]
    assert any(re.search(r"Deployment\s+IN_PROGRESS · \w+", f) for f in running)
    assert any(re.search(r"LoadBalancer\s+loadbalancer/app/\S+ ACTIVE", f) for f in running)
    final = frames[-1]
    lines = [l for l in final.splitlines() if l.strip()]
    assert lines[-1] == "EXIT=0", final
    assert lines[-2] == url, final
    assert re.search(r"✓ Updating " + re.escape(name) + r" .*done in", final), final
    assert re.search(r"✓ Traffic\s+100% to revision", final), final
    assert re.search(r"✓ Healthy\s+1/1 healthy", final), final


def test_ctrl_c_stops_watching_and_the_deployment_keeps_going(slow_berth, tmux):
    name = unique("ctrlc")
    create(slow_berth, name)
    tmux.start(berth_command(slow_berth, "deploy", "berth-demo:latest", "--name", name, "--env", "V=3"))
    watch_pane(tmux, lambda p: "(canary)" in p, timeout=60)
    tmux.tmux("send-keys", "-t", "main", "C-c")
    frames = watch_pane(tmux, lambda p: "EXIT=" in p, timeout=20)
    final = frames[-1]
    assert "EXIT=130" in final, final
    assert f"berth status {name}" in final and "keeps running" in final, final
    # The deployment was left running and finishes on its own.
    arn = f"arn:aws:ecs:us-east-1:{slow_berth.account_id}:service/default/{name}"
    ecs = slow_berth.ecs()

    def finished():
        deps = ecs.list_service_deployments(cluster="default", service=arn)["serviceDeployments"]
        return deps[0]["status"] if deps and deps[0]["status"] in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL") else None

    assert wait_for("the deployment to finish", finished, timeout=60, interval=0.5) == "SUCCESSFUL"


def test_without_a_terminal_the_same_deploy_prints_timestamped_lines(slow_berth):
    name = unique("plain")
    url = create(slow_berth, name)
    run = slow_berth.berth_cli("deploy", "berth-demo:latest", "--name", name, "--env", "V=2", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == url
    lines = run.stderr.splitlines()
    stamped = [l for l in lines if STAMP.match(l)]
    assert "\x1b[" not in run.stderr and not any(c in run.stderr for c in SPINNER)
    assert any(re.search(r"Traffic 5% to revision \d+ \(canary\)$", l) for l in stamped), run.stderr
    assert any(re.search(r"Traffic 100% to revision \d+$", l) for l in stamped), run.stderr
    assert any(re.search(r"Task \w+ RUNNING healthy$", l) for l in stamped), run.stderr
    assert stamped[-1].endswith("Deployment successful"), run.stderr
    # Only changes: the canary line appears once although the bake lasts several polls.
    assert sum(1 for l in stamped if "(canary)" in l) == 1, run.stderr
