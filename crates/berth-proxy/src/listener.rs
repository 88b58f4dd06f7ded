//! The listeners: HTTPS (TLS with SNI and ALPN, HTTP/1.1 and HTTP/2) forwarding to targets, and HTTP
//! redirecting to HTTPS. Each connection has a header-read timeout and an idle timeout, and drains on
//! shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::fast::{self, Outcome, Rewind};
use crate::forward::{ConnInfo, Forwarder, ProxyBody, TlsInfo, cipher_name, fixed, protocol_name};
use crate::metrics::{ConnCounters, ConnMeter, Metered};
use crate::route::{redirect_location, request_host};

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub idle: Duration,
    pub header_read: Duration,
    /// How long open connections may finish their requests after shutdown begins.
    pub drain: Duration,
}

/// Whether a connection moved bytes lately, how many of its requests are still open, and whether an HTTP/1
/// request head is arriving. The I/O path only sets flags (no clock reads); the idle and header-read watchers
/// look at them on a coarse tick, so their timeouts fire within one tick (at most a second) after the limit.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Set on every read or write and when a request ends; cleared by the idle watcher.
    touched: AtomicBool,
    active: AtomicUsize,
    /// Bytes arrived while no request was open, and no request head has completed since.
    head_pending: AtomicBool,
    /// How many request heads have completed.
    heads: AtomicU64,
    /// The proxy is shutting down: HTTP/1 responses carry `Connection: close`.
    draining: AtomicBool,
}

/// The watchers' tick for a limit: a quarter of it, between 1 ms and 1 s.
fn tick(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(1), Duration::from_secs(1))
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity::default())
    }

    fn touch(&self) {
        self.touched.store(true, Ordering::Relaxed);
    }

    /// Bytes arrived: with no request open, they start a new request head.
    fn received(&self) {
        self.touched.store(true, Ordering::Relaxed);
        if self.active.load(Ordering::Relaxed) == 0 {
            self.head_pending.store(true, Ordering::Relaxed);
        }
    }

    /// The proxy is shutting down: HTTP/1 responses say `Connection: close`.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// A request head is complete and its request starts.
    pub fn begin(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.head_pending.store(false, Ordering::Relaxed);
        self.heads.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }

    /// Resolves once the same request head has been arriving for longer than `limit` (a slow client). An
    /// idle keep-alive connection that receives nothing is left to the idle timeout.
    async fn head_overdue(&self, limit: Duration) {
        let tick = tick(limit);
        let mut waited = Duration::ZERO;
        let mut heads = self.heads.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(tick).await;
            let now_heads = self.heads.load(Ordering::Relaxed);
            if self.head_pending.load(Ordering::Relaxed) && now_heads == heads {
                waited += tick;
                if waited >= limit {
                    return;
                }
            } else {
                waited = Duration::ZERO;
                heads = now_heads;
            }
        }
    }

    /// Resolves once the connection has had no open request and moved no byte for `idle`.
    async fn idle_for(&self, idle: Duration) {
        let tick = tick(idle);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(tick).await;
            if self.touched.swap(false, Ordering::Relaxed) || self.active.load(Ordering::Relaxed) > 0 {
                quiet = Duration::ZERO;
            } else {
                quiet += tick;
                if quiet >= idle {
                    return;
                }
            }
        }
    }
}

/// One open request on a connection (until its response body is done).
#[derive(Debug)]
pub(crate) struct ActiveRequest(Arc<Activity>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An I/O stream that records activity on every byte read or written.
struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.received();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn connection_builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own HTTP/1 header timer also runs while a keep-alive connection waits for its next request,
    // so it is set to the idle timeout; the header-read timeout proper is `Activity::head_overdue`.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.idle.max(limits.header_read));
    builder.http2().timer(TokioTimer::new());
    builder
}

async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender means the proxy is gone: shut down too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves one connection until it ends, idles out or shutdown drains it; a connection whose request head
/// is overdue (`head_timeout`, HTTP/1 only: HTTP/2 sends frames between requests) is closed at once.
async fn serve_connection<T, F, Fut>(
    io: T,
    activity: Arc<Activity>,
    limits: Limits,
    head_timeout: Option<Duration>,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>, ActiveRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let builder = connection_builder(limits);
    let service_activity = activity.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let active = service_activity.begin();
        let handler = handler.clone();
        let activity = service_activity.clone();
        let h1 = req.version() < http::Version::HTTP_2;
        async move {
            let mut response = handler(req, active).await;
            // While draining, an HTTP/1 client is told to open its next request elsewhere (the new proxy);
            // a 101 keeps its own `Connection: upgrade`.
            if h1 && activity.draining.load(Ordering::Relaxed) && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let io = IdleIo { inner: io, activity: activity.clone() };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = activity.idle_for(limits.idle) => {}
        () = shutdown_requested(&mut shutdown) => draining = true,
        () = async {
            match head_timeout {
                Some(limit) => activity.head_overdue(limit).await,
                None => std::future::pending().await,
            }
        } => {
            tracing::debug!("closing a connection whose request head is overdue");
            return;
        }
    }
    if draining && head_timeout.is_some() {
        // HTTP/1 has no way to close an idle keep-alive connection without racing a request the client may
        // be sending on it. So the next response says `Connection: close` (hyper closes after it), and only
        // a connection that stays quiet for a while (no client is about to use it) is closed by us.
        activity.draining.store(true, Ordering::Relaxed);
        let deadline = tokio::time::sleep(limits.drain);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error while draining");
                }
                return;
            }
            () = activity.idle_for(DRAIN_QUIET.min(limits.idle)) => {}
            () = deadline => {}
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(limits.drain, conn).await;
}

