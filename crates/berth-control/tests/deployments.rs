//! Deployments end to end over the in-memory driver: the Express canary's weights on the Express rule and on a
//! user's rule, rollback by alarm with exactly 100/0, tasks that cannot start failing fast, supersede, a
//! restart mid-bake with an honest bake clock, StopServiceDeployment and ContinueServiceDeployment as the API
//! writes them into the row, ROLLING in one group, LINEAR steps, BLUE_GREEN's test rule. Passes and proxy
//! reports are driven explicitly; bakes are real seconds (short ones).

use std::time::Duration;

use berth_control::deployment::{Progress, Settings};
use berth_control::{ControlConfig, DeployDefaults};
use berth_model::cloudwatch as cw;
use berth_model::ecs::*;
use berth_model::elbv2::{self as elb, Operation as E};
use berth_routes::{Condition, RouteTable, RuleAction, TargetHealth};
use berth_store::{DeploymentRow, ServiceRow, Store, Tx};

mod common;

use common::Harness;

async fn world(name: &str, canary_bake_secs: u64, bake_secs: u64) -> Harness {
    let w = Harness::new(&format!("deploy-{name}"), |_| ControlConfig {
        drain_timeout: Duration::from_secs(30),
        deploy: DeployDefaults { canary_percent: 5.0, canary_bake_secs, bake_secs },
        ..ControlConfig::default()
    });
    w.create_express_roles().await;
    w
}

fn container(version: &str, image: &str) -> ExpressGatewayContainer {
    ExpressGatewayContainer {
        image: Some(image.into()),
        environment: Some(vec![KeyValuePair { name: Some("DEMO_VERSION".into()), value: Some(version.into()) }]),
        ..Default::default()
    }
}

impl Harness {
    fn store(&self) -> Store {
        Store::open(&self.dir.join("berth.db")).expect("store")
    }

    /// One transaction on the server's store (a second connection, as another process would open it).
    fn db<T>(&self, f: impl FnOnce(&Tx<'_>) -> berth_store::Result<T>) -> T {
        self.store().tx(f).expect("store")
    }

    fn service(&self, arn: &str) -> ServiceRow {
        self.db(|tx| tx.service_by_arn(arn)).expect("service")
    }

    /// The service's deployments, newest first.
    fn deployments(&self, arn: &str) -> Vec<DeploymentRow> {
        let id = self.service(arn).id;
        self.db(|tx| tx.deployments_of(id))
    }

    fn events(&self, arn: &str) -> Vec<String> {
        let id = self.service(arn).id;
        let mut e: Vec<String> = self.db(|tx| tx.events(id)).into_iter().map(|e| e.2).collect();
        e.reverse();
        e
    }

    /// Rewrites the service's newest deployment as `f` says (what StopServiceDeployment and
    /// ContinueServiceDeployment write).
    fn edit_deployment(&self, arn: &str, f: impl FnOnce(&mut DeploymentRow, &mut Progress)) {
        let mut d = self.deployments(arn).remove(0);
        let mut p = Progress::parse(&d.progress).expect("progress");
        f(&mut d, &mut p);
        d.progress = p.to_json();
        self.db(|tx| tx.deployment_update(&d));
    }

    fn put_settings(&self, arn: &str, s: &Settings) {
        let id = self.service(arn).id;
        self.db(|tx| tx.deployment_settings_put(id, &s.to_json()));
    }

    async fn create(&self, name: &str) -> String {
        let request = CreateExpressGatewayServiceRequest {
            primary_container: Some(container("v1", "berth-demo:latest")),
            ..common::named(name)
        };
        self.create_service(request).await.expect("create").service_arn.expect("arn")
    }

    async fn update(&self, arn: &str, version: &str, image: &str) {
        let op = Operation::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            primary_container: Some(container(version, image)),
            ..Default::default()
        });
        self.control.handle_ecs(&self.caller, op).await.expect("update");
    }

    /// Passes with a proxy reporting every target healthy in between.
    async fn drive(&self, rounds: usize) {
        for _ in 0..rounds {
            self.report_as_proxy(TargetHealth::Healthy, 0);
            self.settle().await;
        }
    }

    /// A created service, settled with its first revision healthy and its first deployment complete.
    async fn running(&self, name: &str) -> String {
        let arn = self.create(name).await;
        self.drive(3).await;
        let d = self.deployments(&arn);
        assert_eq!(d.len(), 1, "a create is a first deployment");
        assert_eq!(d[0].status, "SUCCESSFUL");
        assert_eq!(d[0].source_revision, None);
        arn
    }

    /// A user's rule for `host` forwarding to the service's live group.
    async fn user_rule(&self, arn: &str, host: &str) -> String {
        let service = self.service(arn);
        let p = self.db(|tx| tx.placement_get(service.id)).expect("placement");
        let live =
            self.db(|tx| tx.revision_group(service.live_revision.as_deref().unwrap_or_default())).expect("group");
        let listener = self.https_listener(&p.load_balancer_arn).await;
        let out = self
            .elb(E::CreateRule(elb::CreateRuleInput {
                listener_arn: Some(listener),
                priority: Some(400),
                conditions: Some(vec![elb::RuleCondition {
                    field: Some("host-header".into()),
                    values: Some(vec![host.into()]),
                    ..Default::default()
                }]),
                actions: Some(vec![elb::Action {
                    r#type: Some(elb::ActionTypeEnum::Forward),
                    target_group_arn: Some(live),
                    ..Default::default()
                }]),
                ..Default::default()
            }))
            .await
            .expect("create rule");
        let elb::Output::CreateRule(r) = out else { panic!("create rule") };
        r.rules.unwrap_or_default()[0].rule_arn.clone().expect("arn")
    }

    /// The forward weights of the rule for `host` in the published table, in the rule's group order, with the
    /// groups named by the revision that uses them ("old" for the source, "new" for the target).
    fn weights(&self, host: &str) -> Vec<u32> {
        weights_of(&self.table(), host)
    }
}

