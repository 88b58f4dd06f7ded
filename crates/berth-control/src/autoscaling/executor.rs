//! Scaling carried out: a policy when its alarm fires ([`Control::execute_scaling_policy`], called by the alarm
//! actions' dispatcher for `arn:aws:autoscaling:...:scalingPolicy:...` actions), scheduled actions when due and
//! the left-over alarms of policies ([`Control::autoscaling_pass`], from every reconciler pass). Each writes the
//! ECS service's desired count in one transaction with the activity that records why, and wakes the reconciler,
//! which starts tasks (they take traffic once healthy) or drains them (no new requests; stopped when none is in
//! flight). Every decision is `berth_telemetry::scaling`'s; the starting point is the running count.

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_model::application_autoscaling::{
    NotScaledReason, PolicyType, StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
};
use berth_store::{ScalableTargetRow, ScalingActivityRow, ServiceRow, Tx};
use berth_telemetry::scaling::{Activity, Capacity, Decision, Direction, NotScaled, ScalingConfig, Trigger, decide};

use super::{DIMENSION, NAMESPACE, alarms, api};
use crate::{Control, ControlError};

/// An alarm action naming a scaling policy: which alarm, in which state, with what it last saw.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmTrigger {
    pub alarm_name: String,
    pub policy_arn: String,
    /// `ALARM` (policies act only on it), `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// The alarm's newest datapoint (`None`: no data).
    pub newest_value: Option<f64>,
    /// The alarm's threshold (step scaling's bounds are relative to it).
    pub threshold: Option<f64>,
}

/// What an alarm action did, for the alarm's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalingOutcome {
    /// The desired count was set.
    Scaled { from: u32, to: u32 },
    /// Nothing changed, and why (AAS's `NotScaledReasons` code, or berth's).
    NotScaled(String),
}

impl ScalingOutcome {
    /// The outcome in the words of the alarm's history (`record_alarm_action_result`).
    pub fn describe(&self, policy_arn: &str) -> String {
        match self {
            ScalingOutcome::Scaled { from, to } => {
                format!("Successfully executed action {policy_arn}: desired count {from} → {to}")
            }
            ScalingOutcome::NotScaled(why) => format!("Executed action {policy_arn}: not scaled ({why})"),
        }
    }
}

/// Six weeks of activities are kept (§6.9; the reconciler's prune deletes older ones).
pub(crate) const ACTIVITY_RETENTION: f64 = 42.0 * 86_400.0;

impl Control {
    /// Carries out the scaling policy an alarm action names. An unknown policy (deleted since) is an error for the
    /// alarm's history; a decision not to scale is recorded as a not-scaled activity (once per distinct reason).
    pub fn execute_scaling_policy(&self, trigger: &AlarmTrigger, now: f64) -> Result<ScalingOutcome, ControlError> {
        let out = self.tx(|tx| execute(self, tx, trigger, now))?;
        if matches!(out, ScalingOutcome::Scaled { .. }) {
            self.wake();
        }
        Ok(out)
    }

    /// The periodic part of autoscaling, from every reconciler pass: scheduled actions that are due, alarms of
    /// policies CloudWatch does not have yet or whose policies are gone. Writes only when there is something to do.
    pub fn autoscaling_pass(&self, now: f64) -> Result<(), ControlError> {
        let scheduled = self.read(|tx| Ok(!tx.scheduled_actions(NAMESPACE, None)?.is_empty()))?;
        let changed = scheduled && self.tx(|tx| run_scheduled(self, tx, now))?;
        if changed {
            self.wake();
        }
        let pending: Vec<String> = self.read(|tx| {
            Ok(tx
                .scaling_policies(NAMESPACE, None)?
                .into_iter()
                .filter(|p| alarms::parse(&p.alarms).iter().any(|a| !a.created))
                .map(|p| p.arn)
                .collect())
        })?;
        for arn in pending {
            if let Err(e) = super::ensure_alarms(self, &arn) {
                tracing::warn!(policy = %arn, error = %e, "cannot put a target tracking policy's alarms yet");
            }
        }
        if let Err(e) = super::delete_queued_alarms(self) {
            tracing::warn!(error = %e, "cannot delete the alarms of removed scaling policies yet");
        }
        Ok(())
    }
}

