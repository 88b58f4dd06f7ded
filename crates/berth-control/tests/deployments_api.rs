//! ECS's deployment APIs over the in-memory driver: ListServiceDeployments, DescribeServiceDeployments,
//! Stop/ContinueServiceDeployment, DescribeServiceRevisions, UpdateService, and the deployments DescribeServices
//! and DescribeExpressGatewayService show. Deployments in any state are simulated by writing their rows straight
//! into the store (the rollout's job in a running server); every answer is checked shape by shape, every error by
//! the name its operation's model lists.

use berth_control::ControlConfig;
use berth_control::deployment::{Hook, Progress, RollbackInfo};
use berth_core::AwsError;
use berth_model::ecs::*;
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_store::{DeploymentRow, Store};

mod common;

use common::Harness;

/// A world with the Express roles and one service `name`; returns it with the service's ARN.
async fn world(name: &str) -> (Harness, String) {
    let config = ControlConfig { drain_timeout: std::time::Duration::ZERO, ..ControlConfig::default() };
    let w = Harness::new(&format!("deployapi-{name}"), |_| config);
    w.create_express_roles().await;
    let arn = w.create_demo_service(name).await;
    (w, arn)
}

async fn call(w: &Harness, op: Operation) -> Result<Output, AwsError> {
    w.control.handle_ecs(&w.caller, op).await
}

