//! The proxy's side of the internal API: the HTTP client for the route watch and the reporter that tells
//! the server what it serves and how its targets are.

use std::sync::Arc;
use std::time::Duration;

use berth_routes::{ProxyReport, REPORT_PATH, TOKEN_HEADER, TargetReport};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use crate::metrics::{Metrics, Reported};
use crate::state::{SharedSnapshot, Snapshot};
use crate::target::Reason;

pub(crate) type ControlClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn control_client() -> ControlClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

/// What this proxy serves now and how each of its targets is.
pub(crate) fn build_report(proxy_id: &str, snapshot: &Snapshot) -> ProxyReport {
    let targets = snapshot
        .targets
        .iter()
        .map(|t| {
            let status = t.status();
            TargetReport {
                target_group: t.key.group.clone(),
                target: t.key.target.clone(),
                health: status.health,
                reason: status.reason.map(|r| Reason::code(r).to_owned()),
                in_flight: t.in_flight(),
            }
        })
        .collect();
    ProxyReport { proxy_id: proxy_id.to_owned(), version: snapshot.version, targets, metrics: None }
}

const REPORT_EVERY: Duration = Duration::from_secs(1);
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Reporter {
    pub base: String,
    pub token: HeaderValue,
    pub proxy_id: String,
    pub client: ControlClient,
    pub snapshot: SharedSnapshot,
    pub changed: Arc<Notify>,
    /// Whose counts the reports carry as deltas (`None`: reports carry none).
    pub metrics: Option<Arc<Metrics>>,
}

impl Reporter {
    async fn send(&self, report: &ProxyReport) -> Result<(), String> {
        let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
        let request = http::Request::post(format!("{}{REPORT_PATH}", self.base))
            .header(TOKEN_HEADER, self.token.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(REPORT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("server answered {s}")),
        }
    }

    /// Reports when woken (a health change, a new table) and every second otherwise; forever.
    pub async fn run(self) {
        let mut failing = false;
        // The totals the last delivered report carried: a report that fails is counted again in the next one.
        let mut reported = Reported::default();
        loop {
            let snapshot = self.snapshot.load();
            let mut report = build_report(&self.proxy_id, &snapshot);
            let mut next = None;
            if let Some(metrics) = &self.metrics {
                let (delta, totals) = metrics.delta(&snapshot, &reported, std::time::SystemTime::now());
                report.metrics = Some(delta);
                next = Some(totals);
            }
            drop(snapshot);
            let sent = self.send(&report).await;
            if let (Ok(()), Some(totals)) = (&sent, next) {
                reported = totals;
            }
            match sent {
                Ok(()) if failing => {
                    tracing::info!("proxy reports delivered again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if failing => tracing::debug!(error = %e, "proxy report still failing"),
                Err(e) => {
                    tracing::warn!(error = %e, "proxy report failed; retrying every second");
                    failing = true;
                }
            }
            tokio::select! {
                () = self.changed.notified() => {}
                () = tokio::time::sleep(REPORT_EVERY) => {}
            }
        }
    }
}
