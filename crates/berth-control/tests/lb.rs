//! Load balancers and where they listen, over the in-memory driver: private subnets (CreateSubnet,
//! ModifySubnetAttribute, DeleteSubnet), public and private Express services on separate load balancers
//! (internet-facing vs internal, per VPC), `accessType` PRIVATE, the internal load balancer on the network's
//! gateway, public load balancers on addresses of the pool, the source filter as the union of a load
//! balancer's groups (user-rule hosts included), and the idle timeout attribute in the route table.

use std::net::{IpAddr, SocketAddr};

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_model::{ec2, ecs};
use berth_routes::Scheme;

mod common;

use common::Harness;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

async fn world(name: &str, pool: &[&str]) -> Harness {
    let pool: Vec<IpAddr> = pool.iter().map(|a| ip(a)).collect();
    let config = ControlConfig { address_pool: pool, https_port: 8443, http_port: 8080, ..ControlConfig::default() };
    let w = Harness::new(&format!("lb-{name}"), |_| config);
    w.create_express_roles().await;
    // The first passes create the network and learn its subnet (10.99.0.0/16) and gateway (10.99.0.1).
    w.settle().await;
    w
}

impl Harness {
    async fn vpc(&self) -> String {
        let Ok(ec2::Output::DescribeVpcs(r)) = self.ec2(ec2::Operation::DescribeVpcs(Default::default())).await else {
            panic!("describe vpcs")
        };
        r.vpcs.unwrap_or_default()[0].vpc_id.clone().expect("id")
    }

    async fn subnet(&self, cidr: &str) -> Result<ec2::Subnet, berth_core::AwsError> {
        let vpc = self.vpc().await;
        let out = self
            .ec2(ec2::Operation::CreateSubnet(ec2::CreateSubnetRequest {
                vpc_id: Some(vpc),
                cidr_block: Some(cidr.into()),
                ..Default::default()
            }))
            .await?;
        let ec2::Output::CreateSubnet(r) = out else { panic!("wrong output") };
        Ok(r.subnet.expect("subnet"))
    }

    async fn create(
        &self,
        name: &str,
        subnets: &[&str],
    ) -> Result<ecs::ECSExpressGatewayService, berth_core::AwsError> {
        let service = self
            .create_service(ecs::CreateExpressGatewayServiceRequest {
                network_configuration: (!subnets.is_empty()).then(|| ecs::ExpressGatewayServiceNetworkConfiguration {
                    security_groups: None,
                    subnets: Some(subnets.iter().map(|s| s.to_string()).collect()),
                }),
                ..common::named(name)
            })
            .await?;
        self.settle().await;
        Ok(service)
    }

    async fn lbs(&self) -> Vec<elb::LoadBalancer> {
        let Ok(EO::DescribeLoadBalancers(o)) = self.elb(E::DescribeLoadBalancers(Default::default())).await else {
            panic!("describe load balancers")
        };
        o.load_balancers.unwrap_or_default()
    }

    /// The route table's load balancer serving `host`.
    fn table_lb(&self, host: &str) -> berth_routes::LoadBalancer {
        self.table().load_balancers.iter().find(|l| l.hosts.iter().any(|h| h == host)).cloned().expect("served")
    }

    async fn lb_group(&self, service: &str) -> String {
        let out = self
            .ec2(ec2::Operation::DescribeSecurityGroups(ec2::DescribeSecurityGroupsRequest {
                filters: Some(vec![ec2::Filter {
                    name: Some("group-name".into()),
                    values: Some(vec![format!("ecs-express-{service}-lb-*")]),
                }]),
                ..Default::default()
            }))
            .await
            .expect("describe groups");
        let ec2::Output::DescribeSecurityGroups(r) = out else { panic!("wrong output") };
        r.security_groups.unwrap_or_default()[0].group_id.clone().expect("id")
    }

    async fn ingress(&self, group: &str, revoke: bool, v4: &[&str], v6: &[&str]) {
        let perms = vec![ec2::IpPermission {
            ip_protocol: Some("tcp".into()),
            from_port: Some(443),
            to_port: Some(443),
            ip_ranges: Some(
                v4.iter().map(|c| ec2::IpRange { cidr_ip: Some((*c).into()), ..Default::default() }).collect(),
            ),
            ipv6_ranges: Some(
                v6.iter().map(|c| ec2::Ipv6Range { cidr_ipv6: Some((*c).into()), ..Default::default() }).collect(),
            ),
            ..Default::default()
        }];
        let op = if revoke {
            ec2::Operation::RevokeSecurityGroupIngress(ec2::RevokeSecurityGroupIngressRequest {
                group_id: Some(group.into()),
                ip_permissions: Some(perms),
                ..Default::default()
            })
        } else {
            ec2::Operation::AuthorizeSecurityGroupIngress(ec2::AuthorizeSecurityGroupIngressRequest {
                group_id: Some(group.into()),
                ip_permissions: Some(perms),
                ..Default::default()
            })
        };
        self.ec2(op).await.expect("ingress change");
    }
}

