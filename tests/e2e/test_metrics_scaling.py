"""The metrics berth publishes itself, read back over the CloudWatch API, and target tracking on them, on the real
binary and Docker.

A bounded loopback load generator (Python threads, one keep-alive HTTPS connection each) sends N requests to an
Express service through the proxy and measures each one; `get-metric-statistics` and `get-metric-data` must count
exactly N requests (`AWS/ApplicationELB` `RequestCount`, the proxies' per-interval deltas summed), and
`TargetResponseTime`'s p50/p99 must match the generator's own within 10%. The demo app's `/cpu` must raise the
service's `AWS/ECS` `CPUUtilization` (read from the task's cgroup). Then the scenario of issue 11: requests per
target above the target scale the service out, the new tasks take traffic, and after the load stops and the
(shortened) cooldown it scales in, never below min, with no failed request; and CPU above the target
(`AVERAGE_CPU`, driven by `/cpu`) scales out to a second task that serves, with no failed request.

Needs the metric store (metrics), the CloudWatch protocols (proto), alarms and Application Auto Scaling (alarms,
scaling) besides this branch's collection."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from berthlib import ROOT, BerthInstance, Ports, RequestLoop, docker, pick_free_ports, serving_service, unique, wait_for
from elblib import elbv2, service_resources

N_REQUESTS = 300
THREADS = 8
# The targets' work per request: /sleep of these milliseconds in turn, so the percentiles are far apart and the
# client's own overhead (Python, TLS, a busy machine: a few ms) stays well inside the 10% the percentiles may differ.
SLEEPS_MS = (100, 200, 300, 400, 500)


def cloudwatch(berth):
    return berth.client("cloudwatch")


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class LoadGenerator:
    """Sends `total` requests over `threads` keep-alive HTTPS connections to the proxy (SNI and Host = `host`),
    taking paths in turn; records (status, seconds) of every request as the client measured it."""

    def __init__(self, berth, host: str, paths: list[str], total: int, threads: int) -> None:
        self.berth, self.host, self.paths, self.total, self.threads = berth, host, paths, total, threads
        self.results: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._next = 0

    def _connection(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.berth.ca_path))
        raw = socket.create_connection(("127.0.0.1", self.berth.ports.https), timeout=10)
        tls = ctx.wrap_socket(raw, server_hostname=self.host)
        conn = http.client.HTTPSConnection(self.host, self.berth.ports.https, timeout=10, context=ctx)
        conn.sock = tls
        return conn

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _worker(self) -> None:
        conn = self._connection()
        host_header = f"{self.host}:{self.berth.ports.https}"
        while (i := self._take()) is not None:
            path = self.paths[i % len(self.paths)]
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Host": host_header, "User-Agent": "berth-e2e-load"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = self._connection()
            elapsed = time.perf_counter() - started
            with self._lock:
                self.results.append((status, elapsed))
        conn.close()

    def run(self) -> list[tuple[int, float]]:
        workers = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=300)
        return self.results


def alb_dimensions(berth, endpoint: str) -> tuple[str, str]:
    """(`LoadBalancer`, `TargetGroup`) dimension values of the live target group behind `endpoint`."""
    res = service_resources(elbv2(berth), endpoint)
    lb = res["lb"]["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
    tg = res["live"].rsplit(":", 1)[1]
    assert lb.startswith("app/") and tg.startswith("targetgroup/"), (lb, tg)
    return lb, tg


def next_minute_start(margin: float = 1.0) -> float:
    """Sleeps until just after the next minute boundary, so a one-minute period holds only what follows."""
    now = time.time()
    boundary = (math.floor(now / 60) + 1) * 60
    time.sleep(boundary - now + margin)
    return boundary


def test_request_count_is_exact_and_latency_percentiles_match_the_client(berth):
    cw = cloudwatch(berth)
    with serving_service(berth, "metrics") as svc:
        lb, tg = alb_dimensions(berth, svc["endpoint"])
        dims = [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}]
        # The probes that found the service serving fall in an earlier minute than the load: a proxy reports its
        # counts every second, stamped when reported, so a probe answered in the last second before the boundary
        # would count in the load's minute (301 == 300 seen once on a loaded machine); 3 s keeps them out.
        minute = next_minute_start(margin=3.0)
        paths = [f"/sleep?ms={ms}" for ms in SLEEPS_MS]
        results = LoadGenerator(berth, svc["endpoint"], paths, N_REQUESTS, THREADS).run()
        finished = time.time()
        assert len(results) == N_REQUESTS
        assert [s for s, _ in results if s != 200] == [], "every request answered 200"
        assert finished - minute < 55, f"the load ran {finished - minute:.0f} s: past its minute"

        def request_count() -> float:
            out = cw.get_metric_statistics(
                Namespace="AWS/ApplicationELB",
                MetricName="RequestCount",
                Dimensions=dims,
                StartTime=at(minute),
                EndTime=at(minute + 60),
                Period=60,
                Statistics=["Sum"],
            )
            return sum(p["Sum"] for p in out["Datapoints"])

        # Reports come every second; wait until everything has arrived, then read again (no late extra count).
        wait_for("the load's requests to be counted", lambda: request_count() >= N_REQUESTS, timeout=30, interval=1)
        time.sleep(3)
        assert request_count() == N_REQUESTS

        data = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "requests",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount", "Dimensions": dims},
                        "Period": 1,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=at(minute),
            EndTime=at(minute + 60),
        )
        series = data["MetricDataResults"][0]
        assert sum(series["Values"]) == N_REQUESTS, series
        assert len(series["Values"]) >= 2, "1-second resolution: the load spans several seconds"

        out = cw.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName="TargetResponseTime",
            Dimensions=dims,
            StartTime=at(minute),
            EndTime=at(minute + 60),
            Period=60,
            ExtendedStatistics=["p50", "p99"],
        )
        assert len(out["Datapoints"]) == 1, out["Datapoints"]
        point = out["Datapoints"][0]
        assert point["Unit"] == "Seconds"
        latencies = [s for _, s in results]
        for stat, q in (("p50", 0.50), ("p99", 0.99)):
            client = nearest_rank(latencies, q)
            served = point["ExtendedStatistics"][stat]
            assert abs(served - client) / client <= 0.10, f"{stat}: berth {served:.4f} s, generator {client:.4f} s"


def test_cpu_burn_raises_the_services_cpu_utilization(berth):
    cw = cloudwatch(berth)
    with serving_service(berth, "cpu") as svc:
        dims = [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": svc["name"]}]

        def points(start: float, end: float) -> list[dict]:
            out = cw.get_metric_statistics(
                Namespace="AWS/ECS",
                MetricName="CPUUtilization",
                Dimensions=dims,
                StartTime=at(start),
                EndTime=at(end),
                Period=10,
                Statistics=["Maximum", "Average", "SampleCount"],
            )
            return sorted(out["Datapoints"], key=lambda p: p["Timestamp"])

        # Idle: the task is sampled every 10 s (the first reading only starts its rate).
        idle_start = time.time()
        idle = wait_for("two idle CPU samples", lambda: (p := points(idle_start, time.time() + 10)) and len(p) >= 2 and p, 60)
        # Burn: two clients keep the demo app's /cpu busy for 30 s (the task reserves 0.25 vCPU).
        burn_start = time.time()
        stop = threading.Event()

        def burn() -> None:
            while not stop.is_set() and time.time() - burn_start < 60:
                try:
                    berth.https_get(svc["endpoint"], "/cpu?ms=1000", timeout=30)
                except OSError:
                    pass

        burners = [threading.Thread(target=burn, daemon=True) for _ in range(2)]
        for b in burners:
            b.start()
        time.sleep(30)
        stop.set()
        for b in burners:
            b.join(timeout=40)
        burn_end = time.time()
        busy = wait_for(
            "CPU samples of the burn",
            lambda: (p := points(burn_start + 10, burn_end)) and len(p) >= 2 and p,
            timeout=30,
        )
        assert max(p["Maximum"] for p in idle) < 20, idle
        assert max(p["Maximum"] for p in busy) >= 60, busy
        assert all(p["Unit"] == "Percent" for p in busy)
        memory = cw.get_metric_statistics(
            Namespace="AWS/ECS",
            MetricName="MemoryUtilization",
            Dimensions=dims,
            StartTime=at(burn_start),
            EndTime=at(burn_end),
            Period=60,
            Statistics=["Average"],
        )["Datapoints"]
        assert memory and all(0 < p["Average"] < 100 for p in memory), memory


@pytest.mark.slow
def test_requests_per_target_scale_out_then_in_without_a_failed_request(berth):
    """Target tracking on ALBRequestCountPerTarget: load above the target → more tasks that take traffic; load
    gone → back to min after the cooldown; never below min; no failed request throughout. Its own berth shortens
    AlarmLow to 6 datapoints of 10 s (berth's default is 30, AWS's 15 of 60 s) so that scale-in comes within a
    minute of the load stopping."""
    api, https, http_, internal = pick_free_ports(4)
    fast = BerthInstance(
        binary=berth.binary,
        ports=Ports(api=api, https=https, http=http_, internal=internal),
        extra_config=["[autoscaling]", "alarm_low_datapoints = 6"],
    )
    try:
        fast.start()
        fast.ensure_express_roles()
        scale_out_then_in(fast)
    finally:
        fast.cleanup()


def scale_out_then_in(berth: BerthInstance) -> None:
    aas = berth.client("application-autoscaling")
    ecs = berth.ecs()
    name = unique("scale")
    svc = berth.create_service(
        name,
        scalingTarget={
            "minTaskCount": 1,
            "maxTaskCount": 3,
            "autoScalingMetric": "REQUEST_COUNT_PER_TARGET",
            "autoScalingTargetValue": 100,
        },
    )
    arn = svc["serviceArn"]
    resource_id = f"service/default/{name}"
    try:
        endpoint = berth.wait_endpoint(arn)
        berth.wait_status(endpoint, 200, "/ping", timeout=60)
        policies = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"]
        assert len(policies) == 1, policies
        policy = policies[0]
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
        # The user's own edit (shorter cooldowns) is kept, as on AWS.
        config.update({"ScaleOutCooldown": 5, "ScaleInCooldown": 5})
        aas.put_scaling_policy(
            PolicyName=policy["PolicyName"],
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension="ecs:service:DesiredCount",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=config,
        )

        def running() -> int:
            return len(berth.task_arns(name))

        counts: list[int] = []
        # Load: three request loops (~40 requests/s) against a target of 100 requests per target per minute.
        loops = [RequestLoop(berth, endpoint, "/", pause=0.02, max_seconds=240) for _ in range(3)]
        for loop in loops:
            loop.__enter__()
        try:
            def scaled_out():
                counts.append(running())
                return counts[-1] >= 2 and counts[-1]

            wait_for("the service to scale out", scaled_out, timeout=120, interval=2)
            lb, tg = alb_dimensions(berth, endpoint)
            time.sleep(10)
            # The new tasks take traffic: requests reach more than one task (the demo app names its host).
            hosts = {berth.https_get(endpoint, "/").header("x-demo-host") for _ in range(30)}
        finally:
            for loop in loops:
                loop.stop()
        failures = [f for loop in loops for f in loop.failures()]
        assert failures == [], failures[:5]
        per_target = berth.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName="HealthyHostCount",
            Dimensions=[{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}],
            StartTime=at(time.time() - 10),
            EndTime=at(time.time() + 1),
            Period=10,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert per_target and max(p["Maximum"] for p in per_target) >= 2, per_target
        assert len(hosts) >= 2, hosts

        # Idle: scale in to min, with a light probe loop proving no request fails while tasks drain (about 60
        # requests a minute: below the target of 100 per target even on one task, so it cannot scale out again).
        with RequestLoop(berth, endpoint, "/", pause=1.0, max_seconds=600) as probe:

            def scaled_in():
                counts.append(running())
                return counts[-1] == 1

            wait_for("the service to scale in to min", scaled_in, timeout=300, interval=5)
            time.sleep(10)
            counts.append(running())
        assert probe.failures() == [], probe.failures()[:5]
        assert min(counts) >= 1, counts
        assert counts[-1] == 1, counts
        activities = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource_id)[
            "ScalingActivities"
        ]
        causes = " ".join(a.get("Cause", "") for a in activities)
        assert "AlarmHigh" in causes and "AlarmLow" in causes, activities
        desired = ecs.describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]
        assert desired == 1
    finally:
        berth.best_effort_delete(arn)


class HostLoop:
    """`threads` loops of GET `path` through the proxy until stopped (bounded by `max_seconds`), each recording
    (status, x-demo-host, error) of every request."""

    def __init__(self, berth: BerthInstance, host: str, path: str, threads: int, max_seconds: float) -> None:
        self.berth, self.host, self.path, self.max_seconds = berth, host, path, max_seconds
        self.results: list[tuple[int, str | None, str | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> HostLoop:
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                r = self.berth.https_get(self.host, self.path, timeout=10)
                row = (r.status, r.header("x-demo-host"), None)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                row = (0, None, repr(exc))
            with self._lock:
                self.results.append(row)

    def hosts(self) -> set[str]:
        with self._lock:
            return {h for s, h, _ in self.results if s == 200 and h}

    def failures(self) -> list[tuple[int, str | None, str | None]]:
        with self._lock:
            return [r for r in self.results if r[0] != 200]


def test_cpu_load_scales_out(demo_image):
    """Target tracking on ECSServiceAverageCPUUtilization (Express `AVERAGE_CPU`, target 20%): the demo app's
    `/cpu` keeps the one task above the target → AlarmHigh → a second task, which serves requests; no request
    fails; the scaling activity names AlarmHigh. On its own berth, as the request-count scenario."""
    api, https, http_, internal = pick_free_ports(4)
    own = BerthInstance(
        binary=Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth")),
        ports=Ports(api=api, https=https, http=http_, internal=internal),
    )
    try:
        own.start()
        own.ensure_express_roles()
        cpu_load_scales_out(own)
    finally:
        own.cleanup()


def cpu_load_scales_out(berth: BerthInstance) -> None:
    aas = berth.client("application-autoscaling")
    cw = berth.client("cloudwatch")
    name = unique("cpuscale")
    resource_id = f"service/default/{name}"
    arn = berth.create_service(
        name,
        scalingTarget={
            "minTaskCount": 1,
            "maxTaskCount": 2,
            "autoScalingMetric": "AVERAGE_CPU",
            "autoScalingTargetValue": 20,
        },
    )["serviceArn"]
    try:
        endpoint = berth.wait_endpoint(arn, timeout=90)
        berth.wait_status(endpoint, 200, "/ping", timeout=90)
        policies = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource_id)["ScalingPolicies"]
        assert len(policies) == 1, policies
        config = policies[0]["TargetTrackingScalingPolicyConfiguration"]
        assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
        assert config["TargetValue"] == 20, config
        high = [a["AlarmName"] for a in policies[0]["Alarms"] if "-AlarmHigh-" in a["AlarmName"]]
        assert len(high) == 1, policies[0]["Alarms"]
        first_tasks = set(berth.task_arns(name))
        assert len(first_tasks) == 1, first_tasks

        # Two clients keep /cpu busy (half a second of burn each, the task reserves 0.25 vCPU) until a second
        # host answers; bounded by the wait's timeout and the loop's own deadline.
        load_start = time.time()
        with HostLoop(berth, endpoint, "/cpu?ms=500", threads=2, max_seconds=200) as load:
            wait_for("a second task to serve /cpu", lambda: len(load.hosts()) >= 2, timeout=180, interval=1)
        served_by = load.hosts()
        failures = load.failures()
        assert failures == [], failures[:5]

        # The hosts that answered are the containers of this service's two running tasks, one of them new.
        tasks = berth.describe_tasks(berth.task_arns(name))
        assert len(tasks) == 2, [t["taskArn"] for t in tasks]
        assert set(t["taskArn"] for t in tasks) - first_tasks, "a new task runs"
        # The task's runtimeId names its container; the demo app's host is the container id Docker gave it.
        names = [c["runtimeId"] for t in tasks for c in t["containers"] if c.get("runtimeId")]
        inspected = [docker("inspect", "-f", "{{.Id}}", n, check=False) for n in names]
        assert all(i.returncode == 0 for i in inspected), [(n, i.stderr) for n, i in zip(names, inspected)]
        ids = [i.stdout.strip() for i in inspected]
        unmatched = [h for h in served_by if not any(i.startswith(h) for i in ids)]
        assert unmatched == [] and len(served_by) == 2, (served_by, names, ids)
        desired = berth.ecs().describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]
        assert desired == 2, desired

        # Scaled by the policy's AlarmHigh, which went to ALARM after the load started, on CPU above the target.
        activities = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource_id)[
            "ScalingActivities"
        ]
        scale_outs = [
            a
            for a in activities
            if high[0] in a.get("Cause", "")
            and a["StatusCode"] == "Successful"
            and a["Description"] == "Setting desired count to 2."
        ]
        assert scale_outs, activities
        assert "AlarmHigh" in scale_outs[0]["Cause"]
        assert scale_outs[0]["StartTime"].timestamp() >= load_start - 1, scale_outs[0]
        history = cw.describe_alarm_history(AlarmName=high[0], HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        to_alarm = [i for i in history if json.loads(i["HistoryData"])["newState"]["stateValue"] == "ALARM"]
        assert to_alarm, history
        busy = cw.get_metric_statistics(
            Namespace="AWS/ECS",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": name}],
            StartTime=at(load_start),
            EndTime=at(time.time() + 10),
            Period=10,
            Statistics=["Average"],
        )["Datapoints"]
        assert busy and max(p["Average"] for p in busy) > 20, busy
    finally:
        berth.best_effort_delete(arn)
        try:
            berth.wait_inactive(arn, timeout=120)
        except AssertionError:
            pass
