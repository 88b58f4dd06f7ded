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
    /// Virtual hosts, matched on the request's Host (without port), case-insensitively.
    pub hosts: Vec<HostRoute>,
    /// Every target group referenced by a host, with its targets and health check.
    pub target_groups: Vec<TargetGroup>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// The target group's ARN.
    pub id: String,
    pub health_check: HealthCheck,
    pub targets: Vec<Target>,
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
            initial_interval_ms: 50,
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
            }],
        };
        let s = serde_json::to_string(&t).expect("json");
        let back: RouteTable = serde_json::from_str(&s).expect("parse");
        assert_eq!(back, t);
        assert!(back.target_group("tg-a").is_some());
        assert!(s.contains("\"state\":\"registered\""));
    }
}