/// The error's wire name, or a panic naming what answered instead.
fn err<T: std::fmt::Debug>(r: Result<T, AwsError>) -> String {
    match r {
        Err(e) => e.code.name().to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// A second handle on the server's store, to write deployments as the rollout would.
fn store(w: &Harness) -> Store {
    Store::open(&w.dir.join("berth.db")).expect("store")
}

fn service_id(w: &Harness, arn: &str) -> i64 {
    store(w).tx(|t| Ok::<_, berth_store::StoreError>(t.service_by_arn(arn)?.expect("service").id)).expect("id")
}

/// The service's target revision now (the revision its newest deployment heads to).
async fn target_revision(w: &Harness, arn: &str) -> String {
    store(w)
        .tx(|t| Ok::<_, berth_store::StoreError>(t.service_by_arn(arn)?.expect("service").target_revision))
        .expect("target")
}

/// A second revision of the service (a new environment variable), as UpdateExpressGatewayService records it.
async fn new_revision(w: &Harness, arn: &str, value: &str) -> String {
    let mut container = common::demo_container();
    container.environment = Some(vec![KeyValuePair { name: Some("V".into()), value: Some(value.into()) }]);
    let Ok(Output::UpdateExpressGatewayService(u)) = call(
        w,
        Operation::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            primary_container: Some(container),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!("update")
    };
    u.service.and_then(|s| s.target_configuration).and_then(|c| c.service_revision_arn).expect("revision")
}

async fn endpoint_of(w: &Harness, arn: &str) -> String {
    let Ok(Output::DescribeExpressGatewayService(d)) = call(
        w,
        Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!("describe")
    };
    common::endpoint(&d.service.expect("service"))
}

fn deployment_arn(w: &Harness, service: &str, id: &str) -> String {
    format!("arn:aws:ecs:{}:{}:service-deployment/default/{service}/{id}", w.control.region(), w.control.account_id())
}

/// Writes a deployment row; returns its ARN.
#[allow(clippy::too_many_arguments)]
fn insert(
    w: &Harness,
    service_arn: &str,
    id: &str,
    status: &str,
    stage: &str,
    target: &str,
    source: Option<&str>,
    progress: &Progress,
    created_at: f64,
) -> String {
    let name = service_arn.rsplit('/').next().expect("name");
    let arn = deployment_arn(w, name, id);
    let finished = ["SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"].contains(&status);
    let row = DeploymentRow {
        id: 0,
        arn: arn.clone(),
        service_id: service_id(w, service_arn),
        status: status.into(),
        status_reason: Some(format!("test row {id}")),
        stage: stage.into(),
        target_revision: target.into(),
        source_revision: source.map(str::to_string),
        config: r#"{"strategy":"CANARY","canaryConfiguration":{"canaryPercent":5.0,"canaryBakeTimeInMinutes":3},"bakeTimeInMinutes":3,"alarms":{"alarmNames":["a1"],"enable":true,"rollback":true},"deploymentCircuitBreaker":{"enable":true,"rollback":true}}"#.into(),
        progress: serde_json::to_string(progress).expect("progress"),
        created_at,
        started_at: Some(created_at + 1.0),
        finished_at: finished.then_some(created_at + 60.0),
        stopped_at: None,
        updated_at: created_at + 2.0,
    };
    store(w).tx(|t| t.deployment_insert(&row)).expect("insert");
    arn
}

fn awaiting_hook(id: &str) -> Hook {
    Hook {
        hook_id: id.into(),
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        target_type: "PAUSE".into(),
        status: "AWAITING_ACTION".into(),
        expires_at: Some(2_000_000_000.0),
        timeout_action: "CONTINUE".into(),
    }
}

/// A canary mid-bake: 5% on the target, the bake shown as a pause hook, one alarm triggered.
fn canary_progress() -> Progress {
    Progress {
        target_weight: 5.0,
        step: 1,
        hook: Some(awaiting_hook("ecs-pause-canary1")),
        hooks_done: vec![Hook { status: "SUCCEEDED".into(), ..awaiting_hook("ecs-pause-earlier") }],
        failures: 1,
        failure_threshold: 3,
        alarm_names: vec!["a1".into(), "a2".into()],
        triggered_alarms: vec!["a2".into()],
        ..Default::default()
    }
}

async fn list(w: &Harness, r: ListServiceDeploymentsRequest) -> Result<ListServiceDeploymentsResponse, AwsError> {
    call(w, Operation::ListServiceDeployments(r)).await.map(|o| match o {
        Output::ListServiceDeployments(l) => l,
        other => panic!("unexpected {other:?}"),
    })
}

async fn describe(w: &Harness, arns: Vec<String>) -> Result<DescribeServiceDeploymentsResponse, AwsError> {
    call(
        w,
        Operation::DescribeServiceDeployments(DescribeServiceDeploymentsRequest {
            service_deployment_arns: Some(arns),
        }),
    )
    .await
    .map(|o| match o {
        Output::DescribeServiceDeployments(d) => d,
        other => panic!("unexpected {other:?}"),
    })
}

async fn describe_one(w: &Harness, arn: &str) -> ServiceDeployment {
    let d = describe(w, vec![arn.into()]).await.expect("describe");
    assert_eq!(d.failures, Some(vec![]));
    d.service_deployments.unwrap_or_default().into_iter().next().expect("deployment")
}

async fn describe_service(w: &Harness, name: &str) -> Service {
    let Ok(Output::DescribeServices(d)) = call(
        w,
        Operation::DescribeServices(DescribeServicesRequest {
            services: Some(vec![name.into()]),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!("describe services")
    };
    d.services.unwrap_or_default().into_iter().next().expect("service")
}

fn listing(service: &str) -> ListServiceDeploymentsRequest {
    ListServiceDeploymentsRequest { service: Some(service.into()), ..Default::default() }
}

#[tokio::test]
async fn list_filters_pages_and_names_missing_services_and_clusters() {
    let (w, svc) = world("list").await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    let done = Progress { target_weight: 100.0, ..Default::default() };
    let first = insert(&w, &svc, "first", "SUCCESSFUL", "CLEAN_UP", &rev1, None, &done, 1000.0);
    let second = insert(&w, &svc, "second", "IN_PROGRESS", "BAKE_TIME", &rev2, Some(&rev1), &canary_progress(), 2000.0);

    // By name and by ARN, newest first (the rows above are the newest).
    for given in ["list", svc.as_str()] {
        let all = list(&w, listing(given)).await.expect("list").service_deployments.unwrap_or_default();
        let arns: Vec<_> = all.iter().filter_map(|b| b.service_deployment_arn.clone()).collect();
        assert_eq!(arns[..2], [second.clone(), first.clone()], "{given}");
        let brief = &all[0];
        assert_eq!(brief.service_arn.as_deref(), Some(svc.as_str()));
        assert_eq!(brief.target_service_revision_arn.as_deref(), Some(rev2.as_str()));
        assert_eq!(brief.status, Some(ServiceDeploymentStatus::InProgress));
        assert_eq!(brief.status_reason.as_deref(), Some("test row second"));
        assert_eq!(brief.created_at.map(|t| t.0), Some(2000.0));
        assert_eq!(brief.started_at.map(|t| t.0), Some(2001.0));
        assert_eq!(brief.finished_at, None);
        assert_eq!(all[1].finished_at.map(|t| t.0), Some(1060.0));
    }
    // Status filter.
    let only = list(
        &w,
        ListServiceDeploymentsRequest { status: Some(vec![ServiceDeploymentStatus::Successful]), ..listing("list") },
    )
    .await
    .expect("filtered");
    let arns: Vec<_> =
        only.service_deployments.unwrap_or_default().into_iter().filter_map(|b| b.service_deployment_arn).collect();
    assert!(arns.contains(&first) && !arns.contains(&second), "{arns:?}");
    // createdAt window: only the rows created between 1500 and 2500.
    let window = list(
        &w,
        ListServiceDeploymentsRequest {
            created_at: Some(CreatedAt {
                after: Some(berth_model::Timestamp(1500.0)),
                before: Some(berth_model::Timestamp(2500.0)),
            }),
            ..listing("list")
        },
    )
    .await
    .expect("window");
    let arns: Vec<_> =
        window.service_deployments.unwrap_or_default().into_iter().filter_map(|b| b.service_deployment_arn).collect();
    assert_eq!(arns, vec![second.clone()]);
    // Paging one by one walks every deployment once.
    let total = list(&w, listing("list")).await.expect("all").service_deployments.unwrap_or_default().len();
    let (mut seen, mut token) = (Vec::new(), None);
    loop {
        let page =
            list(&w, ListServiceDeploymentsRequest { max_results: Some(1), next_token: token, ..listing("list") })
                .await
                .expect("page");
        let items = page.service_deployments.unwrap_or_default();
        assert_eq!(items.len(), 1);
        seen.extend(items.into_iter().filter_map(|b| b.service_deployment_arn));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), total);
    assert_eq!(seen[..2], [second.clone(), first.clone()]);

    // Errors, each as ListServiceDeployments' model names it.
    let cases: Vec<(ListServiceDeploymentsRequest, &str)> = vec![
        (listing("nope"), "ServiceNotFoundException"),
        (
            ListServiceDeploymentsRequest { cluster: Some("nocluster".into()), ..listing("list") },
            "ClusterNotFoundException",
        ),
        (ListServiceDeploymentsRequest { max_results: Some(0), ..listing("list") }, "InvalidParameterException"),
        (ListServiceDeploymentsRequest { max_results: Some(101), ..listing("list") }, "InvalidParameterException"),
        (
            ListServiceDeploymentsRequest { next_token: Some("x".into()), ..listing("list") },
            "InvalidParameterException",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(err(list(&w, request.clone()).await), expected, "{request:?}");
    }
}

#[tokio::test]
async fn describe_renders_every_member_of_a_deployment() {
    let (w, svc) = world("describe").await;
    w.settle().await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    let arn = insert(&w, &svc, "canary", "IN_PROGRESS", "BAKE_TIME", &rev2, Some(&rev1), &canary_progress(), 3000.0);
    let d = describe_one(&w, &arn).await;
    assert_eq!(d.service_deployment_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(d.service_arn.as_deref(), Some(svc.as_str()));
    assert!(d.cluster_arn.as_deref().is_some_and(|c| c.ends_with(":cluster/default")));
    assert_eq!(d.status, Some(ServiceDeploymentStatus::InProgress));
    assert_eq!(d.lifecycle_stage, Some(ServiceDeploymentLifecycleStage::BakeTime));
    assert_eq!(d.created_at.map(|t| t.0), Some(3000.0));
    assert_eq!(d.updated_at.map(|t| t.0), Some(3002.0));
    let target = d.target_service_revision.expect("target");
    assert_eq!(target.arn.as_deref(), Some(rev2.as_str()));
    assert_eq!(target.requested_production_traffic_weight, Some(5.0));
    // The target is asked for the whole desired count (1) while the deployment advances.
    assert_eq!(target.requested_task_count, Some(1));
    let sources = d.source_service_revisions.expect("sources");
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].arn.as_deref(), Some(rev1.as_str()));
    assert_eq!(sources[0].requested_production_traffic_weight, Some(95.0));
    // The first revision's one task runs (settled above).
    assert_eq!(sources[0].running_task_count, Some(1));
    let alarms = d.alarms.expect("alarms");
    assert_eq!(alarms.status, Some(ServiceDeploymentRollbackMonitorsStatus::Triggered));
    assert_eq!(alarms.alarm_names, Some(vec!["a1".to_string(), "a2".to_string()]));
    assert_eq!(alarms.triggered_alarm_names, Some(vec!["a2".to_string()]));
    let breaker = d.deployment_circuit_breaker.expect("breaker");
    assert_eq!(breaker.status, Some(ServiceDeploymentRollbackMonitorsStatus::Monitoring));
    assert_eq!((breaker.failure_count, breaker.threshold), (Some(1), Some(3)));
    let hooks = d.lifecycle_hook_details.expect("hooks");
    let ids: Vec<_> = hooks.iter().map(|h| (h.hook_id.clone().unwrap_or_default(), h.status)).collect();
    assert_eq!(
        ids,
        vec![
            ("ecs-pause-earlier".to_string(), Some(DeploymentLifecycleHookStatus::Succeeded)),
            ("ecs-pause-canary1".to_string(), Some(DeploymentLifecycleHookStatus::AwaitingAction)),
        ]
    );
    assert_eq!(hooks[1].target_type, Some(DeploymentLifecycleHookTargetType::Pause));
    assert_eq!(hooks[1].timeout_action, Some(DeploymentLifecycleHookAction::Continue));
    assert_eq!(hooks[1].expires_at.map(|t| t.0), Some(2_000_000_000.0));
    let config = d.deployment_configuration.expect("configuration");
    assert_eq!(config.strategy, Some(DeploymentStrategy::Canary));
    assert_eq!(config.canary_configuration.and_then(|c| c.canary_percent), Some(5.0));
    assert_eq!(d.rollback, None);

    // Rolled back: the rollback member, and the monitors done.
    let rolled = Progress {
        rollback: Some(RollbackInfo { reason: "alarm a2 in ALARM".into(), started_at: 3500.0, revision: rev1.clone() }),
        triggered_alarms: vec!["a2".into()],
        alarm_names: vec!["a2".into()],
        ..Default::default()
    };
    let back = insert(&w, &svc, "back", "ROLLBACK_SUCCESSFUL", "CLEAN_UP", &rev2, Some(&rev1), &rolled, 3400.0);
    let d = describe_one(&w, &back).await;
    let rollback = d.rollback.expect("rollback");
    assert_eq!(rollback.reason.as_deref(), Some("alarm a2 in ALARM"));
    assert_eq!(rollback.started_at.map(|t| t.0), Some(3500.0));
    assert_eq!(rollback.service_revision_arn.as_deref(), Some(rev1.as_str()));
    assert_eq!(d.finished_at.map(|t| t.0), Some(3460.0));
    assert_eq!(
        d.deployment_circuit_breaker.and_then(|b| b.status),
        Some(ServiceDeploymentRollbackMonitorsStatus::MonitoringComplete)
    );

    // Unknown ARNs are failures (MISSING), found ones still answered; more than 20 is refused.
    let missing = deployment_arn(&w, "describe", "nope");
    let both = describe(&w, vec![arn.clone(), missing.clone()]).await.expect("mixed");
    assert_eq!(both.service_deployments.map(|d| d.len()), Some(1));
    let failures = both.failures.unwrap_or_default();
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].arn.as_deref(), failures[0].reason.as_deref()), (Some(missing.as_str()), Some("MISSING")));
    assert_eq!(err(describe(&w, vec![arn.clone(); 21]).await), "InvalidParameterException");
    assert_eq!(err(describe(&w, vec![]).await), "InvalidParameterException");
}

