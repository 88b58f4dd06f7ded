//! Deployments carried out: a deployment begun (or superseded) when a service gets a new revision, and each
//! pass's step of every unfinished deployment (the executor around `plan.rs`'s pure stage machine): traffic
//! weights on every rule forwarding to the service's target groups, bakes watched by the deployment's alarms,
//! pause hooks, the circuit breaker, rollback. Every decision is written to the deployment's row before it is
//! acted on (in the same transaction), so a restart resumes where the last process stopped.

use berth_core::status::TaskStatus;
use berth_model::ecs::{
    CanaryConfiguration, DeploymentAlarms, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentLifecycleHookTargetType, DeploymentStrategy, LinearConfiguration, TaskStopCode, ThresholdConfiguration,
    ThresholdType,
};
use berth_store::{DeploymentRow, ServiceRow, TaskRow, Tx};

use crate::deployment::{Progress, Settings};
use crate::plan::{
    self, Action, AlarmInput, DeployConfig, DeployState, DeploymentInput, FailedTask, PauseHook, Strategy, stage,
    status,
};
use crate::{Control, ControlError};

/// A target task reported unhealthy this long after it started counts as failed (and is replaced).
const UNHEALTHY_GRACE_SECS: f64 = 60.0;

/// A random ECS-style deployment id: 20 URL-safe characters.
fn deployment_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let hex = berth_core::ids::random_hex(40);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let b = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0);
            ALPHABET[(b % 64) as usize] as char
        })
        .collect::<String>()
        .trim_start_matches(['-', '_'])
        .to_string()
}

/// The deployment id of an ARN (its last segment).
pub(crate) fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ControlError {
    ControlError::Store(berth_store::StoreError::Corrupt(format!("{what}: {e}")))
}

/// The service's deployment settings (the defaults when never set).
fn settings(tx: &Tx<'_>, service: &ServiceRow) -> Result<Settings, ControlError> {
    match tx.deployment_settings_get(service.id)? {
        Some(json) => Settings::parse(&json).map_err(|e| corrupt("deployment settings", e)),
        None => Ok(Settings::default()),
    }
}

fn minutes(secs: u64) -> i32 {
    secs.div_ceil(60).min(i32::MAX as u64) as i32
}

/// What a new deployment follows: the model's `DeploymentConfiguration` with every default filled in (shown as
/// DescribeServiceDeployments shows it, bakes in minutes rounded up), and the bakes in seconds.
pub(crate) struct Effective {
    pub config: DeploymentConfiguration,
    pub step_bake_secs: f64,
    pub bake_secs: f64,
}

