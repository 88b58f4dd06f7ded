//! ALB-style counters per load balancer (for now: the host route's service or the rule's ARN) and per target
//! group, plus connection counts per listener. Requests only touch atomics through `Arc`s the snapshot holds;
//! the registry's lock is taken when a table is applied and when `/metrics` is rendered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_routes::TargetHealth;
use berth_telemetry::prometheus::{Exposition, Histogram};

use crate::state::Snapshot;

/// The load-balancer label of requests no rule matched (or that named no host).
pub(crate) const UNMATCHED: &str = "-";

/// Response codes by class: 2XX, 3XX, 4XX, 5XX.
#[derive(Debug, Default)]
pub(crate) struct Codes([AtomicU64; 4]);

impl Codes {
    fn add(&self, status: u16) {
        if let Some(c) = (status / 100).checked_sub(2).and_then(|i| self.0.get(usize::from(i))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, class: usize) -> u64 {
        self.0[class].load(Ordering::Relaxed)
    }
}

/// Counters of one load balancer.
#[derive(Debug, Default)]
pub(crate) struct LbCounters {
    pub requests: AtomicU64,
    target: Codes,
    elb: Codes,
}

impl LbCounters {
    pub fn target_response(&self, status: u16) {
        self.target.add(status);
    }

    pub fn elb_response(&self, status: u16) {
        self.elb.add(status);
    }
}

/// Counters of one target group.
#[derive(Debug, Default)]
pub(crate) struct TgCounters {
    pub requests: AtomicU64,
    target: Codes,
    pub response_time: Histogram,
}

impl TgCounters {
    pub fn target_response(&self, status: u16, elapsed: Duration) {
        self.target.add(status);
        self.response_time.observe(elapsed);
    }
}

/// Connections of one listener.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    active: AtomicI64,
    new: AtomicU64,
}

impl ConnCounters {
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.new.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    pub fn active(&self) -> i64 {
        self.active.load(Ordering::Relaxed)
    }
}

/// Counted as active until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection(Arc<ConnCounters>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every counter of a proxy; lives as long as it.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    lbs: Mutex<BTreeMap<String, Arc<LbCounters>>>,
    tgs: Mutex<BTreeMap<String, Arc<TgCounters>>>,
    pub https: Arc<ConnCounters>,
    pub http: Arc<ConnCounters>,
    /// WebSocket connections currently passed through.
    pub websockets: Arc<ConnCounters>,
    pub access_log_dropped: AtomicU64,
}

impl Metrics {
    pub fn lb(&self, label: &str) -> Arc<LbCounters> {
        let mut lbs = self.lbs.lock().unwrap_or_else(PoisonError::into_inner);
        lbs.entry(label.to_owned()).or_default().clone()
    }

    pub fn tg(&self, id: &str) -> Arc<TgCounters> {
        let mut tgs = self.tgs.lock().unwrap_or_else(PoisonError::into_inner);
        tgs.entry(id.to_owned()).or_default().clone()
    }

    /// The Prometheus text exposition (version 0.0.4) of every counter, and target health from `snapshot`. Names
    /// follow the server's conventions (docs/observability.md): `_total` counters, `_seconds` histograms, and the
    /// ALB metric each one mirrors in its help.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let lbs: Vec<(String, Arc<LbCounters>)> = self
            .lbs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tgs: Vec<(String, Arc<TgCounters>)> = self
            .tgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let classes = ["2XX", "3XX", "4XX", "5XX"];
        let mut e = Exposition::new();

        e.family("berth_lb_requests_total", "counter", "Requests processed (ALB RequestCount).");
        for (lb, c) in &lbs {
            e.sample("berth_lb_requests_total", &[("load_balancer", lb)], c.requests.load(Ordering::Relaxed));
        }
        for (kind, elb) in [("target", false), ("elb", true)] {
            for (i, class) in classes.iter().enumerate() {
                let name = format!("berth_lb_httpcode_{kind}_{}_total", class.to_ascii_lowercase());
                let help = if elb {
                    format!("HTTP {class} responses the load balancer generated (ALB HTTPCode_ELB_{class}_Count).")
                } else {
                    format!("HTTP {class} responses from targets (ALB HTTPCode_Target_{class}_Count).")
                };
                e.family(&name, "counter", &help);
                for (lb, c) in &lbs {
                    let codes = if elb { &c.elb } else { &c.target };
                    e.sample(&name, &[("load_balancer", lb)], codes.get(i));
                }
            }
        }
        let listeners = [("https", &self.https), ("http", &self.http), ("websocket", &self.websockets)];
        e.family("berth_lb_active_connections", "gauge", "Open client connections (ALB ActiveConnectionCount).");
        for (listener, c) in listeners {
            e.sample("berth_lb_active_connections", &[("listener", listener)], c.active().max(0));
        }
        e.family("berth_lb_new_connections_total", "counter", "Client connections accepted (ALB NewConnectionCount).");
        for (listener, c) in listeners {
            e.sample("berth_lb_new_connections_total", &[("listener", listener)], c.new.load(Ordering::Relaxed));
        }

