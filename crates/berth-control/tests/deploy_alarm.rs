//! The deployment alarm Express creates for each service, over the in-memory driver: created with the service,
//! tagged `AmazonECSManaged=true` and visible in DescribeAlarms; driven by the proxies' `AWS/ApplicationELB` counts
//! of the service's two target groups (reported as a proxy reports them, then `alarms_tick`), it goes ALARM when
//! at least 2 of 3 periods have more than 1% 4xx + 5xx and stays OK below; it is deleted with the service; a
//! role that may not put it fails the create with nothing left; and the reconciler puts it back when it is gone.

use berth_control::ControlConfig;
use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch::{self as cw, Operation as Cw, Output as CwOut, StateValue};
use berth_model::ecs;
use berth_routes::{Condition, MetricsDelta, ProxyReport, RuleAction, TgDelta};

mod common;

use common::Harness;

const INFRA_POLICY: &str = "AmazonECSInfrastructureRoleforExpressGatewayServices";

async fn world(name: &str) -> Harness {
    let config = ControlConfig { drain_timeout: std::time::Duration::ZERO, ..ControlConfig::default() };
    let w = Harness::new(&format!("deploy-alarm-{name}"), |_| config);
    w.create_express_roles().await;
    w
}

fn alarm_name(service: &str) -> String {
    format!("default-{service}-deployment-rollback")
}

impl Harness {
    async fn cw(&self, op: Cw) -> Result<CwOut, AwsError> {
        self.control.handle_cloudwatch(&self.caller, op).await
    }

    async fn alarms(&self, names: &[String]) -> Vec<cw::MetricAlarm> {
        let op =
            Cw::DescribeAlarms(cw::DescribeAlarmsInput { alarm_names: Some(names.to_vec()), ..Default::default() });
        let Ok(CwOut::DescribeAlarms(o)) = self.cw(op).await else { panic!("describe alarms") };
        o.metric_alarms.unwrap_or_default()
    }

    async fn alarm(&self, service: &str) -> Option<cw::MetricAlarm> {
        self.alarms(&[alarm_name(service)]).await.pop()
    }

    /// The service's two target groups (live first) as the published route table forwards to them, and its
    /// rule's ARN (the label a proxy counts its requests under).
    fn groups_of(&self, endpoint: &str) -> (String, Vec<String>) {
        let table = self.table();
        let rule = table
            .rules
            .iter()
            .find(|r| {
                r.conditions
                    .iter()
                    .any(|c| matches!(c, Condition::HostHeader { values } if values.iter().any(|v| v == endpoint)))
            })
            .expect("the service's rule");
        let groups = rule
            .actions
            .iter()
            .find_map(|a| match a {
                RuleAction::Forward { target_groups, .. } => {
                    Some(target_groups.iter().map(|g| g.target_group.clone()).collect::<Vec<_>>())
                }
                _ => None,
            })
            .expect("a forward");
        (rule.arn.clone(), groups)
    }

