//! Data-driven tests of the deployment stage machine (`plan::plan` with a deployment): each case is a
//! deployment's stored state, the service's tasks, the alarms and failures observed, and the exact actions the
//! planner must take, in order, plus the status and stage the deployment is in once they are applied.

use berth_control::deployment::{Hook, Progress};
use berth_control::plan::{
    Action, AlarmInput, DeployConfig, DeployState, DeploymentInput, DrainReason, FailedTask, PauseHook, PlanInput,
    ServiceInput, Strategy, TaskInput, alb_weights, plan,
};
use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::TargetHealth;

const NOW: f64 = 10_000.0;
/// When the deployment in every case started.
const STARTED: f64 = 9_000.0;

#[derive(Clone, Copy)]
enum H {
    Initial,
    Healthy,
    Unhealthy,
}

/// (id, revision, wanted, health)
type T = (&'static str, &'static str, bool, H);

fn task(&(id, rev, wanted, h): &T) -> TaskInput {
    TaskInput {
        id: id.into(),
        revision: rev.into(),
        wanted,
        last_status: if wanted { TaskStatus::Running } else { TaskStatus::Deactivating },
        health: match h {
            H::Initial => Some(TargetHealth::Initial),
            H::Healthy => Some(TargetHealth::Healthy),
            H::Unhealthy => Some(TargetHealth::Unhealthy),
        },
        started_at: Some(STARTED),
        in_flight: 0,
        stopping_at: if wanted { None } else { Some(NOW - 1.0) },
        drain_version: None,
        stop_sent: false,
    }
}

fn config(strategy: Strategy) -> DeployConfig {
    DeployConfig {
        strategy,
        canary_percent: 5.0,
        step_percent: 30.0,
        step_bake_secs: 180.0,
        bake_secs: 180.0,
        min_healthy_percent: 100,
        max_percent: 200,
        breaker: true,
        breaker_rollback: true,
        alarms: true,
        alarm_rollback: true,
        hooks: Vec::new(),
        test_rule: strategy == Strategy::BlueGreen,
    }
}

fn progress() -> Progress {
    Progress { failure_threshold: 3, alarm_names: vec!["svc-alarm".into()], ..Default::default() }
}

fn bake(stage: &str, expires: f64) -> Hook {
    Hook {
        hook_id: String::new(),
        stage: stage.into(),
        target_type: "PAUSE".into(),
        status: "AWAITING_ACTION".into(),
        expires_at: Some(expires),
        timeout_action: "CONTINUE".into(),
    }
}

/// A progress with a bake open at `stage` (`baked` seconds watched, last checked `ago` seconds before NOW).
fn baking(stage: &str, weight: f64, baked: f64, ago: f64) -> Progress {
    Progress {
        target_weight: weight,
        step: u32::from(weight > 0.0) + u32::from(weight >= 100.0),
        hook: Some(bake(stage, NOW - ago + 180.0 - baked)),
        bake: true,
        baked_secs: baked,
        bake_checked_at: Some(NOW - ago),
        ..progress()
    }
}

