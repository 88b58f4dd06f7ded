//! The served state: one immutable [`Snapshot`] per route-table version, swapped atomically. Requests and
//! TLS handshakes read it without a lock; only the table watcher writes it.
//!
//! Load balancers: the rules of load balancers without their own address (and rules naming none, from older
//! servers) form the default sockets' rule set; those of a load balancer with its own address form the rule
//! set of that address ([`SocketRoutes`]), served only there. On every socket the request's Host picks the
//! load balancer it reached (the matched rule's, else the one whose hosts name it), and that load balancer's
//! security-group sources decide whether the client may be served; a socket of load balancers that all
//! refuse a client closes its connections at accept.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use berth_certs::{CertEntry, SniResolver};
use berth_routes::{FixedResponse, Redirect, RouteTable, RuleAction, Target, TargetState, WeightedTargetGroup};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::{LbCounters, Metrics};
use crate::route::{ForwardRoute, GroupRoute, StickyKey};
use crate::rules::{Cidr, Cond, Matched, RequestView, RuleSet, SourceFilters};
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
    /// The load balancer whose rule this is (`None`: a rule or host route of an older table).
    pub lb: Option<Arc<LbView>>,
}

/// A load balancer as the request path needs it: who may connect and its client idle timeout.
#[derive(Debug)]
pub(crate) struct LbView {
    /// `None`: no security group filter.
    sources: Option<(Vec<Cidr>, Vec<Cidr>)>,
    pub idle: Option<Duration>,
}

impl LbView {
    fn new(lb: &berth_routes::LoadBalancer) -> Self {
        let compile = |list: &[String]| -> Vec<Cidr> {
            list.iter()
                .filter_map(|c| {
                    let parsed = Cidr::parse(c);
                    if parsed.is_none() {
                        tracing::warn!(cidr = %c, load_balancer = %lb.arn, "ignoring an invalid source CIDR");
                    }
                    parsed
                })
                .collect()
        };
        LbView {
            sources: lb.sources.as_ref().map(|s| (compile(&s.https), compile(&s.http))),
            idle: lb.idle_timeout_secs.map(|s| Duration::from_secs(u64::from(s.max(1)))),
        }
    }

    /// Whether its security groups admit `source` on its HTTPS (`https`) or HTTP listener.
    pub fn admits(&self, https: bool, source: IpAddr) -> bool {
        match &self.sources {
            None => true,
            Some((h, p)) => (if https { h } else { p }).iter().any(|c| c.contains(source)),
        }
    }
}

/// What one listening socket serves: its rules and which load balancer each exact host belongs to.
#[derive(Debug, Default)]
pub(crate) struct SocketRoutes {
    pub rules: RuleSet<Arc<RouteAction>>,
    hosts: HashMap<String, Arc<LbView>>,
    lbs: Vec<Arc<LbView>>,
}

/// Why a request is not routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The load balancer's security groups do not admit the client.
    Source,
}

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub version: u64,
    /// The default sockets' rules and load balancers.
    pub default: Arc<SocketRoutes>,
    /// The sockets of load balancers with their own addresses (HTTPS and HTTP addresses both), by address.
    pub own: HashMap<SocketAddr, Arc<SocketRoutes>>,
    /// The own addresses to listen on: (address, HTTPS?), sorted.
    pub listen: Vec<(SocketAddr, bool)>,
    /// Which client sources each load balancer's security groups admit, by host (tables of older servers).
    pub sources: SourceFilters,
    pub resolver: Arc<SniResolver>,
    /// Every target of every group (weight 0 and draining included), for reports.
    pub targets: Vec<Arc<TargetRuntime>>,
    /// Each served rule compiled, by ARN: what the next snapshot reuses when the rule did not change.
    compiled: HashMap<String, CompiledRule>,
    /// Each load balancer's view, by ARN, likewise.
    views: HashMap<String, Arc<LbView>>,
}

