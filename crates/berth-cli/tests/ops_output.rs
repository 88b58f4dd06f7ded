//! Snapshots of the operations commands' output formats (`resources`, `plan`), fed by fixed JSON: no network.
//! `UPDATE_SNAPSHOTS=1 cargo nextest run -p berth-cli` rewrites tests/snapshots/*.txt.

use std::path::PathBuf;

use berth_cli::manifest::{self, Observed};
use berth_cli::output::{Format, Output};
use serde_json::{Value, json};

fn check(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).expect("write the snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert_eq!(got, want, "{name} differs from {} (UPDATE_SNAPSHOTS=1 rewrites it)", path.display());
}

fn render(format: Format, doc: &berth_cli::output::Doc) -> String {
    Output { format, color: false }.render(doc)
}

const ELB: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000";

fn revision(arn: &str, target_group: &str) -> Value {
    json!({
        "serviceRevisionArn": arn,
        "ecsManagedResources": {
            "ingressPaths": [{
                "accessType": "PUBLIC",
                "endpoint": "web.localhost",
                "loadBalancer": {"arn": format!("{ELB}:loadbalancer/app/ecs-express-gateway-alb-1/abc"),
                                 "status": "ACTIVE", "scheme": "internet-facing"},
                "loadBalancerSecurityGroups": [{"arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-lb",
                                                "status": "ACTIVE"}],
                "listener": {"arn": format!("{ELB}:listener/app/ecs-express-gateway-alb-1/abc/l1"), "status": "ACTIVE"},
                "rule": {"arn": format!("{ELB}:listener-rule/app/ecs-express-gateway-alb-1/abc/l1/r1"), "status": "ACTIVE"},
                "certificate": {"arn": "arn:aws:acm:us-east-1:000000000000:certificate/c1", "status": "ACTIVE",
                                "domainName": "web.localhost"},
                "targetGroups": [{"arn": format!("{ELB}:targetgroup/{target_group}"), "status": "ACTIVE",
                                  "healthCheckPath": "/ping", "port": 80}],
            }],
            "autoScaling": {
                "scalableTarget": {"arn": "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0123",
                                   "status": "ACTIVE", "minCapacity": 1, "maxCapacity": 4},
                "applicationAutoScalingPolicies": [{
                    "arn": "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:0123:resource/ecs/service/default/web:policyName/cpu",
                    "status": "ACTIVE", "policyType": "TargetTrackingScaling", "targetValue": 60.0,
                    "metric": "AVERAGE_CPU"}],
            },
            "metricAlarms": [{"arn": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:web-deploy", "status": "ACTIVE"}],
            "serviceSecurityGroups": [{"arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-svc",
                                       "status": "ACTIVE"}],
            "logGroups": [{"arn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/ecs/default/web",
                           "status": "ACTIVE", "logGroupName": "/aws/ecs/default/web"}],
        }
    })
}

#[test]
fn resources_formats() {
    // two active revisions (a deployment running): shared resources once, both target groups
    let revisions = vec![revision("rev-new", "tg-b/2"), revision("rev-old", "tg-a/1")];
    let arn = "arn:aws:ecs:us-east-1:000000000000:service/default/web";
    let doc = |f| berth_cli::resources::doc("web", arn, "ACTIVE", &revisions, f);
    let table = render(Format::Table, &doc(Format::Table));
    check("resources.table", &table);
    let text = render(Format::Text, &doc(Format::Text));
    check("resources.text", &text);
    assert_eq!(text.lines().filter(|l| l.starts_with("target-group\t")).count(), 2, "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("load-balancer\t")).count(), 1, "{text}");
    let json: Value = serde_json::from_str(&render(Format::Json, &doc(Format::Json))).expect("json");
    assert_eq!(json["revisions"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["revisions"][0]["ecsManagedResources"], revisions[0]["ecsManagedResources"]);
}

#[test]
fn tree_glyphs_close_each_branch() {
    let revisions = vec![revision("rev", "tg/1")];
    let nodes = berth_cli::resources::tree(&revisions);
    let glyphs = berth_cli::resources::glyphs(&nodes);
    assert_eq!(glyphs.first().map(String::as_str), Some("├─ load-balancer"));
    assert_eq!(glyphs.last().map(String::as_str), Some("└─ log-group"));
    // the target group hangs under the rule, the last of the listener's children, under the last of the
    // load balancer's: no bar left open below it except the root's
    let tg = glyphs.iter().find(|g| g.ends_with("target-group")).expect("a target group");
    assert_eq!(tg, "│        └─ target-group");
}

#[test]
fn plan_formats() {
    let file = "[services.web]\nimage = \"berth-demo:v2\"\nenv = { MODE = \"prod\" }\n\
                [services.api]\nimage = \"registry.example.com/api:v2\"\nport = 8080\nmin = 2\nmax = 10\n\
                scale_on = \"requests\"\ntarget = 500\n\
                [services.worker]\nimage = \"worker:1\"\n";
    let m = manifest::parse("berth.toml", file).expect("parses");
    let obs = |name: &str, image: &str| Observed {
        name: name.into(),
        arn: format!("arn:aws:ecs:us-east-1:000000000000:service/default/{name}"),
        image: image.into(),
        env: [("MODE".to_string(), "dev".to_string())].into(),
        ..Observed::default()
    };
    let observed = vec![obs("web", "berth-demo:v1"), obs("worker", "worker:1"), obs("old", "nginx")];
    let observed = observed
        .into_iter()
        .map(|mut o| {
            if o.name == "worker" {
                o.env.clear();
            }
            o
        })
        .collect::<Vec<_>>();
    for (prune, suffix) in [(false, ""), (true, "-prune")] {
        let changes = manifest::plan(&m, &observed, prune);
        for (format, name) in [(Format::Table, "table"), (Format::Text, "text"), (Format::Json, "json")] {
            let doc = berth_cli::apply::plan_doc("berth.toml", &changes, format);
            check(&format!("plan{suffix}.{name}"), &render(format, &doc));
        }
    }
}
