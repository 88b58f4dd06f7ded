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
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Any other path: the console's own 404 page.
async fn not_found(uri: http::Uri) -> ConsoleError {
    ConsoleError::NotFound(format!("the console has no page at {}; the services list is at /", uri.path()))
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
/// How often expired sessions are dropped (besides at each sign-in and lookup).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
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
    let app = router(state.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "console listening");
    }
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            _ = sweep.tick() => {
                let dropped = state.inner.sessions.sweep();
                if dropped > 0 {
                    tracing::debug!(dropped, "console sessions expired");
                }
                continue;
            }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use berth_client::Credentials;
    use http::{Request, StatusCode, header};
    use tower_service::Service;

    use super::*;

    const ORIGIN: &str = "https://localhost:9445";

    fn state() -> AppState {
        AppState::new(ConsoleConfig {
            // Nothing listens there: no test here reaches the API.
            api: berth_client::Settings {
                endpoint: "http://127.0.0.1:9".into(),
                region: "us-east-1".into(),
                ca_pem: None,
            },
            origin: ORIGIN.into(),
            session_ttl: Duration::from_secs(600),
            https_port: 443,
        })
        .unwrap()
    }

    /// A signed-in session: its cookie header value and CSRF token.
    fn sign_in(state: &AppState) -> (String, String) {
        let creds = Credentials { access_key_id: "AKIA".into(), secret_access_key: "s".into(), session_token: None };
        let id = state.inner.sessions.create(creds, "arn:aws:iam::1:root".into(), "1".into()).unwrap();
        let csrf = state.inner.sessions.get(&id).unwrap().csrf;
        (format!("{}={}", session::COOKIE, state.inner.key.sign(&id)), csrf)
    }

    async fn send(state: &AppState, req: Request<Body>) -> http::Response<axum::body::Body> {
        let mut app = router(state.clone());
        app.call(req).await.unwrap()
    }

    fn post(path: &str, cookie: &str, body: String, headers: &[(&str, &str)]) -> Request<Body> {
        let mut b = Request::post(path)
            .header(header::HOST, "localhost:9445")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn every_answer_carries_the_security_headers() {
        let s = state();
        let res = send(&s, Request::get("/signin").body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert!(h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'self'"));
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        let res = send(&s, Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::X_FRAME_OPTIONS], "DENY");
    }

    #[tokio::test]
    async fn pages_need_a_validly_signed_live_session() {
        let s = state();
        let (cookie, _) = sign_in(&s);
        let forged = format!("{}=abc.{}", session::COOKIE, "0".repeat(64));
        for (what, cookie) in [("no cookie", ""), ("forged", forged.as_str())] {
            let req = Request::get("/create").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
            let res = send(&s, req).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}");
            assert_eq!(res.headers()[header::LOCATION], "/signin", "{what}");
        }
        // Signed, live: the sign-in page sends the user on to the list.
        let req = Request::get("/signin").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
        assert_eq!(send(&s, req).await.headers()[header::LOCATION], "/");
    }

    #[tokio::test]
    async fn changes_without_token_or_from_another_origin_are_refused() {
        let s = state();
        let (cookie, csrf) = sign_in(&s);
        let good = format!("csrf={csrf}");
        type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            ("no token", String::new(), vec![("origin", ORIGIN)]),
            ("wrong token", format!("csrf={}", "f".repeat(64)), vec![("origin", ORIGIN)]),
            ("foreign origin", good.clone(), vec![("origin", "https://evil.example")]),
            ("cross-site", good.clone(), vec![("sec-fetch-site", "cross-site")]),
            ("null origin", good.clone(), vec![("origin", "null")]),
        ];
        for (what, body, headers) in cases {
            let res = send(&s, post("/signout", &cookie, body, &headers)).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
            assert!(res.headers().get(header::SET_COOKIE).is_none(), "{what}: nothing changed");
        }
        assert_eq!(s.inner.sessions.len(), 1, "still signed in after every refused sign-out");
        // The console's own form: signed out, cookie cleared, session gone.
        let res =
            send(&s, post("/signout", &cookie, good, &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")])).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(res.headers()[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
        assert!(s.inner.sessions.is_empty());
    }

    #[tokio::test]
    async fn sign_in_form_from_another_origin_is_refused() {
        let s = state();
        let req =
            post("/signin", "", "access_key_id=a&secret_access_key=b".into(), &[("origin", "https://evil.example")]);
        assert_eq!(send(&s, req).await.status(), StatusCode::FORBIDDEN);
        let req = post("/signin", "", "access_key_id=&secret_access_key=".into(), &[("origin", ORIGIN)]);
        assert_eq!(send(&s, req).await.status(), StatusCode::BAD_REQUEST, "empty fields: the form again");
    }
}
