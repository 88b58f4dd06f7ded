//! The executor around [`crate::plan`]: observe the runtime, record what changed, plan each service,
//! write the plan's decisions down, then act (start and stop containers in the background) and publish
//! the route table. Every pass starts from the store and the runtime as they are now, so a crash at any
//! point leaves state the next pass (of this process or the next one) finishes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_model::ecs::{ExpressGatewayServiceConfiguration, TaskStopCode};
use berth_routes::TargetHealth;
use berth_runtime::{ObservedState, ObservedTask, TaskSpec, labels};
use berth_store::{ServiceRow, TaskRow, Tx};

use crate::cloudwatch::AlarmAction;
use crate::cloudwatch::alarms::ActionKind;
use crate::plan::{self, Action, DrainReason, PlanInput, ServiceInput, TaskInput};
use crate::secrets::launch::LaunchNeeds;
use crate::{Control, ControlError, now};

/// Label that marks which berth server owns a container (several may share one Docker Engine).
pub const INSTANCE_LABEL: &str = "berth.instance";

/// What the executor remembers between passes. Losing it (a restart) is safe: it only avoids duplicate
/// work in flight and paces retries.
#[derive(Debug, Default)]
pub(crate) struct State {
    starting: HashSet<String>,
    /// When each recent start finished: a runtime listing taken before that cannot show the container yet.
    started_at: HashMap<String, std::time::Instant>,
    stopping: HashSet<String>,
    backoff: HashMap<i64, Backoff>,
    network_ready: bool,
    last_prune: f64,
    /// The route generation of the last certificate check and when the next certificate falls due then: until
    /// either moves, a pass has nothing to renew.
    certificates_due: Option<(u64, f64)>,
    /// The route generation and time of the last deployment alarm check (`deploy_alarm::adopt`): it runs again
    /// when services change the routes, else every [`DEPLOY_ALARM_CHECK_SECS`].
    deploy_alarms_checked: Option<(u64, f64)>,
}

/// How often the deployment alarms are checked while no service changes (a deleted or edited alarm comes back
/// within this).
const DEPLOY_ALARM_CHECK_SECS: f64 = 30.0;

#[derive(Debug, Clone, Copy, Default)]
struct Backoff {
    failures: u32,
    not_before: f64,
}

impl Backoff {
    fn fail(&mut self, now: f64) {
        self.failures += 1;
        let delay = (0.5 * 2f64.powi(self.failures.min(10) as i32)).min(30.0);
        self.not_before = now + delay;
    }
}

/// Work decided in a pass, done after the transaction.
#[derive(Default)]
struct Effects {
    starts: Vec<(String, i64, TaskSpec, LaunchNeeds)>,
    stops: Vec<String>,
    removes: Vec<String>,
}