    /// What a proxy reports for one interval ending at `end`: per group, (requests, 4xx, 5xx).
    fn report_counts(&self, end: f64, counts: &[(&str, u64, u64, u64)]) {
        let target_groups = counts
            .iter()
            .map(|(g, requests, e4, e5)| TgDelta {
                target_group: g.to_string(),
                requests: *requests,
                target_codes: [requests - e4 - e5, 0, *e4, *e5],
                ..Default::default()
            })
            .collect();
        let table = self.table();
        self.control.report(ProxyReport {
            proxy_id: "p1".into(),
            version: table.version,
            targets: vec![],
            metrics: Some(MetricsDelta { end, seconds: 10.0, load_balancers: vec![], target_groups }),
        });
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64()
}

#[tokio::test]
async fn created_with_the_service_tagged_and_described_as_express_wants_it() {
    let w = world("create").await;
    let arn = w.create_demo_service("web").await;
    let alarm = w.alarm("web").await.expect("the deployment alarm exists once the create returns");
    let alarm_arn = alarm.alarm_arn.clone().expect("arn");
    assert_eq!(
        alarm_arn,
        format!("arn:aws:cloudwatch:us-east-1:{}:alarm:default-web-deployment-rollback", w.control.account_id())
    );
    assert!(alarm.alarm_description.as_deref().unwrap_or_default().contains(&arn), "{:?}", alarm.alarm_description);
    assert_eq!(
        (alarm.comparison_operator, alarm.threshold, alarm.datapoints_to_alarm, alarm.evaluation_periods),
        (Some(cw::ComparisonOperator::GreaterThanThreshold), Some(1.0), Some(2), Some(3))
    );
    assert_eq!(alarm.treat_missing_data.as_deref(), Some("notBreaching"));
    assert_eq!(alarm.state_value, Some(StateValue::InsufficientData));
    // The metric math: three sums per target group, at the berth preset's period, and one returned expression.
    let metrics = alarm.metrics.clone().expect("a metric-math alarm");
    let stats: Vec<(String, String, i32, usize)> = metrics
        .iter()
        .filter_map(|q| {
            let ms = q.metric_stat.as_ref()?;
            let m = ms.metric.as_ref()?;
            Some((
                q.id.clone().unwrap_or_default(),
                m.metric_name.clone().unwrap_or_default(),
                ms.period.unwrap_or_default(),
                m.dimensions.as_ref().map_or(0, Vec::len),
            ))
        })
        .collect();
    let want: Vec<(String, String, i32, usize)> = [
        ("e4a", "HTTPCode_Target_4XX_Count"),
        ("e5a", "HTTPCode_Target_5XX_Count"),
        ("ra", "RequestCount"),
        ("e4b", "HTTPCode_Target_4XX_Count"),
        ("e5b", "HTTPCode_Target_5XX_Count"),
        ("rb", "RequestCount"),
    ]
    .iter()
    .map(|(id, m)| (id.to_string(), m.to_string(), 10, 2))
    .collect();
    assert_eq!(stats, want);
    let returned: Vec<&cw::MetricDataQuery> = metrics.iter().filter(|q| q.return_data == Some(true)).collect();
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].expression.as_deref(), Some("100 * (e4a + e5a + e4b + e5b) / (ra + rb)"));

    let Ok(CwOut::ListTagsForResource(tags)) =
        w.cw(Cw::ListTagsForResource(cw::ListTagsForResourceInput { resource_arn: Some(alarm_arn) })).await
    else {
        panic!("tags")
    };
    let tags: Vec<(String, String)> = tags
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect();
    assert_eq!(tags, vec![("AmazonECSManaged".to_string(), "true".to_string())]);
}

#[tokio::test]
async fn the_aws_preset_watches_minutes() {
    let config = ControlConfig {
        scaling: berth_control::ScalingDefaults::AWS,
        drain_timeout: std::time::Duration::ZERO,
        ..ControlConfig::default()
    };
    let w = Harness::new("deploy-alarm-aws", |_| config);
    w.create_express_roles().await;
    w.create_demo_service("web").await;
    let alarm = w.alarm("web").await.expect("alarm");
    let periods: Vec<i32> =
        alarm.metrics.unwrap_or_default().iter().filter_map(|q| q.metric_stat.as_ref()?.period).collect();
    assert_eq!(periods, vec![60; 6]);
}