/// Fills the defaults: an Express service with no settings deploys CANARY with the server's `[deploy]` values,
/// its deployment alarm (rollback) and the circuit breaker (rollback); given settings keep what they set
/// (no alarms unless they name some), and take the defaults for the rest (the server's canary percentage and
/// bakes where the strategy uses them, the circuit breaker with rollback under every strategy).
pub(crate) fn effective(c: &Control, service: &ServiceRow, s: &Settings) -> Effective {
    let d = c.config.deploy;
    let given = s.configuration.clone();
    let mut cfg = given.clone().unwrap_or_default();
    if given.is_none() {
        cfg.strategy = Some(if service.express { DeploymentStrategy::Canary } else { DeploymentStrategy::Rolling });
    }
    let strategy = *cfg.strategy.get_or_insert(DeploymentStrategy::Rolling);
    cfg.minimum_healthy_percent.get_or_insert(100);
    cfg.maximum_percent.get_or_insert(200);
    let mut step_bake_secs = 0.0;
    match strategy {
        DeploymentStrategy::Canary => {
            let canary = cfg.canary_configuration.get_or_insert_with(CanaryConfiguration::default);
            canary.canary_percent.get_or_insert(d.canary_percent);
            step_bake_secs = match canary.canary_bake_time_in_minutes {
                Some(m) => f64::from(m.max(0)) * 60.0,
                None => d.canary_bake_secs as f64,
            };
            canary.canary_bake_time_in_minutes.get_or_insert(minutes(d.canary_bake_secs));
        }
        DeploymentStrategy::Linear => {
            let linear = cfg.linear_configuration.get_or_insert_with(LinearConfiguration::default);
            linear.step_percent.get_or_insert(10.0);
            step_bake_secs = f64::from(*linear.step_bake_time_in_minutes.get_or_insert(6)).max(0.0) * 60.0;
        }
        _ => {}
    }
    let bake_secs = match cfg.bake_time_in_minutes {
        Some(m) => f64::from(m.max(0)) * 60.0,
        None => d.bake_secs as f64,
    };
    cfg.bake_time_in_minutes.get_or_insert(minutes(d.bake_secs));
    // An Express service keeps its deployment alarm unless the user's configuration names its own `alarms`
    // (an explicit `enable: false` or another list replaces it).
    if cfg.alarms.is_none() && service.express {
        cfg.alarms = Some(DeploymentAlarms {
            alarm_names: Some(vec![crate::express::deploy_alarm::alarm_name(service)]),
            rollback: Some(true),
            enable: Some(true),
        });
    }
    let breaker = cfg.deployment_circuit_breaker.get_or_insert(DeploymentCircuitBreaker {
        enable: Some(true),
        rollback: Some(true),
        ..Default::default()
    });
    breaker.reset_on_healthy_task.get_or_insert(true);
    breaker
        .threshold_configuration
        .get_or_insert(ThresholdConfiguration { r#type: Some(ThresholdType::BoundedPercent), value: Some(50) });
    Effective { config: cfg, step_bake_secs, bake_secs }
}

/// The circuit breaker's threshold for `desired` tasks (ecs-deployments.md §2.4): BOUNDED_PERCENT (default 50)
/// is ceil(value% × desired) clamped to 3–200, UNBOUNDED_PERCENT the same unclamped, COUNT the value.
pub(crate) fn failure_threshold(breaker: Option<&DeploymentCircuitBreaker>, desired: u32) -> u32 {
    let t = breaker.and_then(|b| b.threshold_configuration.clone()).unwrap_or_default();
    let value = t.value.unwrap_or(50).max(1) as u64;
    let pct = (value * u64::from(desired)).div_ceil(100) as u32;
    match t.r#type.unwrap_or(ThresholdType::BoundedPercent) {
        ThresholdType::Count => value as u32,
        ThresholdType::UnboundedPercent => pct.max(1),
        ThresholdType::BoundedPercent => pct.clamp(3, 200),
    }
}

/// The planner's view of a stored configuration.
pub(crate) fn plan_config(cfg: &DeploymentConfiguration, p: &Progress, test_rule: bool) -> DeployConfig {
    let strategy = match cfg.strategy {
        Some(DeploymentStrategy::BlueGreen) => Strategy::BlueGreen,
        Some(DeploymentStrategy::Canary) => Strategy::Canary,
        Some(DeploymentStrategy::Linear) => Strategy::Linear,
        _ => Strategy::Rolling,
    };
    let canary = cfg.canary_configuration.clone().unwrap_or_default();
    let linear = cfg.linear_configuration.clone().unwrap_or_default();
    let step_minutes = match strategy {
        Strategy::Canary => canary.canary_bake_time_in_minutes,
        Strategy::Linear => linear.step_bake_time_in_minutes,
        _ => None,
    };
    let breaker = cfg.deployment_circuit_breaker.clone().unwrap_or_default();
    let alarms = cfg.alarms.clone().unwrap_or_default();
    let hooks = cfg
        .lifecycle_hooks
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.target_type == Some(DeploymentLifecycleHookTargetType::Pause))
        .map(|h| {
            let timeout = h.timeout_configuration.unwrap_or_default();
            PauseHook {
                stages: h.lifecycle_stages.unwrap_or_default().iter().map(|s| s.as_str().to_string()).collect(),
                timeout_secs: f64::from(timeout.timeout_in_minutes.unwrap_or(1440).max(1)) * 60.0,
                timeout_action: timeout.action.map(|a| a.as_str().to_string()).unwrap_or_else(|| "ROLLBACK".into()),
            }
        })
        .collect();
    DeployConfig {
        strategy,
        canary_percent: canary.canary_percent.unwrap_or(5.0),
        step_percent: linear.step_percent.unwrap_or(10.0),
        step_bake_secs: p.step_bake_secs.unwrap_or(f64::from(step_minutes.unwrap_or(0).max(0)) * 60.0),
        bake_secs: p.final_bake_secs.unwrap_or(f64::from(cfg.bake_time_in_minutes.unwrap_or(0).max(0)) * 60.0),
        min_healthy_percent: cfg.minimum_healthy_percent.unwrap_or(100).clamp(0, 100) as u32,
        max_percent: cfg.maximum_percent.unwrap_or(200).clamp(100, 200) as u32,
        breaker: breaker.enable.unwrap_or(false),
        breaker_rollback: breaker.rollback.unwrap_or(false),
        alarms: alarms.enable.unwrap_or(false) && !alarms.alarm_names.clone().unwrap_or_default().is_empty(),
        alarm_rollback: alarms.rollback.unwrap_or(false),
        hooks,
        test_rule,
    }
}