/// A rule's compiled conditions and its action.
#[derive(Debug, Clone)]
struct CompiledRule {
    conditions: Vec<Cond>,
    action: Arc<RouteAction>,
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

/// Where a snapshot finds each target's live runtime: the health supervisor (or a plain map in tests).
pub(crate) trait Runtimes {
    fn runtime(&self, group: &str, target: &Target) -> Option<Arc<TargetRuntime>>;
    /// Every target's runtime, sorted by group and target id.
    fn all(&self) -> Vec<Arc<TargetRuntime>>;
}

impl Runtimes for HashMap<TargetKey, Arc<TargetRuntime>> {
    fn runtime(&self, group: &str, target: &Target) -> Option<Arc<TargetRuntime>> {
        self.get(&TargetKey { group: group.to_owned(), target: target.id.clone(), addr: target.addr }).cloned()
    }

    fn all(&self) -> Vec<Arc<TargetRuntime>> {
        let mut all: Vec<_> = self.values().cloned().collect();
        all.sort_by(|a, b| (&a.key.group, &a.key.target).cmp(&(&b.key.group, &b.key.target)));
        all
    }
}

impl Runtimes for crate::health::Supervisor {
    fn runtime(&self, group: &str, target: &Target) -> Option<Arc<TargetRuntime>> {
        crate::health::Supervisor::runtime(self, group, target).cloned()
    }

    fn all(&self) -> Vec<Arc<TargetRuntime>> {
        self.runtimes()
    }
}

/// What a new snapshot may reuse of the one it replaces: the table that one was built from, and the groups
/// whose targets (or settings) changed since, as the health supervisor synced them. A rule whose rule, load
/// balancer, stickiness key and target groups are all unchanged keeps its compiled conditions and its action
/// (its groups' routes, their round-robin position included); unchanged certificates keep the SNI resolver.
pub(crate) struct Previous<'a> {
    pub table: &'a RouteTable,
    pub snapshot: &'a Snapshot,
    pub changed_groups: &'a HashSet<String>,
}

impl Snapshot {
    /// Builds the routing view of `table` over the targets' live runtimes; counters come from `metrics`.
    #[cfg(test)]
    pub fn build(table: &RouteTable, runtimes: &impl Runtimes, metrics: &Metrics) -> Snapshot {
        Snapshot::build_from(table, runtimes, metrics, None)
    }