async fn stop(w: &Harness, arn: &str, stop_type: Option<StopServiceDeploymentStopType>) -> Result<Output, AwsError> {
    call(
        w,
        Operation::StopServiceDeployment(StopServiceDeploymentRequest {
            service_deployment_arn: Some(arn.into()),
            stop_type,
        }),
    )
    .await
}

async fn continue_(
    w: &Harness,
    arn: &str,
    hook: &str,
    action: Option<DeploymentLifecycleHookAction>,
) -> Result<Output, AwsError> {
    call(
        w,
        Operation::ContinueServiceDeployment(ContinueServiceDeploymentRequest {
            service_deployment_arn: Some(arn.into()),
            hook_id: Some(hook.into()),
            action,
        }),
    )
    .await
}

#[tokio::test]
async fn stop_writes_the_request_for_the_rollout_by_status() {
    use StopServiceDeploymentStopType::{Abort, Rollback};
    let (w, svc) = world("stop").await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    // (status before, stop type, status after or the error)
    let cases: [(&str, Option<StopServiceDeploymentStopType>, Result<&str, &str>); 12] = [
        ("PENDING", Some(Rollback), Ok("ROLLBACK_REQUESTED")),
        ("IN_PROGRESS", Some(Rollback), Ok("ROLLBACK_REQUESTED")),
        ("IN_PROGRESS", None, Ok("ROLLBACK_REQUESTED")),
        ("PENDING", Some(Abort), Ok("STOP_REQUESTED")),
        ("IN_PROGRESS", Some(Abort), Ok("STOP_REQUESTED")),
        ("STOP_REQUESTED", Some(Rollback), Ok("STOP_REQUESTED")),
        ("ROLLBACK_REQUESTED", Some(Abort), Ok("ROLLBACK_REQUESTED")),
        ("ROLLBACK_IN_PROGRESS", Some(Rollback), Ok("ROLLBACK_IN_PROGRESS")),
        ("SUCCESSFUL", Some(Rollback), Err("ConflictException")),
        ("STOPPED", Some(Rollback), Err("ConflictException")),
        ("ROLLBACK_SUCCESSFUL", Some(Abort), Err("ConflictException")),
        ("ROLLBACK_FAILED", Some(Rollback), Err("ConflictException")),
    ];
    for (i, (before, stop_type, expected)) in cases.into_iter().enumerate() {
        let arn =
            insert(&w, &svc, &format!("s{i}"), before, "SCALE_UP", &rev2, Some(&rev1), &Progress::default(), 100.0);
        let answer = stop(&w, &arn, stop_type).await;
        let after = describe_one(&w, &arn).await;
        match expected {
            Ok(status) => {
                let Ok(Output::StopServiceDeployment(r)) = answer else { panic!("{before} {stop_type:?}: {answer:?}") };
                assert_eq!(r.service_deployment_arn.as_deref(), Some(arn.as_str()));
                assert_eq!(after.status.map(|s| s.as_str()), Some(status), "{before} {stop_type:?}");
                if status != before {
                    let reason = after.status_reason.unwrap_or_default();
                    assert!(reason.contains("StopServiceDeployment") && reason.contains(":root"), "{reason}");
                } else {
                    assert_eq!(after.status_reason.as_deref(), Some(format!("test row s{i}").as_str()));
                }
            }
            Err(code) => {
                assert_eq!(err(answer), code, "{before} {stop_type:?}");
                assert_eq!(after.status.map(|s| s.as_str()), Some(before), "unchanged");
            }
        }
    }
    assert_eq!(err(stop(&w, &deployment_arn(&w, "stop", "nope"), None).await), "ServiceDeploymentNotFoundException");
}

/// (status, progress, hook id asked, action, expected: (status after, hook status after) or the error)
type ContinueCase = (
    &'static str,
    Progress,
    &'static str,
    Option<DeploymentLifecycleHookAction>,
    Result<(&'static str, &'static str), &'static str>,
);

