"""The metrics berth publishes itself, read back over the CloudWatch API, and target tracking on them, on the real
binary and Docker.

A bounded loopback load generator (Python threads, one keep-alive HTTPS connection each) sends N requests to an
Express service through the proxy and measures each one; `get-metric-statistics` and `get-metric-data` must count
exactly N requests (`AWS/ApplicationELB` `RequestCount`, the proxies' per-interval deltas summed), and
`TargetResponseTime`'s p50/p99 must match the generator's own within 10%. The demo app's `/cpu` must raise the
service's `AWS/ECS` `CPUUtilization` (read from the task's cgroup). Then the scenario of issue 11: requests per
target above the target scale the service out, the new tasks take traffic, and after the load stops and the
(shortened) cooldown it scales in, never below min, with no failed request.

Needs the metric store (metrics), the CloudWatch protocols (proto), alarms and Application Auto Scaling (alarms,
scaling) besides this branch's collection."""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import threading
import time
from datetime import datetime, timezone

import pytest

from berthlib import BerthInstance, Ports, RequestLoop, pick_free_ports, serving_service, unique, wait_for
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
        # The probes that found the service serving fall in an earlier minute than the load.
        minute = next_minute_start()
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
