//! The pure heart of the reconciler: given one service's desired state and what is observed of its tasks,
//! decide what to do next. No I/O, no clock: `now` is an input. Every pass re-plans from scratch
//! (level-triggered), so a plan only ever has to be right for the state it is given.
//!
//! A service with no unfinished deployment keeps its target revision's tasks at the desired count. A service
//! with one follows the deployment's stage machine ([`deploy`]): scale up, shift production (and test)
//! traffic by the strategy's steps, bakes shown as pause hooks, user pause hooks, the circuit breaker and
//! alarms, rollback, clean up. The machine's state lives in the deployment's row (status, stage, progress), so
//! the planner only ever reads what the last pass wrote; its decisions come back as actions the executor
//! writes to that row ([`DeployState::apply`], the one place a deployment's state changes) before it acts.

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::TargetHealth;

use crate::deployment::{Hook, Progress, RollbackInfo};

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
    /// When its container started (the unhealthy grace counts from here).
    pub started_at: Option<f64>,
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
    /// The service's unfinished deployment, if any (then [`deploy`] plans the service).
    pub deployment: Option<DeploymentInput>,
}

/// An unfinished deployment: its stored state, what it deploys, how, and what is observed of it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInput {
    /// The deployment's id (the last segment of its ARN; pause hook ids derive from it).
    pub id: String,
    pub state: DeployState,
    pub target: String,
    /// The revision serving when it began (`None`: the service's first deployment).
    pub source: Option<String>,
    pub config: DeployConfig,
    /// The watched alarms as they are now.
    pub alarms: Vec<AlarmInput>,
    /// Tasks of the target or source revision that stopped with a failure since the deployment was created.
    pub failed_tasks: Vec<FailedTask>,
    /// A pass-to-pass gap longer than this means the server was not watching (the bake clock skips it).
    pub max_gap: f64,
    /// A target task reported unhealthy counts as failed only this long after it started.
    pub unhealthy_grace: f64,
}

/// The mutable part of a deployment row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeployState {
    /// ECS's `ServiceDeploymentStatus` wire value.
    pub status: String,
    pub status_reason: Option<String>,
    /// ECS's `ServiceDeploymentLifecycleStage` wire value.
    pub stage: String,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub progress: Progress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Rolling,
    BlueGreen,
    Canary,
    Linear,
}

