//! What the operations commands (logs, rollback, promote, resources, apply) read besides the one service lookup
//! (service.rs): every Express service of the cluster, a service's deployments and its revisions.

use berth_client::Service;
use serde_json::{Value, json};

use crate::{CliError, Ctx};

pub use crate::service::Found;

fn created(v: &Value) -> f64 {
    v["createdAt"].as_f64().unwrap_or(0.0)
}

/// The revision ARNs of the service's active configurations, newest first.
pub fn active_revisions(found: &Found) -> Vec<String> {
    let mut configs: Vec<&Value> =
        found.service["activeConfigurations"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    configs.sort_by(|a, b| created(b).total_cmp(&created(a)));
    configs.iter().filter_map(|c| c["serviceRevisionArn"].as_str().map(str::to_string)).collect()
}

/// Every Express service of the cluster that is not deleted.
pub async fn list(ctx: &Ctx) -> Result<Vec<Found>, CliError> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    // ListServices pages of 100; a cluster holds at most a few thousand services.
    for _ in 0..100 {
        let mut input = json!({"cluster": ctx.cluster, "maxResults": 100});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let out = match ctx.client.call_value(Service::Ecs, "ListServices", input).await {
            Ok(out) => out,
            // No cluster yet (berth makes `default` with its first service): no services.
            Err(e) if e.code() == Some("ClusterNotFoundException") => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        arns.extend(out["serviceArns"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)));
        token = out["nextToken"].as_str().filter(|t| !t.is_empty()).map(String::from);
        if token.is_none() {
            break;
        }
    }
    let mut found = Vec::new();
    for arn in arns {
        let out =
            ctx.client.call_value(Service::Ecs, "DescribeExpressGatewayService", json!({"serviceArn": arn})).await;
        match out {
            Ok(v) if v["service"]["status"]["statusCode"].as_str() != Some("INACTIVE") => {
                let service = v["service"].clone();
                let name = service["serviceName"].as_str().unwrap_or(crate::service::short_name(&arn)).to_string();
                found.push(Found { arn, name, service })
            }
            Ok(_) => {}
            // A service that is not an Express service, or one deleted meanwhile.
            Err(e) if matches!(e.code(), Some("ResourceNotFoundException" | "ServiceNotFoundException")) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(found)
}

/// The service's deployments, newest first, described (at most the newest `max`).
pub async fn deployments(ctx: &Ctx, found: &Found, max: usize) -> Result<Vec<Value>, CliError> {
    let out = ctx
        .client
        .call_value(
            Service::Ecs,
            "ListServiceDeployments",
            json!({"cluster": ctx.cluster, "service": found.arn, "maxResults": max.clamp(1, 100)}),
        )
        .await?;
    let arns: Vec<Value> = out["serviceDeployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["serviceDeploymentArn"].as_str().map(|a| json!(a)))
        .collect();
    let mut described = Vec::new();
    // DescribeServiceDeployments takes at most 20 ARNs.
    for chunk in arns.chunks(20) {
        let out = ctx
            .client
            .call_value(Service::Ecs, "DescribeServiceDeployments", json!({"serviceDeploymentArns": chunk}))
            .await?;
        described.extend(out["serviceDeployments"].as_array().cloned().unwrap_or_default());
    }
    described.sort_by(|a, b| created(b).total_cmp(&created(a)));
    Ok(described)
}

/// One deployment, described.
pub async fn deployment(ctx: &Ctx, arn: &str) -> Result<Value, CliError> {
    let out = ctx
        .client
        .call_value(Service::Ecs, "DescribeServiceDeployments", json!({"serviceDeploymentArns": [arn]}))
        .await?;
    out["serviceDeployments"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| CliError::Failed(format!("berth did not describe deployment {arn}")))
}

/// `DescribeServiceRevisions` of these ARNs.
pub async fn revisions(ctx: &Ctx, arns: &[String]) -> Result<Vec<Value>, CliError> {
    let mut all = Vec::new();
    for chunk in arns.chunks(20) {
        let out = ctx
            .client
            .call_value(Service::Ecs, "DescribeServiceRevisions", json!({"serviceRevisionArns": chunk}))
            .await?;
        all.extend(out["serviceRevisions"].as_array().cloned().unwrap_or_default());
    }
    Ok(all)
}

/// Whether a deployment status is unfinished (something to roll back or promote).
pub fn running(status: &str) -> bool {
    matches!(status, "PENDING" | "IN_PROGRESS")
}
