//! The service page's markup: header (endpoint, status, revisions), deployments, tasks, charts, logs, events and
//! resources; the live parts are functions `status.json` renders again.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::data::{self, Loaded, arr, awaited_hook, fmt_time, last_segment, num, running_deployment, s, task_health};
use super::{edits, metrics, notice_text, page_path};
use crate::layout::{csrf_field, page};
use crate::session::User;
use crate::{AppState, ConsoleError, charts};

pub async fn show(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    render(&state, &user, &cluster, &name, &query, None).await
}

/// The page, with `failed` (a change that was refused) shown on top with its status.
pub async fn render(
    state: &AppState,
    user: &User,
    cluster: &str,
    name: &str,
    query: &HashMap<String, String>,
    failed: Option<ConsoleError>,
) -> Response {
    let loaded = match data::load(&user.client, cluster, name).await {
        Ok(l) => l,
        Err(e) => return failed.unwrap_or(e).into_response(),
    };
    let status = failed.as_ref().map(ConsoleError::status).unwrap_or(http::StatusCode::OK);
    let resources = loaded.resources();
    let range = metrics::range(query.get("range").map(String::as_str));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (charts, details) = tokio::join!(
        metrics::load(&user.client, &resources, cluster, name, range, now),
        edits::details(&user.client, &resources)
    );
    let notice = query.get("done").and_then(|c| notice_text(c));
    let body = html! {
        @if let Some(e) = &failed { (crate::error::alert(e)) }
        @if let Some(n) = notice { p class="notice" role="status" { (n) } }
        (header(&loaded, state))
        section id="deployments" aria-labelledby="deployments-h" {
            h2 id="deployments-h" { "Deployments" }
            div id="deployments-body" { (deployments(&loaded, user)) }
        }
        section id="tasks" aria-labelledby="tasks-h" {
            h2 id="tasks-h" { "Tasks" }
            div id="tasks-body" { (tasks(&loaded, user)) }
        }
        section id="charts" aria-labelledby="charts-h" {
            h2 id="charts-h" { "Metrics" }
            nav class="ranges" aria-label="Time range" {
                @for r in metrics::RANGES {
                    a href=(format!("{}?range={}#charts", page_path(cluster, name), r.label))
                        aria-current=[(r == range).then_some("true")] { (r.label) }
                }
            }
            @match &charts {
                Ok(charts) => { div class="chart-grid" { @for c in charts { figure { (charts::render(c)) figcaption { (c.title) } } } } }
                Err(e) => { p class="error" role="alert" { "Metrics are unavailable: " (e) } }
            }
        }
        (logs(&loaded))
        section id="events" aria-labelledby="events-h" { h2 id="events-h" { "Events" } (events(&loaded)) }
        section id="resources" aria-labelledby="resources-h" {
            h2 id="resources-h" { "Resources" }
            (edits::render(&loaded, &resources, &details, user))
        }
    };
    let markup = html! {
        link rel="stylesheet" href=(crate::assets::service_css_href());
        div id="service-page" data-status-url=(format!("{}/status.json", page_path(cluster, name)))
            data-logs-url=(format!("{}/logs.json", page_path(cluster, name))) { (body) }
        script src=(crate::assets::service_js_href()) defer {}
    };
    (status, Html(page(Some(user), name, markup).into_string())).into_response()
}

/// The endpoint, the status and the active revisions with their images.
pub fn header(l: &Loaded, state: &AppState) -> Markup {
    html! {
        h1 { (l.name) }
        dl class="summary" {
            dt { "Endpoint" }
            dd id="endpoint" {
                @if let Some(url) = l.endpoint().map(|h| state.endpoint_url(&h)) { a href=(url) { (url) } }
                @else { "none yet" }
            }
            dt { "Status" }
            dd { (status(l)) }
            dt { "Cluster" } dd { (l.cluster) }
            dt { "ARN" } dd class="arn" { (l.arn) }
            dt { "Revisions" }
            dd {
                ul class="revisions" {
                    @for c in arr(&l.express, &["activeConfigurations"]) {
                        li {
                            code { (last_segment(s(c, &["serviceRevisionArn"]).unwrap_or("?"))) }
                            " · image " code { (s(c, &["primaryContainer", "image"]).unwrap_or("?")) }
                            " · " (s(c, &["cpu"]).unwrap_or("?")) " CPU / " (s(c, &["memory"]).unwrap_or("?")) " MiB"
                        }
                    }
                }
            }
        }
    }
}

/// `#status`: the Express status, and what the newest deployment is doing.
pub fn status(l: &Loaded) -> Markup {
    let code = s(&l.express, &["status", "statusCode"]).unwrap_or("UNKNOWN");
    let running = running_deployment(&l.deployments);
    html! {
        span id="status" data-status=(code) {
            span class=(format!("badge status-{}", code.to_ascii_lowercase())) { (code) }
            @if let Some(d) = running {
                " · deploying: " (s(d, &["status"]).unwrap_or("")) " at " (s(d, &["lifecycleStage"]).unwrap_or(""))
                @if let Some(w) = data::target_weight(d) { " · new revision " (format!("{w:.0}")) "% of traffic" }
            }
            " · tasks " (num(&l.ecs, &["runningCount"]).unwrap_or(0.0)) "/" (num(&l.ecs, &["desiredCount"]).unwrap_or(0.0))
        }
    }
}

