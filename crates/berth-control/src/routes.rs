//! Building the route table the proxies serve, from recorded state only (never from the runtime), so a
//! restarted server publishes the same routes before it has observed anything.

use std::net::{IpAddr, SocketAddr};

use berth_core::status::TaskStatus;
use berth_routes::{
    Algorithm, Certificate, HealthCheck, MinimumHealthy, RouteTable, Rule, Target, TargetGroup, TargetState,
    TargetStickiness,
};

/// One target group, with what the table needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub arn: String,
    pub health_check: HealthCheck,
    pub algorithm: Algorithm,
    /// `slow_start.duration_seconds` (0: off).
    pub slow_start_secs: u32,
    /// Target stickiness, when the group's `stickiness.*` attributes enable it.
    pub stickiness: Option<TargetStickiness>,
    /// Below this many healthy targets the group fails open (`unhealthy_state_routing`).
    pub unhealthy_routing: MinimumHealthy,
    /// Targets registered by hand (RegisterTargets): (ip, port).
    pub registered: Vec<(String, u16)>,
}

/// One task that may be a target.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTarget {
    pub task_arn: String,
    /// The target group of the task's revision.
    pub group: String,
    pub ip: Option<String>,
    pub port: u16,
    /// Desired running and its service active; otherwise the target drains.
    pub wanted: bool,
    pub last_status: TaskStatus,
}

/// The table for these listener rules, target groups and tasks, at `version`. `certificates` come in the
/// order the proxy should offer them: the default (wildcard) certificate first, which clients whose SNI
/// matches no endpoint get (they then get the listener's 404).
pub fn build(
    version: u64,
    certificates: &[Certificate],
    rules: &[Rule],
    groups: &[GroupInput],
    tasks: &[TaskTarget],
) -> RouteTable {
    let mut table = RouteTable { version, ..Default::default() };
    table.certificates = certificates.to_vec();
    table.rules = rules.to_vec();
    table.rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.arn.cmp(&b.arn)));
    for g in groups {
        let mut targets: Vec<Target> = tasks
            .iter()
            .filter(|t| t.group == g.arn)
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
                    state: if t.wanted { TargetState::Registered } else { TargetState::Draining },
                })
            })
            .collect();
        targets.extend(g.registered.iter().filter_map(|(ip, port)| {
            let ip: IpAddr = ip.parse().ok()?;
            Some(Target {
                id: format!("{}", SocketAddr::new(ip, *port)),
                addr: SocketAddr::new(ip, *port),
                state: TargetState::Registered,
            })
        }));
        table.target_groups.push(TargetGroup {
            id: g.arn.clone(),
            health_check: g.health_check.clone(),
            targets,
            algorithm: g.algorithm,
            protocol_version: Default::default(),
            slow_start_secs: g.slow_start_secs,
            stickiness: g.stickiness.clone(),
            unhealthy_routing: g.unhealthy_routing,
        });
    }
    table.target_groups.sort_by(|a, b| a.id.cmp(&b.id));
    table
}

