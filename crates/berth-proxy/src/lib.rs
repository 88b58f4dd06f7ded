//! berth-proxy: the data plane, berth's own ALB.
//!
//! It owns the HTTPS listener (TLS with SNI certificates, HTTP/1.1 and HTTP/2), the HTTP listener that
//! redirects to HTTPS, host-based routing with weighted target groups and round robin over healthy targets,
//! forwarding with `X-Forwarded-*` headers, ALB-style health checks, and the route-table watch and reports
//! over the server's internal API. It consumes only `berth-routes` snapshots: it must never read the store,
//! never talk to the container runtime, and never stop serving the last table it had because the server is
//! down.

mod access_log;
mod control;
mod fast;
mod forward;
mod h1;
mod health;
mod listener;
mod metrics;
mod route;
mod rules;
mod state;
mod table;
mod target;
mod upstream;

#[doc(hidden)]
pub mod fuzzing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use berth_routes::TargetHealth;
use http::HeaderValue;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::access_log::AccessLog;
use crate::listener::Limits;
use crate::metrics::Metrics;
use crate::state::{LiveResolver, SharedSnapshot, Snapshot};
use crate::table::{Applier, Watcher};

/// How a proxy listens and which server it follows.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The HTTPS listener (port 0 picks a free port; see [`Proxy::https_addr`]).
    pub https_listen: SocketAddr,
    /// The HTTP listener that redirects to HTTPS.
    pub http_listen: SocketAddr,
    /// The server's internal API, e.g. `http://127.0.0.1:9444`.
    pub server_url: String,
    /// The internal token, sent in [`berth_routes::TOKEN_HEADER`].
    pub token: String,
    /// Where the last route table is kept, to serve it at start while the server is down.
    pub state_file: PathBuf,
    /// This proxy's name in watches and reports.
    pub proxy_id: String,
    /// How long a target may take to start answering a request (then 504).
    pub request_timeout: Duration,
    /// How long a client connection may stay without traffic and without open requests.
    pub idle_timeout: Duration,
    /// How long a client may take to send a request's headers (and its TLS handshake).
    pub header_read_timeout: Duration,
    /// How long open connections may finish their requests at shutdown.
    pub shutdown_grace: Duration,
    /// Serve the rules on the HTTP listener too (plain-HTTP load balancer) instead of redirecting to HTTPS.
    pub http_forward: bool,
    /// Where to serve `GET /metrics` (Prometheus text format); off when `None`.
    pub metrics_listen: Option<SocketAddr>,
    /// Append ALB-format access logs to this file; off when `None` (as on AWS).
    pub access_log: Option<PathBuf>,
    /// Listener worker threads, each with its own event loop and upstream pool (0: one per CPU).
    pub workers: usize,
    /// With a saved table, how long to wait for its targets' first health checks before listening, so a
    /// restarted proxy that shares the port with its predecessor never answers 503 for healthy targets.
    pub settle_timeout: Duration,
}

