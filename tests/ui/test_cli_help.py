"""The CLI's own help and shell completions: every client command has examples, and the completion scripts name
every command (no berth needed: these run the binary alone)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from berthlib import ROOT

BINARY = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
COMMANDS = ["deploy", "ls", "status", "logs", "open", "rollback", "promote", "scale", "rm", "resources", "plan", "apply"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_client_command_has_help_with_examples(command):
    out = run(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Examples:" in out.stdout, out.stdout
    assert f"berth {command}" in out.stdout.split("Examples:", 1)[1], out.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_name_every_command(shell):
    out = run("completions", shell)
    assert out.returncode == 0, out.stderr
    for command in [*COMMANDS, "console", "ca", "up"]:
        assert command in out.stdout, f"{shell} completions miss {command}"
    # A closed pipe is not a crash (`berth completions bash | head`).
    piped = subprocess.run(
        f"{BINARY} completions {shell} | head -1", shell=True, capture_output=True, text=True, timeout=30
    )
    assert piped.returncode == 0 and "panicked" not in piped.stderr, piped.stderr


def test_an_unknown_flag_is_a_usage_error_with_exit_2():
    out = run("ls", "--no-such-flag")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "--no-such-flag" in out.stderr