fn stored_config(d: &DeploymentRow) -> Result<DeploymentConfiguration, ControlError> {
    serde_json::from_str(&d.config).map_err(|e| corrupt("deployment configuration", e))
}

fn stored_progress(d: &DeploymentRow) -> Result<Progress, ControlError> {
    Progress::parse(&d.progress).map_err(|e| corrupt("deployment progress", e))
}

fn is_rolling(cfg: &DeploymentConfiguration) -> bool {
    matches!(cfg.strategy, None | Some(DeploymentStrategy::Rolling))
}

fn event(tx: &Tx<'_>, service: &ServiceRow, t: f64, msg: String) -> Result<(), ControlError> {
    tx.event_add(service.id, t, &msg)?;
    Ok(())
}

/// Begins a deployment of `service` to `revision` (a revision just recorded by a create, an update or a forced
/// new deployment): supersedes the service's unfinished deployment (its in-flight revision rolled back or
/// replaced, never left half-live), records the new deployment (PENDING), points the service at the new
/// revision and the revision at its target group (the idle one; ROLLING: the serving one). Called inside the
/// command's transaction, after the revision (and, on create, the placement) exists; returns the new
/// deployment's ARN.
pub(crate) fn begin(
    c: &Control,
    tx: &Tx<'_>,
    service: &mut ServiceRow,
    revision: &str,
    t: f64,
) -> Result<String, ControlError> {
    let id = deployment_id();
    let arn = c.names.deployment(&service.cluster, &service.name, &id);
    let mut source = service.live_revision.clone().filter(|l| l != revision && !l.is_empty());
    if let Some(old) = tx.deployment_current(service.id)? {
        source = supersede(tx, service, old, &id, t)?.filter(|s| s != revision);
    }
    let s = settings(tx, service)?;
    let eff = effective(c, service, &s);
    if let Some(src) = &source {
        place_revision(tx, service, revision, src, is_rolling(&eff.config))?;
    }
    service.target_revision = revision.to_string();
    service.live_revision = Some(source.clone().unwrap_or_else(|| revision.to_string()));
    let progress = Progress {
        failure_threshold: failure_threshold(eff.config.deployment_circuit_breaker.as_ref(), service.desired_count),
        alarm_names: eff.config.alarms.as_ref().and_then(|a| a.alarm_names.clone()).unwrap_or_default(),
        step_bake_secs: Some(eff.step_bake_secs),
        final_bake_secs: Some(eff.bake_secs),
        ..Default::default()
    };
    let row = DeploymentRow {
        id: 0,
        arn: arn.clone(),
        service_id: service.id,
        status: status::PENDING.into(),
        status_reason: None,
        stage: stage::PRE_SCALE_UP.into(),
        target_revision: revision.to_string(),
        source_revision: source,
        config: serde_json::to_string(&eff.config).map_err(|e| ControlError::invalid(e.to_string()))?,
        progress: progress.to_json(),
        created_at: t,
        started_at: None,
        finished_at: None,
        stopped_at: None,
        updated_at: t,
    };
    tx.deployment_insert(&row)?;
    Ok(arn)
}

