//! Security groups enforced for task containers: the pure [`desired`] policy from the store (which sources may
//! open which ports of each task, and where each task whose egress is restricted may connect to), and the
//! reconciler step that hands it to the runtime when it changes (and every [`RESYNC`] anyway, so rules removed
//! behind berth's back come back).
//!
//! Egress: a task's outgoing connections are limited to the union of its groups' egress rules, unless that union
//! holds "all traffic to 0.0.0.0/0" (EC2's default rule), in which case the task is not listed at all. berth's own
//! endpoints for tasks (the credentials endpoint and the task API, [`berth_endpoints`]) stay reachable whatever the
//! rules say, as AWS's link-local endpoints (instance metadata, the ECS credentials endpoint) are, and so does DNS
//! to the servers the runtime forwards tasks' queries to ([`dns_allows`]), as the Amazon DNS server is. IPv6 rules are
//! kept but have nothing to match: task networks are IPv4 only.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::cidr::Cidr;
use berth_core::status::TaskStatus;
use berth_runtime::firewall::{Allow, FirewallPolicy, NetworkInfo, Protocol, TaskEgress, TaskIngress};
use berth_store::{GroupRole, SecurityGroupRuleRow, ServiceGroupRow, TaskRow};

use super::rules;
use crate::{Control, ControlError};

/// How often the policy is re-applied even when it did not change.
pub const RESYNC: Duration = Duration::from_secs(10);

/// The firewall step's memory. Losing it only costs one extra sync.
#[derive(Default)]
pub struct State {
    applied: Option<FirewallPolicy>,
    applied_at: Option<Instant>,
    /// The task network's addresses, and when they were read (re-read every [`NETWORK_REFRESH`], in case the
    /// network was recreated).
    network: Option<(NetworkInfo, Instant)>,
    unavailable_logged: bool,
}

/// How often the task network's subnet and gateway are re-read.
pub const NETWORK_REFRESH: Duration = Duration::from_secs(60);

/// The policy for `tasks`: each task that has an address and belongs to a service with security groups
/// gets one ingress entry, and one egress entry unless its groups let it connect anywhere; the peers of a
/// group reference are the addresses of the tasks in that group, plus `lb_sources` (where the load balancer
/// connects from) for a group that guards a load balancer. `endpoints` (berth's own, see [`berth_endpoints`])
/// are added to every egress entry.
pub fn desired(
    owner: &str,
    network: &str,
    tasks: &[TaskRow],
    attachments: &[ServiceGroupRow],
    rules: &[SecurityGroupRuleRow],
    lb_sources: &[Cidr],
    endpoints: &[Allow],
) -> FirewallPolicy {
    let addr = |t: &TaskRow| -> Option<IpAddr> {
        (t.last_status != TaskStatus::Stopped).then_some(())?;
        t.ip.as_deref()?.parse().ok()
    };
    // Which groups each service's tasks are in, and who is in each group.
    let mut task_groups: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    let mut lb_groups: BTreeSet<&str> = BTreeSet::new();
    for a in attachments {
        match a.role {
            GroupRole::LoadBalancer => {
                lb_groups.insert(a.group_id.as_str());
            }
            GroupRole::Service | GroupRole::User => task_groups.entry(a.service_id).or_default().push(&a.group_id),
        }
    }
    let members = |group: &str| -> Vec<Cidr> {
        let mut out: Vec<Cidr> = tasks
            .iter()
            .filter(|t| t.service_id.and_then(|s| task_groups.get(&s)).is_some_and(|g| g.contains(&group)))
            .filter_map(addr)
            .map(Cidr::host)
            .collect();
        if lb_groups.contains(group) {
            out.extend_from_slice(lb_sources);
        }
        out
    };
    let mut entries = Vec::new();
    let mut egress = Vec::new();
    for t in tasks {
        let (Some(ip), Some(groups)) = (addr(t), t.service_id.and_then(|s| task_groups.get(&s))) else {
            continue;
        };
        // Rules whose peer is of the other address family have nothing to match (task networks are IPv4).
        let allows = |out: bool| -> BTreeSet<Allow> {
            rules
                .iter()
                .filter(|r| r.egress == out && groups.contains(&r.group_id.as_str()))
                .flat_map(|r| rules::peer_allows(r, &members))
                .filter(|a| a.source.is_ipv4() == ip.is_ipv4())
                .collect()
        };
        entries.push(TaskIngress { address: ip, allow: allow_list(allows(false)) });
        let out = allows(true);
        let anywhere = out.iter().any(|a| a.protocol == Protocol::All && a.source.prefix() == 0);
        if !anywhere {
            let mut out = out;
            out.extend(endpoints.iter().filter(|a| a.source.is_ipv4() == ip.is_ipv4()));
            egress.push(TaskEgress { address: ip, allow: allow_list(out) });
        }
    }
    entries.sort();
    entries.dedup_by(|a, b| a.address == b.address);
    egress.sort();
    egress.dedup_by(|a, b| a.address == b.address);
    FirewallPolicy { owner: owner.to_string(), network: network.to_string(), tasks: entries, egress }
}