/// Serves an HTTP/1.1 connection on the fast path (`fast.rs`) with the same idle, header-read and draining
/// rules as [`serve_connection`]; a request the fast path leaves to hyper hands the connection, with the
/// bytes already read, to [`serve_connection`] for the rest of its life.
async fn serve_h1<T>(
    io: T,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    forwarder: Arc<Forwarder>,
    conn: Arc<ConnInfo>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let stop = tokio::sync::Notify::new();
    let outcome = {
        let io = IdleIo { inner: io, activity: activity.clone() };
        let served = fast::serve(io, &forwarder, &conn, &activity, &stop);
        tokio::pin!(served);
        enum First<S> {
            Done(Outcome<S>),
            Drain,
        }
        let first = tokio::select! {
            outcome = served.as_mut() => First::Done(outcome),
            () = activity.idle_for(limits.idle) => First::Done(Outcome::Closed),
            () = shutdown_requested(&mut shutdown) => First::Drain,
            () = activity.head_overdue(limits.header_read) => {
                tracing::debug!("closing a connection whose request head is overdue");
                First::Done(Outcome::Closed)
            }
        };
        match first {
            First::Done(outcome) => outcome,
            // Shutdown: the same draining as `serve_connection`'s.
            First::Drain => {
                activity.draining.store(true, Ordering::Relaxed);
                let deadline = tokio::time::sleep(limits.drain);
                let outcome = tokio::select! {
                    outcome = served.as_mut() => Some(outcome),
                    () = activity.idle_for(DRAIN_QUIET.min(limits.idle)) => None,
                    () = deadline => None,
                };
                match outcome {
                    Some(outcome) => outcome,
                    None => {
                        stop.notify_one();
                        tokio::time::timeout(limits.drain, served).await.unwrap_or(Outcome::Closed)
                    }
                }
            }
        }
    };
    if let Outcome::Fallback(io, read) = outcome {
        let head = Some(limits.header_read);
        let handler = move |req, active| forwarder.clone().handle(req, conn.clone(), active);
        serve_connection(Rewind::new(read, io.inner), activity, limits, head, shutdown, handler).await;
    }
}

