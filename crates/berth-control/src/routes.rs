//! Building the route table the proxies serve, from recorded state only (never from the runtime), so a
//! restarted server publishes the same routes before it has observed anything.

use std::net::{IpAddr, SocketAddr};

use berth_core::status::{ServiceStatus, TaskStatus};
use berth_routes::{
    Certificate, HealthCheck, HostRoute, RouteTable, Target, TargetGroup, TargetState, WeightedTargetGroup,
};

/// One service, with what the table needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRoutes {
    pub arn: String,
    pub status: ServiceStatus,
    pub host: String,
    /// Target group of the live revision.
    pub live_group: Option<String>,
    /// Target group of the revision being deployed, when it is not the live one.
    pub standby_group: Option<String>,
    /// Every target group of the service that has tasks, with its health check.
    pub groups: Vec<(String, HealthCheck)>,
    pub certificate: Option<Certificate>,
}

/// One task that may be a target.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTarget {
    pub task_arn: String,
    pub group: String,
    pub ip: Option<String>,
    pub port: u16,
    pub wanted: bool,
    pub last_status: TaskStatus,
}

/// The table for these services and tasks, at `version`. The default certificate comes first: the proxy
/// offers it to clients whose SNI matches no endpoint (they then get the listener's 404).
pub fn build(
    version: u64,
    default_certificate: Option<&Certificate>,
    services: &[ServiceRoutes],
    tasks: &[TaskTarget],
) -> RouteTable {
    let mut table = RouteTable { version, ..Default::default() };
    table.certificates.extend(default_certificate.cloned());
    for s in services {
        if s.status == ServiceStatus::Active {
            let mut forward = Vec::new();
            if let Some(live) = &s.live_group {
                forward.push(WeightedTargetGroup { target_group: live.clone(), weight: 100 });
            }
            if let Some(standby) = &s.standby_group {
                forward.push(WeightedTargetGroup { target_group: standby.clone(), weight: 0 });
            }
            table.hosts.push(HostRoute { host: s.host.clone(), service: s.arn.clone(), forward });
            if let Some(c) = &s.certificate {
                table.certificates.push(c.clone());
            }
        }
        for (group, health_check) in &s.groups {
            let targets: Vec<Target> = tasks
                .iter()
                .filter(|t| &t.group == group)
                .filter(|t| matches!(t.last_status, TaskStatus::Running | TaskStatus::Deactivating))
                .filter_map(|t| {
                    let ip: IpAddr = t.ip.as_deref()?.parse().ok()?;
                    // A container that exited at once may report 0.0.0.0, which is not an address of it.
                    if ip.is_unspecified() {
                        return None;
                    }
                    Some(Target {
                        id: t.task_arn.clone(),
                        addr: SocketAddr::new(ip, t.port),
                        state: if t.wanted && s.status == ServiceStatus::Active {
                            TargetState::Registered
                        } else {
                            TargetState::Draining
                        },
                    })
                })
                .collect();
            table.target_groups.push(TargetGroup {
                id: group.clone(),
                health_check: health_check.clone(),
                targets,
                algorithm: Default::default(),
                protocol_version: Default::default(),
            });
        }
    }
    table.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    table.target_groups.sort_by(|a, b| a.id.cmp(&b.id));
    table
}

/// Whether two tables route the same way (everything but the version).
pub fn same_routes(a: &RouteTable, b: &RouteTable) -> bool {
    a.hosts == b.hosts && a.target_groups == b.target_groups && a.certificates == b.certificates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(status: ServiceStatus, standby: bool) -> ServiceRoutes {
        ServiceRoutes {
            arn: "svc".into(),
            status,
            host: "web-abc.ecs.us-east-1.localhost".into(),
            live_group: Some("tg-1".into()),
            standby_group: standby.then(|| "tg-2".into()),
            groups: vec![("tg-1".into(), HealthCheck::default()), ("tg-2".into(), HealthCheck::default())],
            certificate: None,
        }
    }

    fn task(arn: &str, group: &str, wanted: bool, status: TaskStatus, ip: Option<&str>) -> TaskTarget {
        TaskTarget {
            task_arn: arn.into(),
            group: group.into(),
            ip: ip.map(Into::into),
            port: 80,
            wanted,
            last_status: status,
        }
    }

    #[test]
    fn cases() {
        let tasks = vec![
            task("a", "tg-1", true, TaskStatus::Running, Some("10.0.0.1")),
            task("b", "tg-1", false, TaskStatus::Deactivating, Some("10.0.0.2")),
            task("c", "tg-2", true, TaskStatus::Running, Some("10.0.0.3")),
            task("d", "tg-2", true, TaskStatus::Provisioning, None),
            task("e", "tg-2", true, TaskStatus::Running, Some("not-an-ip")),
        ];
        // (service status, standby?, expected forward weights, expected (group, target, state))
        let active = build(5, None, &[svc(ServiceStatus::Active, true)], &tasks);
        assert_eq!(active.version, 5);
        assert_eq!(active.hosts.len(), 1);
        let w: Vec<(&str, u32)> = active.hosts[0].forward.iter().map(|f| (f.target_group.as_str(), f.weight)).collect();
        assert_eq!(w, vec![("tg-1", 100), ("tg-2", 0)]);
        let targets: Vec<(&str, &str, TargetState)> = active
            .target_groups
            .iter()
            .flat_map(|g| g.targets.iter().map(move |t| (g.id.as_str(), t.id.as_str(), t.state)))
            .collect();
        assert_eq!(
            targets,
            vec![
                ("tg-1", "a", TargetState::Registered),
                ("tg-1", "b", TargetState::Draining),
                ("tg-2", "c", TargetState::Registered)
            ]
        );

        let draining = build(6, None, &[svc(ServiceStatus::Draining, false)], &tasks);
        assert!(draining.hosts.is_empty(), "a deleted service's host answers 404 at once");
        assert!(
            draining.target_groups.iter().flat_map(|g| &g.targets).all(|t| t.state == TargetState::Draining),
            "but its tasks stay listed as draining so in-flight requests are counted"
        );
        assert!(same_routes(&active, &build(9, None, &[svc(ServiceStatus::Active, true)], &tasks)));
        assert!(!same_routes(&active, &draining));
    }
}