#[tokio::test]
async fn continue_resolves_the_awaited_pause_hook_only() {
    use DeploymentLifecycleHookAction::{Continue, Rollback};
    let (w, svc) = world("cont").await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    let waiting = canary_progress();
    let hook = "ecs-pause-canary1";
    // (status, progress, hook id asked, action, expected: (status after, hook status after) or the error)
    let done_hook =
        Progress { hook: Some(Hook { status: "SUCCEEDED".into(), ..awaiting_hook(hook) }), ..Default::default() };
    let cases: Vec<ContinueCase> = vec![
        ("IN_PROGRESS", waiting.clone(), hook, Some(Continue), Ok(("IN_PROGRESS", "SUCCEEDED"))),
        ("IN_PROGRESS", waiting.clone(), hook, None, Ok(("IN_PROGRESS", "SUCCEEDED"))),
        ("IN_PROGRESS", waiting.clone(), hook, Some(Rollback), Ok(("ROLLBACK_REQUESTED", "FAILED"))),
        ("IN_PROGRESS", waiting.clone(), "ecs-pause-other", Some(Continue), Err("InvalidParameterException")),
        ("IN_PROGRESS", done_hook, hook, Some(Continue), Err("InvalidParameterException")),
        ("IN_PROGRESS", Progress::default(), hook, Some(Continue), Err("InvalidParameterException")),
        ("PENDING", waiting.clone(), hook, Some(Continue), Err("InvalidParameterException")),
        ("ROLLBACK_REQUESTED", waiting.clone(), hook, Some(Continue), Err("InvalidParameterException")),
        ("SUCCESSFUL", waiting.clone(), hook, Some(Rollback), Err("InvalidParameterException")),
    ];
    for (i, (status, progress, asked, action, expected)) in cases.into_iter().enumerate() {
        let arn = insert(&w, &svc, &format!("c{i}"), status, "BAKE_TIME", &rev2, Some(&rev1), &progress, 100.0);
        let answer = continue_(&w, &arn, asked, action).await;
        let after = describe_one(&w, &arn).await;
        let current = after.lifecycle_hook_details.unwrap_or_default().last().and_then(|h| h.status);
        match expected {
            Ok((status_after, hook_after)) => {
                let Ok(Output::ContinueServiceDeployment(r)) = answer else { panic!("case {i}: {answer:?}") };
                assert_eq!(r.service_deployment_arn.as_deref(), Some(arn.as_str()));
                assert_eq!(after.status.map(|s| s.as_str()), Some(status_after), "case {i}");
                assert_eq!(current.map(|s| s.as_str()), Some(hook_after), "case {i}");
            }
            Err(code) => {
                assert_eq!(err(answer), code, "case {i}");
                assert_eq!(after.status.map(|s| s.as_str()), Some(status), "case {i} unchanged");
            }
        }
    }
    assert_eq!(
        err(continue_(&w, &deployment_arn(&w, "cont", "nope"), hook, None).await),
        "ServiceDeploymentNotFoundException"
    );
}

#[tokio::test]
async fn describe_services_and_express_show_the_newest_deployment() {
    let (w, svc) = world("views").await;
    w.settle().await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    let arn = insert(&w, &svc, "mid", "IN_PROGRESS", "BAKE_TIME", &rev2, Some(&rev1), &canary_progress(), 4000.0);
    let s = describe_service(&w, "views").await;
    assert_eq!(s.current_service_deployment.as_deref(), Some(arn.as_str()));
    let deployments = s.deployments.unwrap_or_default();
    let shown: Vec<_> = deployments
        .iter()
        .map(|d| (d.status.clone().unwrap_or_default(), d.id.clone().unwrap_or_default(), d.rollout_state))
        .collect();
    let id = |rev: &str| format!("ecs-svc/{}", rev.rsplit('/').next().unwrap_or_default());
    assert_eq!(
        shown,
        vec![
            ("PRIMARY".to_string(), id(&rev2), Some(DeploymentRolloutState::InProgress)),
            ("ACTIVE".to_string(), id(&rev1), Some(DeploymentRolloutState::Completed)),
        ]
    );
    assert_eq!(deployments[0].rollout_state_reason, Some(format!("ECS deployment {} in progress.", id(&rev2))));
    assert_eq!(deployments[0].failed_tasks, Some(1));
    let revisions: Vec<_> = s.current_service_revisions.unwrap_or_default().into_iter().filter_map(|r| r.arn).collect();
    assert!(revisions.contains(&rev1) && revisions.contains(&rev2), "{revisions:?}");
    // No settings stored: the Express defaults (CANARY 5% with the server's bakes, the deployment alarm).
    let config = s.deployment_configuration.expect("configuration");
    assert_eq!(config.strategy, Some(DeploymentStrategy::Canary));
    assert_eq!(config.canary_configuration.and_then(|c| c.canary_percent), Some(5.0));
    assert_eq!(config.bake_time_in_minutes, Some(3));
    assert_eq!(config.alarms.and_then(|a| a.alarm_names), Some(vec!["default-views-deployment-rollback".to_string()]));

    // Both revisions serve during the canary.
    let Ok(Output::DescribeExpressGatewayService(d)) = call(
        &w,
        Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(svc.clone()),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!("describe express")
    };
    let service = d.service.expect("service");
    assert_eq!(service.current_deployment.as_deref(), Some(arn.as_str()));
    let active: Vec<_> =
        service.active_configurations.unwrap_or_default().into_iter().filter_map(|c| c.service_revision_arn).collect();
    assert_eq!(active, vec![rev1.clone(), rev2.clone()]);

    // Rolling back: PRIMARY is the source again, the target FAILED while its tasks remain; Express serves rev1.
    let rolling = Progress { triggered_alarms: vec!["a2".into()], ..Default::default() };
    let back = insert(
        &w,
        &svc,
        "back",
        "ROLLBACK_IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        &rev2,
        Some(&rev1),
        &rolling,
        5000.0,
    );
    let s = describe_service(&w, "views").await;
    assert_eq!(s.current_service_deployment.as_deref(), Some(back.as_str()));
    let primary = &s.deployments.unwrap_or_default()[0];
    assert_eq!(primary.id, Some(id(&rev1)));
    assert_eq!(primary.rollout_state, Some(DeploymentRolloutState::InProgress));
    assert_eq!(
        primary.rollout_state_reason,
        Some(format!("ECS deployment alarm a2 in ALARM: rolling back to deploymentId {}.", id(&rev1)))
    );
    let Ok(Output::DescribeExpressGatewayService(d)) = call(
        &w,
        Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(svc.clone()),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!("describe express")
    };
    let active: Vec<_> = d
        .service
        .and_then(|s| s.active_configurations)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.service_revision_arn)
        .collect();
    assert_eq!(active, vec![rev1.clone()]);
}

async fn revisions(w: &Harness, arns: Vec<String>) -> Result<DescribeServiceRevisionsResponse, AwsError> {
    call(w, Operation::DescribeServiceRevisions(DescribeServiceRevisionsRequest { service_revision_arns: Some(arns) }))
        .await
        .map(|o| match o {
            Output::DescribeServiceRevisions(d) => d,
            other => panic!("unexpected {other:?}"),
        })
}

