"""The whole life of an Express service through boto3 and the HTTPS proxy: create → serve → update with zero
failed requests → delete (DRAINING → INACTIVE, containers gone, host 404) → create again with the same name."""

from __future__ import annotations

import re
import time

from berthlib import RequestLoop, containers, unique, wait_for


def test_service_lifecycle(berth):
    name = unique("life")
    svc = berth.create_service(name)
    arn = svc["serviceArn"]
    try:
        # -- create
        assert re.fullmatch(rf"arn:aws:ecs:us-east-1:{berth.account_id}:service/default/{name}", arn), arn
        assert svc["serviceName"] == name
        assert svc["status"]["statusCode"] == "ACTIVE"
        endpoint = berth.wait_endpoint(arn)
        assert re.fullmatch(rf"{name}-[0-9a-f]{{6}}\.ecs\.us-east-1\.localhost", endpoint), endpoint

        # -- serve: HTTPS through the proxy, verified against berth's CA, SNI/Host = endpoint
        first = berth.wait_status(endpoint, 200, "/", timeout=60)
        assert first.header("x-demo-version") == "dev", first.headers
        assert berth.https_get(endpoint, "/ping").text.strip() == "pong"
        assert berth.https_get(endpoint, "/status/418").status == 418

        # HTTP on the proxy's plain port redirects to HTTPS
        redirect = berth.http_get(endpoint, "/ping")
        assert redirect.status == 301, redirect
        assert (redirect.header("location") or "").startswith(f"https://{endpoint}"), redirect.headers

        running = containers(f"berth.service={arn}")
        assert len(running) == 1, running
        old_revision = _label(running[0], "berth.revision")

        # -- update with a new env value while a request loop runs
        with RequestLoop(berth, endpoint, "/") as loop:
            wait_for("the request loop to get going", lambda: len(loop.results) >= 10, 10)
            berth.ecs().update_express_gateway_service(
                serviceArn=arn,
                primaryContainer={
                    "image": "berth-demo:latest",
                    "environment": [{"name": "DEMO_VERSION", "value": "v2"}],
                },
            )
            wait_for(
                "30 consecutive answers from revision v2",
                lambda: loop.trailing_versions(30) == ["v2"] * 30,
                120,
                interval=0.2,
            )
            # old tasks drained and stopped: every running container of the service is the new revision
            def only_new_revision() -> bool:
                revisions = {_label(c, "berth.revision") for c in containers(f"berth.service={arn}")}
                return bool(revisions) and old_revision not in revisions

            wait_for("the old revision's containers to stop", only_new_revision, berth.drain_timeout_secs + 60)
            time.sleep(1)  # one more second of traffic after the old tasks are gone
        failures = loop.failures()
        versions = loop.versions()
        assert len(loop.results) > 50, f"only {len(loop.results)} requests ran"
        assert not failures, f"{len(failures)} of {len(loop.results)} requests failed during the update: {failures[:5]}"
        assert set(versions) <= {"dev", "v2"}, set(versions)
        assert "v2" in versions and versions[-1] == "v2"

        svc = berth.describe_service(arn)
        envs = [
            {e["name"]: e["value"] for e in (c.get("primaryContainer") or {}).get("environment") or []}
            for c in svc["activeConfigurations"]
        ]
        assert {"DEMO_VERSION": "v2"} in envs, svc["activeConfigurations"]
        assert berth.https_get(endpoint, "/").header("x-demo-version") == "v2"

        # -- delete: DRAINING → INACTIVE, containers gone, host answers 404
        deleted = berth.ecs().delete_express_gateway_service(serviceArn=arn)["service"]
        assert deleted["status"]["statusCode"] == "DRAINING", deleted["status"]
        berth.wait_inactive(arn, timeout=berth.drain_timeout_secs + 60)
        wait_for("the service's containers to be gone", lambda: not containers(f"berth.service={arn}"), 30)
        # Raises unless the endpoint answers the listener's 404 (no rule for the host any more).
        berth.wait_status(endpoint, 404, "/", timeout=15)
        assert berth.ecs().list_services(cluster="default").get("serviceArns", []).count(arn) == 0

        # -- the name can be used again at once
        again = berth.create_service(name)
        arn = again["serviceArn"]
        assert again["status"]["statusCode"] == "ACTIVE"
        endpoint2 = berth.wait_endpoint(arn)
        assert berth.wait_status(endpoint2, 200, "/ping", timeout=60).text == "pong"
        berth.delete_service(arn, wait=True, timeout=berth.drain_timeout_secs + 60)
    finally:
        berth.best_effort_delete(arn)


def test_unknown_host_answers_404(berth):
    r = berth.https_get("nothing-here-000000.ecs.us-east-1.localhost", "/")
    assert r.status == 404, r


def _label(container: dict, key: str) -> str:
    for pair in container.get("Labels", "").split(","):
        k, _, v = pair.partition("=")
        if k == key:
            return v
    return ""
