//! Containers' output in CloudWatch Logs over the in-memory driver: Express creates the log group as the
//! infrastructure role, the task's stream is prepared as the execution role at launch (ECS's
//! `ResourceInitializationError` when it cannot be), and a shipper per task appends its output in order,
//! resumes after a restart without duplicates, drains before the container is removed, and drops batches the
//! execution role may no longer put. The store is read through a second handle on the same database (the Logs
//! API is logs-api's part).

use std::time::Duration;

use berth_control::{ControlConfig, ControlError};
use berth_core::{AwsError, ErrorCode};
use berth_model::ecs::{self, ExpressGatewayContainer, ExpressGatewayServiceAwsLogsConfiguration};
use berth_model::iam::{self, Operation as Iam};
use berth_runtime::{DriverError, OutputStream};
use berth_store::{LogEventRange, Store};

mod common;

use common::Harness;

/// A fresh world with the documentation's Express roles; stopped containers are drained without delay.
async fn world(name: &str) -> Harness {
    let config = ControlConfig { drain_timeout: Duration::ZERO, ..ControlConfig::default() };
    let w = Harness::new(&format!("logging-{name}"), |_| config);
    w.create_express_roles().await;
    w
}

impl Harness {
    fn store(&self) -> Store {
        Store::open(&self.dir.join("berth.db")).expect("store")
    }

    async fn ecs(&self, op: ecs::Operation) -> Result<ecs::Output, AwsError> {
        self.control.handle_ecs(&self.caller, op).await
    }

    async fn iam(&self, op: Iam) {
        self.control.handle_iam(&self.caller, op).await.expect("iam call");
    }