/// Ends the service's unfinished deployment `old` (STOPPED, superseded by `new_id`) and returns the revision
/// that serves now, the new deployment's source: the old target when it already had all production traffic
/// (or was the service's first), else the old source, whose weights it gets back at once (the in-flight
/// revision's tasks then drain as tasks of no deployment).
fn supersede(
    tx: &Tx<'_>,
    service: &mut ServiceRow,
    mut old: DeploymentRow,
    new_id: &str,
    t: f64,
) -> Result<Option<String>, ControlError> {
    let cfg = stored_config(&old)?;
    let mut p = stored_progress(&old)?;
    let rolling = is_rolling(&cfg);
    let at = plan::stage::ORDER.iter().position(|s| *s == old.stage).unwrap_or(0);
    let settled = if rolling {
        at >= plan::stage::ORDER.iter().position(|s| *s == stage::BAKE_TIME).unwrap_or(0)
    } else {
        p.target_weight >= 100.0
    };
    let rolled_back = p.rollback.is_some();
    let serving = match &old.source_revision {
        Some(src) if rolled_back || !settled => Some(src.clone()),
        _ => Some(old.target_revision.clone()),
    };
    if !rolling
        && let Some(src) = &old.source_revision
        && serving.as_deref() == Some(src.as_str())
        && (p.target_weight > 0.0 || p.test_weight > 0.0)
        && let (Some(sg), Some(tg)) = (tx.revision_group(src)?, tx.revision_group(&old.target_revision)?)
        && sg != tg
    {
        // The in-flight revision's traffic goes back to the serving one in the same transaction.
        crate::express::placement::set_weights(tx, &sg, &tg, 0.0, None)?;
        if let Some(rule) = settings(tx, service)?.test_listener_rule {
            crate::express::placement::set_rule_weights(tx, &rule, &sg, &tg, 0.0)?;
        }
        p.target_weight = 0.0;
        p.test_weight = 0.0;
    }
    if let Some(mut h) = p.hook.take() {
        h.status = "FAILED".into();
        p.hooks_done.push(h);
    }
    let old_id = id_of(&old.arn).to_string();
    old.status = status::STOPPED.into();
    old.status_reason = Some(format!("Superseded by deployment {new_id}."));
    old.progress = p.to_json();
    old.finished_at = Some(t);
    old.stopped_at = Some(t);
    old.updated_at = t;
    tx.deployment_update(&old)?;
    event(
        tx,
        service,
        t,
        format!("(service {}) (deployment {old_id}) stopped: superseded by deployment {new_id}.", service.name),
    )?;
    service.live_revision = serving.clone();
    Ok(serving)
}

/// Ends the unfinished deployment of a service being deleted (STOPPED).
pub(crate) fn abandon(tx: &Tx<'_>, service: &ServiceRow, t: f64) -> Result<(), ControlError> {
    let Some(mut d) = tx.deployment_current(service.id)? else { return Ok(()) };
    d.status = status::STOPPED.into();
    d.status_reason = Some("Stopped: the service is being deleted.".into());
    d.finished_at = Some(t);
    d.stopped_at = Some(t);
    d.updated_at = t;
    tx.deployment_update(&d)?;
    Ok(())
}

/// Points `revision` at its target group: the one `source` does not use (its settings carried over), or for
/// ROLLING the same one.
fn place_revision(
    tx: &Tx<'_>,
    service: &ServiceRow,
    revision: &str,
    source: &str,
    rolling: bool,
) -> Result<(), ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(()) };
    let src_group = tx.revision_group(source)?.unwrap_or_else(|| p.group_a.clone());
    if rolling {
        tx.revision_group_set(revision, &src_group)?;
        return Ok(());
    }
    let idle = if src_group == p.group_a { p.group_b.clone() } else { p.group_a.clone() };
    if tx.revision_group(revision)?.as_deref() == Some(idle.as_str()) {
        return Ok(());
    }
    let path = crate::revisions::revision_config(tx, revision)?.health_check_path;
    let mut view = service.clone();
    view.live_revision = Some(source.to_string());
    crate::express::placement::assign_revision(
        tx,
        &view,
        revision,
        path.as_deref(),
        &mut crate::express::journal::Journal::default(),
    )
}

