//! The ELBv2 resources behind Express services, over the in-memory driver: what a create makes, user rules
//! and target-group edits reaching the route table at once, weights moving on every rule at a deployment,
//! the 26th service's load balancer, cleanup on delete, and ALB's errors.

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::ecs::{self, ExpressGatewayContainer, KeyValuePair};
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_routes::{ProxyReport, RouteTable, RuleAction, TargetHealth, TargetReport};

mod common;

use common::Harness;

/// A world whose account has the two Express roles (services need them).
async fn world(name: &str) -> Harness {
    // Deployments without bakes: a healthy canary goes to 100% in one pass.
    let config = ControlConfig {
        drain_timeout: std::time::Duration::from_secs(30),
        deploy: berth_control::DeployDefaults { canary_bake_secs: 0, bake_secs: 0, ..Default::default() },
        ..ControlConfig::default()
    };
    let w = Harness::new(&format!("elbv2-{name}"), |_| config);
    w.create_express_roles().await;
    w
}

impl Harness {
    async fn ecs(&self, op: ecs::Operation) -> ecs::Output {
        self.control.handle_ecs(&self.caller, op).await.expect("ecs call")
    }

    async fn create(&self, name: &str, version: &str) -> String {
        let request = ecs::CreateExpressGatewayServiceRequest {
            primary_container: Some(container(version)),
            ..common::named(name)
        };
        self.create_service(request).await.expect("create").service_arn.expect("arn")
    }

    fn report_all(&self, health: TargetHealth) {
        self.report_all_in_flight(health, 0);
    }

    fn report_all_in_flight(&self, health: TargetHealth, in_flight: u64) {
        self.report_as_proxy(health, in_flight);
    }

    async fn lbs(&self) -> Vec<elb::LoadBalancer> {
        let Ok(EO::DescribeLoadBalancers(o)) = self.elb(E::DescribeLoadBalancers(Default::default())).await else {
            panic!("describe load balancers")
        };
        o.load_balancers.unwrap_or_default()
    }

    async fn rules(&self, listener: &str) -> Vec<elb::Rule> {
        let Ok(EO::DescribeRules(o)) = self
            .elb(E::DescribeRules(elb::DescribeRulesInput {
                listener_arn: Some(listener.into()),
                ..Default::default()
            }))
            .await
        else {
            panic!("describe rules")
        };
        o.rules.unwrap_or_default()
    }
}

fn container(version: &str) -> ExpressGatewayContainer {
    ExpressGatewayContainer {
        image: Some("berth-demo:latest".into()),
        environment: Some(vec![KeyValuePair { name: Some("DEMO_VERSION".into()), value: Some(version.into()) }]),
        ..Default::default()
    }
}

fn forward(groups: &[(&str, i32)]) -> elb::Action {
    elb::Action {
        r#type: Some(elb::ActionTypeEnum::Forward),
        forward_config: Some(elb::ForwardActionConfig {
            target_groups: Some(
                groups
                    .iter()
                    .map(|(g, w)| elb::TargetGroupTuple { target_group_arn: Some((*g).into()), weight: Some(*w) })
                    .collect(),
            ),
            target_group_stickiness_config: None,
        }),
        ..Default::default()
    }
}

fn host_condition(host: &str) -> elb::RuleCondition {
    elb::RuleCondition { field: Some("host-header".into()), values: Some(vec![host.into()]), ..Default::default() }
}

/// The (target group, weight) pairs of a described rule's forward.
fn weights(rule: &elb::Rule) -> Vec<(String, i32)> {
    rule.actions
        .iter()
        .flatten()
        .flat_map(|a| a.forward_config.iter().flat_map(|f| f.target_groups.iter().flatten()))
        .map(|t| (t.target_group_arn.clone().unwrap_or_default(), t.weight.unwrap_or(-1)))
        .collect()
}

fn table_weights(table: &RouteTable, rule_arn: &str) -> Vec<(String, u32)> {
    let rule = table.rules.iter().find(|r| r.arn == rule_arn).expect("rule in table");
    match rule.actions.first() {
        Some(RuleAction::Forward { target_groups, .. }) => {
            target_groups.iter().map(|g| (g.target_group.clone(), g.weight)).collect()
        }
        other => panic!("{other:?}"),
    }
}

fn code(r: Result<EO, berth_core::AwsError>) -> ErrorCode {
    r.expect_err("an error").code
}