/// A deployment's effective configuration, in the planner's units (seconds, percents).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployConfig {
    pub strategy: Strategy,
    /// CANARY: the first production step, percent.
    pub canary_percent: f64,
    /// LINEAR: each production step, percent.
    pub step_percent: f64,
    /// Bake after each production step below 100% (CANARY's canary bake, LINEAR's step bake), seconds.
    pub step_bake_secs: f64,
    /// Bake after 100% (ROLLING: after the old tasks are gone), seconds.
    pub bake_secs: f64,
    /// ROLLING's envelope.
    pub min_healthy_percent: u32,
    pub max_percent: u32,
    /// Circuit breaker: enabled, and whether it rolls back.
    pub breaker: bool,
    pub breaker_rollback: bool,
    /// Alarms watched (enabled), and whether one in ALARM rolls back.
    pub alarms: bool,
    pub alarm_rollback: bool,
    /// User PAUSE hooks, in configuration order.
    pub hooks: Vec<PauseHook>,
    /// BLUE_GREEN has a test listener rule.
    pub test_rule: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PauseHook {
    /// `DeploymentLifecycleHookStage` wire values.
    pub stages: Vec<String>,
    pub timeout_secs: f64,
    /// `CONTINUE` or `ROLLBACK`.
    pub timeout_action: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmInput {
    pub name: String,
    pub in_alarm: bool,
    /// When it entered its current state.
    pub since: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailedTask {
    pub id: String,
    pub revision: String,
    /// The task's stoppedReason.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
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
    // A deployment's decisions (written to its row by [`DeployState::apply`], then acted on).
    /// The deployment's status changes (PENDING → IN_PROGRESS), with a reason.
    Status { status: String, reason: Option<String> },
    /// The deployment enters a lifecycle stage.
    EnterStage { stage: String },
    /// Production traffic: the target revision's share on every rule forwarding to the service's groups.
    SetWeights { target_percent: f64 },
    /// Test traffic (BLUE_GREEN's test listener rule): the target revision's share.
    SetTestWeights { target_percent: f64 },
    /// A pause hook (a user's, or a bake shown as one) opens.
    OpenHook { hook: Hook, bake: bool },
    /// The bake clock advances: `counted` seconds watched, `unwatched` seconds the server was not up.
    Bake { counted: f64, unwatched: f64 },
    /// The open hook ends with this status (`SUCCEEDED`, `FAILED`, `TIMED_OUT`).
    CloseHook { status: String },
    /// A task of the target revision failed (circuit breaker), or of the source while rolling back.
    CountFailure { task: String, source: bool, reason: String },
    /// An alarm in ALARM was seen.
    AlarmTriggered { name: String },
    /// Traffic goes back to the source revision (status ROLLBACK_IN_PROGRESS; a stop stays STOP_REQUESTED).
    BeginRollback { reason: String, revision: String },
    /// The deployment ends: SUCCESSFUL, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED or STOPPED.
    Finish { status: String, reason: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainReason {
    /// Replaced by a newer revision.
    Deployment,
    /// More tasks than desired.
    ScaleIn,
    /// The service is being deleted.
    ServiceDeleted,
    /// Unhealthy: replaced (and counted by the circuit breaker).
    Unhealthy,
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

    if let Some(d) = &input.deployment {
        deploy(input, d, &mut actions);
        finish_draining(input, &mut actions);
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

// ---------------------------------------------------------------------------------------------------------
// Deployments: the stage machine.

/// `ServiceDeploymentStatus` wire values.
pub mod status {
    pub const PENDING: &str = "PENDING";
    pub const IN_PROGRESS: &str = "IN_PROGRESS";
    pub const SUCCESSFUL: &str = "SUCCESSFUL";
    pub const STOP_REQUESTED: &str = "STOP_REQUESTED";
    pub const STOPPED: &str = "STOPPED";
    pub const ROLLBACK_REQUESTED: &str = "ROLLBACK_REQUESTED";
    pub const ROLLBACK_IN_PROGRESS: &str = "ROLLBACK_IN_PROGRESS";
    pub const ROLLBACK_SUCCESSFUL: &str = "ROLLBACK_SUCCESSFUL";
    pub const ROLLBACK_FAILED: &str = "ROLLBACK_FAILED";
}

/// `ServiceDeploymentLifecycleStage` wire values, in the order a deployment passes them.
pub mod stage {
    pub const PRE_SCALE_UP: &str = "PRE_SCALE_UP";
    pub const SCALE_UP: &str = "SCALE_UP";
    pub const POST_SCALE_UP: &str = "POST_SCALE_UP";
    pub const TEST_TRAFFIC_SHIFT: &str = "TEST_TRAFFIC_SHIFT";
    pub const POST_TEST_TRAFFIC_SHIFT: &str = "POST_TEST_TRAFFIC_SHIFT";
    pub const PRE_PRODUCTION_TRAFFIC_SHIFT: &str = "PRE_PRODUCTION_TRAFFIC_SHIFT";
    pub const PRODUCTION_TRAFFIC_SHIFT: &str = "PRODUCTION_TRAFFIC_SHIFT";
    pub const POST_PRODUCTION_TRAFFIC_SHIFT: &str = "POST_PRODUCTION_TRAFFIC_SHIFT";
    pub const BAKE_TIME: &str = "BAKE_TIME";
    pub const CLEAN_UP: &str = "CLEAN_UP";
    pub const ORDER: [&str; 10] = [
        PRE_SCALE_UP,
        SCALE_UP,
        POST_SCALE_UP,
        TEST_TRAFFIC_SHIFT,
        POST_TEST_TRAFFIC_SHIFT,
        PRE_PRODUCTION_TRAFFIC_SHIFT,
        PRODUCTION_TRAFFIC_SHIFT,
        POST_PRODUCTION_TRAFFIC_SHIFT,
        BAKE_TIME,
        CLEAN_UP,
    ];
}

/// Whether a deployment status is one of ECS's finished ones.
pub fn is_finished(s: &str) -> bool {
    matches!(s, status::SUCCESSFUL | status::STOPPED | status::ROLLBACK_SUCCESSFUL | status::ROLLBACK_FAILED)
}

/// ALB weights (source, target) for the target revision's share of traffic, exact: on a total of 100 when
/// `target_percent` is whole, else 1000 (ECS's 0.1 steps), else the smallest total up to 1000 that is exact; 0 and 100 are exactly 100/0 and 0/100.
/// Every weight is within ALB's 0–999.
pub fn alb_weights(target_percent: f64) -> (i32, i32) {
    let p = target_percent.clamp(0.0, 100.0);
    if p <= 0.0 {
        return (100, 0);
    }
    if p >= 100.0 {
        return (0, 100);
    }
    for total in [100, 1000].into_iter().chain(101..1000) {
        let w = p * f64::from(total) / 100.0;
        if (w - w.round()).abs() < 1e-6 && w.round() >= 1.0 && w.round() < f64::from(total) {
            let t = w.round() as i32;
            return (total - t, t);
        }
    }
    let t = ((p * 10.0).round() as i32).clamp(1, 999);
    (1000 - t, t)
}

impl DeployState {
    /// Writes one of the planner's deployment decisions into the state: the one place a deployment's state
    /// changes. Task actions change nothing here.
    pub fn apply(&mut self, a: &Action, now: f64) {
        let p = &mut self.progress;
        match a {
            Action::Status { status, reason } => {
                self.status = status.clone();
                if reason.is_some() {
                    self.status_reason = reason.clone();
                }
                if status == status::IN_PROGRESS && self.started_at.is_none() {
                    self.started_at = Some(now);
                }
            }
            Action::EnterStage { stage } => {
                self.stage = stage.clone();
                p.stage_hooks_done = 0;
            }
            Action::SetWeights { target_percent } => {
                if *target_percent > p.target_weight {
                    p.step += 1;
                }
                p.target_weight = *target_percent;
            }
            Action::SetTestWeights { target_percent } => p.test_weight = *target_percent,
            Action::OpenHook { hook, bake } => {
                p.hook = Some(hook.clone());
                p.bake = *bake;
                if *bake {
                    p.baked_secs = 0.0;
                    p.bake_checked_at = Some(now);
                }
            }
            Action::Bake { counted, unwatched } => {
                p.baked_secs += counted;
                p.unwatched_secs += unwatched;
                p.bake_checked_at = Some(now);
                if *unwatched > 0.0
                    && let Some(h) = p.hook.as_mut()
                    && let Some(at) = h.expires_at
                {
                    // The bake ends later by the time nobody watched it.
                    h.expires_at = Some(at + unwatched);
                }
            }
            Action::CloseHook { status } => {
                if let Some(mut h) = p.hook.take() {
                    h.status = status.clone();
                    if !p.bake {
                        p.stage_hooks_done += 1;
                    }
                    p.hooks_done.push(h);
                }
                p.bake = false;
                p.bake_checked_at = None;
            }
            Action::CountFailure { task, source, .. } => {
                if !p.counted_failures.contains(task) {
                    p.counted_failures.push(task.clone());
                    if *source {
                        p.source_failures += 1;
                    } else {
                        p.failures += 1;
                    }
                }
            }
            Action::AlarmTriggered { name } => {
                if !p.triggered_alarms.contains(name) {
                    p.triggered_alarms.push(name.clone());
                }
            }
            Action::BeginRollback { reason, revision } => {
                p.rollback = Some(RollbackInfo { reason: reason.clone(), started_at: now, revision: revision.clone() });
                if self.status != status::STOP_REQUESTED {
                    self.status = status::ROLLBACK_IN_PROGRESS.into();
                }
                self.status_reason = Some(reason.clone());
            }
            Action::Finish { status, reason } => {
                self.status = status.clone();
                if reason.is_some() {
                    self.status_reason = reason.clone();
                }
                self.finished_at = Some(now);
            }
            Action::Start { .. }
            | Action::Drain { .. }
            | Action::Stop { .. }
            | Action::SetLive { .. }
            | Action::MarkInactive => {}
        }
    }
}

/// Plans a service that has an unfinished deployment.
fn deploy(input: &PlanInput, d: &DeploymentInput, out: &mut Vec<Action>) {
    let mut m = Machine { st: d.state.clone(), input, d, out, drained: Vec::new(), last_failure: None };
    m.run();
}

struct Machine<'a> {
    st: DeployState,
    input: &'a PlanInput,
    d: &'a DeploymentInput,
    out: &'a mut Vec<Action>,
    /// Tasks drained by this pass (no longer wanted).
    drained: Vec<String>,
    /// The newest failure's reason seen by this pass.
    last_failure: Option<String>,
}

fn stage_index(s: &str) -> usize {
    stage::ORDER.iter().position(|x| *x == s).unwrap_or(0)
}

impl Machine<'_> {
    fn push(&mut self, a: Action) {
        self.st.apply(&a, self.input.now);
        self.out.push(a);
    }

    fn desired(&self) -> usize {
        self.input.service.desired_count as usize
    }

    fn can_start(&self) -> bool {
        self.input.now >= self.input.start_not_before
    }

    fn wanted(&self, rev: &str) -> Vec<&TaskInput> {
        self.input.tasks.iter().filter(|t| t.wanted && t.revision == rev && !self.drained.contains(&t.id)).collect()
    }

    fn healthy(&self, rev: &str) -> usize {
        self.wanted(rev).iter().filter(|t| t.health == Some(TargetHealth::Healthy)).count()
    }

    /// Any task of `rev` left, draining ones included.
    fn any_task(&self, rev: &str) -> bool {
        self.input.tasks.iter().any(|t| t.revision == rev)
    }

    fn drain(&mut self, task: String, reason: DrainReason) {
        if !self.drained.contains(&task) {
            self.drained.push(task.clone());
            self.out.push(Action::Drain { task, reason });
        }
    }

    fn drain_all(&mut self, rev: &str) {
        let ids: Vec<String> = self.wanted(rev).iter().map(|t| t.id.clone()).collect();
        for id in ids {
            self.drain(id, DrainReason::Deployment);
        }
    }

    /// Keeps `rev` at `count` wanted tasks: starts the missing, sheds the extra (least useful first).
    fn keep(&mut self, rev: &str, count: usize) {
        let mut extra: Vec<(bool, TaskStatus, String)> = self
            .wanted(rev)
            .iter()
            .map(|t| (t.health == Some(TargetHealth::Healthy), t.last_status, t.id.clone()))
            .collect();
        let have = extra.len();
        if have < count && self.can_start() {
            self.out.push(Action::Start { revision: rev.to_string(), count: (count - have) as u32 });
        }
        if have > count {
            extra.sort_by_key(|(h, s, _)| (*h, std::cmp::Reverse(*s)));
            let n = have - count;
            for (_, _, id) in extra.into_iter().take(n) {
                self.drain(id, DrainReason::ScaleIn);
            }
        }
    }

    fn threshold(&self) -> u32 {
        self.st.progress.failure_threshold.max(1)
    }

    fn run(&mut self) {
        let target = self.d.target.clone();
        // Tasks of revisions this deployment is not about (a superseded deployment's) drain at once.
        let others: Vec<String> = self
            .input
            .tasks
            .iter()
            .filter(|t| t.wanted && t.revision != target && Some(&t.revision) != self.d.source.as_ref())
            .map(|t| t.id.clone())
            .collect();
        for id in others {
            self.drain(id, DrainReason::Deployment);
        }
        if self.st.status == status::PENDING {
            self.push(Action::Status { status: status::IN_PROGRESS.into(), reason: None });
        }
        match self.st.status.as_str() {
            status::IN_PROGRESS => self.forward(),
            status::ROLLBACK_REQUESTED | status::ROLLBACK_IN_PROGRESS | status::STOP_REQUESTED => self.back(),
            _ => {}
        }
    }

    /// Counts the failures of `rev`'s tasks not counted yet: tasks that stopped failed, and running tasks
    /// unhealthy past the grace (drained and replaced).
    fn count_failures(&mut self, rev: &str, source: bool) {
        let now = self.input.now;
        let failed: Vec<(String, String)> = self
            .d
            .failed_tasks
            .iter()
            .filter(|f| f.revision == rev && !self.st.progress.counted_failures.contains(&f.id))
            .map(|f| (f.id.clone(), f.reason.clone()))
            .collect();
        for (task, reason) in failed {
            self.last_failure = Some(reason.clone());
            self.push(Action::CountFailure { task, source, reason });
        }
        let unhealthy: Vec<String> = self
            .wanted(rev)
            .iter()
            .filter(|t| {
                t.health == Some(TargetHealth::Unhealthy)
                    && t.started_at.is_some_and(|s| now - s >= self.d.unhealthy_grace)
                    && !self.st.progress.counted_failures.contains(&t.id)
            })
            .map(|t| t.id.clone())
            .collect();
        for task in unhealthy {
            let reason = format!("Task failed ELB health checks (task {task})");
            self.drain(task.clone(), DrainReason::Unhealthy);
            self.last_failure = Some(reason.clone());
            self.push(Action::CountFailure { task, source, reason });
        }
    }

    fn forward(&mut self) {
        let now = self.input.now;
        let cfg = &self.d.config;
        let target = self.d.target.clone();
        self.count_failures(&target, false);
        let started = self.st.started_at.unwrap_or(now);
        if cfg.alarms {
            for a in &self.d.alarms {
                // An alarm counts only if it entered ALARM after the deployment started.
                if a.in_alarm && a.since >= started {
                    if !self.st.progress.triggered_alarms.contains(&a.name) {
                        self.push(Action::AlarmTriggered { name: a.name.clone() });
                    }
                    if cfg.alarm_rollback && self.d.source.is_some() {
                        return self.rollback(format!("alarm {} in ALARM", a.name));
                    }
                }
            }
        }
        if cfg.breaker && self.st.progress.failures >= self.threshold() {
            let reason = self
                .last_failure
                .clone()
                .or_else(|| self.d.failed_tasks.last().map(|f| f.reason.clone()))
                .unwrap_or_else(|| "tasks failed".into());
            let n = self.st.progress.failures;
            if cfg.breaker_rollback && self.d.source.is_some() {
                return self.rollback(format!("circuit breaker: {n} tasks failed: {reason}"));
            }
            // Nothing to return to (or no rollback wanted): the tasks keep retrying with backoff.
            let why = format!("tasks failed to start: {reason}");
            if self.st.status_reason.as_deref() != Some(why.as_str()) {
                self.push(Action::Status { status: status::IN_PROGRESS.into(), reason: Some(why) });
            }
        }
        if !self.handle_hook() {
            if self.st.status == status::IN_PROGRESS {
                self.keep_forward_tasks();
            }
            return;
        }
        for _ in 0..32 {
            if !self.advance() {
                break;
            }
        }
        if self.st.status == status::IN_PROGRESS {
            self.keep_forward_tasks();
        }
    }

    /// Task counts while going forward: the target at the desired count from SCALE_UP on (ROLLING: within
    /// the envelope), the source at the desired count until CLEAN_UP.
    fn keep_forward_tasks(&mut self) {
        let desired = self.desired();
        let target = self.d.target.clone();
        let at = stage_index(&self.st.stage);
        if self.d.config.strategy == Strategy::Rolling && self.st.stage == stage::SCALE_UP {
            return self.rolling_envelope();
        }
        if at >= stage_index(stage::SCALE_UP) {
            self.keep(&target, desired);
        }
        if let Some(src) = self.d.source.clone() {
            // Before SCALE_UP nothing replaces the source (a PRE_SCALE_UP hook may hold it there), whatever the
            // strategy; ROLLING then hands the source over to its envelope.
            let before_scale_up = at < stage_index(stage::SCALE_UP);
            if before_scale_up || (at < stage_index(stage::CLEAN_UP) && self.d.config.strategy != Strategy::Rolling) {
                self.keep(&src, desired);
            } else {
                self.drain_all(&src);
            }
        }
    }

    /// ROLLING's SCALE_UP: new tasks up to `maximumPercent` of desired (rounded down), old ones stopped down
    /// to `minimumHealthyPercent` of desired healthy (rounded up).
    fn rolling_envelope(&mut self) {
        let desired = self.desired();
        let cfg = &self.d.config;
        let target = self.d.target.clone();
        let max_total = desired * cfg.max_percent as usize / 100;
        let min_healthy = (desired * cfg.min_healthy_percent as usize).div_ceil(100);
        let new = self.wanted(&target).len();
        let old_tasks: Vec<(String, bool)> = match &self.d.source {
            Some(src) => {
                self.wanted(src).iter().map(|t| (t.id.clone(), t.health == Some(TargetHealth::Healthy))).collect()
            }
            None => Vec::new(),
        };
        let room = max_total.saturating_sub(new + old_tasks.len());
        let start = room.min(desired.saturating_sub(new));
        if start > 0 && self.can_start() {
            self.out.push(Action::Start { revision: target.clone(), count: start as u32 });
        }
        if new > desired {
            self.keep(&target, desired);
        }
        let healthy_total = self.healthy(&target) + old_tasks.iter().filter(|(_, h)| *h).count();
        let mut budget = healthy_total.saturating_sub(min_healthy);
        // Old tasks beyond what the new ones need to replace: not healthy ones first (they cost no budget).
        let mut old = old_tasks;
        old.sort_by_key(|(_, h)| *h);
        for (id, healthy) in old {
            if healthy {
                if budget == 0 {
                    break;
                }
                budget -= 1;
            }
            self.drain(id, DrainReason::Deployment);
        }
    }

    /// Handles the open hook, if any. Returns whether the machine may go on (no hook open any more).
    fn handle_hook(&mut self) -> bool {
        let now = self.input.now;
        let Some(h) = self.st.progress.hook.clone() else { return true };
        match h.status.as_str() {
            "SUCCEEDED" => {
                self.push(Action::CloseHook { status: "SUCCEEDED".into() });
                true
            }
            "FAILED" => {
                self.rollback(format!("lifecycle hook {} failed", h.hook_id));
                false
            }
            _ if self.st.progress.bake => {
                let since = self.st.progress.bake_checked_at.unwrap_or(now);
                let gap = (now - since).max(0.0);
                let (counted, unwatched) = if gap <= self.d.max_gap { (gap, 0.0) } else { (0.0, gap) };
                if unwatched > 0.0
                    && let Some(src) = self.d.source.clone()
                    && self.st.progress.target_weight < 100.0
                    && self.wanted(&src).is_empty()
                {
                    self.rollback(format!(
                        "the server was not running for {unwatched:.0} s during the bake and the source revision's tasks are gone"
                    ));
                    return false;
                }
                let total = if h.stage == stage::PRE_PRODUCTION_TRAFFIC_SHIFT {
                    self.step_bake_secs()
                } else {
                    self.bake_secs()
                };
                if counted > 0.0 || unwatched > 0.0 {
                    self.push(Action::Bake { counted, unwatched });
                }
                if self.st.progress.baked_secs >= total {
                    self.push(Action::CloseHook { status: "SUCCEEDED".into() });
                    true
                } else {
                    false
                }
            }
            _ => {
                if h.expires_at.is_some_and(|at| now >= at) {
                    self.push(Action::CloseHook { status: "TIMED_OUT".into() });
                    if h.timeout_action == "ROLLBACK" {
                        self.rollback(format!("lifecycle hook {} timed out", h.hook_id));
                        return false;
                    }
                    true
                } else {
                    false
                }
            }
        }
    }

    fn step_bake_secs(&self) -> f64 {
        self.st.progress.step_bake_secs.unwrap_or(self.d.config.step_bake_secs)
    }

    fn bake_secs(&self) -> f64 {
        self.st.progress.final_bake_secs.unwrap_or(self.d.config.bake_secs)
    }

    fn hook_id(&self) -> String {
        let short: String = self.d.id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        format!("ecs-pause-{short}-{}", self.st.progress.hooks_done.len() + 1)
    }

    fn open_bake(&mut self, stage: &str, secs: f64) {
        let hook = Hook {
            hook_id: self.hook_id(),
            stage: stage.into(),
            target_type: "PAUSE".into(),
            status: "AWAITING_ACTION".into(),
            expires_at: Some(self.input.now + secs),
            timeout_action: "CONTINUE".into(),
        };
        self.push(Action::OpenHook { hook, bake: true });
    }

    /// At a stage that user pause hooks may hold: opens the next one. Returns whether all are done.
    fn user_hooks_done(&mut self) -> bool {
        let stage = self.st.stage.clone();
        let hooks: Vec<PauseHook> = self.d.config.hooks.iter().filter(|h| h.stages.contains(&stage)).cloned().collect();
        let done = self.st.progress.stage_hooks_done as usize;
        if self.st.progress.hook.is_some() {
            return false;
        }
        let Some(next) = hooks.get(done) else { return true };
        let hook = Hook {
            hook_id: self.hook_id(),
            stage,
            target_type: "PAUSE".into(),
            status: "AWAITING_ACTION".into(),
            expires_at: Some(self.input.now + next.timeout_secs),
            timeout_action: next.timeout_action.clone(),
        };
        self.push(Action::OpenHook { hook, bake: false });
        false
    }

    fn enter(&mut self, s: &str) {
        self.push(Action::EnterStage { stage: s.into() });
        match s {
            stage::TEST_TRAFFIC_SHIFT if self.d.config.test_rule => {
                self.push(Action::SetTestWeights { target_percent: 100.0 })
            }
            stage::PRODUCTION_TRAFFIC_SHIFT => {
                let next = self.next_weight();
                self.push(Action::SetWeights { target_percent: next });
                let bake = self.step_bake_secs();
                if next < 100.0 && bake > 0.0 {
                    self.open_bake(stage::PRE_PRODUCTION_TRAFFIC_SHIFT, bake);
                }
            }
            stage::BAKE_TIME => {
                let bake = self.bake_secs();
                if bake > 0.0 {
                    self.open_bake(stage::POST_PRODUCTION_TRAFFIC_SHIFT, bake);
                }
            }
            stage::CLEAN_UP => {
                if let Some(src) = self.d.source.clone() {
                    self.drain_all(&src);
                }
            }
            _ => {}
        }
    }

    /// The target's next production share.
    fn next_weight(&self) -> f64 {
        let cfg = &self.d.config;
        let w = self.st.progress.target_weight;
        let next = match cfg.strategy {
            Strategy::Canary if self.st.progress.step == 0 => cfg.canary_percent,
            Strategy::Linear => ((w + cfg.step_percent.max(0.1)) * 10.0).round() / 10.0,
            _ => 100.0,
        };
        if next >= 100.0 - 1e-9 { 100.0 } else { next.max(0.1) }
    }

    /// Moves on from the current stage when it is complete. Returns whether the stage changed.
    fn advance(&mut self) -> bool {
        let desired = self.desired();
        let target = self.d.target.clone();
        let rolling = self.d.config.strategy == Strategy::Rolling;
        match self.st.stage.as_str() {
            stage::PRE_SCALE_UP => {
                if !self.user_hooks_done() {
                    return false;
                }
                self.enter(stage::SCALE_UP);
            }
            stage::SCALE_UP => {
                let old_left = self.d.source.as_deref().is_some_and(|s| !self.wanted(s).is_empty());
                let ready = self.healthy(&target) >= desired && !(rolling && old_left);
                if !ready {
                    return false;
                }
                self.enter(stage::POST_SCALE_UP);
            }
            stage::POST_SCALE_UP => {
                if !self.user_hooks_done() || self.healthy(&target) < desired {
                    return false;
                }
                if self.d.source.is_none() {
                    // A first deployment: nothing to shift from (its group already has the rules' weight),
                    // nothing to bake against.
                    self.enter(stage::CLEAN_UP);
                } else if rolling {
                    self.enter(stage::BAKE_TIME);
                } else if self.d.config.strategy == Strategy::BlueGreen {
                    self.enter(stage::TEST_TRAFFIC_SHIFT);
                } else {
                    self.enter(stage::PRE_PRODUCTION_TRAFFIC_SHIFT);
                }
            }
            stage::TEST_TRAFFIC_SHIFT => self.enter(stage::POST_TEST_TRAFFIC_SHIFT),
            stage::POST_TEST_TRAFFIC_SHIFT | stage::PRE_PRODUCTION_TRAFFIC_SHIFT => {
                // No traffic moves to a target that lost its healthy tasks since SCALE_UP (they are being
                // replaced, and counted by the breaker): wait until it has them again.
                if !self.user_hooks_done() || self.healthy(&target) < desired {
                    return false;
                }
                let next = if self.st.stage == stage::POST_TEST_TRAFFIC_SHIFT {
                    stage::PRE_PRODUCTION_TRAFFIC_SHIFT
                } else {
                    stage::PRODUCTION_TRAFFIC_SHIFT
                };
                self.enter(next);
            }
            stage::PRODUCTION_TRAFFIC_SHIFT => {
                if self.st.progress.hook.is_some() {
                    return false;
                }
                if self.st.progress.target_weight >= 100.0 {
                    self.enter(stage::POST_PRODUCTION_TRAFFIC_SHIFT);
                } else {
                    self.enter(stage::PRE_PRODUCTION_TRAFFIC_SHIFT);
                }
            }
            stage::POST_PRODUCTION_TRAFFIC_SHIFT => {
                if !self.user_hooks_done() {
                    return false;
                }
                self.enter(stage::BAKE_TIME);
            }
            stage::BAKE_TIME => {
                // The source goes only once the target carries the desired count healthy.
                if self.st.progress.hook.is_some() || self.healthy(&target) < desired {
                    return false;
                }
                self.enter(stage::CLEAN_UP);
            }
            stage::CLEAN_UP => {
                if let Some(src) = self.d.source.clone() {
                    self.drain_all(&src);
                    if self.any_task(&src) {
                        return false;
                    }
                }
                self.push(Action::Finish { status: status::SUCCESSFUL.into(), reason: None });
                return false;
            }
            _ => self.enter(stage::PRE_SCALE_UP),
        }
        true
    }

    /// Begins rolling back (when there is a revision to return to) and takes its first steps at once.
    fn rollback(&mut self, reason: String) {
        let Some(src) = self.d.source.clone() else {
            let why = format!("{reason}; there is no earlier revision to roll back to");
            if self.st.status_reason.as_deref() != Some(why.as_str()) {
                self.push(Action::Status { status: status::IN_PROGRESS.into(), reason: Some(why) });
            }
            return;
        };
        if self.st.progress.hook.is_some() {
            self.push(Action::CloseHook { status: "FAILED".into() });
        }
        self.push(Action::BeginRollback { reason, revision: src });
        self.back();
    }

    /// Rolling back (or stopping): traffic exactly 100/0 on the source revision once its tasks are healthy
    /// (relaunched first when they are gone), the target's tasks drained and stopped.
    fn back(&mut self) {
        let stopping = self.st.status == status::STOP_REQUESTED;
        if let Some(h) = self.st.progress.hook.clone() {
            let end = if h.status == "SUCCEEDED" { "SUCCEEDED" } else { "FAILED" };
            self.push(Action::CloseHook { status: end.into() });
        }
        let Some(src) = self.d.source.clone() else {
            let (status, reason) = if stopping {
                (status::STOPPED, "Stopped; there is no earlier revision to return to, the tasks stay")
            } else {
                (status::ROLLBACK_FAILED, "There is no earlier revision to roll back to")
            };
            self.push(Action::Finish { status: status.into(), reason: Some(reason.into()) });
            return;
        };
        if self.st.progress.rollback.is_none() {
            let reason = self
                .st
                .status_reason
                .clone()
                .unwrap_or_else(|| if stopping { "stop requested".into() } else { "rollback requested".into() });
            self.push(Action::BeginRollback { reason, revision: src.clone() });
        }
        let target = self.d.target.clone();
        let desired = self.desired();
        self.count_failures(&src, true);
        if self.st.progress.source_failures >= self.threshold() {
            // The source cannot come back: the target keeps (or takes) the traffic.
            if self.d.config.strategy != Strategy::Rolling
                && self.healthy(&target) > 0
                && self.st.progress.target_weight < 100.0
            {
                self.push(Action::SetWeights { target_percent: 100.0 });
            }
            let reason = format!(
                "Rollback failed: {} tasks of the source revision failed: {}",
                self.st.progress.source_failures,
                self.last_failure.clone().unwrap_or_else(|| "tasks failed".into())
            );
            self.push(Action::Finish { status: status::ROLLBACK_FAILED.into(), reason: Some(reason) });
            return;
        }
        self.keep(&src, desired);
        let h_s = self.healthy(&src);
        let h_t = self.healthy(&target);
        let ready = h_s >= desired;
        if self.d.config.strategy == Strategy::Rolling {
            if ready || h_t == 0 {
                self.drain_all(&target);
            }
        } else if ready || (h_t == 0 && h_s > 0) {
            // Never point a rule only at a group without healthy targets.
            if self.st.progress.target_weight != 0.0 {
                self.push(Action::SetWeights { target_percent: 0.0 });
            }
            if self.st.progress.test_weight != 0.0 {
                self.push(Action::SetTestWeights { target_percent: 0.0 });
            }
            self.drain_all(&target);
        }
        let shifted = self.d.config.strategy == Strategy::Rolling || self.st.progress.target_weight == 0.0;
        if shifted && ready && !self.any_task(&target) {
            let status = if stopping { status::STOPPED } else { status::ROLLBACK_SUCCESSFUL };
            self.push(Action::Finish { status: status.into(), reason: None });
        }
    }
}
