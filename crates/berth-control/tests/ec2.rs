//! EC2 over the in-memory driver: the default VPC from first start, Express's two security groups, the
//! firewall policy the reconciler hands to the runtime, and the groups going away with their service.

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::{ec2, ecs};
use berth_runtime::firewall::{Allow, Protocol};

mod common;

use common::Harness;

fn config() -> ControlConfig {
    ControlConfig { drain_timeout: std::time::Duration::from_secs(0), ..ControlConfig::default() }
}

fn world(name: &str) -> Harness {
    Harness::new(&format!("ec2-{name}"), |_| config())
}

impl Harness {
    async fn ecs(&self, op: ecs::Operation) -> Result<ecs::Output, berth_core::AwsError> {
        self.control.handle_ecs(&self.caller, op).await
    }

    async fn create(&self, name: &str, groups: &[&str]) -> Result<ecs::ECSExpressGatewayService, berth_core::AwsError> {
        self.create_service(ecs::CreateExpressGatewayServiceRequest {
            primary_container: Some(ecs::ExpressGatewayContainer {
                container_port: Some(8080),
                ..common::demo_container()
            }),
            network_configuration: (!groups.is_empty()).then(|| ecs::ExpressGatewayServiceNetworkConfiguration {
                security_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
                subnets: None,
            }),
            ..common::named(name)
        })
        .await
    }

    async fn vpcs(&self) -> Vec<ec2::Vpc> {
        let Ok(ec2::Output::DescribeVpcs(r)) = self.ec2(ec2::Operation::DescribeVpcs(Default::default())).await else {
            panic!("describe vpcs")
        };
        r.vpcs.unwrap_or_default()
    }

