//! The security groups of an Express service, as AWS makes them: a load balancer group (HTTPS and HTTP
//! from anywhere, IPv4 and IPv6) and a service group (the container port from the load balancer group
//! only), both tagged `AmazonECSManaged=true`. The user's own groups and subnets are validated (they exist,
//! same VPC) and added beside the service group, never substituted. The groups berth created go away with
//! the service.

use berth_core::ErrorCode;
use berth_core::cidr::Cidr;
use berth_model::ecs::ExpressGatewayServiceNetworkConfiguration;
use berth_store::{GroupRole, ServiceGroupRow, ServiceRow, Tx};

use super::MANAGED_TAG;
use super::journal::Journal;
use crate::ec2::attachments::managed;
use crate::ec2::groups;
use crate::ec2::rules::{Peer, RuleSpec};
use crate::{Control, ControlError};

const LISTENER_PORTS: [i32; 2] = [443, 80];

fn cidr(s: &str) -> Result<Cidr, ControlError> {
    s.parse().map_err(|_| ControlError::code(ErrorCode::Server, format!("bad built-in CIDR {s}")))
}

/// Creates (once) the service's two groups, validates the user's groups and subnets, records which
/// groups the service uses, and returns the network configuration the revision runs with: the service
/// group first, then the user's groups; the given subnets or the default VPC's public ones. What it does as the
/// infrastructure role goes into `journal`.
pub(crate) fn network_for_revision(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    requested: Option<&ExpressGatewayServiceNetworkConfiguration>,
    container_port: i32,
    journal: &mut Journal,
) -> Result<ExpressGatewayServiceNetworkConfiguration, ControlError> {
    journal.describe("ec2:DescribeSecurityGroups");
    journal.describe("ec2:DescribeSubnets");
    let lb_existing = managed(tx, service.id, GroupRole::LoadBalancer)?;
    let svc_existing = managed(tx, service.id, GroupRole::Service)?;
    let managed_ids: Vec<String> = lb_existing.iter().chain(svc_existing.iter()).map(|g| g.id.clone()).collect();

    // Subnets: given ones must exist and share one VPC; default to the default VPC's public subnets.
    let requested_subnets = requested.and_then(|n| n.subnets.clone()).unwrap_or_default();
    let subnets = if requested_subnets.is_empty() {
        journal.describe("ec2:DescribeVpcs");
        let vpc = tx
            .vpc_default()?
            .ok_or_else(|| ControlError::invalid("There is no default VPC; give networkConfiguration.subnets."))?;
        tx.subnets()?.into_iter().filter(|s| s.vpc_id == vpc.id && s.map_public_ip).collect::<Vec<_>>()
    } else {
        let mut out = Vec::new();
        for id in &requested_subnets {
            let s = tx.subnet_get(id)?.ok_or_else(|| {
                ControlError::invalid(format!("Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist (ErrorCode: InvalidSubnetID.NotFound)"))
            })?;
            out.push(s);
        }
        out
    };
    let Some(vpc_id) = subnets.first().map(|s| s.vpc_id.clone()) else {
        return Err(ControlError::invalid("The default VPC has no public subnets; give networkConfiguration.subnets."));
    };
    if let Some(other) = subnets.iter().find(|s| s.vpc_id != vpc_id) {
        return Err(ControlError::invalid(format!(
            "Subnets {} and {} are in different VPCs; all subnets must be in one VPC.",
            subnets[0].id, other.id
        )));
    }

    // All public (internet-facing load balancer) or all private (internal); a placed service keeps its kind.
    let privacy = crate::ec2::subnets::privacy(&subnets)?;
    if let Some(p) = tx.placement_get(service.id)?
        && let Some(lb) = tx.lb_get(&p.load_balancer_arn)?
    {
        let lb_vpc = crate::elbv2::network::lb_vpc(tx, &lb.arn)?;
        if lb.scheme != privacy.scheme() || lb_vpc != vpc_id {
            return Err(ControlError::invalid(format!(
                "The service's load balancer is {} in {lb_vpc}; the new subnets need an {} one in {vpc_id}. An \
                 Express service cannot move between public and private subnets or between VPCs; create a new \
                 service instead.",
                lb.scheme,
                privacy.scheme()
            )));
        }
    }

    // The user's groups: they exist and are in the subnets' VPC; berth's own groups are not "user" groups.
    let mut user_groups: Vec<String> = Vec::new();
    for id in requested.and_then(|n| n.security_groups.clone()).unwrap_or_default() {
        if managed_ids.contains(&id) || user_groups.contains(&id) {
            continue;
        }
        let g = tx.security_group_get(&id)?.ok_or_else(|| {
            ControlError::invalid(format!("Error retrieving security group information for [{id}]: The security group '{id}' does not exist (ErrorCode: InvalidGroup.NotFound)"))
        })?;
        if g.vpc_id != vpc_id {
            return Err(ControlError::invalid(format!(
                "Security group {id} is in VPC {}, but the subnets are in {vpc_id}.",
                g.vpc_id
            )));
        }
        user_groups.push(id);
    }
    if user_groups.len() + 1 > 5 {
        return Err(ControlError::invalid(
            "networkConfiguration.securityGroups can have at most 4 groups besides the one Express creates.",
        ));
    }

    let tags = vec![(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())];
    let suffix = berth_core::ids::random_hex(6);
    let lb = match lb_existing {
        Some(g) => g,
        None => {
            let g = groups::create_group(
                c,
                tx,
                &format!("ecs-express-{}-lb-{suffix}", service.name),
                &format!("Load balancer security group of Express service {}", service.name),
                &vpc_id,
                &tags,
            )?;
            journal.ec2_create_group(c, &vpc_id, &g.id, &tags);
            let mut specs = Vec::new();
            for port in LISTENER_PORTS {
                for source in ["0.0.0.0/0", "::/0"] {
                    let c = cidr(source)?;
                    let peer = if c.is_ipv4() { Peer::V4(c) } else { Peer::V6(c) };
                    specs.push(RuleSpec {
                        protocol: "tcp".into(),
                        from_port: port,
                        to_port: port,
                        peer,
                        description: None,
                    });
                }
            }
            let added = groups::authorize(c, tx, &g, false, &specs, &tags)?;
            journal.ec2_authorize_ingress(c, tx, &g.id, &rule_ids(&added), &tags)?;
            tx.service_group_put(&ServiceGroupRow {
                service_id: service.id,
                group_id: g.id.clone(),
                role: GroupRole::LoadBalancer,
            })?;
            g
        }
    };
    let svc = match svc_existing {
        Some(g) => g,
        None => {
            let g = groups::create_group(
                c,
                tx,
                &format!("ecs-express-{}-service-{suffix}", service.name),
                &format!("Service security group of Express service {}", service.name),
                &vpc_id,
                &tags,
            )?;
            journal.ec2_create_group(c, &vpc_id, &g.id, &tags);
            tx.service_group_put(&ServiceGroupRow {
                service_id: service.id,
                group_id: g.id.clone(),
                role: GroupRole::Service,
            })?;
            g
        }
    };
    // The container port from the load balancer group: replace a rule for an older port.
    let want = RuleSpec {
        protocol: "tcp".into(),
        from_port: container_port,
        to_port: container_port,
        peer: Peer::Group(lb.id.clone()),
        description: Some("Load balancer to the container port".into()),
    };
    let rules = tx.security_group_rules(&svc.id)?;
    if !rules.iter().any(|r| !r.egress && want.same_as(r)) {
        for r in rules.iter().filter(|r| !r.egress && r.referenced_group_id.as_deref() == Some(lb.id.as_str())) {
            journal.ec2_group(c, tx, "RevokeSecurityGroupIngress", &svc.id)?;
            tx.security_group_rule_delete(&r.id)?;
        }
        let added = groups::authorize(c, tx, &svc, false, std::slice::from_ref(&want), &tags)?;
        journal.ec2_authorize_ingress(c, tx, &svc.id, &rule_ids(&added), &tags)?;
    }

    for a in tx.service_groups(service.id)? {
        if a.role == GroupRole::User && !user_groups.contains(&a.group_id) {
            tx.service_group_remove(service.id, &a.group_id)?;
        }
    }
    for g in &user_groups {
        tx.service_group_put(&ServiceGroupRow { service_id: service.id, group_id: g.clone(), role: GroupRole::User })?;
    }
    let mut security_groups = vec![svc.id];
    security_groups.extend(user_groups);
    Ok(ExpressGatewayServiceNetworkConfiguration {
        security_groups: Some(security_groups),
        subnets: Some(subnets.into_iter().map(|s| s.id).collect()),
    })
}

fn rule_ids(rules: &[berth_model::ec2::SecurityGroupRule]) -> Vec<String> {
    rules.iter().filter_map(|r| r.security_group_rule_id.clone()).collect()
}

/// Records the deletion of the groups berth created for `service_id` (the firewall pass deletes them once the
/// service is INACTIVE and no other group's rule references them).
pub(crate) fn record_group_deletion(
    c: &Control,
    tx: &Tx<'_>,
    service_id: i64,
    journal: &mut Journal,
) -> Result<(), ControlError> {
    for a in tx.service_groups(service_id)? {
        if a.role.created() {
            journal.ec2_group(c, tx, "DeleteSecurityGroup", &a.group_id)?;
        }
    }
    Ok(())
}
