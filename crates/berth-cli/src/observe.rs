//! What berth says about one Express service right now, gathered from its public API in one pass: the service,
//! its ECS view (counts, events), its deployment, its revisions' managed resources, its tasks and their target
//! health. `progress` draws it while a deployment runs and `status` prints it; both are pure functions of it.

use std::collections::BTreeSet;

use berth_client::{ClientError, Service};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::service::denied;
use crate::{CliError, Ctx};

/// One observation (every member is the API's JSON, botocore member names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observed {
    /// When it was taken (epoch seconds).
    pub at: f64,
    /// DescribeExpressGatewayService `service`.
    pub service: Value,
    /// DescribeServices `services[0]`.
    #[serde(default)]
    pub ecs: Value,
    /// DescribeServiceDeployments `serviceDeployments[0]` (null when there is none).
    #[serde(default)]
    pub deployment: Value,
    /// DescribeServiceRevisions `serviceRevisions` of the active configurations and the deployment's revisions.
    #[serde(default)]
    pub revisions: Vec<Value>,
    /// DescribeTasks `tasks`: running ones, then recently stopped ones.
    #[serde(default)]
    pub tasks: Vec<Value>,
    /// DescribeTargetHealth per target group of the service.
    #[serde(default)]
    pub targets: Vec<GroupHealth>,
    /// What could not be read for lack of permission (shown as a note).
    #[serde(default)]
    pub denied: Vec<String>,
}

/// One target group's targets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupHealth {
    pub target_group_arn: String,
    /// `TargetHealthDescriptions`.
    pub targets: Vec<Value>,
}