struct Case {
    name: &'static str,
    strategy: Strategy,
    status: &'static str,
    stage: &'static str,
    progress: Progress,
    source: Option<&'static str>,
    desired: u32,
    tasks: Vec<T>,
    alarms: Vec<AlarmInput>,
    failed: Vec<(&'static str, &'static str, &'static str)>,
    config: Option<DeployConfig>,
    not_before: f64,
    want: Vec<Action>,
    /// (status, stage) once the actions are applied (a case with no actions keeps its own).
    then: (&'static str, &'static str),
}

fn base(name: &'static str) -> Case {
    Case {
        name,
        strategy: Strategy::Canary,
        status: "IN_PROGRESS",
        stage: "SCALE_UP",
        progress: progress(),
        source: Some("r1"),
        desired: 1,
        tasks: vec![("old", "r1", true, H::Healthy)],
        alarms: Vec::new(),
        failed: Vec::new(),
        config: None,
        not_before: 0.0,
        want: Vec::new(),
        then: ("IN_PROGRESS", "SCALE_UP"),
    }
}

fn stage(s: &str) -> Action {
    Action::EnterStage { stage: s.into() }
}
fn weights(p: f64) -> Action {
    Action::SetWeights { target_percent: p }
}
fn start(rev: &str, count: u32) -> Action {
    Action::Start { revision: rev.into(), count }
}
fn drain(task: &str, reason: DrainReason) -> Action {
    Action::Drain { task: task.into(), reason }
}
fn open_bake(id: &str, stage: &str, secs: f64) -> Action {
    Action::OpenHook { hook: Hook { hook_id: id.into(), expires_at: Some(NOW + secs), ..bake(stage, 0.0) }, bake: true }
}
fn close(status: &str) -> Action {
    Action::CloseHook { status: status.into() }
}
fn rollback(reason: &str) -> Action {
    Action::BeginRollback { reason: reason.into(), revision: "r1".into() }
}
fn finish(status: &str) -> Action {
    Action::Finish { status: status.into(), reason: None }
}
fn count(task: &str, reason: &str) -> Action {
    Action::CountFailure { task: task.into(), source: false, reason: reason.into() }
}
fn alarm(in_alarm: bool, since: f64) -> AlarmInput {
    AlarmInput { name: "svc-alarm".into(), in_alarm, since }
}
fn user_hook(stage: &str, action: &str) -> PauseHook {
    PauseHook { stages: vec![stage.into()], timeout_secs: 600.0, timeout_action: action.into() }
}

use DrainReason::*;
use H::*;

const PRE_PROD: &str = "PRE_PRODUCTION_TRAFFIC_SHIFT";
const PROD: &str = "PRODUCTION_TRAFFIC_SHIFT";
const POST_PROD: &str = "POST_PRODUCTION_TRAFFIC_SHIFT";

fn cases() -> Vec<Case> {
    let pull = "CannotPullContainerError: pull access denied for nope";
    vec![
        // ---- CANARY, forward
        Case {
            status: "PENDING",
            stage: "PRE_SCALE_UP",
            want: vec![
                Action::Status { status: "IN_PROGRESS".into(), reason: None },
                stage("SCALE_UP"),
                start("r2", 1),
            ],
            then: ("IN_PROGRESS", "SCALE_UP"),
            ..base("a pending deployment starts and scales the target up in the idle group")
        },
        Case {
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Initial)],
            ..base("scale up waits for the target's tasks to be healthy")
        },
        Case {
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                stage("POST_SCALE_UP"),
                stage(PRE_PROD),
                stage(PROD),
                weights(5.0),
                open_bake("ecs-pause-dep1-1", PRE_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", PROD),
            ..base("healthy target: the canary share shifts and the canary bake opens as a pause hook")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![Action::Bake { counted: 1.0, unwatched: 0.0 }],
            then: ("IN_PROGRESS", PROD),
            ..base("the canary bake counts the time between passes")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 179.5, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                Action::Bake { counted: 1.0, unwatched: 0.0 },
                close("SUCCEEDED"),
                stage(PRE_PROD),
                stage(PROD),
                weights(100.0),
                stage(POST_PROD),
                stage("BAKE_TIME"),
                open_bake("ecs-pause-dep1-2", POST_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("the canary bake over: all traffic shifts and the final bake opens")
        },
        Case {
            stage: PROD,
            progress: Progress {
                hook: Some(Hook { status: "SUCCEEDED".into(), ..bake(PRE_PROD, NOW + 100.0) }),
                ..baking(PRE_PROD, 5.0, 20.0, 1.0)
            },
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                close("SUCCEEDED"),
                stage(PRE_PROD),
                stage(PROD),
                weights(100.0),
                stage(POST_PROD),
                stage("BAKE_TIME"),
                open_bake("ecs-pause-dep1-2", POST_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("ContinueServiceDeployment on the canary bake promotes at once")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 60.0, 600.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![Action::Bake { counted: 0.0, unwatched: 600.0 }],
            then: ("IN_PROGRESS", PROD),
            ..base("a gap longer than a pass (the server was down) is not counted")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 60.0, 600.0),
            tasks: vec![("new", "r2", true, Healthy)],
            want: vec![
                close("FAILED"),
                rollback(
                    "the server was not running for 600 s during the bake and the source revision's tasks are gone",
                ),
                start("r1", 1),
            ],
            then: ("ROLLBACK_IN_PROGRESS", PROD),
            ..base("after a gap with the source's tasks gone, resuming is unsafe: roll back (relaunching them)")
        },
        Case {
            stage: "BAKE_TIME",
            progress: baking(POST_PROD, 100.0, 179.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                Action::Bake { counted: 1.0, unwatched: 0.0 },
                close("SUCCEEDED"),
                stage("CLEAN_UP"),
                drain("old", Deployment),
            ],
            then: ("IN_PROGRESS", "CLEAN_UP"),
            ..base("the final bake over: the old tasks drain")
        },
        Case {
            stage: PROD,
            progress: Progress {
                hook: Some(Hook { status: "SUCCEEDED".into(), ..bake(PRE_PROD, NOW + 100.0) }),
                ..baking(PRE_PROD, 5.0, 20.0, 1.0)
            },
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Initial)],
            want: vec![close("SUCCEEDED"), stage(PRE_PROD)],
            then: ("IN_PROGRESS", PRE_PROD),
            ..base("the canary over but the target lost its healthy task: no shift until it is healthy again")
        },
        Case {
            stage: "BAKE_TIME",
            progress: baking(POST_PROD, 100.0, 179.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Initial)],
            want: vec![Action::Bake { counted: 1.0, unwatched: 0.0 }, close("SUCCEEDED")],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("the final bake over but the target is not healthy: the source stays")
        },
        Case {
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, ..progress() },
            tasks: vec![("old", "r1", false, Healthy), ("new", "r2", true, Healthy)],
            ..base("clean up waits until the old tasks are stopped")
        },
        Case {
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, ..progress() },
            tasks: vec![("new", "r2", true, Healthy)],
            want: vec![finish("SUCCESSFUL")],
            then: ("SUCCESSFUL", "CLEAN_UP"),
            ..base("no old task left: SUCCESSFUL")
        },
        Case {
            config: Some(DeployConfig { step_bake_secs: 0.0, bake_secs: 0.0, ..config(Strategy::Canary) }),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                stage("POST_SCALE_UP"),
                stage(PRE_PROD),
                stage(PROD),
                weights(5.0),
                stage(PRE_PROD),
                stage(PROD),
                weights(100.0),
                stage(POST_PROD),
                stage("BAKE_TIME"),
                stage("CLEAN_UP"),
                drain("old", Deployment),
            ],
            then: ("IN_PROGRESS", "CLEAN_UP"),
            ..base("bakes of 0 skip their hooks: one pass from healthy to clean up")
        },
        Case {
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy), ("stale", "r0", true, Healthy)],
            want: vec![
                drain("stale", Deployment),
                stage("POST_SCALE_UP"),
                stage(PRE_PROD),
                stage(PROD),
                weights(5.0),
                open_bake("ecs-pause-dep1-1", PRE_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", PROD),
            ..base("a superseded revision's tasks drain at once")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("new", "r2", true, Healthy)],
            want: vec![Action::Bake { counted: 1.0, unwatched: 0.0 }, start("r1", 1)],
            then: ("IN_PROGRESS", PROD),
            ..base("a source task that died during the canary is replaced")
        },
        // ---- alarms
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            alarms: vec![alarm(true, STARTED + 30.0)],
            want: vec![
                Action::AlarmTriggered { name: "svc-alarm".into() },
                close("FAILED"),
                rollback("alarm svc-alarm in ALARM"),
                weights(0.0),
                drain("new", Deployment),
            ],
            then: ("ROLLBACK_IN_PROGRESS", PROD),
            ..base("the alarm fires during the canary bake: exactly 100/0 back at once, the canary drains")
        },
        Case {
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            alarms: vec![alarm(true, STARTED - 30.0)],
            want: vec![Action::Bake { counted: 1.0, unwatched: 0.0 }],
            then: ("IN_PROGRESS", PROD),
            ..base("an alarm already in ALARM when the deployment started is ignored")
        },
        Case {
            status: "ROLLBACK_IN_PROGRESS",
            stage: PROD,
            progress: Progress {
                rollback: Some(Default::default()),
                ..Progress { target_weight: 0.0, step: 1, ..progress() }
            },
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", false, Healthy)],
            then: ("ROLLBACK_IN_PROGRESS", PROD),
            ..base("rolling back waits for the target's tasks to stop")
        },
        Case {
            status: "ROLLBACK_IN_PROGRESS",
            stage: PROD,
            progress: Progress {
                rollback: Some(Default::default()),
                ..Progress { target_weight: 0.0, step: 1, ..progress() }
            },
            want: vec![finish("ROLLBACK_SUCCESSFUL")],
            then: ("ROLLBACK_SUCCESSFUL", PROD),
            ..base("the target's tasks are gone: ROLLBACK_SUCCESSFUL")
        },
        // ---- circuit breaker
        Case {
            tasks: vec![("old", "r1", true, Healthy)],
            failed: vec![("f1", "r2", pull), ("f2", "r2", pull), ("f3", "r2", pull)],
            want: vec![
                count("f1", pull),
                count("f2", pull),
                count("f3", pull),
                rollback(&format!("circuit breaker: 3 tasks failed: {pull}")),
                finish("ROLLBACK_SUCCESSFUL"),
            ],
            then: ("ROLLBACK_SUCCESSFUL", "SCALE_UP"),
            ..base("tasks that cannot start trip the breaker: fail fast with their reason, no bake waited out")
        },
        Case {
            tasks: vec![("old", "r1", true, Healthy)],
            failed: vec![("f1", "r2", pull)],
            not_before: NOW + 2.0,
            want: vec![count("f1", pull)],
            ..base("one failure is counted once and the start waits for the backoff")
        },
        Case {
            tasks: vec![("old", "r1", true, Healthy), ("sick", "r2", true, H::Unhealthy)],
            want: vec![
                drain("sick", DrainReason::Unhealthy),
                count("sick", "Task failed ELB health checks (task sick)"),
                start("r2", 1),
            ],
            ..base("an unhealthy target task past the grace is replaced and counted")
        },
        Case {
            source: None,
            tasks: vec![],
            failed: vec![("f1", "r2", pull), ("f2", "r2", pull), ("f3", "r2", pull)],
            want: vec![
                count("f1", pull),
                count("f2", pull),
                count("f3", pull),
                Action::Status { status: "IN_PROGRESS".into(), reason: Some(format!("tasks failed to start: {pull}")) },
                start("r2", 1),
            ],
            ..base("a first deployment has nothing to roll back to: the reason shows, the tasks keep retrying")
        },
        Case {
            source: None,
            tasks: vec![("new", "r2", true, Healthy)],
            want: vec![stage("POST_SCALE_UP"), stage("CLEAN_UP"), finish("SUCCESSFUL")],
            then: ("SUCCESSFUL", "CLEAN_UP"),
            ..base("a first deployment completes once its tasks are healthy")
        },
        // ---- requested rollback and stop
        Case {
            status: "ROLLBACK_REQUESTED",
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![close("FAILED"), rollback("rollback requested"), weights(0.0), drain("new", Deployment)],
            then: ("ROLLBACK_IN_PROGRESS", PROD),
            ..base("StopServiceDeployment ROLLBACK: instant rollback in one route-table change")
        },
        Case {
            status: "STOP_REQUESTED",
            stage: PROD,
            progress: baking(PRE_PROD, 5.0, 10.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![close("FAILED"), rollback("stop requested"), weights(0.0), drain("new", Deployment)],
            then: ("STOP_REQUESTED", PROD),
            ..base("StopServiceDeployment ABORT: the same, staying STOP_REQUESTED")
        },
        Case {
            status: "STOP_REQUESTED",
            stage: PROD,
            progress: Progress { rollback: Some(Default::default()), ..progress() },
            want: vec![finish("STOPPED")],
            then: ("STOPPED", PROD),
            ..base("an abort whose target tasks are gone ends STOPPED")
        },
        Case {
            status: "ROLLBACK_REQUESTED",
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, ..progress() },
            tasks: vec![("new", "r2", true, Healthy)],
            want: vec![rollback("rollback requested"), start("r1", 1)],
            then: ("ROLLBACK_IN_PROGRESS", "CLEAN_UP"),
            ..base("rollback after the old tasks are gone: relaunch them first, traffic stays on the target")
        },
        Case {
            status: "ROLLBACK_IN_PROGRESS",
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, rollback: Some(Default::default()), ..progress() },
            tasks: vec![("new", "r2", true, Healthy), ("old2", "r1", true, Initial)],
            then: ("ROLLBACK_IN_PROGRESS", "CLEAN_UP"),
            ..base("the relaunched source is not healthy yet: no weight moves")
        },
        Case {
            status: "ROLLBACK_IN_PROGRESS",
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, rollback: Some(Default::default()), ..progress() },
            tasks: vec![("new", "r2", true, Healthy), ("old2", "r1", true, Healthy)],
            want: vec![weights(0.0), drain("new", Deployment)],
            then: ("ROLLBACK_IN_PROGRESS", "CLEAN_UP"),
            ..base("the relaunched source is healthy: exactly 100/0 back")
        },
        Case {
            status: "ROLLBACK_IN_PROGRESS",
            stage: "CLEAN_UP",
            progress: Progress { target_weight: 100.0, step: 2, rollback: Some(Default::default()), ..progress() },
            tasks: vec![("new", "r2", true, Healthy)],
            failed: vec![("o1", "r1", pull), ("o2", "r1", pull), ("o3", "r1", pull)],
            want: vec![
                Action::CountFailure { task: "o1".into(), source: true, reason: pull.into() },
                Action::CountFailure { task: "o2".into(), source: true, reason: pull.into() },
                Action::CountFailure { task: "o3".into(), source: true, reason: pull.into() },
                Action::Finish {
                    status: "ROLLBACK_FAILED".into(),
                    reason: Some(format!("Rollback failed: 3 tasks of the source revision failed: {pull}")),
                },
            ],
            then: ("ROLLBACK_FAILED", "CLEAN_UP"),
            ..base("the source's tasks fail too: ROLLBACK_FAILED, the target keeps serving")
        },
        // ---- pause hooks
        Case {
            status: "PENDING",
            stage: "PRE_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("PRE_SCALE_UP", "ROLLBACK")],
                ..config(Strategy::Canary)
            }),
            want: vec![
                Action::Status { status: "IN_PROGRESS".into(), reason: None },
                Action::OpenHook {
                    hook: Hook {
                        hook_id: "ecs-pause-dep1-1".into(),
                        stage: "PRE_SCALE_UP".into(),
                        target_type: "PAUSE".into(),
                        status: "AWAITING_ACTION".into(),
                        expires_at: Some(NOW + 600.0),
                        timeout_action: "ROLLBACK".into(),
                    },
                    bake: false,
                },
            ],
            then: ("IN_PROGRESS", "PRE_SCALE_UP"),
            ..base("a PRE_SCALE_UP pause hook holds the deployment before any task starts")
        },
        Case {
            strategy: Strategy::Rolling,
            status: "PENDING",
            stage: "PRE_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("PRE_SCALE_UP", "ROLLBACK")],
                ..config(Strategy::Rolling)
            }),
            want: vec![
                Action::Status { status: "IN_PROGRESS".into(), reason: None },
                Action::OpenHook {
                    hook: Hook {
                        hook_id: "ecs-pause-dep1-1".into(),
                        stage: "PRE_SCALE_UP".into(),
                        target_type: "PAUSE".into(),
                        status: "AWAITING_ACTION".into(),
                        expires_at: Some(NOW + 600.0),
                        timeout_action: "ROLLBACK".into(),
                    },
                    bake: false,
                },
            ],
            then: ("IN_PROGRESS", "PRE_SCALE_UP"),
            ..base("ROLLING held by a PRE_SCALE_UP hook keeps its serving tasks (no drain)")
        },
        Case {
            stage: "PRE_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("PRE_SCALE_UP", "ROLLBACK")],
                ..config(Strategy::Canary)
            }),
            progress: Progress {
                hook: Some(Hook {
                    status: "SUCCEEDED".into(),
                    timeout_action: "ROLLBACK".into(),
                    ..bake("PRE_SCALE_UP", NOW + 5.0)
                }),
                ..progress()
            },
            want: vec![close("SUCCEEDED"), stage("SCALE_UP"), start("r2", 1)],
            then: ("IN_PROGRESS", "SCALE_UP"),
            ..base("ContinueServiceDeployment CONTINUE: the hook closes and the deployment goes on")
        },
        Case {
            stage: "PRE_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("PRE_SCALE_UP", "ROLLBACK")],
                ..config(Strategy::Canary)
            }),
            progress: Progress {
                hook: Some(Hook {
                    hook_id: "h1".into(),
                    timeout_action: "ROLLBACK".into(),
                    ..bake("PRE_SCALE_UP", NOW - 1.0)
                }),
                ..progress()
            },
            want: vec![close("TIMED_OUT"), rollback("lifecycle hook h1 timed out"), finish("ROLLBACK_SUCCESSFUL")],
            then: ("ROLLBACK_SUCCESSFUL", "PRE_SCALE_UP"),
            ..base("a pause hook that times out with ROLLBACK rolls back")
        },
        Case {
            stage: "PRE_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("PRE_SCALE_UP", "CONTINUE")],
                ..config(Strategy::Canary)
            }),
            progress: Progress { hook: Some(bake("PRE_SCALE_UP", NOW - 1.0)), ..progress() },
            want: vec![close("TIMED_OUT"), stage("SCALE_UP"), start("r2", 1)],
            then: ("IN_PROGRESS", "SCALE_UP"),
            ..base("a pause hook that times out with CONTINUE goes on")
        },
        Case {
            status: "ROLLBACK_REQUESTED",
            stage: "POST_SCALE_UP",
            config: Some(DeployConfig {
                hooks: vec![user_hook("POST_SCALE_UP", "ROLLBACK")],
                ..config(Strategy::Canary)
            }),
            progress: Progress {
                hook: Some(Hook { status: "FAILED".into(), ..bake("POST_SCALE_UP", NOW + 60.0) }),
                ..progress()
            },
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![close("FAILED"), rollback("rollback requested"), drain("new", Deployment)],
            then: ("ROLLBACK_IN_PROGRESS", "POST_SCALE_UP"),
            ..base("ContinueServiceDeployment ROLLBACK (hook FAILED, ROLLBACK_REQUESTED) rolls back")
        },
        // ---- LINEAR
        Case {
            strategy: Strategy::Linear,
            stage: PROD,
            progress: baking(PRE_PROD, 60.0, 179.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                Action::Bake { counted: 1.0, unwatched: 0.0 },
                close("SUCCEEDED"),
                stage(PRE_PROD),
                stage(PROD),
                weights(90.0),
                open_bake("ecs-pause-dep1-2", PRE_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", PROD),
            ..base("LINEAR steps by stepPercent after each step bake")
        },
        Case {
            strategy: Strategy::Linear,
            stage: PROD,
            progress: baking(PRE_PROD, 90.0, 179.0, 1.0),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                Action::Bake { counted: 1.0, unwatched: 0.0 },
                close("SUCCEEDED"),
                stage(PRE_PROD),
                stage(PROD),
                weights(100.0),
                stage(POST_PROD),
                stage("BAKE_TIME"),
                open_bake("ecs-pause-dep1-2", POST_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("LINEAR's last partial step goes to 100 (no step bake after it)")
        },
        // ---- BLUE_GREEN
        Case {
            strategy: Strategy::BlueGreen,
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                stage("POST_SCALE_UP"),
                stage("TEST_TRAFFIC_SHIFT"),
                Action::SetTestWeights { target_percent: 100.0 },
                stage("POST_TEST_TRAFFIC_SHIFT"),
                stage(PRE_PROD),
                stage(PROD),
                weights(100.0),
                stage(POST_PROD),
                stage("BAKE_TIME"),
                open_bake("ecs-pause-dep1-1", POST_PROD, 180.0),
            ],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("BLUE_GREEN: test traffic to green, then production 100% at once, then the bake")
        },
        Case {
            strategy: Strategy::BlueGreen,
            config: Some(DeployConfig {
                hooks: vec![user_hook("POST_TEST_TRAFFIC_SHIFT", "ROLLBACK")],
                ..config(Strategy::BlueGreen)
            }),
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                stage("POST_SCALE_UP"),
                stage("TEST_TRAFFIC_SHIFT"),
                Action::SetTestWeights { target_percent: 100.0 },
                stage("POST_TEST_TRAFFIC_SHIFT"),
                Action::OpenHook {
                    hook: Hook {
                        hook_id: "ecs-pause-dep1-1".into(),
                        stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                        target_type: "PAUSE".into(),
                        status: "AWAITING_ACTION".into(),
                        expires_at: Some(NOW + 600.0),
                        timeout_action: "ROLLBACK".into(),
                    },
                    bake: false,
                },
            ],
            then: ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT"),
            ..base("BLUE_GREEN with a POST_TEST_TRAFFIC_SHIFT pause: production waits for the approval")
        },
        Case {
            strategy: Strategy::BlueGreen,
            status: "ROLLBACK_REQUESTED",
            stage: "POST_TEST_TRAFFIC_SHIFT",
            progress: Progress { test_weight: 100.0, ..progress() },
            tasks: vec![("old", "r1", true, Healthy), ("new", "r2", true, Healthy)],
            want: vec![
                rollback("rollback requested"),
                Action::SetTestWeights { target_percent: 0.0 },
                drain("new", Deployment),
            ],
            then: ("ROLLBACK_IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT"),
            ..base("BLUE_GREEN rollback takes the test rule back too")
        },
        // ---- ROLLING
        Case {
            strategy: Strategy::Rolling,
            desired: 4,
            tasks: vec![
                ("o1", "r1", true, Healthy),
                ("o2", "r1", true, Healthy),
                ("o3", "r1", true, Healthy),
                ("o4", "r1", true, Healthy),
            ],
            want: vec![start("r2", 4)],
            ..base("ROLLING 100/200: start all new tasks first")
        },
        Case {
            strategy: Strategy::Rolling,
            desired: 4,
            config: Some(DeployConfig { min_healthy_percent: 50, max_percent: 100, ..config(Strategy::Rolling) }),
            tasks: vec![
                ("o1", "r1", true, Healthy),
                ("o2", "r1", true, Healthy),
                ("o3", "r1", true, Healthy),
                ("o4", "r1", true, Healthy),
            ],
            want: vec![drain("o1", Deployment), drain("o2", Deployment)],
            ..base("ROLLING 50/100 with 4: stop 2 before starting")
        },
        Case {
            strategy: Strategy::Rolling,
            desired: 4,
            config: Some(DeployConfig { min_healthy_percent: 50, max_percent: 100, ..config(Strategy::Rolling) }),
            tasks: vec![("o3", "r1", true, Healthy), ("o4", "r1", true, Healthy)],
            want: vec![start("r2", 2)],
            ..base("ROLLING 50/100: then start 2 in the room")
        },
        Case {
            strategy: Strategy::Rolling,
            desired: 3,
            config: Some(DeployConfig { min_healthy_percent: 100, max_percent: 125, ..config(Strategy::Rolling) }),
            tasks: vec![("o1", "r1", true, Healthy), ("o2", "r1", true, Healthy), ("o3", "r1", true, Healthy)],
            ..base("ROLLING max 125% of 3 can start none (and min 100% can stop none): it stalls")
        },
        Case {
            strategy: Strategy::Rolling,
            desired: 2,
            tasks: vec![
                ("o1", "r1", true, Healthy),
                ("o2", "r1", true, Healthy),
                ("n1", "r2", true, Healthy),
                ("n2", "r2", true, Initial),
            ],
            want: vec![drain("o1", Deployment)],
            ..base("ROLLING: each healthy new task lets one old task go")
        },
        Case {
            strategy: Strategy::Rolling,
            desired: 2,
            tasks: vec![("n1", "r2", true, Healthy), ("n2", "r2", true, Healthy), ("o2", "r1", false, Healthy)],
            want: vec![stage("POST_SCALE_UP"), stage("BAKE_TIME"), open_bake("ecs-pause-dep1-1", POST_PROD, 180.0)],
            then: ("IN_PROGRESS", "BAKE_TIME"),
            ..base("ROLLING: old tasks gone from service: the alarms' bake")
        },
        Case {
            strategy: Strategy::Rolling,
            status: "ROLLBACK_REQUESTED",
            desired: 2,
            tasks: vec![("n1", "r2", true, Healthy), ("n2", "r2", true, Healthy)],
            want: vec![rollback("rollback requested"), start("r1", 2)],
            then: ("ROLLBACK_IN_PROGRESS", "SCALE_UP"),
            ..base("ROLLING rollback relaunches the source in the same group before the target goes")
        },
    ]
}

