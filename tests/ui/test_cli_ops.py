"""The operations commands of the `berth` CLI end to end, against a real berth on real Docker: `logs` (once, with
`--filter`, and `-f` following a new line until SIGINT), `resources`, `plan`/`apply` (create, nothing to do, an
update that deploys, `--prune` only with consent), `rollback` (after a finished deployment: back to the previous
image; during a deployment: StopServiceDeployment), `promote` (skips the canary bake), and `ca --install`.

Services are created with boto3 the way tests/e2e do; the CLI runs as a local user (`berth.berth_cli`: no AWS_*
variables, the data dir's credentials and CA). The rollback/promote-during-a-deployment test runs its own berth with
a 60 s canary bake (the session's runs with bakes of 0).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from berthlib import (
    DEMO_IMAGE,
    BerthInstance,
    Ports,
    pick_free_ports,
    serving_service,
    unique,
    wait_for,
)

UNFINISHED = {"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"}


@pytest.fixture(scope="module", autouse=True)
def roles(berth):
    berth.ensure_express_roles()


def cli_json(berth: BerthInstance, *args: str, timeout: float = 120):
    out = berth.berth_cli(*args, "-o", "json", timeout=timeout)
    assert out.returncode == 0, f"berth {' '.join(args)}: rc {out.returncode}\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)


def deployments(berth: BerthInstance, arn: str, cluster: str = "default") -> list[dict]:
    ecs = berth.ecs()
    briefs = ecs.list_service_deployments(cluster=cluster, service=arn)["serviceDeployments"]
    if not briefs:
        return []
    arns = [b["serviceDeploymentArn"] for b in briefs[:20]]
    described = ecs.describe_service_deployments(serviceDeploymentArns=arns)["serviceDeployments"]
    return sorted(described, key=lambda d: d["createdAt"], reverse=True)


def wait_settled(berth: BerthInstance, arn: str, timeout: float = 120, cluster: str = "default") -> dict:
    """Waits until the newest deployment is finished; returns it."""

    def probe():
        ds = deployments(berth, arn, cluster)
        return ds[0] if ds and ds[0]["status"] not in UNFINISHED else None

    return wait_for(f"{arn}'s deployment to finish", probe, timeout, interval=0.5)


def version(berth: BerthInstance, endpoint: str) -> str | None:
    return berth.https_get(endpoint, "/ping").header("x-demo-version")


def update_version(berth: BerthInstance, arn: str, v: str) -> None:
    berth.ecs().update_express_gateway_service(
        serviceArn=arn,
        primaryContainer={"image": DEMO_IMAGE, "environment": [{"name": "DEMO_VERSION", "value": v}]},
    )


def running_deployment(berth: BerthInstance, arn: str) -> dict:
    ds = deployments(berth, arn)
    assert ds and ds[0]["status"] in {"PENDING", "IN_PROGRESS"}, ds[:1]
    return ds[0]


# ------------------------------------------------------------------------------------------------------ logs


class LineReader:
    """Reads a child's stdout lines on a thread, so the test can wait for one with a bounded timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(proc,), daemon=True)
        self.thread.start()

    def _run(self, proc):
        for line in proc.stdout:
            self.lines.put(line)

    def wait_for(self, predicate, timeout: float) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.25)
            except queue.Empty:
                continue
            seen.append(line)
            if predicate(line):
                return seen
        raise AssertionError(f"no matching line within {timeout}s; saw {seen[-20:]}")


