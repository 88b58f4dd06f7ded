//! The services list (`/`): every ECS service of every cluster with its Express status and URL, revision,
//! tasks healthy/desired, and requests/min and error rate over the last five minutes (CloudWatch).

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_client::{Client, ClientError, Service};
use futures_util::StreamExt;
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::error::alert;
use crate::layout::page;
use crate::session::User;
use crate::{AppState, ConsoleError};

/// How many describe calls run at once.
const CONCURRENCY: usize = 8;
/// The most services listed (pages of ListServices followed).
const MAX_SERVICES: usize = 500;
/// The metrics window.
const WINDOW_SECS: u64 = 300;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/", get(list))
}

/// One row of the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub cluster: String,
    pub name: String,
    pub arn: String,
    pub status: String,
    pub url: Option<String>,
    pub revision: Option<String>,
    pub desired: i64,
    pub running: i64,
    pub healthy: Option<i64>,
    pub target_groups: Vec<String>,
    pub requests_per_min: Option<f64>,
    pub error_rate: Option<f64>,
}

/// `cluster` out of a cluster ARN (`arn:…:cluster/NAME`) or a name.
pub fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The ALB dimension value of an ARN: what follows `loadbalancer/` or starts at `targetgroup/`.
pub fn dimension_suffix(arn: &str) -> Option<&str> {
    if let Some(i) = arn.find(":loadbalancer/") {
        return Some(&arn[i + ":loadbalancer/".len()..]);
    }
    arn.find(":targetgroup/").map(|i| &arn[i + 1..])
}

async fn list(State(state): State<AppState>, user: User) -> Response {
    let (rows, error) = match load(&user.client, state.config().https_port).await {
        Ok(r) => r,
        Err(e) => (Vec::new(), Some(ConsoleError::Api(e))),
    };
    let status = error.as_ref().map(|e| e.status()).filter(|_| rows.is_empty()).unwrap_or(http::StatusCode::OK);
    (status, page(Some(&user), "Services", render(&rows, error.as_ref()))).into_response()
}