/// The planner's input for `d`: its state and configuration, the watched alarms, the failed tasks.
pub(crate) fn input(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    d: &DeploymentRow,
) -> Result<DeploymentInput, ControlError> {
    let cfg = stored_config(d)?;
    let progress = stored_progress(d)?;
    let test_rule = settings(tx, service)?.test_listener_rule.is_some();
    let config = plan_config(&cfg, &progress, test_rule);
    let mut alarms = Vec::new();
    if config.alarms {
        for name in cfg.alarms.as_ref().and_then(|a| a.alarm_names.clone()).unwrap_or_default() {
            if let Some(a) = tx.alarm_get(&name)? {
                alarms.push(AlarmInput { name, in_alarm: a.state == "ALARM", since: a.state_transitioned });
            }
        }
    }
    let revisions = [Some(d.target_revision.as_str()), d.source_revision.as_deref()];
    let failed_tasks = tx
        .tasks_stopped_since(service.id, d.created_at)?
        .into_iter()
        .filter(|task| failed(task) && revisions.contains(&task.revision_arn.as_deref()))
        .map(|task| FailedTask {
            id: task.id,
            revision: task.revision_arn.unwrap_or_default(),
            reason: task.stopped_reason.unwrap_or_else(|| "Task failed".into()),
        })
        .collect();
    Ok(DeploymentInput {
        id: id_of(&d.arn).to_string(),
        state: DeployState {
            status: d.status.clone(),
            status_reason: d.status_reason.clone(),
            stage: d.stage.clone(),
            started_at: d.started_at,
            finished_at: d.finished_at,
            progress,
        },
        target: d.target_revision.clone(),
        source: d.source_revision.clone(),
        config,
        alarms,
        failed_tasks,
        max_gap: (c.config.resync_interval.as_secs_f64() * 5.0).max(10.0),
        unhealthy_grace: UNHEALTHY_GRACE_SECS,
    })
}

/// A task that stopped by failing (not by being drained).
fn failed(task: &TaskRow) -> bool {
    task.last_status == TaskStatus::Stopped
        && matches!(
            task.stop_code.as_deref(),
            Some(code) if code == TaskStopCode::TaskFailedToStart.as_str()
                || code == TaskStopCode::EssentialContainerExited.as_str()
        )
}

/// Writes the plan's deployment decisions to `d`'s row, then acts on them: weights on the rules, the
/// service's revisions when it ends, events. Task actions are the reconciler's.
pub(crate) fn record(
    c: &Control,
    tx: &Tx<'_>,
    service: &mut ServiceRow,
    mut d: DeploymentRow,
    base: &DeployState,
    actions: &[Action],
    t: f64,
) -> Result<(), ControlError> {
    let mut st = base.clone();
    for a in actions {
        st.apply(a, t);
    }
    if st == *base {
        return Ok(());
    }
    let cfg = stored_config(&d)?;
    d.status = st.status.clone();
    d.status_reason = st.status_reason.clone();
    d.stage = st.stage.clone();
    d.started_at = st.started_at;
    d.finished_at = st.finished_at;
    if st.status == status::STOPPED {
        d.stopped_at = d.stopped_at.or(st.finished_at);
    }
    d.progress = st.progress.to_json();
    d.updated_at = t;
    tx.deployment_update(&d)?;
    act(c, tx, service, &d, &cfg, actions, t)
}

