//! berth-routes: the contract between the control plane and the data plane.
//!
//! It owns the immutable, versioned route-table snapshot the server publishes and every proxy serves, the
//! proxy's report back (target health, in-flight requests, the version it serves), and the paths of the
//! internal loopback API that carries them. It is plain data with serde: it must never do I/O and never
//! depend on the store, the runtime or the proxy, so both sides can evolve behind it.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Long-poll for a newer table: `GET {ROUTES_PATH}?after=<version>&proxy=<proxy id>`. Answers 200 with a
/// [`RouteTable`] whose version is greater than `after`, or 204 after [`WATCH_TIMEOUT_SECS`] with none.
pub const ROUTES_PATH: &str = "/internal/v1/routes";
/// `POST` a [`ProxyReport`]; answers 204.
pub const REPORT_PATH: &str = "/internal/v1/report";
/// The header carrying the internal token (from the data directory's `internal-token` file).
pub const TOKEN_HEADER: &str = "x-berth-internal-token";
/// How long a watch waits before answering 204.
pub const WATCH_TIMEOUT_SECS: u64 = 25;

/// One immutable snapshot of everything the data plane needs. Versions only grow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteTable {
    pub version: u64,
    /// Certificates the HTTPS listener offers, chosen by SNI.
    pub certificates: Vec<Certificate>,
    /// Virtual hosts, matched on the request's Host (without port), case-insensitively. berth's control plane
    /// now expresses every route as a listener rule and leaves this empty; the proxy still serves it for tables
    /// written by older servers.
    pub hosts: Vec<HostRoute>,
    /// Every target group referenced by a host or a rule, with its targets and health check.
    pub target_groups: Vec<TargetGroup>,
    /// ELBv2 listener rules, evaluated by ascending priority (first match wins) together with `hosts`: each
    /// [`HostRoute`] behaves as a rule `host-header = host → forward` at [`HOST_ROUTE_PRIORITY`], after every
    /// explicit rule whose priority is lower or equal. No match: the default action, 404.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Who may connect: the sources each load balancer's security groups admit, by the hosts it serves.
    /// A request for a host no filter names is allowed (tables from older servers have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_filters: Vec<SourceFilter>,
    /// The secret that keys target-stickiness cookies (`AWSALB`, `AWSALBAPP-<n>`), so every proxy of a server
    /// (and a restarted one) accepts the cookies any of them issued and no client can forge one. Empty in
    /// tables from older servers: the proxy then uses a key of its own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stickiness_key: String,
    /// The load balancers whose rules this table carries (a rule names its own in [`Rule::load_balancer`]).
    /// Empty in tables from older servers: then every rule is served on the proxy's default sockets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
}

/// One load balancer: where it listens, which hosts it serves on shared sockets, who may connect, and its
/// client idle timeout.
///
/// Sockets: a load balancer with `https_listen`/`http_listen` is served on those addresses only, with only
/// its own rules (and those of other load balancers naming the same address); one without shares the
/// proxy's default listener sockets with every other such load balancer, and the request's Host (or the TLS
/// SNI, for the idle timeout) picks which of them it reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub scheme: Scheme,
    /// Its own HTTPS listener address; `None`: the proxy's default HTTPS socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_listen: Option<SocketAddr>,
    /// Its own HTTP listener address; `None`: the proxy's default HTTP socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// The lowercase hosts it serves exactly (its endpoints and the exact host-header values of its rules):
    /// on a socket shared by several load balancers, a request for one of these reached this one.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `idle_timeout.timeout_seconds`: its client connections idle this long are closed. `None`: the proxy's
    /// configured idle timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u32>,
    /// The union of its security groups' ingress rules on its listeners. `None`: no filter (all sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<ListenerSources>,
}

/// A load balancer's scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    #[default]
    #[serde(rename = "internet-facing")]
    InternetFacing,
    /// Reachable from inside its VPC only.
    #[serde(rename = "internal")]
    Internal,
}