fn access_type(s: &ecs::ECSExpressGatewayService) -> Option<ecs::AccessType> {
    s.active_configurations.as_ref()?.first()?.ingress_paths.as_ref()?.first()?.access_type
}

#[tokio::test]
async fn private_services_get_an_internal_load_balancer_on_the_gateway_never_shared_with_public_ones() {
    let w = world("private", &[]).await;
    let a = w.subnet("10.99.128.0/20").await.expect("subnet a");
    let b = w.subnet("10.99.144.0/20").await.expect("subnet b");
    assert_eq!(a.map_public_ip_on_launch, Some(false), "a new subnet is private, as on AWS");
    let (a, b) = (a.subnet_id.expect("id"), b.subnet_id.expect("id"));

    // Bad subnets: overlapping, outside the VPC.
    let err = |r: Result<ec2::Subnet, berth_core::AwsError>| r.expect_err("refused").code;
    assert_eq!(err(w.subnet("10.99.130.0/24").await), ErrorCode::Ec2InvalidSubnetConflict);
    assert_eq!(err(w.subnet("10.98.0.0/24").await), ErrorCode::Ec2InvalidSubnetRange);
    assert_eq!(err(w.subnet("10.99.0.0/30").await), ErrorCode::Ec2InvalidSubnetRange, "smaller than /28");

    let public = w.create("pub", &[]).await.expect("public service");
    let private = w.create("priv", &[&a, &b]).await.expect("private service");
    let private2 = w.create("priv2", &[&b]).await.expect("second private service");
    assert_eq!(access_type(&public), Some(ecs::AccessType::Public));
    assert_eq!(access_type(&private), Some(ecs::AccessType::Private));

    let lbs = w.lbs().await;
    assert_eq!(lbs.len(), 2, "public and private services never share a load balancer");
    let internal = lbs.iter().find(|l| l.scheme == Some(elb::LoadBalancerSchemeEnum::Internal)).expect("internal");
    let facing = lbs.iter().find(|l| l.scheme == Some(elb::LoadBalancerSchemeEnum::InternetFacing)).expect("public");
    assert!(internal.dns_name.as_deref().is_some_and(|d| d.starts_with("internal-ecs-express-gateway-alb-")));
    assert_eq!(internal.vpc_id.as_deref(), Some(w.vpc().await.as_str()));
    assert_eq!(internal.security_groups.as_ref().map(Vec::len), Some(2), "both private services' groups");
    // Every target group is in its load balancer's VPC.
    let groups = match w.elb(E::DescribeTargetGroups(Default::default())).await.expect("groups") {
        EO::DescribeTargetGroups(r) => r.target_groups.unwrap_or_default(),
        other => panic!("{other:?}"),
    };
    assert_eq!(groups.len(), 6, "two per service");
    for g in &groups {
        assert!(g.vpc_id.is_some() && g.vpc_id == internal.vpc_id, "{g:?}");
    }

    // The table: the internal one listens on the gateway only, the public one shares the default sockets.
    let t_int = w.table_lb(&common::endpoint(&private));
    assert_eq!(t_int.scheme, Scheme::Internal);
    assert_eq!(t_int.arn, internal.load_balancer_arn.clone().expect("arn"));
    assert_eq!((t_int.https_listen, t_int.http_listen), (Some(addr("10.99.0.1:8443")), Some(addr("10.99.0.1:8080"))));
    assert!(t_int.hosts.contains(&common::endpoint(&private2)));
    let t_pub = w.table_lb(&common::endpoint(&public));
    assert_eq!((t_pub.scheme, t_pub.https_listen), (Scheme::InternetFacing, None));
    assert_eq!(Some(&t_pub.arn), facing.load_balancer_arn.as_ref());
    let table = w.table();
    let rule_lb = |h: &str| {
        table.rules.iter().find(|r| format!("{:?}", r.conditions).contains(h)).and_then(|r| r.load_balancer.clone())
    };
    assert_eq!(rule_lb(&common::endpoint(&private)), Some(t_int.arn.clone()));
    assert_eq!(rule_lb(&common::endpoint(&public)), Some(t_pub.arn.clone()));

    // Mixed subnets are refused; so is moving a used subnet between public and private, or deleting it.
    let default = w
        .ec2(ec2::Operation::DescribeSubnets(Default::default()))
        .await
        .map(|o| match o {
            ec2::Output::DescribeSubnets(r) => r.subnets.unwrap_or_default(),
            _ => vec![],
        })
        .expect("subnets")
        .into_iter()
        .find(|s| s.default_for_az == Some(true))
        .and_then(|s| s.subnet_id)
        .expect("a default subnet");
    let mixed = w.create("mixed", &[&a, &default]).await.expect_err("mixed subnets");
    assert_eq!(mixed.code, ErrorCode::InvalidParameter);
    assert!(mixed.message.contains(&a) && mixed.message.contains(&default), "{}", mixed.message);
    let modify = |id: &str, public: bool| {
        ec2::Operation::ModifySubnetAttribute(ec2::ModifySubnetAttributeRequest {
            subnet_id: Some(id.into()),
            map_public_ip_on_launch: Some(ec2::AttributeBooleanValue { value: Some(public) }),
            ..Default::default()
        })
    };
    assert_eq!(w.ec2(modify(&a, true)).await.expect_err("in use").code, ErrorCode::Ec2DependencyViolation);
    let delete = |id: &str| {
        ec2::Operation::DeleteSubnet(ec2::DeleteSubnetRequest { subnet_id: Some(id.into()), ..Default::default() })
    };
    assert_eq!(w.ec2(delete(&b)).await.expect_err("in use").code, ErrorCode::Ec2DependencyViolation);

    // An unused private subnet made public serves public services.
    let c = w.subnet("10.99.160.0/20").await.expect("subnet c").subnet_id.expect("id");
    w.ec2(modify(&c, true)).await.expect("now public");
    let public2 = w.create("pub2", &[&c]).await.expect("public on a made-public subnet");
    assert_eq!(access_type(&public2), Some(ecs::AccessType::Public));
    assert_eq!(w.table_lb(&common::endpoint(&public2)).arn, t_pub.arn, "shares the public load balancer");
    let d = w.subnet("10.99.176.0/20").await.expect("subnet d").subnet_id.expect("id");
    w.ec2(delete(&d)).await.expect("an unused subnet is deleted");
    assert_eq!(w.ec2(delete(&d)).await.expect_err("gone").code, ErrorCode::Ec2InvalidSubnetIdNotFound);
}