fn render(rows: &[Row], error: Option<&ConsoleError>) -> Markup {
    html! {
        div.page-head {
            h1 { "Services" }
            a #create-link .button.primary href="/create" { "Create service" }
        }
        @if let Some(e) = error { (alert(e)) }
        @if rows.is_empty() && error.is_none() {
            p.empty { "No services yet. " a href="/create" { "Create one" } " from a container image." }
        } @else if !rows.is_empty() {
            div.table-wrap {
                table #services {
                    caption.visually-hidden { "Services in every cluster" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "URL" }
                        th scope="col" { "Revision" } th scope="col" { "Tasks healthy/desired" }
                        th scope="col" { "Requests/min" } th scope="col" { "Error rate" }
                    } }
                    tbody {
                        @for r in rows {
                            tr data-service=(r.name) data-cluster=(r.cluster) {
                                td { a href=(format!("/services/{}/{}", r.cluster, r.name)) { (r.name) }
                                     @if r.cluster != "default" { span.muted { " (" (r.cluster) ")" } } }
                                td.status data-label="Status" { span class=(format!("badge {}", badge_class(&r.status))) { (r.status) } }
                                td.url data-label="URL" { @if let Some(u) = &r.url { a href=(u) rel="noopener" { (u) } } @else { "—" } }
                                td.revision data-label="Revision" { (r.revision.as_deref().unwrap_or("—")) }
                                td.tasks data-label="Tasks healthy/desired" { (r.healthy.map(|h| h.to_string()).unwrap_or_else(|| "—".into())) "/" (r.desired) }
                                td.rpm data-label="Requests/min" { (r.requests_per_min.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into())) }
                                td.errors data-label="Error rate" { (r.error_rate.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "—".into())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The badge colour for a status.
pub fn badge_class(status: &str) -> &'static str {
    match status {
        "ACTIVE" | "RUNNING" | "HEALTHY" | "SUCCESSFUL" | "COMPLETED" => "ok",
        "FAILED" | "INACTIVE" | "DELETED" | "ROLLBACK_FAILED" | "UNHEALTHY" => "bad",
        _ => "busy",
    }
}

/// Everything the list shows. A failure of the listing itself is the error; one service's describe failing
/// leaves its row with less.
async fn load(client: &Client, https_port: u16) -> Result<(Vec<Row>, Option<ConsoleError>), ClientError> {
    let clusters = list_all(client, "ListClusters", json!({}), "clusterArns").await?;
    let mut rows = Vec::new();
    for cluster_arn in clusters {
        let cluster = last_segment(&cluster_arn).to_string();
        let arns = list_all(client, "ListServices", json!({"cluster": cluster}), "serviceArns").await?;
        for chunk in arns.chunks(10) {
            let out = client
                .call_value(Service::Ecs, "DescribeServices", json!({"cluster": cluster, "services": chunk}))
                .await?;
            for s in out.get("services").and_then(Value::as_array).into_iter().flatten() {
                rows.push(row_from_service(&cluster, s));
            }
        }
        if rows.len() >= MAX_SERVICES {
            rows.truncate(MAX_SERVICES);
            break;
        }
    }
    // Express details and target health, a few at a time.
    let detailed: Vec<Row> = futures_util::stream::iter(rows.into_iter().map(|r| enrich(client, r, https_port)))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut rows = detailed;
    let metrics_error = add_metrics(client, &mut rows).await.err().map(ConsoleError::Api);
    rows.sort_by(|a, b| {
        (a.cluster != "default", &a.cluster, &a.name).cmp(&(b.cluster != "default", &b.cluster, &b.name))
    });
    Ok((rows, metrics_error))
}

/// Every string of `member` over a paged list call (bounded).
async fn list_all(client: &Client, action: &str, input: Value, member: &str) -> Result<Vec<String>, ClientError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..(MAX_SERVICES / 10 + 1) {
        let mut req = input.clone();
        if let (Some(t), Some(obj)) = (&token, req.as_object_mut()) {
            obj.insert("nextToken".into(), json!(t));
        }
        let page = client.call_value(Service::Ecs, action, req).await?;
        out.extend(
            page.get(member)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from),
        );
        token = page.get("nextToken").and_then(Value::as_str).map(String::from);
        if token.is_none() || out.len() >= MAX_SERVICES {
            break;
        }
    }
    Ok(out)
}

/// A row from DescribeServices' `Service`.
pub fn row_from_service(cluster: &str, s: &Value) -> Row {
    let str_of = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let revision = s.get("taskDefinition").and_then(Value::as_str).map(|td| last_segment(td).to_string());
    Row {
        cluster: cluster.to_string(),
        name: str_of("serviceName"),
        arn: str_of("serviceArn"),
        status: str_of("status"),
        url: None,
        revision,
        desired: s.get("desiredCount").and_then(Value::as_i64).unwrap_or(0),
        running: s.get("runningCount").and_then(Value::as_i64).unwrap_or(0),
        healthy: None,
        target_groups: s
            .get("loadBalancers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|lb| lb.get("targetGroupArn").and_then(Value::as_str).map(String::from))
            .collect(),
        requests_per_min: None,
        error_rate: None,
    }
}

/// Adds what DescribeExpressGatewayService says (status, URL) to a row, from its `service` member.
pub fn apply_express(row: &mut Row, express: &Value, https_port: u16) {
    if let Some(code) = express.pointer("/status/statusCode").and_then(Value::as_str) {
        row.status = code.to_string();
    }
    let endpoint = express
        .get("activeConfigurations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| c.get("ingressPaths").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|p| p.get("endpoint").and_then(Value::as_str))
        .next();
    let task_definition = express
        .get("activeConfigurations")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("taskDefinitionArn"))
        .and_then(Value::as_str);
    if let Some(td) = task_definition {
        row.revision = Some(last_segment(td).to_string());
    }
    if let Some(e) = endpoint {
        row.url = Some(crate::state::endpoint_url(e, https_port));
    }
}

async fn enrich(client: &Client, mut row: Row, https_port: u16) -> Row {
    match client.call_value(Service::Ecs, "DescribeExpressGatewayService", json!({"serviceArn": row.arn})).await {
        Ok(out) => {
            if let Some(s) = out.get("service") {
                apply_express(&mut row, s, https_port);
            }
        }
        Err(e) => tracing::debug!(service = %row.arn, error = %e, "not an Express service, or not describable"),
    }
    let mut healthy = 0;
    let mut known = false;
    for tg in &row.target_groups {
        if let Ok(out) = client.call_value(Service::Elbv2, "DescribeTargetHealth", json!({"TargetGroupArn": tg})).await
        {
            known = true;
            healthy += count_healthy(&out);
        }
    }
    if known || row.target_groups.is_empty() && row.desired == 0 {
        row.healthy = Some(healthy);
    }
    row
}

/// How many targets DescribeTargetHealth calls healthy.
pub fn count_healthy(out: &Value) -> i64 {
    out.get("TargetHealthDescriptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.pointer("/TargetHealth/State").and_then(Value::as_str) == Some("healthy"))
        .count() as i64
}

/// Requests/min and error rate (target 5xx ÷ requests) over the window, per row, from the ALB metrics of its
/// target groups (LoadBalancer+TargetGroup dimensions, as berth publishes them).
async fn add_metrics(client: &Client, rows: &mut [Row]) -> Result<(), ClientError> {
    let tgs: Vec<String> = rows.iter().flat_map(|r| r.target_groups.iter().cloned()).collect();
    if tgs.is_empty() {
        return Ok(());
    }
    let mut lb_of: HashMap<String, String> = HashMap::new();
    for chunk in tgs.chunks(20) {
        let out = client.call_value(Service::Elbv2, "DescribeTargetGroups", json!({"TargetGroupArns": chunk})).await?;
        for tg in out.get("TargetGroups").and_then(Value::as_array).into_iter().flatten() {
            let arn = tg.get("TargetGroupArn").and_then(Value::as_str);
            let lb =
                tg.get("LoadBalancerArns").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str);
            if let (Some(arn), Some(lb)) = (arn, lb) {
                lb_of.insert(arn.to_string(), lb.to_string());
            }
        }
    }
    let queries = metric_queries(rows, &lb_of);
    if queries.is_empty() {
        return Ok(());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut sums: HashMap<String, f64> = HashMap::new();
    for chunk in queries.chunks(400) {
        let out = client
            .call_value(
                Service::CloudWatch,
                "GetMetricData",
                json!({"MetricDataQueries": chunk, "StartTime": now - WINDOW_SECS, "EndTime": now}),
            )
            .await?;
        for r in out.get("MetricDataResults").and_then(Value::as_array).into_iter().flatten() {
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let total: f64 =
                r.get("Values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_f64).sum();
            *sums.entry(id).or_default() += total;
        }
    }
    apply_metrics(rows, &sums);
    Ok(())
}

/// One Sum query per target group and metric: ids `r{row}_{tg}` (RequestCount), `e{row}_{tg}` (target 5xx).
pub fn metric_queries(rows: &[Row], lb_of: &HashMap<String, String>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for (j, tg) in r.target_groups.iter().enumerate() {
            let (Some(lb), Some(tg_dim)) = (lb_of.get(tg).and_then(|lb| dimension_suffix(lb)), dimension_suffix(tg))
            else {
                continue;
            };
            for (prefix, metric) in [("r", "RequestCount"), ("e", "HTTPCode_Target_5XX_Count")] {
                out.push(json!({
                    "Id": format!("{prefix}{i}_{j}"),
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": [
                            {"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg_dim}]},
                        "Period": WINDOW_SECS, "Stat": "Sum"},
                }));
            }
        }
    }
    out
}

/// Fills the rows' rates from the query sums.
pub fn apply_metrics(rows: &mut [Row], sums: &HashMap<String, f64>) {
    for (i, r) in rows.iter_mut().enumerate() {
        let mut requests = None::<f64>;
        let mut errors = 0.0;
        for j in 0..r.target_groups.len() {
            if let Some(v) = sums.get(&format!("r{i}_{j}")) {
                requests = Some(requests.unwrap_or(0.0) + v);
            }
            errors += sums.get(&format!("e{i}_{j}")).copied().unwrap_or(0.0);
        }
        if let Some(req) = requests {
            r.requests_per_min = Some(req / (WINDOW_SECS as f64 / 60.0));
            r.error_rate = Some(if req > 0.0 { errors / req } else { 0.0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_describe_answers() {
        let s = json!({"serviceName": "web", "serviceArn": "arn:aws:ecs:us-east-1:1:service/default/web",
            "status": "ACTIVE", "desiredCount": 2, "runningCount": 1,
            "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg-a/abc"}]});
        let mut r = row_from_service("default", &s);
        assert_eq!((r.name.as_str(), r.desired, r.running), ("web", 2, 1));
        assert_eq!(r.revision.as_deref(), Some("web:3"));
        assert_eq!(r.target_groups.len(), 1);
        apply_express(
            &mut r,
            &json!({"status": {"statusCode": "ACTIVE"},
            "activeConfigurations": [{"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:4", "ingressPaths": [{"accessType": "PUBLIC", "endpoint": "web.localhost"}]}]}),
            8443,
        );
        assert_eq!(r.url.as_deref(), Some("https://web.localhost:8443/"));
        assert_eq!(r.revision.as_deref(), Some("web:4"), "the Express configuration's task definition");
        let health = json!({"TargetHealthDescriptions": [
            {"TargetHealth": {"State": "healthy"}}, {"TargetHealth": {"State": "unhealthy"}}, {"TargetHealth": {"State": "healthy"}}]});
        assert_eq!(count_healthy(&health), 2);
    }

    #[test]
    fn metrics_queries_and_rates() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg-a/abc";
        let lb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/lb/def";
        let mut rows = vec![Row { target_groups: vec![tg.into()], ..Row::default() }, Row::default()];
        let lb_of = HashMap::from([(tg.to_string(), lb.to_string())]);
        let q = metric_queries(&rows, &lb_of);
        assert_eq!(q.len(), 2);
        assert_eq!(q[0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"], "app/lb/def");
        assert_eq!(q[0]["MetricStat"]["Metric"]["Dimensions"][1]["Value"], "targetgroup/tg-a/abc");
        let sums = HashMap::from([("r0_0".to_string(), 50.0), ("e0_0".to_string(), 5.0)]);
        apply_metrics(&mut rows, &sums);
        assert_eq!(rows[0].requests_per_min, Some(10.0));
        assert_eq!(rows[0].error_rate, Some(0.1));
        assert_eq!(rows[1].requests_per_min, None, "no target group, no rate");
    }

    #[test]
    fn list_renders_one_row_per_service() {
        let rows = vec![Row {
            name: "web".into(),
            cluster: "default".into(),
            status: "ACTIVE".into(),
            desired: 1,
            healthy: Some(1),
            ..Row::default()
        }];
        let html = render(&rows, None).into_string();
        assert!(html.contains(r#"data-service="web""#) && html.contains(r#"href="/services/default/web""#), "{html}");
        assert!(html.contains(r#"id="create-link""#));
        assert!(render(&[], None).into_string().contains("No services yet"));
    }
}
