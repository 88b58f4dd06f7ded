"""Prometheus `/metrics` end to end: the server's and the proxy's, scraped over plain HTTP from the real binary.

Every line of both expositions is valid text format 0.0.4 (a `# HELP` and a `# TYPE` before each family's first
sample, names by Prometheus' conventions: `_total` counters, `_seconds` histograms whose buckets are cumulative and
end at `+Inf` = `_count`), the API's request counter moves by exactly the calls made (by operation and status), the
proxy's counters move with the requests it answers, and the health series are there (reconcile passes, the route
table version each side serves, store waits).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from berthlib import unique, wait_for

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{(?:{LABEL})(?:,{LABEL})*\}})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$")
HELP = re.compile(rf"^# HELP ({NAME}) .+$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def parse(text: str) -> dict[str, float]:
    """Checks every line and returns `name{labels}` → value; fails on the first invalid line."""
    helps: set[str] = set()
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    assert text.endswith("\n"), "the exposition ends with a newline"
    for n, line in enumerate(text.splitlines(), 1):
        if m := HELP.match(line):
            assert m[1] not in helps, f"line {n}: second HELP for {m[1]}"
            helps.add(m[1])
            continue
        if m := TYPE.match(line):
            assert m[1] not in types, f"line {n}: second TYPE for {m[1]}"
            assert m[1] in helps, f"line {n}: TYPE before HELP for {m[1]}"
            types[m[1]] = m[2]
            continue
        m = SAMPLE.match(line)
        assert m, f"line {n} is not valid exposition: {line!r}"
        name = m[1]
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        assert family in types, f"line {n}: {name} has no TYPE before it"
        kind = types[family]
        if kind == "counter":
            assert family.endswith("_total"), f"counter {family} does not end in _total"
        if kind == "histogram":
            assert family.endswith("_seconds"), f"histogram {family} is not in seconds"
        key = name + (m[2] or "")
        assert key not in samples, f"line {n}: duplicate sample {key}"
        samples[key] = float(m[3])
    check_histograms(samples, types)
    return samples


def check_histograms(samples: dict[str, float], types: dict[str, str]) -> None:
    """Buckets are cumulative, ordered by `le`, and the `+Inf` bucket equals `_count`."""
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series: dict[str, list[tuple[float, float]]] = {}
        for key, value in samples.items():
            if not key.startswith(f"{family}_bucket{{"):
                continue
            labels = key[len(family) + len("_bucket{") : -1]
            le = re.search(r'(?:^|,)le="([^"]+)"', labels)
            assert le, key
            rest = re.sub(r',?le="[^"]+"', "", labels).strip(",")
            series.setdefault(rest, []).append((float(le[1]), value))
        for rest, buckets in series.items():
            counts = [c for _, c in sorted(buckets)]
            assert counts == sorted(counts), f"{family}{{{rest}}} buckets are not cumulative: {buckets}"
            assert sorted(buckets)[-1][0] == float("inf"), f"{family}{{{rest}}} has no +Inf bucket"
            labels = f"{{{rest}}}" if rest else ""
            assert samples[f"{family}_count{labels}"] == counts[-1], f"{family}{labels}: +Inf != _count"
            assert f"{family}_sum{labels}" in samples


def value(samples: dict[str, float], key: str) -> float:
    return samples.get(key, 0.0)


def test_server_metrics_are_valid_and_count_api_calls(berth):
    content_type, text = scrape(berth.metrics_url)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    before = parse(text)

    logs = berth.client("logs")
    for _ in range(3):
        logs.describe_log_groups(limit=1)
    try:
        logs.describe_log_streams(logGroupName=unique("/e2e/none"))
    except logs.exceptions.ResourceNotFoundException:
        pass

    after = parse(scrape(berth.metrics_url)[1])
    ok = 'berth_api_requests_total{operation="DescribeLogGroups",status="200"}'
    missing = 'berth_api_requests_total{operation="DescribeLogStreams",status="400"}'
    assert value(after, ok) - value(before, ok) == 3, (value(before, ok), value(after, ok))
    assert value(after, missing) - value(before, missing) == 1
    hist = 'berth_api_request_duration_seconds_count{operation="DescribeLogGroups",status="200"}'
    assert value(after, hist) - value(before, hist) == 3
    print(f"\nserver exposition: {len(after)} samples, {len(text.splitlines())} lines")

    # Health series: the reconciler has run, the store's writer has been waited for, the build is named.
    assert after["berth_reconcile_pass_duration_seconds_count"] >= 1
    assert after["berth_store_writer_wait_seconds_count"] >= 1
    assert any(k.startswith("berth_build_info{version=") for k in after)
    assert "berth_live_tail_sessions" in after
    assert after["berth_route_table_version"] >= 0


def test_proxy_metrics_are_valid_and_move(berth):
    content_type, text = scrape(berth.proxy_metrics_url)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    before = parse(text)

    # A host no rule serves: the proxy answers 404 itself (ALB's HTTPCode_ELB_4XX on the unmatched label).
    for _ in range(2):
        assert berth.https_get(f"{unique('nobody')}.ecs.us-east-1.localhost", "/").status == 404
    after = parse(scrape(berth.proxy_metrics_url)[1])
    key = 'berth_lb_httpcode_elb_4xx_total{load_balancer="-"}'
    assert value(after, key) - value(before, key) == 2, (value(before, key), value(after, key))
    assert value(after, 'berth_lb_new_connections_total{listener="https"}') >= 2

    # The proxy serves the server's table, and the server knows it from the proxy's reports.
    def reported():
        server = parse(scrape(berth.metrics_url)[1])
        return [k for k in server if k.startswith("berth_proxy_served_route_table_version{")] or None

    [served_key] = wait_for("a proxy's report in the server's metrics", reported, 30)
    server = parse(scrape(berth.metrics_url)[1])
    proxy = parse(scrape(berth.proxy_metrics_url)[1])
    assert server[served_key] == server["berth_route_table_version"] == proxy["berth_proxy_route_table_version"]


def test_only_get_metrics_is_served(berth):
    for path in ("/", "/metrics/x"):
        try:
            urllib.request.urlopen(berth.metrics_url.replace("/metrics", path), timeout=5)
            raise AssertionError(f"{path} answered")
        except urllib.error.HTTPError as e:
            assert e.code == 404


def test_cloudwatch_series_are_exported(berth):
    """A series put with PutMetricData shows up with its newest minute's statistics (buffered or stored alike)."""
    cw = berth.client("cloudwatch")
    name = unique("Prom")
    cw.put_metric_data(
        Namespace="E2E/Prometheus",
        MetricData=[
            {"MetricName": name, "Dimensions": [{"Name": "Service", "Value": "web"}], "Unit": "Count", "Value": v}
            for v in (2.0, 5.0)
        ],
    )
    samples = parse(scrape(berth.metrics_url)[1])
    labels = f'{{namespace="E2E/Prometheus",metric_name="{name}",unit="Count",dim_Service="web"}}'
    got = {stat: samples.get(f"berth_cloudwatch_{stat}{labels}") for stat in ("sample_count", "sum", "minimum", "maximum")}
    assert got == {"sample_count": 2.0, "sum": 7.0, "minimum": 2.0, "maximum": 5.0}, [
        k for k in samples if k.startswith("berth_cloudwatch_")
    ]