/// The client sources a load balancer admits on each listener: CIDRs (`0.0.0.0/0`, `127.0.0.1/32`, `::/0`).
/// An empty list admits nobody on that listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSources {
    /// Admitted on the HTTPS listener (port 443).
    pub https: Vec<String>,
    /// Admitted on the HTTP listener (port 80).
    pub http: Vec<String>,
}

/// The client sources a load balancer admits on its listeners, by host (the format of older servers; current
/// ones put [`ListenerSources`] on each [`LoadBalancer`]). A request whose host (exact, case-insensitive) is in `hosts` and whose client address is in none of its
/// listener's CIDRs is refused. An empty list admits nobody on that listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFilter {
    /// Lowercase hosts this load balancer serves.
    pub hosts: Vec<String>,
    /// CIDRs (`0.0.0.0/0`, `127.0.0.1/32`, `::/0`) admitted on the HTTPS listener (port 443).
    pub https: Vec<String>,
    /// CIDRs admitted on the HTTP listener (port 80).
    pub http: Vec<String>,
}

/// The priority the implicit rule of every [`HostRoute`] has. ALB priorities are 1..=50000, so explicit rules
/// normally all come first; an explicit rule at exactly this priority is still evaluated before host routes.
pub const HOST_ROUTE_PRIORITY: u32 = 50_000;

/// One ALB listener rule: all `conditions` must hold (an empty list always holds); then `actions` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's ARN (also the metrics label of the requests it matches).
    pub arn: String,
    /// Lower numbers are evaluated first.
    pub priority: u32,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The first action is the rule's answer (ALB allows exactly one final forward, redirect or
    /// fixed-response action; authenticate actions are not modelled). A rule without actions is not served.
    pub actions: Vec<RuleAction>,
    /// The ARN of the load balancer (in [`RouteTable::load_balancers`]) whose listener has this rule. `None`
    /// (tables from older servers): the rule is served on the default sockets for every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
}

/// An ALB rule condition; a request satisfies it when any of its values matches (OR within a condition).
///
/// Wildcards: `*` matches any run of characters (possibly empty), `?` exactly one; `\*`, `\?` and `\\` match
/// the literal character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "kebab-case")]
pub enum Condition {
    /// The request's host (Host header or `:authority`, without port), case-insensitive, wildcards.
    HostHeader { values: Vec<String> },
    /// The request's path (not its query), case-sensitive, wildcards.
    PathPattern { values: Vec<String> },
    /// A header by name (case-insensitive); any occurrence's value matching a value (case-insensitive,
    /// wildcards) satisfies it.
    HttpHeader { name: String, values: Vec<String> },
    /// The request method, exactly and case-sensitively (`GET`, `POST`, a custom `PURGE`...).
    HttpRequestMethod { values: Vec<String> },
    /// Query parameters (percent-decoded, case-insensitive, wildcards); a pair without key matches any
    /// parameter's value.
    QueryString { values: Vec<QueryStringPair> },
    /// The client's address (not `X-Forwarded-For`) in any of these CIDRs (`10.0.0.0/8`, `2001:db8::/32`;
    /// a bare address means /32 or /128).
    SourceIp { values: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryStringPair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
}

/// What a rule does with the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RuleAction {
    /// Forwards to up to 5 target groups split by weight (weights need not sum to 100).
    Forward {
        target_groups: Vec<WeightedTargetGroup>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stickiness: Option<Stickiness>,
    },
    Redirect(Redirect),
    FixedResponse(FixedResponse),
}

/// Target-group stickiness: the first response sets a cookie (`AWSALBTG`) naming the chosen target group,
/// and later requests carrying it go to that group while it has a healthy target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stickiness {
    /// 1..=604800 seconds, as ALB.
    pub duration_secs: u32,
}

