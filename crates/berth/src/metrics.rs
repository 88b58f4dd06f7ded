//! The server's Prometheus endpoint: `GET /metrics` (text exposition 0.0.4) on `metrics.listen`, plain HTTP and
//! unauthenticated like every Prometheus target, on loopback unless configured otherwise
//! (docs/observability.md). It shows the API's requests and latency by operation and status (counted here, through
//! berth-api's `Backend::observe`), the control plane's own health (`berth_control::observe`) and the build.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_control::Control;
use berth_telemetry::prometheus::{self, Exposition, Histogram};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;

/// The API's counters, by (operation, HTTP status).
#[derive(Debug, Default)]
pub struct ServerMetrics {
    api: Mutex<HashMap<(String, u16), Arc<ApiSeries>>>,
}

#[derive(Debug, Default)]
struct ApiSeries {
    requests: AtomicU64,
    latency: Histogram,
}

impl ServerMetrics {
    /// Counts one answered API request.
    pub fn observe_api(&self, operation: &str, status: u16, latency: Duration) {
        let series = {
            let mut api = self.api.lock().unwrap_or_else(PoisonError::into_inner);
            match api.get(&(operation.to_string(), status)) {
                Some(s) => Arc::clone(s),
                None => Arc::clone(api.entry((operation.to_string(), status)).or_default()),
            }
        };
        series.requests.fetch_add(1, Ordering::Relaxed);
        series.latency.observe(latency);
    }