impl Control {
    /// Runs reconciliation passes until `shutdown` resolves: on every wake-up and at the resync interval.
    pub async fn run_reconciler(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Alarms beside the passes: evaluated every second (only those due), their actions dispatched.
        let alarms = tokio::spawn(Arc::clone(&self).run_alarms());
        loop {
            let started = std::time::Instant::now();
            if let Err(e) = self.reconcile_once().await {
                tracing::warn!(error = %e, "reconcile pass failed; retrying");
            }
            self.observed.reconcile_pass.observe(started.elapsed());
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.resync_interval) => {}
                _ = &mut shutdown => {
                    alarms.abort();
                    return;
                }
            }
        }
    }

    /// Evaluates the alarms that are due, every second, and dispatches their actions.
    async fn run_alarms(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.alarms_tick(now());
        }
    }

    /// One evaluation of the alarms due at `now`, with their actions carried out (public so tests can drive it).
    pub fn alarms_tick(&self, now: f64) {
        match self.evaluate_alarms(now) {
            Ok(actions) => self.dispatch_alarm_actions(actions),
            Err(e) => tracing::warn!(error = %e, "alarm evaluation failed; retrying"),
        }
    }

    /// Carries out the actions alarms made due: a scaling policy's through Application Auto Scaling's executor
    /// (which sets the service's desired count); the others are not executable. Each is recorded as an `Action`
    /// history item.
    pub(crate) fn dispatch_alarm_actions(&self, actions: Vec<AlarmAction>) {
        for a in actions {
            let (ok, message) = if ActionKind::of(&a.action_arn) == Some(ActionKind::AutoScaling) {
                let trigger = crate::autoscaling::AlarmTrigger {
                    alarm_name: a.alarm_name.clone(),
                    policy_arn: a.action_arn.clone(),
                    state: a.state.as_str().to_string(),
                    newest_value: a.newest_value,
                    threshold: a.threshold,
                };
                match self.execute_scaling_policy(&trigger, now()) {
                    Ok(outcome) => (true, outcome.describe(&a.action_arn)),
                    Err(e) => (false, berth_core::AwsError::from(e).message),
                }
            } else {
                let why = ActionKind::of(&a.action_arn)
                    .and_then(ActionKind::not_executable)
                    .unwrap_or("berth cannot carry out this action; the action was recorded only");
                (false, why.to_string())
            };
            if let Err(e) = self.record_alarm_action_result(&a.alarm_name, &a.action_arn, ok, &message) {
                tracing::warn!(alarm = %a.alarm_name, error = %e, "cannot record an alarm action");
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.reconciler.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass. Public so tests can drive the reconciler step by step.
    pub async fn reconcile_once(self: &Arc<Self>) -> Result<(), ControlError> {
        if !self.state().network_ready {
            match self.driver.ensure_network(&self.config.network).await {
                Ok(()) => self.state().network_ready = true,
                Err(e) => tracing::warn!(error = %e, "cannot prepare the task network"),
            }
        }
        let listed_at = std::time::Instant::now();
        // A runtime that cannot be reached (its daemon restarting; with live-restore the containers run on) says
        // nothing about the tasks: the pass ends here, so none is recorded as gone or replaced, and the routes
        // stay as they are.
        let observed: BTreeMap<String, ObservedTask> = self
            .driver
            .list_tasks()
            .await?
            .into_iter()
            .filter(|o| o.labels.get(INSTANCE_LABEL).map(String::as_str) == Some(self.names.instance.as_str()))
            .map(|o| (o.task_id.clone(), o))
            .collect();
        let t = now();
        let mut effects = Effects::default();
        self.tx(|tx| self.observe(tx, &observed, listed_at, t, &mut effects))?;
        // Scheduled scaling that is due changes desired counts before this pass plans them.
        if let Err(e) = self.autoscaling_pass(t) {
            tracing::warn!(error = %e, "autoscaling pass failed");
        }
        self.tx(|tx| self.plan_services(tx, t, &mut effects))?;
        self.ensure_shippers(&observed);
        self.execute(effects);
        let generation = self.tx(|tx| Ok(tx.route_generation()?))?;
        if !matches!(self.state().certificates_due, Some((g, at)) if g == generation && t < at) {
            let next_due = self.renew_certificates(t)?;
            self.state().certificates_due = Some((generation, next_due));
        }
        if !matches!(self.state().deploy_alarms_checked, Some((g, at)) if g == generation && t < at + DEPLOY_ALARM_CHECK_SECS)
        {
            match self.tx(|tx| crate::express::deploy_alarm::adopt(self, tx)) {
                Ok(()) => self.state().deploy_alarms_checked = Some((generation, t)),
                Err(e) => tracing::warn!(error = %e, "cannot check the deployment alarms"),
            }
        }
        self.publish_routes()?;
        self.sync_firewall().await;
        self.prune(t)?;
        Ok(())
    }

    /// Records what the runtime shows: tasks that started, exited or vanished, and containers nobody owns.
    fn observe(
        &self,
        tx: &Tx<'_>,
        observed: &BTreeMap<String, ObservedTask>,
        listed_at: std::time::Instant,
        t: f64,
        effects: &mut Effects,
    ) -> Result<(), ControlError> {
        let (starting, stopping, fresh) = {
            let mut s = self.state();
            s.started_at.retain(|_, at| at.elapsed() < std::time::Duration::from_secs(60));
            // Tasks whose start finished after the listing began: the listing may predate their container.
            let fresh: HashSet<String> =
                s.started_at.iter().filter(|(_, at)| **at >= listed_at).map(|(id, _)| id.clone()).collect();
            (s.starting.clone(), s.stopping.clone(), fresh)
        };
        let tasks = tx.tasks_not_stopped()?;
        let known: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        for mut task in tasks.iter().cloned() {
            if starting.contains(&task.id) || stopping.contains(&task.id) || fresh.contains(&task.id) {
                continue;
            }
            match observed.get(&task.id).map(|o| (&o.state, o)) {
                Some((ObservedState::Running, o)) => {
                    let ip = o.ip.map(|ip| ip.to_string());
                    if task.last_status < TaskStatus::Running || (ip.is_some() && task.ip != ip) {
                        tracing::info!(task = %task.id, from = ?task.ip, to = ?ip, status = task.last_status.as_str(), "adopting a running task as observed");
                        if task.last_status < TaskStatus::Running {
                            task.last_status = if task.desired_status == TaskStatus::Running {
                                TaskStatus::Running
                            } else {
                                TaskStatus::Deactivating
                            };
                        }
                        task.ip = ip.or(task.ip);
                        task.started_at = task.started_at.or_else(|| o.started_at.map(epoch)).or(Some(t));
                        tx.task_update(&task)?;
                    }
                    if task.last_status == TaskStatus::Stopping {
                        // A stop was interrupted (restart): send it again.
                        effects.stops.push(task.id.clone());
                    }
                }
                Some((ObservedState::Exited { exit_code, finished_at, error }, _)) => {
                    let failed = task.desired_status == TaskStatus::Running;
                    task.exit_code = Some(*exit_code);
                    if failed {
                        task.stop_code = Some(TaskStopCode::EssentialContainerExited.as_str().into());
                        task.stopped_reason = Some(match error.as_deref().filter(|e| !e.is_empty()) {
                            Some(e) => format!("Essential container in task exited: {e}"),
                            None => "Essential container in task exited".into(),
                        });
                        task.stopping_at = task.stopping_at.or(Some(t));
                    }
                    stop_row(&mut task, finished_at.map(epoch).unwrap_or(t));
                    tx.task_update(&task)?;
                    if failed && let Some(sid) = task.service_id {
                        let name = tx.service_by_id(sid)?.map(|s| s.name).unwrap_or_default();
                        let msg = format!(
                            "(service {name}) (task {}) stopped: essential container exited with code {exit_code}.",
                            task.id
                        );
                        tx.event_add(sid, t, &msg)?;
                    }
                    effects.removes.push(task.id.clone());
                    if failed && let Some(sid) = task.service_id {
                        self.state().backoff.entry(sid).or_default().fail(t);
                    }
                }
                Some((ObservedState::Created, _)) | None => {
                    let failed = task.desired_status == TaskStatus::Running;
                    tracing::info!(task = %task.id, status = task.last_status.as_str(), "task's container is gone or never started");
                    if failed {
                        task.stop_code = Some(TaskStopCode::TaskFailedToStart.as_str().into());
                        task.stopped_reason = Some(if task.last_status < TaskStatus::Running {
                            "Task failed to start: its start was interrupted".into()
                        } else {
                            "Essential container in task exited: the container was removed outside berth".into()
                        });
                    }
                    stop_row(&mut task, t);
                    tx.task_update(&task)?;
                    effects.removes.push(task.id.clone());
                    if failed && let Some(sid) = task.service_id {
                        self.state().backoff.entry(sid).or_default().fail(t);
                    }
                }
            }
        }
        for id in observed.keys() {
            if !known.contains(id.as_str()) && !starting.contains(id) && !stopping.contains(id) && !fresh.contains(id) {
                tracing::info!(task = %id, "removing a container no task owns");
                effects.removes.push(id.clone());
            }
        }
        Ok(())
    }

    fn plan_services(&self, tx: &Tx<'_>, t: f64, effects: &mut Effects) -> Result<(), ControlError> {
        crate::express::placement::adopt_unplaced(self, tx, t)?;
        let all_tasks = tx.tasks_not_stopped()?;
        let groups = crate::elbv2::revision_groups(tx)?;
        let (proxies_version, health) = {
            let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
            let mut map = HashMap::new();
            for task in &all_tasks {
                if let Some(group) = task.revision_arn.as_ref().and_then(|rev| groups.get(rev))
                    && let Some(s) = h.target(group, &task.arn, t)
                {
                    map.insert(task.id.clone(), s);
                }
            }
            (h.min_version(t), map)
        };
        let (starting, stopping) = {
            let s = self.state();
            (s.starting.clone(), s.stopping.clone())
        };
        for mut service in tx.services_live(None)? {
            if service.status == ServiceStatus::Draining {
                // A deletion the infrastructure role refused so far: try again (level-triggered).
                crate::express::teardown::release(self, tx, &mut service, t)?;
            }
            let tasks: Vec<&TaskRow> = all_tasks.iter().filter(|task| task.service_id == Some(service.id)).collect();
            if tasks.iter().any(|task| health.get(&task.id).is_some_and(|h| h.health == TargetHealth::Healthy)) {
                self.state().backoff.remove(&service.id);
            }
            let not_before = self.state().backoff.get(&service.id).map(|b| b.not_before).unwrap_or(0.0);
            let input = PlanInput {
                service: ServiceInput {
                    status: service.status,
                    desired_count: service.desired_count,
                    target_revision: service.target_revision.clone(),
                    live_revision: service.live_revision.clone(),
                },
                tasks: tasks
                    .iter()
                    .map(|task| TaskInput {
                        id: task.id.clone(),
                        revision: task.revision_arn.clone().unwrap_or_default(),
                        wanted: task.desired_status == TaskStatus::Running,
                        last_status: task.last_status,
                        health: health.get(&task.id).map(|h| h.health),
                        started_at: task.started_at,
                        in_flight: health.get(&task.id).map(|h| h.in_flight).unwrap_or(0),
                        stopping_at: task.stopping_at,
                        drain_version: task.drain_version,
                        stop_sent: stopping.contains(&task.id) || task.last_status >= TaskStatus::Stopping,
                    })
                    // A task stopped while its start is still in flight is planned once the start has landed.
                    .filter(|ti| ti.wanted || !starting.contains(&ti.id))
                    .collect(),
                proxies_version,
                now: t,
                // Draining ends when nothing is in flight, at the latest after the target group's
                // deregistration delay (capped by `deploy.drain_timeout_secs`); read only when a task drains.
                drain_timeout: match tasks.iter().any(|task| task.desired_status != TaskStatus::Running) {
                    true => crate::elbv2::deregistration_delay(tx, &service)?
                        .map_or(self.config.drain_timeout.as_secs_f64(), |d| {
                            d.min(self.config.drain_timeout.as_secs_f64())
                        }),
                    false => self.config.drain_timeout.as_secs_f64(),
                },
                start_not_before: not_before,
                deployment: None,
            };
            let mut input = input;
            // The unfinished deployment, if any, plans the service (its stage machine).
            let current = match service.status {
                ServiceStatus::Active => tx.deployment_current(service.id)?,
                _ => {
                    // A service being deleted ends its deployment; its tasks drain with the service.
                    crate::rollout::abandon(tx, &service, t)?;
                    None
                }
            };
            if let Some(d) = &current {
                input.deployment = Some(crate::rollout::input(self, tx, &service, d)?);
            }
            let actions = plan::plan(&input);
            if actions.is_empty() {
                self.note_steady_state(tx, &service, &input, t)?;
                continue;
            }
            tracing::debug!(service = %service.arn, ?actions, "plan");
            if let (Some(d), Some(di)) = (current, &input.deployment) {
                // The deployment's decisions are written first (then acted on, in this transaction).
                crate::rollout::record(self, tx, &mut service, d, &di.state, &actions, t)?;
            }
            self.apply(tx, &mut service, actions, t, effects)?;
        }
        Ok(())
    }

    fn apply(
        &self,
        tx: &Tx<'_>,
        service: &mut ServiceRow,
        actions: Vec<Action>,
        t: f64,
        effects: &mut Effects,
    ) -> Result<(), ControlError> {
        let mut service_changed = false;
        let mut draining = 0;
        for action in actions {
            match action {
                Action::Start { revision, count } => {
                    let config = crate::revisions::revision_config(tx, &revision)?;
                    let mut ids = Vec::new();
                    for _ in 0..count {
                        let (row, mut spec, needs) = self.new_task(service, &revision, &config, t)?;
                        tx.task_insert(&row)?;
                        self.grant_task_role(tx, config.task_role_arn.as_deref(), &mut spec, t)?;
                        ids.push(format!("(task {})", row.id));
                        effects.starts.push((row.id, service.id, spec, needs));
                    }
                    if !ids.is_empty() {
                        let msg =
                            format!("(service {}) has started {} tasks: {}.", service.name, ids.len(), ids.join(" "));
                        tx.event_add(service.id, t, &msg)?;
                    }
                }
                Action::Drain { task, reason } => {
                    let Some(mut row) = tx.task_get(&task)? else { continue };
                    row.desired_status = TaskStatus::Stopped;
                    if row.last_status == TaskStatus::Running {
                        row.last_status = TaskStatus::Deactivating;
                    }
                    row.stopping_at = Some(t);
                    row.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated.as_str().into());
                    row.stopped_reason = Some(match reason {
                        DrainReason::Deployment => format!(
                            "Scaling activity initiated by (deployment ecs-svc/{})",
                            service.target_revision.rsplit('/').next().unwrap_or_default()
                        ),
                        DrainReason::ScaleIn => "Scaling activity initiated by (service scale-in)".into(),
                        DrainReason::ServiceDeleted => "Service deleted".into(),
                        DrainReason::Unhealthy => "Task failed ELB health checks".into(),
                    });
                    tx.task_update(&row)?;
                    if reason == DrainReason::Unhealthy {
                        let msg = format!("(service {}) (task {}) failed ELB health checks.", service.name, row.id);
                        tx.event_add(service.id, t, &msg)?;
                    }
                    draining += 1;
                }
                Action::Stop { task } => {
                    let Some(mut row) = tx.task_get(&task)? else { continue };
                    if row.last_status < TaskStatus::Running {
                        // Never started (or start failed before the runtime had it): nothing to stop.
                        stop_row(&mut row, t);
                        tx.task_update(&row)?;
                        effects.removes.push(row.id);
                    } else {
                        row.last_status = TaskStatus::Stopping;
                        tx.task_update(&row)?;
                        let msg = format!("(service {}) has stopped 1 running tasks: (task {}).", service.name, row.id);
                        tx.event_add(service.id, t, &msg)?;
                        effects.stops.push(row.id);
                    }
                }
                Action::SetLive { revision } => {
                    let msg = format!(
                        "(service {}) (deployment ecs-svc/{}) shifted all traffic to the new service revision.",
                        service.name,
                        revision.rsplit('/').next().unwrap_or_default()
                    );
                    tx.event_add(service.id, t, &msg)?;
                    crate::express::placement::shift_service(tx, service.id, &revision)?;
                    service.live_revision = Some(revision);
                    service_changed = true;
                }
                Action::MarkInactive => {
                    // Not before the infrastructure role has deleted the service's resources.
                    if !crate::express::teardown::retire(self, tx, service, t)? {
                        continue;
                    }
                    service.status = ServiceStatus::Inactive;
                    service.status_reason = None;
                    service_changed = true;
                    tx.certificate_delete(&service.endpoint_host)?;
                }
                // A deployment's decisions: written and acted on by `rollout::record`.
                _ => {}
            }
        }
        if draining > 0 {
            let msg = format!("(service {}) has begun draining connections on {draining} tasks.", service.name);
            tx.event_add(service.id, t, &msg)?;
        }
        if service_changed {
            service.updated_at = t;
            tx.service_update(service)?;
        }
        Ok(())
    }

    /// Records "has reached a steady state" once per settling: every task is of the target revision,
    /// healthy, as many as desired, and nothing drains.
    fn note_steady_state(
        &self,
        tx: &Tx<'_>,
        service: &ServiceRow,
        input: &PlanInput,
        t: f64,
    ) -> Result<(), ControlError> {
        let steady = service.status == ServiceStatus::Active
            && input.deployment.is_none()
            && service.live_revision.as_deref() == Some(service.target_revision.as_str())
            && input.tasks.len() == service.desired_count as usize
            && input.tasks.iter().all(|task| {
                task.wanted && task.revision == service.target_revision && task.health == Some(TargetHealth::Healthy)
            });
        if !steady {
            return Ok(());
        }
        let msg = format!("(service {}) has reached a steady state.", service.name);
        if tx.events(service.id)?.first().map(|e| e.2.as_str()) != Some(msg.as_str()) {
            tx.event_add(service.id, t, &msg)?;
        }
        Ok(())
    }

    fn new_task(
        &self,
        service: &ServiceRow,
        revision: &str,
        config: &ExpressGatewayServiceConfiguration,
        t: f64,
    ) -> Result<(TaskRow, TaskSpec, LaunchNeeds), ControlError> {
        let id = berth_core::ids::task_id();
        let arn = self.names.task(&service.cluster, &id);
        let container = config.primary_container.clone().unwrap_or_default();
        let needs = LaunchNeeds::of(&container, config.execution_role_arn.as_deref());
        let port = container.container_port.unwrap_or(80).clamp(1, 65535) as u16;
        let size = berth_core::sizing::validate(config.cpu.as_deref(), config.memory.as_deref())?;
        let mut labels = BTreeMap::new();
        labels.insert(labels::MANAGED.to_string(), "true".to_string());
        labels.insert(labels::CLUSTER.to_string(), service.cluster.clone());
        labels.insert(labels::SERVICE.to_string(), service.arn.clone());
        labels.insert(labels::REVISION.to_string(), revision.to_string());
        labels.insert(labels::TASK.to_string(), id.clone());
        labels.insert(labels::TASK_ARN.to_string(), arn.clone());
        labels.insert(INSTANCE_LABEL.to_string(), self.names.instance.clone());
        let mut environment: Vec<(String, String)> = container
            .environment
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| Some((kv.name?, kv.value.unwrap_or_default())))
            .collect();
        if !environment.iter().any(|(k, _)| k == "PORT") {
            environment.push(("PORT".into(), port.to_string()));
        }
        let spec = TaskSpec {
            task_id: id.clone(),
            labels,
            image: container.image.unwrap_or_default(),
            command: container.command.unwrap_or_default(),
            environment,
            size,
            container_port: port,
            network: self.config.network.clone(),
            stop_timeout: self.config.stop_timeout,
            registry_auth: None,
        };
        let row = TaskRow {
            id,
            arn,
            cluster: service.cluster.clone(),
            service_id: Some(service.id),
            revision_arn: Some(revision.to_string()),
            task_definition_arn: config.task_definition_arn.clone().unwrap_or_default(),
            started_by: Some(format!("ecs-svc/{}", revision.rsplit('/').next().unwrap_or_default())),
            desired_status: TaskStatus::Running,
            last_status: TaskStatus::Provisioning,
            ip: None,
            port,
            created_at: t,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            drain_version: None,
        };
        Ok((row, spec, needs))
    }

    /// Starts and stops containers in the background; each completion is recorded and wakes a new pass.
    fn execute(self: &Arc<Self>, effects: Effects) {
        for (id, service_id, mut spec, needs) in effects.starts {
            if !self.state().starting.insert(id.clone()) {
                continue;
            }
            let me = Arc::clone(self);
            tokio::spawn(async move {
                // PROVISIONING → PENDING: the runtime is pulling and creating the container.
                let pending = me.tx(|tx| {
                    if let Some(mut row) = tx.task_get(&id)?
                        && row.last_status == TaskStatus::Provisioning
                    {
                        row.last_status = TaskStatus::Pending;
                        tx.task_update(&row)?;
                    }
                    Ok(())
                });
                if let Err(e) = pending {
                    tracing::warn!(task = %id, error = %e, "cannot record task as pending");
                }
                // Secrets and registry credentials are fetched now, as the execution role, and live only in
                // the spec handed to the runtime.
                let result = match me.resolve_launch(&needs) {
                    Ok(resolved) => {
                        for (k, v) in resolved.environment {
                            spec.environment.retain(|(name, _)| *name != k);
                            spec.environment.push((k, v));
                        }
                        spec.registry_auth = resolved.registry_auth;
                        // The log stream, as the execution role too (log_shipping.rs), before the container exists.
                        let logging = match &needs.log {
                            Some(target) => me.prepare_log_stream(&id, target, needs.execution_role.as_deref()),
                            None => Ok(()),
                        };
                        match logging {
                            Ok(()) => me.driver.run_task(&spec).await.map_err(|e| e.to_string()),
                            Err(reason) => Err(reason),
                        }
                    }
                    Err(reason) => Err(reason),
                };
                drop(spec);
                let t = now();
                let recorded = me.tx(|tx| {
                    let Some(mut row) = tx.task_get(&id)? else { return Ok(()) };
                    match &result {
                        Ok(started) => {
                            row.ip = Some(started.ip.to_string());
                            row.started_at = Some(epoch(started.started_at));
                            if row.last_status < TaskStatus::Running {
                                row.last_status = if row.desired_status == TaskStatus::Running {
                                    TaskStatus::Running
                                } else {
                                    TaskStatus::Deactivating
                                };
                            }
                        }
                        Err(e) => {
                            row.stop_code = Some(TaskStopCode::TaskFailedToStart.as_str().into());
                            row.stopped_reason = Some(e.to_string());
                            stop_row(&mut row, t);
                            if let Some(service) = tx.service_by_id(service_id)? {
                                let msg = format!("(service {}) (task {}) failed to start: {e}", service.name, row.id);
                                tx.event_add(service_id, t, &msg)?;
                            }
                        }
                    }
                    tx.task_update(&row)?;
                    Ok(())
                });
                if let Err(e) = &result {
                    tracing::info!(task = %id, error = %e, "task failed to start");
                    me.state().backoff.entry(service_id).or_default().fail(t);
                }
                if let Err(e) = recorded {
                    tracing::warn!(task = %id, error = %e, "cannot record task start");
                }
                if result.is_ok() {
                    me.ensure_shipper(&id);
                }
                {
                    let mut state = me.state();
                    state.starting.remove(&id);
                    state.started_at.insert(id.clone(), std::time::Instant::now());
                }
                // Publish the new target now rather than after the next pass's runtime listing: every
                // millisecond here is time to the first request served.
                if result.is_ok()
                    && let Err(e) = me.publish_routes()
                {
                    tracing::warn!(error = %e, "cannot publish routes");
                }
                me.wake();
            });
        }
        for id in effects.stops {
            if !self.state().stopping.insert(id.clone()) {
                continue;
            }
            let me = Arc::clone(self);
            tokio::spawn(async move {
                // A task that ships its output is stopped, drained, then removed (containers.rs).
                let result = me.stop_container(&id).await;
                match result {
                    Ok(()) => {
                        let recorded = me.tx(|tx| {
                            if let Some(mut row) = tx.task_get(&id)? {
                                stop_row(&mut row, now());
                                tx.task_update(&row)?;
                            }
                            Ok(())
                        });
                        if let Err(e) = recorded {
                            tracing::warn!(task = %id, error = %e, "cannot record task stop");
                        }
                    }
                    Err(e) => tracing::warn!(task = %id, error = %e, "cannot stop task; will retry"),
                }
                me.state().stopping.remove(&id);
                me.wake();
            });
        }
        for id in effects.removes {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = me.remove_container(&id).await {
                    tracing::warn!(task = %id, error = %e, "cannot remove container; will retry");
                }
            });
        }
    }

    fn prune(&self, t: f64) -> Result<(), ControlError> {
        if t - self.state().last_prune < 60.0 {
            return Ok(());
        }
        self.state().last_prune = t;
        let before = t - self.config.stopped_task_retention.as_secs_f64();
        self.tx(|tx| {
            tx.tasks_prune_stopped(before)?;
            tx.log_shipping_prune()?;
            tx.scaling_activities_prune(t - crate::autoscaling::ACTIVITY_RETENTION)?;
            Ok(())
        })?;
        // CloudWatch Logs retention: events older than their group's retention go.
        let expired = self.expire_log_events((t * 1000.0) as i64)?;
        if expired > 0 {
            tracing::debug!(expired, "log events past their retention deleted");
        }
        Ok(())
    }
}

fn stop_row(row: &mut TaskRow, at: f64) {
    row.desired_status = TaskStatus::Stopped;
    row.last_status = TaskStatus::Stopped;
    row.stopping_at = row.stopping_at.or(Some(at));
    row.stopped_at = Some(at);
}

fn epoch(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or(0.0)
}
