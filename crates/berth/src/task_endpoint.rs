//! The endpoint tasks reach berth on: the ECS-style credentials endpoint (`GET /v2/credentials/<id>` with the
//! task's `Authorization` token, answered by `Control::task_credentials`) and the plain-HTTP API listener for
//! tasks, both on a link-local address (169.254.170.2 by default, the ECS agent's) that berth adds to the host's
//! loopback interface. A container reaches it through its bridge gateway; botocore accepts plain HTTP for
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` on exactly that address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use berth_control::Control;
use berth_control::task_role::{CREDENTIALS_PATH, TaskCredentialsError};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

/// Makes sure `address` is one of the host's addresses (adding it to `lo` as a /32 when missing) and binds it.
pub async fn bind(address: Ipv4Addr, port: u16) -> Result<TcpListener> {
    let addr = SocketAddr::new(IpAddr::V4(address), port);
    if let Ok(l) = TcpListener::bind(addr).await {
        return Ok(l);
    }
    let out = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{address}/32"), "dev", "lo"])
        .output()
        .context("running `ip addr add` (iproute2)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "File exists": another berth on this host added it first.
    if !out.status.success() && !stderr.contains("File exists") {
        bail!("cannot add {address}/32 to lo: {}", stderr.trim());
    }
    TcpListener::bind(addr).await.with_context(|| format!("binding the task endpoint on {addr}"))
}

pub async fn serve_credentials(
    listener: TcpListener,
    control: Arc<Control>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    crate::http1::serve(listener, "credentials endpoint", shutdown, move |req| {
        let control = Arc::clone(&control);
        async move { handle(&req, &control) }
    })
    .await
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "code": code, "message": message }).to_string().into_bytes())
}

fn handle(req: &http::Request<Incoming>, control: &Control) -> Response<Full<Bytes>> {
    let Some(id) = req.uri().path().strip_prefix(CREDENTIALS_PATH).filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return error(StatusCode::NOT_FOUND, "NotFound", "not found");
    };
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "use GET");
    }
    let token = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match control.task_credentials(id, token) {
        Ok(creds) => match serde_json::to_vec(&creds) {
            Ok(body) => json(StatusCode::OK, body),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &e.to_string()),
        },
        Err(e @ TaskCredentialsError::NotFound) => error(StatusCode::NOT_FOUND, "NotFound", &e.to_string()),
        Err(e @ TaskCredentialsError::Unauthorized) => error(StatusCode::UNAUTHORIZED, "Unauthorized", &e.to_string()),
        Err(TaskCredentialsError::Denied(m)) => error(StatusCode::FORBIDDEN, "AccessDenied", &m),
        Err(TaskCredentialsError::Internal(m)) => {
            tracing::warn!(error = %m, "task credentials failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "internal error")
        }
    }
}
