//! The infrastructure role at work, over the in-memory driver: a create, an update or a deletion is authorized
//! as the role's `ECSGateway` session against exactly what berth does. A denied create or update leaves every
//! resource type as it was (checked by describing them all); a shared load balancer needs no
//! CreateLoadBalancer; a denied deletion keeps the service DRAINING with its resources, across restarts, and
//! completes by itself once the role's policy allows it.

use berth_control::ControlConfig;
use berth_core::{AwsError, ErrorCode};
use berth_model::ec2;
use berth_model::ecs::{self, ExpressGatewayContainer};
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_model::iam::{self, Operation as Iam};

mod common;

use common::Harness;

const INFRA_POLICY: &str = "AmazonECSInfrastructureRoleforExpressGatewayServices";

fn deny(action: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"{action}","Resource":"*"}}]}}"#)
}

/// Everything a create, update or deletion could touch, as the APIs describe it.
#[derive(Debug, PartialEq)]
struct Snapshot {
    services: Vec<String>,
    task_definitions: Vec<String>,
    load_balancers: Vec<String>,
    listeners: Vec<String>,
    rules: Vec<String>,
    listener_certificates: Vec<String>,
    target_groups: Vec<String>,
    elb_tags: Vec<String>,
    security_groups: Vec<String>,
}

impl Snapshot {
    fn express_groups(&self) -> usize {
        self.security_groups.iter().filter(|g| g.contains("ecs-express-")).count()
    }
}

async fn world(name: &str) -> Harness {
    // Tasks of a deleted service stop at once (no proxy reports in-flight requests here).
    let config = ControlConfig { drain_timeout: std::time::Duration::ZERO, ..ControlConfig::default() };
    let w = Harness::new(&format!("prov-{name}"), |_| config);
    w.create_express_roles().await;
    w
}

impl Harness {
    /// A role trusting ecs.amazonaws.com with the managed infrastructure policy and, when given, an inline
    /// policy named `inline`.
    async fn role(&self, name: &str, inline: Option<&str>) -> String {
        let arn = common::create_role(&self.control, &self.caller, name, "ecs.amazonaws.com", Some(INFRA_POLICY)).await;
        if let Some(doc) = inline {
            self.put_inline(name, doc).await;
        }
        arn
    }

    async fn iam(&self, op: Iam) {
        self.control.handle_iam(&self.caller, op).await.expect("iam call");
    }

    async fn put_inline(&self, role: &str, doc: &str) {
        self.iam(Iam::PutRolePolicy(iam::PutRolePolicyRequest {
            role_name: Some(role.into()),
            policy_name: Some("inline".into()),
            policy_document: Some(doc.into()),
        }))
        .await;
    }

    async fn managed(&self, role: &str, attach: bool) {
        let policy_arn = Some(format!("arn:aws:iam::aws:policy/service-role/{INFRA_POLICY}"));
        let role_name = Some(role.to_string());
        self.iam(if attach {
            Iam::AttachRolePolicy(iam::AttachRolePolicyRequest { role_name, policy_arn })
        } else {
            Iam::DetachRolePolicy(iam::DetachRolePolicyRequest { role_name, policy_arn })
        })
        .await;
    }

    async fn ecs(&self, op: ecs::Operation) -> Result<ecs::Output, AwsError> {
        self.control.handle_ecs(&self.caller, op).await
    }

    async fn create(&self, name: &str, infra: &str) -> Result<String, AwsError> {
        let request = ecs::CreateExpressGatewayServiceRequest {
            infrastructure_role_arn: Some(infra.into()),
            ..common::named(name)
        };
        Ok(self.create_service(request).await?.service_arn.expect("arn"))
    }