    /// The whole exposition: the API's series, then the control plane's health.
    pub fn render(&self, control: &Control) -> String {
        let mut e = Exposition::new();
        e.family("berth_build_info", "gauge", "The berth build serving (always 1).");
        e.sample("berth_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

        let mut api: Vec<((String, u16), Arc<ApiSeries>)> = self
            .api
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        api.sort_by(|a, b| a.0.cmp(&b.0));
        e.family("berth_api_requests_total", "counter", "AWS API requests answered, by operation and HTTP status.");
        for ((op, status), s) in &api {
            let status = status.to_string();
            e.sample(
                "berth_api_requests_total",
                &[("operation", op), ("status", &status)],
                s.requests.load(Ordering::Relaxed),
            );
        }
        let name = "berth_api_request_duration_seconds";
        e.family(name, "histogram", "Time from a request's body read to its response head, by operation and status.");
        for ((op, status), s) in &api {
            let status = status.to_string();
            e.histogram(name, &[("operation", op), ("status", &status)], &s.latency);
        }

        let h = control.health();
        let timings: [(&str, &str, &Histogram); 5] = [
            ("berth_reconcile_pass_duration_seconds", "One reconciler pass, start to end.", &h.reconcile_pass),
            (
                "berth_route_table_build_duration_seconds",
                "Building the route table from the store (and publishing it when the routes changed).",
                &h.route_build,
            ),
            ("berth_store_writer_wait_seconds", "Waiting for the store's one writer.", &h.store_wait),
            ("berth_store_transaction_duration_seconds", "One write transaction on the store's writer.", &h.store_tx),
            (
                "berth_log_shipping_lag_seconds",
                "From a container's output line to its commit into its log stream (oldest line of each batch).",
                &h.shipping_lag,
            ),
        ];
        for (name, help, hist) in timings {
            e.family(name, "histogram", help);
            e.histogram(name, &[], hist);
        }

        match control.health_snapshot() {
            Ok(s) => {
                e.family("berth_route_table_version", "gauge", "The route table version the server publishes.");
                e.sample("berth_route_table_version", &[], s.route_version);
                e.family(
                    "berth_route_table_published_timestamp_seconds",
                    "gauge",
                    "When the published route table was built (epoch seconds; absent before the first since start).",
                );
                if let Some(at) = s.route_published_at {
                    e.sample_f64("berth_route_table_published_timestamp_seconds", &[], at);
                }
                e.family("berth_tasks", "gauge", "Tasks not stopped, by last status.");
                for (status, n) in &s.tasks {
                    e.sample("berth_tasks", &[("status", status)], n);
                }
                e.family(
                    "berth_proxy_served_route_table_version",
                    "gauge",
                    "The route table version each live proxy serves.",
                );
                for (proxy, v) in &s.proxies {
                    e.sample("berth_proxy_served_route_table_version", &[("proxy", proxy)], v);
                }
                e.family("berth_live_tail_sessions", "gauge", "Open CloudWatch Logs live-tail sessions.");
                e.sample("berth_live_tail_sessions", &[], s.live_tail_sessions);
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot read the control plane's health"),
        }
        cloudwatch(&mut e, control);
        e.finish()
    }
}

/// How far back a CloudWatch series must have received data to be exported, and how many are.
const CLOUDWATCH_WINDOW_SECS: i64 = 300;
const CLOUDWATCH_MAX_SERIES: usize = 2000;

/// The newest one-minute aggregate of each recently active CloudWatch series, as four gauges labelled with the
/// series' namespace, name, unit and dimensions (`dim_<Name>`, invalid label characters as `_`).
fn cloudwatch(e: &mut Exposition, control: &Control) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let latest = match control.cloudwatch_latest(now, CLOUDWATCH_WINDOW_SECS, CLOUDWATCH_MAX_SERIES) {
        Ok(l) => l,
        Err(err) => {
            tracing::warn!(error = %err, "metrics: cannot read CloudWatch's series");
            return;
        }
    };
    let labelled: Vec<(Vec<(String, String)>, &berth_telemetry::Aggregate)> = latest
        .iter()
        .map(|v| {
            let mut labels = vec![
                ("namespace".to_string(), v.metric.namespace.clone()),
                ("metric_name".to_string(), v.metric.name.clone()),
                ("unit".to_string(), v.metric.unit.as_str().to_string()),
            ];
            labels
                .extend(v.metric.dimensions.iter().map(|d| (format!("dim_{}", label_name(&d.name)), d.value.clone())));
            (labels, &v.aggregate)
        })
        .collect();
    type Stat = fn(&berth_telemetry::Aggregate) -> f64;
    let stats: [(&str, &str, Stat); 4] = [
        (
            "berth_cloudwatch_sample_count",
            "SampleCount of the series' newest minute (CloudWatch data berth stores).",
            |a| a.sample_count,
        ),
        ("berth_cloudwatch_sum", "Sum of the series' newest minute.", |a| a.sum),
        ("berth_cloudwatch_minimum", "Minimum of the series' newest minute.", |a| a.min),
        ("berth_cloudwatch_maximum", "Maximum of the series' newest minute.", |a| a.max),
    ];
    for (name, help, stat) in stats {
        e.family(name, "gauge", help);
        for (labels, agg) in &labelled {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            e.sample_f64(name, &labels, stat(agg));
        }
    }
}

/// A Prometheus label name from a CloudWatch dimension name.
fn label_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    control: Arc<Control>,
    metrics: Arc<ServerMetrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening (GET /metrics)");
    }
    crate::http1::serve(listener, "metrics", shutdown, move |req| {
        let control = Arc::clone(&control);
        let metrics = Arc::clone(&metrics);
        async move {
            if req.method() != Method::GET || req.uri().path() != "/metrics" {
                let mut r = Response::new(Full::new(Bytes::from_static(b"not found: GET /metrics\n")));
                *r.status_mut() = StatusCode::NOT_FOUND;
                return r;
            }
            // The health snapshot reads the store: off the async workers.
            let body = tokio::task::spawn_blocking(move || metrics.render(&control)).await.unwrap_or_default();
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(prometheus::CONTENT_TYPE));
            r
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_series_count_by_operation_and_status() {
        let m = ServerMetrics::default();
        m.observe_api("ListClusters", 200, Duration::from_millis(3));
        m.observe_api("ListClusters", 200, Duration::from_millis(30));
        m.observe_api("ListClusters", 400, Duration::from_millis(1));
        let api = m.api.lock().expect("lock");
        let ok = &api[&("ListClusters".to_string(), 200)];
        assert_eq!((ok.requests.load(Ordering::Relaxed), ok.latency.count()), (2, 2));
        assert_eq!(api[&("ListClusters".to_string(), 400)].requests.load(Ordering::Relaxed), 1);
    }
}