#[tokio::test]
async fn a_service_gets_visible_resources_and_user_rules_follow_deployments() {
    let w = world("resources").await;
    let svc = w.create("web", "v1").await;
    w.settle().await;

    // One load balancer, tagged, with HTTPS:443 and HTTP:80.
    let lbs = w.lbs().await;
    assert_eq!(lbs.len(), 1);
    let lb = lbs[0].load_balancer_arn.clone().expect("arn");
    let prefix = format!(
        "arn:aws:elasticloadbalancing:us-east-1:{}:loadbalancer/app/ecs-express-gateway-alb-",
        w.control.account_id()
    );
    assert!(lb.starts_with(&prefix), "{lb}");
    let listener = w.https_listener(&lb).await;
    assert!(listener.contains(":listener/app/ecs-express-gateway-alb-"), "{listener}");
    let Ok(EO::DescribeTags(tags)) =
        w.elb(E::DescribeTags(elb::DescribeTagsInput { resource_arns: Some(vec![lb.clone()]) })).await
    else {
        panic!("tags")
    };
    let t = &tags.tag_descriptions.unwrap_or_default()[0];
    assert_eq!(t.tags.clone().unwrap_or_default()[0].key.as_deref(), Some("AmazonECSManaged"));

    // The Express rule at priority 1 (live 100, idle 0), then the default rule.
    let rules = w.rules(&listener).await;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].priority.as_deref(), Some("1"));
    assert_eq!((rules[1].priority.as_deref(), rules[1].is_default), (Some("default"), Some(true)));
    let express = rules[0].rule_arn.clone().expect("arn");
    let w0 = weights(&rules[0]);
    assert_eq!(w0.iter().map(|(_, w)| *w).collect::<Vec<_>>(), vec![100, 0]);
    let (live, idle) = (w0[0].0.clone(), w0[1].0.clone());
    assert!(live.contains(":targetgroup/ecs-gateway-tg-"), "{live}");

    // Two target groups with the service's health check; DescribeServices names the live one.
    let Ok(EO::DescribeTargetGroups(tgs)) = w
        .elb(E::DescribeTargetGroups(elb::DescribeTargetGroupsInput {
            load_balancer_arn: Some(lb.clone()),
            ..Default::default()
        }))
        .await
    else {
        panic!("tgs")
    };
    let tgs = tgs.target_groups.unwrap_or_default();
    assert_eq!(tgs.len(), 2);
    assert!(tgs.iter().all(|g| g.health_check_path.as_deref() == Some("/ping")
        && g.target_type == Some(elb::TargetTypeEnum::Ip)
        && g.health_check_interval_seconds == Some(30)));

    let ecs::Output::DescribeServices(d) = w
        .ecs(ecs::Operation::DescribeServices(ecs::DescribeServicesRequest {
            services: Some(vec![svc.clone()]),
            ..Default::default()
        }))
        .await
    else {
        panic!("describe services")
    };
    let lbs = d.services.unwrap_or_default()[0].load_balancers.clone().unwrap_or_default();
    assert_eq!(lbs[0].target_group_arn.as_deref(), Some(live.as_str()));
    let advanced = lbs[0].advanced_configuration.clone().expect("blue/green");
    assert_eq!(advanced.alternate_target_group_arn.as_deref(), Some(idle.as_str()));
    assert_eq!(advanced.production_listener_rule.as_deref(), Some(express.as_str()));

    // A user's rule: a custom domain forwarding to the live group, and a fixed response.
    let Ok(EO::CreateRule(created)) = w
        .elb(E::CreateRule(elb::CreateRuleInput {
            listener_arn: Some(listener.clone()),
            priority: Some(10),
            conditions: Some(vec![host_condition("app.example.com")]),
            actions: Some(vec![forward(&[(&live, 1)])]),
            ..Default::default()
        }))
        .await
    else {
        panic!("create rule")
    };
    let user = created.rules.unwrap_or_default()[0].rule_arn.clone().expect("arn");
    assert_eq!(table_weights(&w.table(), &user), vec![(live.clone(), 1)], "published at once");
    assert_eq!(
        code(
            w.elb(E::CreateRule(elb::CreateRuleInput {
                listener_arn: Some(listener.clone()),
                priority: Some(10),
                conditions: Some(vec![host_condition("b.example.com")]),
                actions: Some(vec![forward(&[(&live, 1)])]),
                ..Default::default()
            }))
            .await
        ),
        ErrorCode::PriorityInUse
    );
    // What berth cannot do, each in the error its operation's model lists: CreateRule has
    // InvalidConfigurationRequest, ModifyRule does not (a validation error there).
    let regex = || elb::RuleCondition {
        field: Some("path-pattern".into()),
        path_pattern_config: Some(elb::PathPatternConditionConfig {
            values: None,
            regex_values: Some(vec!["^/a.*".into()]),
        }),
        ..Default::default()
    };
    let create = E::CreateRule(elb::CreateRuleInput {
        listener_arn: Some(listener.clone()),
        priority: Some(11),
        conditions: Some(vec![regex()]),
        actions: Some(vec![forward(&[(&live, 1)])]),
        ..Default::default()
    });
    assert_eq!(code(w.elb(create).await), ErrorCode::InvalidConfigurationRequest);
    let modify = E::ModifyRule(elb::ModifyRuleInput {
        rule_arn: Some(user.clone()),
        conditions: Some(vec![regex()]),
        ..Default::default()
    });
    assert_eq!(code(w.elb(modify).await), ErrorCode::ValidationError);

    // A changed health check reaches the table at once.
    let before = w.table().version;
    w.elb(E::ModifyTargetGroup(elb::ModifyTargetGroupInput {
        target_group_arn: Some(live.clone()),
        health_check_path: Some("/healthz".into()),
        health_check_interval_seconds: Some(5),
        health_check_timeout_seconds: Some(2),
        ..Default::default()
    }))
    .await
    .expect("modify tg");
    let table = w.table();
    assert!(table.version > before);
    let hc = &table.target_group(&live).expect("tg").health_check;
    assert_eq!((hc.path.as_str(), hc.interval_secs), ("/healthz", 5));

    // A deployment: the new task joins the idle group; once healthy the weights move on both rules.
    w.report_all(TargetHealth::Healthy);
    w.settle().await;
    w.ecs(ecs::Operation::UpdateExpressGatewayService(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(svc.clone()),
        primary_container: Some(container("v2")),
        ..Default::default()
    }))
    .await;
    w.settle().await;
    assert_eq!(w.table().target_group(&idle).map(|g| g.targets.len()), Some(1));
    assert_eq!(
        w.table().target_group(&idle).map(|g| g.health_check.path.clone()).as_deref(),
        Some("/healthz"),
        "the user's health check carries over to the group the deployment uses"
    );
    assert_eq!(table_weights(&w.table(), &user), vec![(live.clone(), 1)], "not before the new task is healthy");
    w.report_all(TargetHealth::Healthy);
    w.settle().await;
    assert_eq!(table_weights(&w.table(), &express), vec![(live.clone(), 0), (idle.clone(), 100)]);
    // Every rule forwarding to the service follows the deployment's weights: the user's rule too.
    assert_eq!(
        table_weights(&w.table(), &user),
        vec![(live.clone(), 0), (idle.clone(), 100)],
        "the user's rule follows the live group"
    );
    let rules = w.rules(&listener).await;
    assert_eq!(weights(&rules[1]), vec![(live.clone(), 0), (idle.clone(), 100)], "and DescribeRules shows it");
    for g in [&live, &idle] {
        let path = w.table().target_group(g).map(|t| t.health_check.path.clone());
        assert_eq!(path.as_deref(), Some("/healthz"), "reconciliation never reverts the user's health check");
    }

    // An unhealthy report shows with ALB's reason code.
    let table = w.table();
    let group = table.target_group(&idle).expect("group");
    let target = group.targets[0].id.clone();
    w.control.report(ProxyReport {
        proxy_id: "p1".into(),
        version: table.version,
        targets: vec![TargetReport {
            target_group: idle.clone(),
            target,
            health: TargetHealth::Unhealthy,
            reason: Some("Target.ResponseCodeMismatch".into()),
            in_flight: 0,
        }],
        metrics: None,
    });
    let Ok(EO::DescribeTargetHealth(h)) = w
        .elb(E::DescribeTargetHealth(elb::DescribeTargetHealthInput {
            target_group_arn: Some(idle.clone()),
            ..Default::default()
        }))
        .await
    else {
        panic!("health")
    };
    let th = h.target_health_descriptions.unwrap_or_default()[0].target_health.clone().expect("health");
    assert_eq!(
        (th.state, th.reason),
        (Some(elb::TargetHealthStateEnum::Unhealthy), Some(elb::TargetHealthReasonEnum::TargetResponseCodeMismatch))
    );
    w.report_all(TargetHealth::Healthy);

    // Target health as ALB reports it.
    let Ok(EO::DescribeTargetHealth(h)) = w
        .elb(E::DescribeTargetHealth(elb::DescribeTargetHealthInput {
            target_group_arn: Some(idle.clone()),
            ..Default::default()
        }))
        .await
    else {
        panic!("health")
    };
    let h = h.target_health_descriptions.unwrap_or_default();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].target_health.as_ref().and_then(|t| t.state), Some(elb::TargetHealthStateEnum::Healthy));

    // Errors as ALB answers them.
    let default_rule = rules.last().and_then(|r| r.rule_arn.clone()).expect("default");
    assert_eq!(
        code(w.elb(E::DeleteRule(elb::DeleteRuleInput { rule_arn: Some(default_rule) })).await),
        ErrorCode::OperationNotPermitted
    );
    assert_eq!(
        code(w.elb(E::DeleteRule(elb::DeleteRuleInput { rule_arn: Some(format!("{user}0")) })).await),
        ErrorCode::RuleNotFound
    );
    assert_eq!(
        code(
            w.elb(E::ModifyTargetGroup(elb::ModifyTargetGroupInput {
                target_group_arn: Some(live.clone()),
                health_check_timeout_seconds: Some(10),
                ..Default::default()
            }))
            .await
        ),
        ErrorCode::ValidationError,
        "timeout must stay below the 5 s interval"
    );

    // SetRulePriorities swaps; the user rule can go.
    w.elb(E::SetRulePriorities(elb::SetRulePrioritiesInput {
        rule_priorities: Some(vec![
            elb::RulePriorityPair { rule_arn: Some(express.clone()), priority: Some(10) },
            elb::RulePriorityPair { rule_arn: Some(user.clone()), priority: Some(1) },
        ]),
    }))
    .await
    .expect("swap");
    assert_eq!(w.table().rules.iter().map(|r| r.arn.clone()).collect::<Vec<_>>(), vec![user.clone(), express.clone()]);
    w.elb(E::DeleteRule(elb::DeleteRuleInput { rule_arn: Some(user.clone()) })).await.expect("delete rule");
    assert_eq!(w.table().rules.len(), 1);
}

