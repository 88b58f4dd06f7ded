//! `berth proxy`: the data plane process.

use std::time::Duration;

use anyhow::{Context, Result};
use berth_proxy::ProxyConfig;

use crate::config::Config;
use crate::files;

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
    tracing::info!(https = %pc.https_listen, http = %pc.http_listen, server = %pc.server_url, "berth proxy starting");
    berth_proxy::run(pc, crate::shutdown_signal()).await.context("proxy failed")
}