/// An ALB redirect. Every component may use the placeholders `#{protocol}`, `#{host}`, `#{port}`, `#{path}`
/// and `#{query}`; an absent component keeps the request's (`#{...}` of itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// `HTTP`, `HTTPS` or `#{protocol}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Must start with `/` once placeholders are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Without the leading `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub status_code: RedirectStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectStatus {
    #[serde(rename = "HTTP_301")]
    Http301,
    #[serde(rename = "HTTP_302")]
    Http302,
}

/// A response the load balancer writes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponse {
    /// 2XX, 4XX or 5XX.
    pub status_code: u16,
    /// `text/plain` (default), `text/css`, `text/html`, `application/javascript` or `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// A certificate and its private key (PEM), valid for `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// All requests for `host` are forwarded to `forward`, split by weight (weights need not sum to 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub host: String,
    /// The service this host belongs to (its ARN), for logs and metrics.
    pub service: String,
    pub forward: Vec<WeightedTargetGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    pub target_group: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// The target group's ARN.
    pub id: String,
    pub health_check: HealthCheck,
    pub targets: Vec<Target>,
    /// `load_balancing.algorithm.type`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How the proxy talks to the targets: HTTP/1.1, or HTTP/2 with prior knowledge (h2c).
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// `slow_start.duration_seconds`: a target that becomes healthy while the group has a healthy target that
    /// is not itself slow-starting gets a linearly growing share of new requests over this many seconds
    /// (round robin only). 0: off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_start_secs: u32,
    /// Target stickiness (`stickiness.*` attributes), when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<TargetStickiness>,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.*`: below this many healthy targets
    /// the group fails open (routes to all its checked targets, healthy or not), as ALB does.
    #[serde(default, skip_serializing_if = "MinimumHealthy::is_default")]
    pub unhealthy_routing: MinimumHealthy,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A target group's healthy-state requirement (ALB's `minimum_healthy_targets.count` / `.percentage`): it is
/// breached when fewer than `count` targets are healthy, or (when set) fewer than `percentage` percent of its
/// registered targets. ALB's default is one target and no percentage, so a group fails open only when no target
/// is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumHealthy {
    /// 1 and up.
    pub count: u32,
    /// 1..=100; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<u8>,
}

impl Default for MinimumHealthy {
    fn default() -> Self {
        MinimumHealthy { count: 1, percentage: None }
    }
}

impl MinimumHealthy {
    pub fn is_default(&self) -> bool {
        *self == MinimumHealthy::default()
    }

    /// Whether `healthy` of `total` registered targets fall below the requirement.
    pub fn breached(&self, healthy: usize, total: usize) -> bool {
        healthy < self.count as usize || self.percentage.is_some_and(|p| healthy * 100 < usize::from(p) * total)
    }
}

/// Target-group stickiness: requests carrying the load balancer's cookie stay on the target that issued it
/// while it is healthy, for `duration_secs` (1..=604800).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetStickiness {
    /// Duration-based: the load balancer's own `AWSALB` (and `AWSALBCORS`) cookie, set on every response.
    LbCookie { duration_secs: u32 },
    /// Application-based: an `AWSALBAPP-<n>` cookie set whenever the target sets `cookie_name`; a request
    /// sticks while it carries both.
    AppCookie { cookie_name: String, duration_secs: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    RoundRobin,
    /// The healthy target with the fewest requests in flight (ties in round-robin order).
    LeastOutstandingRequests,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtocolVersion {
    #[default]
    #[serde(rename = "HTTP1")]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge.
    #[serde(rename = "HTTP2")]
    Http2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Stable id of the target (the task ARN).
    pub id: String,
    pub addr: SocketAddr,
    /// `Draining`: finish in-flight requests, send no new ones, keep reporting in-flight counts.
    pub state: TargetState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Registered,
    Draining,
}

/// An ALB-style HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub path: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes counted as success: `"200"`, `"200,302"` or `"200-399"`.
    pub matcher: String,
    /// While a target has never been healthy, probe it this often (milliseconds) so it serves within a
    /// second of being ready.
    pub initial_interval_ms: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: "/ping".into(),
            interval_secs: 30,
            timeout_secs: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200-399".into(),
            initial_interval_ms: 20,
        }
    }
}