    async fn update(&self, arn: &str, image: &str, port: Option<i32>) -> Result<(), AwsError> {
        self.ecs(ecs::Operation::UpdateExpressGatewayService(ecs::UpdateExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            primary_container: Some(ExpressGatewayContainer {
                image: Some(image.into()),
                container_port: port,
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .map(|_| ())
    }

    async fn delete(&self, arn: &str) -> ecs::ECSExpressGatewayService {
        let out = self
            .ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
                service_arn: Some(arn.into()),
            }))
            .await
            .expect("delete");
        let ecs::Output::DeleteExpressGatewayService(r) = out else { panic!("wrong output") };
        r.service.expect("service")
    }

    /// (status code, status reason) of a service.
    async fn status(&self, arn: &str) -> (ecs::ExpressGatewayServiceStatusCode, String) {
        let out = self
            .ecs(ecs::Operation::DescribeExpressGatewayService(ecs::DescribeExpressGatewayServiceRequest {
                service_arn: Some(arn.into()),
                include: None,
            }))
            .await
            .expect("describe");
        let ecs::Output::DescribeExpressGatewayService(r) = out else { panic!("wrong output") };
        let status = r.service.and_then(|s| s.status).expect("status");
        (status.status_code.expect("code"), status.status_reason.unwrap_or_default())
    }

    async fn describe_service(&self, arn: &str) -> String {
        let out = self
            .ecs(ecs::Operation::DescribeExpressGatewayService(ecs::DescribeExpressGatewayServiceRequest {
                service_arn: Some(arn.into()),
                include: None,
            }))
            .await
            .expect("describe");
        format!("{out:?}")
    }

    async fn events(&self, arn: &str) -> Vec<String> {
        let out = self
            .ecs(ecs::Operation::DescribeServices(ecs::DescribeServicesRequest {
                services: Some(vec![arn.into()]),
                ..Default::default()
            }))
            .await
            .expect("describe services");
        let ecs::Output::DescribeServices(r) = out else { panic!("wrong output") };
        r.services
            .unwrap_or_default()
            .into_iter()
            .flat_map(|s| s.events.unwrap_or_default())
            .filter_map(|e| e.message)
            .collect()
    }

    async fn snapshot(&self) -> Snapshot {
        let services = match self.ecs(ecs::Operation::ListServices(Default::default())).await {
            Ok(ecs::Output::ListServices(s)) => s.service_arns.unwrap_or_default(),
            // The default cluster comes with the first service.
            Err(e) if e.code == ErrorCode::ClusterNotFound => vec![],
            other => panic!("list services: {other:?}"),
        };
        let ecs::Output::ListTaskDefinitions(td) =
            self.ecs(ecs::Operation::ListTaskDefinitions(Default::default())).await.expect("list task definitions")
        else {
            panic!("wrong output")
        };
        let EO::DescribeLoadBalancers(lbs) =
            self.elb(E::DescribeLoadBalancers(Default::default())).await.expect("elbv2 call")
        else {
            panic!("wrong output")
        };
        let lbs: Vec<String> =
            lbs.load_balancers.unwrap_or_default().into_iter().filter_map(|l| l.load_balancer_arn).collect();
        let (mut listeners, mut rules, mut certificates) = (vec![], vec![], vec![]);
        for lb in &lbs {
            let EO::DescribeListeners(ls) = self
                .elb(E::DescribeListeners(elb::DescribeListenersInput {
                    load_balancer_arn: Some(lb.clone()),
                    ..Default::default()
                }))
                .await
                .expect("elbv2 call")
            else {
                panic!("wrong output")
            };
            for l in ls.listeners.unwrap_or_default() {
                let arn = l.listener_arn.clone().expect("listener arn");
                let EO::DescribeRules(rs) = self
                    .elb(E::DescribeRules(elb::DescribeRulesInput {
                        listener_arn: Some(arn.clone()),
                        ..Default::default()
                    }))
                    .await
                    .expect("elbv2 call")
                else {
                    panic!("wrong output")
                };
                rules.extend(rs.rules.unwrap_or_default().into_iter().map(|r| format!("{r:?}")));
                let EO::DescribeListenerCertificates(cs) = self
                    .elb(E::DescribeListenerCertificates(elb::DescribeListenerCertificatesInput {
                        listener_arn: Some(arn.clone()),
                        ..Default::default()
                    }))
                    .await
                    .expect("elbv2 call")
                else {
                    panic!("wrong output")
                };
                certificates.extend(cs.certificates.unwrap_or_default().into_iter().map(|c| format!("{c:?}")));
                listeners.push(format!("{l:?}"));
            }
        }
        let EO::DescribeTargetGroups(tgs) =
            self.elb(E::DescribeTargetGroups(Default::default())).await.expect("elbv2 call")
        else {
            panic!("wrong output")
        };
        let tgs = tgs.target_groups.unwrap_or_default();
        let mut tagged: Vec<String> = lbs.clone();
        tagged.extend(tgs.iter().filter_map(|g| g.target_group_arn.clone()));
        let mut elb_tags = vec![];
        for chunk in tagged.chunks(20) {
            let EO::DescribeTags(t) = self
                .elb(E::DescribeTags(elb::DescribeTagsInput { resource_arns: Some(chunk.to_vec()) }))
                .await
                .expect("elbv2 call")
            else {
                panic!("wrong output")
            };
            elb_tags.extend(t.tag_descriptions.unwrap_or_default().into_iter().map(|d| format!("{d:?}")));
        }
        let ec2::Output::DescribeSecurityGroups(sg) = self
            .control
            .handle_ec2(&self.caller, ec2::Operation::DescribeSecurityGroups(Default::default()))
            .await
            .expect("describe security groups")
        else {
            panic!("wrong output")
        };
        Snapshot {
            services,
            task_definitions: td.task_definition_arns.unwrap_or_default(),
            load_balancers: lbs,
            listeners,
            rules,
            listener_certificates: certificates,
            target_groups: tgs.iter().map(|g| format!("{g:?}")).collect(),
            elb_tags,
            security_groups: sg.security_groups.unwrap_or_default().iter().map(|g| format!("{g:?}")).collect(),
        }
    }
}

fn assert_denied(e: &AwsError, role: &str, action: &str) {
    assert_eq!(e.code, ErrorCode::AccessDenied, "{e:?}");
    assert!(e.message.contains(&format!("assumed-role/{role}/ECSGateway")), "{}", e.message);
    assert!(e.message.contains(&format!("perform: {action} on resource")), "{}", e.message);
    assert!(e.message.contains(&format!(":role/{role}")), "{}", e.message);
}

#[tokio::test]
async fn a_create_the_role_may_not_complete_leaves_nothing_behind() {
    let w = world("create").await;
    let empty = w.snapshot().await;
    let no_rule = w.role("norule", Some(&deny("elasticloadbalancing:CreateRule"))).await;

    // No load balancer yet: everything berth would create is rolled back.
    let e = w.create("web", &no_rule).await.expect_err("denied");
    assert_denied(&e, "norule", "elasticloadbalancing:CreateRule");
    assert!(e.message.contains(":listener-rule/app/ecs-express-gateway-alb-"), "the real rule ARN: {}", e.message);
    assert_eq!(w.snapshot().await, empty);

    // Beside a service that has a load balancer: it keeps exactly what it had.
    let first = w.create("first", &w.role_arn("infra")).await.expect("create with the managed policy");
    w.settle().await;
    let before = w.snapshot().await;
    assert_eq!((before.load_balancers.len(), before.express_groups()), (1, 2));
    let e = w.create("web", &no_rule).await.expect_err("denied");
    assert_denied(&e, "norule", "elasticloadbalancing:CreateRule");
    assert_eq!(w.snapshot().await, before);
    assert!(w.snapshot().await.services == vec![first]);

    // A security group action: denied on the real group ARN, nothing left either.
    let no_ingress = w.role("noingress", Some(&deny("ec2:AuthorizeSecurityGroupIngress"))).await;
    let e = w.create("web", &no_ingress).await.expect_err("denied");
    assert_denied(&e, "noingress", "ec2:AuthorizeSecurityGroupIngress");
    assert!(e.message.contains(":security-group/sg-"), "{}", e.message);
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_shared_load_balancer_needs_no_create_load_balancer() {
    let w = world("shared").await;
    let no_lb = w.role("nolb", Some(&deny("elasticloadbalancing:CreateLoadBalancer"))).await;
    let e = w.create("a", &no_lb).await.expect_err("no load balancer to share yet");
    assert_denied(&e, "nolb", "elasticloadbalancing:CreateLoadBalancer");
    assert!(w.snapshot().await.load_balancers.is_empty());

    w.create("b", &w.role_arn("infra")).await.expect("first service");
    w.create("a", &no_lb).await.expect("shares b's load balancer");
    let s = w.snapshot().await;
    assert_eq!(s.load_balancers.len(), 1);
    assert_eq!((s.services.len(), s.target_groups.len(), s.express_groups()), (2, 4, 4));

    // Sharing still takes the actions really done there: a role that may not add the certificate cannot.
    let no_cert = w.role("nocert", Some(&deny("elasticloadbalancing:AddListenerCertificates"))).await;
    let e = w.create("c", &no_cert).await.expect_err("denied");
    assert_denied(&e, "nocert", "elasticloadbalancing:AddListenerCertificates");
    assert!(e.message.contains(":listener/app/ecs-express-gateway-alb-"), "{}", e.message);
    assert_eq!(w.snapshot().await, s);
}

#[tokio::test]
async fn an_update_the_role_may_not_do_changes_nothing() {
    let w = world("update").await;
    let role = w.role("upd", None).await;
    let arn = w.create("web", &role).await.expect("create");
    w.settle().await;
    w.update(&arn, "berth-demo:v2", None).await.expect("the managed policy allows a deployment");
    w.settle().await;

    // Denied: the traffic shift's ModifyRule on the Express rule.
    w.put_inline("upd", &deny("elasticloadbalancing:ModifyRule")).await;
    let (before, service) = (w.snapshot().await, w.describe_service(&arn).await);
    let e = w.update(&arn, "berth-demo:v3", None).await.expect_err("denied");
    assert_denied(&e, "upd", "elasticloadbalancing:ModifyRule");
    assert!(e.message.contains(":listener-rule/app/"), "{}", e.message);
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.describe_service(&arn).await, service);

    // Denied: a new container port needs the service group's rule replaced.
    w.put_inline("upd", &deny("ec2:RevokeSecurityGroupIngress")).await;
    let e = w.update(&arn, "berth-demo:v3", Some(8080)).await.expect_err("denied");
    assert_denied(&e, "upd", "ec2:RevokeSecurityGroupIngress");
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.describe_service(&arn).await, service);
    // The same image without a port change revokes nothing.
    w.update(&arn, "berth-demo:v3", None).await.expect("allowed");

