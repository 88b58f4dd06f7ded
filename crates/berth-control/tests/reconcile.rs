//! The control plane end to end over the in-memory driver: commands, reconciler passes, simulated proxy
//! reports, restarts. No Docker, no sockets: every step is driven explicitly.

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::ecs::*;
use berth_routes::{Condition, RouteTable, RuleAction, TargetHealth};
use berth_runtime::memory::MemoryDriver;

mod common;

use common::Harness;

fn config() -> ControlConfig {
    // Deployments without bakes (tests/deployments.rs has the bakes).
    ControlConfig {
        drain_timeout: std::time::Duration::from_secs(30),
        deploy: berth_control::DeployDefaults { canary_bake_secs: 0, bake_secs: 0, ..Default::default() },
        ..ControlConfig::default()
    }
}

/// A world whose account has the two Express roles, created as the AWS documentation's CLI flow does.
async fn world(name: &str) -> Harness {
    let w = Harness::new(name, |_| config());
    w.create_express_roles().await;
    w
}

impl Harness {
    async fn call(&self, op: Operation) -> Result<Output, berth_core::AwsError> {
        self.control.handle_ecs(&self.caller, op).await
    }

    async fn create(&self, name: &str, env: &[(&str, &str)]) -> String {
        let request =
            CreateExpressGatewayServiceRequest { primary_container: Some(container(env)), ..common::named(name) };
        self.create_service(request).await.expect("create").service_arn.expect("arn")
    }

    /// Reports what a proxy serving the current table would: every target healthy (or as `health` says)
    /// with no requests in flight.
    fn report_all(&self, health: TargetHealth, in_flight: u64) {
        self.report_as_proxy(health, in_flight);
    }
}

/// The host and forward weights of the table's rules, by priority.
fn rule_routes(table: &RouteTable) -> Vec<(String, Vec<u32>)> {
    table
        .rules
        .iter()
        .map(|r| {
            let host = r
                .conditions
                .iter()
                .find_map(|c| match c {
                    Condition::HostHeader { values } => values.first().cloned(),
                    _ => None,
                })
                .unwrap_or_default();
            let weights = match r.actions.first() {
                Some(RuleAction::Forward { target_groups, .. }) => target_groups.iter().map(|g| g.weight).collect(),
                _ => vec![],
            };
            (host, weights)
        })
        .collect()
}

fn container(env: &[(&str, &str)]) -> ExpressGatewayContainer {
    ExpressGatewayContainer {
        image: Some("berth-demo:latest".into()),
        environment: Some(
            env.iter().map(|(k, v)| KeyValuePair { name: Some((*k).into()), value: Some((*v).into()) }).collect(),
        ),
        ..Default::default()
    }
}

fn env_of(driver: &MemoryDriver, task_id: &str) -> Vec<(String, String)> {
    driver.started().into_iter().find(|s| s.task_id == task_id).map(|s| s.environment).unwrap_or_default()
}