/// What a proxy tells the server, periodically and whenever a target's health changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyReport {
    pub proxy_id: String,
    /// The route-table version the proxy serves now.
    pub version: u64,
    pub targets: Vec<TargetReport>,
    /// What was counted since the previous report this proxy sent (absent from older proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsDelta>,
}

/// A proxy's counts over one report interval: the per-interval deltas the server turns into `AWS/ApplicationELB`
/// datapoints. Counters are differences of the proxy's cumulative counters (its `/metrics` stays cumulative);
/// `active_connections` is a gauge read at the end of the interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsDelta {
    /// The proxy's wall clock at the end of the interval (epoch seconds).
    pub end: f64,
    /// Its length in seconds (the first report of a proxy covers everything since it started).
    pub seconds: f64,
    /// Per load-balancer label: a rule's ARN (the server knows its load balancer), or a host route's service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LbDelta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<TgDelta>,
}

/// One load balancer label's counts over an interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbDelta {
    pub label: String,
    pub requests: u64,
    /// Responses from targets by class: 2XX, 3XX, 4XX, 5XX.
    pub target_codes: [u64; 4],
    /// Responses the load balancer generated itself, by class: 2XX, 3XX, 4XX, 5XX.
    pub elb_codes: [u64; 4],
    /// Bytes received from and sent to clients (ALB `ProcessedBytes`).
    pub processed_bytes: u64,
    /// Client connections whose first request this label took.
    pub new_connections: u64,
    /// Of those, the ones open at the end of the interval (a gauge).
    pub active_connections: u64,
}

/// One target group's counts over an interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TgDelta {
    pub target_group: String,
    pub requests: u64,
    pub target_codes: [u64; 4],
    /// Target response times as `(bucket, count)`, buckets of [`latency_bucket`] (only non-zero ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_time: Vec<(u32, u64)>,
    /// Requests sent to each target (`ip:port` as in [`TargetReport::target`]), non-zero only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<(String, u64)>,
}

/// Growth factor of the latency histogram's buckets: a bucket's value ([`latency_bucket_value`]) is within 1% of
/// every latency it counts.
pub const LATENCY_GAMMA: f64 = 1.02;
/// Number of latency buckets: bucket 0 holds everything up to 1 µs, the last everything from ~10 minutes on.
pub const LATENCY_BUCKETS: usize = 1040;

/// The histogram bucket of a latency in microseconds: `ceil(log_γ us)`, clamped to `[0, LATENCY_BUCKETS)`.
pub fn latency_bucket(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    let i = ((micros as f64).ln() / LATENCY_GAMMA.ln()).ceil();
    (i as usize).min(LATENCY_BUCKETS - 1)
}

