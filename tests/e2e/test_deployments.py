"""Safe deployments, end to end: the real binary, real Docker, boto3 and the AWS CLI, and a steady request loop
through the service's HTTPS endpoint (`traffic.py`) that records which version answered each request (the demo's
`x-demo-version` header).

One berth of its own with short bakes, and one Express service shared by the tests (each test starts by waiting
until the service has no unfinished deployment and reads the version it serves):
- canary 5% (AWS's value), canary bake 40 s: the deployment alarm (100×(4xx+5xx)/requests > 1 for 2 of 3 periods
  of 10 s, berth's preset) needs two breaching 10 s periods plus an evaluation to fire, ~20–30 s after the canary
  starts, so 40 s leaves it room while a good canary window still holds thousands of requests;
- final bake 15 s: long enough to see the 100% stage and its PAUSE hook, short enough for the CI budget.

What is proved (each test asserts on the requests it measured and on the deployment's own record):
1. a good update: zero failed requests, the new version's share ≈ canary % during the canary bake, then 100%;
   IN_PROGRESS → SUCCESSFUL through the stages; old tasks gone; the service events;
2. a bad update (new revision answers 500 on `/`, `/ping` healthy): the alarm rolls it back, errors only during
   the canary and at most ≈ the canary share, none after; rule weights exactly 100/0 on the old group;
3. a revision that cannot start (missing image, missing secret) fails fast with the reason, old version serving;
4. a user's rule for a second host answers 200 through a deployment and a rollback, its weights following them;
5. StopServiceDeployment (ROLLBACK) mid-bake shifts back at once; ContinueServiceDeployment promotes early;
6. kill -9 of the server mid-bake: traffic keeps flowing, the deployment resumes and ends, never two unfinished
   (and an update during a deployment supersedes it: STOPPED, naming the new one);
7. LINEAR and BLUE_GREEN (UpdateService through the AWS CLI) follow their steps, measured by the version share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berthlib import (
    DEMO_IMAGE,
    REGION,
    ROOT,
    BerthInstance,
    Ports,
    containers,
    pick_free_ports,
    restarted,
    unique,
    wait_for,
)
from elblib import elbv2, forward, free_priority, service_resources, wait_version
from traffic import Traffic, Window

CANARY_PERCENT = 5  # berth's default, AWS's value
CANARY_BAKE_SECS = 40
BAKE_SECS = 15
# How long new tasks may take to start and pass their health checks (berth checks a new target at once).
SCALE_UP_SECS = 30
UNFINISHED = ["PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"]
TERMINAL = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
# ECS's ServiceDeploymentLifecycleStage, in the order a deployment passes them.
STAGE_ORDER = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
]
# Margin around a stage change seen through the API: the poll that sees it may lag the change by one interval,
# and the proxy applies a new route table a moment after the rollout writes it.
MARGIN = 2.0


# ---------------------------------------------------------------------------------------------- the instance


@pytest.fixture(scope="module")
def berth(demo_image):
    """This module's own berth (short bakes); overrides the session's."""
    api, https, http_, internal = pick_free_ports(4)
    instance = BerthInstance(
        binary=Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth")),
        ports=Ports(api=api, https=https, http=http_, internal=internal),
        canary_bake_secs=CANARY_BAKE_SECS,
        bake_secs=BAKE_SECS,
    )
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        instance.remove_containers()
        log_dir = Path(os.environ.get("BERTH_E2E_LOG_DIR", ROOT / "target" / "e2e"))
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(instance.log_path, log_dir / "berth-deployments.log")
        except OSError:
            pass
        if os.environ.get("BERTH_E2E_KEEP") != "1":
            shutil.rmtree(instance.data_dir, ignore_errors=True)


@dataclass
class Svc:
    name: str
    arn: str
    endpoint: str


@pytest.fixture(scope="module")
def svc(berth) -> Svc:
    name = unique("dep")
    arn = berth.create_service(name, environment={"DEMO_VERSION": "v1"})["serviceArn"]
    try:
        endpoint = berth.wait_endpoint(arn)
        wait_version(berth, endpoint, "v1", timeout=60)
        yield Svc(name, arn, endpoint)
    finally:
        berth.best_effort_delete(arn)


# ---------------------------------------------------------------------------------------------- deployments


def deployments(berth, svc: Svc, status: list[str] | None = None) -> list[dict[str, Any]]:
    kw: dict[str, Any] = {"cluster": "default", "service": svc.name, "maxResults": 100}
    if status:
        kw["status"] = status
    return berth.ecs().list_service_deployments(**kw)["serviceDeployments"]


def describe(berth, arn: str) -> dict[str, Any]:
    out = berth.ecs().describe_service_deployments(serviceDeploymentArns=[arn])
    assert not out.get("failures"), out["failures"]
    return out["serviceDeployments"][0]


def settle(berth, svc: Svc, timeout: float = 120) -> str:
    """Waits until the service has no unfinished deployment; returns the one version it serves."""
    deployments(berth, svc, UNFINISHED)  # an API error fails the test at once, not after the wait
    wait_for(
        "the service to have no unfinished deployment",
        lambda: not deployments(berth, svc, UNFINISHED),
        timeout,
        interval=0.5,
    )
    versions = {berth.https_get(svc.endpoint, "/").header("x-demo-version") for _ in range(20)}
    assert len(versions) == 1, f"a settled service answers with one version, not {versions}"
    return versions.pop()


def deploy(berth, svc: Svc, version: str, fail_rate: float | None = None, **container: Any) -> str:
    """UpdateExpressGatewayService to a new revision answering `version`; returns the deployment it began."""
    before = {d["serviceDeploymentArn"] for d in deployments(berth, svc)}
    env = [{"name": "DEMO_VERSION", "value": version}]
    if fail_rate is not None:
        env.append({"name": "DEMO_FAIL_RATE", "value": str(fail_rate)})
    primary = {"image": DEMO_IMAGE, "environment": env, **container}
    berth.ecs().update_express_gateway_service(serviceArn=svc.arn, primaryContainer=primary)
    new = wait_for(
        "the update's deployment to be listed",
        lambda: [d["serviceDeploymentArn"] for d in deployments(berth, svc) if d["serviceDeploymentArn"] not in before],
        10,
    )
    assert len(new) == 1, f"one update began {len(new)} deployments: {new}"
    return new[0]


@dataclass(frozen=True)
class Obs:
    """One DescribeServiceDeployments answer, as the watcher saw it."""

    t: float
    status: str
    stage: str | None
    weight: float | None  # the target revision's requested production traffic weight
    test_weight: float | None
    hook: dict[str, Any] | None  # the hook awaiting action, if any
    raw: dict[str, Any]


class Watch:
    """Polls DescribeServiceDeployments for one deployment every `interval` seconds in a thread (bounded), so a
    test sees the stages it passes and when (on the traffic's clock). Errors (a restarting server) are skipped."""

    def __init__(self, berth, arn: str, interval: float = 0.3, max_seconds: float = 240):
        self.berth, self.arn, self.interval, self.max_seconds = berth, arn, interval, max_seconds
        self.obs: list[Obs] = []
        self.unfinished_counts: list[int] = []
        self.svc: Svc | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        client = self.berth.ecs(max_attempts=1, timeout=5)
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                d = client.describe_service_deployments(serviceDeploymentArns=[self.arn])["serviceDeployments"][0]
                hook = next(
                    (h for h in d.get("lifecycleHookDetails") or [] if h.get("status") == "AWAITING_ACTION"), None
                )
                target = d.get("targetServiceRevision") or {}
                obs = Obs(
                    t,
                    d["status"],
                    d.get("lifecycleStage"),
                    target.get("requestedProductionTrafficWeight"),
                    target.get("requestedTestTrafficWeight"),
                    hook,
                    d,
                )
                with self._lock:
                    self.obs.append(obs)
                if self.svc is not None:
                    unfinished = client.list_service_deployments(
                        cluster="default", service=self.svc.name, status=UNFINISHED
                    )["serviceDeployments"]
                    with self._lock:
                        self.unfinished_counts.append(len(unfinished))
            except Exception:  # noqa: BLE001 - the server may be restarting; the next poll tries again
                pass
            self._stop.wait(self.interval)

    def snapshot(self) -> list[Obs]:
        with self._lock:
            return list(self.obs)

    def first(self, pred) -> Obs | None:
        return next((o for o in self.snapshot() if pred(o)), None)

    def before(self, obs: Obs) -> Obs:
        """The observation just before `obs` (the last one that did not see its change yet)."""
        snap = self.snapshot()
        i = snap.index(obs)
        return snap[i - 1] if i > 0 else obs

    def wait(self, what: str, pred, timeout: float) -> Obs:
        return wait_for(what, lambda: self.first(pred), timeout, interval=0.1)

    def statuses(self) -> list[str]:
        out: list[str] = []
        for o in self.snapshot():
            if not out or out[-1] != o.status:
                out.append(o.status)
        return out

    def stages(self) -> list[str]:
        out: list[str] = []
        for o in self.snapshot():
            if o.stage and (not out or out[-1] != o.stage):
                out.append(o.stage)
        return out

    def describe(self) -> str:
        lines = []
        last = None
        for o in self.snapshot():
            key = (o.status, o.stage, o.weight, o.test_weight, (o.hook or {}).get("hookId"))
            if key != last:
                lines.append(f"  {o.t:10.1f} {key}")
                last = key
        return "\n".join(lines)


def awaiting(stage: str):
    """A predicate: the deployment is IN_PROGRESS at lifecycle `stage` with a hook awaiting action."""
    return lambda o: o.status == "IN_PROGRESS" and o.hook is not None and o.stage == stage


# The canary bake (LINEAR: a step's bake) shows as a PAUSE hook while the stage is PRODUCTION_TRAFFIC_SHIFT (its
# hook stage is PRE_PRODUCTION_TRAFFIC_SHIFT, before the next shift); the final bake at BAKE_TIME (hook stage
# POST_PRODUCTION_TRAFFIC_SHIFT); BLUE_GREEN's user pause after test traffic at POST_TEST_TRAFFIC_SHIFT.
IN_CANARY_BAKE = awaiting("PRODUCTION_TRAFFIC_SHIFT")
IN_FINAL_BAKE = awaiting("BAKE_TIME")
IN_TEST_PAUSE = awaiting("POST_TEST_TRAFFIC_SHIFT")


def terminal(o: Obs) -> bool:
    return o.status in TERMINAL


def full_shift(o: Obs) -> bool:
    return o.weight is not None and o.weight >= 100


def canary_measured(watch: Watch, traffic: Traffic, n: int) -> Obs:
    """Waits for the canary bake, then until `n` requests were sent in it (past the margin); returns the first
    observation of the canary bake."""
    canary = watch.wait("the canary bake", IN_CANARY_BAKE, SCALE_UP_SECS)
    traffic.wait_requests(n, since=canary.t + MARGIN)
    return canary


def hook_id(o: Obs) -> str:
    assert o.hook is not None
    return o.hook["hookId"]


def continue_hook(berth, arn: str, hook: str, action: str = "CONTINUE") -> None:
    berth.ecs().continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action=action)


