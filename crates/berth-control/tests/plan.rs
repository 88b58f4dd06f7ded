//! Data-driven tests of the deployment planner: each case is a service, its tasks, and the actions the
//! plan must produce (order-insensitive).

use berth_control::plan::{Action, DrainReason, PlanInput, ServiceInput, TaskInput, plan};
use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::TargetHealth;

#[derive(Clone, Copy)]
enum H {
    Unknown,
    Initial,
    Healthy,
    Unhealthy,
}

/// A task in a case: (id, revision, wanted, status, health, in_flight, drain_version, stopping_at).
type T = (&'static str, &'static str, bool, TaskStatus, H, u64, Option<u64>, Option<f64>);

struct Case {
    name: &'static str,
    status: ServiceStatus,
    desired: u32,
    target: &'static str,
    live: Option<&'static str>,
    tasks: Vec<T>,
    proxies_version: Option<u64>,
    now: f64,
    not_before: f64,
    want: Vec<Action>,
}

fn start(rev: &str, count: u32) -> Action {
    Action::Start { revision: rev.into(), count }
}
fn drain(task: &str, reason: DrainReason) -> Action {
    Action::Drain { task: task.into(), reason }
}
fn stop(task: &str) -> Action {
    Action::Stop { task: task.into() }
}
fn live(rev: &str) -> Action {
    Action::SetLive { revision: rev.into() }
}

use DrainReason::*;
use TaskStatus::*;

fn cases() -> Vec<Case> {
    let base = |name, tasks: Vec<T>, want| Case {
        name,
        status: ServiceStatus::Active,
        desired: 1,
        target: "r1",
        live: Some("r1"),
        tasks,
        proxies_version: Some(10),
        now: 100.0,
        not_before: 0.0,
        want,
    };
    vec![
        base("new service starts its tasks", vec![], vec![start("r1", 1)]),
        Case {
            desired: 3,
            ..base(
                "starts only the missing tasks",
                vec![("a", "r1", true, Running, H::Healthy, 0, None, None)],
                vec![start("r1", 2)],
            )
        },
        Case { not_before: 150.0, ..base("backoff holds starts back", vec![], vec![]) },
        base("steady state does nothing", vec![("a", "r1", true, Running, H::Healthy, 0, None, None)], vec![]),
        base("a provisioning task counts", vec![("a", "r1", true, Provisioning, H::Unknown, 0, None, None)], vec![]),
        Case {
            desired: 1,
            ..base(
                "scale in drains the unhealthy one first",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("b", "r1", true, Running, H::Unhealthy, 0, None, None),
                ],
                vec![drain("b", ScaleIn)],
            )
        },
        Case {
            target: "r2",
            ..base(
                "update starts the new revision beside the live one",
                vec![("a", "r1", true, Running, H::Healthy, 0, None, None)],
                vec![start("r2", 1)],
            )
        },
        Case {
            target: "r2",
            ..base(
                "no shift while the new task is not healthy yet",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("b", "r2", true, Running, H::Initial, 0, None, None),
                ],
                vec![],
            )
        },
        Case {
            target: "r2",
            ..base(
                "shift once the new revision is healthy, and drain the old",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("b", "r2", true, Running, H::Healthy, 0, None, None),
                ],
                vec![live("r2"), drain("a", Deployment)],
            )
        },
        Case {
            target: "r2",
            desired: 2,
            ..base(
                "a partly healthy revision does not take traffic from a healthy one",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("b", "r2", true, Running, H::Healthy, 0, None, None),
                    ("c", "r2", true, Running, H::Initial, 0, None, None),
                ],
                vec![],
            )
        },
        Case {
            target: "r2",
            ..base(
                "a broken live revision is replaced as soon as one new task is healthy",
                vec![
                    ("a", "r1", true, Running, H::Unhealthy, 0, None, None),
                    ("b", "r2", true, Running, H::Healthy, 0, None, None),
                ],
                vec![live("r2"), drain("a", Deployment)],
            )
        },
        Case {
            target: "r3",
            ..base(
                "a superseded, never-live revision is drained at once",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("b", "r2", true, Running, H::Initial, 0, None, None),
                ],
                vec![start("r3", 1), drain("b", Deployment)],
            )
        },
        base(
            "a draining task with requests in flight waits",
            vec![
                ("a", "r1", true, Running, H::Healthy, 0, None, None),
                ("o", "r0", false, Deactivating, H::Healthy, 2, Some(9), Some(99.0)),
            ],
            vec![],
        ),
        Case {
            proxies_version: Some(8),
            ..base(
                "a draining task waits until every proxy serves the table without it",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("o", "r0", false, Deactivating, H::Healthy, 0, Some(9), Some(99.0)),
                ],
                vec![],
            )
        },
        base(
            "a drained task is stopped",
            vec![
                ("a", "r1", true, Running, H::Healthy, 0, None, None),
                ("o", "r0", false, Deactivating, H::Healthy, 0, Some(9), Some(99.0)),
            ],
            vec![stop("o")],
        ),
        Case {
            proxies_version: None,
            ..base(
                "without proxies, draining ends at the timeout",
                vec![
                    ("a", "r1", true, Running, H::Healthy, 0, None, None),
                    ("o", "r0", false, Deactivating, H::Unknown, 0, Some(9), Some(60.0)),
                ],
                vec![stop("o")],
            )
        },
        base(
            "a stopped-by-user task that never ran needs no draining",
            vec![
                ("a", "r1", true, Running, H::Healthy, 0, None, None),
                ("p", "r1", false, Provisioning, H::Unknown, 0, None, Some(99.0)),
            ],
            vec![stop("p")],
        ),
        Case {
            status: ServiceStatus::Draining,
            ..base(
                "delete drains every task",
                vec![("a", "r1", true, Running, H::Healthy, 0, None, None)],
                vec![drain("a", ServiceDeleted)],
            )
        },
        Case {
            status: ServiceStatus::Draining,
            ..base("a deleted service with no tasks becomes inactive", vec![], vec![Action::MarkInactive])
        },
        Case {
            desired: 0,
            target: "r2",
            ..base(
                "scaling to zero shifts at once",
                vec![("a", "r1", true, Running, H::Healthy, 0, None, None)],
                vec![live("r2"), drain("a", Deployment)],
            )
        },
    ]
}

#[test]
fn planner_cases() {
    for case in cases() {
        let input = PlanInput {
            service: ServiceInput {
                status: case.status,
                desired_count: case.desired,
                target_revision: case.target.into(),
                live_revision: case.live.map(Into::into),
            },
            tasks: case
                .tasks
                .iter()
                .map(|&(id, rev, wanted, status, h, in_flight, dv, since)| TaskInput {
                    id: id.into(),
                    revision: rev.into(),
                    wanted,
                    last_status: status,
                    health: match h {
                        H::Unknown => None,
                        H::Initial => Some(TargetHealth::Initial),
                        H::Healthy => Some(TargetHealth::Healthy),
                        H::Unhealthy => Some(TargetHealth::Unhealthy),
                    },
                    started_at: Some(0.0),
                    in_flight,
                    stopping_at: since,
                    drain_version: dv,
                    stop_sent: false,
                })
                .collect(),
            proxies_version: case.proxies_version,
            now: case.now,
            drain_timeout: 30.0,
            start_not_before: case.not_before,
            deployment: None,
        };
        let mut got = plan(&input);
        let mut want = case.want.clone();
        let key = |a: &Action| format!("{a:?}");
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got, want, "case: {}", case.name);
    }
}
