//! The service lookups the operations commands share (logs, rollback, promote, resources, apply): a service by
//! name or ARN, every Express service of the cluster, a service's deployments and its active revisions.

use berth_client::Service;
use serde_json::{Value, json};

use crate::{CliError, Ctx};

/// An Express service: its ARN and `DescribeExpressGatewayService`'s `service`.
#[derive(Debug, Clone)]
pub struct Found {
    pub arn: String,
    pub service: Value,
}

impl Found {
    pub fn name(&self) -> &str {
        self.service["serviceName"].as_str().unwrap_or_default()
    }

    /// The configuration the service heads to: the newest of its active configurations.
    pub fn target_configuration(&self) -> Option<&Value> {
        newest(self.service["activeConfigurations"].as_array()?)
    }

    /// The revision ARNs of its active configurations, newest first.
    pub fn active_revisions(&self) -> Vec<String> {
        let mut configs: Vec<&Value> =
            self.service["activeConfigurations"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
        configs.sort_by(|a, b| created(b).total_cmp(&created(a)));
        configs.iter().filter_map(|c| c["serviceRevisionArn"].as_str().map(str::to_string)).collect()
    }
}

fn created(v: &Value) -> f64 {
    v["createdAt"].as_f64().unwrap_or(0.0)
}

fn newest(configs: &[Value]) -> Option<&Value> {
    configs.iter().max_by(|a, b| created(a).total_cmp(&created(b)))
}

/// The Express service `name` (a name in `ctx.cluster`, or an ARN); [`CliError::NotFound`] when absent or deleted.
pub async fn find(ctx: &Ctx, name: &str) -> Result<Found, CliError> {
    let not_found = || CliError::NotFound { name: name.to_string(), cluster: ctx.cluster.clone() };
    let arn = if name.starts_with("arn:") {
        name.to_string()
    } else {
        let out = ctx
            .client
            .call_value(Service::Ecs, "DescribeServices", json!({"cluster": ctx.cluster, "services": [name]}))
            .await?;
        let found = out["services"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["status"].as_str() != Some("INACTIVE"))
            .and_then(|s| s["serviceArn"].as_str());
        match found {
            Some(arn) => arn.to_string(),
            None => return Err(not_found()),
        }
    };
    let out = ctx.client.call_value(Service::Ecs, "DescribeExpressGatewayService", json!({"serviceArn": arn})).await;
    let service = match out {
        Ok(v) => v["service"].clone(),
        Err(e) if matches!(e.code(), Some("ResourceNotFoundException" | "ServiceNotFoundException")) => {
            return Err(not_found());
        }
        Err(e) => return Err(e.into()),
    };
    if service["status"]["statusCode"].as_str() == Some("INACTIVE") {
        return Err(not_found());
    }
    Ok(Found { arn, service })
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
        let out = ctx.client.call_value(Service::Ecs, "ListServices", input).await?;
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
                found.push(Found { arn, service: v["service"].clone() })
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