    /// Like [`Snapshot::build`], compiling only what changed since `previous` (when given).
    pub fn build_from(
        table: &RouteTable,
        runtimes: &impl Runtimes,
        metrics: &Metrics,
        previous: Option<Previous<'_>>,
    ) -> Snapshot {
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
                                .filter_map(|t| runtimes.runtime(&g.id, t))
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
        let action = |label: &str, kind, lb: Option<Arc<LbView>>| {
            Arc::new(RouteAction { label: label.into(), counters: metrics.lb(label), kind, lb })
        };
        // What the previous table had, by ARN.
        let prev_rules: HashMap<&str, &berth_routes::Rule> =
            previous.iter().flat_map(|p| p.table.rules.iter().map(|r| (r.arn.as_str(), r))).collect();
        let prev_lbs: HashMap<&str, &berth_routes::LoadBalancer> =
            previous.iter().flat_map(|p| p.table.load_balancers.iter().map(|l| (l.arn.as_str(), l))).collect();
        let same_lb = |l: &berth_routes::LoadBalancer| prev_lbs.get(l.arn.as_str()).is_some_and(|p| **p == *l);
        let views: HashMap<&str, Arc<LbView>> = table
            .load_balancers
            .iter()
            .map(|l| {
                let reused =
                    previous.as_ref().filter(|_| same_lb(l)).and_then(|p| p.snapshot.views.get(&l.arn)).cloned();
                (l.arn.as_str(), reused.unwrap_or_else(|| Arc::new(LbView::new(l))))
            })
            .collect();
        let lb_of: HashMap<&str, &berth_routes::LoadBalancer> =
            table.load_balancers.iter().map(|l| (l.arn.as_str(), l)).collect();
        // Each load balancer's socket: its own HTTPS address, or `None` for the default sockets.
        let socket_of: HashMap<&str, Option<SocketAddr>> =
            table.load_balancers.iter().map(|l| (l.arn.as_str(), l.https_listen)).collect();
        let same_key = previous.as_ref().is_some_and(|p| p.table.stickiness_key == table.stickiness_key);
        // Whether the rule's compiled conditions and action from the previous snapshot still hold.
        let reusable = |rule: &berth_routes::Rule| -> Option<&CompiledRule> {
            let p = previous.as_ref()?;
            if !same_key || prev_rules.get(rule.arn.as_str()).is_none_or(|r| **r != *rule) {
                return None;
            }
            if let Some(arn) = rule.load_balancer.as_deref()
                && !lb_of.get(arn).is_some_and(|l| same_lb(l))
            {
                return None;
            }
            let groups_unchanged = rule.actions.iter().all(|a| match a {
                RuleAction::Forward { target_groups, .. } => {
                    target_groups.iter().all(|w| !p.changed_groups.contains(&w.target_group))
                }
                _ => true,
            });
            groups_unchanged.then(|| p.snapshot.compiled.get(&rule.arn)).flatten()
        };

        let mut compiled = HashMap::with_capacity(table.rules.len());
        let mut all_reused = previous.is_some();
        let mut rules: HashMap<Option<SocketAddr>, Vec<_>> = HashMap::new();
        for rule in &table.rules {
            let (socket, lb) = match rule.load_balancer.as_deref() {
                None => (None, None),
                Some(arn) => match (socket_of.get(arn), views.get(arn)) {
                    (Some(socket), Some(view)) => (*socket, Some(view.clone())),
                    _ => {
                        tracing::warn!(rule = %rule.arn, load_balancer = arn, "not serving a rule of an unknown load balancer");
                        continue;
                    }
                },
            };
            let entry = match reusable(rule) {
                Some(c) => c.clone(),
                None => {
                    all_reused = false;
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
                    CompiledRule { conditions, action: action(&rule.arn, kind, lb) }
                }
            };
            rules.entry(socket).or_default().push((rule.priority, entry.conditions.clone(), entry.action.clone()));
            compiled.insert(rule.arn.clone(), entry);
        }
        // Nothing the sockets' routes are made of changed: keep them as they are.
        if let Some(p) = previous.as_ref().filter(|p| {
            all_reused
                && p.table.rules == table.rules
                && p.table.load_balancers == table.load_balancers
                && p.table.hosts.is_empty()
                && table.hosts.is_empty()
        }) {
            return Snapshot {
                version: table.version,
                default: Arc::clone(&p.snapshot.default),
                own: p.snapshot.own.clone(),
                listen: p.snapshot.listen.clone(),
                sources: SourceFilters::new(&table.source_filters),
                resolver: resolver(table, previous.as_ref()),
                targets: targets(runtimes, previous.as_ref()),
                compiled,
                views: views.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            };
        }
        let hosts: Vec<_> = table
            .hosts
            .iter()
            .map(|h| {
                let kind = ActionKind::Forward(forward(&h.forward, None));
                (berth_certs::normalize_server_name(&h.host), action(&h.service, kind, None))
            })
            .collect();
        let routes = |socket: Option<SocketAddr>, rules: Vec<_>, hosts: Vec<_>| {
            let lbs: Vec<Arc<LbView>> = table
                .load_balancers
                .iter()
                .filter(|l| l.https_listen == socket)
                .filter_map(|l| views.get(l.arn.as_str()).cloned())
                .collect();
            let mut by_host = HashMap::new();
            for l in table.load_balancers.iter().filter(|l| l.https_listen == socket) {
                if let Some(view) = views.get(l.arn.as_str()) {
                    for h in &l.hosts {
                        by_host.entry(h.to_ascii_lowercase()).or_insert_with(|| view.clone());
                    }
                }
            }
            SocketRoutes { rules: RuleSet::new(rules, hosts), hosts: by_host, lbs }
        };
        let default = Arc::new(routes(None, rules.remove(&None).unwrap_or_default(), hosts));
        let mut own = HashMap::new();
        let mut listen = Vec::new();
        for l in &table.load_balancers {
            let Some(https) = l.https_listen else { continue };
            let group = match own.get(&https) {
                Some(g) => Arc::clone(g),
                None => {
                    let g = Arc::new(routes(Some(https), rules.remove(&Some(https)).unwrap_or_default(), Vec::new()));
                    own.insert(https, Arc::clone(&g));
                    listen.push((https, true));
                    g
                }
            };
            if let Some(http) = l.http_listen
                && http != https
                && !own.contains_key(&http)
            {
                own.insert(http, group);
                listen.push((http, false));
            }
        }
        listen.sort();
        listen.dedup();
        Snapshot {
            version: table.version,
            default,
            own,
            listen,
            sources: SourceFilters::new(&table.source_filters),
            resolver: resolver(table, previous.as_ref()),
            targets: targets(runtimes, previous.as_ref()),
            compiled,
            views: views.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }
}

/// The SNI resolver of `table`'s certificates: the previous one when they did not change (parsing a
/// thousand certificates and keys is most of a full build).
fn resolver(table: &RouteTable, previous: Option<&Previous<'_>>) -> Arc<SniResolver> {
    if let Some(p) = previous.filter(|p| p.table.certificates == table.certificates) {
        return Arc::clone(&p.snapshot.resolver);
    }
    Arc::new(SniResolver::new(table.certificates.iter().map(|c| CertEntry {
        id: &c.id,
        hosts: &c.hosts,
        cert_pem: &c.cert_pem,
        key_pem: &c.key_pem,
    })))
}

/// Every target's runtime for reports: the previous list when no group changed.
fn targets(runtimes: &impl Runtimes, previous: Option<&Previous<'_>>) -> Vec<Arc<TargetRuntime>> {
    match previous.filter(|p| p.changed_groups.is_empty()) {
        Some(p) => p.snapshot.targets.clone(),
        None => runtimes.all(),
    }
}

impl Snapshot {
    /// The routes of a socket: `None` or an unknown address (one being closed) are the default sockets'.
    pub fn socket(&self, socket: Option<SocketAddr>) -> &SocketRoutes {
        socket.and_then(|s| self.own.get(&s)).map_or(&self.default, |g| g)
    }

