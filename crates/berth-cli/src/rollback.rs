//! `berth rollback NAME` and `berth promote NAME`: the running deployment rolled back or let through its bakes,
//! or, with none running, a new deployment back to the previous revision.

use std::time::{Duration, Instant};

use berth_client::Service;
use serde_json::{Value, json};

use crate::lookup::{self, Found};
use crate::output::{Doc, Format, Section};
use crate::{CliError, Ctx};

pub const ROLLBACK_EXAMPLES: &str = "Examples:
  berth rollback web              # stops the running deployment (back to the old revision), or redeploys the previous one
  berth rollback web -o json      # the deployment, as DescribeServiceDeployments describes it";

pub const PROMOTE_EXAMPLES: &str = "Examples:
  berth promote web               # skip the canary and final bakes of the running deployment";

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The service (a name in --cluster, or its ARN).
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The service (a name in --cluster, or its ARN).
    pub name: String,
    /// How long to wait for a bake to open when the deployment is still scaling up (seconds).
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
}

pub async fn rollback(ctx: &Ctx, args: RollbackArgs) -> Result<Doc, CliError> {
    let found = crate::service::find(ctx, &args.name).await?;
    let deployments = lookup::deployments(ctx, &found, 20).await?;
    if let Some(d) = deployments.iter().find(|d| lookup::running(d["status"].as_str().unwrap_or_default())) {
        let arn = d["serviceDeploymentArn"].as_str().unwrap_or_default().to_string();
        ctx.client
            .call_value(
                Service::Ecs,
                "StopServiceDeployment",
                json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"}),
            )
            .await?;
        let after = lookup::deployment(ctx, &arn).await?;
        let source = first_source(&after).unwrap_or_default();
        let message =
            format!("rolling back deployment {arn} of {}: traffic returns to revision {}", found.name, short(&source));
        return Ok(deployment_doc(ctx, message, after));
    }
    if let Some(d) = deployments.iter().find(|d| {
        matches!(d["status"].as_str(), Some("ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED"))
    }) {
        return Err(CliError::Failed(format!(
            "deployment {} of {} is already {}: wait until it finishes (`berth status {}`)",
            d["serviceDeploymentArn"].as_str().unwrap_or_default(),
            found.name,
            d["status"].as_str().unwrap_or_default().to_lowercase().replace('_', " "),
            found.name
        )));
    }
    let (current, previous) = previous_revision(&deployments, &lookup::active_revisions(&found));
    let current = current
        .ok_or_else(|| CliError::Failed(format!("nothing to roll back: {} has no deployed revision", found.name)))?;
    let previous = previous.ok_or_else(|| {
        CliError::Failed(format!(
            "nothing to roll back: revision {} is the first one {} deployed",
            short(&current),
            found.name
        ))
    })?;
    let request = previous_configuration(ctx, &found, &previous).await?;
    let image = request["primaryContainer"]["image"]
        .as_str()
        .or(request["taskDefinitionArn"].as_str())
        .unwrap_or_default()
        .to_string();
    let before = deployments.first().and_then(|d| d["serviceDeploymentArn"].as_str()).map(String::from);
    ctx.client.call_value(Service::Ecs, "UpdateExpressGatewayService", request).await?;
    // The new deployment is the newest one (UpdateExpressGatewayService's answer does not name it).
    let newest = lookup::deployments(ctx, &found, 1).await?;
    let d = newest
        .into_iter()
        .find(|d| d["serviceDeploymentArn"].as_str().map(String::from) != before)
        .ok_or_else(|| CliError::Failed("the update started no deployment".into()))?;
    let arn = d["serviceDeploymentArn"].as_str().unwrap_or_default().to_string();
    let message = format!(
        "rolling {} back to revision {} ({image}): deployment {arn} goes through the canary",
        found.name,
        short(&previous)
    );
    Ok(deployment_doc(ctx, message, d))
}