/// One service per case, on one load balancer; one proxy report per period, then one evaluation.
#[tokio::test]
async fn the_alarm_follows_the_error_percentage_of_both_groups() {
    // (what, per period oldest first: (live requests, live 4xx, live 5xx, idle requests, idle 4xx, idle 5xx) or
    // None for a period without a report, the state after one evaluation)
    type Period = Option<(u64, u64, u64, u64, u64, u64)>;
    let cases: Vec<(&str, [Period; 3], StateValue)> = vec![
        ("2% 5xx in every period", [Some((100, 0, 2, 0, 0, 0)); 3], StateValue::Alarm),
        (
            "2% in the last two periods",
            [Some((100, 0, 0, 0, 0, 0)), Some((100, 0, 2, 0, 0, 0)), Some((100, 0, 2, 0, 0, 0))],
            StateValue::Alarm,
        ),
        (
            "2% in two periods, a clean one between",
            [Some((100, 0, 2, 0, 0, 0)), Some((100, 0, 0, 0, 0, 0)), Some((100, 0, 2, 0, 0, 0))],
            StateValue::Alarm,
        ),
        ("4xx count as errors", [Some((200, 3, 0, 0, 0, 0)); 3], StateValue::Alarm),
        ("a failing canary: 5 of 100 requests, all 500", [Some((95, 0, 0, 5, 0, 5)); 3], StateValue::Alarm),
        ("0.5% stays OK", [Some((200, 0, 1, 0, 0, 0)); 3], StateValue::Ok),
        ("exactly 1% is not above 1%", [Some((100, 1, 0, 0, 0, 0)); 3], StateValue::Ok),
        (
            "2% in one period of three",
            [Some((100, 0, 2, 0, 0, 0)), Some((100, 0, 0, 0, 0, 0)), Some((100, 0, 0, 0, 0, 0))],
            StateValue::Ok,
        ),
        ("no errors", [Some((100, 0, 0, 0, 0, 0)); 3], StateValue::Ok),
        ("no requests: no data, not breaching", [Some((0, 0, 0, 0, 0, 0)); 3], StateValue::Ok),
        ("no reports at all", [None; 3], StateValue::Ok),
        ("errors in one period, none reported after", [Some((100, 0, 50, 0, 0, 0)), None, None], StateValue::Ok),
    ];
    let w = world("math").await;
    let mut services = Vec::new();
    for (i, _) in cases.iter().enumerate() {
        let name = format!("web{i}");
        let s = w.create_service(common::named(&name)).await.expect("create");
        services.push((name, common::endpoint(&s)));
    }
    w.settle().await;
    // The evaluation runs one second from now; its last three complete periods get the counts.
    let at = now() + 1.0;
    let end = (at / 10.0).floor() * 10.0;
    for (k, start) in [end - 30.0, end - 20.0, end - 10.0].into_iter().enumerate() {
        for ((_, periods, _), (_, endpoint)) in cases.iter().zip(&services) {
            let Some((lr, l4, l5, ir, i4, i5)) = periods[k] else { continue };
            let (_, groups) = w.groups_of(endpoint);
            assert_eq!(groups.len(), 2, "the rule forwards to both groups");
            w.report_counts(start + 5.0, &[(&groups[0], lr, l4, l5), (&groups[1], ir, i4, i5)]);
        }
    }
    w.control.alarms_tick(at);
    for ((what, _, want), (name, _)) in cases.iter().zip(&services) {
        let alarm = w.alarm(name).await.expect("alarm");
        assert_eq!(alarm.state_value.as_ref(), Some(want), "{what}: {:?}", alarm.state_reason);
    }
}

#[tokio::test]
async fn deleted_with_the_service() {
    let w = world("delete").await;
    let arn = w.create_demo_service("web").await;
    let keep = w.create_demo_service("other").await;
    w.settle().await;
    assert!(w.alarm("web").await.is_some());
    w.delete_service(&arn).await;
    assert!(w.alarm("web").await.is_none(), "the deletion takes the alarm at once");
    w.settle().await;
    assert!(w.alarm("web").await.is_none(), "and nothing puts it back");
    assert!(w.alarm("other").await.is_some(), "another service keeps its alarm ({keep})");
}

/// A policy denying `action` on the deployment alarms only (target tracking's alarms stay allowed).
fn deny(action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"{action}","Resource":"arn:aws:cloudwatch:*:*:alarm:*-deployment-rollback"}}]}}"#
    )
}

async fn role_denying(w: &Harness, name: &str, action: &str) -> String {
    let arn = common::create_role(&w.control, &w.caller, name, "ecs.amazonaws.com", Some(INFRA_POLICY)).await;
    w.control
        .handle_iam(
            &w.caller,
            berth_model::iam::Operation::PutRolePolicy(berth_model::iam::PutRolePolicyRequest {
                role_name: Some(name.into()),
                policy_name: Some("inline".into()),
                policy_document: Some(deny(action)),
            }),
        )
        .await
        .expect("inline policy");
    arn
}