    /// Whether a connection from `source` on own socket `socket` may be accepted at all: some load balancer
    /// listening there admits it. (On the default sockets the load balancer is known from the Host only.)
    pub fn accepts(&self, socket: SocketAddr, https: bool, source: IpAddr) -> bool {
        self.own.get(&socket).is_some_and(|g| g.lbs.iter().any(|l| l.admits(https, source)))
    }

    /// The client idle timeout of a connection on `socket` whose TLS SNI (if any) is `host`: the load
    /// balancer's when the socket has only one or the host names one; `None`: the proxy's default.
    pub fn idle_for(&self, socket: Option<SocketAddr>, host: Option<&str>) -> Option<Duration> {
        let g = self.socket(socket);
        match g.lbs.as_slice() {
            [only] => only.idle,
            _ => host.and_then(|h| g.hosts.get(&berth_certs::normalize_server_name(h))).and_then(|l| l.idle),
        }
    }

    /// Whether a client at `source` may reach (lowercase) `host` on `socket` before any rule is matched:
    /// the load balancer whose hosts name it admits the client (older tables: the host's source filter).
    pub fn admits_host(&self, socket: Option<SocketAddr>, host: &str, https: bool, source: IpAddr) -> bool {
        let g = self.socket(socket);
        match g.hosts.get(host) {
            Some(lb) => lb.admits(https, source),
            None => self.sources.allows(host, https, source),
        }
    }

