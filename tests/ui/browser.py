"""The console suites' browser: one headless Debian Chromium per test session, driven over WebDriver (selenium).

Chromium trusts berth's CA the way a person's browser would, without `--ignore-certificate-errors`: Chromium on
Linux reads user-added trust anchors from the NSS database in `$HOME/.pki/nssdb`, so the fixture gives Chromium a
throwaway HOME whose NSS database (made with `certutil`) trusts the instance's `ca.pem` for TLS servers. Service
endpoints (`https://<name>.<domain>:<port>`) are mapped to 127.0.0.1 with `--host-resolver-rules`.

Use from a test module:

    from browser import browser  # noqa: F401  (the fixture)

    def test_x(berth, browser):
        browser.sign_in(*berth.credentials())
        browser.get("/")
        browser.wait("table#services")
        browser.screenshot("services")
        with browser.phone():
            assert browser.no_horizontal_scroll()

Chromium, chromedriver and certutil come from scripts/ensure-chromium.sh.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

DESKTOP = (1280, 900)
PHONE = (375, 812)
DEFAULT_TIMEOUT = 15.0


def _which(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is missing: run scripts/ensure-chromium.sh (as root)", pytrace=False)
    return path


def make_nss_home(ca_pem: Path) -> Path:
    """A HOME whose NSS database trusts `ca_pem` as a TLS server CA (what Chromium on Linux reads)."""
    home = Path(tempfile.mkdtemp(prefix="berth-chromium-home-"))
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    certutil = _which("certutil")
    subprocess.run([certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, timeout=30)
    subprocess.run(
        [certutil, "-A", "-d", f"sql:{nssdb}", "-n", "berth-test-ca", "-t", "C,,", "-i", str(ca_pem)],
        check=True,
        timeout=30,
    )
    listed = subprocess.run(
        [certutil, "-L", "-d", f"sql:{nssdb}"], check=True, timeout=30, capture_output=True, text=True
    ).stdout
    assert "berth-test-ca" in listed, listed
    return home


class Browser:
    """A WebDriver session on the console, with bounded waits and screenshots kept as artifacts."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, artifacts: Path):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.shots = artifacts / "console"
        self.shots.mkdir(parents=True, exist_ok=True)
        self._shot_n = 0

    # ------------------------------------------------------------------ navigation and waits

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def get(self, path: str) -> None:
        self.driver.get(self.url(path))

    def wait(self, css: str, timeout: float = DEFAULT_TIMEOUT, visible: bool = False) -> WebElement:
        cond = EC.visibility_of_element_located if visible else EC.presence_of_element_located
        try:
            return WebDriverWait(self.driver, timeout).until(cond((By.CSS_SELECTOR, css)))
        except TimeoutException:
            self.screenshot(f"timeout-{css}")
            raise AssertionError(
                f"no {css!r} within {timeout}s on {self.driver.current_url}; page text:\n{self.text()[:2000]}"
            ) from None

    def wait_until(self, what: str, fn: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, poll: float = 0.25) -> Any:
        """Waits until `fn()` returns something truthy (WebDriver exceptions count as not yet); returns it."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=poll, ignored_exceptions=(WebDriverException,)).until(
                lambda _d: fn()
            )
        except TimeoutException:
            self.screenshot(f"timeout-{what}")
            raise AssertionError(
                f"{what}: not within {timeout}s on {self.driver.current_url}; page text:\n{self.text()[:2000]}"
            ) from None

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except WebDriverException:
            return ""

    def path(self) -> str:
        current = self.driver.current_url
        return current[len(self.base_url) :] if current.startswith(self.base_url) else current

    def fill(self, css: str, value: str) -> None:
        el = self.wait(css)
        el.clear()
        el.send_keys(value)

    def click(self, css: str) -> None:
        self.wait(css, visible=True).click()

    def submit(self, css: str, timeout: float = 30) -> None:
        """Clicks a button that loads a new page, and waits until the new page has loaded (a marker set on the old
        page's window is gone and the document is complete), so nothing races the old page."""
        self.driver.execute_script("window.__berthOldPage = true")
        self.click(css)
        self.wait_until(
            f"a new page after clicking {css}",
            lambda: self.driver.execute_script(
                "return window.__berthOldPage === undefined && document.readyState === 'complete'"
            ),
            timeout=timeout,
            poll=0.1,
        )

    def alert_text(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The text of the page's `.error[role=alert]`."""
        return self.wait(".error[role=alert]", timeout).text

    # ------------------------------------------------------------------ the console's flows

    def sign_in(self, access_key: str, secret: str, expect_ok: bool = True) -> None:
        self.get("/signin")
        if not self.find_all("#signin-form"):
            # Already signed in: sign out first so the identity is the one asked for.
            self.sign_out()
            self.get("/signin")
        self.fill("#access_key_id", access_key)
        self.fill("#secret_access_key", secret)
        self.submit("#signin")
        if expect_ok:
            self.wait("#signout")

    def sign_out(self) -> None:
        if not self.find_all("#signout"):
            self.get("/")
        if self.find_all("#signout"):
            self.submit("#signout")
            self.wait("#signin-form")

    def cookie(self, name: str) -> dict[str, Any] | None:
        return self.driver.get_cookie(name)

    # ------------------------------------------------------------------ artifacts and layout

    def screenshot(self, name: str) -> Path:
        self._shot_n += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:80]
        path = self.shots / f"{self._shot_n:02d}-{safe}.png"
        try:
            self.driver.save_screenshot(str(path))
        except WebDriverException:
            pass
        return path

    @contextlib.contextmanager
    def phone(self, width: int = PHONE[0], height: int = PHONE[1]) -> Iterator[None]:
        """The page as a phone shows it (device metrics emulated: width, DPR 2, mobile viewport)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )
        try:
            self.driver.refresh()
            yield
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def viewport_width(self) -> int:
        return int(self.driver.execute_script("return window.innerWidth"))

    def no_horizontal_scroll(self) -> bool:
        return bool(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        )

    def console_errors(self, include_http_errors: bool = False) -> list[str]:
        """Severe messages from the page's console since the last call: CSP violations and script errors (and,
        with `include_http_errors`, every resource answered 4xx/5xx, which a refused form legitimately is)."""
        try:
            entries = [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        except WebDriverException:
            return []
        if include_http_errors:
            return entries
        return [m for m in entries if "Failed to load resource: the server responded with a status" not in m]


def start_chromium(ca_pem: Path, base_url: str, artifacts: Path, map_all_to_loopback: bool = True) -> tuple[Browser, Path]:
    home = make_nss_home(ca_pem)
    opts = webdriver.ChromeOptions()
    opts.binary_location = _which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={home / 'profile'}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        "--lang=en-US",
    ):
        opts.add_argument(arg)
    if map_all_to_loopback:
        # Service endpoints are names under berth's domain; the proxy listens on loopback.
        opts.add_argument("--host-resolver-rules=MAP * 127.0.0.1, EXCLUDE localhost")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = dict(os.environ)
    env["HOME"] = str(home)
    service = Service(executable_path=_which("chromedriver"), env=env, log_output=str(artifacts / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(15)
    return Browser(driver, base_url, artifacts), home


@pytest.fixture(scope="session")
def browser(berth, artifacts) -> Iterator[Browser]:
    """Headless Chromium trusting the instance's CA, on its console (1280×900; `browser.phone()` for 375 px)."""
    b, home = start_chromium(berth.ca_path, berth.console_url, artifacts)
    try:
        yield b
    finally:
        try:
            b.driver.quit()
        finally:
            shutil.rmtree(home, ignore_errors=True)