impl ProxyConfig {
    /// A configuration with berth's defaults: HTTPS on 443, HTTP on 80, 60 s request and idle timeouts.
    pub fn new(server_url: impl Into<String>, token: impl Into<String>, state_file: impl Into<PathBuf>) -> Self {
        ProxyConfig {
            https_listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            server_url: server_url.into(),
            token: token.into(),
            state_file: state_file.into(),
            proxy_id: "proxy-1".into(),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            http_forward: false,
            metrics_listen: None,
            access_log: None,
            workers: 0,
            settle_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid server url {url:?}: {reason}")]
    ServerUrl { url: String, reason: String },
    #[error("the internal token is not a valid header value")]
    Token,
    #[error(transparent)]
    Tls(#[from] berth_certs::CertError),
    #[error("cannot start a listener worker: {0}")]
    Worker(#[source] std::io::Error),
}

/// `http://host:port` with no path, query or trailing slash (only plain HTTP: the internal API is
/// reached over loopback or a private network).
fn parse_server_url(url: &str) -> Result<String, ProxyError> {
    let invalid = |reason: &str| ProxyError::ServerUrl { url: url.to_owned(), reason: reason.to_owned() };
    let trimmed = url.trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("the scheme must be http"));
    }
    if uri.authority().is_none() {
        return Err(invalid("no host"));
    }
    if uri.path_and_query().is_some_and(|p| !matches!(p.as_str(), "" | "/")) {
        return Err(invalid("must not have a path or query"));
    }
    Ok(trimmed.to_owned())
}

/// A listening socket that a second process (a restarted or upgraded proxy) can bind too (`SO_REUSEPORT`),
/// handed over to the worker threads as a std socket.
fn bind_shared(addr: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    let err = |source| ProxyError::Bind { addr, source };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.set_reuseport(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(4096).map_err(err)?.into_std().map_err(err)
}

/// Waits (up to `limit`) until no target of the served table is still in its initial health checks.
async fn settle(snapshot: &SharedSnapshot, limit: Duration) {
    let started = std::time::Instant::now();
    let initial = || snapshot.load().targets.iter().filter(|t| t.status().health == TargetHealth::Initial).count();
    while initial() > 0 && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = initial();
    if left > 0 {
        tracing::warn!(targets = left, "listening before every target's first health checks finished");
    } else {
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "saved table's targets checked");
    }
}

/// How many listener workers to run: `configured`, or one per CPU.
fn worker_count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// One listener worker: an OS thread with a single-threaded event loop that accepts on (a duplicate of) the
/// shared listening sockets and serves its connections start to end, with its own upstream pools. Requests
/// never hop threads, as in nginx's worker model.
#[derive(Debug)]
struct Worker {
    done: tokio::sync::oneshot::Receiver<()>,
}

/// A load balancer's own listening socket, as handed to each worker (a duplicate of one shared socket).
struct OwnSocket {
    addr: SocketAddr,
    https: bool,
    listener: std::net::TcpListener,
    /// Turns true, or its sender is dropped, when the socket is no longer wanted.
    stop: watch::Receiver<bool>,
}

struct WorkerSetup {
    https: std::net::TcpListener,
    http: std::net::TcpListener,
    /// Load balancers' own sockets as they come and go.
    own: tokio::sync::mpsc::UnboundedReceiver<OwnSocket>,
    https_port: u16,
    acceptor: TlsAcceptor,
    forwarder: forward::ForwarderConfig,
    http_forward: bool,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
}

impl Worker {
    fn start(index: usize, setup: WorkerSetup) -> Result<Worker, ProxyError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ProxyError::Worker)?;
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("berth-proxy-{index}"))
            .spawn(move || {
                runtime.block_on(setup.run());
                // Dropping the runtime closes whatever connections are left.
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(ProxyError::Worker)?;
        Ok(Worker { done })
    }
}

impl WorkerSetup {
    async fn run(self) {
        let WorkerSetup {
            https,
            http,
            own: own_sockets,
            https_port,
            acceptor,
            forwarder,
            http_forward,
            limits,
            shutdown,
            mut abort,
        } = self;
        let listen = |l: std::net::TcpListener| l.set_nonblocking(true).and_then(|()| TcpListener::from_std(l));
        let (https, http) = match (listen(https), listen(http)) {
            (Ok(https), Ok(http)) => (https, http),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "a listener worker cannot register its sockets");
                return;
            }
        };
        let forwarder = Arc::new(forwarder.build());
        let sweeper = forwarder.pool.clone().sweep_forever();
        let own =
            OwnListeners { acceptor: acceptor.clone(), forwarder: forwarder.clone(), https_port, http_forward, limits };
        let serve = async {
            tokio::join!(
                listener::serve_https(https, acceptor, forwarder.clone(), limits, shutdown.clone(), None),
                listener::serve_http(http, https_port, forwarder, http_forward, limits, shutdown.clone(), None),
                own.serve(own_sockets, shutdown),
            )
        };
        tokio::select! {
            _ = serve => {}
            () = sweeper => {}
            // A dropped sender (the proxy is gone) aborts too.
            _ = abort.wait_for(|a| *a) => {}
        }
    }
}

/// What a worker needs to serve load balancers' own sockets.
struct OwnListeners {
    acceptor: TlsAcceptor,
    forwarder: Arc<forward::Forwarder>,
    https_port: u16,
    http_forward: bool,
    limits: Limits,
}

impl OwnListeners {
    /// Serves each own socket it is handed until that socket is no longer wanted or the proxy shuts down;
    /// then waits for their connections to drain.
    async fn serve(
        self,
        mut sockets: tokio::sync::mpsc::UnboundedReceiver<OwnSocket>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut served = tokio::task::JoinSet::new();
        loop {
            let socket = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                socket = sockets.recv() => socket,
                Some(_) = served.join_next(), if !served.is_empty() => continue,
            };
            let Some(socket) = socket else {
                // The proxy is going away: wait for the shutdown that follows.
                let _ = shutdown.wait_for(|s| *s).await;
                break;
            };
            let listener = match socket
                .listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket.listener))
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(addr = %socket.addr, error = %e, "a worker cannot register a load balancer socket");
                    continue;
                }
            };
            // Stops when the socket is unwanted (its sender dropped or set) or at shutdown.
            let (stop_tx, stop_rx) = watch::channel(false);
            let (mut unwanted, mut global) = (socket.stop, shutdown.clone());
            served.spawn(async move {
                tokio::select! {
                    _ = unwanted.wait_for(|s| *s) => {}
                    _ = global.wait_for(|s| *s) => {}
                }
                let _ = stop_tx.send(true);
            });
            let (addr, limits, forwarder) = (Some(socket.addr), self.limits, self.forwarder.clone());
            if socket.https {
                served.spawn(listener::serve_https(listener, self.acceptor.clone(), forwarder, limits, stop_rx, addr));
            } else {
                let (port, forward) = (self.https_port, self.http_forward);
                served.spawn(listener::serve_http(listener, port, forwarder, forward, limits, stop_rx, addr));
            }
        }
        while served.join_next().await.is_some() {}
    }
}