#[tokio::test]
async fn describe_revisions_names_the_managed_resources_that_exist() {
    let (w, svc) = world("revs").await;
    let rev = target_revision(&w, &svc).await;
    let d = revisions(&w, vec![rev.clone()]).await.expect("describe");
    assert_eq!(d.failures, Some(vec![]));
    let r = d.service_revisions.unwrap_or_default().into_iter().next().expect("revision");
    assert_eq!(r.service_revision_arn.as_deref(), Some(rev.as_str()));
    assert_eq!(r.service_arn.as_deref(), Some(svc.as_str()));
    assert_eq!(r.launch_type, Some(LaunchType::Fargate));
    assert!(r.task_definition.as_deref().is_some_and(|t| t.contains(":task-definition/default-revs:")));
    assert_eq!(r.container_images.unwrap_or_default()[0].image.as_deref(), common::demo_container().image.as_deref());
    // The revision's target group and the Express rule, as DescribeServices names them.
    let s = describe_service(&w, "revs").await;
    let lb = s.load_balancers.unwrap_or_default().into_iter().next().expect("lb");
    let live_group = lb.target_group_arn.clone().expect("group");
    let rule = lb.advanced_configuration.and_then(|a| a.production_listener_rule).expect("rule");
    assert_eq!(r.load_balancers.unwrap_or_default()[0].target_group_arn.as_deref(), Some(live_group.as_str()));
    let resolved = r.resolved_configuration.and_then(|c| c.load_balancers).unwrap_or_default();
    assert_eq!(resolved[0].target_group_arn.as_deref(), Some(live_group.as_str()));
    assert_eq!(resolved[0].production_listener_rule.as_deref(), Some(rule.as_str()));

    let m = r.ecs_managed_resources.expect("managed");
    let path = m.ingress_paths.unwrap_or_default().into_iter().next().expect("ingress");
    assert_eq!(path.access_type, Some(AccessType::Public));
    let load_balancer = path.load_balancer.expect("load balancer");
    assert_eq!(load_balancer.status, Some(ManagedResourceStatus::Active));
    assert_eq!(load_balancer.scheme.as_deref(), Some("internet-facing"));
    // Every ARN is one ELBv2 describes.
    let Ok(EO::DescribeTargetGroups(groups)) = w
        .elb(E::DescribeTargetGroups(elb::DescribeTargetGroupsInput {
            load_balancer_arn: load_balancer.arn.clone(),
            ..Default::default()
        }))
        .await
    else {
        panic!("describe groups")
    };
    let group_arns: Vec<_> =
        groups.target_groups.unwrap_or_default().into_iter().filter_map(|g| g.target_group_arn).collect();
    let tg = path.target_groups.unwrap_or_default().into_iter().next().expect("tg");
    assert_eq!(tg.arn.as_deref(), Some(live_group.as_str()));
    assert!(group_arns.contains(&live_group), "{group_arns:?}");
    assert_eq!(
        (tg.health_check_path.as_deref(), tg.port, tg.status),
        (Some("/ping"), Some(80), Some(ManagedResourceStatus::Active))
    );
    let listener = path.listener.and_then(|l| l.arn).expect("listener");
    assert_eq!(listener, w.https_listener(load_balancer.arn.as_deref().expect("lb arn")).await);
    assert_eq!(path.rule.and_then(|r| r.arn), Some(rule));
    let cert = path.certificate.expect("certificate");
    assert_eq!(cert.domain_name.as_deref(), Some(endpoint_of(&w, &svc).await.as_str()));
    assert!(cert.arn.as_deref().is_some_and(|a| a.starts_with("arn:aws:acm:")));
    let lb_groups: Vec<_> =
        path.load_balancer_security_groups.unwrap_or_default().into_iter().filter_map(|g| g.arn).collect();
    assert_eq!(lb_groups.len(), 1);
    assert!(lb_groups[0].contains(":security-group/sg-"), "{lb_groups:?}");

    let scaling = m.auto_scaling.expect("scaling");
    let target = scaling.scalable_target.expect("target");
    assert_eq!((target.min_capacity, target.max_capacity), (Some(1), Some(20)));
    let policies = scaling.application_auto_scaling_policies.unwrap_or_default();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].policy_type.as_deref(), Some("TargetTrackingScaling"));
    assert_eq!(policies[0].target_value, Some(60.0));
    assert_eq!(policies[0].metric.as_deref(), Some("ECSServiceAverageCPUUtilization"));
    let alarms = m.metric_alarms.unwrap_or_default();
    assert!(alarms.len() >= 2, "the policy's two alarms: {alarms:?}");
    assert!(alarms.iter().all(|a| a.arn.as_deref().is_some_and(|a| a.starts_with("arn:aws:cloudwatch:"))));
    let service_groups = m.service_security_groups.unwrap_or_default();
    assert!(!service_groups.is_empty());
    assert!(service_groups.iter().all(|g| g.status == Some(ManagedResourceStatus::Active)));
    let logs = m.log_groups.unwrap_or_default();
    // Express names the group after the service with a random suffix.
    assert!(logs[0].log_group_name.as_deref().is_some_and(|n| n.starts_with("/aws/ecs/default/revs-")), "{logs:?}");
    assert!(logs[0].arn.as_deref().is_some_and(|a| a.starts_with("arn:aws:logs:")));
    assert_eq!(logs[0].status, Some(ManagedResourceStatus::Active));

    // MISSING for unknown ARNs; more than 20 refused.
    let missing = rev.replace("/revs/", "/nothere/");
    let d = revisions(&w, vec![missing.clone()]).await.expect("missing");
    assert_eq!(d.service_revisions.map(|r| r.len()), Some(0));
    assert_eq!(d.failures.unwrap_or_default()[0].reason.as_deref(), Some("MISSING"));
    assert_eq!(err(revisions(&w, vec![rev.clone(); 21]).await), "InvalidParameterException");
}

async fn update(w: &Harness, r: UpdateServiceRequest) -> Result<Service, AwsError> {
    call(w, Operation::UpdateService(r)).await.map(|o| match o {
        Output::UpdateService(u) => u.service.expect("service"),
        other => panic!("unexpected {other:?}"),
    })
}

fn on(service: &str) -> UpdateServiceRequest {
    UpdateServiceRequest { service: Some(service.into()), ..Default::default() }
}

fn configured(service: &str, config: DeploymentConfiguration) -> UpdateServiceRequest {
    UpdateServiceRequest { deployment_configuration: Some(config), ..on(service) }
}

