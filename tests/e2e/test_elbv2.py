"""The ELBv2 resources behind Express services, through boto3 and the AWS CLI, and the traffic they route through
the real proxy: describe what a service gets; user rules (custom domain, a path to a second service, a source-ip
allow-list, a 90/10 weighted forward); a health-check change taking effect; a user rule following the live target
group across an Express deployment; the 26th service landing on a second load balancer."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from berthlib import REGION, unique, wait_for
from elblib import elbv2, forward, free_priority, get, insecure_context, service_resources, wait_version


@pytest.fixture(scope="module")
def two_services(berth):
    names = [unique("elba"), unique("elbb")]
    arns = []
    try:
        for name, version in zip(names, ("A", "B")):
            arns.append(berth.create_service(name, environment={"DEMO_VERSION": version})["serviceArn"])
        endpoints = [berth.wait_endpoint(arn) for arn in arns]
        for endpoint, version in zip(endpoints, ("A", "B")):
            wait_version(berth, endpoint, version)
        yield list(zip(arns, endpoints))
    finally:
        for arn in arns:
            berth.best_effort_delete(arn)


def test_a_service_has_visible_managed_resources(berth, two_services):
    (arn, endpoint), _ = two_services
    client = elbv2(berth)
    res = service_resources(client, endpoint)
    lb = res["lb"]
    assert lb["LoadBalancerName"].startswith("ecs-express-gateway-alb-"), lb
    assert lb["LoadBalancerArn"].startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:{berth.account_id}:loadbalancer/app/ecs-express-gateway-alb-"
    )
    assert (lb["Type"], lb["Scheme"], lb["State"]["Code"]) == ("application", "internet-facing", "active")
    ports = sorted((li["Port"], li["Protocol"]) for li in res["listeners"])
    assert ports == [(80, "HTTP"), (443, "HTTPS")]
    http_listener = next(li for li in res["listeners"] if li["Port"] == 80)
    assert http_listener["DefaultActions"][0]["Type"] == "redirect"
    rules = client.describe_rules(ListenerArn=res["listener"])["Rules"]
    default = rules[-1]
    assert default["IsDefault"] and default["Priority"] == "default"
    assert default["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    weights = [g["Weight"] for g in res["rule"]["Actions"][0]["ForwardConfig"]["TargetGroups"]]
    assert sorted(weights) == [0, 100]

    groups = client.describe_target_groups(TargetGroupArns=[res["live"], res["idle"]])["TargetGroups"]
    for g in groups:
        assert g["TargetGroupName"].startswith("ecs-gateway-tg-") and len(g["TargetGroupName"]) == 32, g
        assert (g["TargetType"], g["Protocol"], g["Port"], g["HealthCheckPath"]) == ("ip", "HTTP", 80, "/ping")
        assert (g["HealthCheckIntervalSeconds"], g["HealthyThresholdCount"], g["UnhealthyThresholdCount"]) == (30, 5, 2)
        assert lb["LoadBalancerArn"] in g["LoadBalancerArns"]
        # A target group lives in its load balancer's VPC, one DescribeVpcs knows.
        assert g["VpcId"] == lb["VpcId"], (g["VpcId"], lb["VpcId"])
    vpcs = [v["VpcId"] for v in berth.client("ec2").describe_vpcs()["Vpcs"]]
    assert lb["VpcId"] in vpcs, (lb["VpcId"], vpcs)
    attrs = {a["Key"]: a["Value"] for a in client.describe_target_group_attributes(TargetGroupArn=res["live"])["Attributes"]}
    assert attrs["load_balancing.algorithm.type"] == "round_robin"
    health = client.describe_target_health(TargetGroupArn=res["live"])["TargetHealthDescriptions"]
    assert [h["TargetHealth"]["State"] for h in health] == ["healthy"], health
    certs = client.describe_listener_certificates(ListenerArn=res["listener"])["Certificates"]
    assert sum(1 for c in certs if c["IsDefault"]) == 1 and len(certs) >= 3, certs

    tags = client.describe_tags(ResourceArns=[lb["LoadBalancerArn"], res["live"], res["rule"]["RuleArn"]])
    for desc in tags["TagDescriptions"]:
        assert {"Key": "AmazonECSManaged", "Value": "true"} in desc["Tags"], desc

    # The AWS CLI sees the same.
    out = berth.aws("elbv2", "describe-target-groups", "--target-group-arns", res["live"])
    assert out["TargetGroups"][0]["HealthCheckPath"] == "/ping"
    out = berth.aws("elbv2", "describe-load-balancer-attributes", "--load-balancer-arn", lb["LoadBalancerArn"])
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "60"} in out["Attributes"]

    # ALB's errors.
    with pytest.raises(ClientError) as e:
        client.delete_rule(RuleArn=default["RuleArn"])
    assert e.value.response["Error"]["Code"] == "OperationNotPermitted"
    with pytest.raises(ClientError) as e:
        client.create_rule(
            ListenerArn=res["listener"],
            Priority=int(res["rule"]["Priority"]),
            Conditions=[{"Field": "host-header", "Values": ["x.example.test"]}],
            Actions=forward((res["live"], 1)),
        )
    assert e.value.response["Error"]["Code"] == "PriorityInUse"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        client.describe_target_groups(TargetGroupArns=[res["live"] + "0"])
    assert e.value.response["Error"]["Code"] == "TargetGroupNotFound"
    with pytest.raises(ClientError) as e:
        client.create_rule(
            ListenerArn=res["listener"],
            Priority=50001,
            Conditions=[{"Field": "host-header", "Values": ["x.example.test"]}],
            Actions=forward((res["live"], 1)),
        )
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_user_rules_route_custom_domain_path_and_source_ip(berth, two_services):
    (arn_a, endpoint_a), (arn_b, endpoint_b) = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    b = service_resources(client, endpoint_b)
    domain = f"{unique('app')}.example.test"
    created = []
    try:
        p_path = free_priority(client, a["listener"], 200)
        path_rule = client.create_rule(
            ListenerArn=a["listener"],
            Priority=p_path,
            Conditions=[
                {"Field": "host-header", "HostHeaderConfig": {"Values": [domain]}},
                {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/status/*"]}},
            ],
            Actions=forward((b["live"], 1)),
        )["Rules"][0]
        created.append(path_rule["RuleArn"])
        p_domain = free_priority(client, a["listener"], p_path + 1)
        t0 = time.monotonic()
        domain_rule = client.create_rule(
            ListenerArn=a["listener"],
            Priority=p_domain,
            Conditions=[{"Field": "host-header", "Values": [domain]}],
            Actions=forward((a["live"], 1)),
        )["Rules"][0]
        created.append(domain_rule["RuleArn"])

        # The custom domain reaches service A; its /status/* paths reach service B.
        wait_version(berth, domain, "A", "/", timeout=10)
        print(f"CreateRule call → first request routed by it: {time.monotonic() - t0:.3f}s")
        r = get(berth, domain, "/status/201")
        assert (r.status, r.header("x-demo-version")) == (201, "B"), r
        assert get(berth, endpoint_a, "/status/201").header("x-demo-version") == "A", "the endpoint is unchanged"

        # A source-ip allow-list: the domain rule only for 127.0.0.1, everyone else gets 403.
        client.modify_rule(
            RuleArn=domain_rule["RuleArn"],
            Conditions=[
                {"Field": "host-header", "Values": [domain]},
                {"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.1/32"]}},
            ],
        )
        p_deny = free_priority(client, a["listener"], p_domain + 1)
        deny = client.create_rule(
            ListenerArn=a["listener"],
            Priority=p_deny,
            Conditions=[{"Field": "host-header", "Values": [domain]}],
            Actions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "403", "ContentType": "text/plain", "MessageBody": "denied"},
                }
            ],
        )["Rules"][0]
        created.append(deny["RuleArn"])
        wait_for(
            "127.0.0.2 to be refused",
            lambda: get(berth, domain, "/", source="127.0.0.2").status == 403,
            10,
            interval=0.1,
        )
        refused = get(berth, domain, "/", source="127.0.0.2")
        assert refused.text == "denied", refused
        allowed = get(berth, domain, "/", source="127.0.0.1")
        assert (allowed.status, allowed.header("x-demo-version")) == (200, "A"), allowed
    finally:
        for rule in created:
            client.delete_rule(RuleArn=rule)
    wait_for("the custom domain to answer 404 again", lambda: get(berth, domain).status == 404, 10, interval=0.1)


def test_weighted_forward_splits_90_10(berth, two_services):
    (_, endpoint_a), (_, endpoint_b) = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    b = service_resources(client, endpoint_b)
    domain = f"{unique('split')}.example.test"
    rule = client.create_rule(
        ListenerArn=a["listener"],
        Priority=free_priority(client, a["listener"], 300),
        Conditions=[{"Field": "host-header", "Values": [domain]}],
        Actions=forward((a["live"], 90), (b["live"], 10)),
    )["Rules"][0]
    try:
        wait_for("the split rule to serve", lambda: get(berth, domain).status == 200, 10, interval=0.1)
        counts: Counter = Counter()
        conn = http.client.HTTPSConnection("127.0.0.1", berth.ports.https, timeout=5, context=insecure_context())
        raw = socket.create_connection(("127.0.0.1", berth.ports.https), timeout=5)
        conn.sock = insecure_context().wrap_socket(raw, server_hostname=domain)
        try:
            for _ in range(2000):
                conn.request("GET", "/ping", headers={"Host": domain})
                resp = conn.getresponse()
                resp.read()
                counts[(resp.status, resp.getheader("x-demo-version"))] += 1
        finally:
            conn.close()
        assert sum(counts.values()) == 2000
        assert counts[(200, "A")] + counts[(200, "B")] == 2000, counts
        share_b = counts[(200, "B")] / 2000
        print(f"90/10 split over 2000 requests: {dict(counts)}")
        assert 0.08 <= share_b <= 0.12, counts
    finally:
        client.delete_rule(RuleArn=rule["RuleArn"])


def test_health_check_change_takes_effect(berth, two_services):
    (_, endpoint_a), _ = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    try:
        client.modify_target_group(
            TargetGroupArn=a["live"],
            HealthCheckPath="/status/500",
            HealthCheckIntervalSeconds=5,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
        )
        tg = client.describe_target_groups(TargetGroupArns=[a["live"]])["TargetGroups"][0]
        assert (tg["HealthCheckPath"], tg["HealthCheckIntervalSeconds"]) == ("/status/500", 5)

        def unhealthy():
            h = client.describe_target_health(TargetGroupArn=a["live"])["TargetHealthDescriptions"]
            return h and all(d["TargetHealth"]["State"] == "unhealthy" for d in h) and h

        health = wait_for("the target to become unhealthy", unhealthy, 30, interval=0.5)
        assert health[0]["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch", health
        # Every registered target is unhealthy: ALB fails open and routes to all of them, so the service still
        # answers from its task.
        answers = Counter((r.status, r.header("x-demo-version")) for r in (get(berth, endpoint_a, "/") for _ in range(10)))
        assert answers == Counter({(200, "A"): 10}), answers
    finally:
        client.modify_target_group(TargetGroupArn=a["live"], HealthCheckPath="/ping")
    # Back to healthy after two passing checks (5 s apart); it answered all along (fail open).
    wait_for(
        "the target to be healthy again",
        lambda: [d["TargetHealth"]["State"] for d in client.describe_target_health(TargetGroupArn=a["live"])["TargetHealthDescriptions"]] == ["healthy"],
        30,
        interval=0.5,
    )
    wait_version(berth, endpoint_a, "A", timeout=5)
    # Leave the service's checks as Express set them.
    client.modify_target_group(
        TargetGroupArn=a["live"], HealthCheckIntervalSeconds=30, HealthCheckTimeoutSeconds=5, HealthyThresholdCount=5
    )


def test_registered_ip_targets_get_traffic(berth, two_services):
    (_, endpoint_a), (_, endpoint_b) = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    b = service_resources(client, endpoint_b)
    b_target = client.describe_target_health(TargetGroupArn=b["live"])["TargetHealthDescriptions"][0]["Target"]
    target = {"Id": b_target["Id"], "Port": b_target["Port"]}
    client.register_targets(TargetGroupArn=a["live"], Targets=[target])
    try:

        def both_healthy():
            h = client.describe_target_health(TargetGroupArn=a["live"])["TargetHealthDescriptions"]
            return len(h) == 2 and all(d["TargetHealth"]["State"] == "healthy" for d in h)

        wait_for("the registered target to become healthy", both_healthy, 30, interval=0.2)
        seen = Counter(get(berth, endpoint_a, "/ping").header("x-demo-version") for _ in range(40))
        assert set(seen) == {"A", "B"} and min(seen.values()) >= 10, seen
    finally:
        client.deregister_targets(TargetGroupArn=a["live"], Targets=[target])
    seen = Counter(get(berth, endpoint_a, "/ping").header("x-demo-version") for _ in range(20))
    assert seen == Counter({"A": 20}), seen
    with pytest.raises(ClientError) as e:
        client.register_targets(TargetGroupArn=a["live"], Targets=[{"Id": "i-0123456789abcdef0"}])
    assert e.value.response["Error"]["Code"] == "InvalidTarget"


class _FailingHealthCheck(http.server.BaseHTTPRequestHandler):
    """A target whose health check (/ping) fails while it serves every other path as version X."""

    def do_GET(self):  # noqa: N802 - http.server's name
        status = 500 if self.path.startswith("/ping") else 200
        self.send_response(status)
        self.send_header("x-demo-version", "X")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"X\n")

    def log_message(self, *args):
        pass


def test_minimum_healthy_targets_make_a_group_fail_open(berth, two_services):
    """target_group_health.unhealthy_state_routing.minimum_healthy_targets.count: with one healthy target of two,
    the default (1) routes to the healthy one only; a minimum of 2 makes the group route to both."""
    (_, endpoint_a), _ = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingHealthCheck)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = {"Id": "127.0.0.1", "Port": server.server_address[1]}
    key = "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count"
    try:
        client.modify_target_group(
            TargetGroupArn=a["live"], HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, UnhealthyThresholdCount=2
        )
        client.register_targets(TargetGroupArn=a["live"], Targets=[target])

        def states():
            h = client.describe_target_health(TargetGroupArn=a["live"])["TargetHealthDescriptions"]
            return sorted((d["Target"]["Id"] == "127.0.0.1", d["TargetHealth"]["State"]) for d in h)

        wait_for("one healthy and one unhealthy target", lambda: states() == [(False, "healthy"), (True, "unhealthy")], 40, 0.5)
        seen = Counter(get(berth, endpoint_a, "/").header("x-demo-version") for _ in range(20))
        assert seen == Counter({"A": 20}), f"the default minimum (1) is met: healthy targets only: {seen}"

        client.modify_target_group_attributes(TargetGroupArn=a["live"], Attributes=[{"Key": key, "Value": "2"}])
        attrs = client.describe_target_group_attributes(TargetGroupArn=a["live"])["Attributes"]
        assert {"Key": key, "Value": "2"} in attrs, attrs
        seen = Counter(get(berth, endpoint_a, "/").header("x-demo-version") for _ in range(20))
        assert seen == Counter({"A": 10, "X": 10}), f"below the minimum the group routes to every target: {seen}"

        with pytest.raises(ClientError) as e:
            client.modify_target_group_attributes(TargetGroupArn=a["live"], Attributes=[{"Key": key, "Value": "0"}])
        assert e.value.response["Error"]["Code"] == "ValidationError"
    finally:
        client.modify_target_group_attributes(TargetGroupArn=a["live"], Attributes=[{"Key": key, "Value": "1"}])
        client.deregister_targets(TargetGroupArn=a["live"], Targets=[target])
        client.modify_target_group(
            TargetGroupArn=a["live"], HealthCheckIntervalSeconds=30, HealthCheckTimeoutSeconds=5, UnhealthyThresholdCount=2
        )
        server.shutdown()
    seen = Counter(get(berth, endpoint_a, "/").header("x-demo-version") for _ in range(10))
    assert seen == Counter({"A": 10}), seen


def test_a_user_rule_follows_the_live_group_across_a_deployment(berth, two_services):
    (arn_a, endpoint_a), _ = two_services
    client = elbv2(berth)
    a = service_resources(client, endpoint_a)
    domain = f"{unique('follow')}.example.test"
    rule = client.create_rule(
        ListenerArn=a["listener"],
        Priority=free_priority(client, a["listener"], 400),
        Conditions=[{"Field": "host-header", "Values": [domain]}],
        Actions=forward((a["live"], 1)),
    )["Rules"][0]
    try:
        wait_version(berth, domain, "A", timeout=10)
        berth.ecs().update_express_gateway_service(
            serviceArn=arn_a,
            primaryContainer={"image": "berth-demo:latest", "environment": [{"name": "DEMO_VERSION", "value": "A2"}]},
        )
        wait_version(berth, endpoint_a, "A2", timeout=90)
        wait_version(berth, domain, "A2", timeout=10)
        after = client.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"][0]
        groups = after["Actions"][0]["ForwardConfig"]["TargetGroups"]
        # Every rule forwarding to the service follows the deployment's weights: all to the new live group.
        weights = {g["TargetGroupArn"]: g["Weight"] for g in groups}
        assert weights == {a["live"]: 0, a["idle"]: 100}, "the rule now sends everything to the new live group"
        flipped = service_resources(client, endpoint_a)
        assert (flipped["live"], flipped["idle"]) == (a["idle"], a["live"])
    finally:
        client.delete_rule(RuleArn=rule["RuleArn"])


@pytest.mark.slow
def test_the_26th_service_lands_on_a_second_load_balancer(berth):
    client = elbv2(berth)

    def placements() -> dict[str, int]:
        # Services per load balancer: Express rules carry the AmazonECSManaged tag, user rules do not.
        out = {}
        for lb in client.describe_load_balancers()["LoadBalancers"]:
            listeners = client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
            https = next(li for li in listeners if li["Port"] == 443)
            rules = [r for r in client.describe_rules(ListenerArn=https["ListenerArn"])["Rules"] if not r["IsDefault"]]
            managed = 0
            for i in range(0, len(rules), 20):
                tags = client.describe_tags(ResourceArns=[r["RuleArn"] for r in rules[i : i + 20]])["TagDescriptions"]
                managed += sum(1 for d in tags if {"Key": "AmazonECSManaged", "Value": "true"} in d["Tags"])
            out[lb["LoadBalancerArn"]] = managed
        return out

    before = placements()
    free = sum(25 - n for n in before.values())
    arns = []
    started = time.monotonic()
    try:
        for i in range(free):
            arns.append(berth.create_service(unique(f"fill{i}"))["serviceArn"])
        assert set(placements()) == set(before), "room left on existing load balancers is used first"
        last = berth.create_service(unique("over"), environment={"DEMO_VERSION": "26th"})
        arns.append(last["serviceArn"])
        after = placements()
        new = set(after) - set(before)
        assert len(new) == 1, after
        assert after[new.pop()] == 1
        endpoint = berth.wait_endpoint(last["serviceArn"])
        wait_version(berth, endpoint, "26th", timeout=120)
        res = service_resources(client, endpoint)
        assert res["lb"]["LoadBalancerArn"] not in before
    finally:
        for arn in arns:
            berth.best_effort_delete(arn)
    assert set(placements()) == set(before) or len(placements()) <= len(before), "an empty load balancer is removed"
    print(f"26th-service test: {len(arns)} services created in {time.monotonic() - started:.1f}s")
