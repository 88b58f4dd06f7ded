//! `berth ls`: the cluster's Express services with status, URL, revision, tasks healthy/desired, and
//! requests per minute and 5xx error rate over the last 5 minutes (CloudWatch `AWS/ApplicationELB`).

use std::collections::{BTreeMap, BTreeSet};

use berth_client::Service;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::output::{Doc, Section, Table};
use crate::service::{self, denied};
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// One service's row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub url: Option<String>,
    pub revision: Option<String>,
    pub healthy: u64,
    pub desired: u64,
    /// Requests per minute over the last 5 minutes (`None`: no metrics readable).
    pub requests_per_minute: Option<f64>,
    /// 5xx responses from the targets ÷ requests, percent, over the last 5 minutes.
    pub error_rate_percent: Option<f64>,
    /// The requests and 5xx responses those rates count (the window's totals).
    #[serde(default)]
    pub requests: Option<f64>,
    #[serde(default)]
    pub errors_5xx: Option<f64>,
}

/// The window the rates cover.
pub const WINDOW_SECS: f64 = 300.0;

pub fn doc(rows: &[Row]) -> Doc {
    let json = json!({"services": rows.iter().map(|r| json!({
        "serviceName": r.name,
        "serviceArn": r.arn,
        "status": r.status,
        "url": r.url,
        "serviceRevisionArn": r.revision,
        "healthyTasks": r.healthy,
        "desiredTasks": r.desired,
        "requestsPerMinute": r.requests_per_minute,
        "errorRatePercent": r.error_rate_percent,
        "requests": r.requests,
        "targetErrors5xx": r.errors_5xx,
    })).collect::<Vec<_>>()});
    let mut table = Table::new(&["NAME", "STATUS", "URL", "REVISION", "TASKS", "REQ/MIN", "5XX"]);
    for r in rows {
        table.row(vec![
            r.name.clone(),
            r.status.clone(),
            r.url.clone().unwrap_or_else(|| "-".into()),
            r.revision.as_deref().map(service::revision_label).unwrap_or_else(|| "-".into()),
            format!("{}/{}", r.healthy, r.desired),
            r.requests_per_minute.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()),
            r.error_rate_percent.map(|v| format!("{v:.2}%")).unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut sections = vec![Section::Table { title: None, table }];
    if rows.is_empty() {
        sections = vec![Section::Lines(vec!["No services. Create one with `berth deploy IMAGE`.".into()])];
    }
    Doc { json, sections }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let Args {} = args;
    let mut arns: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut input = json!({"cluster": ctx.cluster, "maxResults": 100});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = match ctx.client.call_value(Service::Ecs, "ListServices", input).await {
            Ok(p) => p,
            Err(berth_client::ClientError::Api { code, .. }) if code == "ClusterNotFoundException" => {
                return Ok(doc(&[]));
            }
            Err(e) => return Err(e.into()),
        };
        arns.extend(page["serviceArns"].as_array().cloned().unwrap_or_default());
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut ecs_services = Vec::new();
    for chunk in arns.chunks(10) {
        let out = ctx
            .client
            .call_value(Service::Ecs, "DescribeServices", json!({"cluster": ctx.cluster, "services": chunk}))
            .await?;
        for s in out["services"].as_array().into_iter().flatten() {
            if s["resourceManagementType"].as_str() == Some("ECS") && s["status"].as_str() != Some("INACTIVE") {
                ecs_services.push(s.clone());
            }
        }
    }
    let mut rows = Vec::new();
    // The target groups of each row, to read their health and metrics.
    let mut groups: Vec<Vec<String>> = Vec::new();
    for s in &ecs_services {
        let Some(arn) = s["serviceArn"].as_str() else { continue };
        // A service deleted since the listing is left out.
        let express = match service::describe(ctx, arn).await {
            Ok(e) => e,
            Err(CliError::Client(berth_client::ClientError::Api { code, .. }))
                if code == "ServiceNotFoundException" =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if service::status_code(&express) == "INACTIVE" {
            continue;
        }
        let tgs: Vec<String> = s["loadBalancers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|lb| {
                [lb["targetGroupArn"].as_str(), lb["advancedConfiguration"]["alternateTargetGroupArn"].as_str()]
            })
            .flatten()
            .map(str::to_string)
            .collect();
        rows.push(Row {
            name: express["serviceName"].as_str().or(s["serviceName"].as_str()).unwrap_or("?").to_string(),
            arn: arn.to_string(),
            status: service::status_code(&express).to_string(),
            url: service::url(&express, ctx.url_port),
            revision: service::newest_configuration(&express)
                .and_then(|c| c["serviceRevisionArn"].as_str())
                .map(str::to_string),
            healthy: 0,
            desired: s["desiredCount"].as_u64().unwrap_or(0),
            requests_per_minute: None,
            error_rate_percent: None,
            requests: None,
            errors_5xx: None,
        });
        groups.push(tgs);
    }
    // Healthy targets per service (a target in both groups counts once).
    for (row, tgs) in rows.iter_mut().zip(&groups) {
        let mut healthy = BTreeSet::new();
        for tg in tgs {
            match ctx.client.call_value(Service::Elbv2, "DescribeTargetHealth", json!({"TargetGroupArn": tg})).await {
                Ok(v) => {
                    for t in v["TargetHealthDescriptions"].as_array().into_iter().flatten() {
                        if t["TargetHealth"]["State"].as_str() == Some("healthy")
                            && let Some(id) = t["Target"]["Id"].as_str()
                        {
                            healthy.insert(format!("{id}:{}", t["Target"]["Port"]));
                        }
                    }
                }
                Err(e) if denied(&e) => {}
                Err(berth_client::ClientError::Api { code, .. }) if code == "TargetGroupNotFound" => {}
                Err(e) => return Err(e.into()),
            }
        }
        row.healthy = healthy.len() as u64;
    }
    rates(ctx, &mut rows, &groups).await?;
    Ok(doc(&rows))
}

/// Fills the request and error rates from one GetMetricData call (left `None` when it is not allowed).
async fn rates(ctx: &Ctx, rows: &mut [Row], groups: &[Vec<String>]) -> Result<(), CliError> {
    let all: Vec<&String> = groups.iter().flatten().collect();
    if all.is_empty() {
        return Ok(());
    }
    // Target group → its load balancer, both as ALB's metric dimensions (`app/…`, `targetgroup/…`).
    let mut lb_of: BTreeMap<String, String> = BTreeMap::new();
    for chunk in all.chunks(20) {
        match ctx.client.call_value(Service::Elbv2, "DescribeTargetGroups", json!({"TargetGroupArns": chunk})).await {
            Ok(v) => {
                for tg in v["TargetGroups"].as_array().into_iter().flatten() {
                    if let (Some(a), Some(lb)) = (tg["TargetGroupArn"].as_str(), tg["LoadBalancerArns"][0].as_str()) {
                        lb_of.insert(a.to_string(), lb.to_string());
                    }
                }
            }
            Err(e) if denied(&e) => return Ok(()),
            Err(berth_client::ClientError::Api { code, .. }) if code == "TargetGroupNotFound" => {}
            Err(e) => return Err(e.into()),
        }
    }
    let now = crate::observe::now();
    let start = (now / 60.0).floor() * 60.0 - (WINDOW_SECS - 60.0);
    let mut queries = Vec::new();
    for (i, tgs) in groups.iter().enumerate() {
        for (j, tg) in tgs.iter().enumerate() {
            let Some(lb) = lb_of.get(tg) else { continue };
            let dims = json!([
                {"Name": "LoadBalancer", "Value": dimension(lb, "loadbalancer/")},
                {"Name": "TargetGroup", "Value": dimension(tg, "")},
            ]);
            for (prefix, metric) in [("r", "RequestCount"), ("e", "HTTPCode_Target_5XX_Count")] {
                queries.push(json!({
                    "Id": format!("{prefix}{i}x{j}"),
                    "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": dims},
                        "Period": 60, "Stat": "Sum"},
                    "ReturnData": true,
                }));
            }
        }
    }
    if queries.is_empty() {
        return Ok(());
    }
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for chunk in queries.chunks(500) {
        let out = ctx
            .client
            .call_value(
                Service::CloudWatch,
                "GetMetricData",
                json!({"MetricDataQueries": chunk, "StartTime": start, "EndTime": now}),
            )
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if denied(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for r in out["MetricDataResults"].as_array().into_iter().flatten() {
            let total: f64 = r["Values"].as_array().into_iter().flatten().filter_map(Value::as_f64).sum();
            if let Some(id) = r["Id"].as_str() {
                sums.insert(id.to_string(), total);
            }
        }
    }
    let minutes = ((now - start) / 60.0).max(1.0);
    for (i, row) in rows.iter_mut().enumerate() {
        let sum = |prefix: &str| -> f64 {
            sums.iter()
                .filter(|(k, _)| k.strip_prefix(prefix).and_then(|r| r.split('x').next()) == Some(&i.to_string()))
                .map(|(_, v)| v)
                .sum()
        };
        let requests = sum("r");
        let errors = sum("e");
        row.requests = Some(requests);
        row.errors_5xx = Some(errors);
        row.requests_per_minute = Some(requests / minutes);
        row.error_rate_percent = Some(if requests > 0.0 { 100.0 * errors / requests } else { 0.0 });
    }
    Ok(())
}

/// ALB's dimension value from an ARN: the resource part after `prefix` (`app/<name>/<id>`,
/// `targetgroup/<name>/<id>`).
pub fn dimension(arn: &str, prefix: &str) -> String {
    let resource = crate::progress::short_arn(arn);
    resource.strip_prefix(prefix).unwrap_or(resource).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_the_arn_suffixes_alb_publishes() {
        assert_eq!(
            dimension("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/berth/abc", "loadbalancer/"),
            "app/berth/abc"
        );
        assert_eq!(
            dimension("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-a/123", ""),
            "targetgroup/web-a/123"
        );
    }
}
