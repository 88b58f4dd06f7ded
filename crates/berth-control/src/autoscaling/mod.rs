//! Application Auto Scaling (2016-02-06, `handle_application_autoscaling`): scalable targets, scaling policies
//! (target tracking with the alarms it owns, step scaling), scheduled actions and scaling activities, for
//! `ecs:service:DesiredCount`; and the alarm actions that name a scaling policy.
//!
//! `api.rs` validates and records (the `*_in` functions run inside a caller's transaction, so Express provisions
//! a target and its policy in the transaction that creates the service); `executor.rs` carries out a policy when
//! its alarm fires and runs scheduled actions when due, writing the ECS service's desired count (the reconciler
//! places and drains tasks); `alarms.rs` is the one seam to CloudWatch's alarms; `context.rs` builds the request
//! contexts calls are authorized with. The decisions themselves are `berth_telemetry::scaling`'s.

pub(crate) mod alarms;
pub(crate) mod api;
mod context;
pub(crate) mod executor;

pub(crate) use executor::ACTIVITY_RETENTION;
pub use executor::{AlarmTrigger, ScalingOutcome};

use berth_core::AwsError;
use berth_model::application_autoscaling::{Operation, Output, SIGNING_NAME};

use crate::{CallerIdentity, Control, ControlError, authz};

/// The only namespace and dimension berth scales.
pub(crate) const NAMESPACE: &str = "ecs";
pub(crate) const DIMENSION: &str = "ecs:service:DesiredCount";
/// The tag Express puts on what it manages; a target carrying it passes it on to its policies' alarms.
const MANAGED_KEY: &str = "AmazonECSManaged";

impl Control {
    /// Handles one decoded Application Auto Scaling operation for an authenticated caller.
    pub async fn handle_application_autoscaling(
        &self,
        caller: &CallerIdentity,
        op: Operation,
    ) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = crate::blocking(|| {
            if !authz::is_root(caller) {
                let requests = context::requests(self, &op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("application-autoscaling:{name}"), requests)?;
            }
            api::handle(self, op).map_err(AwsError::from)
        });
        crate::error::answer(SIGNING_NAME, name, errors, out)
    }
}

/// Puts the policy's alarms that CloudWatch does not have yet (as the policy last described them) and records
/// them as created. Runs after the policy's transaction, and again from the periodic pass for any left over.
pub(crate) fn ensure_alarms(c: &Control, policy_arn: &str) -> Result<(), ControlError> {
    let Some((policy, tags)) = c.read(|tx| {
        let Some(p) = tx.scaling_policy_by_arn(policy_arn)? else { return Ok(None) };
        let target = api::target_of(tx, &p.resource_id)?;
        let tags: Vec<(String, String)> =
            tx.tags_get(&target.arn)?.into_iter().filter(|(k, _)| k == MANAGED_KEY).collect();
        Ok(Some((p, tags)))
    })?
    else {
        return Ok(());
    };
    let owned = alarms::parse(&policy.alarms);
    if owned.iter().all(|a| a.created) {
        return Ok(());
    }
    let mut put = Vec::new();
    for (alarm, spec) in api::wanted_alarms(c, &policy, &owned)? {
        if owned.iter().any(|o| o.name == alarm.name && o.created) {
            continue;
        }
        alarms::put(c, alarms::input(&spec, &tags), &policy.arn)?;
        put.push(alarm.name);
    }
    c.tx(|tx| {
        // Only if the policy still describes these alarms (a concurrent update starts over).
        if let Some(mut p) = tx.scaling_policy_by_arn(policy_arn)?
            && p.config == policy.config
        {
            let mut now_owned = alarms::parse(&p.alarms);
            for a in now_owned.iter_mut().filter(|a| put.contains(&a.name)) {
                a.created = true;
            }
            p.alarms = alarms::to_json(&now_owned);
            tx.scaling_policy_put(&p)?;
        }
        Ok(())
    })
}

/// The meta key of alarms whose policies are gone but which CloudWatch may still have (a teardown inside
/// another transaction queues them; the autoscaling pass deletes them).
const DOOMED_ALARMS: &str = "autoscaling_doomed_alarms";

/// Queues alarms for deletion by the next autoscaling pass (restart-safe: the queue is in the store).
pub(crate) fn queue_alarm_deletion(tx: &berth_store::Tx<'_>, names: &[String]) -> Result<(), ControlError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut queued: Vec<String> =
        tx.meta_get(DOOMED_ALARMS)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
    queued.extend(names.iter().cloned());
    queued.sort();
    queued.dedup();
    tx.meta_set(DOOMED_ALARMS, &serde_json::to_string(&queued).unwrap_or_else(|_| "[]".into()))?;
    Ok(())
}

/// Deletes the queued alarms; the queue is emptied only once CloudWatch took them.
pub(crate) fn delete_queued_alarms(c: &Control) -> Result<(), ControlError> {
    let queued: Vec<String> =
        c.read(|tx| Ok(tx.meta_get(DOOMED_ALARMS)?))?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
    if queued.is_empty() {
        return Ok(());
    }
    alarms::delete(c, &queued)?;
    c.tx(|tx| {
        let now: Vec<String> =
            tx.meta_get(DOOMED_ALARMS)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
        let rest: Vec<String> = now.into_iter().filter(|n| !queued.contains(n)).collect();
        tx.meta_set(DOOMED_ALARMS, &serde_json::to_string(&rest).unwrap_or_else(|_| "[]".into()))?;
        Ok(())
    })
}