fn act(
    c: &Control,
    tx: &Tx<'_>,
    service: &mut ServiceRow,
    d: &DeploymentRow,
    cfg: &DeploymentConfiguration,
    actions: &[Action],
    t: f64,
) -> Result<(), ControlError> {
    let id = id_of(&d.arn).to_string();
    let name = service.name.clone();
    let target = d.target_revision.clone();
    let service_id = service.id;
    let groups = || -> Result<Option<(String, String)>, ControlError> {
        let Some(p) = tx.placement_get(service_id)? else { return Ok(None) };
        let Some(tg) = tx.revision_group(&target)? else { return Ok(None) };
        let sg = match &d.source_revision {
            Some(src) => tx.revision_group(src)?,
            None => None,
        }
        .unwrap_or_else(|| if tg == p.group_a { p.group_b.clone() } else { p.group_a.clone() });
        Ok((sg != tg).then_some((sg, tg)))
    };
    let short = |rev: &str| rev.rsplit('/').next().unwrap_or(rev).to_string();
    let test_rule = settings(tx, service)?.test_listener_rule;
    for a in actions {
        match a {
            Action::SetWeights { target_percent } => {
                if let Some((sg, tg)) = groups()? {
                    crate::express::placement::set_weights(tx, &sg, &tg, *target_percent, test_rule.as_deref())?;
                }
                let (rev, pct) = if *target_percent > 0.0 || d.source_revision.is_none() {
                    (target.clone(), *target_percent)
                } else {
                    (d.source_revision.clone().unwrap_or_default(), 100.0)
                };
                event(
                    tx,
                    service,
                    t,
                    format!(
                        "(service {name}) (deployment {id}) shifted {} of production traffic to revision {}.",
                        percent(pct),
                        short(&rev)
                    ),
                )?;
            }
            Action::SetTestWeights { target_percent } => {
                if let (Some(rule), Some((sg, tg))) = (&test_rule, groups()?) {
                    crate::express::placement::set_rule_weights(tx, rule, &sg, &tg, *target_percent)?;
                }
                event(
                    tx,
                    service,
                    t,
                    format!(
                        "(service {name}) (deployment {id}) shifted {} of test traffic to revision {}.",
                        percent(*target_percent),
                        short(&target)
                    ),
                )?;
            }
            Action::OpenHook { hook, bake } => {
                let msg = if *bake {
                    format!(
                        "(service {name}) (deployment {id}) baking: lifecycle hook {} at {} continues by itself at the end of the bake.",
                        hook.hook_id, hook.stage
                    )
                } else {
                    format!(
                        "(service {name}) (deployment {id}) lifecycle hook {} at {} is awaiting action.",
                        hook.hook_id, hook.stage
                    )
                };
                event(tx, service, t, msg)?;
            }
            Action::Bake { unwatched, .. } if *unwatched > 0.0 => event(
                tx,
                service,
                t,
                format!(
                    "(service {name}) (deployment {id}) the bake clock did not count {unwatched:.0} seconds while the server was not running."
                ),
            )?,
            Action::BeginRollback { reason, .. } => {
                // The service wants its source revision again.
                if let Some(src) = &d.source_revision {
                    service.target_revision = src.clone();
                    service.updated_at = t;
                    tx.service_update(service)?;
                }
                let verb = if d.status == status::STOP_REQUESTED || d.status == status::STOPPED {
                    "stopping"
                } else {
                    "rolling back"
                };
                event(tx, service, t, format!("(service {name}) (deployment {id}) {verb}: {reason}."))?;
            }
            Action::Finish { status: end, reason } => {
                finish(c, tx, service, d, cfg, end, t)?;
                let msg = match end.as_str() {
                    status::SUCCESSFUL => format!("(service {name}) (deployment {id}) deployment completed."),
                    status::ROLLBACK_SUCCESSFUL => format!("(service {name}) (deployment {id}) rollback completed."),
                    status::STOPPED => format!("(service {name}) (deployment {id}) deployment stopped."),
                    _ => format!(
                        "(service {name}) (deployment {id}) rollback failed: {}.",
                        reason.as_deref().unwrap_or("the source revision cannot serve")
                    ),
                };
                event(tx, service, t, msg)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// 5% / 0.5% / 100%.
fn percent(p: f64) -> String {
    if (p - p.round()).abs() < 1e-9 { format!("{}%", p.round() as i64) } else { format!("{p:.1}%") }
}

/// The service after its deployment ends: the revision that serves is both its target and its live one;
/// the scaling policy's resource label follows the live group.
fn finish(
    c: &Control,
    tx: &Tx<'_>,
    service: &mut ServiceRow,
    d: &DeploymentRow,
    _cfg: &DeploymentConfiguration,
    end: &str,
    t: f64,
) -> Result<(), ControlError> {
    let serving = match (end, &d.source_revision) {
        (status::SUCCESSFUL | status::ROLLBACK_FAILED, _) | (_, None) => d.target_revision.clone(),
        (_, Some(src)) => src.clone(),
    };
    if end == status::SUCCESSFUL {
        // The idle group follows the live one's settings (health check path included).
        crate::express::placement::shift_service(tx, service.id, &serving)?;
    }
    service.target_revision = serving.clone();
    service.live_revision = Some(serving);
    service.updated_at = t;
    tx.service_update(service)?;
    crate::express::scaling::follow_live_group(c, tx, service, t)?;
    Ok(())
}