impl Observed {
    /// Takes an observation of `arn`; `deployment_arn` picks the deployment to follow (else the current one).
    pub async fn take(ctx: &Ctx, arn: &str, deployment_arn: Option<&str>) -> Result<Observed, CliError> {
        let mut o = Observed { at: now(), ..Default::default() };
        o.service = crate::service::describe(ctx, arn).await?;
        let ecs = call(
            ctx,
            Service::Ecs,
            "DescribeServices",
            json!({"cluster": cluster_of(ctx, &o.service), "services": [arn]}),
        )
        .await?;
        o.ecs = ecs["services"][0].clone();
        let dep_arn = deployment_arn
            .map(str::to_string)
            .or_else(|| o.ecs["currentServiceDeployment"].as_str().map(str::to_string))
            .or_else(|| o.service["currentDeployment"].as_str().map(str::to_string));
        if let Some(dep_arn) = dep_arn.filter(|a| !a.is_empty()) {
            let d = call(ctx, Service::Ecs, "DescribeServiceDeployments", json!({"serviceDeploymentArns": [dep_arn]}))
                .await?;
            o.deployment = d["serviceDeployments"][0].clone();
        }
        o.revisions = revisions(ctx, &o).await?;
        o.tasks = tasks(ctx, &o).await?;
        for tg in o.target_groups() {
            match ctx.client.call_value(Service::Elbv2, "DescribeTargetHealth", json!({"TargetGroupArn": tg})).await {
                Ok(v) => o.targets.push(GroupHealth {
                    target_group_arn: tg,
                    targets: v["TargetHealthDescriptions"].as_array().cloned().unwrap_or_default(),
                }),
                Err(e) if denied(&e) => o.denied.push("elasticloadbalancing:DescribeTargetHealth".into()),
                // A group deleted between two reads (a deployment finished): nothing to show for it.
                Err(ClientError::Api { code, .. }) if code == "TargetGroupNotFound" => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(o)
    }

    /// The service's target groups, from its revisions' managed resources (first seen first).
    pub fn target_groups(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in &self.revisions {
            for path in r["ecsManagedResources"]["ingressPaths"].as_array().into_iter().flatten() {
                for tg in path["targetGroups"].as_array().into_iter().flatten() {
                    if let Some(a) = tg["arn"].as_str()
                        && seen.insert(a.to_string())
                    {
                        out.push(a.to_string());
                    }
                }
            }
        }
        out
    }

    /// A task's private IP (the target id its target groups know it by).
    pub fn task_ip(task: &Value) -> Option<&str> {
        task["containers"]
            .as_array()?
            .iter()
            .find_map(|c| c["networkInterfaces"].as_array()?.iter().find_map(|n| n["privateIpv4Address"].as_str()))
    }

    /// The target health state of a task (`healthy`, `initial`, `unhealthy`, `draining`…), `None` when no
    /// target group has it.
    pub fn task_health(&self, task: &Value) -> Option<String> {
        let ip = Self::task_ip(task)?;
        let states: Vec<&str> = self
            .targets
            .iter()
            .flat_map(|g| g.targets.iter())
            .filter(|t| t["Target"]["Id"].as_str() == Some(ip))
            .filter_map(|t| t["TargetHealth"]["State"].as_str())
            .collect();
        // A task registered in two groups: the best state counts.
        for s in ["healthy", "initial", "unhealthy", "draining", "unused"] {
            if states.contains(&s) {
                return Some(s.to_string());
            }
        }
        states.first().map(|s| s.to_string())
    }

    /// The revision ARN a task belongs to: the revision whose task definition it runs.
    pub fn task_revision(&self, task: &Value) -> Option<String> {
        let td = task["taskDefinitionArn"].as_str()?;
        self.revisions
            .iter()
            .find(|r| r["taskDefinition"].as_str() == Some(td))
            .and_then(|r| r["serviceRevisionArn"].as_str())
            .map(str::to_string)
    }

    /// The running (not stopped) tasks.
    pub fn live_tasks(&self) -> impl Iterator<Item = &Value> {
        self.tasks.iter().filter(|t| t["lastStatus"].as_str() != Some("STOPPED"))
    }
}

fn cluster_of<'a>(ctx: &'a Ctx, service: &'a Value) -> &'a str {
    service["cluster"].as_str().map(crate::service::short_name).unwrap_or(&ctx.cluster)
}

async fn call(ctx: &Ctx, service: Service, action: &str, input: Value) -> Result<Value, CliError> {
    Ok(ctx.client.call_value(service, action, input).await?)
}

async fn revisions(ctx: &Ctx, o: &Observed) -> Result<Vec<Value>, CliError> {
    let mut arns: Vec<String> = Vec::new();
    let mut push = |a: Option<&str>| {
        if let Some(a) = a.filter(|a| !a.is_empty())
            && !arns.iter().any(|x| x == a)
        {
            arns.push(a.to_string());
        }
    };
    for c in o.service["activeConfigurations"].as_array().into_iter().flatten() {
        push(c["serviceRevisionArn"].as_str());
    }
    push(o.deployment["targetServiceRevision"]["arn"].as_str());
    for s in o.deployment["sourceServiceRevisions"].as_array().into_iter().flatten() {
        push(s["arn"].as_str());
    }
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    arns.truncate(20);
    let out = call(ctx, Service::Ecs, "DescribeServiceRevisions", json!({"serviceRevisionArns": arns})).await?;
    Ok(out["serviceRevisions"].as_array().cloned().unwrap_or_default())
}

async fn tasks(ctx: &Ctx, o: &Observed) -> Result<Vec<Value>, CliError> {
    let Some(name) = o.service["serviceName"].as_str() else {
        return Ok(Vec::new());
    };
    let cluster = cluster_of(ctx, &o.service).to_string();
    let mut arns: Vec<Value> = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let mut token: Option<String> = None;
        // Bounded: at most 10 pages of running tasks; one page of stopped ones (only the recent ones matter).
        let pages = if desired == "RUNNING" { 10 } else { 1 };
        for _ in 0..pages {
            let mut input = json!({"cluster": cluster, "serviceName": name, "desiredStatus": desired});
            if let Some(t) = &token {
                input["nextToken"] = json!(t);
            }
            let page = call(ctx, Service::Ecs, "ListTasks", input).await?;
            arns.extend(page["taskArns"].as_array().cloned().unwrap_or_default());
            token = page["nextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let page = call(ctx, Service::Ecs, "DescribeTasks", json!({"cluster": cluster, "tasks": chunk})).await?;
        out.extend(page["tasks"].as_array().cloned().unwrap_or_default());
    }
    // Running first, then the newest stopped ones; at most 20 stopped.
    out.sort_by(|a, b| {
        let stopped = |t: &Value| t["lastStatus"].as_str() == Some("STOPPED");
        let created = |t: &Value| t["createdAt"].as_f64().unwrap_or(0.0);
        stopped(a).cmp(&stopped(b)).then(created(b).total_cmp(&created(a)))
    });
    let mut stopped = 0;
    out.retain(|t| {
        if t["lastStatus"].as_str() == Some("STOPPED") {
            stopped += 1;
            stopped <= 20
        } else {
            true
        }
    });
    Ok(out)
}

/// Now, as epoch seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `2026-12-08 10:00:01Z` for an epoch time (UTC).
pub fn utc(t: f64) -> String {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t.floor() as i64) else {
        return "?".into();
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    dt.format(&fmt).unwrap_or_else(|_| "?".into())
}