fn weights_of(table: &RouteTable, host: &str) -> Vec<u32> {
    table
        .rules
        .iter()
        .find(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::HostHeader { values } if values.iter().any(|v| v == host)))
        })
        .and_then(|r| match r.actions.first() {
            Some(RuleAction::Forward { target_groups, .. }) => Some(target_groups.iter().map(|g| g.weight).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The target groups of a deployment's (source, target) revisions.
fn groups_of(w: &Harness, d: &DeploymentRow) -> (Option<String>, Option<String>) {
    w.store()
        .tx(|tx| {
            Ok::<_, berth_store::StoreError>((
                tx.revision_group(d.source_revision.as_deref().unwrap_or_default())?,
                tx.revision_group(&d.target_revision)?,
            ))
        })
        .expect("read")
}

/// The source and target revisions' weights on the rule for `host`: (source, target).
fn split(w: &Harness, arn: &str, host: &str) -> (u32, u32) {
    let d = w.deployments(arn).remove(0);
    let groups = groups_of(w, &d);
    let table = w.table();
    let rule = table
        .rules
        .iter()
        .find(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::HostHeader { values } if values.iter().any(|v| v == host)))
        })
        .expect("rule");
    let Some(RuleAction::Forward { target_groups, .. }) = rule.actions.first() else { panic!("forward") };
    let of = |g: &Option<String>| {
        target_groups.iter().find(|t| Some(&t.target_group) == g.as_ref()).map(|t| t.weight).unwrap_or(0)
    };
    (of(&groups.0), of(&groups.1))
}

fn endpoint_host(w: &Harness, arn: &str) -> String {
    w.service(arn).endpoint_host
}