#[test]
fn deployment_stage_machine() {
    for case in cases() {
        let config = case.config.clone().unwrap_or_else(|| config(case.strategy));
        let d = DeploymentInput {
            id: "dep1".into(),
            state: DeployState {
                status: case.status.into(),
                status_reason: None,
                stage: case.stage.into(),
                started_at: (case.status != "PENDING").then_some(STARTED),
                finished_at: None,
                progress: case.progress.clone(),
            },
            target: "r2".into(),
            source: case.source.map(Into::into),
            config,
            alarms: case.alarms.clone(),
            failed_tasks: case
                .failed
                .iter()
                .map(|(id, rev, reason)| FailedTask {
                    id: (*id).into(),
                    revision: (*rev).into(),
                    reason: (*reason).into(),
                })
                .collect(),
            max_gap: 10.0,
            unhealthy_grace: 60.0,
        };
        let input = PlanInput {
            service: ServiceInput {
                status: ServiceStatus::Active,
                desired_count: case.desired,
                target_revision: "r2".into(),
                live_revision: case.source.map(Into::into),
            },
            tasks: case.tasks.iter().map(task).collect(),
            proxies_version: Some(10),
            now: NOW,
            drain_timeout: 30.0,
            start_not_before: case.not_before,
            deployment: Some(d.clone()),
        };
        let got = plan(&input);
        assert_eq!(got, case.want, "case: {}", case.name);
        let mut st = d.state.clone();
        for a in &got {
            st.apply(a, NOW);
        }
        // A pass that decides nothing leaves the deployment as it was.
        let then = if got.is_empty() { (case.status, case.stage) } else { case.then };
        assert_eq!((st.status.as_str(), st.stage.as_str()), then, "case (state after): {}", case.name);
    }
}

