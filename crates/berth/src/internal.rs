//! The internal API proxies follow: a long-poll watch of route tables and health reports back.
//! Plain HTTP/1.1 on loopback (or a private network), guarded by the data directory's token.

use std::sync::Arc;
use std::time::Duration;

use berth_control::Control;
use berth_routes::{ProxyReport, REPORT_PATH, ROUTES_PATH, TOKEN_HEADER, WATCH_TIMEOUT_SECS};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;

const MAX_REPORT_BYTES: usize = 4 * 1024 * 1024;

pub async fn serve(
    listener: TcpListener,
    control: Arc<Control>,
    token: String,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let token = Arc::new(token);
    crate::http1::serve(listener, "internal API", shutdown, move |req| {
        let control = Arc::clone(&control);
        let token = Arc::clone(&token);
        async move { handle(req, &control, &token).await }
    })
    .await
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(req: http::Request<Incoming>, control: &Control, token: &str) -> Response<Full<Bytes>> {
    let authorized = req
        .headers()
        .get(TOKEN_HEADER)
        .is_some_and(|v| berth_core::ids::constant_time_eq(v.as_bytes(), token.as_bytes()));
    if !authorized {
        return reply(StatusCode::UNAUTHORIZED, "missing or wrong internal token\n");
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, ROUTES_PATH) => {
            let after = query_param(req.uri().query(), "after").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            watch(control, after).await
        }
        (&Method::POST, REPORT_PATH) => {
            let body = match Limited::new(req.into_body(), MAX_REPORT_BYTES).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "report too large\n"),
            };
            match serde_json::from_slice::<ProxyReport>(&body) {
                Ok(report) => {
                    control.report(report);
                    reply(StatusCode::NO_CONTENT, Bytes::new())
                }
                Err(e) => reply(StatusCode::BAD_REQUEST, format!("invalid report: {e}\n")),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Answers with the current table as soon as its version differs from `after`, or 204 after the timeout.
/// A proxy ahead of the server (a server restored from an older store) gets the server's table at once.
async fn watch(control: &Control, after: u64) -> Response<Full<Bytes>> {
    let mut rx = control.subscribe_routes();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(WATCH_TIMEOUT_SECS);
    loop {
        let table = rx.borrow_and_update().clone();
        if table.version != after {
            return match serde_json::to_vec(&*table) {
                Ok(json) => {
                    let mut r = reply(StatusCode::OK, json);
                    r.headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                    r
                }
                Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            };
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return reply(StatusCode::NO_CONTENT, Bytes::new()),
        }
    }
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_finds_a_parameter() {
        assert_eq!(query_param(Some("after=7&proxy=p1"), "after"), Some("7"));
        assert_eq!(query_param(Some("proxy=p1"), "after"), None);
        assert_eq!(query_param(None, "after"), None);
    }
}
