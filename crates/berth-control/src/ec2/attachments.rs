//! Which services use which security groups (`service_groups` rows): a service's load balancer group, the task
//! addresses a group reference stands for, and the release of the groups of deleted services.

use std::collections::HashMap;

use berth_core::cidr::Cidr;
use berth_core::status::ServiceStatus;
use berth_store::{GroupRole, SecurityGroupRow, SecurityGroupRuleRow, ServiceGroupRow, Tx};

use super::groups;
use crate::{Control, ControlError};

/// The group attached to `service` in `role`, if any.
pub(crate) fn managed(tx: &Tx<'_>, service_id: i64, role: GroupRole) -> Result<Option<SecurityGroupRow>, ControlError> {
    for a in tx.service_groups(service_id)? {
        if a.role == role {
            return Ok(tx.security_group_get(&a.group_id)?);
        }
    }
    Ok(None)
}

/// The load balancer security group of a service, if Express made one.
pub(crate) fn load_balancer_group(tx: &Tx<'_>, service_id: i64) -> Result<Option<String>, ControlError> {
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
/// Everything is read in three queries, so a route table over many services costs no query per service.
pub(crate) struct Members {
    tasks: Vec<berth_store::TaskRow>,
    attachments: Vec<ServiceGroupRow>,
    /// Every group's rules, in order.
    rules: HashMap<String, Vec<SecurityGroupRuleRow>>,
}

impl Members {
    pub(crate) fn load(tx: &Tx<'_>) -> Result<Self, ControlError> {
        let mut rules: HashMap<String, Vec<SecurityGroupRuleRow>> = HashMap::new();
        for r in tx.security_group_rules_all()? {
            rules.entry(r.group_id.clone()).or_default().push(r);
        }
        Ok(Members { tasks: tx.tasks_not_stopped()?, attachments: tx.service_groups_all()?, rules })
    }

    /// The load balancer group of service `service_id` (as [`load_balancer_group`] reads it).
    pub(crate) fn load_balancer_group(&self, service_id: i64) -> Option<&str> {
        self.attachments
            .iter()
            .find(|a| a.service_id == service_id && a.role == GroupRole::LoadBalancer)
            .map(|a| a.group_id.as_str())
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

    pub(crate) fn sources(&self, group: &str, port: u16) -> Vec<Cidr> {
        let rules = self.rules.get(group).map(Vec::as_slice).unwrap_or_default();
        super::rules::allowed_sources(rules, port, &|g| self.of(g))
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
            Ok(Some(Members::load(tx)?.sources(&group, port)))
        })
    }
}