fn pause(stages: Vec<DeploymentLifecycleHookStage>, timeout: Option<i32>) -> DeploymentLifecycleHook {
    DeploymentLifecycleHook {
        target_type: Some(DeploymentLifecycleHookTargetType::Pause),
        lifecycle_stages: Some(stages),
        timeout_configuration: timeout.map(|m| DeploymentLifecycleHookTimeoutConfiguration {
            timeout_in_minutes: Some(m),
            action: Some(DeploymentLifecycleHookAction::Rollback),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn update_service_validates_deployment_configuration_as_ecs_does() {
    use DeploymentStrategy as S;
    let (w, _svc) = world("upd").await;
    let canary = |percent: f64, bake: i32| DeploymentConfiguration {
        strategy: Some(S::Canary),
        canary_configuration: Some(CanaryConfiguration {
            canary_percent: Some(percent),
            canary_bake_time_in_minutes: Some(bake),
        }),
        ..Default::default()
    };
    let linear = |step: f64| DeploymentConfiguration {
        strategy: Some(S::Linear),
        linear_configuration: Some(LinearConfiguration {
            step_percent: Some(step),
            step_bake_time_in_minutes: Some(1),
        }),
        ..Default::default()
    };
    let strategy = |s: S| DeploymentConfiguration { strategy: Some(s), ..Default::default() };
    let canary_hooks = |hooks: Vec<DeploymentLifecycleHook>| {
        configured("upd", DeploymentConfiguration { lifecycle_hooks: Some(hooks), ..strategy(S::Canary) })
    };
    let lambda = DeploymentLifecycleHook {
        target_type: Some(DeploymentLifecycleHookTargetType::AwsLambda),
        hook_target_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:f".into()),
        lifecycle_stages: Some(vec![DeploymentLifecycleHookStage::PostScaleUp]),
        ..Default::default()
    };
    use DeploymentLifecycleHookStage as H;
    let cases: Vec<(&str, UpdateServiceRequest, &str)> = vec![
        ("canary percent too small", configured("upd", canary(0.05, 1)), "InvalidParameterException"),
        ("canary percent not in tenths", configured("upd", canary(5.55, 1)), "InvalidParameterException"),
        ("canary bake too long", configured("upd", canary(5.0, 1441)), "InvalidParameterException"),
        ("linear step too small", configured("upd", linear(2.9)), "InvalidParameterException"),
        (
            "canary settings under LINEAR",
            configured(
                "upd",
                DeploymentConfiguration { canary_configuration: Some(CanaryConfiguration::default()), ..linear(10.0) },
            ),
            "InvalidParameterException",
        ),
        (
            "linear settings under ROLLING",
            configured(
                "upd",
                DeploymentConfiguration {
                    linear_configuration: Some(LinearConfiguration::default()),
                    ..strategy(S::Rolling)
                },
            ),
            "InvalidParameterException",
        ),
        ("blue/green without its bake", configured("upd", strategy(S::BlueGreen)), "InvalidParameterException"),
        (
            "bake beyond a day",
            configured("upd", DeploymentConfiguration { bake_time_in_minutes: Some(1441), ..strategy(S::BlueGreen) }),
            "InvalidParameterException",
        ),
        (
            "minimum healthy above 100",
            configured("upd", DeploymentConfiguration { minimum_healthy_percent: Some(101), ..strategy(S::Rolling) }),
            "InvalidParameterException",
        ),
        (
            "rolling that can neither start nor stop",
            configured(
                "upd",
                DeploymentConfiguration {
                    minimum_healthy_percent: Some(100),
                    maximum_percent: Some(100),
                    ..strategy(S::Rolling)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "breaker threshold of 0",
            configured(
                "upd",
                DeploymentConfiguration {
                    deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                        enable: Some(true),
                        rollback: Some(true),
                        threshold_configuration: Some(ThresholdConfiguration {
                            r#type: Some(ThresholdType::Count),
                            value: Some(0),
                        }),
                        ..Default::default()
                    }),
                    ..strategy(S::Rolling)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "an empty alarm name",
            configured(
                "upd",
                DeploymentConfiguration {
                    alarms: Some(DeploymentAlarms {
                        alarm_names: Some(vec!["".into()]),
                        enable: Some(true),
                        rollback: Some(true),
                    }),
                    ..strategy(S::Canary)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "an alarm that does not exist",
            configured(
                "upd",
                DeploymentConfiguration {
                    alarms: Some(DeploymentAlarms {
                        alarm_names: Some(vec!["no-such-alarm".into()]),
                        enable: Some(true),
                        rollback: Some(true),
                    }),
                    ..strategy(S::Canary)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "a Lambda hook",
            configured("upd", DeploymentConfiguration { lifecycle_hooks: Some(vec![lambda]), ..strategy(S::Canary) }),
            "UnsupportedFeatureException",
        ),
        (
            "a pause at TEST_TRAFFIC_SHIFT",
            configured(
                "upd",
                DeploymentConfiguration {
                    lifecycle_hooks: Some(vec![pause(vec![H::TestTrafficShift], None)]),
                    bake_time_in_minutes: Some(0),
                    ..strategy(S::BlueGreen)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "a pause at PRODUCTION_TRAFFIC_SHIFT",
            canary_hooks(vec![pause(vec![H::ProductionTrafficShift], None)]),
            "InvalidParameterException",
        ),
        ("a pause timeout of 0", canary_hooks(vec![pause(vec![H::PostScaleUp], Some(0))]), "InvalidParameterException"),
        (
            "a pause timeout beyond two weeks",
            canary_hooks(vec![pause(vec![H::PostScaleUp], Some(20161))]),
            "InvalidParameterException",
        ),
        (
            "early success under CANARY",
            configured(
                "upd",
                DeploymentConfiguration {
                    early_success_criteria: Some(DeploymentEarlySuccessCriteria {
                        enable: Some(true),
                        healthy_percent: Some(50),
                        source_service_revision_cleanup: None,
                    }),
                    ..strategy(S::Canary)
                },
            ),
            "InvalidParameterException",
        ),
        (
            "desiredCount above the scaling maximum",
            UpdateServiceRequest { desired_count: Some(21), ..on("upd") },
            "InvalidParameterException",
        ),
        (
            "a member Express does not take",
            UpdateServiceRequest { platform_version: Some("1.4.0".into()), ..on("upd") },
            "InvalidParameterException",
        ),
        (
            "an unknown task definition",
            UpdateServiceRequest { task_definition: Some("no-such-family:1".into()), ..on("upd") },
            "ClientException",
        ),
        ("an unknown service", on("nope"), "ServiceNotFoundException"),
        (
            "an unknown cluster",
            UpdateServiceRequest { cluster: Some("nocluster".into()), ..on("upd") },
            "ClusterNotFoundException",
        ),
    ];
    let before = describe_service(&w, "upd").await.deployment_configuration;
    for (what, request, expected) in cases {
        assert_eq!(err(update(&w, request).await), expected, "{what}");
    }
    assert_eq!(describe_service(&w, "upd").await.deployment_configuration, before, "nothing stored");
    let message = match update(&w, UpdateServiceRequest { platform_version: Some("1.4.0".into()), ..on("upd") }).await {
        Err(e) => e.message,
        Ok(_) => panic!("accepted"),
    };
    assert!(message.contains("platformVersion"), "{message}");
}

#[tokio::test]
async fn update_service_stores_settings_count_and_deploys() {
    use DeploymentStrategy as S;
    let (w, svc) = world("store").await;
    // LINEAR with a pause hook: stored and shown as the service's configuration.
    let linear = DeploymentConfiguration {
        strategy: Some(S::Linear),
        linear_configuration: Some(LinearConfiguration {
            step_percent: Some(25.0),
            step_bake_time_in_minutes: Some(0),
        }),
        bake_time_in_minutes: Some(0),
        lifecycle_hooks: Some(vec![pause(vec![DeploymentLifecycleHookStage::PostScaleUp], Some(30))]),
        ..Default::default()
    };
    let s = update(&w, configured("store", linear.clone())).await.expect("linear");
    // What was given, with the rollout's defaults filled in (rolling bounds, the breaker, the deployment alarm).
    let expected = DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: Some(true),
            rollback: Some(true),
            reset_on_healthy_task: Some(true),
            threshold_configuration: Some(ThresholdConfiguration {
                r#type: Some(ThresholdType::BoundedPercent),
                value: Some(50),
            }),
        }),
        maximum_percent: Some(200),
        minimum_healthy_percent: Some(100),
        alarms: Some(DeploymentAlarms {
            alarm_names: Some(vec!["default-store-deployment-rollback".into()]),
            rollback: Some(true),
            enable: Some(true),
        }),
        ..linear.clone()
    };
    assert_eq!(s.deployment_configuration, Some(expected.clone()));
    assert_eq!(describe_service(&w, "store").await.deployment_configuration, Some(expected));
    // A configuration without a strategy keeps the service's.
    let s = update(
        &w,
        configured("store", DeploymentConfiguration { bake_time_in_minutes: Some(2), ..Default::default() }),
    )
    .await
    .expect("no strategy");
    let kept = s.deployment_configuration.expect("configuration");
    assert_eq!((kept.strategy, kept.bake_time_in_minutes), (Some(S::Linear), Some(2)));

    // desiredCount within the scaling target's bounds.
    let s = update(&w, UpdateServiceRequest { desired_count: Some(3), ..on(&svc) }).await.expect("count");
    assert_eq!(s.desired_count, Some(3));

    // BLUE_GREEN with a test listener rule: a user rule of the service's listener.
    let groups = describe_service(&w, "store").await.load_balancers.unwrap_or_default();
    let production =
        groups[0].advanced_configuration.as_ref().and_then(|a| a.production_listener_rule.clone()).expect("rule");
    let managed = revisions(&w, vec![target_revision(&w, &svc).await]).await.expect("revision");
    let listener = managed.service_revisions.unwrap_or_default()[0]
        .ecs_managed_resources
        .as_ref()
        .and_then(|m| m.ingress_paths.as_ref())
        .and_then(|p| p[0].listener.as_ref())
        .and_then(|l| l.arn.clone())
        .expect("listener");
    let Ok(EO::CreateRule(created)) = w
        .elb(E::CreateRule(elb::CreateRuleInput {
            listener_arn: Some(listener.clone()),
            priority: Some(30),
            conditions: Some(vec![elb::RuleCondition {
                field: Some("host-header".into()),
                values: Some(vec!["test.example.com".into()]),
                ..Default::default()
            }]),
            actions: Some(vec![elb::Action {
                r#type: Some(elb::ActionTypeEnum::FixedResponse),
                fixed_response_config: Some(elb::FixedResponseActionConfig {
                    status_code: Some("200".into()),
                    content_type: Some("text/plain".into()),
                    message_body: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }))
        .await
    else {
        panic!("create rule")
    };
    let test_rule = created.rules.unwrap_or_default()[0].rule_arn.clone().expect("arn");
    let blue_green = DeploymentConfiguration {
        strategy: Some(S::BlueGreen),
        bake_time_in_minutes: Some(1),
        lifecycle_hooks: Some(vec![pause(vec![DeploymentLifecycleHookStage::PostTestTrafficShift], None)]),
        ..Default::default()
    };
    let with_rule = |rule: &str| {
        vec![LoadBalancer {
            advanced_configuration: Some(AdvancedConfiguration {
                test_listener_rule: Some(rule.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }]
    };
    assert_eq!(
        err(update(
            &w,
            UpdateServiceRequest {
                load_balancers: Some(with_rule(&production)),
                ..configured("store", blue_green.clone())
            }
        )
        .await),
        "InvalidParameterException",
        "the production rule cannot be the test rule"
    );
    assert_eq!(
        err(update(
            &w,
            UpdateServiceRequest {
                load_balancers: Some(with_rule("arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/x/y/z/w")),
                ..configured("store", blue_green.clone())
            }
        )
        .await),
        "InvalidParameterException",
        "an unknown rule"
    );
    // The service is LINEAR now: a test rule is BLUE_GREEN's only.
    assert_eq!(
        err(update(&w, UpdateServiceRequest { load_balancers: Some(with_rule(&test_rule)), ..on("store") }).await),
        "InvalidParameterException",
        "a test rule without BLUE_GREEN"
    );
    let s = update(
        &w,
        UpdateServiceRequest { load_balancers: Some(with_rule(&test_rule)), ..configured("store", blue_green.clone()) },
    )
    .await
    .expect("blue/green");
    let shown = s.load_balancers.unwrap_or_default()[0].advanced_configuration.clone().expect("advanced");
    assert_eq!(shown.test_listener_rule.as_deref(), Some(test_rule.as_str()));
    assert_eq!(s.deployment_configuration.and_then(|c| c.strategy), Some(S::BlueGreen));

    // forceNewDeployment: a new revision with the same configuration, through the Express update.
    let before = target_revision(&w, &svc).await;
    update(&w, UpdateServiceRequest { force_new_deployment: Some(true), ..on("store") }).await.expect("force");
    let after = target_revision(&w, &svc).await;
    assert_ne!(before, after);
    let configs = revisions(&w, vec![before.clone(), after.clone()])
        .await
        .expect("revisions")
        .service_revisions
        .unwrap_or_default();
    let images: Vec<_> = configs.iter().map(|r| r.container_images.clone()).collect();
    assert_eq!(images[0], images[1], "same configuration");
}

#[tokio::test]
async fn the_new_operations_are_authorized_on_the_resources_they_name() {
    let (w, svc) = world("authz").await;
    let other = w.create_demo_service("authz-other").await;
    let rev1 = target_revision(&w, &svc).await;
    let rev2 = new_revision(&w, &svc, "2").await;
    let mine = insert(&w, &svc, "mine", "IN_PROGRESS", "SCALE_UP", &rev2, Some(&rev1), &Progress::default(), 10.0);
    let other_rev = target_revision(&w, &other).await;
    let theirs = insert(&w, &other, "theirs", "IN_PROGRESS", "SCALE_UP", &other_rev, None, &Progress::default(), 10.0);
    let account = w.control.account_id().to_string();
    // Allowed on the service `authz`, its deployments and revisions, in the default cluster only.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["ecs:ListServiceDeployments","ecs:UpdateService"],"Resource":"{svc}","Condition":{{"StringEquals":{{"ecs:cluster":"arn:aws:ecs:us-east-1:{account}:cluster/default"}}}}}},{{"Effect":"Allow","Action":["ecs:DescribeServiceDeployments","ecs:StopServiceDeployment","ecs:ContinueServiceDeployment"],"Resource":"arn:aws:ecs:us-east-1:{account}:service-deployment/default/authz/*"}},{{"Effect":"Allow","Action":"ecs:DescribeServiceRevisions","Resource":"arn:aws:ecs:us-east-1:{account}:service-revision/default/authz/*"}}]}}"#
    );
    let user = common::user_with(&w.control, "deployer", &policy).await;
    let as_user = |op: Operation| {
        let control = w.control.clone();
        let user = user.clone();
        async move { control.handle_ecs(&user, op).await }
    };
    let denied = |r: Result<Output, AwsError>| err(r) == "AccessDeniedException";
    // (operation on the allowed resource, the same on another one)
    let pairs: Vec<(Operation, Operation)> = vec![
        (
            Operation::ListServiceDeployments(listing("authz")),
            Operation::ListServiceDeployments(listing("authz-other")),
        ),
        (
            Operation::UpdateService(UpdateServiceRequest { desired_count: Some(1), ..on(&svc) }),
            Operation::UpdateService(UpdateServiceRequest { desired_count: Some(1), ..on(&other) }),
        ),
        (
            Operation::DescribeServiceDeployments(DescribeServiceDeploymentsRequest {
                service_deployment_arns: Some(vec![mine.clone()]),
            }),
            Operation::DescribeServiceDeployments(DescribeServiceDeploymentsRequest {
                service_deployment_arns: Some(vec![mine.clone(), theirs.clone()]),
            }),
        ),
        (
            Operation::DescribeServiceRevisions(DescribeServiceRevisionsRequest {
                service_revision_arns: Some(vec![rev1.clone()]),
            }),
            Operation::DescribeServiceRevisions(DescribeServiceRevisionsRequest {
                service_revision_arns: Some(vec![other_rev.clone()]),
            }),
        ),
        (
            Operation::ContinueServiceDeployment(ContinueServiceDeploymentRequest {
                service_deployment_arn: Some(mine.clone()),
                hook_id: Some("ecs-pause-none".into()),
                action: None,
            }),
            Operation::ContinueServiceDeployment(ContinueServiceDeploymentRequest {
                service_deployment_arn: Some(theirs.clone()),
                hook_id: Some("ecs-pause-none".into()),
                action: None,
            }),
        ),
        (
            Operation::StopServiceDeployment(StopServiceDeploymentRequest {
                service_deployment_arn: Some(mine.clone()),
                stop_type: None,
            }),
            Operation::StopServiceDeployment(StopServiceDeploymentRequest {
                service_deployment_arn: Some(theirs.clone()),
                stop_type: None,
            }),
        ),
    ];
    for (allowed, refused) in pairs {
        let name = allowed.name();
        let answer = as_user(allowed).await;
        // Allowed: answered by the operation itself (Continue's hook is not awaited: its own error).
        if name == "ContinueServiceDeployment" {
            assert_eq!(err(answer), "InvalidParameterException", "{name} allowed");
        } else {
            assert!(answer.is_ok(), "{name} allowed: {answer:?}");
        }
        assert!(denied(as_user(refused).await), "{name} on another resource");
    }
    assert_eq!(describe_one(&w, &theirs).await.status, Some(ServiceDeploymentStatus::InProgress), "not stopped");
}

#[tokio::test]
async fn update_service_deploys_a_task_definition_given_by_family() {
    let (w, svc) = world("bytd").await;
    let definition = serde_json::json!({
        "family": "bytd-own",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": w.role_arn("exec"),
        "containerDefinitions": [{
            "name": "Main",
            "image": "berth-demo:latest",
            "essential": true,
            "portMappings": [{"containerPort": 8080, "name": "web", "protocol": "tcp"}]
        }]
    });
    // Two revisions of the family, so "the latest" and "revision 1" name different definitions.
    let mut registered_arns = Vec::new();
    for _ in 0..2 {
        let request: RegisterTaskDefinitionRequest = serde_json::from_value(definition.clone()).expect("request");
        let Ok(Output::RegisterTaskDefinition(registered)) = call(&w, Operation::RegisterTaskDefinition(request)).await
        else {
            panic!("register")
        };
        registered_arns.push(registered.task_definition.and_then(|t| t.task_definition_arn).expect("arn"));
    }
    let mut before = target_revision(&w, &svc).await;
    // By family (the latest revision) and by family:revision: the Express update path records a revision on it.
    for (given, td) in [("bytd-own", &registered_arns[1]), ("bytd-own:1", &registered_arns[0])] {
        update(&w, UpdateServiceRequest { task_definition: Some(given.into()), ..on("bytd") }).await.expect(given);
        let now = target_revision(&w, &svc).await;
        assert_ne!(now, before, "{given}: a new revision");
        let revision = revisions(&w, vec![now.clone()]).await.expect("revision").service_revisions.unwrap_or_default();
        assert_eq!(revision[0].task_definition.as_deref(), Some(td.as_str()), "{given}");
        before = now;
    }
}

#[tokio::test]
async fn a_deleted_service_s_revision_shows_its_resources_going_and_gone() {
    let (w, svc) = world("gone").await;
    w.settle().await;
    let rev = target_revision(&w, &svc).await;
    let managed = |r: DescribeServiceRevisionsResponse| {
        r.service_revisions
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|r| r.ecs_managed_resources)
            .expect("managed")
    };
    let before = managed(revisions(&w, vec![rev.clone()]).await.expect("before"));
    let rule = before.ingress_paths.as_ref().and_then(|p| p[0].rule.as_ref()).and_then(|r| r.arn.clone());
    call(
        &w,
        Operation::DeleteExpressGatewayService(DeleteExpressGatewayServiceRequest { service_arn: Some(svc.clone()) }),
    )
    .await
    .expect("delete");
    // DRAINING: off its load balancer at once (no rule, load balancer, listener or certificate of its own left to
    // show), the rest going.
    assert!(rule.is_some());
    let draining = managed(revisions(&w, vec![rev.clone()]).await.expect("draining"));
    let path = draining.ingress_paths.unwrap_or_default().into_iter().next().expect("path");
    assert_eq!((path.rule, path.load_balancer, path.listener), (None, None, None), "released from the load balancer");
    assert_eq!(path.target_groups.unwrap_or_default()[0].status, Some(ManagedResourceStatus::Deprovisioning));
    let groups = draining.service_security_groups.unwrap_or_default();
    assert!(!groups.is_empty());
    assert!(groups.iter().all(|g| g.status == Some(ManagedResourceStatus::Deprovisioning)), "{groups:?}");
    // INACTIVE: the target groups are deleted with their record of the revision (left out), the service's own
    // security group is DELETED, the scaling target and its policies are gone; the log group stays.
    for _ in 0..5 {
        w.settle().await;
    }
    let gone = managed(revisions(&w, vec![rev.clone()]).await.expect("gone"));
    let path = gone.ingress_paths.unwrap_or_default().into_iter().next().expect("path");
    assert_eq!(path.target_groups, None);
    let scaling = gone.auto_scaling.expect("scaling");
    assert_eq!(scaling.scalable_target, None);
    assert_eq!(scaling.application_auto_scaling_policies, Some(vec![]));
    let groups = gone.service_security_groups.clone().unwrap_or_default();
    assert!(!groups.is_empty());
    assert!(
        gone.service_security_groups
            .unwrap_or_default()
            .iter()
            .all(|g| g.status == Some(ManagedResourceStatus::Deleted))
    );
    assert_eq!(gone.log_groups.unwrap_or_default()[0].status, Some(ManagedResourceStatus::Active));
}