    async fn create(
        &self,
        name: &str,
        infra: &str,
        exec: &str,
        logs: Option<(&str, &str)>,
    ) -> Result<ecs::ECSExpressGatewayService, AwsError> {
        let out = self
            .ecs(ecs::Operation::CreateExpressGatewayService(ecs::CreateExpressGatewayServiceRequest {
                service_name: Some(name.into()),
                infrastructure_role_arn: Some(self.role_arn(infra)),
                execution_role_arn: Some(self.role_arn(exec)),
                primary_container: Some(ExpressGatewayContainer {
                    image: Some("berth-demo:latest".into()),
                    aws_logs_configuration: logs.map(|(g, p)| ExpressGatewayServiceAwsLogsConfiguration {
                        log_group: Some(g.into()),
                        log_stream_prefix: Some(p.into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .await?;
        let ecs::Output::CreateExpressGatewayService(r) = out else { panic!("wrong output") };
        Ok(r.service.expect("service"))
    }

    /// The log group the service's current revision names.
    fn group_of(service: &ecs::ECSExpressGatewayService) -> (String, String) {
        let cfg = service
            .active_configurations
            .as_ref()
            .and_then(|a| a.last())
            .and_then(|c| c.primary_container.as_ref())
            .and_then(|p| p.aws_logs_configuration.clone())
            .expect("awsLogsConfiguration");
        (cfg.log_group.expect("group"), cfg.log_stream_prefix.expect("prefix"))
    }

    /// The one running task, after settling.
    async fn running_task(&self) -> String {
        for _ in 0..50 {
            self.settle().await;
            let ids = self.driver.running_ids();
            if ids.len() == 1 {
                return ids[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no single running task: {:?}", self.driver.running_ids())
    }

    fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.store()
            .tx(|tx| tx.log_events_read(group, stream, &LogEventRange { limit: 10_000, ..Default::default() }))
            .expect("read")
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    /// Waits (bounded) until the stream holds `n` events; returns them.
    async fn wait_messages(&self, group: &str, stream: &str, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let got = self.messages(group, stream);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.messages(group, stream)
    }

    async fn stopped_reasons(&self) -> Vec<String> {
        self.stopped_tasks().await.into_iter().filter_map(|t| t.stopped_reason).collect()
    }

    async fn wait_stopped_reason(&self) -> String {
        for _ in 0..50 {
            self.settle().await;
            if let Some(r) = self.stopped_reasons().await.into_iter().next() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no task stopped")
    }

    /// A role trusting ecs-tasks.amazonaws.com with `inline` as its only policy.
    async fn exec_role_with(&self, name: &str, inline: &str) {
        common::create_role(&self.control, &self.caller, name, "ecs-tasks.amazonaws.com", None).await;
        self.iam(Iam::PutRolePolicy(iam::PutRolePolicyRequest {
            role_name: Some(name.into()),
            policy_name: Some("inline".into()),
            policy_document: Some(inline.into()),
        }))
        .await;
    }
}

fn allow(actions: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{actions}],"Resource":"*"}}]}}"#)
}

#[tokio::test]
async fn output_reaches_the_stream_in_order() {
    let w = world("order").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, prefix) = Harness::group_of(&service);
    assert!(group.starts_with("/aws/ecs/default/web-") && group.len() == "/aws/ecs/default/web-".len() + 4, "{group}");
    assert_eq!(prefix, "ecs");
    // Express created the group, tagged as its own, never expiring.
    let (row, tags) = w
        .store()
        .tx(|tx| {
            Ok::<_, berth_store::StoreError>((
                tx.log_group_get(&group)?,
                tx.tags_get(&format!("arn:aws:logs:us-east-1:{}:log-group:{group}", w.control.account_id()))?,
            ))
        })
        .expect("read");
    let row = row.expect("group exists");
    assert_eq!(row.retention_days, None);
    assert_eq!(tags, vec![("AmazonECSManaged".to_string(), "true".to_string())]);

    let task = w.running_task().await;
    let stream = format!("ecs/Main/{task}");
    let lines: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
    for (i, l) in lines.iter().enumerate() {
        let s = if i % 3 == 0 { OutputStream::Stderr } else { OutputStream::Stdout };
        w.driver.write_output(&task, s, l);
    }
    assert_eq!(w.wait_messages(&group, &stream, lines.len()).await, lines);

    // The task definition shows the awslogs configuration.
    let td = service.active_configurations.as_ref().and_then(|a| a.last()).and_then(|c| c.task_definition_arn.clone());
    let Ok(ecs::Output::DescribeTaskDefinition(d)) = w
        .ecs(ecs::Operation::DescribeTaskDefinition(ecs::DescribeTaskDefinitionRequest {
            task_definition: td,
            ..Default::default()
        }))
        .await
    else {
        panic!("describe task definition")
    };
    let lc = d
        .task_definition
        .and_then(|t| t.container_definitions)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.log_configuration)
        .expect("logConfiguration");
    assert_eq!(lc.log_driver, Some(ecs::LogDriver::Awslogs));
    let options = lc.options.unwrap_or_default();
    assert_eq!(options.get("awslogs-group"), Some(&group));
    assert_eq!(options.get("awslogs-region").map(String::as_str), Some("us-east-1"));
    assert_eq!(options.get("awslogs-stream-prefix").map(String::as_str), Some("ecs"));
    assert_eq!(options.get("mode").map(String::as_str), Some("non-blocking"));
}

#[tokio::test]
async fn a_restart_resumes_without_duplicates_or_gaps() {
    let mut w = world("restart").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    let stream = format!("ecs/Main/{task}");
    // Two lines share one instant: the cursor must count them.
    let t0 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).expect("clock")
            - 60_000_000_000;
    w.driver.write_output_at(&task, t0, OutputStream::Stdout, "a");
    w.driver.write_output_at(&task, t0 + 1, OutputStream::Stdout, "b1");
    w.driver.write_output_at(&task, t0 + 1, OutputStream::Stdout, "b2");
    assert_eq!(w.wait_messages(&group, &stream, 3).await, ["a", "b1", "b2"]);

    w.restart();
    // Written while the "old server" is gone: one more line at the cursor's instant, then later ones.
    w.driver.write_output_at(&task, t0 + 1, OutputStream::Stderr, "b3");
    w.driver.write_output_at(&task, t0 + 2, OutputStream::Stdout, "c");
    w.settle().await;
    w.driver.write_output_at(&task, t0 + 3, OutputStream::Stdout, "d");
    let got = w.wait_messages(&group, &stream, 6).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(w.messages(&group, &stream), got);
    assert_eq!(got, ["a", "b1", "b2", "b3", "c", "d"]);
}

#[tokio::test]
async fn output_is_drained_before_the_container_goes() {
    let w = world("drain").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    let stream = format!("ecs/Main/{task}");
    // A slow reader: the shipper gets nothing until released.
    w.driver.hold_output();
    w.driver.write_output(&task, OutputStream::Stdout, "first");
    w.driver.write_output(&task, OutputStream::Stderr, "last words");
    w.driver.exit_task(&task, 1);
    w.settle().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.settle().await;
    assert!(w.driver.has_container(&task), "removed before its output was shipped");
    w.driver.release_output();
    for _ in 0..50 {
        w.settle().await;
        if !w.driver.has_container(&task) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!w.driver.has_container(&task), "the exited container is removed");
    // Removed only after its output was shipped: both lines are there.
    assert_eq!(w.messages(&group, &stream), ["first", "last words"]);
}

#[tokio::test]
async fn a_stopped_task_is_halted_drained_then_removed() {
    let w = world("stoptask").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    w.driver.hold_output();
    w.driver.write_output(&task, OutputStream::Stdout, "before the stop");
    w.ecs(ecs::Operation::StopTask(ecs::StopTaskRequest {
        cluster: Some("default".into()),
        task: Some(task.clone()),
        reason: Some("test".into()),
    }))
    .await
    .expect("stop task");
    for _ in 0..50 {
        w.settle().await;
        if w.driver.halts() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(w.driver.halts() > 0, "the container is halted, not removed");
    assert!(w.driver.has_container(&task), "kept until its output is shipped");
    w.driver.release_output();
    for _ in 0..100 {
        w.settle().await;
        if !w.driver.has_container(&task) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!w.driver.has_container(&task));
    assert_eq!(w.messages(&group, &format!("ecs/Main/{task}")), ["before the stop"]);
}

#[tokio::test]
async fn an_execution_role_without_logs_permissions_stops_the_task() {
    let w = world("denied").await;
    w.exec_role_with("nologs", &allow(r#""ecr:GetAuthorizationToken""#)).await;
    let service = w.create("web", "infra", "nologs", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let reason = w.wait_stopped_reason().await;
    assert!(
        reason.starts_with("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: AccessDeniedException: User: arn:aws:sts::"),
        "{reason}"
    );
    assert!(reason.contains("assumed-role/nologs/"), "{reason}");
    assert!(reason.contains(&format!("not authorized to perform: logs:CreateLogStream on resource: arn:aws:logs:us-east-1:{}:log-group:{group}:log-stream:ecs/Main/", w.control.account_id())), "{reason}");
    assert!(reason.ends_with(": exit status 1"), "{reason}");
    assert!(w.driver.started().is_empty(), "no container was created");
    // No stream was created either.
    assert!(w.store().tx(|tx| tx.log_streams_of(&group)).expect("read").is_empty());
}

#[tokio::test]
async fn a_deleted_group_stops_new_tasks() {
    let w = world("nogroup").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    // The user deletes the group (DeleteLogGroup), then the task dies and is replaced.
    assert!(w.store().tx(|tx| tx.log_group_delete(&group)).expect("delete"));
    w.driver.exit_task(&task, 1);
    let mut reasons = Vec::new();
    for _ in 0..100 {
        w.settle().await;
        reasons = w.stopped_reasons().await;
        if reasons.iter().any(|r| r.contains("ResourceNotFoundException")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reasons.iter().any(|r| r == "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn put_denied_later_drops_batches() {
    let w = world("putdenied").await;
    w.exec_role_with("logger", &allow(r#""logs:CreateLogStream","logs:PutLogEvents""#)).await;
    let service = w.create("web", "infra", "logger", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    let stream = format!("ecs/Main/{task}");
    // PutLogEvents' rules apply: a line stamped 15 days ago is rejected as too old (and counted).
    let old_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).expect("clock")
            - 15 * 86_400 * 1_000_000_000;
    w.driver.write_output_at(&task, old_ns, OutputStream::Stdout, "too old");
    w.driver.write_output(&task, OutputStream::Stdout, "kept");
    assert_eq!(w.wait_messages(&group, &stream, 1).await, ["kept"]);
    assert_eq!(w.control.log_lines_dropped(&task), 1);
    w.exec_role_with("logger", &allow(r#""logs:CreateLogStream""#)).await;
    w.driver.write_output(&task, OutputStream::Stdout, "lost 1");
    w.driver.write_output(&task, OutputStream::Stdout, "lost 2");
    for _ in 0..200 {
        if w.control.log_lines_dropped(&task) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(w.control.log_lines_dropped(&task), 3);
    assert_eq!(w.messages(&group, &stream), ["kept"]);
}

#[tokio::test]
async fn an_infrastructure_role_without_create_log_group_fails_the_create() {
    let w = world("infra").await;
    common::create_role(
        &w.control,
        &w.caller,
        "infra-nologs",
        "ecs.amazonaws.com",
        Some("AmazonECSInfrastructureRoleforExpressGatewayServices"),
    )
    .await;
    w.iam(Iam::PutRolePolicy(iam::PutRolePolicyRequest {
        role_name: Some("infra-nologs".into()),
        policy_name: Some("deny".into()),
        policy_document: Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"logs:CreateLogGroup","Resource":"*"}]}"#
                .into(),
        ),
    }))
    .await;
    let err = w.create("web", "infra-nologs", "exec", None).await.expect_err("denied");
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(err.message.contains("logs:CreateLogGroup"), "{}", err.message);
    assert!(err.message.contains("assumed-role/infra-nologs/ECSGateway"), "{}", err.message);
    // Nothing is left: no service, no group.
    let groups = w.store().tx(|tx| tx.log_groups_all()).expect("read");
    assert!(groups.is_empty(), "{groups:?}");
    // (Even the default cluster the create would have made is gone.)
    match w.ecs(ecs::Operation::ListServices(ecs::ListServicesRequest::default())).await {
        Ok(ecs::Output::ListServices(l)) => assert!(l.service_arns.unwrap_or_default().is_empty()),
        Err(e) => assert_eq!(e.code, ErrorCode::ClusterNotFound),
        Ok(other) => panic!("{other:?}"),
    }
    // The same role with the permission creates the group.
    w.iam(Iam::DeleteRolePolicy(iam::DeleteRolePolicyRequest {
        role_name: Some("infra-nologs".into()),
        policy_name: Some("deny".into()),
    }))
    .await;
    let service = w.create("web", "infra-nologs", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    assert!(w.store().tx(|tx| tx.log_group_get(&group)).expect("read").is_some());
}

#[tokio::test]
async fn the_group_outlives_the_service_and_names_can_be_chosen() {
    let w = world("keep").await;
    let bad = w.create("web", "infra", "exec", Some(("bad group", "ecs"))).await.expect_err("invalid");
    assert_eq!(bad.code, ErrorCode::InvalidParameter);
    let bad = w.create("web", "infra", "exec", Some(("/custom/web", "a:b"))).await.expect_err("invalid");
    assert_eq!(bad.code, ErrorCode::InvalidParameter);

    let service = w.create("web", "infra", "exec", Some(("/custom/web", "app"))).await.expect("create");
    assert_eq!(Harness::group_of(&service), ("/custom/web".to_string(), "app".to_string()));
    let arn = service.service_arn.clone().expect("arn");
    let task = w.running_task().await;
    w.driver.write_output(&task, OutputStream::Stdout, "v1 says hi");
    assert_eq!(w.wait_messages("/custom/web", &format!("app/Main/{task}"), 1).await, ["v1 says hi"]);

    // An update with a new primaryContainer but no awsLogsConfiguration keeps the group; one naming another
    // group moves new tasks there and leaves the old logs where they are.
    let update = |logs: Option<(&str, &str)>| ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
        primary_container: Some(ExpressGatewayContainer {
            image: Some("berth-demo:v2".into()),
            aws_logs_configuration: logs.map(|(g, p)| ExpressGatewayServiceAwsLogsConfiguration {
                log_group: Some(g.into()),
                log_stream_prefix: Some(p.into()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let Ok(ecs::Output::UpdateExpressGatewayService(u)) =
        w.ecs(ecs::Operation::UpdateExpressGatewayService(update(None))).await
    else {
        panic!("update")
    };
    let target = u.service.and_then(|s| s.target_configuration).and_then(|c| c.primary_container);
    let kept = target.and_then(|p| p.aws_logs_configuration).and_then(|l| l.log_group);
    assert_eq!(kept.as_deref(), Some("/custom/web"));
    w.ecs(ecs::Operation::UpdateExpressGatewayService(update(Some(("/custom/web-v3", "ecs"))))).await.expect("update");
    assert!(w.store().tx(|tx| tx.log_group_get("/custom/web-v3")).expect("read").is_some());

    // Deleting the service keeps every group and its events.
    w.ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
    }))
    .await
    .expect("delete");
    for _ in 0..50 {
        w.settle().await;
        if w.driver.running_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.settle().await;
    assert!(w.driver.running_ids().is_empty());
    assert!(w.store().tx(|tx| tx.log_group_get("/custom/web")).expect("read").is_some());
    assert!(w.store().tx(|tx| tx.log_group_get("/custom/web-v3")).expect("read").is_some());
    assert_eq!(w.messages("/custom/web", &format!("app/Main/{task}")), ["v1 says hi"]);
    // A new service may log to the same (kept) group.
    w.create("web2", "infra", "exec", Some(("/custom/web", "app"))).await.expect("reuse the group");
}

/// A Docker restart under live-restore, over the memory driver: while its daemon is stopped every runtime call
/// fails and the followers end early (as the Engine closes its log streams), but the container runs on and keeps
/// writing. No pass records the task as gone or starts another, and every line reaches the stream exactly once.
#[tokio::test]
async fn a_daemon_restart_replaces_no_task_and_ships_every_line_once() {
    let w = world("daemon").await;
    let service = w.create("web", "infra", "exec", None).await.expect("create");
    let (group, _) = Harness::group_of(&service);
    let task = w.running_task().await;
    let stream = format!("ecs/Main/{task}");
    let starts = w.driver.started().len();
    let mut want = Vec::new();
    let mut write = |line: String| {
        w.driver.write_output(&task, OutputStream::Stdout, &line);
        want.push(line);
    };
    for i in 0..5 {
        write(format!("before {i}"));
    }
    assert_eq!(w.wait_messages(&group, &stream, 5).await.len(), 5);

    w.driver.stop_daemon();
    for i in 0..5 {
        write(format!("while the daemon is away {i}"));
        let pass = w.control.reconcile_once().await;
        assert!(
            matches!(pass, Err(ControlError::Runtime(DriverError::Unavailable(_)))),
            "a pass without the runtime ends early: {pass:?}"
        );
        // The shipper tries to follow again meanwhile, and fails.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    w.driver.start_daemon();
    for i in 0..5 {
        write(format!("after {i}"));
    }
    w.settle().await;
    let shipped = w.wait_messages(&group, &stream, want.len()).await;
    assert_eq!(shipped, want);
    // Nothing more arrives later (no line shipped twice by a shipper following again).
    tokio::time::sleep(Duration::from_millis(700)).await;
    w.settle().await;
    assert_eq!(w.messages(&group, &stream), want);

    assert_eq!(w.driver.running_ids(), vec![task.clone()], "the same container runs");
    assert_eq!(w.driver.started().len(), starts, "no task was started");
    assert_eq!(w.stopped_reasons().await, Vec::<String>::new(), "no task was stopped");
    let rows = w.store().tx(|tx| tx.tasks_not_stopped()).expect("tasks");
    assert_eq!(
        rows.iter().map(|t| (t.id.as_str(), t.last_status.as_str())).collect::<Vec<_>>(),
        [(task.as_str(), "RUNNING")]
    );
    assert_eq!(w.control.log_lines_dropped(&task), 0);
}
