//! The route-table watch: long-polls the server for newer tables, applies them (health supervisor first,
//! then one atomic snapshot swap) and persists each one so a restarted proxy serves it while the server is
//! down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_routes::{ROUTES_PATH, RouteTable, TOKEN_HEADER, WATCH_TIMEOUT_SECS};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::Notify;

use crate::control::ControlClient;
use crate::health::Supervisor;
use crate::metrics::Metrics;
use crate::state::{Previous, SharedSnapshot, Snapshot};

/// Tables larger than this are refused (they carry certificates, so they are not tiny).
const TABLE_LIMIT: usize = 64 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Applies tables: converges health probers, then swaps the snapshot and wakes the reporter.
pub(crate) struct Applier {
    supervisor: Supervisor,
    snapshot: SharedSnapshot,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// The load balancers' own addresses each applied table asks to listen on.
    listen: Option<tokio::sync::watch::Sender<Vec<(std::net::SocketAddr, bool)>>>,
    /// The table the current snapshot was built from: the next one is compared against it, group by group.
    applied: Option<Arc<RouteTable>>,
}

impl Applier {
    pub fn new(snapshot: SharedSnapshot, changed: Arc<Notify>, metrics: Arc<Metrics>) -> Self {
        Applier {
            supervisor: Supervisor::new(changed.clone()),
            snapshot,
            changed,
            metrics,
            listen: None,
            applied: None,
        }
    }

    /// Publishes each applied table's own load balancer addresses to `listen`.
    pub fn with_listen(mut self, listen: tokio::sync::watch::Sender<Vec<(std::net::SocketAddr, bool)>>) -> Self {
        self.listen = Some(listen);
        self
    }

    pub fn version(&self) -> u64 {
        self.snapshot.load().version
    }

    /// Applies `table`: only the target groups that differ from the last applied table are re-synced (the
    /// others' targets keep their runtimes untouched), and only what changed is compiled again.
    pub fn apply(&mut self, table: Arc<RouteTable>) {
        let started = Instant::now();
        let changed_groups = self.supervisor.sync(&table);
        let current = self.snapshot.load();
        let previous =
            self.applied.as_deref().map(|t| Previous { table: t, snapshot: &current, changed_groups: &changed_groups });
        let snapshot = Arc::new(Snapshot::build_from(&table, &self.supervisor, &self.metrics, previous));
        drop(current);
        if let Some(listen) = &self.listen {
            listen.send_if_modified(|l| {
                let changed = *l != snapshot.listen;
                if changed {
                    l.clone_from(&snapshot.listen);
                }
                changed
            });
        }
        self.snapshot.store(snapshot);
        self.changed.notify_one();
        tracing::info!(
            version = table.version,
            hosts = table.hosts.len(),
            rules = table.rules.len(),
            changed_groups = changed_groups.len(),
            apply_us = started.elapsed().as_micros() as u64,
            "serving route table"
        );
        self.applied = Some(table);
    }
}

/// The last table a proxy served, if its state file holds a readable one.
pub(crate) fn load_state(path: &Path) -> Option<RouteTable> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the proxy state file");
            return None;
        }
    };
    match serde_json::from_slice(&data) {
        Ok(table) => Some(table),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable proxy state file");
            None
        }
    }
}

/// Writes `table` to `path` through a temporary file and a rename (mode 0600: it holds private keys).
pub(crate) fn save_state(path: &Path, table: &RouteTable) -> std::io::Result<()> {
    use std::io::Write;
    let data = serde_json::to_vec(table).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(&data)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("server answered {0}")]
    Status(StatusCode),
    #[error("invalid route table: {0}")]
    Body(String),
}

pub(crate) struct Watcher {
    pub base: String,
    pub token: HeaderValue,
    pub proxy_id: String,
    pub state_file: PathBuf,
    pub client: ControlClient,
    pub applier: Applier,
}

impl Watcher {
    async fn poll(&self, after: u64) -> Result<Option<RouteTable>, WatchError> {
        let uri = format!(
            "{}{ROUTES_PATH}?after={after}&proxy={}",
            self.base,
            berth_core::percent::encode(self.proxy_id.as_bytes(), false)
        );
        let request = http::Request::get(uri)
            .header(TOKEN_HEADER, self.token.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| WatchError::Request(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| WatchError::Request(e.to_string()))?;
            match response.status() {
                StatusCode::NO_CONTENT => Ok(None),
                StatusCode::OK => {
                    let body = Limited::new(response.into_body(), TABLE_LIMIT)
                        .collect()
                        .await
                        .map_err(|e| WatchError::Body(e.to_string()))?
                        .to_bytes();
                    serde_json::from_slice(&body).map(Some).map_err(|e| WatchError::Body(e.to_string()))
                }
                status => Err(WatchError::Status(status)),
            }
        };
        tokio::time::timeout(Duration::from_secs(WATCH_TIMEOUT_SECS + 10), exchange)
            .await
            .map_err(|_| WatchError::Timeout)?
    }

    /// Watches forever (the caller drops it at shutdown).
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        loop {
            let after = self.applier.version();
            let started = Instant::now();
            let mut newer = false;
            match self.poll(after).await {
                Ok(Some(table)) if table.version > after => {
                    newer = true;
                    let table = Arc::new(table);
                    self.applier.apply(Arc::clone(&table));
                    let path = self.state_file.clone();
                    let saved = tokio::task::spawn_blocking(move || save_state(&path, &table)).await;
                    if let Ok(Err(e)) | Err(e) = saved.map_err(std::io::Error::other) {
                        tracing::warn!(path = %self.state_file.display(), error = %e, "cannot save the route table");
                    }
                }
                Ok(Some(table)) => {
                    tracing::warn!(version = table.version, serving = after, "server sent an older route table");
                    tokio::time::sleep(BACKOFF_MAX).await;
                }
                Ok(None) => {}
                Err(e) => {
                    if failing {
                        tracing::debug!(error = %e, "route watch still failing");
                    } else {
                        tracing::warn!(error = %e, serving = after, "route watch failed; serving the last table");
                        failing = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
            if failing {
                tracing::info!("route watch reconnected");
                failing = false;
            }
            backoff = BACKOFF_MIN;
            // A server that answers at once with nothing new must not make us spin; a newer table is followed at
            // once (the next poll waits for the one after it), so tables published in quick succession are not
            // held back.
            if !newer && started.elapsed() < BACKOFF_MIN {
                tokio::time::sleep(BACKOFF_MIN).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding_table() {
        let cases =
            [("proxy-1", "proxy-1"), ("a b", "a%20b"), ("host:9/x?y&z=1", "host%3A9%2Fx%3Fy%26z%3D1"), ("é", "%C3%A9")];
        for (input, want) in cases {
            assert_eq!(berth_core::percent::encode(input.as_bytes(), false), want);
        }
    }

    #[test]
    fn state_file_round_trips() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("berth-proxy-state-{}-{nanos}", std::process::id()));
        let path = dir.join("sub").join("routes.json");
        assert_eq!(load_state(&path), None);
        let table = RouteTable { version: 42, ..RouteTable::default() };
        save_state(&path, &table).expect("save");
        assert_eq!(load_state(&path), Some(table));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "{not json").expect("write");
        assert_eq!(load_state(&path), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
