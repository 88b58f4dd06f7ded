"""Fixtures for berth's end-to-end tests: one real `berth up` per test session on test ports.

Environment knobs:
  BERTH_BINARY              the binary to run (default: target/release/berth)
  BERTH_E2E_API_PORT, BERTH_E2E_HTTPS_PORT, BERTH_E2E_HTTP_PORT, BERTH_E2E_INTERNAL_PORT
                            ports (default 19443, 18443, 18080, 19444, clear of a dev instance on the
                            defaults; free ports picked at random when any of those is taken)
  BERTH_E2E_KEEP=1          keep the data dir (and its log) after the run
  BERTH_E2E_LOG_DIR         where berth's log is copied after the run (default: target/e2e)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from berthlib import ROOT, DEMO_IMAGE, BerthInstance, Ports  # noqa: E402

_INSTANCE: BerthInstance | None = None
_START_FAILURE = ""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than a minute")


@pytest.fixture(scope="session")
def demo_image() -> str:
    out = subprocess.run(["docker", "image", "inspect", DEMO_IMAGE], capture_output=True, timeout=30)
    if out.returncode != 0:
        pytest.fail(f"docker image {DEMO_IMAGE} is missing: run scripts/build-demo.sh", pytrace=False)
    return DEMO_IMAGE


@pytest.fixture(scope="session")
def berth(demo_image, request) -> BerthInstance:
    """The running berth: `.ecs()` (boto3), `.aws(...)` (AWS CLI), `.https_get(host, path)`, `.data_dir`, pids."""
    global _INSTANCE, _START_FAILURE
    if _START_FAILURE:
        pytest.fail(_START_FAILURE, pytrace=False)
    binary = Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth"))
    instance = BerthInstance(binary=binary, ports=Ports.from_env())
    _INSTANCE = instance
    try:
        instance.start()
    except Exception as exc:  # noqa: BLE001
        _save_log(instance)
        instance.cleanup(keep_dir=os.environ.get("BERTH_E2E_KEEP") == "1")
        _START_FAILURE = f"could not start berth: {exc}"
        pytest.fail(_START_FAILURE, pytrace=False)
    yield instance
    code = instance.stop()
    removed = instance.remove_containers()
    _save_log(instance)
    _say(
        request,
        f"berth up exited with {code} after SIGTERM; removed {len(removed)} task container(s); "
        f"log saved to {_log_dir() / 'berth.log'}",
    )
    if os.environ.get("BERTH_E2E_KEEP") != "1":
        shutil.rmtree(instance.data_dir, ignore_errors=True)
    else:
        _say(request, f"kept data dir {instance.data_dir}")
    _INSTANCE = None


def _say(request, line: str) -> None:
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n{line}", flush=True)
    else:
        print(line)


def _log_dir() -> Path:
    return Path(os.environ.get("BERTH_E2E_LOG_DIR", ROOT / "target" / "e2e"))


def _save_log(instance: BerthInstance) -> None:
    try:
        _log_dir().mkdir(parents=True, exist_ok=True)
        shutil.copyfile(instance.log_path, _log_dir() / "berth.log")
    except OSError:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _INSTANCE is not None:
        report.sections.append(("berth log (last 60 lines)", _INSTANCE.log_tail(60)))