#[tokio::test]
async fn a_canary_moves_every_rule_95_5_then_0_100_and_completes() {
    let w = world("canary", 1, 1).await;
    let arn = w.running("web").await;
    let host = endpoint_host(&w, &arn);
    w.user_rule(&arn, "custom.example.test").await;
    w.settle().await;
    assert_eq!(w.weights("custom.example.test"), vec![1], "the user's rule as written");
    w.update(&arn, "v2", "berth-demo:latest").await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "PENDING");
    assert!(d.source_revision.is_some());
    w.settle().await;
    assert_eq!(split(&w, &arn, &host), (100, 0), "nothing moves before the new tasks are healthy");
    w.drive(1).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!((d.status.as_str(), d.stage.as_str()), ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT"));
    assert_eq!(split(&w, &arn, &host), (95, 5), "the Express rule carries the canary");
    assert_eq!(split(&w, &arn, "custom.example.test"), (95, 5), "and so does the user's rule");
    let p = Progress::parse(&d.progress).expect("progress");
    let hook = p.hook.expect("the canary bake shows as a pause hook");
    assert!(hook.hook_id.starts_with("ecs-pause-"));
    assert_eq!((hook.stage.as_str(), hook.status.as_str()), ("PRE_PRODUCTION_TRAFFIC_SHIFT", "AWAITING_ACTION"));
    assert_eq!(hook.timeout_action, "CONTINUE");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.drive(1).await;
    assert_eq!(split(&w, &arn, &host), (0, 100));
    assert_eq!(split(&w, &arn, "custom.example.test"), (0, 100));
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.stage, "BAKE_TIME");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.drive(3).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "SUCCESSFUL", "{d:?}");
    assert_eq!(w.driver.running_ids().len(), 1, "the old task is gone");
    let s = w.service(&arn);
    assert_eq!(s.live_revision.as_deref(), Some(d.target_revision.as_str()));
    let events = w.events(&arn);
    let id = d.arn.rsplit('/').next().expect("id");
    for want in [
        format!("(service web) (deployment {id}) shifted 5% of production traffic to revision"),
        format!("(service web) (deployment {id}) shifted 100% of production traffic to revision"),
        format!("(service web) (deployment {id}) deployment completed."),
    ] {
        assert!(events.iter().any(|e| e.starts_with(&want)), "missing {want:?} in {events:#?}");
    }
    w.drive(1).await;
    assert_eq!(w.events(&arn).last().map(String::as_str), Some("(service web) has reached a steady state."));
}

#[tokio::test]
async fn a_bad_canary_rolls_back_by_alarm_with_exactly_100_0() {
    let w = world("alarm", 60, 60).await;
    let arn = w.running("bad").await;
    let host = endpoint_host(&w, &arn);
    w.user_rule(&arn, "bad.example.test").await;
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(split(&w, &arn, &host), (95, 5));
    let d = w.deployments(&arn).remove(0);
    let config: DeploymentConfiguration = serde_json::from_str(&d.config).expect("config");
    let alarm = config.alarms.and_then(|a| a.alarm_names).expect("alarms")[0].clone();
    assert_eq!(alarm, "default-bad-deployment-rollback", "the service's deployment alarm is watched");
    // The alarm enters ALARM during the canary bake.
    let put = cw::PutMetricAlarmInput {
        alarm_name: Some(alarm.clone()),
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("HTTPCode_Target_5XX_Count".into()),
        statistic: Some(cw::Statistic::Sum),
        period: Some(60),
        evaluation_periods: Some(1),
        threshold: Some(1.0),
        comparison_operator: Some(cw::ComparisonOperator::GreaterThanThreshold),
        ..Default::default()
    };
    w.control.handle_cloudwatch(&w.caller, cw::Operation::PutMetricAlarm(put)).await.expect("alarm");
    let set = cw::SetAlarmStateInput {
        alarm_name: Some(alarm.clone()),
        state_value: Some(cw::StateValue::Alarm),
        state_reason: Some("test".into()),
        state_reason_data: None,
    };
    w.control.handle_cloudwatch(&w.caller, cw::Operation::SetAlarmState(set)).await.expect("set state");
    w.settle().await;
    assert_eq!(split(&w, &arn, &host), (100, 0), "exactly 100/0 at once");
    assert_eq!(split(&w, &arn, "bad.example.test"), (100, 0), "on the user's rule too");
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "ROLLBACK_IN_PROGRESS");
    let p = Progress::parse(&d.progress).expect("progress");
    assert_eq!(p.triggered_alarms, vec![alarm.clone()]);
    w.drive(3).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(d.status_reason.as_deref(), Some(format!("alarm {alarm} in ALARM").as_str()));
    assert_eq!(split(&w, &arn, &host), (100, 0));
    assert_eq!(w.driver.running_ids().len(), 1, "the canary's task is gone");
    let s = w.service(&arn);
    assert_eq!(s.target_revision, d.source_revision.clone().expect("source"), "the service wants the old revision");
    let id = d.arn.rsplit('/').next().expect("id");
    let want = format!("(service bad) (deployment {id}) rolling back: alarm {alarm} in ALARM.");
    assert!(w.events(&arn).contains(&want), "{:#?}", w.events(&arn));
}