/// The service a target scales (ACTIVE only).
fn service_of(tx: &Tx<'_>, resource_id: &str) -> Result<Option<ServiceRow>, ControlError> {
    let (cluster, service) = api::resource(resource_id)?;
    Ok(tx.service_by_name(cluster, service)?.filter(|s| s.status == ServiceStatus::Active))
}

/// The service's tasks that run and are wanted: the count scaling starts from.
fn running(tx: &Tx<'_>, service: &ServiceRow) -> Result<u32, ControlError> {
    let tasks = tx.tasks_in(&service.cluster, Some(service.id), Some(TaskStatus::Running))?;
    Ok(tasks.iter().filter(|t| t.last_status == TaskStatus::Running).count() as u32)
}

fn activity(target: &ScalableTargetRow, now: f64) -> ScalingActivityRow {
    ScalingActivityRow {
        id: berth_core::ids::uuid4(),
        namespace: NAMESPACE.into(),
        resource_id: target.resource_id.clone(),
        dimension: DIMENSION.into(),
        description: String::new(),
        cause: String::new(),
        start_time: now,
        end_time: Some(now),
        status: "Successful".into(),
        status_message: None,
        not_scaled: None,
    }
}

/// Sets the desired count and records the activity that did it.
fn set_desired(
    tx: &Tx<'_>,
    target: &ScalableTargetRow,
    service: &mut ServiceRow,
    to: u32,
    cause: &str,
    now: f64,
) -> Result<(), ControlError> {
    service.desired_count = to;
    service.updated_at = now;
    tx.service_update(service)?;
    tx.scaling_activity_add(&ScalingActivityRow {
        description: format!("Setting desired count to {to}."),
        cause: cause.to_string(),
        status_message: Some(format!("Successfully set desired count to {to}. Change successfully fulfilled by ecs.")),
        ..activity(target, now)
    })?;
    Ok(())
}

/// Moves the service's desired count into the target's [min, max] (registration, scheduled actions). Returns
/// whether it changed.
pub(crate) fn fit_capacity(
    _c: &Control,
    tx: &Tx<'_>,
    target: &ScalableTargetRow,
    cause: &str,
    now: f64,
) -> Result<bool, ControlError> {
    let Some(mut service) = service_of(tx, &target.resource_id)? else { return Ok(false) };
    let (min, max) = (target.min_capacity.max(0) as u32, target.max_capacity.max(0) as u32);
    let to = service.desired_count.clamp(min, max.max(min));
    if to == service.desired_count {
        return Ok(false);
    }
    set_desired(tx, target, &mut service, to, cause, now)?;
    Ok(true)
}