/// The own sockets bound now, by (address, HTTPS?); dropping one's sender closes it in every worker.
type OwnBound = std::collections::HashMap<(SocketAddr, bool), watch::Sender<bool>>;

/// Brings `bound` to `wanted`: closes sockets no longer wanted (their open connections drain) and binds new ones,
/// handing a duplicate to every worker. Returns whether some socket could not be bound.
fn bind_own_sockets(
    wanted: &[(SocketAddr, bool)],
    bound: &mut OwnBound,
    workers: &[tokio::sync::mpsc::UnboundedSender<OwnSocket>],
) -> bool {
    bound.retain(|key, _| wanted.contains(key));
    let mut failed = false;
    for &key in wanted {
        if bound.contains_key(&key) {
            continue;
        }
        let (addr, https) = key;
        let socket = match bind_shared(addr) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for a load balancer yet; retrying");
                failed = true;
                continue;
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        for worker in workers {
            match socket.try_clone() {
                Ok(listener) => {
                    let _ = worker.send(OwnSocket { addr, https, listener, stop: stop_rx.clone() });
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot hand a load balancer socket to a worker"),
            }
        }
        tracing::info!(%addr, https, "listening for a load balancer");
        bound.insert(key, stop);
    }
    failed
}

/// Binds and closes load balancers' own sockets as the served table asks (`want`: (address, HTTPS?)). A socket
/// that cannot be bound (its address is not on this host yet) is retried every 2 s; its load balancer is not
/// served elsewhere meanwhile.
async fn manage_own_sockets(
    mut want: watch::Receiver<Vec<(SocketAddr, bool)>>,
    workers: Vec<tokio::sync::mpsc::UnboundedSender<OwnSocket>>,
    mut bound: OwnBound,
    mut failed: bool,
) {
    loop {
        tokio::select! {
            changed = want.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(2)), if failed => {}
        }
        let wanted = want.borrow_and_update().clone();
        failed = bind_own_sockets(&wanted, &mut bound, &workers);
    }
}

/// A running proxy: its bound addresses, the table version it serves, and a way to stop it.
#[derive(Debug)]
pub struct Proxy {
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    snapshot: SharedSnapshot,
    shutdown: watch::Sender<bool>,
    abort: watch::Sender<bool>,
    workers: Vec<Worker>,
    background: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Binds both listeners, serves the table from the state file if there is one, and starts watching
    /// the server. Returns once the listeners accept connections.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let base = parse_server_url(&config.server_url)?;
        let token = HeaderValue::from_str(&config.token).map_err(|_| ProxyError::Token)?;