        e.family(
            "berth_tg_requests_total",
            "counter",
            "Requests routed to the target group (ALB RequestCountPerTarget x targets).",
        );
        for (tg, c) in &tgs {
            e.sample("berth_tg_requests_total", &[("target_group", tg)], c.requests.load(Ordering::Relaxed));
        }
        for (i, class) in classes.iter().enumerate() {
            let name = format!("berth_tg_httpcode_target_{}_total", class.to_ascii_lowercase());
            e.family(&name, "counter", &format!("HTTP {class} responses from the group's targets."));
            for (tg, c) in &tgs {
                e.sample(&name, &[("target_group", tg)], c.target.get(i));
            }
        }
        let name = "berth_tg_target_response_time_seconds";
        e.family(
            name,
            "histogram",
            "Time from sending a request to a target to its response headers (ALB TargetResponseTime).",
        );
        for (tg, c) in &tgs {
            e.histogram(name, &[("target_group", tg)], &c.response_time);
        }

        let mut health: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for t in &snapshot.targets {
            let entry = health.entry(t.key.group.as_str()).or_default();
            match t.status().health {
                TargetHealth::Healthy => entry.0 += 1,
                TargetHealth::Unhealthy => entry.1 += 1,
                TargetHealth::Initial | TargetHealth::Draining => {}
            }
        }
        e.family("berth_tg_healthy_hosts", "gauge", "Healthy targets (ALB HealthyHostCount).");
        for (tg, (healthy, _)) in &health {
            e.sample("berth_tg_healthy_hosts", &[("target_group", tg)], *healthy);
        }
        e.family("berth_tg_unhealthy_hosts", "gauge", "Unhealthy targets (ALB UnHealthyHostCount).");
        for (tg, (_, unhealthy)) in &health {
            e.sample("berth_tg_unhealthy_hosts", &[("target_group", tg)], *unhealthy);
        }
        e.family(
            "berth_proxy_access_log_dropped_total",
            "counter",
            "Access log entries dropped because the writer lagged.",
        );
        e.sample("berth_proxy_access_log_dropped_total", &[], self.access_log_dropped.load(Ordering::Relaxed));
        e.family("berth_proxy_route_table_version", "gauge", "The route table version served.");
        e.sample("berth_proxy_route_table_version", &[], snapshot.version);
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_histogram_count() {
        let m = Metrics::default();
        let lb = m.lb("svc");
        lb.requests.fetch_add(3, Ordering::Relaxed);
        lb.target_response(200);
        lb.target_response(302);
        lb.elb_response(503);
        lb.elb_response(101);
        let tg = m.tg("tg-a");
        tg.target_response(404, Duration::from_millis(3));
        tg.target_response(200, Duration::from_secs(30));
        let conn = m.https.open();
        let text = m.render(&Snapshot::default());
        for line in [
            "berth_lb_requests_total{load_balancer=\"svc\"} 3",
            "berth_lb_httpcode_target_2xx_total{load_balancer=\"svc\"} 1",
            "berth_lb_httpcode_target_3xx_total{load_balancer=\"svc\"} 1",
            "berth_lb_httpcode_elb_5xx_total{load_balancer=\"svc\"} 1",
            "berth_lb_httpcode_elb_4xx_total{load_balancer=\"svc\"} 0",
            "berth_tg_httpcode_target_4xx_total{target_group=\"tg-a\"} 1",
            "berth_tg_target_response_time_seconds_bucket{target_group=\"tg-a\",le=\"0.005\"} 1",
            "berth_tg_target_response_time_seconds_bucket{target_group=\"tg-a\",le=\"10\"} 1",
            "berth_tg_target_response_time_seconds_bucket{target_group=\"tg-a\",le=\"+Inf\"} 2",
            "berth_tg_target_response_time_seconds_sum{target_group=\"tg-a\"} 30.003",
            "berth_tg_target_response_time_seconds_count{target_group=\"tg-a\"} 2",
            "berth_lb_active_connections{listener=\"https\"} 1",
            "berth_lb_new_connections_total{listener=\"https\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        drop(conn);
        assert!(m.render(&Snapshot::default()).contains("berth_lb_active_connections{listener=\"https\"} 0"));
        assert!(Arc::ptr_eq(&m.lb("svc"), &lb), "counters survive table versions");
    }
}