def rule_weights(client, rule_arn: str) -> dict[str, int]:
    rule = client.describe_rules(RuleArns=[rule_arn])["Rules"][0]
    groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    return {g["TargetGroupArn"]: g["Weight"] for g in groups}


def revision_labels(svc: Svc) -> set[str]:
    out = set()
    for c in containers(f"berth.service={svc.arn}"):
        for pair in c.get("Labels", "").split(","):
            k, _, v = pair.partition("=")
            if k == "berth.revision":
                out.add(v)
    return out


def events_since(berth, svc: Svc, since_epoch: float) -> list[str]:
    service = berth.ecs().describe_services(cluster="default", services=[svc.name])["services"][0]
    return [e["message"] for e in service.get("events", []) if e["createdAt"].timestamp() >= since_epoch - 1]


def context(traffic: Traffic, watch: Watch) -> str:
    """What a failure message needs: the traffic per 5 s, the deployment as polled, and this module's berth log
    (conftest's failure hook shows the session's berth, not this one)."""
    return (
        f"\ntraffic per 5 s:\n{traffic.timeline()}\ndeployment as polled:\n{watch.describe()}"
        f"\nberth log tail:\n{traffic.berth.log_tail(30)}"
    )


def no_failures(traffic: Traffic, what: str) -> None:
    failures = traffic.failures()
    assert not failures, (
        f"{len(failures)} of {len(traffic.samples)} requests to {what} failed; first: {failures[:5]}"
        f"\n{traffic.timeline()}"
    )


