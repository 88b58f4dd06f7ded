//! The deployment and task actions: roll back (StopServiceDeployment ROLLBACK while a deployment runs, else an
//! update back to the previous revision's task definition), promote (ContinueServiceDeployment on the awaited
//! hook: a bake ends early), stop a task (StopTask).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::response::Response;
use berth_client::Service;
use serde::Deserialize;
use serde_json::json;

use super::back;
use super::data::{self, arr, awaited_hook, running_deployment, s};
use crate::session::User;
use crate::{AppState, ConsoleError};

#[derive(Deserialize)]
pub struct DeploymentForm {
    #[serde(default)]
    deployment_arn: String,
    #[serde(default)]
    hook_id: String,
}

pub async fn rollback(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<DeploymentForm>,
) -> Response {
    let done = rollback_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn rollback_inner(
    user: &User,
    cluster: &str,
    name: &str,
    form: DeploymentForm,
) -> Result<Redirect, ConsoleError> {
    let client = &user.client;
    let (arn, _) = data::find(client, cluster, name).await?;
    let deployments = data::deployments(client, cluster, name, 5).await?;
    if let Some(d) = running_deployment(&deployments) {
        if !data::has_source(d) {
            return Err(ConsoleError::BadInput(format!(
                "{name}'s first deployment has no previous revision to roll back to; deploy another image or delete the service"
            )));
        }
        let id = s(d, &["serviceDeploymentArn"]).unwrap_or_default();
        client
            .call_value(
                Service::Ecs,
                "StopServiceDeployment",
                json!({"serviceDeploymentArn": id, "stopType": "ROLLBACK"}),
            )
            .await?;
        return Ok(back(cluster, name, "rollback"));
    }
    // Finished: go back to the revision the newest successful deployment replaced.
    let last = deployments.iter().find(|d| s(d, &["status"]) == Some("SUCCESSFUL")).ok_or_else(|| {
        ConsoleError::BadInput(format!("{name} has no finished deployment to roll back; deploy a new revision instead"))
    })?;
    if !form.deployment_arn.is_empty() && s(last, &["serviceDeploymentArn"]) != Some(form.deployment_arn.as_str()) {
        return Err(ConsoleError::BadInput(
            "the service's deployments changed since the page was shown; reload the page and check before rolling back"
                .into(),
        ));
    }
    let previous = arr(last, &["sourceServiceRevisions"]).iter().find_map(|r| s(r, &["arn"])).ok_or_else(|| {
        ConsoleError::BadInput(format!(
            "{name}'s last deployment was its first: there is no previous revision to roll back to"
        ))
    })?;
    let revisions = data::revisions(client, &[previous.to_string()]).await?;
    let revision = revisions.first().ok_or_else(|| {
        ConsoleError::BadInput(format!("the previous revision {previous} is gone; deploy the image you want instead"))
    })?;
    let task_definition = s(revision, &["taskDefinition"]).ok_or_else(|| {
        ConsoleError::BadInput(format!(
            "the previous revision {previous} names no task definition; deploy the image you want instead"
        ))
    })?;
    let mut update = json!({"serviceArn": arn, "taskDefinitionArn": task_definition});
    let path = revision
        .get("ecsManagedResources")
        .map(|r| arr(r, &["ingressPaths"]))
        .and_then(|p| p.iter().flat_map(|p| arr(p, &["targetGroups"])).find_map(|t| s(t, &["healthCheckPath"])));
    if let Some(path) = path {
        update["healthCheckPath"] = json!(path);
    }
    client.call_value(Service::Ecs, "UpdateExpressGatewayService", update).await?;
    Ok(back(cluster, name, "rollback"))
}

pub async fn promote(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<DeploymentForm>,
) -> Response {
    let done = promote_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn promote_inner(user: &User, cluster: &str, name: &str, form: DeploymentForm) -> Result<Redirect, ConsoleError> {
    let client = &user.client;
    let deployments = data::deployments(client, cluster, name, 1).await?;
    let d = running_deployment(&deployments)
        .ok_or_else(|| ConsoleError::BadInput(format!("{name} has no deployment in progress to promote")))?;
    let hook = awaited_hook(d).map(str::to_string).filter(|h| form.hook_id.is_empty() || *h == form.hook_id);
    let hook = hook.ok_or_else(|| {
        ConsoleError::BadInput("the deployment is not waiting on a bake or pause hook now; reload the page".into())
    })?;
    let arn = s(d, &["serviceDeploymentArn"]).unwrap_or_default();
    client
        .call_value(
            Service::Ecs,
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": hook, "action": "CONTINUE"}),
        )
        .await?;
    Ok(back(cluster, name, "promote"))
}

pub async fn stop_task(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name, task_id)): Path<(String, String, String)>,
) -> Response {
    let done = stop_task_inner(&user, &cluster, &name, &task_id).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn stop_task_inner(user: &User, cluster: &str, name: &str, task_id: &str) -> Result<Redirect, ConsoleError> {
    if task_id.is_empty() || !task_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ConsoleError::BadInput(format!("{task_id:?} is not a task id; pick the task from the page")));
    }
    // Only this service's tasks: the id must be one ListTasks gives for it.
    let tasks = data::tasks(&user.client, cluster, name).await?;
    let arn =
        tasks.iter().filter_map(|t| s(t, &["taskArn"])).find(|a| data::last_segment(a) == task_id).ok_or_else(
            || ConsoleError::BadInput(format!("task {task_id} is not running in {name}; reload the page")),
        )?;
    user.client
        .call_value(
            Service::Ecs,
            "StopTask",
            json!({"cluster": cluster, "task": arn, "reason": format!("Stopped from the console by {}", user.arn)}),
        )
        .await?;
    Ok(back(cluster, name, "stop-task"))
}
