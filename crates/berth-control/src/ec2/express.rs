//! The security groups of an Express service, as AWS makes them: a load balancer group (HTTPS and HTTP
//! from anywhere, IPv4 and IPv6) and a service group (the container port from the load balancer group
//! only), both tagged `AmazonECSManaged=true`. The user's own groups and subnets are validated (they exist,
//! same VPC) and added beside the service group, never substituted. The groups berth created go away with
//! the service.

use berth_core::ErrorCode;
use berth_core::cidr::Cidr;
use berth_core::status::ServiceStatus;
use berth_model::ecs::ExpressGatewayServiceNetworkConfiguration;
use berth_store::{GroupRole, SecurityGroupRow, ServiceGroupRow, ServiceRow, Tx};

use super::groups;
use super::rules::{Peer, RuleSpec};
use crate::iam::provisioning::Journal;
use crate::{Control, ControlError};

const MANAGED_TAG: (&str, &str) = ("AmazonECSManaged", "true");
const LISTENER_PORTS: [i32; 2] = [443, 80];

fn cidr(s: &str) -> Result<Cidr, ControlError> {
    s.parse().map_err(|_| ControlError::code(ErrorCode::Server, format!("bad built-in CIDR {s}")))
}

/// The group attached to `service` in `role`, if any.
fn managed(tx: &Tx<'_>, service_id: i64, role: GroupRole) -> Result<Option<SecurityGroupRow>, ControlError> {
    for a in tx.service_groups(service_id)? {
        if a.role == role {
            return Ok(tx.security_group_get(&a.group_id)?);
        }
    }
    Ok(None)
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
    let privacy = super::subnets::privacy(&subnets)?;
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

/// The load balancer security group of a service, if Express made one.
pub fn load_balancer_group(tx: &Tx<'_>, service_id: i64) -> Result<Option<String>, ControlError> {
    Ok(managed(tx, service_id, GroupRole::LoadBalancer)?.map(|g| g.id))
}

/// Deletes the groups berth created for services that are gone (INACTIVE), and forgets those services'
/// attachments of user groups. A group another group's rule still references stays until that rule goes.
pub(crate) fn release_inactive(tx: &Tx<'_>) -> Result<(), ControlError> {
    let mut doomed: Vec<(i64, String, GroupRole)> = Vec::new();
    for a in tx.service_groups_all()? {
        if tx.service_by_id(a.service_id)?.is_some_and(|s| s.status == ServiceStatus::Inactive) {
            doomed.push((a.service_id, a.group_id, a.role));
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    for (service, group, role) in &doomed {
        if !role.created() {
            tx.service_group_remove(*service, group)?;
        }
    }
    // Delete referencing groups first (the service group references the load balancer group).
    let mut left: Vec<&String> = doomed.iter().filter(|d| d.2.created()).map(|d| &d.1).collect();
    for _ in 0..=left.len() {
        let mut kept = Vec::new();
        for g in left {
            let Some(row) = tx.security_group_get(g)? else { continue };
            // Attachments to INACTIVE services do not count; deleting the group removes them.
            match groups::in_use(tx, &row)? {
                None => {
                    tracing::info!(group = %g, "deleting the security group of a deleted Express service");
                    tx.security_group_delete(g)?;
                }
                Some(_) => kept.push(g),
            }
        }
        left = kept;
        if left.is_empty() {
            break;
        }
    }
    for g in left {
        // Retried on every pass until the referencing rule or group goes.
        tracing::debug!(group = %g, "a deleted service's security group is still referenced by another group's rule; keeping it");
    }
    Ok(())
}

/// What a set of ingress rules admits on each of `ports`, with group references resolved to the addresses
/// of the not-stopped tasks of the services using that group (load balancer attachments do not count).
pub(crate) struct Members {
    tasks: Vec<berth_store::TaskRow>,
    attachments: Vec<ServiceGroupRow>,
}

impl Members {
    pub(crate) fn load(tx: &Tx<'_>) -> Result<Self, ControlError> {
        Ok(Members { tasks: tx.tasks_not_stopped()?, attachments: tx.service_groups_all()? })
    }

    fn of(&self, g: &str) -> Vec<Cidr> {
        let services: Vec<i64> = self
            .attachments
            .iter()
            .filter(|a| a.group_id == g && a.role != GroupRole::LoadBalancer)
            .map(|a| a.service_id)
            .collect();
        self.tasks
            .iter()
            .filter(|t| t.service_id.is_some_and(|s| services.contains(&s)))
            .filter_map(|t| t.ip.as_deref()?.parse().ok())
            .map(Cidr::host)
            .collect()
    }

    pub(crate) fn sources(&self, tx: &Tx<'_>, group: &str, port: u16) -> Result<Vec<Cidr>, ControlError> {
        let rules = tx.security_group_rules(group)?;
        Ok(super::rules::allowed_sources(&rules, port, &|g| self.of(g)))
    }
}

impl Control {
    /// The source networks the load balancer of service `service_id` admits on listener `port`, from its
    /// load balancer security group's ingress rules (a group reference stands for that group's tasks).
    /// `None` when the service has no load balancer group. The route table's load balancer sources
    /// ([`crate::elbv2::network`]) are the union of these over a load balancer's services.
    pub fn load_balancer_allowed_sources(&self, service_id: i64, port: u16) -> Result<Option<Vec<Cidr>>, ControlError> {
        self.read(|tx| {
            let Some(group) = load_balancer_group(tx, service_id)? else {
                return Ok(None);
            };
            Ok(Some(Members::load(tx)?.sources(tx, &group, port)?))
        })
    }
}
