//! `berth resources NAME`: every resource berth created for a service (DescribeServiceRevisions'
//! `ecsManagedResources` of its active revisions), as a tree with ARNs and statuses.

use serde_json::{Value, json};

use crate::lookup;
use crate::output::{Doc, Format, Section, Table};
use crate::{CliError, Ctx};

pub const EXAMPLES: &str = "Examples:
  berth resources web
  berth resources web -o text | awk -F'\\t' '$1 == \"target-group\" {print $2}'";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (a name in --cluster, or its ARN).
    pub name: String,
}

/// One resource: its depth in the tree, type, ARN, status and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub depth: usize,
    pub kind: String,
    pub arn: String,
    pub status: String,
    pub detail: String,
}

fn node(depth: usize, kind: &str, v: &Value, detail: String) -> Option<Node> {
    Some(Node {
        depth,
        kind: kind.to_string(),
        arn: v["arn"].as_str()?.to_string(),
        status: v["status"].as_str().unwrap_or("-").to_string(),
        detail,
    })
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The resources of the revisions' `ecsManagedResources`, merged (a resource shared by two revisions appears
/// once), grouped: ingress path (load balancer, its security groups, listener, rule, certificate, target
/// groups), autoscaling (scalable target, policies), alarms, service security groups, log groups.
pub fn tree(revisions: &[Value]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut push = |n: Option<Node>| {
        if let Some(n) = n
            && !nodes.iter().any(|m| m.arn == n.arn && m.kind == n.kind)
        {
            nodes.push(n);
        }
    };
    let managed: Vec<&Value> = revisions.iter().map(|r| &r["ecsManagedResources"]).collect();
    for m in &managed {
        for p in list(&m["ingressPaths"]) {
            let lb = &p["loadBalancer"];
            push(node(0, "load-balancer", lb, lb["scheme"].as_str().unwrap_or_default().to_string()));
            for sg in list(&p["loadBalancerSecurityGroups"]) {
                push(node(1, "load-balancer-security-group", sg, String::new()));
            }
            push(node(1, "listener", &p["listener"], String::new()));
            let cert = &p["certificate"];
            push(node(2, "certificate", cert, cert["domainName"].as_str().unwrap_or_default().to_string()));
            push(node(
                2,
                "listener-rule",
                &p["rule"],
                p["endpoint"].as_str().map(|e| format!("host {e}")).unwrap_or_default(),
            ));
            for tg in list(&p["targetGroups"]) {
                let mut detail = Vec::new();
                if let Some(port) = tg["port"].as_u64() {
                    detail.push(format!("port {port}"));
                }
                if let Some(path) = tg["healthCheckPath"].as_str() {
                    detail.push(format!("health {path}"));
                }
                push(node(3, "target-group", tg, detail.join(", ")));
            }
        }
    }
    for m in &managed {
        let a = &m["autoScaling"];
        let t = &a["scalableTarget"];
        let range = match (t["minCapacity"].as_u64(), t["maxCapacity"].as_u64()) {
            (Some(lo), Some(hi)) => format!("{lo}..{hi} tasks"),
            _ => String::new(),
        };
        push(node(0, "scalable-target", t, range));
        for p in list(&a["applicationAutoScalingPolicies"]) {
            let detail = match (p["metric"].as_str(), p["targetValue"].as_f64()) {
                (Some(m), Some(v)) => format!("{m} target {v}"),
                (Some(m), None) => m.to_string(),
                _ => p["policyType"].as_str().unwrap_or_default().to_string(),
            };
            push(node(1, "scaling-policy", p, detail));
        }
    }
    for m in &managed {
        for a in list(&m["metricAlarms"]) {
            push(node(0, "metric-alarm", a, String::new()));
        }
    }
    for m in &managed {
        for sg in list(&m["serviceSecurityGroups"]) {
            push(node(0, "security-group", sg, String::new()));
        }
    }
    for m in &managed {
        for g in list(&m["logGroups"]) {
            push(node(0, "log-group", g, g["logGroupName"].as_str().unwrap_or_default().to_string()));
        }
    }
    nodes
}

/// Tree glyphs for each node: `├─`/`└─` by whether a later sibling follows, `│ ` down the open branches.
pub fn glyphs(nodes: &[Node]) -> Vec<String> {
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let mut prefix = String::new();
        // Ancestors' columns (levels 0..depth): a bar while that ancestor has a later sibling.
        for level in 0..=n.depth {
            let later_sibling = nodes[i + 1..].iter().take_while(|m| m.depth >= level).any(|m| m.depth == level);
            if level == n.depth {
                prefix.push_str(if later_sibling { "├─ " } else { "└─ " });
            } else {
                prefix.push_str(if later_sibling { "│  " } else { "   " });
            }
        }
        out.push(format!("{prefix}{}", n.kind));
    }
    out
}

pub fn doc(service: &str, service_arn: &str, status: &str, revisions: &[Value], format: Format) -> Doc {
    let nodes = tree(revisions);
    let json = json!({
        "serviceName": service,
        "serviceArn": service_arn,
        "revisions": revisions.iter().map(|r| json!({
            "serviceRevisionArn": r["serviceRevisionArn"],
            "ecsManagedResources": r["ecsManagedResources"],
        })).collect::<Vec<_>>(),
    });
    let mut t = match format {
        Format::Table => Table::new(&["RESOURCE", "ARN", "STATUS", "DETAIL"]),
        _ => Table::default(),
    };
    match format {
        Format::Table => {
            t.row(vec![format!("service {service}"), service_arn.to_string(), status.to_string(), String::new()]);
            for (n, g) in nodes.iter().zip(glyphs(&nodes)) {
                t.row(vec![g, n.arn.clone(), n.status.clone(), n.detail.clone()]);
            }
        }
        _ => {
            for n in &nodes {
                t.row(vec![n.kind.clone(), n.arn.clone(), n.status.clone()]);
            }
        }
    }
    Doc { json, sections: vec![Section::Table { title: None, table: t }] }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let found = crate::service::find(ctx, &args.name).await?;
    let revisions = lookup::revisions(ctx, &lookup::active_revisions(&found)).await?;
    let status = found.service["status"]["statusCode"].as_str().unwrap_or("-").to_string();
    Ok(doc(&found.name, &found.arn, &status, &revisions, ctx.out.format))
}
