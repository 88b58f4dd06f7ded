//! The route table is rebuilt only when the store's route generation moved (a counter every write that feeds
//! the table bumps, by trigger, in its own transaction). So every API path that changes what the table is made
//! of must publish a new table, and the table kept this way must always be the one a server restarted now
//! builds from the store from scratch.

use std::sync::Arc;

use berth_control::ControlConfig;
use berth_control::routes::same_routes;
use berth_model::ec2;
use berth_model::ecs;
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_routes::{RouteTable, RuleAction, TargetHealth, TargetState};

mod common;

use common::Harness;

async fn world(name: &str, config: ControlConfig) -> Harness {
    // Deployments without bakes: a healthy canary goes to 100% in one pass.
    let config = ControlConfig {
        deploy: berth_control::DeployDefaults { canary_bake_secs: 0, bake_secs: 0, ..Default::default() },
        ..config
    };
    let w = Harness::new(&format!("routegen-{name}"), |_| config);
    w.create_express_roles().await;
    w
}

impl Harness {
    async fn ecs(&self, op: ecs::Operation) -> ecs::Output {
        self.control.handle_ecs(&self.caller, op).await.expect("ecs call")
    }

    /// What a proxy serving the current table reports: every target healthy, nothing in flight.
    fn report_healthy(&self) {
        self.report_as_proxy(TargetHealth::Healthy, 0);
    }

    /// Runs passes, then checks that the table served now is the one a restarted server builds from the store,
    /// and returns it. `what` names the step in failures.
    async fn converge(&mut self, what: &str) -> Arc<RouteTable> {
        self.settle().await;
        let kept = self.table();
        self.restart();
        let fresh = self.table();
        assert!(same_routes(&kept, &fresh), "{what}: the kept table differs from a fresh build\n{kept:#?}\n{fresh:#?}");
        assert!(fresh.version >= kept.version, "{what}: versions only grow");
        fresh
    }
}

/// The (live, other) target groups of the rule whose host-header names `host`.
fn groups_of(table: &RouteTable, host: &str) -> (String, String, String) {
    let rule = table
        .rules
        .iter()
        .find(|r| format!("{:?}", r.conditions).contains(host))
        .unwrap_or_else(|| panic!("a rule for {host}"));
    let Some(RuleAction::Forward { target_groups, .. }) = rule.actions.first() else { panic!("a forward") };
    let live = target_groups.iter().find(|w| w.weight > 0).expect("live group").target_group.clone();
    let other = target_groups.iter().find(|w| w.weight == 0).expect("other group").target_group.clone();
    (live, other, rule.load_balancer.clone().expect("load balancer"))
}

