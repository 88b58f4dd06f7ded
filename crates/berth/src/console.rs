//! The web console's listener: a certificate from berth's CA, and the console reaching the API like any client.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_certs::Ca;
use tokio::net::TcpListener;

use crate::config::Config;

/// The console's serving future, ready to spawn.
pub fn serve(
    listener: TcpListener,
    config: &Config,
    ca: &Ca,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = ()> + Send + 'static> {
    let listen = config.console.listen;
    let issued = ca
        .issue(
            &["localhost".to_string()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST), listen.ip()],
        )
        .context("issuing the console's certificate")?;
    let tls = berth_certs::single_cert_server_config(&issued.cert_pem, &issued.key_pem, &[b"http/1.1"])?;
    let console = berth_console::ConsoleConfig {
        api: berth_client::Settings {
            endpoint: config.api_url(),
            region: config.region.clone(),
            ca_pem: Some(ca.root_pem().as_bytes().to_vec()),
        },
        origin: config.console_url(),
        session_ttl: Duration::from_secs(config.console.session_ttl_secs.max(60)),
        https_port: config.proxy.https_listen.port(),
    };
    Ok(async move {
        if let Err(e) = berth_console::serve(listener, Arc::new(tls), console, stopped).await {
            tracing::error!(error = %e, "the console stopped");
        }
    })
}