    /// Routes a request that arrived on `socket`: the first matching rule of that socket's rule set, unless
    /// the load balancer the request reached (its host's, then the matched rule's) does not admit the client.
    pub fn route(
        &self,
        socket: Option<SocketAddr>,
        view: &RequestView<'_>,
        https: bool,
    ) -> Result<Option<(Matched, &Arc<RouteAction>)>, Refusal> {
        if !self.admits_host(socket, view.host, https, view.source) {
            return Err(Refusal::Source);
        }
        let found = self.socket(socket).rules.find(view);
        if let Some((_, action)) = &found
            && let Some(lb) = &action.lb
            && !lb.admits(https, view.source)
        {
            return Err(Refusal::Source);
        }
        Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_routes::{Condition, ListenerSources, LoadBalancer, Rule, Scheme, TargetGroup};
    use http::HeaderMap;

    fn lb(arn: &str, own: Option<&str>, hosts: &[&str], sources: Option<&[&str]>, idle: Option<u32>) -> LoadBalancer {
        let addr = |port: u16| own.map(|ip| SocketAddr::new(ip.parse().expect("ip"), port));
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        LoadBalancer {
            arn: arn.into(),
            scheme: if arn.contains("int") { Scheme::Internal } else { Scheme::InternetFacing },
            https_listen: addr(8443),
            http_listen: addr(8080),
            hosts: list(hosts),
            idle_timeout_secs: idle,
            sources: sources.map(|s| ListenerSources { https: list(s), http: list(s) }),
        }
    }

    fn rule(arn: &str, priority: u32, host: &str, lb: Option<&str>) -> Rule {
        Rule {
            arn: arn.into(),
            priority,
            conditions: vec![Condition::HostHeader { values: vec![host.into()] }],
            actions: vec![RuleAction::FixedResponse(FixedResponse {
                status_code: 200,
                content_type: None,
                message_body: None,
            })],
            load_balancer: lb.map(Into::into),
        }
    }

    fn snapshot() -> Snapshot {
        let table = RouteTable {
            version: 3,
            load_balancers: vec![
                lb("lb-pub", None, &["a.example"], Some(&["127.0.0.1/32"]), Some(30)),
                lb("lb-own", Some("127.0.0.5"), &["b.example"], Some(&["10.0.0.0/8"]), None),
                lb("lb-int", Some("172.18.0.1"), &["c.example"], None, Some(7)),
            ],
            rules: vec![
                rule("r-a", 1, "a.example", Some("lb-pub")),
                rule("r-wild", 2, "*.wild.example", Some("lb-pub")),
                rule("r-b", 3, "b.example", Some("lb-own")),
                rule("r-c", 4, "c.example", Some("lb-int")),
                rule("r-old", 5, "old.example", None),
                rule("r-gone", 6, "gone.example", Some("lb-gone")),
            ],
            ..RouteTable::default()
        };
        Snapshot::build(&table, &HashMap::new(), &Metrics::default())
    }

    #[test]
    fn requests_are_routed_and_filtered_by_their_load_balancer() {
        let s = snapshot();
        let headers = HeaderMap::new();
        let own: SocketAddr = "127.0.0.5:8443".parse().expect("addr");
        let own_http: SocketAddr = "127.0.0.5:8080".parse().expect("addr");
        let internal: SocketAddr = "172.18.0.1:8443".parse().expect("addr");
        // (socket, https, host, client, Ok(matched rule) / Err)
        type Case<'a> = (Option<SocketAddr>, bool, &'a str, &'a str, Result<Option<&'a str>, Refusal>);
        let cases: &[Case<'_>] = &[
            (None, true, "a.example", "127.0.0.1", Ok(Some("r-a"))),
            (None, true, "a.example", "127.0.0.2", Err(Refusal::Source)),
            (None, true, "x.wild.example", "127.0.0.1", Ok(Some("r-wild"))),
            // A user rule's host is filtered by its load balancer's groups too.
            (None, true, "x.wild.example", "127.0.0.2", Err(Refusal::Source)),
            // Load balancers with their own address are not served on the default sockets.
            (None, true, "b.example", "10.1.1.1", Ok(None)),
            (None, true, "c.example", "172.18.0.5", Ok(None)),
            (None, true, "old.example", "192.0.2.1", Ok(Some("r-old"))),
            (None, true, "gone.example", "127.0.0.1", Ok(None)),
            (Some(own), true, "b.example", "10.1.1.1", Ok(Some("r-b"))),
            (Some(own), true, "b.example", "127.0.0.1", Err(Refusal::Source)),
            (Some(own), true, "a.example", "127.0.0.1", Ok(None)),
            (Some(own), true, "old.example", "10.1.1.1", Ok(None)),
            (Some(own_http), false, "b.example", "10.1.1.1", Ok(Some("r-b"))),
            (Some(internal), true, "c.example", "172.18.0.5", Ok(Some("r-c"))),
            (Some(internal), true, "a.example", "127.0.0.1", Ok(None)),
        ];
        for (socket, https, host, client, want) in cases {
            let view = RequestView {
                host,
                path: "/",
                query: None,
                method: "GET",
                headers: &headers,
                source: client.parse().expect("ip"),
            };
            let got = s.route(*socket, &view, *https).map(|found| found.map(|(_, a)| a.label.to_string()));
            assert_eq!(got, want.map(|w| w.map(str::to_owned)), "{socket:?} {host} from {client}");
        }
    }

