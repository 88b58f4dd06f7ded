"""The console's service page in headless Chromium against a real berth on real Docker: live logs with a filter,
the charts, editing the health check in place, and rolling back a deployment mid-canary (a second berth with a
60 s canary bake). Services are created with boto3 (fast); every check of an effect reads berth's API.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import pytest

from berthlib import ROOT, BerthInstance, Ports, serving_service, wait_for
from browser import browser, start_chromium  # noqa: F401  (the fixture)

CHART_LABELS = ["Requests", "Latency", "Errors", "CPU", "Memory", "Task count"]


@pytest.fixture(scope="module")
def svc(berth):
    berth.ensure_express_roles()
    with serving_service(berth, "cs") as s:
        yield s


def page(s: dict) -> str:
    return f"/services/default/{s['name']}"


def submit(browser, click) -> str:
    """Clicks (a CSS selector or a callable) and waits for the page the POST leads to; returns its notice ('' when
    there is none). The old page is marked first, so a notice left on it is never mistaken for the new one."""
    browser.driver.execute_script("window.__berthOld = true")
    if callable(click):
        click()
    else:
        browser.click(click)
    browser.wait_until(
        "the page after the change",
        lambda: browser.driver.execute_script("return window.__berthOld !== true && document.readyState === 'complete'"),
        timeout=30,
    )
    notes = browser.find_all(".notice[role=status]")
    return notes[0].text if notes else ""


def log_lines(browser) -> list[str]:
    return [li.text for li in browser.find_all("#log-lines li")]


def test_logs_show_a_request_and_the_filter_narrows_them(berth, browser, svc):
    alpha, beta = f"alpha{secrets.token_hex(4)}", f"beta{secrets.token_hex(4)}"
    assert berth.https_get(svc["endpoint"], f"/status/200?probe={alpha}").status == 200
    assert berth.https_get(svc["endpoint"], f"/status/200?probe={beta}").status == 200
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    browser.wait("section#logs ol#log-lines")
    # The demo's access log line for each request reaches the page (shipped to CloudWatch Logs, polled by the page).
    browser.wait_until(
        "both requests' log lines in #log-lines",
        lambda: any(alpha in t for t in log_lines(browser)) and any(beta in t for t in log_lines(browser)),
        timeout=45,
    )
    line = next(t for t in log_lines(browser) if alpha in t)
    assert f'"GET /status/200?probe={alpha}" 200' in line, line
    browser.screenshot("service-logs")
    browser.fill("#log-filter", alpha)
    browser.wait_until(
        "the filter to leave only the alpha line",
        lambda: (lines := log_lines(browser)) and all(alpha in t for t in lines) and not any(beta in t for t in lines),
        timeout=20,
    )
    # New lines matching the filter keep arriving live, without a reload.
    assert berth.https_get(svc["endpoint"], f"/status/201?probe={alpha}").status == 201
    browser.wait_until(
        "the new matching line to arrive live",
        lambda: any(f"/status/201?probe={alpha}" in t for t in log_lines(browser)),
        timeout=45,
    )
    browser.screenshot("service-logs-filtered")
    assert not browser.console_errors()
    # A filter berth refuses says so on the page (and why), and a good one clears it.
    browser.fill("#log-filter", "{ $.level = ")
    message = browser.wait("#log-error.error[role=alert]", visible=True, timeout=20).text
    assert "Logs are not updating" in message and "InvalidParameter" in message, message
    browser.fill("#log-filter", alpha)
    browser.wait_until("the error to clear", lambda: not browser.find("#log-error").is_displayed(), timeout=20)


def test_the_charts_show_the_requests(berth, browser, svc):
    for i in range(30):
        assert berth.https_get(svc["endpoint"], f"/?n={i}").status == 200
    browser.sign_in(*berth.credentials())

    def requests_chart_has_data():
        browser.get(page(svc) + "#charts")
        svg = browser.wait("section#charts svg[aria-label^='Requests']")
        return float(svg.get_attribute("data-max") or 0) > 0

    browser.wait_until("the Requests chart to show the requests", requests_chart_has_data, timeout=60, poll=2)
    svgs = browser.find_all("section#charts svg[role=img]")
    labels = [s.get_attribute("aria-label") for s in svgs]
    assert [label.split(" (")[0] for label in labels] == CHART_LABELS, labels
    # Every chart names itself for screen readers, and the ones with data draw lines or points.
    for s in svgs:
        assert s.find_element("css selector", "title").get_attribute("textContent") == s.get_attribute("aria-label")
    requests = svgs[0]
    assert int(requests.get_attribute("data-points")) >= 1
    assert requests.find_elements("css selector", "polyline, circle"), "the Requests chart draws nothing"
    # The requests were 200s: the latency chart has points too.
    assert int(svgs[1].get_attribute("data-points")) >= 1
    browser.screenshot("service-charts")


def target_groups(berth, s: dict) -> list[dict]:
    arns = set()
    for config in berth.describe_service(s["arn"]).get("activeConfigurations", []):
        rev = berth.ecs().describe_service_revisions(serviceRevisionArns=[config["serviceRevisionArn"]])
        for r in rev["serviceRevisions"]:
            for p in r.get("ecsManagedResources", {}).get("ingressPaths", []):
                arns |= {t["arn"] for t in p.get("targetGroups", [])}
    assert arns, "the service has no target group"
    return berth.client("elbv2").describe_target_groups(TargetGroupArns=sorted(arns))["TargetGroups"]


def target_states(berth, tg_arn: str) -> list[str]:
    out = berth.client("elbv2").describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return [d["TargetHealth"]["State"] for d in out]


def submit_health_check(browser, path: str, interval: str = "6", unhealthy: str = "2", healthy: str = "2") -> None:
    browser.fill("form#edit-health-check [name=health_check_path]", path)
    browser.fill("form#edit-health-check [name=interval]", interval)
    browser.fill("form#edit-health-check [name=unhealthy_threshold]", unhealthy)
    browser.fill("form#edit-health-check [name=healthy_threshold]", healthy)
    assert "Health check updated" in submit(browser, "form#edit-health-check button[type=submit]")


def test_edit_the_health_check_path_and_see_it_take_effect(berth, browser, svc):
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    browser.wait("section#resources form#edit-health-check")
    assert browser.find("form#edit-health-check [name=health_check_path]").get_attribute("value") == "/ping"
    # A path the demo answers 503: the targets become unhealthy.
    submit_health_check(browser, "/status/503")
    tgs = target_groups(berth, svc)
    assert {t["HealthCheckPath"] for t in tgs} == {"/status/503"}
    assert {t["HealthCheckIntervalSeconds"] for t in tgs} == {6}
    serving = next(t for t in tgs if target_states(berth, t["TargetGroupArn"]))
    wait_for(
        "the targets to fail the new health check",
        lambda: set(target_states(berth, serving["TargetGroupArn"])) == {"unhealthy"},
        timeout=40,
        interval=0.5,
    )
    browser.screenshot("service-health-check-failing")
    # A path the demo answers 200: healthy again, and the form shows what berth has.
    submit_health_check(browser, "/env")
    assert browser.find("form#edit-health-check [name=health_check_path]").get_attribute("value") == "/env"
    assert {t["HealthCheckPath"] for t in target_groups(berth, svc)} == {"/env"}
    wait_for(
        "the targets to pass the new health check",
        lambda: set(target_states(berth, serving["TargetGroupArn"])) == {"healthy"},
        timeout=40,
        interval=0.5,
    )
    berth.wait_status(svc["endpoint"], 200, "/", timeout=30)
    # Bad input is refused with a message, and berth keeps its setting.
    browser.fill("form#edit-health-check [name=health_check_path]", "no-slash")
    assert submit(browser, "form#edit-health-check button[type=submit]") == ""
    assert "must start with /" in browser.alert_text()
    # The refusal shows on the service page itself, the form there to correct it.
    assert browser.find_all("form#edit-health-check") and browser.find("h1").text == svc["name"]
    assert {t["HealthCheckPath"] for t in target_groups(berth, svc)} == {"/env"}
    browser.screenshot("service-health-check-refused")


@pytest.fixture(scope="module")
def canary_berth(demo_image, artifacts):
    """A second berth whose deployments bake their canary for 60 s, so a rollback can happen mid-canary."""
    binary = Path(berth_binary())
    instance = BerthInstance(
        binary=binary, ports=Ports.from_env(prefix="BERTH_UI_CANARY", base=(29543, 28543, 28180, 29544)), canary_bake_secs=60
    )
    try:
        instance.start()
    except Exception as exc:  # noqa: BLE001
        instance.cleanup()
        pytest.fail(f"could not start the canary berth: {exc}", pytrace=False)
    yield instance
    instance.stop()
    instance.remove_containers()
    try:
        (artifacts / "berth-canary.log").write_text(instance.log_text())
    except OSError:
        pass
    instance.cleanup()


def berth_binary() -> str:
    return os.environ.get("BERTH_BINARY", str(ROOT / "target" / "release" / "berth"))


def newest_deployment(berth, s: dict) -> dict:
    ecs = berth.ecs()
    arns = [d["serviceDeploymentArn"] for d in ecs.list_service_deployments(service=s["arn"])["serviceDeployments"]]
    ds = ecs.describe_service_deployments(serviceDeploymentArns=arns)["serviceDeployments"]
    return max(ds, key=lambda d: d["createdAt"])


def test_roll_back_a_deployment_mid_canary(canary_berth, artifacts):
    b = canary_berth
    b.ensure_express_roles()
    chromium, home = start_chromium(b.ca_path, b.console_url, artifacts)
    try:
        with serving_service(b, "rb") as s:
            first = newest_deployment(b, s)
            b.ecs().update_express_gateway_service(
                serviceArn=s["arn"],
                primaryContainer={"image": b.describe_service(s["arn"])["activeConfigurations"][0]["primaryContainer"]["image"],
                                  "environment": [{"name": "DEMO_VERSION", "value": "v2"}]},
            )
            dep = wait_for(
                "the update to reach its canary bake",
                lambda: (d := newest_deployment(b, s))["serviceDeploymentArn"] != first["serviceDeploymentArn"]
                and d["status"] == "IN_PROGRESS"
                and any(h.get("status") == "AWAITING_ACTION" for h in d.get("lifecycleHookDetails", []))
                and d,
                timeout=60,
                interval=0.5,
            )
            chromium.sign_in(*b.credentials())
            chromium.get(page(s))
            chromium.wait("section#deployments tr.deployment")
            assert chromium.find("tr.deployment .deployment-status").text == "IN_PROGRESS"
            chromium.wait("button#promote")
            chromium.screenshot("service-mid-canary")
            assert "Rollback requested" in submit(chromium, "button#rollback")
            done = wait_for(
                "the deployment to end ROLLBACK_SUCCESSFUL",
                lambda: (d := newest_deployment(b, s))["status"] == "ROLLBACK_SUCCESSFUL" and d,
                timeout=60,
                interval=0.5,
            )
            assert done["serviceDeploymentArn"] == dep["serviceDeploymentArn"]
            # The old revision answers everything again.
            versions = {b.https_get(s["endpoint"], "/").header("x-demo-version") for _ in range(10)}
            assert versions == {"dev"}, versions
            # The page shows it live (status.json), without a reload.
            chromium.wait_until(
                "the page to show ROLLBACK_SUCCESSFUL",
                lambda: chromium.find("tr.deployment .deployment-status").text == "ROLLBACK_SUCCESSFUL",
                timeout=20,
            )
            chromium.screenshot("service-rolled-back")
            # Again, and this time promote: the canary bake ends at once and the new revision takes all traffic.
            rolled = done["serviceDeploymentArn"]
            b.ecs().update_express_gateway_service(
                serviceArn=s["arn"],
                primaryContainer={"image": b.describe_service(s["arn"])["activeConfigurations"][0]["primaryContainer"]["image"],
                                  "environment": [{"name": "DEMO_VERSION", "value": "v3"}]},
            )
            wait_for(
                "the second update to reach its canary bake",
                lambda: (d := newest_deployment(b, s))["serviceDeploymentArn"] != rolled
                and any(h.get("status") == "AWAITING_ACTION" for h in d.get("lifecycleHookDetails", [])),
                timeout=60,
                interval=0.5,
            )
            chromium.get(page(s))
            assert "Promoted" in submit(chromium, "button#promote")
            # Within 40 s: without the promotion the canary would bake for 60 s.
            wait_for(
                "the promoted deployment to finish",
                lambda: newest_deployment(b, s)["status"] == "SUCCESSFUL",
                timeout=40,
                interval=0.5,
            )
            wait_for("v3 to answer", lambda: b.https_get(s["endpoint"], "/").header("x-demo-version") == "v3", timeout=20)
    finally:
        chromium.driver.quit()
        shutil.rmtree(home, ignore_errors=True)


def test_edit_scaling_alarm_and_log_retention_in_place(berth, browser, svc):
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    browser.fill("form#edit-scaling [name=min_tasks]", "1")
    browser.fill("form#edit-scaling [name=max_tasks]", "3")
    assert "Scaling bounds updated" in submit(browser, "form#edit-scaling button[type=submit]")
    target = berth.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/default/{svc['name']}"]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    # The Express configuration says the same (no deployment was needed).
    scaling = berth.describe_service(svc["arn"])["activeConfigurations"][0]["scalingTarget"]
    assert (scaling["minTaskCount"], scaling["maxTaskCount"]) == (1, 3)
    # The minimum above the maximum is refused before berth is asked.
    browser.fill("form#edit-scaling [name=min_tasks]", "5")
    browser.fill("form#edit-scaling [name=max_tasks]", "2")
    assert submit(browser, "form#edit-scaling button[type=submit]") == ""
    assert "above the maximum" in browser.alert_text()

    alarm_form = browser.wait("form.edit-alarm")
    alarm_name = alarm_form.find_element("css selector", "[name=alarm_name]").get_attribute("value")
    cw = berth.client("cloudwatch")
    before = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    field = alarm_form.find_element("css selector", "[name=threshold]")
    field.clear()
    field.send_keys("42.5")
    button = alarm_form.find_element("css selector", "button[type=submit]")
    assert "Alarm threshold updated" in submit(browser, button.click)
    after = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    assert after["Threshold"] == 42.5
    for kept in ("MetricName", "Namespace", "ComparisonOperator", "EvaluationPeriods", "Period", "Dimensions", "AlarmActions"):
        assert after.get(kept) == before.get(kept), kept

    group = browser.find("form#edit-log-retention [name=log_group]").get_attribute("value")
    browser.fill("form#edit-log-retention [name=retention_days]", "14")
    assert "Log retention updated" in submit(browser, "form#edit-log-retention button[type=submit]")
    groups = berth.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g.get("retentionInDays") for g in groups if g["logGroupName"] == group] == [14]
    browser.fill("form#edit-log-retention [name=retention_days]", "13")
    assert submit(browser, "form#edit-log-retention button[type=submit]") == ""
    assert "retention must be one of" in browser.alert_text()
    browser.screenshot("service-resources-edited")


def test_edit_security_group_ingress_and_rule_hosts_in_place(berth, browser, svc):
    ec2 = berth.client("ec2")
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    box = browser.wait("div.security-group")
    group = box.get_attribute("data-group")
    form = box.find_element("css selector", "form.add-ingress")
    for name, value in (("protocol", "tcp"), ("from_port", "8081"), ("to_port", "8082"), ("cidr", "10.9.0.0/16")):
        field = form.find_element("css selector", f"[name={name}]")
        field.clear()
        field.send_keys(value)
    assert "Security group rules updated" in submit(browser, form.find_element("css selector", "button[type=submit]").click)

    def has_rule() -> bool:
        perms = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
        return any(
            p.get("FromPort") == 8081 and p.get("ToPort") == 8082 and {"CidrIp": "10.9.0.0/16"} in p.get("IpRanges", [])
            for p in perms
        )

    assert has_rule()
    # The page lists it with a remove button; removing it revokes it.
    remove = browser.wait(f"div.security-group[data-group='{group}'] form.inline input[name=cidr][value='10.9.0.0/16']")
    button = remove.find_element("xpath", "..").find_element("css selector", "button.revoke-ingress")
    assert "Security group rules updated" in submit(browser, button.click)
    assert not has_rule()
    assert not browser.find_all(f"div.security-group[data-group='{group}'] input[name=cidr][value='10.9.0.0/16']")

    # The listener rule: add a second host, the endpoint keeps answering.
    elb = berth.client("elbv2")
    rule_arn = browser.find("form#edit-rule-host [name=rule_arn]").get_attribute("value")
    hosts = browser.find("form#edit-rule-host [name=hosts]").get_attribute("value")
    assert svc["endpoint"] in hosts
    alias = f"alias-{secrets.token_hex(3)}.example"
    browser.fill("form#edit-rule-host [name=hosts]", f"{hosts}, {alias}")
    assert "Listener rule hosts updated" in submit(browser, "form#edit-rule-host button[type=submit]")
    rule = elb.describe_rules(RuleArns=[rule_arn])["Rules"][0]
    values = [v for c in rule["Conditions"] if c["Field"] == "host-header" for v in c["HostHeaderConfig"]["Values"]]
    assert sorted(values) == sorted([svc["endpoint"], alias]), values
    assert berth.https_get(svc["endpoint"], "/ping").status == 200
    browser.screenshot("service-ingress-and-hosts")


def test_roll_back_a_finished_deployment_to_the_previous_revision(berth, browser, svc):
    ecs = berth.ecs()
    before = newest_deployment(berth, svc)
    original_td = berth.describe_service(svc["arn"])["activeConfigurations"][0]["taskDefinitionArn"]
    image = berth.describe_service(svc["arn"])["activeConfigurations"][0]["primaryContainer"]["image"]
    ecs.update_express_gateway_service(
        serviceArn=svc["arn"],
        primaryContainer={"image": image, "environment": [{"name": "DEMO_VERSION", "value": "v2"}]},
    )
    update = wait_for(
        "the update to finish",
        lambda: (d := newest_deployment(berth, svc))["serviceDeploymentArn"] != before["serviceDeploymentArn"]
        and d["status"] == "SUCCESSFUL"
        and d,
        timeout=90,
        interval=0.5,
    )
    wait_for("v2 to answer", lambda: berth.https_get(svc["endpoint"], "/").header("x-demo-version") == "v2", timeout=30)
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    assert "previous revision" in browser.wait("button#rollback").text
    assert "Rollback requested" in submit(browser, "button#rollback")
    rollback = wait_for(
        "the rollback deployment to finish",
        lambda: (d := newest_deployment(berth, svc))["serviceDeploymentArn"] != update["serviceDeploymentArn"]
        and d["status"] == "SUCCESSFUL"
        and d,
        timeout=90,
        interval=0.5,
    )
    # The new revision runs the previous revision's task definition: the old version answers again.
    revision = ecs.describe_service_revisions(serviceRevisionArns=[rollback["targetServiceRevision"]["arn"]])
    assert revision["serviceRevisions"][0]["taskDefinition"] == original_td
    wait_for("dev to answer again", lambda: berth.https_get(svc["endpoint"], "/").header("x-demo-version") == "dev", timeout=30)
    browser.screenshot("service-rolled-back-finished")


def test_a_read_only_user_sees_the_page_and_is_refused_a_change(berth, browser, svc):
    iam = berth.client("iam")
    user = f"svc-viewer-{secrets.token_hex(3)}"
    iam.create_user(UserName=user)
    read_only = ["ecs:List*", "ecs:Describe*", "elasticloadbalancing:Describe*", "ec2:Describe*",
                 "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "logs:Describe*", "logs:FilterLogEvents",
                 "sts:GetCallerIdentity"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": read_only, "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    before = {t["HealthCheckPath"] for t in target_groups(berth, svc)}
    try:
        browser.sign_in(key["AccessKeyId"], key["SecretAccessKey"])
        browser.get(page(svc))
        browser.wait("section#resources form#edit-health-check")
        assert not browser.find_all(".error[role=alert]"), browser.text()[:1000]
        browser.fill("form#edit-health-check [name=health_check_path]", "/status/500")
        assert submit(browser, "form#edit-health-check button[type=submit]") == ""
        alert = browser.alert_text()
        assert "AccessDenied" in alert, alert
        assert {t["HealthCheckPath"] for t in target_groups(berth, svc)} == before
        browser.screenshot("service-read-only-refused")
    finally:
        browser.sign_in(*berth.credentials())


def test_stop_a_task_from_the_page(berth, browser, svc):
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    row = browser.wait("section#tasks tr.task")
    task_id = row.get_attribute("data-task")
    assert "Task stopped" in submit(browser, f"tr.task[data-task='{task_id}'] button.stop-task")
    arn = next(a for a in berth.task_arns(svc["name"], desired="STOPPED") if a.endswith(task_id))
    assert berth.describe_tasks([arn])[0]["desiredStatus"] == "STOPPED"
    wait_for("a replacement task", lambda: any(not a.endswith(task_id) for a in berth.task_arns(svc["name"])), timeout=60)
    berth.wait_status(svc["endpoint"], 200, "/ping", timeout=60)


def test_phone_width_has_no_horizontal_scroll_on_the_service_page(berth, browser, svc):
    browser.sign_in(*berth.credentials())
    browser.get(page(svc))
    browser.wait("section#resources")
    with browser.phone():
        browser.wait("section#charts svg")
        assert browser.no_horizontal_scroll()
        browser.screenshot("service-phone")
    assert len(browser.find_all("h1")) == 1
    unlabeled = browser.driver.execute_script(
        "return [...document.querySelectorAll('#service-page input:not([type=hidden])')]"
        ".filter(i => !i.id || !document.querySelector(`label[for='${i.id}']`)).map(i => i.name)"
    )
    assert unlabeled == [], unlabeled