#[tokio::test]
async fn the_26th_service_gets_a_new_load_balancer_and_empty_ones_go() {
    let w = world("share").await;
    let mut arns = Vec::new();
    for i in 0..26 {
        arns.push(w.create(&format!("s{i}"), "v1").await);
    }
    let lbs = w.lbs().await;
    assert_eq!(lbs.len(), 2, "25 services share the first, the 26th opens a second");
    let first = lbs[0].load_balancer_arn.clone().expect("arn");
    let second = lbs[1].load_balancer_arn.clone().expect("arn");
    let l1 = w.https_listener(&first).await;
    let l2 = w.https_listener(&second).await;
    assert_eq!(w.rules(&l1).await.len(), 26, "25 Express rules and the default");
    let on_second = w.rules(&l2).await;
    assert_eq!(on_second.len(), 2);
    assert_eq!(on_second[0].priority.as_deref(), Some("1"), "the lowest free priority of its own listener");
    w.settle().await;
    assert_eq!(w.table().rules.len(), 26);
    let Ok(EO::DescribeListenerCertificates(c)) = w
        .elb(E::DescribeListenerCertificates(elb::DescribeListenerCertificatesInput {
            listener_arn: Some(l1.clone()),
            ..Default::default()
        }))
        .await
    else {
        panic!("certs")
    };
    assert_eq!(c.certificates.unwrap_or_default().len(), 26, "the default certificate and one per endpoint");

    // Deleting the 26th removes the second load balancer; the next service takes the freed priority.
    w.ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
        service_arn: Some(arns[25].clone()),
    }))
    .await;
    assert_eq!(w.lbs().await.len(), 1);
    assert_eq!(
        code(
            w.elb(E::DescribeLoadBalancers(elb::DescribeLoadBalancersInput {
                load_balancer_arns: Some(vec![second]),
                ..Default::default()
            }))
            .await
        ),
        ErrorCode::LoadBalancerNotFound
    );
    w.ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
        service_arn: Some(arns[3].clone()),
    }))
    .await;
    w.create("late", "v1").await;
    let rules = w.rules(&l1).await;
    assert_eq!(rules.len(), 26);
    assert!(rules.iter().any(|r| r.priority.as_deref() == Some("4")), "priority 4 was freed and reused");
    assert_eq!(w.lbs().await.len(), 1);
}

