//! The page's live parts: `status.json` (status, deployment stage and split, task health, and the status,
//! deployments and tasks fragments re-rendered) and `logs.json` (FilterLogEvents on the service's log group: the
//! newest events after a cursor, with a filter pattern).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use berth_client::Service;
use serde_json::{Value, json};

use super::data::{self, arr, num, running_deployment, s, task_health};
use super::view;
use crate::ConsoleError;
use crate::session::User;

/// The most events one `logs.json` answer carries (the page keeps ~500).
const MAX_EVENTS: usize = 200;
/// FilterLogEvents pages read per answer at most.
const MAX_PAGES: usize = 10;

pub async fn status(user: User, Path((cluster, name)): Path<(String, String)>) -> Response {
    status_json(&user, &cluster, &name).await.map(IntoResponse::into_response).unwrap_or_else(ConsoleError::into_json)
}

async fn status_json(user: &User, cluster: &str, name: &str) -> Result<Json<Value>, ConsoleError> {
    let l = data::load(&user.client, cluster, name).await?;
    let d = running_deployment(&l.deployments).or(l.deployments.first());
    Ok(Json(json!({
        "status": s(&l.express, &["status", "statusCode"]),
        "deployment": d.map(|d| json!({
            "arn": s(d, &["serviceDeploymentArn"]),
            "status": s(d, &["status"]),
            "stage": s(d, &["lifecycleStage"]),
            "targetWeight": data::target_weight(d),
        })),
        "tasks": l.tasks.iter().map(|t| json!({
            "id": s(t, &["taskArn"]).map(data::last_segment),
            "lastStatus": s(t, &["lastStatus"]),
            "health": task_health(t, &l.targets),
        })).collect::<Vec<_>>(),
        "running": num(&l.ecs, &["runningCount"]),
        "desired": num(&l.ecs, &["desiredCount"]),
        "html": {
            "status": view::status(&l).into_string(),
            "deployments": view::deployments(&l, user).into_string(),
            "tasks": view::tasks(&l, user).into_string(),
        }
    })))
}

/// `after`: milliseconds since the epoch of the newest event the page has (events at that millisecond come
/// again; the page drops the ids it has). Without it, the last hour.
pub async fn logs(
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    logs_json(&user, &cluster, &name, &q).await.map(IntoResponse::into_response).unwrap_or_else(ConsoleError::into_json)
}

async fn logs_json(
    user: &User,
    cluster: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, ConsoleError> {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let after = match q.get("after").map(String::as_str).filter(|a| !a.is_empty()) {
        Some(a) => a.parse::<i64>().map_err(|_| {
            ConsoleError::BadInput(format!("after={a:?} is not a time in milliseconds; reload the page"))
        })?,
        None => now_ms - 3_600_000,
    };
    let filter = q.get("filter").map(|f| f.trim()).unwrap_or("");
    if filter.len() > 1024 {
        return Err(ConsoleError::BadInput("the filter pattern is longer than 1024 characters; shorten it".into()));
    }
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    let Some(group) = data::log_group_names(&resources).into_iter().next() else {
        return Ok(Json(json!({"events": [], "after": after, "logGroup": null})));
    };
    let mut events: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut input = json!({"logGroupName": group, "startTime": after, "limit": 1000});
        if !filter.is_empty() {
            input["filterPattern"] = json!(filter);
        }
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let out = user.client.call_value(Service::Logs, "FilterLogEvents", input).await?;
        events.extend(arr(&out, &["events"]).iter().cloned());
        token = s(&out, &["nextToken"]).map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(Json(answer(events, after, &group)))
}

/// The newest [`MAX_EVENTS`] events, oldest first, and the cursor for the next call.
fn answer(mut events: Vec<Value>, after: i64, group: &str) -> Value {
    events.sort_by_key(|e| e.get("timestamp").and_then(Value::as_i64).unwrap_or(0));
    let skip = events.len().saturating_sub(MAX_EVENTS);
    let events: Vec<Value> = events
        .into_iter()
        .skip(skip)
        .map(|e| {
            json!({
                "id": s(&e, &["eventId"]),
                "timestamp": e.get("timestamp").and_then(Value::as_i64),
                "stream": s(&e, &["logStreamName"]),
                "message": s(&e, &["message"]).unwrap_or(""),
            })
        })
        .collect();
    let newest = events.iter().filter_map(|e| e["timestamp"].as_i64()).max().unwrap_or(after).max(after);
    json!({"events": events, "after": newest, "logGroup": group})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_events_come_oldest_first_with_the_cursor() {
        let events: Vec<Value> = (0..250)
            .rev()
            .map(|i| json!({"eventId": format!("e{i}"), "timestamp": 1000 + i, "message": format!("line {i}"), "logStreamName": "s"}))
            .collect();
        let a = answer(events, 5, "/g");
        let out = a["events"].as_array().expect("the test input");
        assert_eq!(out.len(), MAX_EVENTS);
        assert_eq!(out[0]["message"], "line 50");
        assert_eq!(out[MAX_EVENTS - 1]["id"], "e249");
        assert_eq!(a["after"], 1249);
        // Nothing new: the cursor stays.
        assert_eq!(answer(vec![], 77, "/g")["after"], 77);
    }
}
