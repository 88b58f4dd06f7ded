//! Tasks and task definitions as ECS shows them.

use berth_core::ErrorCode;
use berth_core::status::TaskStatus;
use berth_model::ecs::*;

use super::render;
use crate::names::cluster_name;
use crate::{Control, ControlError, now};

pub(crate) fn list(c: &Control, r: ListTasksRequest) -> Result<ListTasksResponse, ControlError> {
    let cluster = cluster_name(r.cluster.as_deref());
    let desired = match r.desired_status.unwrap_or(DesiredStatus::Running) {
        DesiredStatus::Running => TaskStatus::Running,
        DesiredStatus::Pending => TaskStatus::Pending,
        DesiredStatus::Stopped => TaskStatus::Stopped,
    };
    let arns = c.read(|tx| {
        super::express::require_cluster(tx, &cluster)?;
        let service_id = match &r.service_name {
            None => None,
            Some(name) => {
                let row = if name.starts_with("arn:") {
                    tx.service_by_arn(name)?
                } else {
                    tx.service_by_name(&cluster, name)?
                };
                match row {
                    Some(s) => Some(s.id),
                    None => return Err(ControlError::code(ErrorCode::ServiceNotFound, "Service not found.")),
                }
            }
        };
        let tasks = tx.tasks_in(&cluster, service_id, Some(desired))?;
        Ok(tasks
            .into_iter()
            .filter(|t| r.started_by.as_ref().is_none_or(|s| t.started_by.as_ref() == Some(s)))
            .filter(|t| {
                r.family.as_ref().is_none_or(|f| {
                    t.task_definition_arn.rsplit('/').next().and_then(|fr| fr.rsplit_once(':')).map(|(fam, _)| fam)
                        == Some(f.as_str())
                })
            })
            .map(|t| t.arn)
            .collect::<Vec<_>>())
    })?;
    let (page, next) = super::paginate(arns, r.next_token.as_deref(), r.max_results)?;
    Ok(ListTasksResponse { task_arns: Some(page), next_token: next })
}

pub(crate) fn describe(c: &Control, r: DescribeTasksRequest) -> Result<DescribeTasksResponse, ControlError> {
    let cluster = cluster_name(r.cluster.as_deref());
    let wanted = r.tasks.unwrap_or_default();
    if wanted.len() > 100 {
        return Err(ControlError::invalid("tasks can have at most 100 items."));
    }
    let with_tags = r.include.unwrap_or_default().contains(&TaskField::Tags);
    c.read(|tx| {
        super::express::require_cluster(tx, &cluster)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for w in wanted {
            match tx.task_get(&w)?.filter(|t| t.cluster == cluster) {
                Some(t) => tasks.push(render::task(c, tx, &t, with_tags)?),
                None => failures.push(Failure {
                    arn: Some(if w.starts_with("arn:") { w } else { c.names.task(&cluster, &w) }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeTasksResponse { tasks: Some(tasks), failures: Some(failures) })
    })
}

pub(crate) fn stop(c: &Control, r: StopTaskRequest) -> Result<StopTaskResponse, ControlError> {
    let cluster = cluster_name(r.cluster.as_deref());
    let id = r.task.unwrap_or_default();
    let reason = r.reason.filter(|s| !s.is_empty()).unwrap_or_else(|| "Task stopped by user".into());
    if reason.len() > 255 {
        return Err(ControlError::invalid("reason must be at most 255 characters."));
    }
    let task = c.tx(|tx| {
        super::express::require_cluster(tx, &cluster)?;
        let Some(mut t) = tx.task_get(&id)?.filter(|t| t.cluster == cluster) else {
            return Err(ControlError::invalid(format!("The referenced task was not found: {id}")));
        };
        if t.desired_status != TaskStatus::Stopped {
            t.desired_status = TaskStatus::Stopped;
            t.stop_code = Some(TaskStopCode::UserInitiated.as_str().into());
            t.stopped_reason = Some(reason.clone());
            if t.last_status == TaskStatus::Running {
                t.last_status = TaskStatus::Deactivating;
            }
            t.stopping_at = Some(now());
            tx.task_update(&t)?;
        }
        render::task(c, tx, &t, false)
    })?;
    c.wake();
    Ok(StopTaskResponse { task: Some(task) })
}

pub(crate) fn describe_task_definition(
    c: &Control,
    r: DescribeTaskDefinitionRequest,
) -> Result<DescribeTaskDefinitionResponse, ControlError> {
    super::task_definitions::describe(c, r)
}

pub(crate) fn list_task_definitions(
    c: &Control,
    r: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, ControlError> {
    super::task_definitions::list(c, r)
}