        // Shared (`SO_REUSEPORT`) like the traffic listeners, so a replacement proxy binds it during a hand-over.
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                Some(TcpListener::from_std(bind_shared(addr)?).map_err(|source| ProxyError::Bind { addr, source })?)
            }
            None => None,
        };
        let metrics_addr = match (&metrics_listener, config.metrics_listen) {
            (Some(l), Some(addr)) => Some(l.local_addr().map_err(|source| ProxyError::Bind { addr, source })?),
            _ => None,
        };

        let metrics = Arc::new(Metrics::default());
        let snapshot: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let changed = Arc::new(Notify::new());
        let (listen_tx, listen_rx) = watch::channel(Vec::new());
        let mut applier = Applier::new(snapshot.clone(), changed.clone(), metrics.clone()).with_listen(listen_tx);
        if let Some(table) = table::load_state(&config.state_file) {
            applier.apply(Arc::new(table));
            settle(&snapshot, config.settle_timeout).await;
        }
        let https = bind_shared(config.https_listen)?;
        let http = bind_shared(config.http_listen)?;
        let local =
            |l: &std::net::TcpListener, addr| l.local_addr().map_err(|source| ProxyError::Bind { addr, source });
        let https_addr = local(&https, config.https_listen)?;
        let http_addr = local(&http, config.http_listen)?;

        let tls = berth_certs::server_config(Arc::new(LiveResolver(snapshot.clone())), &[b"h2", b"http/1.1"])?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let limits =
            Limits { idle: config.idle_timeout, header_read: config.header_read_timeout, drain: config.shutdown_grace };
        let mut background = Vec::new();
        let access_log = config.access_log.clone().map(|path| {
            let (log, writer) = AccessLog::start(path, metrics.clone());
            background.push(writer);
            log
        });
        let forwarder = forward::ForwarderConfig {
            snapshot: snapshot.clone(),
            idle: config.idle_timeout,
            request_timeout: config.request_timeout,
            metrics: metrics.clone(),
            access_log,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (abort, abort_rx) = watch::channel(false);
        let mut workers = Vec::new();
        let mut own_senders = Vec::new();
        for index in 0..worker_count(config.workers) {
            let (own_tx, own) = tokio::sync::mpsc::unbounded_channel();
            own_senders.push(own_tx);
            let dup =
                |l: &std::net::TcpListener, addr| l.try_clone().map_err(|source| ProxyError::Bind { addr, source });
            let setup = WorkerSetup {
                https: dup(&https, https_addr)?,
                http: dup(&http, http_addr)?,
                own,
                https_port: https_addr.port(),
                acceptor: acceptor.clone(),
                forwarder: forwarder.clone(),
                http_forward: config.http_forward,
                limits,
                shutdown: shutdown_rx.clone(),
                abort: abort_rx.clone(),
            };
            workers.push(Worker::start(index, setup)?);
        }
        // The workers hold duplicates; these originals are not polled by anyone.
        drop((https, http));
        // The saved table's own sockets are bound before the proxy reports itself started (a replacement proxy
        // must listen everywhere its predecessor does before that one goes).
        let mut listen_rx = listen_rx;
        let mut own_bound = OwnBound::new();
        let wanted = listen_rx.borrow_and_update().clone();
        let failed = bind_own_sockets(&wanted, &mut own_bound, &own_senders);
        background.push(tokio::spawn(manage_own_sockets(listen_rx, own_senders, own_bound, failed)));
        if let Some(listener) = metrics_listener {
            background.push(tokio::spawn(serve_metrics(listener, metrics, snapshot.clone())));
        }

        let client = control::control_client();
        let watcher = Watcher {
            base: base.clone(),
            token: token.clone(),
            proxy_id: config.proxy_id.clone(),
            state_file: config.state_file.clone(),
            client: client.clone(),
            applier,
        };
        let reporter = control::Reporter {
            base,
            token,
            proxy_id: config.proxy_id.clone(),
            client,
            snapshot: snapshot.clone(),
            changed,
        };
        background.push(tokio::spawn(watcher.run()));
        background.push(tokio::spawn(reporter.run()));
        tracing::info!(https = %https_addr, http = %http_addr, server = %config.server_url, "proxy listening");
        Ok(Proxy { https_addr, http_addr, metrics_addr, snapshot, shutdown, abort, workers, background })
    }

    /// Where `GET /metrics` is served, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The version of the route table being served (0 before the first).
    pub fn table_version(&self) -> u64 {
        self.snapshot.load().version
    }

    /// Stops accepting, lets open connections finish (up to the grace time), then stops watching,
    /// reporting and probing.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for worker in self.workers.drain(..) {
            if worker.done.await.is_err() {
                tracing::error!("a listener worker failed");
            }
        }
        for task in self.background.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = self.abort.send(true);
        for task in &self.background {
            task.abort();
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format) until aborted.
async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, snapshot: SharedSnapshot) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, snapshot) = (metrics.clone(), snapshot.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let response = if req.method() == http::Method::GET && req.uri().path() == "/metrics" {
                    let mut r = http::Response::new(Full::new(bytes::Bytes::from(metrics.render(&snapshot.load()))));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    r
                } else {
                    let mut r = http::Response::new(Full::new(bytes::Bytes::from_static(b"not found\n")));
                    *r.status_mut() = http::StatusCode::NOT_FOUND;
                    r
                };
                std::future::ready(Ok::<_, std::convert::Infallible>(response))
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            let served = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            if tokio::time::timeout(Duration::from_secs(30), served).await.is_err() {
                tracing::debug!("closing a slow metrics connection");
            }
        });
    }
}

/// Runs a proxy until `shutdown` completes, then drains it.
pub async fn run(config: ProxyConfig, shutdown: impl Future<Output = ()>) -> Result<(), ProxyError> {
    let proxy = Proxy::start(config).await?;
    shutdown.await;
    proxy.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_table() {
        let cases = [
            ("http://127.0.0.1:9444", Some("http://127.0.0.1:9444")),
            ("http://127.0.0.1:9444/", Some("http://127.0.0.1:9444")),
            ("http://localhost", Some("http://localhost")),
            ("https://127.0.0.1:9444", None),
            ("http://127.0.0.1:9444/api", None),
            ("127.0.0.1:9444", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(parse_server_url(url).ok().as_deref(), want, "{url}");
        }
    }
}