#[tokio::test]
async fn the_deregistration_delay_bounds_draining() {
    let w = world("dereg").await;
    let svc = w.create("web", "v1").await;
    w.settle().await;
    w.report_all(TargetHealth::Healthy);
    w.settle().await;
    let old = w.driver.running_ids();
    let group = w.table().target_groups.iter().find(|g| !g.targets.is_empty()).map(|g| g.id.clone()).expect("group");
    let Ok(EO::ModifyTargetGroupAttributes(out)) = w
        .elb(E::ModifyTargetGroupAttributes(elb::ModifyTargetGroupAttributesInput {
            target_group_arn: Some(group.clone()),
            attributes: Some(vec![elb::TargetGroupAttribute {
                key: Some("deregistration_delay.timeout_seconds".into()),
                value: Some("0".into()),
            }]),
        }))
        .await
    else {
        panic!("modify attributes")
    };
    assert!(out.attributes.unwrap_or_default().iter().any(|a| a.value.as_deref() == Some("0")));
    assert_eq!(
        code(
            w.elb(E::ModifyTargetGroupAttributes(elb::ModifyTargetGroupAttributesInput {
                target_group_arn: Some(group),
                attributes: Some(vec![elb::TargetGroupAttribute {
                    key: Some("no.such.key".into()),
                    value: Some("1".into()),
                }]),
            }))
            .await
        ),
        ErrorCode::ValidationError
    );
    w.ecs(ecs::Operation::UpdateExpressGatewayService(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(svc),
        primary_container: Some(container("v2")),
        ..Default::default()
    }))
    .await;
    w.settle().await;
    // The new task is healthy and the old one still has a request in flight: with a 0 s deregistration delay
    // (ALB: do not wait) it is stopped anyway; with the default 300 s it would wait for the request.
    w.report_all_in_flight(TargetHealth::Healthy, 1);
    w.settle().await;
    w.report_all_in_flight(TargetHealth::Healthy, 1);
    w.settle().await;
    let running = w.driver.running_ids();
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(!old.iter().any(|id| running.contains(id)), "the old task stopped");
}

