//! The route table, built from the store only (never the runtime) and published to the proxies when its routes
//! changed: certificates, the HTTPS listeners' rules, target groups with their targets, and the load balancers.
//! Lower modules ask for it through the crate root's `Control::publish_routes`, the way they ask for a
//! reconciler pass through `Control::wake`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::Certificate;
use berth_store::Tx;

use crate::routes::{self, GroupInput, TaskTarget};
use crate::{Control, ControlError};

/// A stored certificate as the proxy gets it: valid for its one host.
fn route_certificate(c: berth_store::CertificateRow) -> Certificate {
    Certificate { id: c.host.clone(), hosts: vec![c.host], cert_pem: c.cert_pem, key_pem: c.key_pem }
}

impl Control {
    /// Publishes a new route table if the routes changed, and stamps draining tasks with the version
    /// from which no proxy sends them new requests.
    ///
    /// It builds the table only when the store's route generation moved since the last build (every write that
    /// can change the table bumps it, by trigger, in its own transaction), and in any case every
    /// [`routes::FULL_REBUILD_EVERY`], so a pass that changed nothing reads one row.
    pub(crate) fn publish_table(&self) -> Result<(), ControlError> {
        let started = std::time::Instant::now();
        let mut built = self.publishing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.routes.borrow().clone();
        let published = self.tx(|tx| {
            let generation = tx.route_generation()?;
            if built.is_current(generation, std::time::Instant::now()) {
                return Ok(None);
            }
            let (certificates, rules, groups, tasks, load_balancers) = self.route_inputs(tx)?;
            let mut candidate = routes::build(current.version, &certificates, &rules, &groups, &tasks);
            candidate.load_balancers = load_balancers;
            candidate.stickiness_key = crate::elbv2::stickiness_key(tx)?;
            let version = if routes::same_routes(&candidate, &current) {
                None
            } else {
                let v = tx.next_counter("route_version")?.max(current.version + 1);
                tx.meta_set("route_version", &v.to_string())?;
                candidate.version = v;
                Some(candidate)
            };
            let stamp = version.as_ref().map(|t| t.version).unwrap_or(current.version);
            for mut task in tx.tasks_not_stopped()? {
                if task.desired_status == TaskStatus::Stopped && task.drain_version.is_none() {
                    task.drain_version = Some(stamp);
                    tx.task_update(&task)?;
                }
            }
            // The build's own writes (the stickiness key, once) count as seen.
            Ok(Some((version, tx.route_generation()?)))
        })?;
        let Some((published, generation)) = published else { return Ok(()) };
        built.record(generation, std::time::Instant::now());
        if let Some(table) = published {
            tracing::debug!(version = table.version, rules = table.rules.len(), "publishing route table");
            self.routes.send_replace(Arc::new(table));
            self.observed.route_published((crate::now() * 1000.0) as i64);
        }
        self.observed.route_build.observe(started.elapsed());
        Ok(())
    }

    /// What the route table is built from: certificates (the default first), the HTTPS listeners' rules, every
    /// target group, every task that may be a target, and the load balancers (addresses, hosts, the union of
    /// their security groups' sources, idle timeouts). The store only, never the runtime.
    #[allow(clippy::type_complexity)]
    fn route_inputs(
        &self,
        tx: &Tx<'_>,
    ) -> Result<
        (Vec<Certificate>, Vec<berth_routes::Rule>, Vec<GroupInput>, Vec<TaskTarget>, Vec<berth_routes::LoadBalancer>),
        ControlError,
    > {
        let services = tx.services_live(None)?;
        let hosts: HashMap<i64, String> = services
            .iter()
            .filter(|s| s.status == ServiceStatus::Active)
            .map(|s| (s.id, s.endpoint_host.clone()))
            .collect();
        let active: HashSet<i64> = hosts.keys().copied().collect();
        let mut certificates: Vec<Certificate> =
            tx.certificate_get(&self.default_host())?.map(route_certificate).into_iter().collect();
        for host in crate::elbv2::certificate_hosts(tx)? {
            if let Some(c) = tx.certificate_get(&host)? {
                certificates.push(route_certificate(c));
            }
        }
        let (rules, load_balancers) = crate::elbv2::route_rules(self, tx, &hosts)?;
        let groups = crate::elbv2::route_groups(tx)?
            .into_iter()
            .map(|g| GroupInput {
                arn: g.arn,
                health_check: g.health_check,
                algorithm: g.algorithm,
                slow_start_secs: g.slow_start_secs,
                stickiness: g.stickiness,
                unhealthy_routing: g.unhealthy_routing,
                registered: g.registered,
            })
            .collect();
        let by_revision = crate::elbv2::revision_groups(tx)?;
        let targets = tx
            .tasks_not_stopped()?
            .iter()
            .filter_map(|task| {
                let sid = task.service_id?;
                let group = by_revision.get(task.revision_arn.as_deref()?)?;
                Some(TaskTarget {
                    task_arn: task.arn.clone(),
                    group: group.clone(),
                    ip: task.ip.clone(),
                    port: task.port,
                    wanted: task.desired_status == TaskStatus::Running && active.contains(&sid),
                    last_status: task.last_status,
                })
            })
            .collect();
        Ok((certificates, rules, groups, targets, load_balancers))
    }
}