/// Whether two tables route the same way (everything but the version).
pub fn same_routes(a: &RouteTable, b: &RouteTable) -> bool {
    a.hosts == b.hosts
        && a.rules == b.rules
        && a.target_groups == b.target_groups
        && a.certificates == b.certificates
        && a.source_filters == b.source_filters
        && a.stickiness_key == b.stickiness_key
        && a.load_balancers == b.load_balancers
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_routes::{Condition, RuleAction, WeightedTargetGroup};

    fn group(arn: &str, path: &str) -> GroupInput {
        GroupInput {
            arn: arn.into(),
            health_check: HealthCheck { path: path.into(), ..HealthCheck::default() },
            algorithm: Algorithm::RoundRobin,
            slow_start_secs: 0,
            stickiness: None,
            unhealthy_routing: MinimumHealthy::default(),
            registered: vec![],
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

    fn rule(arn: &str, priority: u32, host: &str, groups: &[(&str, u32)]) -> Rule {
        Rule {
            arn: arn.into(),
            priority,
            conditions: vec![Condition::HostHeader { values: vec![host.into()] }],
            actions: vec![RuleAction::Forward {
                target_groups: groups
                    .iter()
                    .map(|(g, w)| WeightedTargetGroup { target_group: (*g).into(), weight: *w })
                    .collect(),
                stickiness: None,
            }],
            load_balancer: None,
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
            task("f", "tg-2", true, TaskStatus::Running, Some("0.0.0.0")),
            task("g", "tg-gone", true, TaskStatus::Running, Some("10.0.0.9")),
        ];
        let mut manual = group("tg-3", "/health");
        manual.registered = vec![("10.0.1.1".into(), 8080), ("bad".into(), 1)];
        manual.algorithm = Algorithm::LeastOutstandingRequests;
        let groups = vec![group("tg-2", "/ping"), group("tg-1", "/ping"), manual];
        let rules = vec![
            rule("r-user", 10, "custom.example.com", &[("tg-1", 1)]),
            rule("r-express", 1, "web.example.com", &[("tg-1", 100), ("tg-2", 0)]),
        ];
        let table = build(5, &[], &rules, &groups, &tasks);
        assert_eq!(table.version, 5);
        assert!(table.hosts.is_empty(), "everything is a rule");
        let order: Vec<&str> = table.rules.iter().map(|r| r.arn.as_str()).collect();
        assert_eq!(order, vec!["r-express", "r-user"], "by priority");
        let targets: Vec<(&str, &str, TargetState)> = table
            .target_groups
            .iter()
            .flat_map(|g| g.targets.iter().map(move |t| (g.id.as_str(), t.id.as_str(), t.state)))
            .collect();
        assert_eq!(
            targets,
            vec![
                ("tg-1", "a", TargetState::Registered),
                ("tg-1", "b", TargetState::Draining),
                ("tg-2", "c", TargetState::Registered),
                ("tg-3", "10.0.1.1:8080", TargetState::Registered),
            ],
            "a task of a group that no longer exists is not a target"
        );
        let tg3 = table.target_group("tg-3").expect("tg-3");
        assert_eq!((tg3.health_check.path.as_str(), tg3.algorithm), ("/health", Algorithm::LeastOutstandingRequests));
        assert!(same_routes(&table, &build(9, &[], &rules, &groups, &tasks)));
        let flipped = vec![rules[0].clone(), rule("r-express", 1, "web.example.com", &[("tg-1", 0), ("tg-2", 100)])];
        assert!(!same_routes(&table, &build(9, &[], &flipped, &groups, &tasks)), "a weight change is a new table");
        let mut changed_check = groups.clone();
        changed_check[0].health_check.interval_secs = 5;
        assert!(!same_routes(&table, &build(9, &[], &rules, &changed_check, &tasks)), "so is a health check change");
        let mut sticky = groups.clone();
        sticky[1].slow_start_secs = 30;
        sticky[1].stickiness = Some(TargetStickiness::LbCookie { duration_secs: 60 });
        let with_settings = build(9, &[], &rules, &sticky, &tasks);
        let tg1 = with_settings.target_group("tg-1").expect("tg-1");
        assert_eq!(
            (tg1.slow_start_secs, &tg1.stickiness),
            (30, &Some(TargetStickiness::LbCookie { duration_secs: 60 }))
        );
        assert!(!same_routes(&table, &with_settings), "and so are slow start and stickiness");
        let mut failing_open = groups.clone();
        failing_open[1].unhealthy_routing = MinimumHealthy { count: 2, percentage: Some(50) };
        let with_minimum = build(9, &[], &rules, &failing_open, &tasks);
        let tg1 = with_minimum.target_group("tg-1").expect("tg-1");
        assert_eq!(tg1.unhealthy_routing, MinimumHealthy { count: 2, percentage: Some(50) });
        assert!(!same_routes(&table, &with_minimum), "and so is the routing failover requirement");
        let mut narrowed = build(9, &[], &rules, &groups, &tasks);
        narrowed.source_filters = vec![berth_routes::SourceFilter {
            hosts: vec!["web.example.com".into()],
            https: vec!["127.0.0.1/32".into()],
            http: vec![],
        }];
        assert!(!same_routes(&table, &narrowed), "and so is a load balancer group change");
        let mut moved = build(9, &[], &rules, &groups, &tasks);
        moved.load_balancers = vec![berth_routes::LoadBalancer {
            arn: "lb".into(),
            https_listen: Some("127.0.0.5:443".parse().expect("addr")),
            ..Default::default()
        }];
        assert!(!same_routes(&table, &moved), "and a load balancer's new address");
    }
}
