//! The control plane's own health, as the binary's `/metrics` shows it: timings the other modules record as they
//! work (a reconcile pass, a route-table build, waiting for and holding the store's writer, how late a task's
//! output reaches its log stream), and a snapshot read on demand (the route table served and when it was
//! published, tasks by status, the table version each live proxy serves, open live-tail sessions).
//!
//! Recording is a few relaxed atomic adds on [`Health`]'s histograms (`berth_telemetry::prometheus`), never a
//! lock; the snapshot reads the store through [`Control::read`]. Rendering the exposition is the binary's. It also
//! hands over the newest one-minute aggregate of every CloudWatch series that received data lately
//! ([`Control::cloudwatch_latest`]), so Prometheus sees what CloudWatch stores.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_telemetry::prometheus::{Histogram, LATENCY_BUCKETS};
use berth_telemetry::{Aggregate, MetricId};

use crate::{Control, ControlError};

/// Upper bounds (seconds) for log shipping lag: 10 ms to 5 minutes.
const LAG_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Upper bounds (seconds) for a reconcile pass: 1 ms to 30 s.
const PASS_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the modules record as they work.
#[derive(Debug)]
pub struct Health {
    /// One reconciler pass, start to end (`reconcile.rs`).
    pub reconcile_pass: Histogram,
    /// Building (and, when the routes changed, publishing) the route table (`publish.rs`).
    pub route_build: Histogram,
    /// Waiting for the store's writer lock ([`Control::tx`]).
    pub store_wait: Histogram,
    /// Holding it: one write transaction.
    pub store_tx: Histogram,
    /// From a container's line (its timestamp) to its commit into the log stream, per shipped batch's oldest line.
    pub shipping_lag: Histogram,
    /// When the served route table was published (epoch milliseconds; 0: not since the server started).
    route_published_ms: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            reconcile_pass: Histogram::new(PASS_BUCKETS),
            route_build: Histogram::new(LATENCY_BUCKETS),
            store_wait: Histogram::new(LATENCY_BUCKETS),
            store_tx: Histogram::new(LATENCY_BUCKETS),
            shipping_lag: Histogram::new(LAG_BUCKETS),
            route_published_ms: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// Records that a new route table was published at `epoch_ms`.
    pub(crate) fn route_published(&self, epoch_ms: i64) {
        self.route_published_ms.store(u64::try_from(epoch_ms).unwrap_or(0), Ordering::Relaxed);
    }
}

/// The on-demand part of the health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSnapshot {
    /// The route table version the server serves.
    pub route_version: u64,
    /// When it was published (epoch seconds), if since this server started.
    pub route_published_at: Option<f64>,
    /// Tasks not stopped, by last status.
    pub tasks: BTreeMap<&'static str, u64>,
    /// Each live proxy's served table version.
    pub proxies: BTreeMap<String, u64>,
    /// Open live-tail sessions.
    pub live_tail_sessions: usize,
}

/// The newest one-minute aggregate of a CloudWatch series.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestValue {
    pub metric: MetricId,
    /// The minute's start (epoch seconds).
    pub start: i64,
    pub aggregate: Aggregate,
}

impl Control {
    /// The newest one-minute aggregate of each CloudWatch series that received data in the `window` seconds before
    /// `now` (epoch seconds), the most recently active first, at most `max` of them.
    pub fn cloudwatch_latest(&self, now: i64, window: i64, max: usize) -> Result<Vec<LatestValue>, ControlError> {
        let mut recent: Vec<(MetricId, i64)> =
            self.metric_series(None, None)?.into_iter().filter(|(_, seen)| *seen >= now - window).collect();
        recent.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        recent.truncate(max);
        let start = (now - window).div_euclid(60) * 60;
        let mut out = Vec::with_capacity(recent.len());
        for (metric, _) in recent {
            if let Some((start, aggregate)) = self.metric_aggregates(&metric, 60, start, now + 60)?.pop() {
                out.push(LatestValue { metric, start, aggregate });
            }
        }
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(out)
    }

    /// The timings recorded so far.
    pub fn health(&self) -> &Health {
        &self.observed
    }

    /// Reads what the health snapshot needs (the store through a reader, the proxies' reports, the hub).
    pub fn health_snapshot(&self) -> Result<HealthSnapshot, ControlError> {
        let mut tasks = BTreeMap::new();
        for t in self.read(|tx| Ok(tx.tasks_not_stopped()?))? {
            *tasks.entry(t.last_status.as_str()).or_insert(0) += 1;
        }
        let published = self.observed.route_published_ms.load(Ordering::Relaxed);
        Ok(HealthSnapshot {
            route_version: self.routes.borrow().version,
            route_published_at: (published > 0).then(|| published as f64 / 1000.0),
            tasks,
            proxies: self.health.lock().unwrap_or_else(|e| e.into_inner()).served_versions(crate::now()),
            live_tail_sessions: self.live_tail.sessions(),
        })
    }
}