#[tokio::test]
async fn the_filter_is_the_union_of_a_load_balancers_groups_and_covers_user_rule_hosts() {
    let w = world("union", &[]).await;
    let one = w.create("one", &[]).await.expect("one");
    w.create("two", &[]).await.expect("two");
    let any = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    let sources = |w: &Harness| w.table_lb(&common::endpoint(&one)).sources.map(|s| s.https);
    assert_eq!(sources(&w), Some(any.clone()));

    let (g1, g2) = (w.lb_group("one").await, w.lb_group("two").await);
    w.ingress(&g1, true, &["0.0.0.0/0"], &["::/0"]).await;
    w.ingress(&g1, false, &["127.0.0.1/32"], &[]).await;
    assert_eq!(sources(&w), Some(vec!["0.0.0.0/0".into(), "127.0.0.1/32".into(), "::/0".into()]), "the union");
    w.ingress(&g2, true, &["0.0.0.0/0"], &["::/0"]).await;
    assert_eq!(sources(&w), Some(vec!["127.0.0.1/32".into()]), "narrowed for every host of the load balancer");

    // A user rule's host belongs to the load balancer too.
    let lb = w.table_lb(&common::endpoint(&one)).arn;
    let listener = w.https_listener(&lb).await;
    w.elb(E::CreateRule(elb::CreateRuleInput {
        listener_arn: Some(listener),
        priority: Some(100),
        conditions: Some(vec![elb::RuleCondition {
            field: Some("host-header".into()),
            values: Some(vec!["custom.example.com".into()]),
            ..Default::default()
        }]),
        actions: Some(vec![elb::Action {
            r#type: Some(elb::ActionTypeEnum::FixedResponse),
            fixed_response_config: Some(elb::FixedResponseActionConfig {
                status_code: Some("200".into()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }))
    .await
    .expect("user rule");
    assert_eq!(w.table_lb("custom.example.com").arn, lb);
    assert_eq!(w.table_lb("custom.example.com").sources.map(|s| s.https), Some(vec!["127.0.0.1/32".into()]));
}

#[tokio::test]
async fn public_load_balancers_take_pool_addresses_and_carry_their_idle_timeout() {
    let mut w = world("pool", &["127.0.0.5"]).await;
    let public = w.create("web", &[]).await.expect("web");
    let private_subnet = w.subnet("10.99.128.0/20").await.expect("subnet").subnet_id.expect("id");
    let private = w.create("inner", &[&private_subnet]).await.expect("inner");
    let t = w.table_lb(&common::endpoint(&public));
    assert_eq!((t.https_listen, t.http_listen), (Some(addr("127.0.0.5:8443")), Some(addr("127.0.0.5:8080"))));
    assert_eq!(
        w.table_lb(&common::endpoint(&private)).https_listen,
        Some(addr("10.99.0.1:8443")),
        "internal: never the pool"
    );
    assert_eq!(t.idle_timeout_secs, Some(60), "ALB's default");

    w.elb(E::ModifyLoadBalancerAttributes(elb::ModifyLoadBalancerAttributesInput {
        load_balancer_arn: Some(t.arn.clone()),
        attributes: Some(vec![elb::LoadBalancerAttribute {
            key: Some("idle_timeout.timeout_seconds".into()),
            value: Some("5".into()),
        }]),
    }))
    .await
    .expect("modify");
    assert_eq!(w.table_lb(&common::endpoint(&public)).idle_timeout_secs, Some(5), "published at once");

    // The pool has one address: a second internet-facing load balancer (the 26th public service) would share
    // the default sockets. The address survives a restart.
    w.restart();
    w.settle().await;
    assert_eq!(w.table_lb(&common::endpoint(&public)).https_listen, Some(addr("127.0.0.5:8443")));
}