fn allow_list(set: BTreeSet<Allow>) -> Vec<Allow> {
    set.into_iter().collect()
}

/// berth's own endpoints for tasks, reachable whatever a task's egress rules say (as AWS's link-local endpoints
/// are): TCP to the credentials endpoint and the task API, from their configured URLs (`http://host:port`).
pub fn berth_endpoints(endpoint: Option<&crate::config::TaskEndpoint>) -> Vec<Allow> {
    let Some(e) = endpoint else { return Vec::new() };
    let mut out: Vec<Allow> = std::iter::once(e.credentials_base.as_str())
        .chain(e.api_url.as_deref())
        .filter_map(host_port)
        .map(|(ip, port)| Allow { protocol: Protocol::Tcp, ports: Some((port, port)), source: Cidr::host(ip) })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// DNS (UDP and TCP port 53) to each of the runtime's upstream resolvers: Docker's embedded resolver forwards
/// a task's queries from the task's own network namespace, so without these its lookups would obey the task's
/// egress rules, where AWS never blocks the VPC's DNS server.
pub fn dns_allows(resolvers: &[IpAddr]) -> Vec<Allow> {
    let mut out: Vec<Allow> = resolvers
        .iter()
        .flat_map(|r| {
            [Protocol::Udp, Protocol::Tcp].map(|protocol| Allow {
                protocol,
                ports: Some((53, 53)),
                source: Cidr::host(*r),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The literal address and port of an `http://` or `https://` URL (default ports 80 and 443).
fn host_port(url: &str) -> Option<(IpAddr, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.parse().ok()?, port))
}

impl Control {
    /// One firewall step of a reconcile pass: adopt the network's subnet as the VPC CIDR (once), compute
    /// the policy, and apply it when it changed or [`RESYNC`] passed. Never fails the pass.
    pub(crate) async fn sync_firewall(self: &Arc<Self>) {
        if let Err(e) = self.tx(super::attachments::release_inactive) {
            tracing::warn!(error = %e, "cannot release the security groups of deleted services");
        }
        let network = self.firewall.lock().unwrap_or_else(|e| e.into_inner()).network.clone();
        let network = match network {
            Some((n, at)) if at.elapsed() < NETWORK_REFRESH => n,
            _ => match self.driver.network_info(&self.config.network).await {
                Ok(Some(info)) => {
                    if let Some(subnet) = info.subnet
                        && let Err(e) =
                            self.tx(|tx| super::network::adopt_network_subnet(tx, &self.config.network, subnet))
                    {
                        tracing::warn!(error = %e, "cannot record the VPC's CIDR");
                    }
                    // Internal load balancers listen on the gateway: publish them once it is known.
                    match info
                        .gateway
                        .map(|g| self.tx(|tx| super::network::record_gateway(tx, &self.config.network, g)))
                    {
                        Some(Ok(true)) => {
                            if let Err(e) = self.publish_routes() {
                                tracing::warn!(error = %e, "cannot publish routes after learning the network's gateway");
                            }
                        }
                        Some(Err(e)) => tracing::warn!(error = %e, "cannot record the network's gateway"),
                        _ => {}
                    }
                    self.firewall.lock().unwrap_or_else(|e| e.into_inner()).network =
                        Some((info.clone(), Instant::now()));
                    info
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot inspect the task network");
                    return;
                }
            },
        };
        let lb_sources: Vec<Cidr> = network.gateway.map(Cidr::host).into_iter().collect();
        let mut always = berth_endpoints(self.config.task_endpoint.as_ref());
        always.extend(dns_allows(&network.dns_resolvers));
        let policy = match self.tx(|tx| {
            let tasks = tx.tasks_not_stopped()?;
            let attachments = tx.service_groups_all()?;
            let rules = tx.security_group_rules_all()?;
            Ok::<_, ControlError>(desired(
                &self.names.instance,
                &self.config.network,
                &tasks,
                &attachments,
                &rules,
                &lb_sources,
                &always,
            ))
        }) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot compute the firewall policy");
                return;
            }
        };
        {
            let st = self.firewall.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = st.applied_at.is_some_and(|at| at.elapsed() < RESYNC);
            if st.applied.as_ref() == Some(&policy) && fresh {
                return;
            }
            if st.unavailable_logged && fresh {
                return;
            }
        }
        let result = self.driver.sync_firewall(&policy).await;
        let mut st = self.firewall.lock().unwrap_or_else(|e| e.into_inner());
        st.applied_at = Some(Instant::now());
        match result {
            Ok(report) => {
                if report.changed {
                    tracing::info!(
                        tasks = policy.tasks.len(),
                        egress_restricted = policy.egress.len(),
                        "firewall rules updated from security groups"
                    );
                }
                for gone in report.collected {
                    tracing::info!(chain = %gone, "removed the firewall rules of a berth instance that is gone");
                }
                st.applied = Some(policy);
                st.unavailable_logged = false;
            }
            Err(e) => {
                st.applied = None;
                if !st.unavailable_logged {
                    tracing::warn!(error = %e, "security groups are NOT enforced between containers: the firewall cannot be programmed (berth keeps serving; run as root with iptables to enforce them)");
                    st.unavailable_logged = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, service: i64, ip: &str) -> TaskRow {
        TaskRow {
            id: id.into(),
            arn: format!("arn:{id}"),
            cluster: "default".into(),
            service_id: Some(service),
            revision_arn: None,
            task_definition_arn: "td".into(),
            started_by: None,
            desired_status: TaskStatus::Running,
            last_status: TaskStatus::Running,
            ip: (!ip.is_empty()).then(|| ip.to_string()),
            port: 80,
            created_at: 0.0,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
            drain_version: None,
        }
    }

    fn att(service: i64, group: &str, role: GroupRole) -> ServiceGroupRow {
        ServiceGroupRow { service_id: service, group_id: group.into(), role }
    }

    fn ingress(group: &str, protocol: &str, from: i32, to: i32, peer: &str) -> SecurityGroupRuleRow {
        let group_ref = peer.starts_with("sg-");
        SecurityGroupRuleRow {
            id: format!("sgr-{group}-{peer}"),
            group_id: group.into(),
            egress: false,
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            cidr_ipv4: (!group_ref && !peer.contains(':')).then(|| peer.to_string()),
            cidr_ipv6: (!group_ref && peer.contains(':')).then(|| peer.to_string()),
            referenced_group_id: group_ref.then(|| peer.to_string()),
            description: None,
        }
    }

    fn show(p: &FirewallPolicy) -> Vec<String> {
        p.tasks.iter().map(|t| show_entry(t.address, &t.allow, "<-")).collect()
    }

    fn show_egress(p: &FirewallPolicy) -> Vec<String> {
        p.egress.iter().map(|t| show_entry(t.address, &t.allow, "->")).collect()
    }

    fn show_entry(address: IpAddr, allow: &[Allow], arrow: &str) -> String {
        let allow: Vec<String> = allow
            .iter()
            .map(|a| {
                let proto = match a.protocol {
                    Protocol::All => "all".to_string(),
                    Protocol::Tcp => "tcp".into(),
                    Protocol::Udp => "udp".into(),
                    Protocol::Icmp => "icmp".into(),
                    Protocol::Number(n) => n.to_string(),
                };
                match a.ports {
                    Some((f, t)) if f == t => format!("{proto}:{f}{arrow}{}", a.source),
                    Some((f, t)) => format!("{proto}:{f}-{t}{arrow}{}", a.source),
                    None => format!("{proto}{arrow}{}", a.source),
                }
            })
            .collect();
        format!("{address} [{}]", allow.join(", "))
    }

    #[test]
    fn express_services_admit_the_load_balancer_and_granted_groups_only() {
        let lb = vec!["172.18.0.1/32".parse().expect("cidr")];
        // Service 1 (web) and service 2 (api), each with Express's two groups; api also has a user group.
        let attachments = vec![
            att(1, "sg-weblb", GroupRole::LoadBalancer),
            att(1, "sg-web", GroupRole::Service),
            att(2, "sg-apilb", GroupRole::LoadBalancer),
            att(2, "sg-api", GroupRole::Service),
            att(2, "sg-user", GroupRole::User),
        ];
        let tasks = vec![
            task("w1", 1, "172.18.0.2"),
            task("a1", 2, "172.18.0.3"),
            task("a2", 2, ""),
            task("x", 3, "172.18.0.9"),
        ];
        let mut rules = vec![
            ingress("sg-web", "tcp", 8080, 8080, "sg-weblb"),
            ingress("sg-api", "tcp", 80, 80, "sg-apilb"),
            ingress("sg-weblb", "tcp", 443, 443, "0.0.0.0/0"),
            ingress("sg-weblb", "tcp", 443, 443, "::/0"),
        ];
        let p = desired("inst", "net", &tasks, &attachments, &rules, &lb, &[]);
        assert_eq!(
            show(&p),
            ["172.18.0.2 [tcp:8080<-172.18.0.1/32]", "172.18.0.3 [tcp:80<-172.18.0.1/32]"],
            "tasks without an address or without groups are not listed; web is not open to api"
        );
        // Granting the api's user group on web admits api's tasks (and only on that rule's ports).
        rules.push(ingress("sg-web", "tcp", 8080, 8080, "sg-user"));
        rules.push(ingress("sg-api", "-1", -1, -1, "10.0.0.0/8"));
        rules.push(ingress("sg-user", "udp", 53, 53, "192.0.2.0/24"));
        rules.push(ingress("sg-user", "tcp", 1000, 2000, "::/0"));
        let p = desired("inst", "net", &tasks, &attachments, &rules, &lb, &[]);
        assert_eq!(
            show(&p),
            [
                "172.18.0.2 [tcp:8080<-172.18.0.1/32, tcp:8080<-172.18.0.3/32]",
                "172.18.0.3 [all<-10.0.0.0/8, tcp:80<-172.18.0.1/32, udp:53<-192.0.2.0/24]",
            ]
        );
        let mut stopped = tasks.clone();
        stopped[1].last_status = TaskStatus::Stopped;
        let p = desired("inst", "net", &stopped, &attachments, &rules, &lb, &[]);
        assert_eq!(
            show(&p),
            ["172.18.0.2 [tcp:8080<-172.18.0.1/32]"],
            "a stopped task is neither protected nor a source"
        );
    }

    #[test]
    fn a_service_group_without_rules_admits_nothing() {
        let p = desired("i", "n", &[task("t", 1, "10.0.0.5")], &[att(1, "sg-a", GroupRole::User)], &[], &[], &[]);
        assert_eq!(show(&p), ["10.0.0.5 []"]);
    }

    fn egress(group: &str, protocol: &str, from: i32, to: i32, peer: &str) -> SecurityGroupRuleRow {
        SecurityGroupRuleRow {
            egress: true,
            id: format!("sgr-e-{group}-{peer}"),
            ..ingress(group, protocol, from, to, peer)
        }
    }

    #[test]
    fn egress_is_the_union_of_the_groups_rules_plus_berths_endpoints_and_dns() {
        let lb = vec!["172.18.0.1/32".parse().expect("cidr")];
        let endpoints = berth_endpoints(Some(&crate::config::TaskEndpoint {
            credentials_base: "http://169.254.170.2:51679".into(),
            api_url: Some("http://169.254.170.2:4566/".into()),
        }));
        let attachments = vec![
            att(1, "sg-weblb", GroupRole::LoadBalancer),
            att(1, "sg-web", GroupRole::Service),
            att(2, "sg-apilb", GroupRole::LoadBalancer),
            att(2, "sg-api", GroupRole::Service),
            att(2, "sg-user", GroupRole::User),
        ];
        let tasks = vec![task("w1", 1, "172.18.0.2"), task("a1", 2, "172.18.0.3"), task("x", 3, "172.18.0.9")];
        let default = |g: &str| egress(g, "-1", -1, -1, "0.0.0.0/0");
        let ep = "tcp:4566->169.254.170.2/32, tcp:51679->169.254.170.2/32";
        struct Case {
            name: &'static str,
            rules: Vec<SecurityGroupRuleRow>,
            stopped: &'static [&'static str],
            /// The runtime's DNS upstreams.
            dns: &'static [&'static str],
            want: Vec<String>,
        }
        let cases = vec![
            Case {
                name: "EC2's default rule everywhere: nobody is restricted",
                rules: vec![default("sg-web"), default("sg-api"), default("sg-user")],
                stopped: &[],
                dns: &[],
                want: vec![],
            },
            Case {
                name: "web's default revoked: web reaches berth's endpoints only",
                rules: vec![default("sg-api"), default("sg-user")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [{ep}]")],
            },
            Case {
                name: "a group peer stands for its tasks' addresses",
                rules: vec![egress("sg-web", "tcp", 80, 80, "sg-api"), default("sg-api")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [tcp:80->172.18.0.3/32, {ep}]")],
            },
            Case {
                name: "a stopped task is no destination",
                rules: vec![egress("sg-web", "tcp", 80, 80, "sg-api"), default("sg-user")],
                stopped: &["a1"],
                dns: &[],
                want: vec![format!("172.18.0.2 [{ep}]")],
            },
            Case {
                name: "the union over a task's groups: the user group's default keeps api unrestricted",
                rules: vec![egress("sg-api", "tcp", 5432, 5432, "10.0.0.0/8"), default("sg-user")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [{ep}]")],
            },
            Case {
                name: "a load balancer group peer is where the load balancer listens (the gateway)",
                rules: vec![egress("sg-web", "tcp", 443, 443, "sg-weblb"), default("sg-api")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [tcp:443->172.18.0.1/32, {ep}]")],
            },
            Case {
                name: "all traffic to ::/0 alone matches nothing on an IPv4 network and is not 'anywhere'",
                rules: vec![egress("sg-web", "-1", -1, -1, "::/0"), default("sg-api")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [{ep}]")],
            },
            Case {
                name: "protocols, port ranges and narrower networks are kept as they are",
                rules: vec![
                    egress("sg-web", "-1", -1, -1, "10.0.0.0/8"),
                    egress("sg-web", "udp", 53, 53, "192.0.2.0/24"),
                    egress("sg-web", "tcp", 1000, 2000, "0.0.0.0/0"),
                    egress("sg-web", "icmp", 8, -1, "0.0.0.0/0"),
                    egress("sg-web", "tcp", 0, 65535, "198.51.100.7/32"),
                    default("sg-api"),
                ],
                stopped: &[],
                dns: &[],
                want: vec![format!(
                    "172.18.0.2 [all->10.0.0.0/8, tcp->198.51.100.7/32, tcp:1000-2000->0.0.0.0/0, {ep}, \
                     udp:53->192.0.2.0/24, icmp->0.0.0.0/0]"
                )],
            },
            Case {
                name: "DNS to the runtime's upstream resolvers stays open, UDP and TCP (the other family's dropped)",
                rules: vec![egress("sg-web", "tcp", 80, 80, "sg-api"), default("sg-api")],
                stopped: &[],
                dns: &["192.0.2.53", "fd00::53"],
                want: vec![format!(
                    "172.18.0.2 [tcp:53->192.0.2.53/32, tcp:80->172.18.0.3/32, {ep}, udp:53->192.0.2.53/32]"
                )],
            },
            Case {
                name: "unrestricted tasks get no DNS entries either",
                rules: vec![default("sg-web"), default("sg-api")],
                stopped: &[],
                dns: &["192.0.2.53"],
                want: vec![],
            },
            Case {
                name: "ingress rules do not open egress",
                rules: vec![ingress("sg-web", "-1", -1, -1, "0.0.0.0/0"), default("sg-api")],
                stopped: &[],
                dns: &[],
                want: vec![format!("172.18.0.2 [{ep}]")],
            },
        ];
        for c in cases {
            let mut tasks = tasks.clone();
            for t in tasks.iter_mut().filter(|t| c.stopped.contains(&t.id.as_str())) {
                t.last_status = TaskStatus::Stopped;
            }
            let resolvers: Vec<IpAddr> = c.dns.iter().map(|r| r.parse().expect("ip")).collect();
            let always: Vec<Allow> = endpoints.iter().copied().chain(dns_allows(&resolvers)).collect();
            let p = desired("inst", "net", &tasks, &attachments, &c.rules, &lb, &always);
            assert_eq!(show_egress(&p), c.want, "{}", c.name);
        }
    }

    #[test]
    fn berths_endpoints_come_from_the_configured_urls() {
        let e = |creds: &str, api: Option<&str>| {
            let endpoint =
                crate::config::TaskEndpoint { credentials_base: creds.into(), api_url: api.map(str::to_string) };
            berth_endpoints(Some(&endpoint)).iter().map(|a| format!("{:?} {}", a.ports, a.source)).collect::<Vec<_>>()
        };
        assert_eq!(e("http://169.254.170.2:51679", None), ["Some((51679, 51679)) 169.254.170.2/32"]);
        assert_eq!(
            e("http://10.0.0.1", Some("https://10.0.0.1/x")),
            ["Some((80, 80)) 10.0.0.1/32", "Some((443, 443)) 10.0.0.1/32"]
        );
        assert_eq!(e("http://[fd00::2]:8080/", None), ["Some((8080, 8080)) fd00::2/128"]);
        assert!(e("http://localhost:80", Some("ftp://1.2.3.4:1")).is_empty(), "names and other schemes are skipped");
        assert!(berth_endpoints(None).is_empty());
    }
}
