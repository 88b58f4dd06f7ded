//! ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment and ContinueServiceDeployment:
//! the deployments rows rendered as ECS's shapes, and a user's stop or hook decision written for the rollout
//! to act on ("API writes, rollout acts": each decision is one short transaction, then the reconciler is woken).

use berth_core::ErrorCode;
use berth_model::ecs::*;
use berth_store::{DeploymentRow, ServiceRow, Tx};

use super::render;
use crate::names::cluster_name;
use crate::{CallerIdentity, Control, ControlError, now};

/// ListServiceDeployments' page size: 20 unless asked, 1 to 100.
const DEFAULT_PAGE: usize = 20;
/// DescribeServiceDeployments and DescribeServiceRevisions take at most this many ARNs.
const MAX_DESCRIBE: usize = 20;

/// The service `given` (a name, or an ARN) names in `cluster` (default `default`; an ARN's own cluster when
/// none is given): ClusterNotFound when the cluster does not exist, ServiceNotFound when the service does not.
pub(super) fn service_named(tx: &Tx<'_>, cluster: Option<&str>, given: &str) -> Result<ServiceRow, ControlError> {
    let from_arn = given.strip_prefix("arn:").and_then(|_| given.split_once(":service/")).map(|(_, path)| path);
    let cluster = match (cluster, from_arn.and_then(|p| p.split_once('/'))) {
        (Some(c), _) => cluster_name(Some(c)),
        (None, Some((c, _))) => c.to_string(),
        (None, None) => cluster_name(None),
    };
    super::express::require_cluster(tx, &cluster)?;
    let row = if given.starts_with("arn:") { tx.service_by_arn(given)? } else { tx.service_by_name(&cluster, given)? };
    row.filter(|s| s.cluster == cluster)
        .ok_or_else(|| ControlError::code(ErrorCode::ServiceNotFound, format!("Service not found: {given}")))
}