/// The latency (seconds) a bucket stands for: the geometric middle of `(γ^(i-1), γ^i]` µs, within 1% of both ends.
pub fn latency_bucket_value(bucket: u32) -> f64 {
    if bucket == 0 {
        return 1e-6;
    }
    LATENCY_GAMMA.powf(f64::from(bucket) - 0.5) * 1e-6
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetReport {
    pub target_group: String,
    pub target: String,
    pub health: TargetHealth,
    /// ALB's reason code when not healthy, e.g. `Target.ResponseCodeMismatch`, `Target.Timeout`.
    pub reason: Option<String>,
    pub in_flight: u64,
}

/// ALB's target health states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetHealth {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

impl RouteTable {
    pub fn target_group(&self, id: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|t| t.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_within_one_percent() {
        for micros in [2u64, 3, 10, 999, 1_000, 12_345, 250_000, 1_000_000, 59_000_000, 600_000_000] {
            let b = latency_bucket(micros);
            let v = latency_bucket_value(b as u32) * 1e6;
            assert!((v - micros as f64).abs() / micros as f64 <= 0.0101, "{micros} µs → bucket {b} = {v}");
        }
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1, "clamped");
        assert!(latency_bucket(600_000_000) < LATENCY_BUCKETS - 1, "ten minutes still has its own bucket");
        let report = ProxyReport { proxy_id: "p".into(), ..Default::default() };
        let json = serde_json::to_string(&report).expect("json");
        assert!(!json.contains("metrics"), "older servers see the report they know: {json}");
        let back: ProxyReport = serde_json::from_str(r#"{"proxy_id":"p","version":1,"targets":[]}"#).expect("old");
        assert_eq!(back.metrics, None);
    }

    #[test]
    fn table_round_trips_through_json() {
        let t = RouteTable {
            version: 7,
            certificates: vec![],
            hosts: vec![HostRoute {
                host: "web-abc123.ecs.us-east-1.localhost".into(),
                service: "arn:aws:ecs:us-east-1:000000000000:service/default/web".into(),
                forward: vec![WeightedTargetGroup { target_group: "tg-a".into(), weight: 100 }],
            }],
            target_groups: vec![TargetGroup {
                id: "tg-a".into(),
                health_check: HealthCheck::default(),
                targets: vec![Target {
                    id: "task-1".into(),
                    addr: "172.18.0.2:80".parse().expect("addr"),
                    state: TargetState::Registered,
                }],
                slow_start_secs: 30,
                stickiness: Some(TargetStickiness::AppCookie { cookie_name: "SESSION".into(), duration_secs: 60 }),
                unhealthy_routing: MinimumHealthy { count: 2, percentage: Some(50) },
                ..TargetGroup::default()
            }],
            rules: vec![Rule {
                arn: "arn:rule/1".into(),
                priority: 10,
                conditions: vec![
                    Condition::PathPattern { values: vec!["/api/*".into()] },
                    Condition::QueryString {
                        values: vec![QueryStringPair { key: Some("v".into()), value: "2".into() }],
                    },
                ],
                actions: vec![RuleAction::Forward {
                    target_groups: vec![WeightedTargetGroup { target_group: "tg-a".into(), weight: 1 }],
                    stickiness: Some(Stickiness { duration_secs: 60 }),
                }],
                load_balancer: Some("arn:lb/1".into()),
            }],
            source_filters: vec![SourceFilter {
                hosts: vec!["web-abc123.ecs.us-east-1.localhost".into()],
                https: vec!["127.0.0.1/32".into()],
                http: vec![],
            }],
            stickiness_key: "00ff".into(),
            load_balancers: vec![LoadBalancer {
                arn: "arn:lb/1".into(),
                scheme: Scheme::Internal,
                https_listen: Some("172.18.0.1:443".parse().expect("addr")),
                http_listen: None,
                hosts: vec!["web-abc123.ecs.us-east-1.localhost".into()],
                idle_timeout_secs: Some(5),
                sources: Some(ListenerSources { https: vec!["10.0.0.0/8".into()], http: vec![] }),
            }],
        };
        let s = serde_json::to_string(&t).expect("json");
        let back: RouteTable = serde_json::from_str(&s).expect("parse");
        assert_eq!(back, t);
        assert!(back.target_group("tg-a").is_some());
        assert!(s.contains("\"state\":\"registered\""));
        assert!(s.contains("\"algorithm\":\"round_robin\"") && s.contains("\"protocol_version\":\"HTTP1\""));
        assert!(s.contains("\"field\":\"path-pattern\"") && s.contains("\"type\":\"forward\""), "{s}");
        assert!(s.contains(r#""stickiness":{"type":"app_cookie","cookie_name":"SESSION","duration_secs":60}"#), "{s}");
        assert!(s.contains("\"scheme\":\"internal\"") && s.contains("\"load_balancer\":\"arn:lb/1\""), "{s}");
    }

    #[test]
    fn older_tables_still_parse_and_new_shapes_are_as_documented() {
        // A table from before rules, algorithms and protocol versions.
        let old = r#"{"version":3,"certificates":[],"hosts":[],"target_groups":[{"id":"tg","health_check":
            {"path":"/","interval_secs":5,"timeout_secs":2,"healthy_threshold":2,"unhealthy_threshold":2,
            "matcher":"200","initial_interval_ms":50},"targets":[]}]}"#;
        let t: RouteTable = serde_json::from_str(old).expect("old table");
        assert!(t.rules.is_empty());
        assert!(t.source_filters.is_empty(), "no filter: every source is allowed");
        assert!(t.load_balancers.is_empty(), "no load balancers: every rule on the default sockets");
        assert_eq!(t.target_groups[0].algorithm, Algorithm::RoundRobin);
        assert_eq!(t.target_groups[0].protocol_version, ProtocolVersion::Http1);
        assert_eq!((t.target_groups[0].slow_start_secs, &t.target_groups[0].stickiness), (0, &None));
        assert_eq!(
            t.target_groups[0].unhealthy_routing,
            MinimumHealthy { count: 1, percentage: None },
            "ALB's default"
        );
        assert!(t.stickiness_key.is_empty());

        let rule = r#"{"arn":"r","priority":5,"conditions":[
            {"field":"host-header","values":["*.example.com"]},
            {"field":"http-header","name":"X-Env","values":["beta*"]},
            {"field":"http-request-method","values":["GET","HEAD"]},
            {"field":"query-string","values":[{"value":"x"},{"key":"k","value":"v*"}]},
            {"field":"source-ip","values":["10.0.0.0/8","2001:db8::/32"]}],
          "actions":[
            {"type":"redirect","protocol":"HTTPS","port":"443","status_code":"HTTP_301"},
            {"type":"fixed-response","status_code":503,"content_type":"text/plain","message_body":"down"}]}"#;
        let r: Rule = serde_json::from_str(rule).expect("rule");
        assert_eq!(r.conditions.len(), 5);
        assert_eq!(r.load_balancer, None);
        let lb: LoadBalancer = serde_json::from_str(r#"{"arn":"a","scheme":"internet-facing"}"#).expect("lb");
        assert_eq!((lb.scheme, lb.https_listen, lb.sources), (Scheme::InternetFacing, None, None));
        assert_eq!(
            r.actions[0],
            RuleAction::Redirect(Redirect {
                protocol: Some("HTTPS".into()),
                host: None,
                port: Some("443".into()),
                path: None,
                query: None,
                status_code: RedirectStatus::Http301,
            })
        );
        let tg: TargetGroup = serde_json::from_str(
            r#"{"id":"tg","health_check":{"path":"/","interval_secs":5,"timeout_secs":2,"healthy_threshold":2,
            "unhealthy_threshold":2,"matcher":"200","initial_interval_ms":50},"targets":[],
            "algorithm":"least_outstanding_requests","protocol_version":"HTTP2"}"#,
        )
        .expect("tg");
        assert_eq!((tg.algorithm, tg.protocol_version), (Algorithm::LeastOutstandingRequests, ProtocolVersion::Http2));
    }

    #[test]
    fn minimum_healthy_is_breached_below_either_threshold() {
        // (count, percentage, healthy, total, breached)
        let cases = [
            (1, None, 0, 3, true),
            (1, None, 1, 3, false),
            (2, None, 1, 3, true),
            (2, None, 2, 3, false),
            (1, Some(50), 1, 3, true),
            (1, Some(50), 2, 4, false),
            (1, Some(100), 3, 3, false),
            (1, Some(100), 2, 3, true),
            (1, None, 0, 0, true),
        ];
        for (count, percentage, healthy, total, want) in cases {
            let m = MinimumHealthy { count, percentage };
            assert_eq!(m.breached(healthy, total), want, "{m:?} with {healthy}/{total} healthy");
        }
    }
}