#[tokio::test]
async fn every_api_path_that_changes_routes_publishes_the_table_a_fresh_build_gives() {
    let mut w = world("paths", ControlConfig::default()).await;
    let web = w.create_service(common::named("web")).await.expect("web");
    let host = common::endpoint(&web);
    w.converge("created").await;
    w.report_healthy();
    let mut table = w.converge("healthy").await;
    let (live, other, lb) = groups_of(&table, &host);
    let tg = |t: &RouteTable, id: &str| t.target_group(id).cloned().unwrap_or_else(|| panic!("group {id}"));

    // Each step: an edit through one API path, then a newer table that shows it and equals a fresh build.
    let step = |t: Arc<RouteTable>, what: &str, before: u64| {
        assert!(t.version > before, "{what}: a new table was published ({} → {})", before, t.version);
        t
    };

    // ELBv2: a user's rule, created then modified.
    let listener = w.https_listener(&lb).await;
    let forward = elb::Action {
        r#type: Some(elb::ActionTypeEnum::Forward),
        target_group_arn: Some(live.clone()),
        ..Default::default()
    };
    let condition = |h: &str| elb::RuleCondition {
        field: Some("host-header".into()),
        values: Some(vec![h.into()]),
        ..Default::default()
    };
    let v = table.version;
    let EO::CreateRule(created) = w
        .elb(E::CreateRule(elb::CreateRuleInput {
            listener_arn: Some(listener),
            priority: Some(500),
            conditions: Some(vec![condition("custom.example.com")]),
            actions: Some(vec![forward]),
            ..Default::default()
        }))
        .await
        .expect("elbv2 call")
    else {
        panic!("create rule")
    };
    let rule = created.rules.unwrap_or_default().first().and_then(|r| r.rule_arn.clone()).expect("rule arn");
    table = step(w.converge("CreateRule").await, "CreateRule", v);
    assert!(format!("{:?}", table.rules).contains("custom.example.com"));
    let v = table.version;
    w.elb(E::ModifyRule(elb::ModifyRuleInput {
        rule_arn: Some(rule),
        conditions: Some(vec![condition("other.example.com")]),
        ..Default::default()
    }))
    .await
    .expect("elbv2 call");
    table = step(w.converge("ModifyRule").await, "ModifyRule", v);
    assert!(format!("{:?}", table.rules).contains("other.example.com"));

    // ELBv2: a target group's health check, its attributes, registered targets; the load balancer's attributes.
    let v = table.version;
    w.elb(E::ModifyTargetGroup(elb::ModifyTargetGroupInput {
        target_group_arn: Some(live.clone()),
        health_check_path: Some("/healthz".into()),
        ..Default::default()
    }))
    .await
    .expect("elbv2 call");
    table = step(w.converge("ModifyTargetGroup").await, "ModifyTargetGroup", v);
    assert_eq!(tg(&table, &live).health_check.path, "/healthz");
    let v = table.version;
    w.elb(E::ModifyTargetGroupAttributes(elb::ModifyTargetGroupAttributesInput {
        target_group_arn: Some(live.clone()),
        attributes: Some(vec![elb::TargetGroupAttribute {
            key: Some("slow_start.duration_seconds".into()),
            value: Some("45".into()),
        }]),
    }))
    .await
    .expect("elbv2 call");
    table = step(w.converge("ModifyTargetGroupAttributes").await, "ModifyTargetGroupAttributes", v);
    assert_eq!(tg(&table, &live).slow_start_secs, 45);
    let v = table.version;
    w.elb(E::RegisterTargets(elb::RegisterTargetsInput {
        target_group_arn: Some(other.clone()),
        targets: Some(vec![elb::TargetDescription {
            id: Some("10.0.0.7".into()),
            port: Some(8080),
            ..Default::default()
        }]),
    }))
    .await
    .expect("elbv2 call");
    table = step(w.converge("RegisterTargets").await, "RegisterTargets", v);
    assert!(tg(&table, &other).targets.iter().any(|t| t.addr.to_string() == "10.0.0.7:8080"));
    let v = table.version;
    w.elb(E::ModifyLoadBalancerAttributes(elb::ModifyLoadBalancerAttributesInput {
        load_balancer_arn: Some(lb.clone()),
        attributes: Some(vec![elb::LoadBalancerAttribute {
            key: Some("idle_timeout.timeout_seconds".into()),
            value: Some("120".into()),
        }]),
    }))
    .await
    .expect("elbv2 call");
    table = step(w.converge("ModifyLoadBalancerAttributes").await, "ModifyLoadBalancerAttributes", v);
    let served = table.load_balancers.iter().find(|l| l.arn == lb).expect("load balancer");
    assert_eq!(served.idle_timeout_secs, Some(120));

    // EC2: an ingress rule on the service's load balancer group changes who may connect.
    let EO::DescribeLoadBalancers(lbs) = w
        .elb(E::DescribeLoadBalancers(elb::DescribeLoadBalancersInput {
            load_balancer_arns: Some(vec![lb.clone()]),
            ..Default::default()
        }))
        .await
        .expect("elbv2 call")
    else {
        panic!("describe load balancers")
    };
    let group = lbs
        .load_balancers
        .unwrap_or_default()
        .first()
        .and_then(|l| l.security_groups.clone())
        .and_then(|g| g.first().cloned())
        .expect("load balancer group");
    let v = table.version;
    w.ec2(ec2::Operation::AuthorizeSecurityGroupIngress(ec2::AuthorizeSecurityGroupIngressRequest {
        group_id: Some(group),
        ip_permissions: Some(vec![ec2::IpPermission {
            ip_protocol: Some("tcp".into()),
            from_port: Some(443),
            to_port: Some(443),
            ip_ranges: Some(vec![ec2::IpRange { cidr_ip: Some("10.20.0.0/16".into()), ..Default::default() }]),
            ..Default::default()
        }]),
        ..Default::default()
    }))
    .await
    .expect("ec2 call");
    table = step(w.converge("AuthorizeSecurityGroupIngress").await, "AuthorizeSecurityGroupIngress", v);
    let served = table.load_balancers.iter().find(|l| l.arn == lb).expect("load balancer");
    assert!(served.sources.as_ref().is_some_and(|s| s.https.contains(&"10.20.0.0/16".to_string())));

    // ECS: a deployment, which health reports move along (new tasks, weights shift, old tasks drain).
    let v = table.version;
    w.ecs(ecs::Operation::UpdateExpressGatewayService(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: web.service_arn.clone(),
        primary_container: Some(ecs::ExpressGatewayContainer {
            image: Some("berth-demo:v2".into()),
            ..Default::default()
        }),
        ..Default::default()
    }))
    .await;
    table = step(w.converge("UpdateExpressGatewayService").await, "deployment started", v);
    assert_eq!(tg(&table, &other).targets.iter().filter(|t| t.id.contains(":task/")).count(), 1, "the new task");
    let v = table.version;
    w.report_healthy();
    table = step(w.converge("health report").await, "health report", v);
    assert_eq!(groups_of(&table, &host).0, other, "traffic moved to the new revision's group");

    // ECS: a task stopped by hand drains out of the table.
    let task = tg(&table, &other).targets.iter().find(|t| t.id.contains(":task/")).expect("task").id.clone();
    let v = table.version;
    w.ecs(ecs::Operation::StopTask(ecs::StopTaskRequest {
        cluster: Some("default".into()),
        task: Some(task.clone()),
        reason: Some("test".into()),
    }))
    .await;
    table = step(w.converge("StopTask").await, "StopTask", v);
    assert!(
        tg(&table, &other).targets.iter().all(|t| t.id != task || t.state == TargetState::Draining),
        "the stopped task is no longer served"
    );

    // ECS: a new service brings its certificate; deleting it takes its certificate and rule away.
    let v = table.version;
    let api = w.create_service(common::named("api")).await.expect("api");
    let api_host = common::endpoint(&api);
    table = step(w.converge("second service").await, "second service", v);
    assert!(table.certificates.iter().any(|c| c.hosts.contains(&api_host)));
    let v = table.version;
    w.ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
        service_arn: api.service_arn.clone(),
    }))
    .await;
    table = step(w.converge("DeleteExpressGatewayService").await, "DeleteExpressGatewayService", v);
    assert!(!table.certificates.iter().any(|c| c.hosts.contains(&api_host)));
    assert!(!format!("{:?}", table.rules).contains(&api_host));

    // Nothing changed: passes publish nothing.
    let v = table.version;
    for _ in 0..3 {
        w.control.reconcile_once().await.expect("pass");
    }
    assert_eq!(w.table().version, v, "an idle pass publishes nothing");
}