#[tokio::test]
async fn a_role_that_may_not_put_the_alarm_fails_the_create_cleanly() {
    let w = world("denied").await;
    let first = w.create_demo_service("first").await;
    let names = |w: &Harness| {
        let control = w.control.clone();
        let caller = w.caller.clone();
        async move {
            let op = Cw::DescribeAlarms(cw::DescribeAlarmsInput::default());
            let Ok(CwOut::DescribeAlarms(all)) = control.handle_cloudwatch(&caller, op).await else {
                panic!("describe")
            };
            let mut names: Vec<String> =
                all.metric_alarms.unwrap_or_default().into_iter().filter_map(|a| a.alarm_name).collect();
            names.sort();
            names
        }
    };
    let before = names(&w).await;
    assert_eq!(before.len(), 3, "first's deployment alarm and its target tracking pair: {before:?}");
    let role = role_denying(&w, "noalarm", "cloudwatch:PutMetricAlarm").await;
    let request =
        ecs::CreateExpressGatewayServiceRequest { infrastructure_role_arn: Some(role), ..common::named("web") };
    let e = w.create_service(request).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied, "{e:?}");
    assert!(e.message.contains("assumed-role/noalarm/ECSGateway"), "{}", e.message);
    assert!(
        e.message.contains("perform: cloudwatch:PutMetricAlarm on resource")
            && e.message.contains(":alarm:default-web-deployment-rollback"),
        "{}",
        e.message
    );
    assert_eq!(names(&w).await, before, "no alarm left behind");
    let Ok(ecs::Output::ListServices(list)) =
        w.control.handle_ecs(&w.caller, ecs::Operation::ListServices(ecs::ListServicesRequest::default())).await
    else {
        panic!("list services")
    };
    assert_eq!(list.service_arns.unwrap_or_default(), vec![first], "no service left behind");
}

#[tokio::test]
async fn a_deletion_the_role_may_not_complete_keeps_the_alarm_until_it_may() {
    let w = world("denied-delete").await;
    let role = role_denying(&w, "keepalarm", "cloudwatch:DeleteAlarms").await;
    let request =
        ecs::CreateExpressGatewayServiceRequest { infrastructure_role_arn: Some(role), ..common::named("web") };
    let arn = w.create_service(request).await.expect("create").service_arn.expect("arn");
    w.settle().await;
    let out = w.delete_service(&arn).await;
    let reason = out.status.and_then(|s| s.status_reason).unwrap_or_default();
    assert!(reason.contains("cloudwatch:DeleteAlarms"), "{reason}");
    w.settle().await;
    assert!(w.alarm("web").await.is_some(), "kept while the role may not delete it");
    w.control
        .handle_iam(
            &w.caller,
            berth_model::iam::Operation::DeleteRolePolicy(berth_model::iam::DeleteRolePolicyRequest {
                role_name: Some("keepalarm".into()),
                policy_name: Some("inline".into()),
            }),
        )
        .await
        .expect("delete inline policy");
    w.settle().await;
    assert!(w.alarm("web").await.is_none(), "deleted once the role allows it");
}

#[tokio::test]
async fn the_reconciler_puts_a_missing_alarm_back_and_leaves_a_current_one_alone() {
    let mut w = world("adopt").await;
    w.create_demo_service("web").await;
    w.settle().await;
    let first = w.alarm("web").await.expect("alarm");
    w.restart();
    w.settle().await;
    let again = w.alarm("web").await.expect("alarm");
    assert_eq!(
        again.alarm_configuration_updated_timestamp, first.alarm_configuration_updated_timestamp,
        "a check of a current alarm changes nothing"
    );
    // Gone, as for a service created before the alarm existed: the first check of a (restarted) server puts it
    // back.
    w.cw(Cw::DeleteAlarms(cw::DeleteAlarmsInput { alarm_names: Some(vec![alarm_name("web")]) }))
        .await
        .expect("delete alarm");
    assert!(w.alarm("web").await.is_none());
    w.restart();
    w.settle().await;
    let back = w.alarm("web").await.expect("put back");
    assert_eq!(back.metrics, first.metrics);
    // Edited: the next check after a service changes the routes puts Express's configuration back.
    let mut edited = cw::PutMetricAlarmInput {
        alarm_name: back.alarm_name.clone(),
        metrics: back.metrics.clone(),
        evaluation_periods: Some(3),
        datapoints_to_alarm: Some(2),
        threshold: Some(50.0),
        comparison_operator: back.comparison_operator,
        ..Default::default()
    };
    edited.treat_missing_data = Some("notBreaching".into());
    w.cw(Cw::PutMetricAlarm(edited)).await.expect("edit");
    w.settle().await;
    assert_eq!(w.alarm("web").await.and_then(|a| a.threshold), Some(50.0), "no service changed yet");
    w.create_demo_service("other").await;
    w.settle().await;
    assert_eq!(w.alarm("web").await.and_then(|a| a.threshold), Some(1.0));
}
