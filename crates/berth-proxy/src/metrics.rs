//! ALB-style counters per load balancer (for now: the host route's service or the rule's ARN) and per target
//! group, plus connection counts per listener. Requests only touch atomics through `Arc`s the snapshot holds;
//! the registry's lock is taken when a table is applied and when `/metrics` is rendered.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use berth_routes::{LATENCY_BUCKETS, LbDelta, MetricsDelta, TargetHealth, TgDelta, latency_bucket};
use berth_telemetry::prometheus::{Exposition, Histogram};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

    fn all(&self) -> [u64; 4] {
        [self.get(0), self.get(1), self.get(2), self.get(3)]
    }
}

/// A target group's response times: the Prometheus buckets `/metrics` shows, and the fine log buckets the reports
/// carry ([`berth_routes::latency_bucket`]: within 1%), so the server's percentiles are real ones.
#[derive(Debug)]
pub(crate) struct ResponseTimes {
    coarse: Histogram,
    fine: Box<[AtomicU64]>,
}

impl Default for ResponseTimes {
    fn default() -> Self {
        ResponseTimes { coarse: Histogram::default(), fine: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl ResponseTimes {
    pub fn observe(&self, d: Duration) {
        self.coarse.observe(d);
        if let Some(b) = self.fine.get(latency_bucket(d.as_micros() as u64)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counters of one load balancer.
#[derive(Debug, Default)]
pub(crate) struct LbCounters {
    pub requests: AtomicU64,
    target: Codes,
    elb: Codes,
    /// Bytes from and to clients of connections attributed to it ([`ConnMeter`]).
    processed_bytes: AtomicU64,
    new_connections: AtomicU64,
    active_connections: AtomicI64,
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
    pub response_time: ResponseTimes,
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

/// One client connection's bytes and the load balancer it counts under: the one its first routed request
/// reached (ALB counts a connection for its load balancer; on shared sockets only the request says which).
/// Bytes are counted here (an atomic only this connection touches) and handed to the load balancer's counter at
/// each routed request and when the connection closes, so the shared counter is touched once per request, not
/// per read and write; the connection stays active for its load balancer until the last holder (the stream and
/// the connection's info) drops.
#[derive(Debug, Default)]
pub(crate) struct ConnMeter {
    pending: AtomicU64,
    lb: OnceLock<Arc<LbCounters>>,
}

impl ConnMeter {
    fn add(&self, n: u64) {
        self.pending.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts the connection for `lb` unless it already counts for one, and hands over the bytes so far.
    pub fn attribute(&self, lb: &Arc<LbCounters>) {
        let counted = match self.lb.get() {
            Some(counted) => counted,
            None => {
                if self.lb.set(lb.clone()).is_ok() {
                    lb.new_connections.fetch_add(1, Ordering::Relaxed);
                    lb.active_connections.fetch_add(1, Ordering::Relaxed);
                }
                match self.lb.get() {
                    Some(counted) => counted,
                    None => return,
                }
            }
        };
        let bytes = self.pending.swap(0, Ordering::Relaxed);
        if bytes > 0 {
            counted.processed_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

impl Drop for ConnMeter {
    fn drop(&mut self) {
        if let Some(lb) = self.lb.get() {
            lb.active_connections.fetch_sub(1, Ordering::Relaxed);
            lb.processed_bytes.fetch_add(*self.pending.get_mut(), Ordering::Relaxed);
        }
    }
}

/// A client stream whose bytes read and written count in its [`ConnMeter`].
#[derive(Debug)]
pub(crate) struct Metered<S> {
    inner: S,
    /// `None`: reports carry no metrics, nothing to count.
    meter: Option<Arc<ConnMeter>>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, meter: Option<Arc<ConnMeter>>) -> Self {
        Metered { inner, meter }
    }

    fn add(&self, n: usize) {
        if let Some(meter) = &self.meter {
            meter.add(n as u64);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.add(buf.filled().len().saturating_sub(before));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.add(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.add(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the last delivered report counted, per label and group (cumulative), to subtract from the next.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reported {
    lbs: HashMap<String, LbTotals>,
    tgs: HashMap<String, TgTotals>,
    targets: HashMap<(String, String), u64>,
    at: Option<SystemTime>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct LbTotals {
    requests: u64,
    target: [u64; 4],
    elb: [u64; 4],
    bytes: u64,
    new: u64,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct TgTotals {
    requests: u64,
    target: [u64; 4],
    fine: Vec<u64>,
}

fn minus(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    [a[0].saturating_sub(b[0]), a[1].saturating_sub(b[1]), a[2].saturating_sub(b[2]), a[3].saturating_sub(b[3])]
}

/// Every counter of a proxy; lives as long as it.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Whether reports carry deltas: only then are bytes metered and the fine latency histogram kept.
    pub reporting: bool,
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
        tgs.entry(id.to_owned())
            .or_insert_with(|| {
                let mut counters = TgCounters::default();
                if !self.reporting {
                    counters.response_time.fine = Box::default();
                }
                Arc::new(counters)
            })
            .clone()
    }

    /// Every load balancer's and target group's counters, copied out of the registry's locks.
    #[allow(clippy::type_complexity)]
    fn counters(&self) -> (Vec<(String, Arc<LbCounters>)>, Vec<(String, Arc<TgCounters>)>) {
        fn copy<T>(map: &Mutex<BTreeMap<String, Arc<T>>>) -> Vec<(String, Arc<T>)> {
            map.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        (copy(&self.lbs), copy(&self.tgs))
    }

    /// Counters that also keep what reports carry (bytes per connection, fine latency buckets).
    pub fn reporting() -> Metrics {
        Metrics { reporting: true, ..Metrics::default() }
    }

    /// What was counted since `reported` (the totals the last delivered report carried), and the totals to keep
    /// once this one is delivered. Target groups of `snapshot` are always included (zeros too: ALB reports
    /// RequestCount and RequestCountPerTarget always), labels and other groups only when they counted something.
    pub fn delta(&self, snapshot: &Snapshot, reported: &Reported, now: SystemTime) -> (MetricsDelta, Reported) {
        let (lbs, tgs) = self.counters();
        let mut next = Reported { at: Some(now), ..Reported::default() };
        let end = now.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let seconds = reported.at.and_then(|at| now.duration_since(at).ok()).map_or(0.0, |d| d.as_secs_f64());
        let mut delta = MetricsDelta { end, seconds, ..MetricsDelta::default() };
        for (label, c) in lbs {
            let totals = LbTotals {
                requests: c.requests.load(Ordering::Relaxed),
                target: c.target.all(),
                elb: c.elb.all(),
                bytes: c.processed_bytes.load(Ordering::Relaxed),
                new: c.new_connections.load(Ordering::Relaxed),
            };
            let active = c.active_connections.load(Ordering::Relaxed).max(0) as u64;
            let before = reported.lbs.get(&label).cloned().unwrap_or_default();
            let d = LbDelta {
                label: label.clone(),
                requests: totals.requests.saturating_sub(before.requests),
                target_codes: minus(totals.target, before.target),
                elb_codes: minus(totals.elb, before.elb),
                processed_bytes: totals.bytes.saturating_sub(before.bytes),
                new_connections: totals.new.saturating_sub(before.new),
                active_connections: active,
            };
            if d.requests > 0 || d.processed_bytes > 0 || d.new_connections > 0 || active > 0 {
                delta.load_balancers.push(d);
            }
            next.lbs.insert(label, totals);
        }
        let served: std::collections::HashSet<&str> = snapshot.targets.iter().map(|t| t.key.group.as_str()).collect();
        let mut per_target: HashMap<&str, Vec<(String, u64)>> = HashMap::new();
        for t in &snapshot.targets {
            let key = (t.key.group.clone(), t.key.target.clone());
            let total = t.requests();
            let n = total.saturating_sub(reported.targets.get(&key).copied().unwrap_or(0));
            if n > 0 {
                per_target.entry(t.key.group.as_str()).or_default().push((t.key.target.clone(), n));
            }
            next.targets.insert(key, total);
        }
        for (group, c) in tgs {
            let fine: Vec<u64> = c.response_time.fine.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            let totals = TgTotals { requests: c.requests.load(Ordering::Relaxed), target: c.target.all(), fine };
            let before = reported.tgs.get(&group);
            let before_fine = before.map(|b| b.fine.as_slice()).unwrap_or(&[]);
            let response_time: Vec<(u32, u64)> = totals
                .fine
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let d = n.saturating_sub(before_fine.get(i).copied().unwrap_or(0));
                    (d > 0).then_some((i as u32, d))
                })
                .collect();
            let d = TgDelta {
                target_group: group.clone(),
                requests: totals.requests.saturating_sub(before.map_or(0, |b| b.requests)),
                target_codes: minus(totals.target, before.map_or([0; 4], |b| b.target)),
                response_time,
                targets: per_target.remove(group.as_str()).unwrap_or_default(),
            };
            if served.contains(group.as_str()) || d.requests > 0 || !d.response_time.is_empty() {
                delta.target_groups.push(d);
            }
            next.tgs.insert(group, totals);
        }
        (delta, next)
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
            e.histogram(name, &[("target_group", tg)], &c.response_time.coarse);
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