    async fn groups(&self, filters: Vec<ec2::Filter>) -> Vec<ec2::SecurityGroup> {
        let out = self
            .ec2(ec2::Operation::DescribeSecurityGroups(ec2::DescribeSecurityGroupsRequest {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("describe groups");
        let ec2::Output::DescribeSecurityGroups(r) = out else { panic!("wrong output") };
        r.security_groups.unwrap_or_default()
    }
}

fn filter(name: &str, value: &str) -> ec2::Filter {
    ec2::Filter { name: Some(name.into()), values: Some(vec![value.into()]) }
}

fn service_groups(s: &ecs::ECSExpressGatewayService) -> Vec<String> {
    s.active_configurations
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.network_configuration.as_ref())
        .and_then(|n| n.security_groups.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_default_vpc_exists_from_first_start_and_takes_the_networks_subnet() {
    let mut w = world("vpc");
    let before = w.vpcs().await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].is_default, Some(true));
    assert_eq!(before[0].cidr_block.as_deref(), Some("172.31.0.0/16"), "AWS's block until the network is known");
    w.settle().await;
    let after = w.vpcs().await;
    assert_eq!(after[0].vpc_id, before[0].vpc_id);
    assert_eq!(after[0].cidr_block.as_deref(), Some("10.99.0.0/16"), "the memory network's subnet");
    let Ok(ec2::Output::DescribeSubnets(s)) = w.ec2(ec2::Operation::DescribeSubnets(Default::default())).await else {
        panic!("subnets")
    };
    let cidrs: Vec<String> = s.subnets.unwrap_or_default().into_iter().filter_map(|s| s.cidr_block).collect();
    assert_eq!(cidrs, ["10.99.0.0/20", "10.99.16.0/20", "10.99.32.0/20"]);
    let default = w.groups(vec![filter("group-name", "default")]).await;
    assert_eq!(default.len(), 1);
    w.restart();
    assert_eq!(w.vpcs().await[0].vpc_id, before[0].vpc_id, "created once, whatever the restarts");
    assert_eq!(w.groups(vec![filter("group-name", "default")]).await.len(), 1);
}

#[tokio::test]
async fn express_groups_become_the_firewall_policy() {
    let mut w = world("express");
    w.create_express_roles().await;
    w.settle().await;
    let err = w.create("bad", &["sg-00000000000000000"]).await.expect_err("unknown group");
    assert_eq!(err.code, ErrorCode::InvalidParameter);
    assert!(w.groups(vec![filter("tag:AmazonECSManaged", "true")]).await.is_empty(), "a failed create leaves no group");

    let web = w.create("web", &[]).await.expect("web");
    let Ok(ec2::Output::CreateSecurityGroup(extra)) = w
        .ec2(ec2::Operation::CreateSecurityGroup(ec2::CreateSecurityGroupRequest {
            group_name: Some("extra".into()),
            description: Some("mine".into()),
            ..Default::default()
        }))
        .await
    else {
        panic!("create group")
    };
    let extra = extra.group_id.expect("id");
    let api = w.create("api", &[&extra]).await.expect("api");
    let (web_groups, api_groups) = (service_groups(&web), service_groups(&api));
    assert_eq!(web_groups.len(), 1);
    assert_eq!(api_groups[1..], *std::slice::from_ref(&extra), "the user's group is added after Express's own");
    assert_eq!(w.groups(vec![filter("tag:AmazonECSManaged", "true")]).await.len(), 4, "two groups per service");
    w.settle().await;

    let policy = w.driver.firewall().expect("a policy was applied");
    assert_eq!(policy.owner, w.control.instance_id());
    assert_eq!(policy.tasks.len(), 2, "{policy:?}");
    let gateway: berth_core::cidr::Cidr = "10.99.0.1/32".parse().expect("cidr");
    for t in &policy.tasks {
        assert_eq!(
            t.allow,
            [Allow { protocol: Protocol::Tcp, ports: Some((8080, 8080)), source: gateway }],
            "only the load balancer reaches the container port"
        );
    }

    // The load balancer admits anyone on 443 and 80, nobody on other ports (the proxy's source filter).
    let show =
        |v: Option<Vec<berth_core::cidr::Cidr>>| v.map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>());
    let lb443 =
        (1..=2).map(|id| show(w.control.load_balancer_allowed_sources(id, 443).expect("sources"))).collect::<Vec<_>>();
    assert!(
        lb443.iter().all(|s| s.as_deref() == Some(&["0.0.0.0/0".to_string(), "::/0".to_string()][..])),
        "{lb443:?}"
    );
    assert_eq!(show(w.control.load_balancer_allowed_sources(1, 8443).expect("sources")), Some(vec![]));
    assert_eq!(w.control.load_balancer_allowed_sources(99, 443).expect("sources"), None);

    // A restarted control plane applies the same policy (restart-safe).
    let (before, syncs) = (w.driver.firewall(), w.driver.firewall_syncs());
    w.restart();
    w.settle().await;
    assert!(w.driver.firewall_syncs() > syncs, "a new control plane applies its policy at its first pass");
    assert_eq!(w.driver.firewall(), before);

    // Let api's tasks into web through api's user group: web's entry gains api's task address.
    w.ec2(ec2::Operation::AuthorizeSecurityGroupIngress(ec2::AuthorizeSecurityGroupIngressRequest {
        group_id: Some(web_groups[0].clone()),
        ip_permissions: Some(vec![ec2::IpPermission {
            ip_protocol: Some("tcp".into()),
            from_port: Some(8080),
            to_port: Some(8080),
            user_id_group_pairs: Some(vec![ec2::UserIdGroupPair {
                group_id: Some(extra.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        ..Default::default()
    }))
    .await
    .expect("authorize");
    let syncs = w.driver.firewall_syncs();
    w.settle().await;
    assert!(w.driver.firewall_syncs() > syncs, "a rule change is applied on the next pass");
    let policy = w.driver.firewall().expect("policy");
    let sources: Vec<usize> = policy.tasks.iter().map(|t| t.allow.len()).collect();
    assert_eq!(sources.iter().sum::<usize>(), 3, "{policy:?}");
    assert!(policy.egress.is_empty(), "Express's groups keep EC2's default egress rule: {policy:?}");

    // Revoking web's default egress restricts web's task to nothing (the world serves no task endpoint);
    // allowing api's user group on 8080 lets it reach api's task only; restoring the default lifts it.
    let egress = |peer: ec2::IpPermission| ec2::RevokeSecurityGroupEgressRequest {
        group_id: Some(web_groups[0].clone()),
        ip_permissions: Some(vec![peer]),
        ..Default::default()
    };
    let everything = ec2::IpPermission {
        ip_protocol: Some("-1".into()),
        ip_ranges: Some(vec![ec2::IpRange { cidr_ip: Some("0.0.0.0/0".into()), ..Default::default() }]),
        ..Default::default()
    };
    let to_api = ec2::IpPermission {
        ip_protocol: Some("tcp".into()),
        from_port: Some(8080),
        to_port: Some(8080),
        user_id_group_pairs: Some(vec![ec2::UserIdGroupPair { group_id: Some(extra.clone()), ..Default::default() }]),
        ..Default::default()
    };
    w.ec2(ec2::Operation::RevokeSecurityGroupEgress(egress(everything.clone()))).await.expect("revoke egress");
    w.settle().await;
    let policy = w.driver.firewall().expect("policy");
    let web_ip = policy.egress.first().map(|e| e.address).expect("web's task is restricted");
    assert_eq!(policy.egress.len(), 1, "{policy:?}");
    assert!(policy.egress[0].allow.is_empty(), "{policy:?}");
    w.restart();
    w.settle().await;
    assert_eq!(w.driver.firewall().as_ref(), Some(&policy), "a restarted control plane restricts the same task");
    let api_ip = policy.tasks.iter().map(|t| t.address).find(|a| *a != web_ip).expect("api's task");
    let r = egress(to_api);
    w.ec2(ec2::Operation::AuthorizeSecurityGroupEgress(ec2::AuthorizeSecurityGroupEgressRequest {
        group_id: r.group_id.clone(),
        ip_permissions: r.ip_permissions.clone(),
        ..Default::default()
    }))
    .await
    .expect("authorize egress");
    w.settle().await;
    let policy = w.driver.firewall().expect("policy");
    assert_eq!(
        policy.egress[0].allow,
        [Allow { protocol: Protocol::Tcp, ports: Some((8080, 8080)), source: berth_core::cidr::Cidr::host(api_ip) }]
    );
    w.ec2(ec2::Operation::AuthorizeSecurityGroupEgress(ec2::AuthorizeSecurityGroupEgressRequest {
        group_id: Some(web_groups[0].clone()),
        ip_permissions: Some(vec![everything]),
        ..Default::default()
    }))
    .await
    .expect("restore the default");
    w.settle().await;
    assert!(w.driver.firewall().expect("policy").egress.is_empty(), "the default rule lifts the restriction");

    // The user's group is in use, and so is a group another rule references.
    let e = w
        .ec2(ec2::Operation::DeleteSecurityGroup(ec2::DeleteSecurityGroupRequest {
            group_id: Some(extra.clone()),
            ..Default::default()
        }))
        .await
        .expect_err("in use");
    assert_eq!(e.code, ErrorCode::Ec2DependencyViolation);

    // Deleting both services deletes the four groups Express made; the user's group stays.
    for s in [&web, &api] {
        w.ecs(ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
            service_arn: s.service_arn.clone(),
        }))
        .await
        .expect("delete");
    }
    for _ in 0..5 {
        w.settle().await;
    }
    assert!(w.groups(vec![filter("tag:AmazonECSManaged", "true")]).await.is_empty());
    assert_eq!(w.groups(vec![filter("group-id", &extra)]).await.len(), 1);
    assert!(w.driver.firewall().expect("policy").tasks.is_empty(), "no task left to protect");
}

#[tokio::test]
async fn an_update_keeps_the_managed_groups_and_follows_the_port_and_the_users_groups() {
    let w = world("update");
    w.create_express_roles().await;
    w.settle().await;
    let mut extra = Vec::new();
    for name in ["one", "two"] {
        let Ok(ec2::Output::CreateSecurityGroup(g)) = w
            .ec2(ec2::Operation::CreateSecurityGroup(ec2::CreateSecurityGroupRequest {
                group_name: Some(name.into()),
                description: Some(name.into()),
                ..Default::default()
            }))
            .await
        else {
            panic!("create group")
        };
        extra.push(g.group_id.expect("id"));
    }
    let web = w.create("web", &[&extra[0]]).await.expect("web");
    let groups = service_groups(&web);
    let managed = groups[0].clone();
    // The user passes back what Describe showed, swaps their group, and changes the port.
    let out = w
        .ecs(ecs::Operation::UpdateExpressGatewayService(ecs::UpdateExpressGatewayServiceRequest {
            service_arn: web.service_arn.clone(),
            primary_container: Some(ecs::ExpressGatewayContainer {
                image: Some("berth-demo:latest".into()),
                container_port: Some(9090),
                ..Default::default()
            }),
            network_configuration: Some(ecs::ExpressGatewayServiceNetworkConfiguration {
                security_groups: Some(vec![managed.clone(), extra[1].clone()]),
                subnets: None,
            }),
            ..Default::default()
        }))
        .await
        .expect("update");
    let ecs::Output::UpdateExpressGatewayService(u) = out else { panic!("wrong output") };
    let target = u.service.and_then(|s| s.target_configuration).expect("target");
    let net = target.network_configuration.expect("network");
    assert_eq!(net.security_groups, Some(vec![managed.clone(), extra[1].clone()]), "no second managed group");
    assert_eq!(w.groups(vec![filter("tag:AmazonECSManaged", "true")]).await.len(), 2);
    let [svc] = &w.groups(vec![filter("group-id", &managed)]).await[..] else { panic!("one group") };
    let ports: Vec<(Option<i32>, Option<i32>)> =
        svc.ip_permissions.iter().flatten().map(|p| (p.from_port, p.to_port)).collect();
    assert_eq!(ports, [(Some(9090), Some(9090))], "the container-port rule follows the port");
    // The first user group is free again; the second is in use.
    w.ec2(ec2::Operation::DeleteSecurityGroup(ec2::DeleteSecurityGroupRequest {
        group_id: Some(extra[0].clone()),
        ..Default::default()
    }))
    .await
    .expect("no longer used");
    let e = w
        .ec2(ec2::Operation::DeleteSecurityGroup(ec2::DeleteSecurityGroupRequest {
            group_id: Some(extra[1].clone()),
            ..Default::default()
        }))
        .await
        .expect_err("in use");
    assert_eq!(e.code, ErrorCode::Ec2DependencyViolation);
}

fn tcp_443(v4: &[&str], v6: &[&str]) -> Vec<ec2::IpPermission> {
    vec![ec2::IpPermission {
        ip_protocol: Some("tcp".into()),
        from_port: Some(443),
        to_port: Some(443),
        ip_ranges: Some(v4.iter().map(|c| ec2::IpRange { cidr_ip: Some((*c).into()), ..Default::default() }).collect()),
        ipv6_ranges: Some(
            v6.iter().map(|c| ec2::Ipv6Range { cidr_ipv6: Some((*c).into()), ..Default::default() }).collect(),
        ),
        ..Default::default()
    }]
}

#[tokio::test]
async fn narrowing_the_load_balancer_group_publishes_a_narrower_source_filter_at_once() {
    // The filter belongs to the load balancer (the union of its groups), see tests/lb.rs for several services.
    let w = world("lbsources");
    w.create_express_roles().await;
    w.settle().await;
    w.create("web", &[]).await.expect("web");
    w.settle().await;
    let routes = w.control.subscribe_routes();
    let filter_of = |host: &str| {
        let table = routes.borrow().clone();
        let f = table.load_balancers.iter().find(|l| l.hosts.iter().any(|h| h == host)).cloned();
        (table.version, f.and_then(|l| l.sources).map(|s| (s.https, s.http)))
    };
    let hosts: Vec<Vec<String>> = routes.borrow().load_balancers.iter().map(|l| l.hosts.clone()).collect();
    assert_eq!(hosts.len(), 1, "one load balancer with the service's endpoint: {hosts:?}");
    let host = hosts[0][0].clone();
    assert!(host.starts_with("web-"), "{host}");
    let any = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    let (v1, f) = filter_of(&host);
    assert_eq!(f, Some((any.clone(), any.clone())), "Express's load balancer group admits everyone");

    let lb = w.groups(vec![filter("group-name", "ecs-express-web-lb-*")]).await;
    let lb = lb.first().and_then(|g| g.group_id.clone()).expect("the load balancer group");
    w.ec2(ec2::Operation::RevokeSecurityGroupIngress(ec2::RevokeSecurityGroupIngressRequest {
        group_id: Some(lb.clone()),
        ip_permissions: Some(tcp_443(&["0.0.0.0/0"], &["::/0"])),
        ..Default::default()
    }))
    .await
    .expect("revoke");
    let (v2, f) = filter_of(&host);
    assert!(v2 > v1, "published by the revoke itself, without a reconcile pass");
    assert_eq!(f, Some((vec![], any.clone())), "nobody on 443, HTTP untouched");

    w.ec2(ec2::Operation::AuthorizeSecurityGroupIngress(ec2::AuthorizeSecurityGroupIngressRequest {
        group_id: Some(lb.clone()),
        ip_permissions: Some(tcp_443(&["127.0.0.1/32"], &[])),
        ..Default::default()
    }))
    .await
    .expect("authorize");
    let (v3, f) = filter_of(&host);
    assert!(v3 > v2);
    assert_eq!(f, Some((vec!["127.0.0.1/32".to_string()], any.clone())));

    // A pass with nothing changed publishes nothing new.
    w.settle().await;
    assert_eq!(filter_of(&host).0, v3);
}

/// EC2 authorizes each security-group operation on the group's ARN, with its tags as `aws:ResourceTag/...`: a
/// user allowed on one group (by ARN, or by tag) is allowed there and denied on the other.
#[tokio::test]
async fn security_group_calls_are_authorized_on_the_group_arn_and_its_tags() {
    let w = world("authz");
    let mut ids = Vec::new();
    for (name, team) in [("a", "red"), ("b", "blue")] {
        let Ok(ec2::Output::CreateSecurityGroup(g)) = w
            .ec2(ec2::Operation::CreateSecurityGroup(ec2::CreateSecurityGroupRequest {
                group_name: Some(name.into()),
                description: Some(name.into()),
                tag_specifications: Some(vec![ec2::TagSpecification {
                    resource_type: Some(ec2::ResourceType::SecurityGroup),
                    tags: Some(vec![ec2::Tag { key: Some("team".into()), value: Some(team.into()) }]),
                }]),
                ..Default::default()
            }))
            .await
        else {
            panic!("create group {name}")
        };
        ids.push(g.group_id.expect("id"));
    }
    let arn = |id: &str| format!("arn:aws:ec2:{}:{}:security-group/{id}", w.control.region(), w.control.account_id());
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"ec2:AuthorizeSecurityGroupIngress","Resource":"{}"}},
            {{"Effect":"Allow","Action":"ec2:RevokeSecurityGroupIngress","Resource":"*",
              "Condition":{{"StringEquals":{{"aws:ResourceTag/team":"red"}}}}}}]}}"#,
        arn(&ids[0])
    );
    let user = common::user_with(&w.control, "alice", &policy).await;
    let permission = || ec2::IpPermission {
        ip_protocol: Some("tcp".into()),
        from_port: Some(8080),
        to_port: Some(8080),
        ip_ranges: Some(vec![ec2::IpRange { cidr_ip: Some("10.0.0.0/8".into()), ..Default::default() }]),
        ..Default::default()
    };
    let authorize = |id: &str| {
        ec2::Operation::AuthorizeSecurityGroupIngress(ec2::AuthorizeSecurityGroupIngressRequest {
            group_id: Some(id.into()),
            ip_permissions: Some(vec![permission()]),
            ..Default::default()
        })
    };
    let revoke = |id: &str| {
        ec2::Operation::RevokeSecurityGroupIngress(ec2::RevokeSecurityGroupIngressRequest {
            group_id: Some(id.into()),
            ip_permissions: Some(vec![permission()]),
            ..Default::default()
        })
    };
    let code = |r: Result<ec2::Output, berth_core::AwsError>| r.map(|_| ()).map_err(|e| e.code);
    assert_eq!(code(w.control.handle_ec2(&user, authorize(&ids[0])).await), Ok(()), "allowed on its group's ARN");
    let denied = w.control.handle_ec2(&user, authorize(&ids[1])).await.expect_err("denied on the other group");
    assert_eq!(denied.code, ErrorCode::AccessDenied);
    assert!(denied.message.contains(&arn(&ids[1])), "the denial names the group: {}", denied.message);
    // The root user opens b so that a revoke there would have something to remove.
    w.ec2(authorize(&ids[1])).await.expect("root authorizes b");
    assert_eq!(code(w.control.handle_ec2(&user, revoke(&ids[0])).await), Ok(()), "allowed by the group's tag");
    assert_eq!(code(w.control.handle_ec2(&user, revoke(&ids[1])).await), Err(ErrorCode::AccessDenied));
}