    w.iam(Iam::DeleteRolePolicy(iam::DeleteRolePolicyRequest {
        role_name: Some("upd".into()),
        policy_name: Some("inline".into()),
    }))
    .await;
    w.update(&arn, "berth-demo:v4", Some(8080)).await.expect("allowed again");
}

/// UpdateService's deployment settings, desired count and deployment commit together: a deployment the role may not
/// make leaves the settings and the count as they were (ECS's DescribeServices shows both).
#[tokio::test]
async fn an_update_service_the_role_may_not_deploy_changes_nothing() {
    let w = world("updsvc").await;
    let role = w.role("updsvc", None).await;
    let arn = w.create("web", &role).await.expect("create");
    w.settle().await;
    let services = |w: &Harness| {
        let (control, caller, arn) = (w.control.clone(), w.caller.clone(), arn.clone());
        async move {
            let out = control
                .handle_ecs(
                    &caller,
                    ecs::Operation::DescribeServices(ecs::DescribeServicesRequest {
                        services: Some(vec![arn]),
                        ..Default::default()
                    }),
                )
                .await
                .expect("describe services");
            let ecs::Output::DescribeServices(d) = out else { panic!("{out:?}") };
            let s = d.services.unwrap_or_default().remove(0);
            (s.desired_count, format!("{:?}", s.deployment_configuration), s.deployments.map(|d| d.len()))
        }
    };
    let before = services(&w).await;
    w.put_inline("updsvc", &deny("elasticloadbalancing:ModifyRule")).await;
    let request = ecs::UpdateServiceRequest {
        service: Some(arn.clone()),
        desired_count: Some(2),
        force_new_deployment: Some(true),
        deployment_configuration: Some(ecs::DeploymentConfiguration {
            strategy: Some(ecs::DeploymentStrategy::Linear),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = w.ecs(ecs::Operation::UpdateService(request.clone())).await.expect_err("denied");
    assert_denied(&e, "updsvc", "elasticloadbalancing:ModifyRule");
    assert_eq!(services(&w).await, before, "nothing of the refused UpdateService stays");

    w.iam(Iam::DeleteRolePolicy(iam::DeleteRolePolicyRequest {
        role_name: Some("updsvc".into()),
        policy_name: Some("inline".into()),
    }))
    .await;
    w.ecs(ecs::Operation::UpdateService(request)).await.expect("allowed again");
    let after = services(&w).await;
    assert_eq!(after.0, Some(2));
    assert!(after.1.contains("Linear"), "{}", after.1);
}

#[tokio::test]
async fn a_deletion_waits_for_the_role_and_completes_once_allowed() {
    let mut w = world("delete").await;
    let role = w.role("del", None).await;
    let arn = w.create("web", &role).await.expect("create");
    w.settle().await;
    let with_service = w.snapshot().await;

    // The role loses its policy: the deletion is accepted, but nothing of the load balancer goes.
    w.managed("del", false).await;
    let s = w.delete(&arn).await;
    let status = s.status.expect("status");
    assert_eq!(status.status_code, Some(ecs::ExpressGatewayServiceStatusCode::Draining));
    let reason = status.status_reason.unwrap_or_default();
    assert!(reason.contains("assumed-role/del/ECSGateway"), "{reason}");
    // With no policy at all, the first thing the teardown does is refused.
    assert!(reason.contains("perform: elasticloadbalancing:DescribeRules"), "{reason}");
    w.settle().await;
    w.settle().await;
    let (code, reason2) = w.status(&arn).await;
    assert_eq!((code, &reason2), (ecs::ExpressGatewayServiceStatusCode::Draining, &reason));
    let waiting = |events: Vec<String>| events.iter().filter(|e| e.contains("is waiting to delete")).count();
    assert_eq!(waiting(w.events(&arn).await), 1, "one event per distinct denial");
    let stuck = w.snapshot().await;
    assert_eq!(
        (&stuck.load_balancers, &stuck.rules, &stuck.target_groups, stuck.express_groups()),
        (&with_service.load_balancers, &with_service.rules, &with_service.target_groups, 2)
    );

    // Across a restart it still waits, from the store alone.
    w.restart();
    w.settle().await;
    assert_eq!(w.status(&arn).await.0, ecs::ExpressGatewayServiceStatusCode::Draining);
    assert_eq!(w.snapshot().await.rules, with_service.rules);

    // The policy comes back: the next passes finish the deletion by themselves.
    w.managed("del", true).await;
    w.settle().await;
    assert_eq!(w.status(&arn).await.0, ecs::ExpressGatewayServiceStatusCode::Inactive);
    let gone = w.snapshot().await;
    assert!(gone.load_balancers.is_empty() && gone.target_groups.is_empty(), "{gone:?}");
    assert_eq!(gone.express_groups(), 0);
    assert!(gone.services.is_empty());
}

#[tokio::test]
async fn a_deletion_denied_at_its_last_step_keeps_every_group() {
    let w = world("retire").await;
    let role = w.role("sg", Some(&deny("ec2:DeleteSecurityGroup"))).await;
    let arn = w.create("web", &role).await.expect("create");
    w.settle().await;
    let s = w.delete(&arn).await;
    // Off the load balancer at once (the role may do that); its only service gone, the load balancer goes.
    assert_eq!(s.status.and_then(|s| s.status_reason).as_deref(), Some("Service deletion requested; draining tasks."));
    assert!(w.snapshot().await.load_balancers.is_empty());
    w.settle().await;
    let (code, reason) = w.status(&arn).await;
    assert_eq!(code, ecs::ExpressGatewayServiceStatusCode::Draining);
    assert!(reason.contains("ec2:DeleteSecurityGroup") && reason.contains(":security-group/sg-"), "{reason}");
    // The step is all or nothing: the target groups it would have deleted first are still there.
    let stuck = w.snapshot().await;
    assert_eq!((stuck.target_groups.len(), stuck.express_groups()), (2, 2));

    // PutRolePolicy replaces the deny: the deletion completes.
    w.put_inline(
        "sg",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}]}"#,
    )
    .await;
    w.settle().await;
    assert_eq!(w.status(&arn).await.0, ecs::ExpressGatewayServiceStatusCode::Inactive);
    let gone = w.snapshot().await;
    assert_eq!((gone.target_groups.len(), gone.express_groups()), (0, 0));
}