#[tokio::test]
async fn tasks_that_cannot_start_fail_fast_and_the_old_revision_keeps_serving() {
    let w = world("pull", 600, 600).await;
    let arn = w.running("nopull").await;
    let host = endpoint_host(&w, &arn);
    w.driver.fail_pulls_of("nope:latest");
    w.update(&arn, "v2", "nope:latest").await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        w.drive(1).await;
        if w.deployments(&arn)[0].status != "IN_PROGRESS" && w.deployments(&arn)[0].status != "PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "ROLLBACK_SUCCESSFUL", "without waiting out a 600 s bake");
    let reason = d.status_reason.unwrap_or_default();
    assert!(reason.starts_with("circuit breaker: 3 tasks failed: CannotPullContainerError"), "{reason}");
    assert_eq!(split(&w, &arn, &host), (100, 0));
    assert_eq!(w.driver.running_ids().len(), 1, "the old task serves on");
}

#[tokio::test]
async fn a_new_update_supersedes_a_canary_in_flight() {
    let w = world("supersede", 60, 60).await;
    let arn = w.running("sup").await;
    let host = endpoint_host(&w, &arn);
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(split(&w, &arn, &host), (95, 5));
    let first = w.deployments(&arn).remove(0);
    w.update(&arn, "v3", "berth-demo:latest").await;
    let all = w.deployments(&arn);
    let (newest, old) = (&all[0], &all[1]);
    assert_eq!(old.arn, first.arn);
    assert_eq!(old.status, "STOPPED");
    let new_id = newest.arn.rsplit('/').next().expect("id");
    assert_eq!(old.status_reason.as_deref(), Some(format!("Superseded by deployment {new_id}.").as_str()));
    assert_eq!(newest.source_revision, first.source_revision, "the revision that served is the new source");
    w.settle().await;
    // The in-flight revision's weight went back in the same transaction; its task drains.
    assert_eq!(split(&w, &arn, &host), (100, 0));
    w.drive(4).await;
    assert_eq!(split(&w, &arn, &host), (95, 5), "the newest revision's canary");
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "IN_PROGRESS");
    let revisions: std::collections::BTreeSet<String> = w
        .db(|tx| tx.tasks_not_stopped())
        .into_iter()
        .filter(|t| t.desired_status == berth_core::status::TaskStatus::Running)
        .filter_map(|t| t.revision_arn)
        .collect();
    assert_eq!(
        revisions,
        [d.source_revision.clone().expect("source"), d.target_revision.clone()].into_iter().collect(),
        "never two half-deployments: only the source and the newest target run"
    );
}

