//! The served state: one immutable [`Snapshot`] per route-table version, swapped atomically. Requests and
//! TLS handshakes read it without a lock; only the table watcher writes it.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use berth_certs::{CertEntry, SniResolver};
use berth_routes::{FixedResponse, Redirect, RouteTable, RuleAction, TargetState, WeightedTargetGroup};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::{LbCounters, Metrics};
use crate::route::{ForwardRoute, GroupRoute, StickyKey};
use crate::rules::{Cond, RuleSet, SourceFilters};
use crate::target::{TargetKey, TargetRuntime};

/// What a matched rule (or host route) does.
#[derive(Debug)]
pub(crate) enum ActionKind {
    Forward(ForwardRoute),
    Redirect(Redirect),
    Fixed { status: StatusCode, content_type: HeaderValue, body: Bytes },
}

/// A rule's action with the load balancer it counts under.
#[derive(Debug)]
pub(crate) struct RouteAction {
    /// The metrics and access-log label: the host route's service, or the rule's ARN.
    pub label: Arc<str>,
    pub counters: Arc<LbCounters>,
    pub kind: ActionKind,
}

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub version: u64,
    pub rules: RuleSet<Arc<RouteAction>>,
    /// Which client sources each load balancer's security groups admit, by host.
    pub sources: SourceFilters,
    pub resolver: SniResolver,
    /// Every target of every group (weight 0 and draining included), for reports.
    pub targets: Vec<Arc<TargetRuntime>>,
}

fn fixed_response(f: &FixedResponse) -> ActionKind {
    let status = StatusCode::from_u16(f.status_code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let content_type = f
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
    let body = Bytes::from(f.message_body.clone().unwrap_or_default());
    ActionKind::Fixed { status, content_type, body }
}

impl Snapshot {
    /// Builds the routing view of `table` over the targets' live runtimes; counters come from `metrics`.
    pub fn build(table: &RouteTable, runtimes: &HashMap<TargetKey, Arc<TargetRuntime>>, metrics: &Metrics) -> Snapshot {
        let runtime_of = |group: &str, target: &berth_routes::Target| {
            runtimes.get(&TargetKey { group: group.to_owned(), target: target.id.clone(), addr: target.addr })
        };
        let sticky_key = Arc::new(StickyKey::new(&table.stickiness_key));
        let forward = |weighted: &[WeightedTargetGroup], stickiness: Option<u32>| {
            let groups = weighted
                .iter()
                .map(|w| {
                    let group = table.target_group(&w.target_group);
                    let targets = group
                        .map(|g| {
                            g.targets
                                .iter()
                                .filter(|t| t.state == TargetState::Registered)
                                .filter_map(|t| runtime_of(&g.id, t).cloned())
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut route = GroupRoute::new(w.target_group.as_str(), targets);
                    route.counters = metrics.tg(&w.target_group);
                    if let Some(g) = group {
                        route.configure(g, &sticky_key);
                    }
                    (route, w.weight)
                })
                .collect();
            ForwardRoute::new(groups, stickiness)
        };
        let action =
            |label: &str, kind| Arc::new(RouteAction { label: label.into(), counters: metrics.lb(label), kind });

        let mut rules = Vec::with_capacity(table.rules.len());
        for rule in &table.rules {
            let conditions: Result<Vec<_>, _> = rule.conditions.iter().map(Cond::compile).collect();
            let conditions = match conditions {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(rule = %rule.arn, error = %e, "not serving an invalid rule");
                    continue;
                }
            };
            let Some(kind) = rule.actions.first().map(|a| match a {
                RuleAction::Forward { target_groups, stickiness } => {
                    ActionKind::Forward(forward(target_groups, stickiness.map(|s| s.duration_secs.max(1))))
                }
                RuleAction::Redirect(r) => ActionKind::Redirect(r.clone()),
                RuleAction::FixedResponse(f) => fixed_response(f),
            }) else {
                tracing::warn!(rule = %rule.arn, "not serving a rule without an action");
                continue;
            };
            rules.push((rule.priority, conditions, action(&rule.arn, kind)));
        }
        let hosts: Vec<_> = table
            .hosts
            .iter()
            .map(|h| {
                let kind = ActionKind::Forward(forward(&h.forward, None));
                (berth_certs::normalize_server_name(&h.host), action(&h.service, kind))
            })
            .collect();
        let resolver = SniResolver::new(table.certificates.iter().map(|c| CertEntry {
            id: &c.id,
            hosts: &c.hosts,
            cert_pem: &c.cert_pem,
            key_pem: &c.key_pem,
        }));
        let mut targets: Vec<_> = runtimes.values().cloned().collect();
        targets.sort_by(|a, b| (&a.key.group, &a.key.target).cmp(&(&b.key.group, &b.key.target)));
        Snapshot {
            version: table.version,
            rules: RuleSet::new(rules, hosts),
            sources: SourceFilters::new(&table.source_filters),
            resolver,
            targets,
        }
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