/// The deployments table, with rollback and promote.
pub fn deployments(l: &Loaded, user: &User) -> Markup {
    let base = page_path(&l.cluster, &l.name);
    let running = running_deployment(&l.deployments);
    let can_roll_back_finished = running.is_none()
        && l.deployments.first().is_some_and(|d| s(d, &["status"]) == Some("SUCCESSFUL"))
        && l.deployments.first().is_some_and(|d| !arr(d, &["sourceServiceRevisions"]).is_empty());
    html! {
        @if l.deployments.is_empty() { p { "No deployments yet." } }
        @else {
            div class="table-wrap" {
                table {
                    thead { tr { th { "Deployment" } th { "Status" } th { "Stage" } th { "Traffic (new / old)" } th { "Bake" } th { "Started" } th { "Rollback" } } }
                    tbody {
                        @for d in &l.deployments {
                            @let w = data::target_weight(d).filter(|_| running.is_some_and(|r| std::ptr::eq(r, d)));
                            tr class="deployment" data-status=(s(d, &["status"]).unwrap_or("")) {
                                td { code { (last_segment(s(d, &["serviceDeploymentArn"]).unwrap_or("?"))) } }
                                td class="deployment-status" { (s(d, &["status"]).unwrap_or("?")) }
                                td class="stage" { (s(d, &["lifecycleStage"]).unwrap_or("")) }
                                td { @if let Some(w) = w { (format!("{w:.1}% / {:.1}%", 100.0 - w)) } }
                                td { (bake(d)) }
                                td { (num(d, &["startedAt"]).or(num(d, &["createdAt"])).map(fmt_time).unwrap_or_default()) }
                                td { @if let Some(r) = d.get("rollback") { (s(r, &["reason"]).unwrap_or("rolled back")) } }
                            }
                        }
                    }
                }
            }
        }
        div class="actions" {
            @if let Some(d) = running {
                @if data::has_source(d) && !matches!(s(d, &["status"]), Some("ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED")) {
                    form method="post" action=(format!("{base}/rollback")) {
                        (csrf_field(user))
                        input type="hidden" name="deployment_arn" value=(s(d, &["serviceDeploymentArn"]).unwrap_or(""));
                        button id="rollback" type="submit" { "Roll back this deployment" }
                    }
                }
                @if let Some(hook) = awaited_hook(d) {
                    form method="post" action=(format!("{base}/promote")) {
                        (csrf_field(user))
                        input type="hidden" name="deployment_arn" value=(s(d, &["serviceDeploymentArn"]).unwrap_or(""));
                        input type="hidden" name="hook_id" value=(hook);
                        button id="promote" type="submit" { "Promote now" }
                    }
                }
            } @else if can_roll_back_finished {
                form method="post" action=(format!("{base}/rollback")) {
                    (csrf_field(user))
                    input type="hidden" name="deployment_arn" value=(l.deployments.first().and_then(|d| s(d, &["serviceDeploymentArn"])).unwrap_or(""));
                    button id="rollback" type="submit" { "Roll back to the previous revision" }
                }
            }
        }
    }
}

/// When the awaited bake (or pause hook) ends by itself: a fixed time, so the live refresh leaves the row alone.
fn bake(d: &Value) -> String {
    arr(d, &["lifecycleHookDetails"])
        .iter()
        .find(|h| s(h, &["status"]) == Some("AWAITING_ACTION"))
        .and_then(|h| num(h, &["expiresAt"]))
        .map(|t| format!("until {}", fmt_time(t)))
        .unwrap_or_default()
}

/// The running tasks with a stop button each.
pub fn tasks(l: &Loaded, user: &User) -> Markup {
    let base = page_path(&l.cluster, &l.name);
    html! {
        @if l.tasks.is_empty() { p { "No running tasks." } }
        @else {
            div class="table-wrap" {
                table {
                    thead { tr { th { "Task" } th { "Revision" } th { "Status" } th { "Health" } th { "Started" } th { span class="visually-hidden" { "Actions" } } } }
                    tbody {
                        @for t in &l.tasks {
                            @let id = last_segment(s(t, &["taskArn"]).unwrap_or("?"));
                            tr class="task" data-task=(id) data-health=(task_health(t, &l.targets)) {
                                td { code { (id) } }
                                td { (last_segment(s(t, &["taskDefinitionArn"]).unwrap_or(""))) }
                                td { (s(t, &["lastStatus"]).unwrap_or("?")) }
                                td class="health" { (task_health(t, &l.targets)) }
                                td { (num(t, &["startedAt"]).map(fmt_time).unwrap_or_default()) }
                                td {
                                    form method="post" action=(format!("{base}/tasks/{}/stop", super::encode(id))) {
                                        (csrf_field(user))
                                        button class="stop-task" type="submit" aria-label=(format!("Stop task {id}")) { "Stop" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The live log view (filled by service.js from `logs.json`).
fn logs(l: &Loaded) -> Markup {
    let groups = data::log_group_names(&l.resources());
    html! {
        section id="logs" aria-labelledby="logs-h" {
            h2 id="logs-h" { "Logs" }
            p class="hint" { "Log group " code { (groups.first().map(String::as_str).unwrap_or("none")) } ", newest last, updated every 2 seconds." }
            label for="log-filter" { "Filter (CloudWatch Logs filter pattern)" }
            input id="log-filter" type="search" name="filter" autocomplete="off" placeholder="e.g. GET or \"/ping\"";
            // Shown (as an alert) by service.js only while the logs cannot be read.
            p id="log-error" hidden {}
            ol id="log-lines" aria-live="polite" {}
        }
    }
}

/// The service's newest events (DescribeServices).
fn events(l: &Loaded) -> Markup {
    let events = arr(&l.ecs, &["events"]);
    html! {
        @if events.is_empty() { p { "No events yet." } }
        @else {
            ul class="events" {
                @for e in events.iter().take(30) {
                    li { time { (num(e, &["createdAt"]).map(fmt_time).unwrap_or_default()) } " " (s(e, &["message"]).unwrap_or("")) }
                }
            }
        }
    }
}