#[tokio::test]
async fn a_restart_mid_bake_resumes_without_counting_the_downtime() {
    let mut w = world("restart", 60, 60).await;
    let arn = w.running("resume").await;
    let host = endpoint_host(&w, &arn);
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(split(&w, &arn, &host), (95, 5));
    // The server was down for ten minutes mid-bake: the last pass that watched it was 600 s ago.
    w.edit_deployment(&arn, |_, p| {
        p.baked_secs = 20.0;
        p.bake_checked_at = p.bake_checked_at.map(|t| t - 600.0);
    });
    w.restart();
    assert_eq!(split(&w, &arn, &host), (95, 5), "traffic never stops: the same routes before any pass");
    w.drive(1).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!((d.status.as_str(), d.stage.as_str()), ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT"));
    let p = Progress::parse(&d.progress).expect("progress");
    assert!(p.baked_secs >= 20.0 && p.baked_secs < 30.0, "the downtime is not counted: {}", p.baked_secs);
    assert!(p.unwatched_secs >= 600.0, "{}", p.unwatched_secs);
    assert_eq!(split(&w, &arn, &host), (95, 5));
    assert!(w.events(&arn).iter().any(|e| e.contains("the bake clock did not count 600 seconds")));
    assert_eq!(w.deployments(&arn).iter().filter(|d| d.status == "IN_PROGRESS").count(), 1);
}

#[tokio::test]
async fn stop_rollback_abort_and_continue_as_the_api_writes_them() {
    let w = world("stop", 60, 60).await;
    let arn = w.running("ctl").await;
    let host = endpoint_host(&w, &arn);
    // ContinueServiceDeployment CONTINUE on the canary bake: promoted at once.
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(split(&w, &arn, &host), (95, 5));
    w.edit_deployment(&arn, |_, p| p.hook.as_mut().expect("hook").status = "SUCCEEDED".into());
    w.settle().await;
    assert_eq!(split(&w, &arn, &host), (0, 100));
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.stage, "BAKE_TIME");
    let p = Progress::parse(&d.progress).expect("progress");
    assert_eq!(p.hooks_done.last().map(|h| h.status.as_str()), Some("SUCCEEDED"));
    // StopServiceDeployment ROLLBACK during the final bake: back at once, the old tasks still run.
    w.edit_deployment(&arn, |d, _| {
        d.status = "ROLLBACK_REQUESTED".into();
        d.status_reason = Some("Rollback requested by the test".into());
    });
    w.settle().await;
    assert_eq!(split(&w, &arn, &host), (100, 0), "instant rollback");
    w.drive(3).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "ROLLBACK_SUCCESSFUL");
    assert_eq!(w.driver.running_ids().len(), 1);
    // StopServiceDeployment ABORT during the canary: traffic back, the deployment ends STOPPED.
    w.update(&arn, "v3", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(split(&w, &arn, &host), (95, 5));
    w.edit_deployment(&arn, |d, _| d.status = "STOP_REQUESTED".into());
    w.settle().await;
    assert_eq!(split(&w, &arn, &host), (100, 0));
    w.drive(3).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "STOPPED");
    assert!(d.stopped_at.is_some());
    assert_eq!(w.driver.running_ids().len(), 1);
}

#[tokio::test]
async fn rolling_replaces_tasks_in_the_same_group_within_the_envelope() {
    let w = world("rolling", 0, 0).await;
    let arn = w.running("roll").await;
    let host = endpoint_host(&w, &arn);
    let before = w.weights(&host);
    w.put_settings(
        &arn,
        &Settings {
            configuration: Some(DeploymentConfiguration {
                strategy: Some(DeploymentStrategy::Rolling),
                minimum_healthy_percent: Some(100),
                maximum_percent: Some(200),
                bake_time_in_minutes: Some(0),
                ..Default::default()
            }),
            test_listener_rule: None,
        },
    );
    w.update(&arn, "v2", "berth-demo:latest").await;
    let d = w.deployments(&arn).remove(0);
    let groups = groups_of(&w, &d);
    assert_eq!(groups.0, groups.1, "ROLLING: the new revision goes into the serving group");
    w.settle().await;
    assert_eq!(w.driver.running_ids().len(), 2, "100/200: the new task starts before the old one stops");
    w.drive(4).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "SUCCESSFUL", "{d:?}");
    assert_eq!(w.weights(&host), before, "no weight moved");
    assert_eq!(w.driver.running_ids().len(), 1);
}

#[tokio::test]
async fn linear_steps_then_completes() {
    let w = world("linear", 0, 0).await;
    let arn = w.running("lin").await;
    w.put_settings(
        &arn,
        &Settings {
            configuration: Some(DeploymentConfiguration {
                strategy: Some(DeploymentStrategy::Linear),
                linear_configuration: Some(LinearConfiguration {
                    step_percent: Some(40.0),
                    step_bake_time_in_minutes: Some(0),
                }),
                bake_time_in_minutes: Some(0),
                ..Default::default()
            }),
            test_listener_rule: None,
        },
    );
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(4).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "SUCCESSFUL");
    let id = d.arn.rsplit('/').next().expect("id").to_string();
    let shifts: Vec<String> = w
        .events(&arn)
        .into_iter()
        .filter(|e| e.contains(&id) && e.contains("of production traffic"))
        .map(|e| e.split(" shifted ").nth(1).and_then(|s| s.split(' ').next()).unwrap_or_default().to_string())
        .collect();
    assert_eq!(shifts, vec!["40%", "80%", "100%"], "0 → 40 → 80 → 100 (the last partial step goes to 100)");
}