#[test]
fn state_records_weights_steps_hooks_and_failures() {
    let mut st = DeployState { status: "IN_PROGRESS".into(), ..Default::default() };
    st.apply(&weights(5.0), NOW);
    st.apply(&weights(100.0), NOW);
    assert_eq!((st.progress.target_weight, st.progress.step), (100.0, 2));
    st.apply(&open_bake("h", POST_PROD, 180.0), NOW);
    assert_eq!((st.progress.bake, st.progress.bake_checked_at), (true, Some(NOW)));
    st.apply(&Action::Bake { counted: 0.0, unwatched: 50.0 }, NOW + 50.0);
    assert_eq!(st.progress.hook.as_ref().and_then(|h| h.expires_at), Some(NOW + 230.0), "the bake ends later");
    assert_eq!(st.progress.unwatched_secs, 50.0);
    st.apply(&close("SUCCEEDED"), NOW + 60.0);
    assert_eq!(st.progress.hook, None);
    assert_eq!(st.progress.hooks_done.len(), 1);
    assert_eq!(st.progress.stage_hooks_done, 0, "a bake is not a user hook");
    st.apply(&count("t1", "x"), NOW);
    st.apply(&count("t1", "x"), NOW);
    assert_eq!(st.progress.failures, 1, "a task's failure counts once");
    st.apply(&rollback("why"), NOW);
    assert_eq!(st.status, "ROLLBACK_IN_PROGRESS");
    assert_eq!(st.status_reason.as_deref(), Some("why"));
    let mut stop = DeployState { status: "STOP_REQUESTED".into(), ..Default::default() };
    stop.apply(&rollback("abort"), NOW);
    assert_eq!(stop.status, "STOP_REQUESTED", "an abort stays STOP_REQUESTED until it is STOPPED");
}

#[test]
fn weights_map_onto_alb_weights_exactly() {
    let cases: &[(f64, (i32, i32))] = &[
        (0.0, (100, 0)),
        (100.0, (0, 100)),
        (5.0, (95, 5)),
        (30.0, (70, 30)),
        (0.1, (999, 1)),
        (2.5, (975, 25)),
        (99.9, (1, 999)),
    ];
    for &(p, want) in cases {
        let got = alb_weights(p);
        assert_eq!(got, want, "{p}%");
        assert!(got.0 <= 999 && got.1 <= 999 && got.0 >= 0 && got.1 >= 0);
        assert!(((f64::from(got.1) / f64::from(got.0 + got.1)) * 100.0 - p).abs() < 1e-9, "{p}% is exact");
    }
}