#[tokio::test]
async fn create_update_delete_converge_without_dropping_traffic() {
    let w = world("lifecycle").await;
    let arn = w.create("web", &[("DEMO_VERSION", "v1")]).await;
    w.settle().await;
    let v1 = w.driver.running_ids();
    assert_eq!(v1.len(), 1, "one task runs");
    let table = w.table();
    let routes = rule_routes(&table);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].0.starts_with("web-") && routes[0].0.ends_with(".ecs.us-east-1.localhost"));
    assert_eq!(routes[0].1, vec![100, 0], "the live group and the idle one");
    assert!(table.hosts.is_empty(), "every route is a listener rule");
    assert_eq!(table.certificates.len(), 2, "the default wildcard certificate and the endpoint's own");
    let spec = &w.driver.started()[0];
    assert_eq!(spec.size.cpu, 256);
    assert_eq!(spec.container_port, 80);
    assert!(spec.labels.get("berth.service") == Some(&arn));

    w.report_all(TargetHealth::Healthy, 0);
    w.settle().await;
    let Ok(Output::DescribeServices(d)) = w
        .call(Operation::DescribeServices(DescribeServicesRequest {
            services: Some(vec!["web".into()]),
            ..Default::default()
        }))
        .await
    else {
        panic!("describe services")
    };
    let svc = &d.services.unwrap_or_default()[0];
    assert_eq!(svc.resource_management_type, Some(ResourceManagementType::Ecs));
    assert_eq!((svc.desired_count, svc.running_count), (Some(1), Some(1)));
    let events: Vec<String> = svc.events.clone().unwrap_or_default().into_iter().filter_map(|e| e.message).collect();
    assert_eq!(events.first().map(String::as_str), Some("(service web) has reached a steady state."), "{events:?}");
    assert!(events.iter().any(|e| e.starts_with("(service web) has started 1 tasks: (task ")), "{events:?}");

    // Update: a second task of the new revision starts beside the first; nothing shifts until it is healthy.
    w.report_all(TargetHealth::Healthy, 0);
    w.call(Operation::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
        primary_container: Some(container(&[("DEMO_VERSION", "v2")])),
        ..Default::default()
    }))
    .await
    .expect("update");
    w.settle().await;
    let both = w.driver.running_ids();
    assert_eq!(both.len(), 2, "old and new run side by side");
    let new_id = both.iter().find(|id| !v1.contains(id)).expect("new task").clone();
    assert_eq!(
        env_of(&w.driver, &new_id).iter().find(|(k, _)| k == "DEMO_VERSION").map(|(_, v)| v.as_str()),
        Some("v2")
    );
    assert_eq!(
        rule_routes(&w.table())[0].1,
        vec![100, 0],
        "traffic stays on the live revision while the new one is checked"
    );
    let idle = match w.table().rules[0].actions.first() {
        Some(RuleAction::Forward { target_groups, .. }) => target_groups[1].target_group.clone(),
        _ => panic!("forward"),
    };
    let in_idle: Vec<String> =
        w.table().target_group(&idle).map(|g| g.targets.iter().map(|t| t.id.clone()).collect()).unwrap_or_default();
    assert_eq!(in_idle.len(), 1, "the new revision's task registers in the idle group");
    assert!(in_idle[0].ends_with(&new_id));

    // The proxy finds the new task healthy: traffic shifts, the old task drains but is not stopped while
    // requests are in flight.
    w.report_all(TargetHealth::Healthy, 1);
    w.settle().await;
    assert_eq!(rule_routes(&w.table())[0].1, vec![0, 100], "the new revision is live: the weights flipped");
    assert_eq!(w.driver.running_ids().len(), 2, "the old task drains with requests in flight");
    w.report_all(TargetHealth::Healthy, 0);
    w.settle().await;
    assert_eq!(w.driver.running_ids(), vec![new_id.clone()], "drained, then stopped");

    // Delete: the host disappears at once, the task drains and stops, the service becomes INACTIVE.
    w.call(Operation::DeleteExpressGatewayService(DeleteExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
    }))
    .await
    .expect("delete");
    w.settle().await;
    assert!(w.table().rules.is_empty(), "the endpoint's rule is gone at once");
    w.report_all(TargetHealth::Healthy, 0);
    w.settle().await;
    w.report_all(TargetHealth::Healthy, 0);
    w.settle().await;
    assert!(w.driver.running_ids().is_empty());
    let Ok(Output::DescribeExpressGatewayService(d)) = w
        .call(Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(arn.clone()),
            include: None,
        }))
        .await
    else {
        panic!("describe")
    };
    let status = d.service.and_then(|s| s.status).and_then(|s| s.status_code);
    assert_eq!(status, Some(ExpressGatewayServiceStatusCode::Inactive));

    // The name is free again at once.
    let again = w.create("web", &[]).await;
    assert_eq!(again, arn, "same ARN, new service");
}

#[tokio::test]
async fn a_crashing_task_is_replaced_with_backoff() {
    let w = world("crash").await;
    w.create("crashy", &[]).await;
    w.settle().await;
    let first = w.driver.running_ids();
    assert_eq!(first.len(), 1);
    w.driver.exit_task(&first[0], 3);
    w.control.reconcile_once().await.expect("pass");
    // The exit is recorded with ECS's reason and exit code; the replacement waits for the backoff.
    let Ok(Output::ListTasks(stopped)) = w
        .call(Operation::ListTasks(ListTasksRequest {
            desired_status: Some(DesiredStatus::Stopped),
            ..Default::default()
        }))
        .await
    else {
        panic!("list")
    };
    let arns = stopped.task_arns.unwrap_or_default();
    assert_eq!(arns.len(), 1);
    let Ok(Output::DescribeTasks(d)) =
        w.call(Operation::DescribeTasks(DescribeTasksRequest { tasks: Some(arns), ..Default::default() })).await
    else {
        panic!("describe")
    };
    let task = &d.tasks.unwrap_or_default()[0];
    assert_eq!(task.last_status.as_deref(), Some("STOPPED"));
    assert_eq!(task.stop_code, Some(TaskStopCode::EssentialContainerExited));
    assert_eq!(task.stopped_reason.as_deref(), Some("Essential container in task exited"));
    assert_eq!(task.containers.as_ref().and_then(|c| c[0].exit_code), Some(3));
    w.settle().await;
    assert!(w.driver.running_ids().is_empty(), "no replacement before the backoff");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    w.settle().await;
    assert_eq!(w.driver.running_ids().len(), 1, "replaced after the backoff");
}

