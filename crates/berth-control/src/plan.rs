//! The pure heart of the reconciler: given one service's desired state and what is observed of its tasks,
//! decide what to do next. No I/O, no clock: `now` is an input. Every pass re-plans from scratch
//! (level-triggered), so a plan only ever has to be right for the state it is given.
//!
//! A deployment, in these terms: tasks of the target revision are started beside the live ones; once
//! enough of them are healthy, the target revision becomes live (the route table shifts traffic to it),
//! and the old tasks drain (no new requests, in-flight ones finish) before they are stopped.

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::TargetHealth;

/// One service as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInput {
    pub status: ServiceStatus,
    pub desired_count: u32,
    pub target_revision: String,
    pub live_revision: Option<String>,
}

/// One of the service's tasks that is not STOPPED yet.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInput {
    pub id: String,
    pub revision: String,
    /// Desired RUNNING (false: it is draining or stopping).
    pub wanted: bool,
    pub last_status: TaskStatus,
    /// Health as the proxies report it; `None` when no proxy knows the target yet.
    pub health: Option<TargetHealth>,
    pub in_flight: u64,
    /// When draining started.
    pub stopping_at: Option<f64>,
    /// The route-table version from which the task gets no new requests.
    pub drain_version: Option<u64>,
    /// A stop has been sent to the runtime.
    pub stop_sent: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    pub service: ServiceInput,
    pub tasks: Vec<TaskInput>,
    /// The lowest route-table version any live proxy serves (`None`: no proxy is live).
    pub proxies_version: Option<u64>,
    pub now: f64,
    pub drain_timeout: f64,
    /// No task may start before this (failure backoff).
    pub start_not_before: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start `count` new tasks of the revision.
    Start { revision: String, count: u32 },
    /// Take the task out of traffic; it keeps running until drained.
    Drain { task: String, reason: DrainReason },
    /// Stop the (drained) task's container.
    Stop { task: String },
    /// Move traffic to this revision.
    SetLive { revision: String },
    /// Every task is gone: the deleted service becomes INACTIVE.
    MarkInactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainReason {
    /// Replaced by a newer revision.
    Deployment,
    /// More tasks than desired.
    ScaleIn,
    /// The service is being deleted.
    ServiceDeleted,
}

/// Decides the next actions for one service.
pub fn plan(input: &PlanInput) -> Vec<Action> {
    let mut actions = Vec::new();
    let svc = &input.service;
    let wanted: Vec<&TaskInput> = input.tasks.iter().filter(|t| t.wanted).collect();

    if svc.status != ServiceStatus::Active {
        for t in &wanted {
            actions.push(Action::Drain { task: t.id.clone(), reason: DrainReason::ServiceDeleted });
        }
        finish_draining(input, &mut actions);
        if input.tasks.is_empty() {
            actions.push(Action::MarkInactive);
        }
        return actions;
    }

    let target = svc.target_revision.as_str();
    let live = svc.live_revision.as_deref();
    let new: Vec<&TaskInput> = wanted.iter().copied().filter(|t| t.revision == target).collect();
    let desired = svc.desired_count as usize;

    // 1. The right number of target-revision tasks.
    if new.len() < desired && input.now >= input.start_not_before {
        actions.push(Action::Start { revision: target.to_string(), count: (desired - new.len()) as u32 });
    }
    if new.len() > desired {
        // Shed the least useful first: not healthy before healthy, then the newest.
        let mut extra: Vec<&TaskInput> = new.clone();
        extra.sort_by_key(|t| (t.health == Some(TargetHealth::Healthy), std::cmp::Reverse(t.last_status)));
        for t in extra.into_iter().take(new.len() - desired) {
            actions.push(Action::Drain { task: t.id.clone(), reason: DrainReason::ScaleIn });
        }
    }

    // 2. Shift traffic once the target revision can carry it.
    let mut live_now = live;
    if live != Some(target) {
        let healthy_new = new.iter().filter(|t| t.health == Some(TargetHealth::Healthy)).count();
        let healthy_live = wanted
            .iter()
            .filter(|t| Some(t.revision.as_str()) == live && t.health == Some(TargetHealth::Healthy))
            .count();
        if desired == 0 || healthy_new >= desired || (healthy_live == 0 && healthy_new > 0) || live.is_none() {
            actions.push(Action::SetLive { revision: target.to_string() });
            live_now = Some(target);
        }
    }

    // 3. Drain every task that is neither of the target revision nor serving the live one.
    for t in &wanted {
        if t.revision != target && Some(t.revision.as_str()) != live_now {
            actions.push(Action::Drain { task: t.id.clone(), reason: DrainReason::Deployment });
        }
    }

    finish_draining(input, &mut actions);
    actions
}

/// Stops draining tasks once no proxy can send them anything more.
fn finish_draining(input: &PlanInput, actions: &mut Vec<Action>) {
    for t in input.tasks.iter().filter(|t| !t.wanted && !t.stop_sent) {
        if is_drained(t, input) {
            actions.push(Action::Stop { task: t.id.clone() });
        }
    }
}

fn is_drained(t: &TaskInput, input: &PlanInput) -> bool {
    // A task that never got traffic has nothing to drain.
    if t.last_status < TaskStatus::Running {
        return true;
    }
    if let Some(since) = t.stopping_at
        && input.now - since >= input.drain_timeout
    {
        return true;
    }
    match (t.drain_version, input.proxies_version) {
        (Some(dv), Some(pv)) => pv >= dv && t.in_flight == 0,
        _ => false,
    }
}
