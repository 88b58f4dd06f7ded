//! `berth proxy`: the data plane process.
//!
//! It shares its listening ports with a predecessor or successor (`SO_REUSEPORT`), so `berth up` replaces a
//! running proxy without refusing a connection: the new process loads the saved table, health-checks its
//! targets, binds, writes its ready file ([`READY_ENV`]); then the old one gets SIGTERM, stops accepting
//! (serving what the kernel had queued for it) and drains its open connections.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_proxy::{Proxy, ProxyConfig};

use crate::config::Config;
use crate::files;

/// The file a proxy creates once it accepts connections (set by `berth up` when it replaces a proxy).
pub const READY_ENV: &str = "BERTH_PROXY_READY_FILE";

/// Linux's `tcp_migrate_req`: when a listener of a `SO_REUSEPORT` group closes, connections still in its
/// queue move to another listener of the group instead of being reset.
const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

pub async fn run(config: Config) -> Result<()> {
    files::ensure_data_dir(&config)?;
    files::write_pid(&config, "proxy")?;
    let token = files::ensure_token(&config)?;
    let mut pc = ProxyConfig::new(config.server_url(), token, config.path(files::PROXY_STATE));
    pc.https_listen = config.proxy.https_listen;
    pc.http_listen = config.proxy.http_listen;
    pc.request_timeout = Duration::from_secs(config.proxy.request_timeout_secs);
    pc.idle_timeout = Duration::from_secs(config.proxy.idle_timeout_secs);
    pc.proxy_id = format!("proxy-{}", std::process::id());
    pc.metrics_listen = config.proxy.metrics_listen;
    enable_request_migration();
    tracing::info!(https = %pc.https_listen, http = %pc.http_listen, server = %pc.server_url, "berth proxy starting");
    let proxy = Proxy::start(pc).await.context("proxy failed")?;
    if let Some(path) = std::env::var_os(READY_ENV) {
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("writing the ready file {}", std::path::Path::new(&path).display()))?;
    }
    crate::shutdown_signal().await;
    tracing::info!("proxy stopping: no new connections, draining open ones");
    proxy.stop().await;
    Ok(())
}

/// Turns on `tcp_migrate_req` when it is off and writable (best effort: without it, a connection that
/// arrives in the microseconds between the old proxy's last accept and its close may be reset).
fn enable_request_migration() {
    match std::fs::read_to_string(MIGRATE_REQ) {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => match std::fs::write(MIGRATE_REQ, "1") {
            Ok(()) => tracing::info!("enabled net.ipv4.tcp_migrate_req for hand-overs between proxies"),
            Err(e) => tracing::debug!(error = %e, "cannot enable net.ipv4.tcp_migrate_req"),
        },
        Err(e) => tracing::debug!(error = %e, "net.ipv4.tcp_migrate_req is not available"),
    }
}