    #[test]
    fn own_sockets_accept_idle_and_listen() {
        let s = snapshot();
        let ip = |a: &str| a.parse::<IpAddr>().expect("ip");
        let own: SocketAddr = "127.0.0.5:8443".parse().expect("addr");
        assert!(s.accepts(own, true, ip("10.9.9.9")));
        assert!(!s.accepts(own, true, ip("127.0.0.1")), "refused at accept");
        assert!(!s.accepts("127.0.0.9:8443".parse().expect("addr"), true, ip("10.9.9.9")), "not a socket of ours");
        assert_eq!(s.idle_for(Some("172.18.0.1:8443".parse().expect("addr")), None), Some(Duration::from_secs(7)));
        assert_eq!(s.idle_for(None, Some("A.Example")), Some(Duration::from_secs(30)), "by SNI");
        assert_eq!(s.idle_for(None, Some("unknown.example")), Some(Duration::from_secs(30)), "the socket's only one");
        assert_eq!(s.idle_for(Some(own), None), None, "no attribute: the proxy's default");
        let listen: Vec<String> = s.listen.iter().map(|(a, https)| format!("{a}/{https}")).collect();
        assert_eq!(
            listen,
            ["127.0.0.5:8080/false", "127.0.0.5:8443/true", "172.18.0.1:8080/false", "172.18.0.1:8443/true"]
        );
        assert!(s.admits_host(None, "a.example", false, ip("127.0.0.1")));
        assert!(!s.admits_host(None, "a.example", false, ip("127.0.0.3")), "the HTTP listener's redirect too");
    }

    /// A tiny deterministic generator for the edit sequences.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    fn group_id(i: usize) -> String {
        format!("tg-{i}")
    }

    fn target(id: &str, port: u16) -> berth_routes::Target {
        berth_routes::Target {
            id: id.into(),
            addr: SocketAddr::new([127, 0, 0, 1].into(), port),
            state: TargetState::Registered,
        }
    }

    fn forward_rule(arn: &str, priority: u32, host: &str, lb: &str, groups: &[(usize, u32)]) -> Rule {
        Rule {
            arn: arn.into(),
            priority,
            conditions: vec![Condition::HostHeader { values: vec![host.into()] }],
            actions: vec![RuleAction::Forward {
                target_groups: groups
                    .iter()
                    .map(|(g, w)| WeightedTargetGroup { target_group: group_id(*g), weight: *w })
                    .collect(),
                stickiness: None,
            }],
            load_balancer: Some(lb.into()),
        }
    }

    /// Everything a request or a handshake can observe of a snapshot, for the hosts and sockets of `table`.
    fn observe(s: &Snapshot, table: &RouteTable) -> Vec<String> {
        let headers = HeaderMap::new();
        let mut hosts: Vec<String> = table
            .rules
            .iter()
            .flat_map(|r| r.conditions.iter())
            .filter_map(|c| match c {
                Condition::HostHeader { values } => values.first().cloned(),
                _ => None,
            })
            .collect();
        hosts.push("nobody.example".into());
        let mut sockets: Vec<Option<SocketAddr>> = vec![None];
        sockets.extend(table.load_balancers.iter().filter_map(|l| l.https_listen).map(Some));
        let mut out = vec![format!("listen {:?}", s.listen), format!("version {}", s.version)];
        out.extend(s.targets.iter().map(|t| format!("target {:?}", t.key)));
        for socket in &sockets {
            for host in &hosts {
                for client in ["127.0.0.1", "10.1.2.3"] {
                    let view = RequestView {
                        host,
                        path: "/",
                        query: None,
                        method: "GET",
                        headers: &headers,
                        source: client.parse().expect("ip"),
                    };
                    out.push(format!("{socket:?} {host} {client}: {:?}", s.route(*socket, &view, true)));
                }
                out.push(format!("{socket:?} {host} idle {:?}", s.idle_for(*socket, Some(host))));
            }
        }
        for host in &hosts {
            let cert = s.resolver.select(Some(host)).map(|k| k.cert.first().map(|c| c.to_vec()));
            out.push(format!("{host} cert {cert:?}"));
        }
        out
    }