pub async fn promote(ctx: &Ctx, args: PromoteArgs) -> Result<Doc, CliError> {
    let found = crate::service::find(ctx, &args.name).await?;
    let deployments = lookup::deployments(ctx, &found, 20).await?;
    let Some(d) = deployments.iter().find(|d| lookup::running(d["status"].as_str().unwrap_or_default())) else {
        return Err(CliError::Failed(format!("nothing to promote: {} has no deployment in progress", found.name)));
    };
    let arn = d["serviceDeploymentArn"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut continued: Vec<String> = Vec::new();
    let mut last = d.clone();
    // Each awaited pause (the canary's bake, then the final bake) is continued as it opens, until the deployment
    // is past its traffic shift or finished.
    while Instant::now() < deadline {
        let d = lookup::deployment(ctx, &arn).await?;
        let status = d["status"].as_str().unwrap_or_default().to_string();
        last = d.clone();
        if !lookup::running(&status) {
            break;
        }
        if let Some(hook) = awaited_hook(&d) {
            if !continued.contains(&hook) {
                let out = ctx
                    .client
                    .call_value(
                        Service::Ecs,
                        "ContinueServiceDeployment",
                        json!({"serviceDeploymentArn": arn, "hookId": hook, "action": "CONTINUE"}),
                    )
                    .await;
                match out {
                    Ok(_) => {
                        if ctx.out.format != Format::Json {
                            eprintln!("continued {hook} at {}", d["lifecycleStage"].as_str().unwrap_or("?"));
                        }
                        continued.push(hook);
                    }
                    // The bake ended by itself between the describe and the continue.
                    Err(e) if e.code() == Some("InvalidParameterException") => {}
                    Err(e) => return Err(e.into()),
                }
            }
        } else if !continued.is_empty() && matches!(d["lifecycleStage"].as_str(), Some("CLEAN_UP")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if continued.is_empty() {
        return Err(CliError::Failed(format!(
            "nothing to promote: deployment {arn} ({}, stage {}) opened no bake within {}s",
            last["status"].as_str().unwrap_or("?"),
            last["lifecycleStage"].as_str().unwrap_or("?"),
            args.wait
        )));
    }
    let message = format!(
        "promoted deployment {arn} of {}: skipped {} bake(s); now {} at {}",
        found.name,
        continued.len(),
        last["status"].as_str().unwrap_or("?"),
        last["lifecycleStage"].as_str().unwrap_or("?")
    );
    Ok(deployment_doc(ctx, message, last))
}

/// The hook the deployment waits on (a bake or a user's pause).
fn awaited_hook(d: &Value) -> Option<String> {
    d["lifecycleHookDetails"]
        .as_array()?
        .iter()
        .find(|h| h["status"].as_str() == Some("AWAITING_ACTION"))
        .and_then(|h| h["hookId"].as_str())
        .map(String::from)
}

fn first_source(d: &Value) -> Option<String> {
    d["sourceServiceRevisions"].as_array()?.first()?["arn"].as_str().map(String::from)
}

/// With no deployment in progress (`deployments` newest first): the revision the service runs (the newest
/// finished deployment's outcome: its target when SUCCESSFUL, its source when rolled back or stopped; else the
/// newest active revision) and the one before it (the source of the SUCCESSFUL deployment that brought it).
pub fn previous_revision(deployments: &[Value], active: &[String]) -> (Option<String>, Option<String>) {
    let outcome = deployments.iter().find_map(|d| match d["status"].as_str() {
        Some("SUCCESSFUL") => d["targetServiceRevision"]["arn"].as_str().map(String::from),
        Some("ROLLBACK_SUCCESSFUL" | "STOPPED") => first_source(d),
        _ => None,
    });
    let Some(current) = outcome.or_else(|| active.first().cloned()) else { return (None, None) };
    let previous = deployments
        .iter()
        .filter(|d| d["status"].as_str() == Some("SUCCESSFUL"))
        .find(|d| d["targetServiceRevision"]["arn"].as_str() == Some(current.as_str()))
        .and_then(first_source)
        .filter(|p| *p != current);
    (Some(current), previous)
}

/// UpdateExpressGatewayService's request that redeploys `revision`: its task definition's container (image, port,
/// environment, secrets, command), size and roles, and its target group's health check path.
async fn previous_configuration(ctx: &Ctx, found: &Found, revision: &str) -> Result<Value, CliError> {
    let revisions = lookup::revisions(ctx, &[revision.to_string()]).await?;
    let rev =
        revisions.first().ok_or_else(|| CliError::Failed(format!("berth no longer describes revision {revision}")))?;
    let td_arn = rev["taskDefinition"]
        .as_str()
        .ok_or_else(|| CliError::Failed(format!("revision {revision} names no task definition")))?;
    let td = ctx.client.call_value(Service::Ecs, "DescribeTaskDefinition", json!({"taskDefinition": td_arn})).await?;
    let td = &td["taskDefinition"];
    // berth registers an Express revision's task definition in the family `<cluster>-<service>`; any other is
    // the user's own (taskDefinitionArn), given back as it was.
    let mut parts = found.arn.rsplit('/');
    let (name, cluster) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if td["family"].as_str().is_some_and(|f| f != format!("{cluster}-{name}")) {
        let mut request = json!({"serviceArn": found.arn, "taskDefinitionArn": td_arn});
        if let Some(path) = health_path(rev) {
            request["healthCheckPath"] = json!(path);
        }
        return Ok(request);
    }
    let containers = td["containerDefinitions"].as_array().cloned().unwrap_or_default();
    let main = containers
        .iter()
        .find(|c| c["essential"].as_bool() != Some(false))
        .or(containers.first())
        .ok_or_else(|| CliError::Failed(format!("task definition {td_arn} has no container")))?;
    let mut container = json!({"image": main["image"]});
    if let Some(port) = main["portMappings"].as_array().and_then(|p| p.first()).map(|p| &p["containerPort"]) {
        container["containerPort"] = port.clone();
    }
    for key in ["environment", "secrets", "command"] {
        if main[key].as_array().is_some_and(|a| !a.is_empty()) {
            container[key] = main[key].clone();
        }
    }
    if let Some(cred) = main["repositoryCredentials"]["credentialsParameter"].as_str() {
        container["repositoryCredentials"] = json!({"credentialsParameter": cred});
    }
    let mut request = json!({"serviceArn": found.arn, "primaryContainer": container});
    for key in ["cpu", "memory", "executionRoleArn", "taskRoleArn"] {
        if let Some(v) = td[key].as_str() {
            request[key] = json!(v);
        }
    }
    if let Some(path) = health_path(rev) {
        request["healthCheckPath"] = json!(path);
    }
    Ok(request)
}

/// The health check path of a revision's target group.
fn health_path(rev: &Value) -> Option<String> {
    rev["ecsManagedResources"]["ingressPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targetGroups"].as_array().cloned().unwrap_or_default())
        .find_map(|g| g["healthCheckPath"].as_str().map(String::from))
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn deployment_doc(ctx: &Ctx, message: String, d: Value) -> Doc {
    let fields = vec![
        ("deployment".to_string(), d["serviceDeploymentArn"].as_str().unwrap_or_default().to_string()),
        ("status".to_string(), d["status"].as_str().unwrap_or_default().to_string()),
        ("stage".to_string(), d["lifecycleStage"].as_str().unwrap_or("-").to_string()),
        ("target".to_string(), d["targetServiceRevision"]["arn"].as_str().unwrap_or("-").to_string()),
    ];
    let mut sections = Vec::new();
    if ctx.out.format == Format::Table {
        sections.push(Section::Lines(vec![message]));
    }
    sections.push(Section::Fields { title: None, fields });
    Doc { json: d, sections }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(status: &str, target: &str, source: Option<&str>) -> Value {
        let sources: Vec<Value> = source.into_iter().map(|s| json!({"arn": s})).collect();
        json!({"status": status, "targetServiceRevision": {"arn": target}, "sourceServiceRevisions": sources})
    }

    /// A case: its name, the deployments newest first, the expected (current, previous).
    type Case = (&'static str, Vec<Value>, (Option<&'static str>, Option<&'static str>));

    #[test]
    fn the_previous_revision() {
        let active = vec!["r9".to_string()];
        let cases: Vec<Case> = vec![
            ("first deployment only: nothing before", vec![d("SUCCESSFUL", "r1", None)], (Some("r1"), None)),
            (
                "an update: back to its source",
                vec![d("SUCCESSFUL", "r2", Some("r1")), d("SUCCESSFUL", "r1", None)],
                (Some("r2"), Some("r1")),
            ),
            (
                "after a rolled-back update: the running one is its source, and before it the older one",
                vec![
                    d("ROLLBACK_SUCCESSFUL", "r3", Some("r2")),
                    d("SUCCESSFUL", "r2", Some("r1")),
                    d("SUCCESSFUL", "r1", None),
                ],
                (Some("r2"), Some("r1")),
            ),
            (
                "after a rollback by redeploying: the chain goes on",
                vec![d("SUCCESSFUL", "r3", Some("r2")), d("SUCCESSFUL", "r2", Some("r1"))],
                (Some("r3"), Some("r2")),
            ),
            ("no deployment recorded: the active revision, nothing before", vec![], (Some("r9"), None)),
            (
                "a stopped one superseded by another: its source runs",
                vec![d("STOPPED", "r5", Some("r4")), d("SUCCESSFUL", "r4", Some("r3"))],
                (Some("r4"), Some("r3")),
            ),
        ];
        for (name, ds, (current, previous)) in cases {
            let (c, p) = previous_revision(&ds, &active);
            assert_eq!((c.as_deref(), p.as_deref()), (current, previous), "{name}");
        }
        assert_eq!(previous_revision(&[], &[]), (None, None));
    }

    #[test]
    fn the_awaited_hook() {
        let dep = json!({"lifecycleHookDetails": [
            {"hookId": "ecs-pause-a-1", "status": "SUCCEEDED"},
            {"hookId": "ecs-pause-a-2", "status": "AWAITING_ACTION"}]});
        assert_eq!(awaited_hook(&dep).as_deref(), Some("ecs-pause-a-2"));
        assert_eq!(awaited_hook(&json!({"lifecycleHookDetails": []})), None);
        assert_eq!(awaited_hook(&json!({})), None);
    }
}