fn execute(c: &Control, tx: &Tx<'_>, trigger: &AlarmTrigger, now: f64) -> Result<ScalingOutcome, ControlError> {
    let Some(policy) = tx.scaling_policy_by_arn(&trigger.policy_arn)? else {
        return Err(ControlError::code(
            berth_core::ErrorCode::ObjectNotFound,
            format!("No scaling policy found for ARN {}", trigger.policy_arn),
        ));
    };
    let target = api::target_of(tx, &policy.resource_id)?;
    let cause =
        format!("monitor alarm {} in state {} triggered policy {}", trigger.alarm_name, trigger.state, policy.name);
    let Some(mut service) = service_of(tx, &policy.resource_id)? else {
        return not_scaled(tx, &target, &cause, "TargetServicePutResourceAsUnscalable", 0, now);
    };
    if trigger.state != "ALARM" {
        return Ok(ScalingOutcome::NotScaled(format!("the alarm is in state {}", trigger.state)));
    }
    let (min, max) = (target.min_capacity.max(0) as u32, target.max_capacity.max(0) as u32);
    let current = Capacity {
        running: running(tx, &service)?,
        desired: service.desired_count,
        deploying: service.live_revision.as_deref() != Some(service.target_revision.as_str()),
    };
    let last = match (policy.last_at, policy.last_direction.as_deref(), policy.last_to) {
        (Some(at), Some(d), Some(to)) => Some(Activity {
            at: at as i64,
            direction: if d == "out" { Direction::Out } else { Direction::In },
            to: to.max(0) as u32,
        }),
        _ => None,
    };
    let decision = if policy.policy_type == PolicyType::TargetTrackingScaling.as_str() {
        let config: TargetTrackingScalingPolicyConfiguration = serde_json::from_str(&policy.config).map_err(corrupt)?;
        let which = alarms::parse(&policy.alarms)
            .into_iter()
            .find(|a| a.name == trigger.alarm_name)
            .map(|a| if a.kind == "AlarmLow" { Trigger::Low } else { Trigger::High })
            .unwrap_or(Trigger::High);
        let defaults = c.config.scaling;
        // The alarm's datapoint in the target's unit (a 10-second sum of a per-minute count × 6).
        let per_minute = api::tracked_metric(&policy.resource_id, &config)?.per_minute(defaults.alarm_timing.period);
        let scaling = ScalingConfig {
            target_value: config.target_value.unwrap_or_default(),
            min_capacity: min,
            max_capacity: max,
            scale_out_cooldown: config.scale_out_cooldown.map_or(defaults.scale_out_cooldown, i64::from),
            scale_in_cooldown: config.scale_in_cooldown.map_or(defaults.scale_in_cooldown, i64::from),
            disable_scale_in: config.disable_scale_in.unwrap_or(false),
            scale_in_suspended: target.scale_in_suspended,
            scale_out_suspended: target.scale_out_suspended,
        };
        decide(&scaling, current, which, trigger.newest_value.map(|v| v * per_minute), now as i64, last)
    } else {
        let config: StepScalingPolicyConfiguration = serde_json::from_str(&policy.config).map_err(corrupt)?;
        step_decision(&config, &target, current, trigger, now, last)?
    };
    match decision {
        Decision::Scale { to, direction } => {
            let from = service.desired_count;
            set_desired(tx, &target, &mut service, to, &cause, now)?;
            let d = if direction == Direction::Out { "out" } else { "in" };
            tx.scaling_policy_set_last(&policy.arn, now, d, i64::from(to))?;
            Ok(ScalingOutcome::Scaled { from, to })
        }
        Decision::NotScaled(why) => not_scaled(tx, &target, &cause, why.code(), service.desired_count, now),
    }
}

fn corrupt(e: serde_json::Error) -> ControlError {
    ControlError::Store(berth_store::StoreError::Corrupt(format!("scaling policy: {e}")))
}

/// A step scaling policy's decision: the step matching the alarm's newest datapoint against its threshold, from
/// the desired count, within the policy's cooldown (ECS: 300 s when unset) and the target's suspensions.
fn step_decision(
    config: &StepScalingPolicyConfiguration,
    target: &ScalableTargetRow,
    current: Capacity,
    trigger: &AlarmTrigger,
    now: f64,
    last: Option<Activity>,
) -> Result<Decision, ControlError> {
    let policy = api::step_policy(config)?;
    let (Some(value), Some(threshold)) = (trigger.newest_value, trigger.threshold) else {
        return Ok(Decision::NotScaled(NotScaled::InsufficientData));
    };
    let (min, max) = (target.min_capacity.max(0) as u32, target.max_capacity.max(0) as u32);
    let to = match policy.apply(&[value], threshold, current.desired, min, max) {
        Ok(to) => to,
        Err(message) => {
            tracing::info!(policy = %trigger.policy_arn, %message, "no step matched");
            return Ok(Decision::NotScaled(NotScaled::AlreadyAtDesiredCapacity));
        }
    };
    let cooldown = f64::from(config.cooldown.unwrap_or(300));
    if last.is_some_and(|a| now < a.at as f64 + cooldown) {
        return Ok(Decision::NotScaled(NotScaled::Cooldown));
    }
    Ok(match to.cmp(&current.desired) {
        std::cmp::Ordering::Greater if target.scale_out_suspended => Decision::NotScaled(NotScaled::Suspended),
        std::cmp::Ordering::Less if target.scale_in_suspended => Decision::NotScaled(NotScaled::Suspended),
        std::cmp::Ordering::Greater => Decision::Scale { to, direction: Direction::Out },
        std::cmp::Ordering::Less => Decision::Scale { to, direction: Direction::In },
        std::cmp::Ordering::Equal if current.desired >= max => Decision::NotScaled(NotScaled::AlreadyAtMaxCapacity),
        std::cmp::Ordering::Equal if current.desired <= min => Decision::NotScaled(NotScaled::AlreadyAtMinCapacity),
        std::cmp::Ordering::Equal => Decision::NotScaled(NotScaled::AlreadyAtDesiredCapacity),
    })
}