    /// One random edit of the kinds a server publishes; returns what it did.
    fn edit(t: &mut RouteTable, rng: &mut Rng, certs: &[berth_routes::Certificate], step: usize) -> String {
        let groups = t.target_groups.len();
        match rng.below(10) {
            0 | 1 => {
                // A deployment step: a group's targets change (new, gone, draining).
                let g = &mut t.target_groups[rng.below(groups)];
                match rng.below(3) {
                    0 => g.targets.push(target(&format!("task-{step}"), 1000 + step as u16)),
                    1 if !g.targets.is_empty() => {
                        g.targets.remove(0);
                    }
                    _ => {
                        if let Some(x) = g.targets.first_mut() {
                            x.state = TargetState::Draining;
                        }
                    }
                }
                format!("targets of {}", g.id)
            }
            2 => {
                let g = &mut t.target_groups[rng.below(groups)];
                g.health_check.path = format!("/health-{step}");
                format!("health check of {}", g.id)
            }
            3 => {
                let g = &mut t.target_groups[rng.below(groups)];
                g.slow_start_secs = if g.slow_start_secs == 0 { 30 } else { 0 };
                g.algorithm = if rng.below(2) == 0 {
                    berth_routes::Algorithm::LeastOutstandingRequests
                } else {
                    berth_routes::Algorithm::RoundRobin
                };
                format!("settings of {}", g.id)
            }
            4 => {
                // Weights shift (SetLive) on one rule.
                let i = rng.below(t.rules.len());
                if let Some(RuleAction::Forward { target_groups, .. }) = t.rules[i].actions.first_mut() {
                    for w in target_groups.iter_mut() {
                        w.weight = if w.weight == 0 { 100 } else { 0 };
                    }
                }
                format!("weights of {}", t.rules[i].arn)
            }
            5 => {
                if t.rules.len() > 2 && rng.below(2) == 0 {
                    let r = t.rules.remove(rng.below(t.rules.len()));
                    format!("removed {}", r.arn)
                } else {
                    let lb = t.load_balancers[rng.below(t.load_balancers.len())].arn.clone();
                    let g = rng.below(groups);
                    let arn = format!("r-new-{step}");
                    let host = format!("new{step}.example");
                    t.rules.push(forward_rule(&arn, 100 + step as u32, &host, &lb, &[(g, 100)]));
                    if let Some(l) = t.load_balancers.iter_mut().find(|l| l.arn == lb) {
                        l.hosts.push(host);
                    }
                    format!("added {arn}")
                }
            }
            6 => {
                let i = rng.below(t.load_balancers.len());
                let l = &mut t.load_balancers[i];
                match rng.below(3) {
                    0 => l.sources = Some(ListenerSources { https: vec!["10.0.0.0/8".into()], http: vec![] }),
                    1 => l.sources = None,
                    _ => l.idle_timeout_secs = Some(step as u32 + 1),
                }
                format!("load balancer {}", l.arn)
            }
            7 => {
                t.certificates = certs.iter().take(rng.below(certs.len() + 1)).cloned().collect();
                format!("{} certificates", t.certificates.len())
            }
            8 => {
                t.stickiness_key = format!("{step:064x}");
                "stickiness key".into()
            }
            _ => {
                // A group goes or comes back (a service deleted, or a new one).
                if rng.below(2) == 0 && groups > 1 {
                    let g = t.target_groups.remove(rng.below(groups));
                    format!("removed {}", g.id)
                } else {
                    let id = group_id(100 + step);
                    t.target_groups.push(TargetGroup {
                        id: id.clone(),
                        targets: vec![target("task-x", 2000 + step as u16)],
                        ..TargetGroup::default()
                    });
                    t.target_groups.sort_by(|a, b| a.id.cmp(&b.id));
                    format!("added {id}")
                }
            }
        }
    }

