"""Where one update's time goes, from the server's own timestamps: an Express service of the demo image on a
berth with bakes 0, one UpdateExpressGatewayService, then the deployment's, the tasks' and the service events'
times printed in ms from the call (BENCHMARKS.md, "Where the time goes").

Usage: .venv/bin/python bench/deploy/timeline.py   (BERTH_BINARY, default target/release/berth; berth-demo:latest)
"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from berthlib import BerthInstance, Ports, pick_free_ports, unique, wait_for
api, https, http_, internal = pick_free_ports(4)
b = BerthInstance(binary=Path(os.environ.get("BERTH_BINARY", ROOT / "target" / "release" / "berth")), ports=Ports(api=api, https=https, http=http_, internal=internal),
                  canary_bake_secs=0, bake_secs=0, drain_timeout_secs=30)
b.start()
try:
    name = unique("tl")
    arn = b.create_service(name, environment={"DEMO_VERSION": "v1"})["serviceArn"]
    ep = b.wait_endpoint(arn)
    b.wait_status(ep, 200, "/ping", timeout=60)
    ecs = b.ecs()
    def done():
        d = ecs.list_service_deployments(service=name)["serviceDeployments"]
        return all(x["status"] in ("SUCCESSFUL",) for x in d) and d
    wait_for("first deployment", done, timeout=60, interval=0.1)
    time.sleep(2)
    t0 = time.time()
    ecs.update_express_gateway_service(serviceArn=arn, primaryContainer={"image": "berth-demo:latest", "environment": [{"name": "DEMO_VERSION", "value": "v2"}]})
    def two_done():
        d = ecs.list_service_deployments(service=name)["serviceDeployments"]
        return len(d) == 2 and d[0]["status"] == "SUCCESSFUL" and d
    d = wait_for("update", two_done, timeout=60, interval=0.05)
    t_seen = time.time()
    full = ecs.describe_service_deployments(serviceDeploymentArns=[d[0]["serviceDeploymentArn"]])["serviceDeployments"][0]
    print("deployment created %+.0f started %+.0f finished %+.0f (ms from call); seen done %+.0f" % tuple(
        (x - t0) * 1000 for x in (full["createdAt"].timestamp(), full["startedAt"].timestamp(), full["finishedAt"].timestamp(), t_seen)))
    tasks = ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"] + ecs.list_tasks(cluster="default")["taskArns"]
    for t in ecs.describe_tasks(cluster="default", tasks=tasks)["tasks"]:
        marks = []
        for k in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
            if k in t:
                marks.append(f"{k} {(t[k].timestamp() - t0) * 1000:+.0f}")
        print(t["taskArn"].rsplit("/", 1)[1][:8], t["lastStatus"], ", ".join(marks))
    ev = ecs.describe_services(services=[name])["services"][0]["events"]
    for e in sorted(ev, key=lambda e: e["createdAt"]):
        dt = (e["createdAt"].timestamp() - t0) * 1000
        if dt > -100:
            print(f"{dt:+7.0f} ms  {e['message']}")
finally:
    b.cleanup()