/// Records a not-scaled activity (shown with `IncludeNotScaledActivities`), unless the newest activity of the
/// target already says the same: an alarm that stays in ALARM repeats its action every period.
fn not_scaled(
    tx: &Tx<'_>,
    target: &ScalableTargetRow,
    cause: &str,
    code: &str,
    current: u32,
    now: f64,
) -> Result<ScalingOutcome, ControlError> {
    let reasons = vec![NotScaledReason {
        code: Some(code.to_string()),
        max_capacity: Some(target.max_capacity as i32),
        min_capacity: Some(target.min_capacity as i32),
        current_capacity: Some(current as i32),
    }];
    let json = serde_json::to_string(&reasons).map_err(corrupt)?;
    let newest = tx.scaling_activities(NAMESPACE, Some(&target.resource_id))?.into_iter().next();
    if !newest.is_some_and(|a| a.cause == cause && a.not_scaled.as_deref() == Some(json.as_str())) {
        tx.scaling_activity_add(&ScalingActivityRow {
            description: "Attempting to scale due to alarm triggered".into(),
            cause: cause.to_string(),
            status: "Failed".into(),
            status_message: Some(format!("Failed to scale: {code}.")),
            not_scaled: Some(json),
            ..activity(target, now)
        })?;
    }
    Ok(ScalingOutcome::NotScaled(code.to_string()))
}

/// Runs the scheduled actions that are due (of targets whose scheduled scaling is not suspended): the target's
/// min/max become the action's, and the desired count moves into them. A run missed while berth was down runs
/// once. Returns whether a desired count changed.
fn run_scheduled(c: &Control, tx: &Tx<'_>, now: f64) -> Result<bool, ControlError> {
    let mut changed = false;
    for action in tx.scheduled_actions(NAMESPACE, None)? {
        let Some(mut target) = tx.scalable_target_get(NAMESPACE, &action.resource_id, DIMENSION)? else { continue };
        let Ok(schedule) = berth_telemetry::schedule::Schedule::parse(&action.schedule, action.timezone.as_deref())
        else {
            continue;
        };
        let window = berth_telemetry::schedule::Window {
            last_run: action.last_run.map(|r| r as i64),
            start: action.start_time.unwrap_or(action.created_at) as i64,
            end: action.end_time.map(|e| e as i64),
        };
        let Some((run, carry_out)) = berth_telemetry::schedule::due(&schedule, window, now as i64) else { continue };
        tx.scheduled_action_set_last_run(&action.arn, run as f64)?;
        if !carry_out || target.scheduled_suspended {
            continue;
        }
        if let Some(min) = action.min_capacity {
            target.min_capacity = min;
            target.max_capacity = target.max_capacity.max(min);
        }
        if let Some(max) = action.max_capacity {
            target.max_capacity = max;
            target.min_capacity = target.min_capacity.min(max);
        }
        tx.scalable_target_put(&target)?;
        let cause = format!(
            "scheduled action name {} was triggered: minimum capacity {}, maximum capacity {}",
            action.name, target.min_capacity, target.max_capacity
        );
        changed |= fit_capacity(c, tx, &target, &cause, now)?;
    }
    Ok(changed)
}