def measured(test: str, **numbers: Any) -> None:
    """One line of what a test measured (shown with `pytest -s`; the numbers in docs/deployments.md come from it)."""
    shown = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in numbers.items())
    print(f"\nMEASURED {test}: {shown}")


def share_between(window: Window, version: str, lo: float, hi: float, min_requests: int, ctx: str) -> None:
    assert window.n >= min_requests, f"only {window.n} requests in {window.describe()}{ctx}"
    share = window.share(version)
    assert lo <= share <= hi, f"{version} answered {share:.1f}% (expected {lo}–{hi}%) in {window.describe()}{ctx}"


# ---------------------------------------------------------------------------------------------- 1. a good update


def test_good_update_goes_canary_then_full_with_zero_failed_requests(berth, svc):
    old = settle(berth, svc)
    old_revisions = revision_labels(svc)
    new = unique("good")
    since = time.time()
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        arn = deploy(berth, svc, new)
        with Watch(berth, arn) as watch:
            watch.wait("the canary bake", IN_CANARY_BAKE, SCALE_UP_SECS)
            # while both revisions serve, both are active configurations, and ECS's service shows two deployments
            during_express = berth.describe_service(svc.arn)
            during_ecs = berth.ecs().describe_services(cluster="default", services=[svc.name])["services"][0]
            watch.wait("the deployment to end", terminal, CANARY_BAKE_SECS + BAKE_SECS + 60)
        traffic.wait_requests(100)
    ctx = context(traffic, watch)
    after_express = berth.describe_service(svc.arn)
    after_ecs = berth.ecs().describe_services(cluster="default", services=[svc.name])["services"][0]

    canary = watch.first(IN_CANARY_BAKE)
    full = watch.first(full_shift)
    end = watch.first(terminal)
    assert canary is not None and full is not None and end is not None, f"stages missing:{ctx}"
    assert canary.weight == CANARY_PERCENT, canary.raw
    assert canary.hook["targetType"] == "PAUSE" and canary.hook["timeoutAction"] == "CONTINUE", canary.hook

    # the canary window: ≈ canary % from the new version, the rest from the old one
    window = traffic.window(canary.t + MARGIN, watch.before(full).t - MARGIN)
    share_between(window, new, 2, 12, 400, ctx)
    assert set(window.versions) == {old, new}, window.describe()
    # the canary bake was held (not skipped), then 100% moved to the new version
    assert full.t - canary.t >= CANARY_BAKE_SECS - MARGIN, ctx
    after = traffic.window(full.t + MARGIN, None)
    share_between(after, new, 100, 100, 200, ctx)
    # the final bake was held too
    assert end.t - full.t >= BAKE_SECS - MARGIN, ctx
    no_failures(traffic, svc.endpoint)
    measured(
        "good update",
        requests=len(traffic.samples),
        failed=len(traffic.failures()),
        canary_window_requests=window.n,
        canary_share=window.share(new),
        canary_bake_secs=full.t - canary.t,
        after_share=after.share(new),
        final_bake_secs=end.t - full.t,
        update_to_canary_secs=canary.t - traffic.window().t0,
    )

    # the deployment's record: IN_PROGRESS → SUCCESSFUL through the stages, in ECS's order
    assert [s for s in watch.statuses() if s != "PENDING"] == ["IN_PROGRESS", "SUCCESSFUL"], ctx
    # (each production step passes PRE_PRODUCTION_TRAFFIC_SHIFT → PRODUCTION_TRAFFIC_SHIFT again)
    stages = [s if s != "PRE_PRODUCTION_TRAFFIC_SHIFT" else "PRODUCTION_TRAFFIC_SHIFT" for s in watch.stages()]
    assert stages == sorted(stages, key=STAGE_ORDER.index), f"stages out of order: {watch.stages()}"
    assert {"PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"} <= set(stages), watch.stages()
    assert stages[-1] == "CLEAN_UP", watch.stages()
    final = describe(berth, arn)
    assert final["status"] == "SUCCESSFUL" and final.get("finishedAt"), final
    assert final["targetServiceRevision"]["runningTaskCount"] >= 1, final["targetServiceRevision"]
    assert final["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100, final
    sources = final.get("sourceServiceRevisions") or []
    assert len(sources) == 1 and sources[0]["runningTaskCount"] == 0, sources
    assert final["alarms"]["alarmNames"] == [f"default-{svc.name}-deployment-rollback"], final["alarms"]
    assert not final["alarms"].get("triggeredAlarmNames"), final["alarms"]

    # both revisions while both served, one after; the legacy deployments[] of DescribeServices likewise
    assert len(during_express["activeConfigurations"]) == 2, during_express["activeConfigurations"]
    assert len(after_express["activeConfigurations"]) == 1, after_express["activeConfigurations"]
    primary = [d for d in during_ecs["deployments"] if d["status"] == "PRIMARY"]
    assert len(during_ecs["deployments"]) == 2 and len(primary) == 1, during_ecs["deployments"]
    assert primary[0]["rolloutState"] == "IN_PROGRESS", primary
    assert during_ecs["currentServiceDeployment"] == arn, during_ecs.get("currentServiceDeployment")
    assert [(d["status"], d["rolloutState"]) for d in after_ecs["deployments"]] == [("PRIMARY", "COMPLETED")]

    # the old tasks are gone: only the new revision's containers run
    now_revisions = revision_labels(svc)
    assert now_revisions and not (now_revisions & old_revisions), (old_revisions, now_revisions)

    # DescribeServices tells the story
    events = events_since(berth, svc, since)
    for pattern in (r"has started \d+ tasks", r"shift", r"deployment .*completed", r"has reached a steady state"):
        assert any(re.search(pattern, e) for e in events), f"no event matches {pattern!r}: {events}"


# ---------------------------------------------------------------------------------------------- 2. a bad update


def test_bad_update_is_rolled_back_by_the_alarm(berth, svc):
    old = settle(berth, svc)
    client = elbv2(berth)
    before = service_resources(client, svc.endpoint)
    alarm = f"default-{svc.name}-deployment-rollback"
    bad = unique("bad")
    since = time.time()
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        arn = deploy(berth, svc, bad, fail_rate=1.0)
        with Watch(berth, arn) as watch:
            end = watch.wait("the deployment to end", terminal, SCALE_UP_SECS + CANARY_BAKE_SECS + 60)
        traffic.wait_requests(300, since=end.t + MARGIN)
    ctx = context(traffic, watch)

    canary = watch.first(IN_CANARY_BAKE)
    rollback = watch.first(lambda o: o.status.startswith("ROLLBACK"))
    assert canary is not None and rollback is not None and end is not None, f"stages missing:{ctx}"
    # rolled back by the alarm within the canary bake: 100% never reached the bad version
    assert watch.first(full_shift) is None, ctx
    assert rollback.t - canary.t < CANARY_BAKE_SECS, ctx

    final = describe(berth, arn)
    assert final["status"] == "ROLLBACK_SUCCESSFUL", final
    assert alarm in final["rollback"]["reason"], final["rollback"]
    assert final["rollback"]["serviceRevisionArn"] == final["sourceServiceRevisions"][0]["arn"], final
    assert final["alarms"]["triggeredAlarmNames"] == [alarm], final["alarms"]
    assert final["alarms"]["status"] == "TRIGGERED", final["alarms"]
    assert final["targetServiceRevision"]["runningTaskCount"] == 0, final["targetServiceRevision"]
    cw = berth.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert [a["AlarmName"] for a in cw] == [alarm], cw

    # what the clients saw: errors (the bad version's 500s, nothing else) only while the canary ran, at most
    # ≈ the canary share of the requests; none after the rollback
    failures = traffic.failures()
    assert failures, f"the bad canary never answered:{ctx}"
    assert {(f.status, f.version) for f in failures} == {(500, bad)}, failures[:5]
    assert failures[0].t >= watch.before(canary).t - MARGIN, ctx
    assert failures[-1].t <= rollback.t + MARGIN, ctx
    during = traffic.window(canary.t, rollback.t)
    assert during.n >= 200, during.describe()
    assert 100.0 * len(during.failures) / during.n <= 12, f"{len(during.failures)} errors in {during.describe()}"
    after = traffic.window(end.t + MARGIN, None)
    share_between(after, old, 100, 100, 200, ctx)
    assert not after.failures, after.describe()
    measured(
        "bad update",
        requests=len(traffic.samples),
        errors=len(failures),
        canary_requests=during.n,
        error_share=100.0 * len(during.failures) / during.n,
        canary_to_rollback_secs=rollback.t - canary.t,
        after_requests=after.n,
        after_errors=len(after.failures),
    )

    # the listener rule: exactly 100/0 towards the old revision's group
    rules = berth.aws("elbv2", "describe-rules", "--rule-arns", before["rule"]["RuleArn"])["Rules"]
    groups = rules[0]["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in groups} == {before["live"]: 100, before["idle"]: 0}, groups

    events = events_since(berth, svc, since)
    assert any(re.search(r"rolling back", e) and alarm in e for e in events), events


# ---------------------------------------------------------------------------------------------- 3. cannot start


def broken_container(berth, kind: str) -> dict[str, Any]:
    if kind == "missing-image":
        return {"image": "berth-e2e-does-not-exist:v0"}
    missing = f"arn:aws:secretsmanager:{REGION}:{berth.account_id}:secret:berth-e2e-does-not-exist"
    return {"secrets": [{"name": "X", "valueFrom": missing}]}


@pytest.mark.parametrize(
    "kind, reason",
    [("missing-image", "CannotPullContainerError"), ("missing-secret", "ResourceInitializationError")],
)
def test_a_revision_that_cannot_start_fails_fast(berth, svc, kind, reason):
    old = settle(berth, svc)
    container = broken_container(berth, kind)
    new = unique("broken")
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        t0 = traffic.now()
        arn = deploy(berth, svc, new, **container)
        with Watch(berth, arn) as watch:
            watch.wait("the deployment to end", terminal, SCALE_UP_SECS + CANARY_BAKE_SECS + BAKE_SECS + 30)
        traffic.wait_requests(200)
    ctx = context(traffic, watch)
    end = watch.first(terminal)
    assert end is not None, ctx
    # fast: well before the canary bake would even have ended (it never began)
    assert end.t - t0 < CANARY_BAKE_SECS / 2, f"took {end.t - t0:.1f}s{ctx}"
    assert watch.first(lambda o: o.weight is not None and o.weight > 0) is None, ctx
    final = describe(berth, arn)
    assert final["status"] == "ROLLBACK_SUCCESSFUL", final
    assert reason in (final.get("statusReason") or ""), final.get("statusReason")
    breaker = final["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["failureCount"] >= breaker["threshold"] >= 1, breaker
    assert final["targetServiceRevision"]["runningTaskCount"] == 0, final["targetServiceRevision"]
    # the old version kept serving every request
    no_failures(traffic, svc.endpoint)
    share_between(traffic.window(), old, 100, 100, 200, ctx)
    measured(f"cannot start ({kind})", update_to_end_secs=end.t - t0, requests=len(traffic.samples), failed=0)


# ---------------------------------------------------------------------------------------------- 4. a user's rule


def test_a_user_rule_for_a_second_host_answers_through_a_deployment_and_a_rollback(berth, svc):
    old = settle(berth, svc)
    client = elbv2(berth)
    res = service_resources(client, svc.endpoint)
    domain = f"{unique('custom')}.example.test"
    rule = client.create_rule(
        ListenerArn=res["listener"],
        Priority=free_priority(client, res["listener"], 100),
        Conditions=[{"Field": "host-header", "Values": [domain]}],
        Actions=forward((res["live"], 1)),
    )["Rules"][0]["RuleArn"]
    try:
        wait_version(berth, domain, old, timeout=10)
        good, rolled = unique("good"), unique("rolled")
        with Traffic(berth, domain, workers=3, pause=0.05, check_hostname=False) as user:
            user.wait_requests(50)
            # a deployment, promoted through both bakes
            arn = deploy(berth, svc, good)
            with Watch(berth, arn) as w1:
                canary = canary_measured(w1, user, 300)
                canary_weights = rule_weights(client, rule)
                t_continue = user.now()
                continue_hook(berth, arn, hook_id(canary))
                final_bake = w1.wait("the final bake", IN_FINAL_BAKE, 20)
                user.wait_requests(200, since=final_bake.t + MARGIN)
                continue_hook(berth, arn, hook_id(final_bake))
                w1.wait("the deployment to end", terminal, 30)
            deployed_weights = rule_weights(client, rule)
            t_deployed = user.now()
            user.wait_requests(300, since=t_deployed + MARGIN)
            # a rollback
            arn2 = deploy(berth, svc, rolled)
            with Watch(berth, arn2) as w2:
                canary2 = canary_measured(w2, user, 300)
                berth.ecs().stop_service_deployment(serviceDeploymentArn=arn2, stopType="ROLLBACK")
                w2.wait("the rollback to end", terminal, 30)
            t_rolled = user.now()
            user.wait_requests(200, since=t_rolled + MARGIN)
        rolled_weights = rule_weights(client, rule)
    finally:
        client.delete_rule(RuleArn=rule)
    ctx = context(user, w1) + "\nrollback:\n" + w2.describe()

    no_failures(user, domain)
    assert w1.first(terminal).status == "SUCCESSFUL", ctx
    assert w2.first(terminal).status == "ROLLBACK_SUCCESSFUL", ctx
    # the rule followed the deployment's weights: canary, then all on the new group, then (after the rollback)
    # exactly 100/0 on the group that serves
    assert canary_weights == {res["live"]: 100 - CANARY_PERCENT, res["idle"]: CANARY_PERCENT}, canary_weights
    assert deployed_weights == {res["idle"]: 100, res["live"]: 0}, deployed_weights
    assert rolled_weights == {res["idle"]: 100, res["live"]: 0}, rolled_weights
    # and so did its traffic
    share_between(user.window(canary.t + MARGIN, t_continue), good, 1, 15, 250, ctx)
    share_between(user.window(t_deployed + MARGIN, canary2.t - MARGIN), good, 100, 100, 100, ctx)
    share_between(user.window(t_rolled + MARGIN, None), good, 100, 100, 100, ctx)
    assert user.window(canary2.t + MARGIN, t_rolled).versions[rolled] >= 1, ctx
    canary_share = user.window(canary.t + MARGIN, t_continue).share(good)
    measured("user rule", requests=len(user.samples), failed=0, canary_share=canary_share)


# ---------------------------------------------------------------------------------------------- 5. stop, continue


def test_stop_rolls_back_at_once_and_continue_promotes_early(berth, svc):
    old = settle(berth, svc)
    stopped, promoted = unique("stopped"), unique("promoted")
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        # StopServiceDeployment ROLLBACK in the canary bake
        arn_a = deploy(berth, svc, stopped)
        with Watch(berth, arn_a) as wa:
            canary_a = canary_measured(wa, traffic, 400)
            t_stop = traffic.now()
            berth.ecs().stop_service_deployment(serviceDeploymentArn=arn_a, stopType="ROLLBACK")
            wa.wait("the rollback to end", terminal, 30)
        traffic.wait_requests(300, since=t_stop + MARGIN)
        t_b = traffic.now()
        # ContinueServiceDeployment CONTINUE on the canary bake's hook
        arn_b = deploy(berth, svc, promoted)
        with Watch(berth, arn_b) as wb:
            canary_b = canary_measured(wb, traffic, 300)
            t_continue = traffic.now()
            continue_hook(berth, arn_b, hook_id(canary_b))
            wb.wait("the final bake", IN_FINAL_BAKE, 20)
            wb.wait("the deployment to end", terminal, BAKE_SECS + 30)
        traffic.wait_requests(100)
    ctx_a, ctx_b = context(traffic, wa), context(traffic, wb)
    no_failures(traffic, svc.endpoint)

    # Stop: the canary ran, and traffic returned to the old version at once
    share_between(traffic.window(canary_a.t + MARGIN, t_stop), stopped, 1, 15, 400, ctx_a)
    last_stopped = max(s.t for s in traffic.samples if s.version == stopped)
    end_a = wa.first(terminal)
    share_between(traffic.window(t_stop + MARGIN, t_b), old, 100, 100, 200, ctx_a)
    final_a = describe(berth, arn_a)
    assert final_a["status"] == "ROLLBACK_SUCCESSFUL", final_a
    assert "StopServiceDeployment" in final_a["rollback"]["reason"], final_a["rollback"]
    assert final_a["rollback"]["serviceRevisionArn"] == final_a["sourceServiceRevisions"][0]["arn"], final_a
    # long before the canary bake would have ended
    assert end_a.t < canary_a.t + CANARY_BAKE_SECS / 2, ctx_a

    # Continue: 100% at once, long before the canary bake would have ended
    full_b = wb.first(full_shift)
    assert full_b is not None, ctx_b
    assert full_b.t < canary_b.t + CANARY_BAKE_SECS / 2, ctx_b
    share_between(traffic.window(t_continue + MARGIN, None), promoted, 100, 100, 300, ctx_b)
    final_b = describe(berth, arn_b)
    assert final_b["status"] == "SUCCESSFUL", final_b
    done = {h["hookId"]: h["status"] for h in final_b.get("lifecycleHookDetails") or []}
    assert done.get(hook_id(canary_b)) == "SUCCEEDED", final_b.get("lifecycleHookDetails")
    measured(
        "stop and continue",
        requests=len(traffic.samples),
        failed=0,
        stop_to_last_new_answer_secs=last_stopped - t_stop,
        stop_to_rollback_successful_secs=end_a.t - t_stop,
        continue_to_100_secs=full_b.t - t_continue,
    )


# ---------------------------------------------------------------------------------------------- supersede


def test_an_update_during_a_deployment_supersedes_it(berth, svc):
    old = settle(berth, svc)
    first, second = unique("first"), unique("second")
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        arn_a = deploy(berth, svc, first)
        with Watch(berth, arn_a) as wa:
            canary_a = canary_measured(wa, traffic, 300)
            t_second = traffic.now()
            arn_b = deploy(berth, svc, second)
            wb = Watch(berth, arn_b)
            wb.svc = svc
            with wb:
                canary_b = canary_measured(wb, traffic, 300)
                t_continue = traffic.now()
                continue_hook(berth, arn_b, hook_id(canary_b))
                final_bake = wb.wait("the final bake", IN_FINAL_BAKE, 20)
                continue_hook(berth, arn_b, hook_id(final_bake))
                end_b = wb.wait("the second deployment to end", terminal, 30)
        traffic.wait_requests(200, since=end_b.t + MARGIN)
    ctx = context(traffic, wb) + "\nfirst:\n" + wa.describe()
    no_failures(traffic, svc.endpoint)

    # the first ended STOPPED, naming the second; its revision got no traffic once the second began
    final_a = describe(berth, arn_a)
    assert final_a["status"] == "STOPPED", final_a
    assert arn_b.rsplit("/", 1)[-1] in (final_a.get("statusReason") or ""), final_a.get("statusReason")
    assert final_a["targetServiceRevision"]["runningTaskCount"] == 0, final_a["targetServiceRevision"]
    assert traffic.window(canary_a.t + MARGIN, t_second).versions[first] >= 1, ctx
    assert traffic.window(t_second + MARGIN, None).versions[first] == 0, ctx
    # the second deployed from the revision that served (the first never had all traffic): a canary of the
    # old version's traffic, then all of it
    final_b = describe(berth, arn_b)
    assert final_b["status"] == "SUCCESSFUL", final_b
    assert [s["arn"] for s in final_b["sourceServiceRevisions"]] == [
        s["arn"] for s in final_a["sourceServiceRevisions"]
    ], (final_a["sourceServiceRevisions"], final_b["sourceServiceRevisions"])
    share_between(traffic.window(canary_b.t + MARGIN, t_continue), second, 1, 15, 250, ctx)
    assert set(traffic.window(canary_b.t + MARGIN, t_continue).versions) == {old, second}, ctx
    share_between(traffic.window(end_b.t + MARGIN, None), second, 100, 100, 150, ctx)
    # never two unfinished deployments
    assert wb.unfinished_counts and max(wb.unfinished_counts) == 1, wb.unfinished_counts
    assert deployments(berth, svc, UNFINISHED) == []


# ---------------------------------------------------------------------------------------------- 6. kill -9


# The server stays down longer than the rollout's largest pass-to-pass gap it still counts as watched (10 s), so
# the restarted server must not count the outage as baked: the bake's hook expires that much later.
OUTAGE_SECS = 13


def test_kill_9_mid_bake_resumes_and_traffic_keeps_flowing(berth, svc):
    settle(berth, svc)
    count_before = len(deployments(berth, svc))
    new = unique("sturdy")
    supervisor = berth.proc.pid
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        arn = deploy(berth, svc, new)
        watch = Watch(berth, arn)
        watch.svc = svc
        with watch:
            canary = canary_measured(watch, traffic, 200)
            before_kill = describe(berth, arn)
            old_pid = berth.pid_of("server")
            # kill -9 the server; hold its supervisor (`berth up`) for the outage so the restart comes after it
            os.kill(supervisor, signal.SIGSTOP)
            try:
                t_kill = traffic.now()
                os.kill(old_pid, signal.SIGKILL)
                time.sleep(OUTAGE_SECS)
            finally:
                t_cont = traffic.now()
                os.kill(supervisor, signal.SIGCONT)
            wait_for("the supervisor to restart the server", lambda: restarted(berth, "server", old_pid), 30, 0.1)
            wait_for("the restarted API to answer", lambda: berth.ecs(max_attempts=1).list_clusters(), 30)
            t_back = traffic.now()
            resumed = watch.wait("the canary bake after the restart", lambda o: o.t > t_back and IN_CANARY_BAKE(o), 10)
            traffic.wait_requests(300, since=t_back)
            after_restart = describe(berth, arn)
            unfinished = [d["serviceDeploymentArn"] for d in deployments(berth, svc, UNFINISHED)]
            continue_hook(berth, arn, hook_id(resumed))
            watch.wait("the deployment to end", terminal, BAKE_SECS + 40)
        traffic.wait_requests(100)
    ctx = context(traffic, watch)

    # the clients saw nothing: no failure before, during or after the outage; the canary split held throughout
    no_failures(traffic, svc.endpoint)
    share_between(traffic.window(t_kill, t_back + 5), new, 1, 15, 300, ctx)
    # the same deployment carried on where it was: in its canary bake, same hook, same weights
    assert after_restart["status"] == "IN_PROGRESS", after_restart
    hook_before = next(h for h in before_kill["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION")
    hook_after = next(h for h in after_restart["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION")
    assert hook_after["hookId"] == hook_before["hookId"] == hook_id(resumed), (hook_before, hook_after)
    assert after_restart["targetServiceRevision"]["requestedProductionTrafficWeight"] == CANARY_PERCENT
    assert unfinished == [arn], unfinished
    # the bake clock is honest: the time nobody watched is not counted, the bake ends that much later
    shifted = (hook_after["expiresAt"] - hook_before["expiresAt"]).total_seconds()
    assert shifted >= (t_cont - t_kill) - 1, f"the bake's end moved {shifted:.1f}s for a {t_cont - t_kill:.1f}s outage"
    assert shifted <= (t_back - t_kill) + 5, f"the bake's end moved {shifted:.1f}s for a {t_back - t_kill:.1f}s outage"
    assert any("bake clock did not count" in e for e in events_since(berth, svc, time.time() - 120)), "no event"
    # and it ended: SUCCESSFUL after the final bake, all on the new version; never two unfinished deployments
    end = watch.first(terminal)
    full = watch.first(full_shift)
    assert end is not None and full is not None, ctx
    assert describe(berth, arn)["status"] == "SUCCESSFUL", ctx
    assert end.t - full.t >= BAKE_SECS - MARGIN, ctx
    share_between(traffic.window(full.t + MARGIN, None), new, 100, 100, 200, ctx)
    assert watch.unfinished_counts and max(watch.unfinished_counts) == 1, watch.unfinished_counts
    assert deployments(berth, svc, UNFINISHED) == []
    assert len(deployments(berth, svc)) == count_before + 1
    outage = traffic.window(t_kill, t_back)
    measured(
        "kill -9",
        requests=len(traffic.samples),
        failed=0,
        outage_secs=t_back - t_kill,
        outage_requests=outage.n,
        outage_share=outage.share(new),
        bake_end_moved_secs=shifted,
    )


# ---------------------------------------------------------------------------------------------- 7. LINEAR, BLUE_GREEN


def cli_update_service(berth, svc: Svc, *args: str) -> dict[str, Any]:
    return berth.aws("ecs", "update-service", "--cluster", "default", "--service", svc.name, *args)["service"]


def cli_describe(berth, arn: str) -> dict[str, Any]:
    out = berth.aws("ecs", "describe-service-deployments", "--service-deployment-arns", arn)
    assert not out.get("failures"), out
    return out["serviceDeployments"][0]


def test_linear_follows_its_steps(berth, svc):
    old = settle(berth, svc)
    # Step bakes are whole minutes in the model; each shows as a PAUSE hook the test continues once it has
    # measured the step's split (a minute per step would not fit the CI budget).
    config = {
        "strategy": "LINEAR",
        "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1},
        "bakeTimeInMinutes": 0,
    }
    service = cli_update_service(berth, svc, "--deployment-configuration", json.dumps(config))
    assert service["deploymentConfiguration"]["strategy"] == "LINEAR", service["deploymentConfiguration"]
    new = unique("linear")
    steps: list[tuple[float, float, int]] = []
    with Traffic(berth, svc.endpoint, workers=4, pause=0.05) as traffic:
        traffic.wait_requests(50)
        arn = deploy(berth, svc, new)
        with Watch(berth, arn) as watch:
            seen: set[str] = set()
            for _ in range(3):
                # each step bakes as a PAUSE hook; measure the split, then promote to the next step
                step = watch.wait(
                    "the next step's bake",
                    lambda o: IN_CANARY_BAKE(o) and hook_id(o) not in seen,
                    SCALE_UP_SECS,
                )
                seen.add(hook_id(step))
                t0 = traffic.now() + MARGIN
                traffic.wait_requests(400, since=t0)
                window = traffic.window(t0, traffic.now())
                steps.append((step.weight, window.share(new), window.n))
                continue_hook(berth, arn, hook_id(step))
            watch.wait("the deployment to end", terminal, 30)
        full = watch.first(full_shift)
        assert full is not None, context(traffic, watch)
        traffic.wait_requests(300, since=full.t + MARGIN)
    ctx = context(traffic, watch)
    no_failures(traffic, svc.endpoint)
    assert [w for w, _, _ in steps] == [25, 50, 75], f"{steps}{ctx}"
    for weight, share, n in steps:
        assert n >= 300 and abs(share - weight) <= 10, f"step {weight}%: measured {share:.1f}% of {n}{ctx}"
    measured("linear", steps=[(w, round(sh, 1), n) for w, sh, n in steps], requests=len(traffic.samples), failed=0)
    share_between(traffic.window(full.t + MARGIN, None), new, 100, 100, 200, ctx)
    final = cli_describe(berth, arn)
    assert final["status"] == "SUCCESSFUL", final
    assert final["deploymentConfiguration"]["strategy"] == "LINEAR", final["deploymentConfiguration"]


def test_blue_green_shows_the_test_host_the_new_version_first(berth, svc):
    old = settle(berth, svc)
    client = elbv2(berth)
    res = service_resources(client, svc.endpoint)
    test_host = f"{unique('test')}.example.test"
    test_rule = client.create_rule(
        ListenerArn=res["listener"],
        Priority=free_priority(client, res["listener"], 150),
        Conditions=[{"Field": "host-header", "Values": [test_host]}],
        Actions=forward((res["live"], 100), (res["idle"], 0)),
    )["Rules"][0]["RuleArn"]
    try:
        wait_version(berth, test_host, old, timeout=10)
        lb = berth.ecs().describe_services(cluster="default", services=[svc.name])["services"][0]["loadBalancers"][0]
        lb["advancedConfiguration"]["testListenerRule"] = test_rule
        config = {
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": 0,
            # a pause after test traffic moved: production still on blue, the test host on green
            "lifecycleHooks": [
                {
                    "targetType": "PAUSE",
                    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                    "timeoutConfiguration": {"timeoutInMinutes": 2, "action": "CONTINUE"},
                }
            ],
        }
        service = cli_update_service(
            berth, svc, "--deployment-configuration", json.dumps(config), "--load-balancers", json.dumps([lb])
        )
        assert service["deploymentConfiguration"]["strategy"] == "BLUE_GREEN", service["deploymentConfiguration"]
        new = unique("green")
        with Traffic(berth, svc.endpoint, workers=3, pause=0.05) as prod, Traffic(
            berth, test_host, workers=2, pause=0.05, check_hostname=False
        ) as test:
            prod.wait_requests(50)
            arn = deploy(berth, svc, new)
            with Watch(berth, arn) as watch:
                pause = watch.wait("the test-traffic pause", IN_TEST_PAUSE, SCALE_UP_SECS)
                t0 = prod.now() + MARGIN
                prod.wait_requests(300, since=t0)
                test.wait_requests(200, since=t0)
                t1 = prod.now()
                continue_hook(berth, arn, hook_id(pause))
                watch.wait("the deployment to end", terminal, 30)
            full = watch.first(full_shift)
            assert full is not None, context(prod, watch)
            prod.wait_requests(250, since=full.t + MARGIN)
        test_weights = rule_weights(client, test_rule)
    finally:
        client.delete_rule(RuleArn=test_rule)
    ctx = context(prod, watch)
    no_failures(prod, svc.endpoint)
    no_failures(test, test_host)
    # while paused: the test host sees green only, production blue only
    share_between(test.window(t0, t1), new, 100, 100, 150, ctx)
    share_between(prod.window(t0, t1), old, 100, 100, 250, ctx)
    assert pause.test_weight == 100 and pause.weight == 0, pause.raw
    # then production moves all at once
    assert full.t > t1, ctx
    share_between(prod.window(full.t + MARGIN, None), new, 100, 100, 150, ctx)
    measured(
        "blue/green",
        paused_test_share=test.window(t0, t1).share(new),
        paused_production_share=prod.window(t0, t1).share(new),
        requests=len(prod.samples) + len(test.samples),
        failed=0,
    )
    final = cli_describe(berth, arn)
    assert final["status"] == "SUCCESSFUL", final
    assert final["deploymentConfiguration"]["strategy"] == "BLUE_GREEN", final["deploymentConfiguration"]
    stages = watch.stages()
    assert stages == sorted(stages, key=STAGE_ORDER.index) and stages[-1] == "CLEAN_UP", stages
    assert test_weights[res["idle"]] == 100, test_weights
