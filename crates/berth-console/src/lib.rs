//! berth-console: the web console, served by `berth server` on its own TLS listener.
//!
//! It owns the console's pages (server-rendered HTML with a little script, every asset embedded in the binary),
//! sign-in with an access key, sessions (a signed, expiring, HttpOnly, SameSite cookie) and CSRF protection on
//! every change. Every page calls berth's public AWS API through `berth-client` as the signed-in identity, so
//! IAM decides what each user may see and do. It must never open the store or call the control plane, and never
//! fetch anything from outside the binary at run time.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

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
    /// The load balancer's HTTPS port: service links carry it when it is not 443 (see
    /// [`AppState::endpoint_url`]).
    pub https_port: u16,
}

/// The console's routes (see docs/console.md), with CSRF protection on every change and the security headers
/// on every answer.
pub fn router(state: AppState) -> axum::Router {
    pages::routes()
        .route("/assets/{file}", axum::routing::get(assets::serve))
        .route("/favicon.ico", axum::routing::get(assets::favicon))
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// CSP without inline script, no framing, no referrer to other origins, no MIME sniffing; pages are not cached.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use http::header::{self, HeaderValue};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// How long a client may take to complete a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the console over TLS on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to a grace period) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: ConsoleConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(config).map_err(std::io::Error::other)?;
    let app = router(state);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "console listening");
    }
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "console accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, peer, app, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "console TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "console TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        connections.abort_all();
    }
    Ok(())
}

async fn serve_connection<S>(
    io: S,
    peer: std::net::SocketAddr,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower_service::Service;
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        async move { app.call(req.map(axum::body::Body::new)).await }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "console connection ended with an error");
            }
        }
        () = async { while !*stop.borrow_and_update() { if stop.changed().await.is_err() { return; } } } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