#[tokio::test]
async fn a_missing_image_stops_tasks_with_a_pull_error_and_keeps_the_service() {
    let w = world("pull").await;
    w.driver.fail_pulls_of("berth-demo:latest");
    let arn = w.create("nopull", &[]).await;
    w.settle().await;
    let Ok(Output::ListTasks(stopped)) = w
        .call(Operation::ListTasks(ListTasksRequest {
            desired_status: Some(DesiredStatus::Stopped),
            ..Default::default()
        }))
        .await
    else {
        panic!("list")
    };
    let Ok(Output::DescribeTasks(d)) =
        w.call(Operation::DescribeTasks(DescribeTasksRequest { tasks: stopped.task_arns, ..Default::default() })).await
    else {
        panic!("describe")
    };
    let tasks = d.tasks.unwrap_or_default();
    assert!(!tasks.is_empty());
    assert!(tasks[0].stopped_reason.as_deref().unwrap_or_default().starts_with("CannotPullContainerError"));
    assert_eq!(tasks[0].stop_code, Some(TaskStopCode::TaskFailedToStart));
    let Ok(Output::DescribeExpressGatewayService(s)) = w
        .call(Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(arn),
            include: None,
        }))
        .await
    else {
        panic!("describe service")
    };
    assert_eq!(
        s.service.and_then(|s| s.status).and_then(|s| s.status_code),
        Some(ExpressGatewayServiceStatusCode::Active)
    );
}

#[tokio::test]
async fn a_restarted_server_adopts_running_tasks_without_duplicates() {
    let mut w = world("adopt").await;
    w.create("keep", &[]).await;
    w.settle().await;
    let before = w.driver.running_ids();
    let table_before = w.table();
    w.restart();
    assert!(w.table().version >= table_before.version, "versions never go back");
    assert_eq!(w.table().rules, table_before.rules, "the same routes are published before any pass");
    assert_eq!(w.table().target_groups, table_before.target_groups);
    w.settle().await;
    assert_eq!(w.driver.running_ids(), before, "adopted, not duplicated");
    assert_eq!(w.driver.started().len(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing() {
    let w = world("bad").await;
    let account = w.control.account_id().to_string();
    let base = CreateExpressGatewayServiceRequest {
        service_name: Some("x".into()),
        infrastructure_role_arn: Some(format!("arn:aws:iam::{account}:role/infra")),
        execution_role_arn: Some(format!("arn:aws:iam::{account}:role/exec")),
        primary_container: Some(container(&[])),
        ..Default::default()
    };
    let cases: Vec<(CreateExpressGatewayServiceRequest, ErrorCode, &str)> = vec![
        (
            CreateExpressGatewayServiceRequest { cpu: Some("256".into()), memory: Some("4096".into()), ..base.clone() },
            ErrorCode::InvalidParameter,
            "between 512 and 2048",
        ),
        (
            CreateExpressGatewayServiceRequest { infrastructure_role_arn: Some("role/infra".into()), ..base.clone() },
            ErrorCode::InvalidParameter,
            "infrastructureRoleArn",
        ),
        (
            CreateExpressGatewayServiceRequest {
                execution_role_arn: Some("arn:aws:s3:::bucket".into()),
                ..base.clone()
            },
            ErrorCode::InvalidParameter,
            "executionRoleArn",
        ),
        (
            CreateExpressGatewayServiceRequest { primary_container: None, ..base.clone() },
            ErrorCode::InvalidParameter,
            "primaryContainer",
        ),
        (
            CreateExpressGatewayServiceRequest { service_name: Some("no spaces".into()), ..base.clone() },
            ErrorCode::InvalidParameter,
            "serviceName",
        ),
        (
            CreateExpressGatewayServiceRequest { health_check_path: Some("ping".into()), ..base.clone() },
            ErrorCode::InvalidParameter,
            "healthCheckPath",
        ),
        (
            CreateExpressGatewayServiceRequest { cluster: Some("nope".into()), ..base.clone() },
            ErrorCode::ClusterNotFound,
            "nope",
        ),
    ];
    for (req, code, text) in cases {
        let e = w.call(Operation::CreateExpressGatewayService(req)).await.expect_err(text);
        assert_eq!(e.code, code, "{text}: {e}");
        assert!(e.message.contains(text), "{text}: {}", e.message);
    }
    let Ok(Output::ListClusters(l)) = w.call(Operation::ListClusters(ListClustersRequest::default())).await else {
        panic!("list")
    };
    assert!(l.cluster_arns.unwrap_or_default().is_empty(), "nothing was created, not even the default cluster");
    assert!(w.driver.started().is_empty());
    let e = w
        .call(Operation::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
            service_arn: Some(format!("arn:aws:ecs:us-east-1:{account}:service/default/ghost")),
            ..Default::default()
        }))
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::ServiceNotFound);
    // Describe's model names a missing service ResourceNotFoundException.
    let e = w
        .call(Operation::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(format!("arn:aws:ecs:us-east-1:{account}:service/default/ghost")),
            ..Default::default()
        }))
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    // Tags of a missing resource: TagResource's model lists ResourceNotFoundException, ListTagsForResource's
    // does not (an invalid parameter there).
    let ghost = format!("arn:aws:ecs:us-east-1:{account}:service/default/ghost");
    let e = w
        .call(Operation::TagResource(TagResourceRequest {
            resource_arn: Some(ghost.clone()),
            tags: Some(vec![Tag { key: Some("k".into()), value: Some("v".into()) }]),
        }))
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::ResourceNotFound);
    let e = w
        .call(Operation::ListTagsForResource(ListTagsForResourceRequest { resource_arn: Some(ghost) }))
        .await
        .expect_err("unknown");
    assert_eq!(e.code, ErrorCode::InvalidParameter);
}
