//! The served state: one immutable [`Snapshot`] per route-table version, swapped atomically. Requests and
//! TLS handshakes read it without a lock; only the table watcher writes it.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use berth_certs::{CertEntry, SniResolver};
use berth_routes::{RouteTable, TargetState};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::route::{GroupRoute, HostRoute};
use crate::target::{TargetKey, TargetRuntime};

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub version: u64,
    pub hosts: HashMap<String, HostRoute>,
    pub resolver: SniResolver,
    /// Every target of every group (weight 0 and draining included), for reports.
    pub targets: Vec<Arc<TargetRuntime>>,
}

impl Snapshot {
    /// Builds the routing view of `table` over the targets' live runtimes.
    pub fn build(table: &RouteTable, runtimes: &HashMap<TargetKey, Arc<TargetRuntime>>) -> Snapshot {
        let runtime_of = |group: &str, target: &berth_routes::Target| {
            runtimes.get(&TargetKey { group: group.to_owned(), target: target.id.clone(), addr: target.addr })
        };
        let mut hosts = HashMap::new();
        for host in &table.hosts {
            let groups = host
                .forward
                .iter()
                .map(|w| {
                    let targets = table
                        .target_group(&w.target_group)
                        .map(|g| {
                            g.targets
                                .iter()
                                .filter(|t| t.state == TargetState::Registered)
                                .filter_map(|t| runtime_of(&g.id, t).cloned())
                                .collect()
                        })
                        .unwrap_or_default();
                    (GroupRoute::new(w.target_group.clone(), targets), w.weight)
                })
                .collect();
            let name = berth_certs::normalize_server_name(&host.host);
            hosts.entry(name).or_insert_with(|| HostRoute::new(host.service.clone(), groups));
        }
        let resolver = SniResolver::new(table.certificates.iter().map(|c| CertEntry {
            id: &c.id,
            hosts: &c.hosts,
            cert_pem: &c.cert_pem,
            key_pem: &c.key_pem,
        }));
        let mut targets: Vec<_> = runtimes.values().cloned().collect();
        targets.sort_by(|a, b| (&a.key.group, &a.key.target).cmp(&(&b.key.group, &b.key.target)));
        Snapshot { version: table.version, hosts, resolver, targets }
    }
}

pub(crate) type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// The HTTPS listener's certificate resolver: whatever the current snapshot's SNI resolver picks.
#[derive(Debug)]
pub(crate) struct LiveResolver(pub SharedSnapshot);

impl ResolvesServerCert for LiveResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolver.select(hello.server_name())
    }
}