/// ELBv2 authorizes each operation on the ARNs it names, with their tags: a user allowed `ModifyRule` on one
/// rule's ARN (or on rules tagged for them) may edit that rule and is denied on another service's rule.
#[tokio::test]
async fn rule_edits_are_authorized_on_the_rule_arn_and_its_tags() {
    let w = world("authz").await;
    w.create("web", "v1").await;
    w.create("api", "v1").await;
    let lb = w.lbs().await[0].load_balancer_arn.clone().expect("lb arn");
    let listener = w.https_listener(&lb).await;
    let express: Vec<String> = w
        .rules(&listener)
        .await
        .into_iter()
        .filter(|r| r.is_default != Some(true))
        .filter_map(|r| r.rule_arn)
        .collect();
    assert_eq!(express.len(), 2, "one Express rule per service");
    w.elb(E::AddTags(elb::AddTagsInput {
        resource_arns: Some(vec![express[1].clone()]),
        tags: Some(vec![elb::Tag { key: Some("team".into()), value: Some("blue".into()) }]),
    }))
    .await
    .expect("root tags the second rule");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"elasticloadbalancing:ModifyRule","Resource":"{}"}},
            {{"Effect":"Allow","Action":"elasticloadbalancing:SetRulePriorities","Resource":"*",
              "Condition":{{"StringEquals":{{"aws:ResourceTag/team":"blue"}}}}}},
            {{"Effect":"Allow","Action":"elasticloadbalancing:Describe*","Resource":"*"}}]}}"#,
        express[0]
    );
    let user = common::user_with(&w.control, "alice", &policy).await;
    let modify = |arn: &str| {
        E::ModifyRule(elb::ModifyRuleInput {
            rule_arn: Some(arn.into()),
            conditions: Some(vec![elb::RuleCondition {
                field: Some("path-pattern".into()),
                values: Some(vec!["/x".into()]),
                ..Default::default()
            }]),
            ..Default::default()
        })
    };
    let priority = |arn: &str, p: i32| {
        E::SetRulePriorities(elb::SetRulePrioritiesInput {
            rule_priorities: Some(vec![elb::RulePriorityPair { rule_arn: Some(arn.into()), priority: Some(p) }]),
        })
    };
    let code = |r: Result<EO, berth_core::AwsError>| r.map(|_| ()).map_err(|e| e.code);
    assert_eq!(code(w.control.handle_elbv2(&user, modify(&express[0])).await), Ok(()), "allowed on its rule's ARN");
    let denied = w.control.handle_elbv2(&user, modify(&express[1])).await.expect_err("denied on the other rule");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    assert!(denied.message.contains(&express[1]), "the denial names the rule: {}", denied.message);
    assert_eq!(code(w.control.handle_elbv2(&user, priority(&express[1], 40)).await), Ok(()), "allowed by the tag");
    assert_eq!(code(w.control.handle_elbv2(&user, priority(&express[0], 41)).await), Err(ErrorCode::AccessDenied));
    assert_eq!(code(w.control.handle_elbv2(&user, E::DescribeLoadBalancers(Default::default())).await), Ok(()));
}
