//! The listener: accepts TCP (optionally TLS) connections, serves HTTP/1.1 and HTTP/2 on each, reads each
//! request body up to the configured limit and hands it to the same path as [`crate::handle_http`], whose body may be
//! an event stream written frame by frame (`stream.rs`).
//!
//! A body over the limit is answered with 413 in the request's protocol. Its bytes are read and discarded first
//! (up to [`DRAIN_MAX`] more, within [`DRAIN_TIMEOUT`]): a server that answers and closes while the client is
//! still sending makes the kernel reset the connection, and the client loses the answer; drained, the
//! connection stays usable for the next request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::stream::Body;
use crate::{ApiConfig, Backend};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to complete a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How many bytes past the limit are read and discarded so that a 413 reaches the client.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;
/// How long the discarding may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (up to a grace
/// period) and returns. With `tls` set, serves HTTPS (ALPN `h2` and `http/1.1` unless the config names its own).
pub async fn serve<B: Backend>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    backend: Arc<B>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = tls.map(|cfg| {
        let cfg = if cfg.alpn_protocols.is_empty() {
            let mut c = (*cfg).clone();
            c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(c)
        } else {
            cfg
        };
        tokio_rustls::TlsAcceptor::from(cfg)
    });
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = acceptor.is_some(), "api listening");
    }
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually transient (EMFILE, ECONNABORTED): back off instead of spinning.
                    tracing::warn!(error = %e, "api accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let backend = backend.clone();
        let config = config.clone();
        let stop = stop_rx.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => serve_connection(stream, peer, backend, config, stop).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(tls, peer, backend, config, stop).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "api TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "api TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(remaining = connections.len(), "api shutdown grace expired; closing connections");
        connections.abort_all();
    }
    Ok(())
}

async fn serve_connection<B, S>(
    io: S,
    peer: SocketAddr,
    backend: Arc<B>,
    config: Arc<ApiConfig>,
    mut stop: watch::Receiver<bool>,
) where
    B: Backend,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stop_body = stop.clone();
    let service = service_fn(move |req: http::Request<Incoming>| {
        let backend = backend.clone();
        let config = config.clone();
        let stop = stop_body.clone();
        async move { Ok::<_, Infallible>(handle_incoming(&*backend, &config, req, peer, stop).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "api connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown has been signalled (or the signal can no longer come).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn handle_incoming<B: Backend>(
    backend: &B,
    config: &ApiConfig,
    req: http::Request<Incoming>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let max = config.max_body_bytes as u64;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client waiting for `100 Continue` has not sent the body: refuse it before it does.
    let expects = parts.headers.contains_key(http::header::EXPECT);
    let body = match declared {
        Some(n) if n > max && (expects || n - max > DRAIN_MAX) => Err(ReadError::TooLarge { drained: false }),
        _ => read_body(body, max).await,
    };
    let body = match body {
        Ok(body) => body,
        Err(ReadError::TooLarge { drained }) => {
            let mut resp = crate::reject(&parts, &crate::too_large(config.max_body_bytes));
            if !drained {
                // The rest of the body is still coming: this connection cannot carry another request.
                resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp.map(Body::full);
        }
        Err(ReadError::Failed(e)) => {
            let error = berth_core::AwsError::new(
                berth_core::ErrorCode::Serialization,
                format!("The request body could not be read: {e}"),
            );
            return crate::reject(&parts, &error).map(Body::full);
        }
    };
    let req = http::Request::from_parts(parts, body);
    crate::respond(backend, config, req, peer.ip(), std::time::SystemTime::now(), Some(stop)).await
}

#[derive(Debug)]
enum ReadError {
    /// Over the limit; `drained` when the rest was read to its end.
    TooLarge {
        drained: bool,
    },
    Failed(hyper::Error),
}

/// Reads a body of at most `max` bytes. A longer one is read on and discarded to its end (at most
/// [`DRAIN_MAX`] bytes more, within [`DRAIN_TIMEOUT`]) and reported as too large.
async fn read_body<B>(mut body: B, max: u64) -> Result<Bytes, ReadError>
where
    B: hyper::body::Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ReadError::Failed)?.into_data() else { continue };
        total += data.len() as u64;
        if total > max {
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                let mut extra = total - max;
                while let Some(frame) = body.frame().await {
                    let Ok(data) = frame.map_err(|_| ())?.into_data() else { continue };
                    extra += data.len() as u64;
                    if extra > DRAIN_MAX {
                        return Err(());
                    }
                }
                Ok(())
            })
            .await;
            return Err(ReadError::TooLarge { drained: matches!(drained, Ok(Ok(()))) });
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        1 => chunks.pop().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    })
}
