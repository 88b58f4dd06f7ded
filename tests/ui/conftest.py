"""Fixtures for the CLI and console suites: one real `berth up` per session, on ports of its own so this suite can
run beside tests/e2e.

Environment knobs:
  BERTH_BINARY              the binary to run (default: target/release/berth)
  BERTH_UI_{API,HTTPS,HTTP,INTERNAL}_PORT   ports (default 29443, 28443, 28080, 29444, or free ones)
  BERTH_UI_KEEP=1           keep the data dir after the run
  BERTH_UI_ARTIFACTS        where logs and screenshots go (default: target/ui)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from berthlib import ROOT, DEMO_IMAGE, BerthInstance, Ports  # noqa: E402

_INSTANCE: BerthInstance | None = None
_START_FAILURE = ""


def artifacts_dir() -> Path:
    d = Path(os.environ.get("BERTH_UI_ARTIFACTS", ROOT / "target" / "ui"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep what a person looks at after a run (screenshots, transcripts)."""
    return artifacts_dir()


@pytest.fixture(scope="session")
def demo_image() -> str:
    out = subprocess.run(["docker", "image", "inspect", DEMO_IMAGE], capture_output=True, timeout=30)
    if out.returncode != 0:
        pytest.fail(f"docker image {DEMO_IMAGE} is missing: run scripts/build-demo.sh", pytrace=False)
    return DEMO_IMAGE


@pytest.fixture(scope="session")
def berth(demo_image) -> BerthInstance:
    """The running berth (see tests/e2e/berthlib.py): `.berth_cli(...)`, `.console_url`, `.ecs()`, `.aws(...)`."""
    global _INSTANCE, _START_FAILURE
    if _START_FAILURE:
        pytest.fail(_START_FAILURE, pytrace=False)
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    instance = BerthInstance(
        binary=binary, ports=Ports.from_env(prefix="BERTH_UI", base=(29443, 28443, 28080, 29444))
    )
    _INSTANCE = instance
    try:
        instance.start()
    except Exception as exc:  # noqa: BLE001
        _save_log(instance)
        instance.cleanup(keep_dir=os.environ.get("BERTH_UI_KEEP") == "1")
        _START_FAILURE = f"could not start berth: {exc}"
        pytest.fail(_START_FAILURE, pytrace=False)
    yield instance
    instance.stop()
    instance.remove_containers()
    _save_log(instance)
    if os.environ.get("BERTH_UI_KEEP") != "1":
        shutil.rmtree(instance.data_dir, ignore_errors=True)
    _INSTANCE = None


def _save_log(instance: BerthInstance) -> None:
    try:
        shutil.copyfile(instance.log_path, artifacts_dir() / "berth.log")
    except OSError:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _INSTANCE is not None:
        report.sections.append(("berth log (last 60 lines)", _INSTANCE.log_tail(60)))
