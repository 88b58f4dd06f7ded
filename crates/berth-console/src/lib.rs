//! berth-console: the web console, served by `berth server` on its own TLS listener.
//!
//! It owns the console's pages (server-rendered HTML with a little script, every asset embedded in the binary),
//! sign-in with an access key, sessions (a signed, expiring, HttpOnly, SameSite cookie) and CSRF protection on
//! every change. Every page calls berth's public AWS API through `berth-client` as the signed-in identity, so
//! IAM decides what each user may see and do. It must never open the store or call the control plane, and never
//! fetch anything from outside the binary at run time.

#![forbid(unsafe_code)]

mod assets;
mod charts;
mod csrf;
mod error;
mod layout;
mod pages;
mod session;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use error::ConsoleError;
pub use state::AppState;

/// What the console needs from the server.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Where the console reaches berth's API (its endpoint, region and CA).
    pub api: berth_client::Settings,
    /// The console's own origin (`https://localhost:9445`): changes from any other origin are refused.
    pub origin: String,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
}

/// The console's routes (see docs/console.md).
pub fn router(state: AppState) -> axum::Router {
    pages::routes().with_state(state)
}

/// Serves the console over TLS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: ConsoleConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (listener, tls, config, shutdown);
    Ok(())
}