#[tokio::test]
async fn blue_green_sends_test_traffic_to_green_before_production() {
    let w = world("bluegreen", 0, 0).await;
    let arn = w.running("bg").await;
    let host = endpoint_host(&w, &arn);
    let test_rule = w.user_rule(&arn, "test.bg.example.test").await;
    w.put_settings(
        &arn,
        &Settings {
            configuration: Some(DeploymentConfiguration {
                strategy: Some(DeploymentStrategy::BlueGreen),
                bake_time_in_minutes: Some(0),
                lifecycle_hooks: Some(vec![DeploymentLifecycleHook {
                    target_type: Some(DeploymentLifecycleHookTargetType::Pause),
                    lifecycle_stages: Some(vec![DeploymentLifecycleHookStage::PostTestTrafficShift]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            test_listener_rule: Some(test_rule),
        },
    );
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.stage, "POST_TEST_TRAFFIC_SHIFT");
    assert_eq!(split(&w, &arn, "test.bg.example.test"), (0, 100), "the test rule goes to green");
    assert_eq!(split(&w, &arn, &host), (100, 0), "production stays on blue");
    let p = Progress::parse(&d.progress).expect("progress");
    let hook = p.hook.expect("pause hook");
    assert_eq!((hook.stage.as_str(), hook.timeout_action.as_str()), ("POST_TEST_TRAFFIC_SHIFT", "ROLLBACK"));
    // The approval (ContinueServiceDeployment CONTINUE): production 100% at once.
    w.edit_deployment(&arn, |_, p| p.hook.as_mut().expect("hook").status = "SUCCEEDED".into());
    w.drive(3).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "SUCCESSFUL");
    assert_eq!(split(&w, &arn, &host), (0, 100));
}

#[tokio::test]
async fn a_request_count_policy_follows_the_live_group_after_a_deployment() {
    let w = world("label", 0, 0).await;
    let request = CreateExpressGatewayServiceRequest {
        primary_container: Some(container("v1", "berth-demo:latest")),
        scaling_target: Some(ExpressGatewayScalingTarget {
            auto_scaling_metric: Some(ExpressGatewayServiceScalingMetric::RequestCountPerTarget),
            ..Default::default()
        }),
        ..common::named("req")
    };
    let arn = w.create_service(request).await.expect("create").service_arn.expect("arn");
    w.drive(3).await;
    let label = |w: &Harness| -> String {
        let policies = w.db(|tx| tx.scaling_policies("ecs", Some("service/default/req")));
        assert_eq!(policies.len(), 1);
        let config: serde_json::Value = serde_json::from_str(&policies[0].config).expect("config");
        config["PredefinedMetricSpecification"]["ResourceLabel"].as_str().expect("label").to_string()
    };
    let group_id = |g: &str| g.rsplit_once(':').map(|(_, s)| s.to_string()).expect("group");
    let before = label(&w);
    let d = w.deployments(&arn).remove(0);
    assert!(before.ends_with(&group_id(&groups_of(&w, &d).1.expect("group"))), "{before}");
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(4).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "SUCCESSFUL");
    let (old, new) = groups_of(&w, &d);
    assert_ne!(old, new);
    let after = label(&w);
    assert!(after.ends_with(&group_id(&new.expect("group"))), "the label names the new live group: {after}");
}

#[tokio::test]
async fn deleting_a_service_mid_deployment_stops_the_deployment() {
    let w = world("delete", 60, 60).await;
    let arn = w.running("gone").await;
    w.update(&arn, "v2", "berth-demo:latest").await;
    w.drive(2).await;
    assert_eq!(w.deployments(&arn)[0].status, "IN_PROGRESS");
    let op =
        Operation::DeleteExpressGatewayService(DeleteExpressGatewayServiceRequest { service_arn: Some(arn.clone()) });
    w.control.handle_ecs(&w.caller, op).await.expect("delete");
    // Ended by the deletion itself, before any reconciler pass.
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "STOPPED");
    w.drive(2).await;
    let d = w.deployments(&arn).remove(0);
    assert_eq!(d.status, "STOPPED");
    assert_eq!(d.status_reason.as_deref(), Some("Stopped: the service is being deleted."));
}
