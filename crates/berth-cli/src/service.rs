//! The one service lookup every command uses: an Express service by name (in `--cluster`) or ARN → its ARN and
//! DescribeExpressGatewayService answer; plus small readers of that answer (URL, revision, image).

use berth_client::{ClientError, Service};
use serde_json::{Value, json};

use crate::{CliError, Ctx};

/// An Express service that exists (ACTIVE or DRAINING).
#[derive(Debug, Clone)]
pub struct Found {
    pub arn: String,
    pub name: String,
    /// DescribeExpressGatewayService's `service`.
    pub service: Value,
}

/// The service named `name_or_arn`, or [`CliError::NotFound`] (also for an INACTIVE, i.e. deleted, service).
pub async fn find(ctx: &Ctx, name_or_arn: &str) -> Result<Found, CliError> {
    match try_find(ctx, name_or_arn).await? {
        Some(found) => Ok(found),
        None => Err(not_found(ctx, name_or_arn)),
    }
}

/// The not-found error for `name_or_arn` in the context's cluster.
pub fn not_found(ctx: &Ctx, name_or_arn: &str) -> CliError {
    CliError::NotFound { name: short_name(name_or_arn).to_string(), cluster: ctx.cluster.clone() }
}

/// [`find`], with `None` when there is no such service.
pub async fn try_find(ctx: &Ctx, name_or_arn: &str) -> Result<Option<Found>, CliError> {
    if name_or_arn.is_empty() {
        return Err(CliError::Usage("the service name is empty".into()));
    }
    // DescribeServices takes names and ARNs, and tells an absent service as a MISSING failure.
    let out = ctx
        .client
        .call_value(Service::Ecs, "DescribeServices", json!({"cluster": ctx.cluster, "services": [name_or_arn]}))
        .await;
    let out = match out {
        Ok(v) => v,
        Err(ClientError::Api { code, .. }) if code == "ClusterNotFoundException" => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(svc) = out["services"].as_array().and_then(|s| s.first()) else {
        return Ok(None);
    };
    if svc["status"].as_str() == Some("INACTIVE") {
        return Ok(None);
    }
    let Some(arn) = svc["serviceArn"].as_str() else {
        return Ok(None);
    };
    if svc["resourceManagementType"].as_str().is_some_and(|t| t != "ECS") {
        return Err(CliError::Usage(format!(
            "{name_or_arn} is an ECS service berth did not create as an Express service; use the AWS CLI for it"
        )));
    }
    let service = describe(ctx, arn).await?;
    if status_code(&service) == "INACTIVE" {
        return Ok(None);
    }
    let name = service["serviceName"].as_str().unwrap_or(short_name(arn)).to_string();
    Ok(Some(Found { arn: arn.to_string(), name, service }))
}

/// DescribeExpressGatewayService's `service` for `arn`.
pub async fn describe(ctx: &Ctx, arn: &str) -> Result<Value, CliError> {
    let out = ctx.client.call_value(Service::Ecs, "DescribeExpressGatewayService", json!({"serviceArn": arn})).await?;
    Ok(out["service"].clone())
}

/// `ACTIVE`, `DRAINING`, `INACTIVE` (empty when absent).
pub fn status_code(service: &Value) -> &str {
    service["status"]["statusCode"].as_str().unwrap_or("")
}

/// The last path segment of an ARN (a name stays a name).
pub fn short_name(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

/// The service's HTTPS URL, from its first ingress path (`https://<endpoint>`, with `:port` when the load balancer
/// is not on 443: [`crate::Ctx::url_port`]).
pub fn url(service: &Value, port: Option<u16>) -> Option<String> {
    let configs = service["activeConfigurations"].as_array().into_iter().flatten();
    let target = std::iter::once(&service["targetConfiguration"]);
    target
        .chain(configs)
        .flat_map(|c| c["ingressPaths"].as_array().into_iter().flatten())
        .find_map(|p| p["endpoint"].as_str().filter(|e| !e.is_empty()).map(endpoint_url))
        .map(|u| match port {
            Some(port) if !u.trim_start_matches("https://").contains(':') => format!("{u}:{port}"),
            _ => u,
        })
}

/// An ingress path's endpoint (a host name, or a URL) as an `https://` URL.
pub fn endpoint_url(endpoint: &str) -> String {
    if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
        endpoint.trim_end_matches('/').to_string()
    } else {
        format!("https://{endpoint}")
    }
}

/// The newest active configuration (the one a deployment heads to): the one with the latest `createdAt`.
pub fn newest_configuration(service: &Value) -> Option<&Value> {
    service["activeConfigurations"]
        .as_array()?
        .iter()
        .max_by(|a, b| a["createdAt"].as_f64().unwrap_or(0.0).total_cmp(&b["createdAt"].as_f64().unwrap_or(0.0)))
}

/// A revision's short label: the last segment of its ARN (berth numbers them per service).
pub fn revision_label(revision_arn: &str) -> String {
    let id = short_name(revision_arn);
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = id.trim_start_matches('0');
        return if trimmed.is_empty() { "0".into() } else { trimmed.into() };
    }
    id.to_string()
}

/// `true` when `e` says the caller may not do this (the shown data is then partial rather than an error).
pub fn denied(e: &ClientError) -> bool {
    match e {
        ClientError::Api { code, status, .. } => {
            *status == 403 || matches!(code.as_str(), "AccessDenied" | "AccessDeniedException")
        }
        _ => false,
    }
}