    #[tokio::test]
    async fn an_incremental_apply_serves_what_a_fresh_build_serves() {
        let ca = berth_certs::Ca::generate().expect("ca");
        let certs: Vec<berth_routes::Certificate> = ["a0.example", "a1.example", "a2.example"]
            .iter()
            .map(|h| {
                let c = ca.issue(&[(*h).to_owned()], &[]).expect("cert");
                berth_routes::Certificate {
                    id: (*h).into(),
                    hosts: vec![(*h).into()],
                    cert_pem: c.cert_pem,
                    key_pem: c.key_pem,
                }
            })
            .collect();
        let mut table = RouteTable {
            version: 1,
            load_balancers: vec![
                lb("lb-a", None, &[], Some(&["127.0.0.1/32"]), Some(30)),
                lb("lb-b", None, &[], None, None),
                lb("lb-own", Some("127.0.0.5"), &[], None, None),
            ],
            certificates: certs.clone(),
            ..RouteTable::default()
        };
        for i in 0..8 {
            let host = format!("a{i}.example");
            let lb = ["lb-a", "lb-b", "lb-own"][i % 3];
            table.rules.push(forward_rule(&format!("r-{i}"), i as u32 + 1, &host, lb, &[(2 * i, 100), (2 * i + 1, 0)]));
            if let Some(l) = table.load_balancers.iter_mut().find(|l| l.arn == lb) {
                l.hosts.push(host);
            }
        }
        for i in 0..16 {
            let targets = (0..i % 3).map(|t| target(&format!("task-{i}-{t}"), 3000 + (i * 3 + t) as u16)).collect();
            table.target_groups.push(TargetGroup { id: group_id(i), targets, ..TargetGroup::default() });
        }
        table.target_groups.sort_by(|a, b| a.id.cmp(&b.id));

        let metrics = Metrics::default();
        let mut supervisor = crate::health::Supervisor::new(Arc::new(tokio::sync::Notify::new()));
        supervisor.sync(&table);
        let mut current = Snapshot::build_from(&table, &supervisor, &metrics, None);
        let mut applied = table.clone();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut reused_rules = 0;
        for step in 0..400 {
            let what = edit(&mut table, &mut rng, &certs, step);
            table.version += 1;
            let before: HashMap<TargetKey, Arc<TargetRuntime>> =
                supervisor.runtimes().into_iter().map(|r| (r.key.clone(), r)).collect();
            let changed = supervisor.sync(&table);
            for g in &table.target_groups {
                if applied.target_group(&g.id) != Some(g) {
                    assert!(changed.contains(&g.id), "step {step} ({what}): {} differs but was not re-synced", g.id);
                }
            }
            for r in supervisor.runtimes() {
                if !changed.contains(r.key.group.as_str()) {
                    let old = before.get(&r.key).expect("an unchanged group's target existed before");
                    assert!(Arc::ptr_eq(old, &r), "step {step} ({what}): {:?} lost its runtime", r.key);
                }
            }
            let previous = Previous { table: &applied, snapshot: &current, changed_groups: &changed };
            let incremental = Snapshot::build_from(&table, &supervisor, &metrics, Some(previous));
            let fresh = Snapshot::build_from(&table, &supervisor, &metrics, None);
            assert_eq!(observe(&incremental, &table), observe(&fresh, &table), "step {step} ({what})");
            reused_rules += incremental
                .compiled
                .iter()
                .filter(|(arn, c)| current.compiled.get(*arn).is_some_and(|p| Arc::ptr_eq(&p.action, &c.action)))
                .count();
            current = incremental;
            applied = table.clone();
        }
        assert!(reused_rules > 1000, "unchanged rules are reused, not compiled again ({reused_rules})");
    }
}