pub(crate) fn list(
    c: &Control,
    r: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, ControlError> {
    let given = r.service.clone().unwrap_or_default();
    let size = crate::paging::size(r.max_results, DEFAULT_PAGE, 1..=100)
        .map_err(|m| ControlError::invalid(format!("maxResults must be between 1 and 100, got {m}")))?;
    let statuses: Vec<&str> = r.status.iter().flatten().map(|s| s.as_str()).collect();
    let after = r.created_at.as_ref().and_then(|c| c.after).map(|t| t.0);
    let before = r.created_at.as_ref().and_then(|c| c.before).map(|t| t.0);
    let briefs = c.read(|tx| {
        let service = service_named(tx, r.cluster.as_deref(), &given)?;
        Ok(tx
            .deployments_of(service.id)?
            .into_iter()
            .filter(|d| statuses.is_empty() || statuses.contains(&d.status.as_str()))
            .filter(|d| after.is_none_or(|a| d.created_at >= a))
            .filter(|d| before.is_none_or(|b| d.created_at <= b))
            .map(|d| render::deployment_brief(c, &service, &d))
            .collect::<Vec<_>>())
    })?;
    let (page, next) = crate::paging::offset_page(briefs, r.next_token.as_deref(), size)
        .map_err(|_| ControlError::invalid("Invalid nextToken"))?;
    Ok(ListServiceDeploymentsResponse { service_deployments: Some(page), next_token: next })
}

pub(crate) fn describe(
    c: &Control,
    r: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, ControlError> {
    let arns = r.service_deployment_arns.unwrap_or_default();
    c.read(|tx| {
        let (found, failures) = describe_each("serviceDeploymentArns", arns, |arn| {
            let Some(d) = tx.deployment_get(arn)? else { return Ok(None) };
            let Some(service) = tx.service_by_id(d.service_id)? else { return Ok(None) };
            let tasks = render::live_tasks(tx, &service)?;
            Ok(Some(render::service_deployment(c, &service, &d, &tasks)?))
        })?;
        Ok(DescribeServiceDeploymentsResponse { service_deployments: Some(found), failures: Some(failures) })
    })
}

/// DescribeServiceDeployments' and DescribeServiceRevisions' answer: what `find` finds of `arns` (1 to 20, else
/// InvalidParameter naming `member`), and a `MISSING` failure for each ARN it does not.
pub(super) fn describe_each<T>(
    member: &str,
    arns: Vec<String>,
    mut find: impl FnMut(&str) -> Result<Option<T>, ControlError>,
) -> Result<(Vec<T>, Vec<Failure>), ControlError> {
    if arns.is_empty() || arns.len() > MAX_DESCRIBE {
        return Err(ControlError::invalid(format!(
            "{member} must have between 1 and {MAX_DESCRIBE} items, got {}.",
            arns.len()
        )));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        match find(&arn)? {
            Some(item) => found.push(item),
            None => failures.push(Failure { arn: Some(arn), reason: Some("MISSING".into()), detail: None }),
        }
    }
    Ok((found, failures))
}

fn deployment_named(tx: &Tx<'_>, arn: &str) -> Result<DeploymentRow, ControlError> {
    tx.deployment_get(arn)?.ok_or_else(|| {
        ControlError::code(ErrorCode::ServiceDeploymentNotFound, format!("Service deployment not found: {arn}"))
    })
}

/// StopServiceDeployment: ROLLBACK asks the rollout to roll back (ROLLBACK_REQUESTED), ABORT to stop
/// (STOP_REQUESTED: traffic returns to the source revision, the target's tasks drain, the deployment ends
/// STOPPED). A deployment already stopping or rolling back is left as it is; a finished one is a conflict.
pub(crate) fn stop(
    c: &Control,
    caller: &CallerIdentity,
    r: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, ControlError> {
    let arn = r.service_deployment_arn.unwrap_or_default();
    let stop_type = r.stop_type.unwrap_or(StopServiceDeploymentStopType::Rollback);
    c.tx(|tx| {
        let mut d = deployment_named(tx, &arn)?;
        match d.status.as_str() {
            "PENDING" | "IN_PROGRESS" => {
                let (status, verb) = match stop_type {
                    StopServiceDeploymentStopType::Rollback => ("ROLLBACK_REQUESTED", "Rollback"),
                    StopServiceDeploymentStopType::Abort => ("STOP_REQUESTED", "Stop"),
                };
                d.status = status.into();
                d.status_reason = Some(format!(
                    "{verb} requested by StopServiceDeployment ({}) from {}.",
                    stop_type.as_str(),
                    caller.principal_arn
                ));
                d.updated_at = now();
                tx.deployment_update(&d)?;
                Ok(())
            }
            "STOP_REQUESTED" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" => Ok(()),
            status => Err(ControlError::code(
                ErrorCode::Conflict,
                format!("The service deployment {arn} has finished ({status}) and cannot be stopped."),
            )),
        }
    })?;
    c.wake();
    Ok(StopServiceDeploymentResponse { service_deployment_arn: Some(arn) })
}

/// ContinueServiceDeployment: the deployment must be IN_PROGRESS and waiting on the pause hook `hookId`
/// (AWAITING_ACTION). CONTINUE marks the hook SUCCEEDED (the rollout advances); ROLLBACK marks it FAILED and
/// asks for a rollback.
pub(crate) fn continue_(
    c: &Control,
    caller: &CallerIdentity,
    r: ContinueServiceDeploymentRequest,
) -> Result<ContinueServiceDeploymentResponse, ControlError> {
    let arn = r.service_deployment_arn.unwrap_or_default();
    let hook_id = r.hook_id.unwrap_or_default();
    let action = r.action.unwrap_or(DeploymentLifecycleHookAction::Continue);
    c.tx(|tx| {
        let mut d = deployment_named(tx, &arn)?;
        if d.status != "IN_PROGRESS" {
            return Err(ControlError::invalid(format!(
                "The service deployment {arn} is {}; only an IN_PROGRESS deployment waits on a lifecycle hook.",
                d.status
            )));
        }
        let mut progress = render::progress_of(&d)?;
        let awaiting = progress.hook.as_mut().filter(|h| h.hook_id == hook_id && h.status == "AWAITING_ACTION");
        let Some(hook) = awaiting else {
            return Err(ControlError::invalid(format!(
                "The lifecycle hook '{hook_id}' of service deployment {arn} is not awaiting action."
            )));
        };
        match action {
            DeploymentLifecycleHookAction::Continue => hook.status = "SUCCEEDED".into(),
            DeploymentLifecycleHookAction::Rollback => {
                hook.status = "FAILED".into();
                d.status = "ROLLBACK_REQUESTED".into();
                d.status_reason = Some(format!(
                    "Rollback requested by ContinueServiceDeployment (ROLLBACK) at lifecycle hook {hook_id} from {}.",
                    caller.principal_arn
                ));
            }
        }
        d.progress = progress.to_json();
        d.updated_at = now();
        tx.deployment_update(&d)?;
        Ok(())
    })?;
    c.wake();
    Ok(ContinueServiceDeploymentResponse { service_deployment_arn: Some(arn) })
}