def test_logs_show_filter_and_follow(berth):
    with serving_service(berth, "cli-logs") as svc:
        name, endpoint = svc["name"], svc["endpoint"]
        marker_a, marker_b = unique("alpha"), unique("beta")
        assert berth.https_get(endpoint, f"/status/203?m={marker_a}").status == 203
        assert berth.https_get(endpoint, f"/status/204?m={marker_b}").status == 204

        # the demo's start line and the request lines, as raw messages (text)
        def both_shipped():
            out = berth.berth_cli("logs", name, "--since", "5m", "-o", "text")
            assert out.returncode == 0, out.stderr
            return out.stdout if marker_a in out.stdout and marker_b in out.stdout else None

        text = wait_for("both request lines in `berth logs`", both_shipped, timeout=60, interval=1)
        assert "listening on" in text, text
        assert any(line.startswith("berth-demo ") for line in text.splitlines()), "text is the raw message"

        # table: TIMESTAMP TASK MESSAGE with the task id
        table = berth.berth_cli("logs", name, "--since", "5m")
        assert table.returncode == 0, table.stderr
        head, *rows = table.stdout.splitlines()
        assert head.split() == ["TIMESTAMP", "TASK", "MESSAGE"], head
        line_a = next(r for r in rows if marker_a in r)
        ts, task = line_a.split()[:2]
        assert ts.startswith("20") and ts.endswith("Z"), line_a
        task_ids = {t.rsplit("/", 1)[-1] for t in berth.task_arns(name)}
        assert task in task_ids, (task, task_ids)

        # --filter: only the matching events; json: an array of objects
        events = cli_json(berth, "logs", name, "--since", "5m", "--filter", marker_a)
        assert isinstance(events, list) and events, events
        assert all(marker_a in e["message"] for e in events), events
        assert {"timestamp", "task", "message", "eventId", "logStreamName"} <= set(events[0]), events[0]
        assert not [e for e in events if marker_b in e["message"]]

        # --since in the future: nothing; a bad --since: usage
        assert cli_json(berth, "logs", name, "--since", "2099-01-01T00:00:00Z") == []
        bad = berth.berth_cli("logs", name, "--since", "yesterday")
        assert bad.returncode == 2 and "--since" in bad.stderr, bad.stderr
        missing = berth.berth_cli("logs", "no-such-service")
        assert missing.returncode == 3, (missing.returncode, missing.stderr)

        # -f: JSON lines; a line written after it started shows up; SIGINT ends it with 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(BERTH_DATA_DIR=str(berth.data_dir), BERTH_CONFIG=str(berth.config_path), NO_COLOR="1")
        proc = subprocess.Popen(
            [str(berth.binary), "logs", name, "-f", "--since", "5m", "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            reader = LineReader(proc)
            reader.wait_for(lambda l: marker_a in l, timeout=30)  # the backlog first
            marker_c = unique("gamma")
            assert berth.https_get(endpoint, f"/status/202?m={marker_c}").status == 202
            seen = reader.wait_for(lambda l: marker_c in l, timeout=30)
            event = json.loads(seen[-1])
            assert marker_c in event["message"] and event["task"] in task_ids, event
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------------- resources


def test_resources_tree(berth):
    with serving_service(berth, "cli-res") as svc:
        name = svc["name"]
        out = berth.berth_cli("resources", name, "-o", "text")
        assert out.returncode == 0, out.stderr
        rows = [line.split("\t") for line in out.stdout.splitlines()]
        assert all(len(r) == 3 for r in rows), rows
        kinds = {}
        for kind, arn, status in rows:
            assert arn.startswith("arn:aws:"), (kind, arn)
            kinds.setdefault(kind, []).append((arn, status))
        for kind, service in [
            ("load-balancer", ":elasticloadbalancing:"),
            ("listener", ":elasticloadbalancing:"),
            ("listener-rule", ":elasticloadbalancing:"),
            ("target-group", ":elasticloadbalancing:"),
            ("scalable-target", ":application-autoscaling:"),
            ("scaling-policy", ":autoscaling:"),
            ("metric-alarm", ":cloudwatch:"),
            ("security-group", ":ec2:"),
            ("log-group", ":logs:"),
        ]:
            assert kind in kinds, (kind, sorted(kinds))
            assert all(service in arn for arn, _ in kinds[kind]), (kind, kinds[kind])
        assert kinds["target-group"][0][1] == "ACTIVE", kinds["target-group"]

        # the ARNs are the ones the AWS APIs know
        revision = berth.describe_service(svc["arn"])["activeConfigurations"][0]["serviceRevisionArn"]
        managed = berth.ecs().describe_service_revisions(serviceRevisionArns=[revision])["serviceRevisions"][0][
            "ecsManagedResources"
        ]
        assert kinds["listener-rule"][0][0] == managed["ingressPaths"][0]["rule"]["arn"]
        assert kinds["log-group"][0][0] == managed["logGroups"][0]["arn"]

        table = berth.berth_cli("resources", name)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:4] == ["RESOURCE", "ARN", "STATUS", "DETAIL"], lines[0]
        assert lines[1].startswith(f"service {name}"), lines[1]
        assert any("├─ load-balancer" in l for l in lines) and any("└─ log-group" in l for l in lines), table.stdout
        assert any("│" in l and "target-group" in l for l in lines), table.stdout

        doc = cli_json(berth, "resources", name)
        assert doc["serviceArn"] == svc["arn"]
        assert doc["revisions"][0]["ecsManagedResources"]["ingressPaths"][0]["rule"]["arn"] == kinds["listener-rule"][0][0]


# -------------------------------------------------------------------------------------------- plan and apply


def test_plan_apply_update_and_prune(berth, tmp_path):
    cluster = unique("cli-apply")
    name = unique("web")
    file = tmp_path / "berth.toml"
    file.write_text(f'[services.{name}]\nimage = "{DEMO_IMAGE}"\n')
    # a cluster that does not exist yet holds no services: everything is a create
    fresh = berth.berth_cli("plan", "-f", str(file), "--cluster", cluster, "-o", "text")
    assert fresh.returncode == 0 and fresh.stdout.split("\t")[:3] == ["create", name, "image"], fresh
    berth.ecs().create_cluster(clusterName=cluster)

    def write(mode: str) -> None:
        file.write_text(
            f'[services.{name}]\nimage = "{DEMO_IMAGE}"\nport = 80\nhealth_path = "/ping"\n'
            f'min = 1\nmax = 2\nenv = {{ DEMO_VERSION = "{mode}", MODE = "{mode}" }}\n'
        )

    def cli(*args: str, **kw):
        return berth.berth_cli(*args, "--cluster", cluster, **kw)

    arns = []
    try:
        write("one")
        plan = cli("plan", "-f", str(file))
        assert plan.returncode == 0, plan.stderr
        assert f"+ {name} (create)" in plan.stdout and "Plan: 1 to create, 0 to update" in plan.stdout, plan.stdout
        assert cli("plan", "-f", str(file), "--exit-code").returncode == 1

        applied = cli("apply", "-f", str(file), "-o", "json")
        assert applied.returncode == 0, applied.stderr
        doc = json.loads(applied.stdout)
        assert [a["action"] for a in doc["applied"]] == ["create"], doc
        arn = doc["applied"][0]["serviceArn"]
        arns.append(arn)
        endpoint = berth.wait_endpoint(arn)
        berth.wait_status(endpoint, 200, "/ping", timeout=60)
        assert version(berth, endpoint) == "one"

        # nothing to do now
        again = cli("plan", "-f", str(file), "-o", "json", "--exit-code")
        assert again.returncode == 0, again.stdout
        assert [c["action"] for c in json.loads(again.stdout)["changes"]] == ["unchanged"]
        noop = cli("apply", "-f", str(file))
        assert noop.returncode == 0 and "nothing to do" in noop.stdout, noop.stdout
        assert len(deployments(berth, arn, cluster)) == 1, "apply with nothing to do started a deployment"

        # a changed env is an update of that field only, and apply deploys it
        write("two")
        plan = cli("plan", "-f", str(file), "-o", "text")
        assert plan.returncode == 0, plan.stderr
        rows = [l.split("\t") for l in plan.stdout.splitlines()]
        assert rows == [["update", name, "env", "{DEMO_VERSION=one, MODE=one}", "{DEMO_VERSION=two, MODE=two}"]], rows
        assert cli("apply", "-f", str(file)).returncode == 0
        assert wait_settled(berth, arn, cluster=cluster)["status"] == "SUCCESSFUL"
        wait_for("version two", lambda: version(berth, endpoint) == "two", timeout=30)
        config = berth.describe_service(arn)["activeConfigurations"][0]
        assert config["healthCheckPath"] == "/ping" and config["scalingTarget"]["maxTaskCount"] == 2, config

        # a service the file does not name: kept without --prune, deleted with it only after consent
        other = berth.create_service(unique("other"), cluster=cluster)["serviceArn"]
        arns.append(other)
        plan = cli("plan", "-f", str(file))
        assert "--prune would delete it" in plan.stdout, plan.stdout
        assert "to delete" in plan.stdout and "0 to delete" in plan.stdout
        plan = cli("plan", "-f", str(file), "--prune")
        assert "(delete: not in" in plan.stdout, plan.stdout
        refused = cli("apply", "-f", str(file), "--prune")  # stdin is not a terminal and no --yes
        assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr
        assert berth.describe_service(other)["status"]["statusCode"] == "ACTIVE"
        declined = cli("apply", "-f", str(file), "--prune", input="n\n")
        assert declined.returncode != 0
        assert berth.describe_service(other)["status"]["statusCode"] == "ACTIVE"
        pruned = cli("apply", "-f", str(file), "--prune", "--yes", "-o", "json")
        assert pruned.returncode == 0, pruned.stderr
        assert [(a["action"], a["serviceArn"]) for a in json.loads(pruned.stdout)["applied"]] == [("delete", other)]
        assert berth.describe_service(other)["status"]["statusCode"] in {"DRAINING", "INACTIVE"}
        assert berth.describe_service(arn)["status"]["statusCode"] == "ACTIVE"

        # a bad file names the file, the service and the field; exit 2
        file.write_text(f'[services.{name}]\nimage = "{DEMO_IMAGE}"\nprot = 80\n')
        bad = cli("plan", "-f", str(file))
        assert bad.returncode == 2 and f"services.{name}.prot" in bad.stderr and str(file) in bad.stderr, bad.stderr
    finally:
        for a in arns:
            berth.best_effort_delete(a)


# ------------------------------------------------------------------------------------------------- rollback


def test_rollback_after_a_finished_deployment(berth):
    with serving_service(berth, "cli-rb") as svc:
        name, arn, endpoint = svc["name"], svc["arn"], svc["endpoint"]
        first = berth.berth_cli("rollback", name)
        assert first.returncode == 1 and "nothing to roll back" in first.stderr, (first.returncode, first.stderr)
        assert berth.berth_cli("promote", name).returncode == 1

        update_version(berth, arn, "v2")
        assert wait_settled(berth, arn)["status"] == "SUCCESSFUL"
        wait_for("v2 serving", lambda: version(berth, endpoint) == "v2", timeout=30)
        before = len(deployments(berth, arn))

        d = cli_json(berth, "rollback", name)
        assert d["serviceDeploymentArn"].startswith("arn:aws:ecs:"), d
        assert len(deployments(berth, arn)) == before + 1
        done = wait_settled(berth, arn)
        assert done["serviceDeploymentArn"] == d["serviceDeploymentArn"] and done["status"] == "SUCCESSFUL", done
        wait_for("the first version again", lambda: version(berth, endpoint) == "dev", timeout=30)
        image = berth.describe_service(arn)["activeConfigurations"][0]["primaryContainer"]
        assert not [e for e in image.get("environment", []) if e["name"] == "DEMO_VERSION"], image


@pytest.fixture(scope="module")
def baking_berth(demo_image):
    """A berth of its own whose canary bakes 60 s, so a deployment can be caught running."""
    api, https, http_, internal = pick_free_ports(4)
    instance = BerthInstance(
        binary=Path(os.environ.get("BERTH_BINARY", Path(__file__).resolve().parents[2] / "target/release/berth")),
        ports=Ports(api=api, https=https, http=http_, internal=internal),
        canary_bake_secs=60,
        bake_secs=0,
    )
    try:
        instance.start()
        instance.ensure_express_roles()
        yield instance
    finally:
        instance.stop()
        instance.remove_containers()
        shutil.rmtree(instance.data_dir, ignore_errors=True)


def wait_baking(berth: BerthInstance, arn: str) -> dict:
    def probe():
        ds = deployments(berth, arn)
        if not ds or ds[0]["status"] != "IN_PROGRESS":
            return None
        hooks = [h for h in ds[0].get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]
        return ds[0] if hooks else None

    return wait_for("the canary bake to open", probe, timeout=90, interval=0.5)


def test_rollback_and_promote_during_a_deployment(baking_berth):
    b = baking_berth
    with serving_service(b, "cli-bake") as svc:
        name, arn, endpoint = svc["name"], svc["arn"], svc["endpoint"]

        # rollback while the canary bakes: StopServiceDeployment(ROLLBACK), back to the first version
        update_version(b, arn, "v2")
        baking = wait_baking(b, arn)
        out = b.berth_cli("rollback", name)
        assert out.returncode == 0, out.stderr
        assert baking["serviceDeploymentArn"] in out.stdout, out.stdout
        t0 = time.monotonic()
        done = wait_settled(b, arn, timeout=60)
        assert done["serviceDeploymentArn"] == baking["serviceDeploymentArn"], done
        assert done["status"] == "ROLLBACK_SUCCESSFUL", done
        assert time.monotonic() - t0 < 45, "the rollback waited out the bake"
        wait_for("the first version", lambda: version(b, endpoint) == "dev", timeout=30)

        # promote: the bake is skipped, the new version serves well before 60 s
        update_version(b, arn, "v3")
        baking = wait_baking(b, arn)
        t0 = time.monotonic()
        d = cli_json(b, "promote", name)
        assert d["serviceDeploymentArn"] == baking["serviceDeploymentArn"], d
        done = wait_settled(b, arn, timeout=60)
        assert done["status"] == "SUCCESSFUL", done
        assert time.monotonic() - t0 < 40, "promote did not skip the 60 s bake"
        wait_for("v3 serving", lambda: version(b, endpoint) == "v3", timeout=30)
        nothing = b.berth_cli("promote", name)
        assert nothing.returncode == 1 and "nothing to promote" in nothing.stderr, nothing.stderr


# ------------------------------------------------------------------------------------------------------ ca


def test_ca_print_and_json(berth):
    pem = berth.ca_path.read_text()
    out = berth.berth_cli("ca")
    assert out.returncode == 0 and out.stdout == pem
    doc = cli_json(berth, "ca")
    assert doc["pem"] == pem and doc["path"] == str(berth.ca_path)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("update-ca-certificates"), reason="needs root and update-ca-certificates"
)
def test_ca_install_into_the_system_store(berth):
    pem = berth.ca_path.read_text()
    body = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
    store = Path("/usr/local/share/ca-certificates")
    before = set(store.glob("berth-*.crt")) if store.exists() else set()
    installed: set[Path] = set()
    try:
        out = berth.berth_cli("ca", "--install", "-o", "json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["installed"] and not doc["alreadyInstalled"] and doc["method"] == "update-ca-certificates", doc
        installed = set(store.glob("berth-*.crt")) - before
        assert [str(p) for p in installed] == [doc["file"]], (installed, doc)
        assert Path(doc["file"]).read_text() == pem
        bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text().replace("\n", "")
        assert body in bundle, "the CA is not in the system bundle"
        # idempotent
        again = berth.berth_cli("ca", "--install")
        assert again.returncode == 0 and "already trusted" in again.stdout, again.stdout
        assert set(store.glob("berth-*.crt")) - before == installed
    finally:
        for p in installed:
            p.unlink(missing_ok=True)
        if installed:
            subprocess.run(["update-ca-certificates", "--fresh"], capture_output=True, timeout=120)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text().replace("\n", "")
    assert body not in bundle, "teardown left the CA in the system bundle"


def test_ca_install_into_a_directory_override(berth, tmp_path):
    target = tmp_path / "certs"
    env = {"BERTH_CA_CERTS_DIR": str(target)}
    out = berth.berth_cli("ca", "--install", "-o", "text", env=env)
    assert out.returncode == 0, out.stderr
    files = list(target.glob("berth-*.crt"))
    assert len(files) == 1 and files[0].read_text() == berth.ca_path.read_text()
    assert out.stdout.strip().split("\t") == [str(files[0]), "directory", "installed"], out.stdout
    again = berth.berth_cli("ca", "--install", "-o", "text", env=env)
    assert again.stdout.strip().split("\t") == [str(files[0]), "directory", "unchanged"], again.stdout
    assert list(target.glob("berth-*.crt")) == files