#[tokio::test]
async fn renewed_certificates_are_published() {
    // Leaves are valid 90 days: renewing within 91 days of expiry renews every certificate on every pass.
    let config = ControlConfig {
        certificate_renew_before: std::time::Duration::from_secs(91 * 86_400),
        ..ControlConfig::default()
    };
    let w = world("renew", config).await;
    w.create_service(common::named("web")).await.expect("web");
    w.settle().await;
    let before = w.table();
    w.control.reconcile_once().await.expect("pass");
    let after = w.table();
    assert!(after.version > before.version, "renewed certificates are a new table");
    assert_ne!(
        before.certificates.iter().map(|c| &c.cert_pem).collect::<Vec<_>>(),
        after.certificates.iter().map(|c| &c.cert_pem).collect::<Vec<_>>()
    );
}

/// The store's route generation, read from the database file.
fn generation(w: &Harness) -> i64 {
    let db = rusqlite::Connection::open(w.dir.join("berth.db")).expect("open");
    db.query_row("SELECT n FROM route_generation", [], |r| r.get(0)).expect("generation")
}

/// Every row of the tables the route table reads, as text.
fn route_rows(w: &Harness) -> Vec<String> {
    let db = rusqlite::Connection::open(w.dir.join("berth.db")).expect("open");
    let tables: Vec<String> = db
        .prepare("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'route_gen_%'")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut out = Vec::new();
    for t in tables {
        let mut st = db.prepare(&format!("SELECT * FROM {t}")).expect("select");
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).map(|v| format!("{v:?}")).unwrap_or_default()))
                    .collect();
                Ok(format!("{t}: {}", cells.join(" | ")))
            })
            .expect("rows");
        out.extend(rows.map(|r| r.expect("row")));
    }
    out
}

#[tokio::test]
async fn an_idle_pass_writes_nothing_the_route_table_reads() {
    let w = world("idle", ControlConfig::default()).await;
    // More than 25: two load balancers.
    for i in 0..27 {
        w.create_service(common::named(&format!("svc-{i}"))).await.expect("create");
    }
    w.settle().await;
    w.report_healthy();
    w.settle().await;
    let (before, rows) = (generation(&w), route_rows(&w));
    for _ in 0..3 {
        w.report_healthy();
        w.control.reconcile_once().await.expect("pass");
    }
    let changed: Vec<String> = route_rows(&w).into_iter().filter(|r| !rows.contains(r)).collect();
    assert_eq!(generation(&w), before, "idle passes moved the route generation; rows written: {changed:#?}");
}