/// While draining, an HTTP/1 keep-alive connection this long without traffic is closed.
const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// Accepts until shutdown, then waits (up to the drain time) for open connections.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    limits: Limits,
    counters: Arc<ConnCounters>,
    on_conn: F,
) where
    F: Fn(tokio::net::TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let open = counters.open();
                    let served = on_conn(tcp, peer, shutdown.clone());
                    conns.spawn(async move {
                        served.await;
                        drop(open);
                    });
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections the kernel already queued on this socket are served too, not reset by the close.
    match listener.into_std() {
        Ok(listener) => {
            while let Ok((tcp, peer)) = listener.accept() {
                let Ok(tcp) = tcp.set_nonblocking(true).and_then(|()| tokio::net::TcpStream::from_std(tcp)) else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let open = counters.open();
                let served = on_conn(tcp, peer, shutdown.clone());
                conns.spawn(async move {
                    served.await;
                    drop(open);
                });
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot take the listener back to drain its queue"),
    }
    let drained = tokio::time::timeout(limits.drain + Duration::from_secs(1), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(open = conns.len(), "closing connections that did not drain in time");
    }
}

/// Serves HTTPS on `listener`: a default socket (`own` is `None`) or a load balancer's own address `own`, whose
/// connections are closed at accept, before TLS, when no load balancer there admits the client.
pub(crate) async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    forwarder: Arc<Forwarder>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
    own: Option<SocketAddr>,
) {
    let port = listener.local_addr().map_or(443, |a| a.port());
    let counters = forwarder.metrics.https.clone();
    accept_loop(listener, shutdown.clone(), limits, counters, move |tcp, peer, shutdown| {
        let acceptor = acceptor.clone();
        let forwarder = forwarder.clone();
        async move {
            if let Some(socket) = own
                && !forwarder.snapshot.load().accepts(socket, true, peer.ip())
            {
                tracing::debug!(%peer, %socket, "refused by the load balancer's security groups");
                return;
            }
            let meter = forwarder.metrics.reporting.then(|| Arc::new(ConnMeter::default()));
            let tcp = Metered::new(tcp, meter.clone());
            let tls = match tokio::time::timeout(limits.header_read, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let session = tls.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2");
            let info = TlsInfo {
                cipher: session.negotiated_cipher_suite().map_or("-", |s| cipher_name(s.suite())),
                protocol: session.protocol_version().map_or("-", protocol_name),
                sni: session.server_name().map(Arc::from),
            };
            // The load balancer's own idle timeout (`idle_timeout.timeout_seconds`), by socket or SNI.
            let idle = forwarder.snapshot.load().idle_for(own, info.sni.as_deref());
            let limits = Limits { idle: idle.unwrap_or(limits.idle), ..limits };
            let conn = Arc::new(ConnInfo::new(peer, port, Some(info)).on(own).metered(meter));
            if !h2 && forwarder.fast_path() {
                serve_h1(tls, limits, shutdown, forwarder, conn).await;
                return;
            }
            let head_timeout = (!h2).then_some(limits.header_read);
            let handler = move |req, active| forwarder.clone().handle(req, conn.clone(), active);
            serve_connection(tls, Activity::new(), limits, head_timeout, shutdown, handler).await;
        }
    })
    .await;
}

/// The HTTP listener's answer to everything: 301 to the same host and path over HTTPS (403 to a client the
/// load balancer group does not admit on port 80: `allowed(host)` says whether this client may reach `host`).
pub(crate) fn redirect(
    req: &Request<Incoming>,
    https_port: u16,
    allowed: impl Fn(&str) -> bool,
) -> Response<ProxyBody> {
    let host_header = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    let Some(host) = request_host(host_header, req.uri().authority().map(|a| a.as_str())) else {
        return fixed(StatusCode::BAD_REQUEST, "missing host\n");
    };
    if !allowed(&host) {
        return fixed(StatusCode::FORBIDDEN, "source not allowed by the load balancer's security groups\n");
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match HeaderValue::from_str(&redirect_location(&host, path, https_port)) {
        Ok(location) => {
            let mut response = Response::new(ProxyBody::empty());
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => fixed(StatusCode::BAD_REQUEST, "invalid host\n"),
    }
}

/// The HTTP listener: redirects everything to HTTPS, or (`forward`) serves the rules like the HTTPS one.
/// `own`: as for [`serve_https`].
pub(crate) async fn serve_http(
    listener: TcpListener,
    https_port: u16,
    forwarder: Arc<Forwarder>,
    forward: bool,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
    own: Option<SocketAddr>,
) {
    let port = listener.local_addr().map_or(80, |a| a.port());
    let counters = forwarder.metrics.http.clone();
    accept_loop(listener, shutdown.clone(), limits, counters, move |tcp, peer, shutdown| {
        let forwarder = forwarder.clone();
        async move {
            if let Some(socket) = own
                && !forwarder.snapshot.load().accepts(socket, false, peer.ip())
            {
                tracing::debug!(%peer, %socket, "refused by the load balancer's security groups");
                return;
            }
            let head = Some(limits.header_read);
            let limits =
                Limits { idle: forwarder.snapshot.load().idle_for(own, None).unwrap_or(limits.idle), ..limits };
            if forward {
                let meter = forwarder.metrics.reporting.then(|| Arc::new(ConnMeter::default()));
                let tcp = Metered::new(tcp, meter.clone());
                let conn = Arc::new(ConnInfo::new(peer, port, None).on(own).metered(meter));
                if forwarder.fast_path() {
                    serve_h1(tcp, limits, shutdown, forwarder, conn).await;
                    return;
                }
                let handler = move |req, active| forwarder.clone().handle(req, conn.clone(), active);
                serve_connection(tcp, Activity::new(), limits, head, shutdown, handler).await;
            } else {
                let handler = move |req: Request<Incoming>, _active| {
                    let snapshot = forwarder.snapshot.load();
                    let allowed = |host: &str| snapshot.admits_host(own, host, false, peer.ip());
                    std::future::ready(redirect(&req, https_port, allowed))
                };
                serve_connection(tcp, Activity::new(), limits, head, shutdown, handler).await;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_quiet_and_no_open_request() {
        let activity = Activity::new();
        let idle = Duration::from_secs(60);
        let request = activity.begin();
        let started = Instant::now();
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle_for(idle).await })
        };
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert!(!waiter.is_finished(), "an open request keeps the connection");
        drop(request);
        waiter.await.expect("join");
        assert!(started.elapsed() >= Duration::from_secs(150), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn head_timeout_counts_from_the_first_byte_of_a_head() {
        let activity = Activity::new();
        let limit = Duration::from_secs(10);
        // Idle keep-alive: no byte, never overdue.
        let quiet = tokio::time::timeout(Duration::from_secs(30), activity.head_overdue(limit)).await;
        assert!(quiet.is_err());
        // A head starts arriving and never completes: overdue 10 s after its first byte.
        activity.received();
        let started = Instant::now();
        activity.head_overdue(limit).await;
        assert!(started.elapsed() >= limit && started.elapsed() < limit + Duration::from_secs(2));
        // A completed head clears it; bytes while a request is open do not start a new one.
        let request = activity.begin();
        activity.received();
        let busy = tokio::time::timeout(Duration::from_secs(30), activity.head_overdue(limit)).await;
        assert!(busy.is_err());
        drop(request);
    }
}
