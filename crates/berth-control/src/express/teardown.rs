//! Deleting an Express service as its infrastructure role, without orphaning anything.
//!
//! A deleted service is DRAINING until its resources are gone. Two steps tear them down, each carried out in a
//! savepoint, recorded in a [`Journal`] and authorized as the role's `ECSGateway` session before it is kept:
//! [`release`] deletes its auto scaling (target, policies, alarms) and its deployment alarm and takes the service off its load balancer (its rule and certificate, other rules' forwards to its
//! groups, the load balancer and its listeners when it empties), at once from DeleteExpressGatewayService and
//! then on every reconciler pass until it succeeds; [`retire`] deletes the target groups and the groups berth
//! created, once no task is left, and only then may the service become INACTIVE. A denied step is undone, the
//! service stays DRAINING with the denial as its `statusReason` and a service event (written once per
//! distinct denial), and the next pass tries again: the state lives in the store (DRAINING plus the resources
//! still there), so this is level-triggered and survives restarts. Once the role's policy allows it, the
//! deletion completes by itself.

use berth_store::{ServiceRow, Tx};

use super::journal::{self, Journal, Purpose};
use crate::{Control, ControlError};

/// The status reason of a service being deleted while nothing blocks it.
pub(crate) const DRAINING_REASON: &str = "Service deletion requested; draining tasks.";

/// Takes a deleting service off its load balancer, then deletes its auto scaling and its deployment alarm, if the
/// infrastructure role allows it. Returns whether all are gone (now or before). A draining service is never scaled meanwhile (the
/// executor scales ACTIVE services only).
pub(crate) fn release(c: &Control, tx: &Tx<'_>, service: &mut ServiceRow, t: f64) -> Result<bool, ControlError> {
    if tx.placement_get(service.id)?.is_some() {
        let snapshot = service.clone();
        let step = tx.savepoint(|tx| {
            let mut journal = Journal::default();
            crate::express::placement::release_service(tx, &snapshot, &mut journal)?;
            authorize(c, tx, &snapshot, &journal)
        });
        if !settle(tx, service, step, t)? {
            return Ok(false);
        }
    }
    if !release_scaling(c, tx, service, t)? {
        return Ok(false);
    }
    release_alarm(c, tx, service, t)
}

/// Deletes the service's deployment alarm if the infrastructure role allows it. Returns whether it is gone.
fn release_alarm(c: &Control, tx: &Tx<'_>, service: &mut ServiceRow, t: f64) -> Result<bool, ControlError> {
    if !crate::express::deploy_alarm::exists(tx, service)? {
        return Ok(true);
    }
    let snapshot = service.clone();
    let step = tx.savepoint(|tx| {
        let mut journal = Journal::default();
        crate::express::deploy_alarm::remove(tx, &snapshot, &mut journal)?;
        authorize(c, tx, &snapshot, &journal)
    });
    settle(tx, service, step, t)
}

/// Deletes the service's scalable target, its policies (their alarms) and scheduled actions if the infrastructure
/// role allows it. Returns whether none is left.
fn release_scaling(c: &Control, tx: &Tx<'_>, service: &mut ServiceRow, t: f64) -> Result<bool, ControlError> {
    let resource_id = format!("service/{}/{}", service.cluster, service.name);
    if tx.scalable_target_get(crate::autoscaling::NAMESPACE, &resource_id, crate::autoscaling::DIMENSION)?.is_none() {
        return Ok(true);
    }
    let snapshot = service.clone();
    let step = tx.savepoint(|tx| {
        let mut journal = Journal::default();
        crate::express::scaling::remove(tx, &snapshot, &mut journal)?;
        authorize(c, tx, &snapshot, &journal)
    });
    settle(tx, service, step, t)
}

/// The last step of a deletion, once no task is left: the service's target groups and the security groups
/// berth created go (the firewall pass deletes the latter once nothing references them). Returns whether the
/// service may become INACTIVE.
pub(crate) fn retire(c: &Control, tx: &Tx<'_>, service: &mut ServiceRow, t: f64) -> Result<bool, ControlError> {
    if !release(c, tx, service, t)? {
        return Ok(false);
    }
    let snapshot = service.clone();
    let step = tx.savepoint(|tx| {
        let mut journal = Journal::default();
        crate::express::placement::retire_groups(tx, snapshot.id, &mut journal)?;
        crate::express::security_groups::record_group_deletion(c, tx, snapshot.id, &mut journal)?;
        authorize(c, tx, &snapshot, &journal)
    });
    settle(tx, service, step, t)
}

fn authorize(c: &Control, tx: &Tx<'_>, service: &ServiceRow, journal: &Journal) -> Result<(), ControlError> {
    match &service.infrastructure_role_arn {
        Some(role) => journal::authorize(c, tx, role, journal, Purpose::Delete),
        // A service from before berth recorded roles: nothing to act as.
        None => Ok(()),
    }
}

/// Records the outcome of a teardown step on the service: a denial becomes its status reason (and an event
/// when the reason is new); success after a denial restores the draining reason.
fn settle(tx: &Tx<'_>, service: &mut ServiceRow, step: Result<(), ControlError>, t: f64) -> Result<bool, ControlError> {
    let (done, reason) = match step {
        Ok(()) => (true, DRAINING_REASON.to_string()),
        Err(e) if journal::is_denial(&e) => {
            let message = berth_core::AwsError::from(e).message;
            (false, format!("{message}. The deletion resumes once the infrastructure role allows it."))
        }
        Err(e) => return Err(e),
    };
    if service.status_reason.as_deref() != Some(reason.as_str()) {
        if !done {
            tracing::warn!(service = %service.arn, reason = %reason, "deletion is waiting for the infrastructure role");
            tx.event_add(
                service.id,
                t,
                &format!("(service {}) is waiting to delete its resources: {reason}", service.name),
            )?;
        }
        service.status_reason = Some(reason);
        service.updated_at = t;
        tx.service_update(service)?;
    }
    Ok(done)
}
