"""The web console end to end in a real headless Chromium against a real berth on real Docker: sign in, create a
service from the demo image through the form (default roles made with the form's buttons), watch it become healthy,
open its URL, a read-only IAM user refused a change, CSRF from another origin refused, sign out, the phone layout.
Screenshots of every step land in the artifacts dir (`target/ui/console/`).

The tests run in file order and share one browser and one service (`STATE`).
"""

from __future__ import annotations

import http.client
import http.server
import json
import ssl
import threading
from typing import Any
from urllib.parse import urlencode, urlparse

import pytest

from berthlib import unique, wait_for

from browser import browser  # noqa: F401  (the session's Chromium)

STATE: dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------- helpers


def console_request(
    berth, method: str, path: str, body: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One raw request to the console (TLS verified against berth's CA); answers status, headers, body."""
    url = urlparse(berth.console_url)
    ctx = ssl.create_default_context(cafile=str(berth.ca_path))
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=15, context=ctx)
    try:
        data = urlencode(body).encode() if body is not None else None
        h = dict(headers or {})
        if data is not None:
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
    finally:
        conn.close()


def service_names(berth) -> set[str]:
    ecs = berth.ecs()
    try:
        arns = ecs.list_services(cluster="default").get("serviceArns", [])
    except ecs.exceptions.ClusterNotFoundException:
        return set()
    return {a.rsplit("/", 1)[-1] for a in arns}


def row_cells(browser, name: str) -> dict[str, str]:
    row = browser.find(f'tr[data-service="{name}"]')
    return {
        cls: row.find_element("css selector", f"td.{cls}").text
        for cls in ("status", "url", "revision", "tasks", "rpm", "errors")
    }


# ---------------------------------------------------------------------------------------------- tests


def test_console_command_prints_the_url(berth):
    out = berth.berth_cli("console", "--no-open")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == berth.console_url, (out.stdout, berth.console_url)


def test_pages_carry_security_headers_and_signed_out_is_redirected(berth):
    status, headers, body = console_request(berth, "GET", "/signin")
    assert status == 200, body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert '<html lang="en">' in body and 'name="viewport"' in body
    assert "<script>" not in body, "no inline script (CSP)"
    for path in ("/", "/create"):
        status, headers, _ = console_request(berth, "GET", path)
        assert (status, headers.get("location")) == (303, "/signin"), path
    # A forged cookie is no session.
    status, headers, _ = console_request(berth, "GET", "/", headers={"Cookie": "berth_session=abc.def"})
    assert (status, headers.get("location")) == (303, "/signin")


def test_wrong_key_is_refused_on_the_form(berth, browser):
    key, _ = berth.credentials()
    browser.sign_in(key, "not-the-secret", expect_ok=False)
    alert = browser.alert_text()
    assert "signature" in alert.lower() or "invalid" in alert.lower() or "denied" in alert.lower(), alert
    assert browser.find("#access_key_id").get_attribute("value") == key, "the key id is kept"
    assert browser.cookie("berth_session") is None
    browser.screenshot("signin-wrong-key")


def test_root_signs_in_with_a_strict_cookie(berth, browser):
    key, secret = berth.credentials()
    browser.sign_in(key, secret)
    cookie = browser.cookie("berth_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["secure"] is True and cookie["sameSite"] == "Strict", cookie
    assert secret not in cookie["value"] and key not in cookie["value"], "credentials never in the cookie"
    assert browser.find(".identity .who").text == "root"
    browser.wait("#create-link")
    browser.screenshot("services-empty")
    assert not browser.console_errors(), "no CSP violation or script error"


def test_create_a_service_through_the_form(berth, browser):
    name = unique("web")
    STATE["name"] = name
    browser.get("/create")
    browser.wait("#create-form")
    browser.screenshot("create-form")
    # The default roles, made by the form's buttons (the form keeps what was typed).
    browser.fill("#image", berth_demo_image())
    browser.submit("#create-execution-role")
    notice = browser.wait(".notice[role=status]").text
    assert "ecsTaskExecutionRole" in notice, notice
    assert browser.find("#image").get_attribute("value") == berth_demo_image(), "the image is kept"
    browser.submit("#create-infrastructure-role")
    assert "ecsInfrastructureRoleForExpressServices" in browser.wait(".notice[role=status]").text
    execution = browser.find("#execution_role_arn").get_attribute("value")
    infrastructure = browser.find("#infrastructure_role_arn").get_attribute("value")
    assert execution.endswith(":role/ecsTaskExecutionRole"), execution
    assert infrastructure.endswith(":role/ecsInfrastructureRoleForExpressServices"), infrastructure
    iam = berth.client("iam")
    attached = iam.list_attached_role_policies(RoleName="ecsTaskExecutionRole")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonECSTaskExecutionRolePolicy"], attached
    browser.screenshot("create-roles-ready")

    # A bad optional value re-renders the form with the values kept and the reason.
    browser.click("#more-settings summary")
    browser.fill("#name", name)
    browser.fill("#environment", "GREETING=hello\nnot a pair")
    browser.submit("#create")
    assert "environment line 2" in browser.alert_text()
    assert browser.find("#name").get_attribute("value") == name
    assert name not in service_names(berth)
    browser.screenshot("create-validation-error")

    if not browser.find("#more-settings").get_attribute("open"):
        browser.click("#more-settings summary")
    browser.fill("#environment", "GREETING=hello")
    browser.fill("#min_tasks", "1")
    browser.fill("#max_tasks", "2")
    browser.submit("#create")
    browser.wait_until("the service page", lambda: browser.path() == f"/services/default/{name}", timeout=30)
    browser.screenshot("create-submitted")
    svc = berth.ecs().describe_services(cluster="default", services=[name])["services"][0]
    assert svc["serviceName"] == name
    arn = svc["serviceArn"]
    STATE["arn"] = arn
    described = berth.describe_service(arn)
    container = described["activeConfigurations"][0]["primaryContainer"]
    assert container["image"] == berth_demo_image()
    assert {"name": "GREETING", "value": "hello"} in container.get("environment", [])
    assert described["activeConfigurations"][0]["executionRoleArn"] == execution


def berth_demo_image() -> str:
    from berthlib import DEMO_IMAGE

    return DEMO_IMAGE


def test_the_service_becomes_healthy(berth, browser):
    name = STATE["name"]
    # The service page (opened by the create) shows the deployment's progress live: its `#status` turns to
    # "tasks 1/1" with no deployment running, without a reload (the page marks itself; a reload would clear it).
    assert browser.path() == f"/services/default/{name}"
    status = browser.wait("#status")
    first = status.text
    browser.screenshot("service-page-deploying")
    browser.driver.execute_script("window.__berthNoReload = true")

    def settled():
        text = browser.find("#status").text
        return text if "tasks 1/1" in text and "deploying" not in text else None

    text = browser.wait_until(f"{name}'s status to show 1/1 tasks live", settled, timeout=120, poll=1)
    assert browser.driver.execute_script("return window.__berthNoReload === true"), "the page was reloaded"
    assert text.startswith("ACTIVE"), text
    assert first != text, "the status changed while we watched"
    browser.screenshot("service-page-healthy")

    def healthy():
        browser.get("/")
        browser.wait(f'tr[data-service="{name}"]')
        cells = row_cells(browser, name)
        return cells if cells["status"] == "ACTIVE" and cells["tasks"] == "1/1" else None

    cells = browser.wait_until(f"{name} ACTIVE with 1/1 healthy tasks in the list", healthy, timeout=120, poll=2)
    assert cells["url"].startswith("https://"), cells
    assert cells["revision"] != "—", cells
    browser.screenshot("services-healthy")
    STATE["url"] = cells["url"]


def test_open_the_service_url(berth, browser):
    name = STATE["name"]
    browser.get("/")
    link = browser.wait(f'tr[data-service="{name}"] td.url a')
    url = link.get_attribute("href")
    assert url == STATE["url"]
    # The page is served by the demo through berth's proxy, over TLS trusted through berth's CA.
    browser.driver.get(url)
    browser.wait_until("the demo page", lambda: "berth demo" in browser.text(), timeout=30, poll=1)
    browser.screenshot("service-url")
    # Traffic shows in the list's request rate (metrics published by the proxy, read with GetMetricData).
    for _ in range(5):
        berth.https_get(urlparse(url).hostname, "/")

    def counted():
        browser.get("/")
        browser.wait(f'tr[data-service="{name}"]')
        rpm = row_cells(browser, name)["rpm"]
        return rpm if rpm not in ("—", "0.0") else None

    rpm = browser.wait_until("requests/min above zero", counted, timeout=60, poll=2)
    assert float(rpm) > 0
    browser.screenshot("services-with-traffic")


def test_read_only_user_is_refused_a_change(berth, browser):
    iam = berth.client("iam")
    user = unique("viewer")
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ecs:List*",
                    "ecs:Describe*",
                    "iam:List*",
                    "iam:Get*",
                    "elasticloadbalancing:Describe*",
                    "cloudwatch:GetMetricData",
                    "sts:GetCallerIdentity",
                ],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    before = service_names(berth)
    # IAM keys take effect at once in berth, but allow a moment as AWS would.
    browser.sign_out()
    wait_for("the new key to sign in", lambda: _try_sign_in(browser, key), timeout=20, interval=1)
    assert browser.find(".identity .who").text == user
    browser.wait(f'tr[data-service="{STATE["name"]}"]')
    browser.screenshot("read-only-services")

    browser.get("/create")
    browser.fill("#image", berth_demo_image())
    # The roles root made are offered to this user too (iam:ListRoles is allowed).
    for select in ("#execution_role_arn", "#infrastructure_role_arn"):
        options = [o.get_attribute("value") for o in browser.find_all(f"{select} option")]
        chosen = next(o for o in options if o)
        browser.driver.execute_script("arguments[0].value = arguments[1]", browser.find(select), chosen)
    browser.click("#more-settings summary")
    browser.fill("#name", unique("denied"))
    browser.submit("#create")
    alert = browser.alert_text()
    assert "AccessDenied" in alert, alert
    browser.screenshot("read-only-refused")
    assert service_names(berth) == before, "nothing was created"
    # A role button is refused the same way.
    browser.submit("#create-execution-role")
    assert "AccessDenied" in browser.alert_text()
    browser.sign_out()


def _try_sign_in(browser, key) -> bool:
    browser.sign_in(key["AccessKeyId"], key["SecretAccessKey"], expect_ok=False)
    return bool(browser.find_all("#signout"))


def test_csrf_from_another_origin_is_refused(berth, browser):
    key, secret = berth.credentials()
    browser.sign_in(key, secret)
    cookie = browser.cookie("berth_session")
    assert cookie
    before = service_names(berth)
    browser.get("/create")
    token = browser.find("#create-form input[name=csrf]").get_attribute("value")
    form = {
        "csrf": token,
        "image": berth_demo_image(),
        "execution_role_arn": berth.role_arns()["executionRoleArn"],
        "infrastructure_role_arn": berth.role_arns()["infrastructureRoleArn"],
        "name": unique("csrf"),
    }
    jar = {"Cookie": f"berth_session={cookie['value']}"}
    own = berth.console_url
    host = {"Host": urlparse(own).netloc}
    cases = [
        ("foreign Origin with a valid token", form, {"Origin": "https://evil.example", **jar, **host}),
        ("cross-site fetch metadata", form, {"Sec-Fetch-Site": "cross-site", **jar, **host}),
        ("own Origin without the token", {k: v for k, v in form.items() if k != "csrf"}, {"Origin": own, **jar, **host}),
        ("own Origin with a wrong token", {**form, "csrf": "0" * 64}, {"Origin": own, **jar, **host}),
        ("another port on localhost", form, {"Origin": "https://localhost:1", **jar, **host}),
    ]
    for what, body, headers in cases:
        status, _, text = console_request(berth, "POST", "/create", body, headers)
        assert status == 403, (what, status, text[:500])
        assert 'role="alert"' in text and "CSRF" in text, what
    # Signing out from elsewhere is refused too.
    status, _, _ = console_request(berth, "POST", "/signout", {"csrf": token}, {"Origin": "https://evil.example", **jar, **host})
    assert status == 403

    # A real cross-origin page auto-submitting a form to the console, in the same browser.
    page = f"""<!doctype html><html><body><form id="f" method="post" action="{own}/create">
      {''.join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in form.items())}
    </form><script>document.getElementById('f').submit()</script></body></html>"""
    server = _serve_once(page)
    try:
        browser.driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        browser.wait_until("the console's answer", lambda: browser.path() == "/create", timeout=20)
        browser.screenshot("csrf-refused")
        assert "berth demo" not in browser.text()
        assert "CSRF check failed" in browser.alert_text(), browser.text()[:500]
    finally:
        server.shutdown()
    assert service_names(berth) == before, "no forged request created anything"
    # The same request from the console's own page works (the token and origin are the only difference).
    status, headers, text = console_request(berth, "POST", "/create", {**form, "image": ""}, {"Origin": own, **jar, **host})
    assert status == 400 and "container image" in text, (status, text[:300])


def _serve_once(page: str) -> http.server.ThreadingHTTPServer:
    body = page.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_phone_width_has_no_horizontal_scroll(berth, browser):
    key, secret = berth.credentials()
    if not browser.find_all("#signout"):
        browser.sign_in(key, secret)
    for path, shot in (("/", "phone-services"), ("/create", "phone-create"), (f"/services/default/{STATE['name']}", "phone-service")):
        browser.get(path)
        with browser.phone():
            assert browser.viewport_width() == 375
            browser.wait("header.top")  # the console's page (the service page once it exists, else its 404)
            assert len(browser.find_all("h1")) == 1
            assert browser.no_horizontal_scroll(), f"{path} scrolls sideways at 375 px"
            browser.screenshot(shot)


def test_sign_out_ends_the_session(berth, browser):
    key, secret = berth.credentials()
    if not browser.find_all("#signout"):
        browser.sign_in(key, secret)
    browser.get("/")
    old = browser.cookie("berth_session")
    assert old
    browser.submit("#signout")
    browser.wait("#signin-form")
    assert browser.cookie("berth_session") is None
    browser.get("/")
    browser.wait("#signin-form")
    assert browser.path() == "/signin"
    # The old cookie is dead on the server too.
    status, headers, _ = console_request(berth, "GET", "/", headers={"Cookie": f"berth_session={old['value']}"})
    assert (status, headers.get("location")) == (303, "/signin")
    browser.screenshot("signed-out")


@pytest.fixture(scope="module", autouse=True)
def _delete_the_created_service(berth):
    """The service the form created is deleted after the module (a teardown, not a test that asserts nothing)."""
    yield
    if STATE.get("arn"):
        berth.best_effort_delete(STATE["arn"])