//! The request path: match the listener rules, then forward (pick a target group by weight or stickiness, a
//! target by the group's algorithm, send over a pooled HTTP/1.1 or h2c client with the `X-Forwarded-*` and
//! trace headers, stream the response back while counting it in flight), redirect or answer a fixed response.
//! WebSocket upgrades are passed through. Every request is counted and, when enabled, access-logged.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::access_log::{AccessLog, LogEntry};
use crate::listener::ActiveRequest;
use crate::metrics::{ConnMeter, LbCounters, Metrics, UNMATCHED};
use crate::route::{GroupRoute, request_host};
use crate::rules::{RedirectInput, RequestView, redirect_location};
use crate::state::{ActionKind, SharedSnapshot};
use crate::target::{InFlight, TargetRuntime};
use crate::upstream::{BoxError, CONNECT_TIMEOUT, Pool, Pooled};

pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector
}

/// The HTTP/2 prior-knowledge (h2c) client, for target groups whose protocol version is HTTP2.
pub(crate) fn upstream_h2c_client(idle: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new()).pool_idle_timeout(idle).http2_only(true).build(connector())
}

/// What the request path knows about the client connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub peer: SocketAddr,
    /// The listener's port.
    pub port: u16,
    pub tls: Option<TlsInfo>,
    /// `X-Forwarded-For`'s client address and `X-Forwarded-Port`, rendered once per connection.
    pub forwarded: Forwarded,
    /// The load balancer socket the connection arrived on (`None`: a default socket).
    pub socket: Option<SocketAddr>,
    /// Its bytes and the load balancer it counts under.
    pub meter: Arc<ConnMeter>,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, port: u16, tls: Option<TlsInfo>) -> Self {
        let forwarded = Forwarded::new(peer, port, tls.is_some());
        ConnInfo { peer, port, tls, forwarded, socket: None, meter: Arc::default() }
    }

    /// The connection's bytes count in `meter` (the one its stream is [`crate::metrics::Metered`] with).
    pub fn metered(mut self, meter: Option<Arc<ConnMeter>>) -> Self {
        if let Some(meter) = meter {
            self.meter = meter;
        }
        self
    }

    /// The connection arrived on load balancer socket `socket`.
    pub fn on(mut self, socket: Option<SocketAddr>) -> Self {
        self.socket = socket;
        self
    }
}

/// The `X-Forwarded-*` values of one client connection.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    client: HeaderValue,
    port: HeaderValue,
    https: bool,
}

impl Forwarded {
    /// The values the fast path writes.
    pub fn for_h1(&self) -> crate::h1::ForwardedFor<'_> {
        crate::h1::ForwardedFor { client: self.client.as_bytes(), port: self.port.as_bytes(), https: self.https }
    }

    pub fn new(peer: SocketAddr, port: u16, https: bool) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        let client = HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("-"));
        Forwarded { client, port: HeaderValue::from(port), https }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TlsInfo {
    /// OpenSSL-style names, as ALB logs them.
    pub cipher: &'static str,
    pub protocol: &'static str,
    pub sni: Option<Arc<str>>,
}

/// ALB's (OpenSSL's) name of a negotiated cipher suite.
pub(crate) fn cipher_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "-",
    }
}

pub(crate) fn protocol_name(version: rustls::ProtocolVersion) -> &'static str {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        _ => "-",
    }
}

/// What to do when a response body ends (or is dropped): stop counting in flight, write the access log.
#[derive(Debug)]
pub(crate) struct Finish {
    _in_flight: Option<InFlight>,
    _active: ActiveRequest,
    /// The upstream connection, back to its pool once the body has been read to its end.
    _pooled: Option<Pooled>,
    log: Option<Box<(LogEntry, AccessLog)>>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            let (mut entry, sink) = *log;
            entry.time = SystemTime::now();
            sink.log(entry);
        }
    }
}

/// A response body: a small fixed one the proxy writes, or the target's, streamed.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    Fixed(Option<Bytes>),
    Upstream { inner: Incoming, finish: Option<Finish> },
}

impl ProxyBody {
    pub fn text(s: &str) -> Self {
        ProxyBody::Fixed(Some(Bytes::copy_from_slice(s.as_bytes())))
    }

    pub fn empty() -> Self {
        ProxyBody::Fixed(None)
    }

    fn len(&self) -> u64 {
        match self {
            ProxyBody::Fixed(Some(b)) => b.len() as u64,
            _ => 0,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Fixed(data) => Poll::Ready(data.take().filter(|d| !d.is_empty()).map(|d| Ok(Frame::data(d)))),
            ProxyBody::Upstream { inner, finish } => {
                let polled = Pin::new(&mut *inner).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled
                    && let Some(data) = frame.data_ref()
                    && let Some(Finish { log: Some(log), .. }) = finish
                {
                    log.0.sent_bytes += data.len() as u64;
                }
                // The request is over once its body ends or fails: stop counting it in flight.
                if matches!(polled, Poll::Ready(None | Some(Err(_)))) || inner.is_end_stream() {
                    finish.take();
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Fixed(data) => data.as_ref().is_none_or(|d| d.is_empty()),
            ProxyBody::Upstream { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Fixed(Some(d)) => SizeHint::with_exact(d.len() as u64),
            ProxyBody::Fixed(None) => SizeHint::with_exact(0),
            ProxyBody::Upstream { inner, .. } => inner.size_hint(),
        }
    }
}

pub(crate) fn fixed(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TRAILER,
];

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names is cheaper than seven lookups.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// `Root=1-<epoch seconds, 8 hex>-<24 hex random>`, as ALB writes it.
pub(crate) fn new_trace_id(now: SystemTime) -> HeaderValue {
    HeaderValue::from_bytes(&trace_id_bytes(now))
        .unwrap_or(HeaderValue::from_static("Root=1-00000000-000000000000000000000000"))
}

/// [`new_trace_id`]'s bytes.
pub(crate) fn trace_id_bytes(now: SystemTime) -> [u8; 40] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let epoch = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
    let random: [u8; 12] = rand::random();
    let mut id = *b"Root=1-00000000-000000000000000000000000";
    for (i, shift) in (0..8).rev().enumerate() {
        id[7 + i] = HEX[((epoch >> (shift * 4)) & 15) as usize];
    }
    for (i, b) in random.iter().enumerate() {
        id[16 + 2 * i] = HEX[usize::from(b >> 4)];
        id[17 + 2 * i] = HEX[usize::from(b & 15)];
    }
    id
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// Sets the `X-Forwarded-*` headers (appending the client to `X-Forwarded-For`) and a trace id if absent.
pub(crate) fn set_forwarded_headers(headers: &mut HeaderMap, forwarded: &Forwarded) {
    let prior = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()).filter(|p| !p.trim().is_empty());
    let xff = match prior {
        Some(prior) => {
            let ip = forwarded.client.to_str().unwrap_or("-");
            HeaderValue::from_str(&format!("{prior}, {ip}")).ok()
        }
        None => Some(forwarded.client.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    let proto = HeaderValue::from_static(if forwarded.https { "https" } else { "http" });
    headers.insert(X_FORWARDED_PROTO.clone(), proto);
    headers.insert(X_FORWARDED_PORT.clone(), forwarded.port.clone());
    if !headers.contains_key(&X_AMZN_TRACE_ID) {
        headers.insert(X_AMZN_TRACE_ID.clone(), new_trace_id(SystemTime::now()));
    }
}

/// An HTTP/1.1 `Upgrade: websocket` request (with `Connection: upgrade`).
pub(crate) fn is_websocket<B>(req: &Request<B>) -> bool {
    let has_token = |name: HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    req.version() == Version::HTTP_11
        && has_token(header::UPGRADE, "websocket")
        && has_token(header::CONNECTION, "upgrade")
}

/// What the request path needs for every request.
pub(crate) struct Forwarder {
    pub snapshot: SharedSnapshot,
    pub pool: Arc<Pool>,
    pub h2c_client: UpstreamClient,
    pub request_timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub access_log: Option<AccessLog>,
    pub unmatched: (Arc<str>, Arc<LbCounters>),
}

/// What each listener worker builds its own [`Forwarder`] (and so its own upstream pools) from.
#[derive(Clone)]
pub(crate) struct ForwarderConfig {
    pub snapshot: SharedSnapshot,
    pub idle: Duration,
    pub request_timeout: Duration,
    pub metrics: Arc<Metrics>,
    pub access_log: Option<AccessLog>,
}

impl ForwarderConfig {
    pub fn build(self) -> Forwarder {
        let ForwarderConfig { snapshot, idle, request_timeout, metrics, access_log } = self;
        let unmatched = (Arc::from(UNMATCHED), metrics.lb(UNMATCHED));
        Forwarder {
            snapshot,
            pool: Pool::new(idle),
            h2c_client: upstream_h2c_client(idle),
            request_timeout,
            metrics,
            access_log,
            unmatched,
        }
    }
}

/// What happened to one request, for the counters and the access log.
struct Exchange {
    received: Instant,
    lb: Arc<LbCounters>,
    label: Arc<str>,
    matched: Option<u32>,
    action: &'static str,
    target_group: Option<Arc<str>>,
    target: Option<SocketAddr>,
    sent: Option<Instant>,
    headers: Option<Instant>,
    target_status: Option<u16>,
    redirect: Option<String>,
    error: Option<&'static str>,
    log: Option<LogStart>,
}

/// The access-log fields taken from the request before it is forwarded.
struct LogStart {
    received_at: SystemTime,
    kind: &'static str,
    request: String,
    user_agent: String,
    received_bytes: u64,
    trace_id: String,
}

impl LogStart {
    fn new(req: &Request<Incoming>, conn: &ConnInfo, host: Option<&str>, websocket: bool) -> Self {
        let kind = match (conn.tls.is_some(), websocket, req.version()) {
            (true, true, _) => "wss",
            (false, true, _) => "ws",
            (true, false, Version::HTTP_2) => "h2",
            (true, false, _) => "https",
            (false, false, _) => "http",
        };
        let scheme = if conn.tls.is_some() { "https" } else { "http" };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let request =
            format!("{} {scheme}://{}:{}{path} {:?}", req.method(), host.unwrap_or("-"), conn.port, req.version());
        let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
        let body_bytes = req.body().size_hint().exact().unwrap_or(0);
        LogStart {
            received_at: SystemTime::now(),
            kind,
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            received_bytes: (request.len() + header_bytes + 2) as u64 + body_bytes,
            request,
            trace_id: req.headers().get("x-amzn-trace-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
        }
    }
}

impl Exchange {
    fn entry(&mut self, conn: &ConnInfo, status: u16, head_bytes: u64, body_bytes: u64) -> Option<LogEntry> {
        let log = self.log.take()?;
        let now = Instant::now();
        Some(LogEntry {
            kind: log.kind,
            received: log.received_at,
            time: SystemTime::now(),
            elb: self.label.clone(),
            client: conn.peer,
            target: self.target,
            request_processing: Some(self.sent.unwrap_or(now).saturating_duration_since(self.received)),
            target_processing: self.sent.zip(self.headers).map(|(s, h)| h.saturating_duration_since(s)),
            response_processing: self.headers.map(|h| now.saturating_duration_since(h)),
            elb_status: status,
            target_status: self.target_status,
            received_bytes: log.received_bytes,
            sent_bytes: head_bytes + body_bytes,
            request: log.request,
            user_agent: log.user_agent,
            ssl_cipher: conn.tls.as_ref().map_or("-", |t| t.cipher),
            ssl_protocol: conn.tls.as_ref().map_or("-", |t| t.protocol),
            target_group: self.target_group.clone(),
            trace_id: log.trace_id,
            domain_name: conn.tls.as_ref().and_then(|t| t.sni.clone()),
            matched_rule_priority: self.matched,
            actions_executed: self.action,
            redirect_url: self.redirect.take(),
            error_reason: self.error,
        })
    }
}

fn head_bytes<B>(response: &Response<B>) -> u64 {
    let headers: usize = response.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    (headers + 17) as u64
}

impl Forwarder {
    /// Whether HTTP/1.1 connections take the fast path (`fast.rs`); not with an access log, which only
    /// hyper's path writes.
    pub fn fast_path(&self) -> bool {
        self.access_log.is_none()
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnInfo>,
        active: ActiveRequest,
    ) -> Response<ProxyBody> {
        let host_header = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        let host = request_host(host_header, req.uri().authority().map(|a| a.as_str()));
        let websocket = is_websocket(&req);
        let mut ex = Exchange {
            received: Instant::now(),
            lb: self.unmatched.1.clone(),
            label: self.unmatched.0.clone(),
            matched: None,
            action: "fixed-response",
            target_group: None,
            target: None,
            sent: None,
            headers: None,
            target_status: None,
            redirect: None,
            error: None,
            log: self.access_log.as_ref().map(|_| LogStart::new(&req, &conn, host.as_deref(), websocket)),
        };
        let mut response = match host {
            Some(host) => self.route(req, &conn, &mut ex, active, &host, websocket).await,
            None => fixed(StatusCode::BAD_REQUEST, "missing host\n"),
        };
        ex.lb.requests.fetch_add(1, Ordering::Relaxed);
        let status = response.status().as_u16();
        if ex.target_status.is_none() {
            ex.lb.elb_response(status);
        }
        if let Some(sink) = &self.access_log
            && let Some(entry) = ex.entry(&conn, status, head_bytes(&response), response.body().len())
        {
            match response.body_mut() {
                ProxyBody::Upstream { finish: Some(finish), .. } => finish.log = Some(Box::new((entry, sink.clone()))),
                _ => sink.log(entry),
            }
        }
        response
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        ex: &mut Exchange,
        active: ActiveRequest,
        host: &str,
        websocket: bool,
    ) -> Response<ProxyBody> {
        let found = {
            let snapshot = self.snapshot.load();
            let view = RequestView {
                host,
                path: req.uri().path(),
                query: req.uri().query(),
                method: req.method().as_str(),
                headers: req.headers(),
                source: conn.peer.ip(),
            };
            // The load balancer's security groups: on a socket several load balancers share, a source they
            // do not admit is refused once the host names the load balancer (see docs/compatibility.md).
            match snapshot.route(conn.socket, &view, conn.tls.is_some()) {
                Ok(found) => found.map(|(m, a)| (m.priority(), a.clone())),
                Err(_) => {
                    ex.error = Some("SourceNotAllowed");
                    return fixed(StatusCode::FORBIDDEN, "source not allowed by the load balancer's security groups\n");
                }
            }
        };
        let Some((priority, action)) = found else {
            return fixed(StatusCode::NOT_FOUND, "no service at this host\n");
        };
        ex.matched = Some(priority);
        conn.meter.attribute(&action.counters);
        ex.lb = action.counters.clone();
        ex.label = action.label.clone();
        match &action.kind {
            ActionKind::Fixed { status, content_type, body } => {
                let mut response = Response::new(ProxyBody::Fixed(Some(body.clone())));
                *response.status_mut() = *status;
                response.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
                response
            }
            ActionKind::Redirect(redirect) => {
                ex.action = "redirect";
                let input = RedirectInput {
                    protocol: if conn.tls.is_some() { "HTTPS" } else { "HTTP" },
                    host,
                    port: conn.port,
                    path: req.uri().path(),
                    query: req.uri().query(),
                };
                let location = redirect_location(redirect, &input).and_then(|l| HeaderValue::from_str(&l).ok());
                let Some(location) = location else {
                    ex.error = Some("InvalidRedirect");
                    return fixed(StatusCode::INTERNAL_SERVER_ERROR, "invalid redirect\n");
                };
                ex.redirect = location.to_str().ok().map(str::to_owned);
                let mut response = Response::new(ProxyBody::empty());
                *response.status_mut() = match redirect.status_code {
                    berth_routes::RedirectStatus::Http301 => StatusCode::MOVED_PERMANENTLY,
                    berth_routes::RedirectStatus::Http302 => StatusCode::FOUND,
                };
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            ActionKind::Forward(forward) => {
                ex.action = "forward";
                let Some(pick) = forward.pick(req.headers()) else {
                    ex.error = Some("NoHealthyTarget");
                    tracing::debug!(host, "no healthy target: 503");
                    return fixed(StatusCode::SERVICE_UNAVAILABLE, "no healthy target\n");
                };
                let mut response = self.forward(req, conn, ex, active, pick.group, pick.target, websocket).await;
                if ex.target_status.is_some() {
                    pick.set_cookies(response.headers_mut());
                }
                response
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        conn: &ConnInfo,
        ex: &mut Exchange,
        active: ActiveRequest,
        group: &GroupRoute,
        target: &Arc<TargetRuntime>,
        websocket: bool,
    ) -> Response<ProxyBody> {
        let addr = target.key.addr;
        ex.target_group = Some(group.id.clone());
        ex.target = Some(addr);
        group.counters.requests.fetch_add(1, Ordering::Relaxed);
        let in_flight = target.begin();
        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));

        let (mut parts, body) = req.into_parts();
        let host_value = match parts.headers.get(header::HOST) {
            Some(v) => v.clone(),
            None => match parts.uri.authority().map(|a| HeaderValue::from_str(a.as_str())) {
                Some(Ok(v)) => v,
                _ => return fixed(StatusCode::BAD_REQUEST, "missing host\n"),
            },
        };
        let h2c = group.h2c && !websocket;
        if h2c {
            // The h2c client takes an absolute URI and sends it as `:scheme`/`:authority`/`:path`.
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = match Uri::try_from(format!("http://{addr}{path}")) {
                Ok(uri) => uri,
                Err(_) => return fixed(StatusCode::BAD_REQUEST, "invalid request target\n"),
            };
        } else if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
            // HTTP/1.1 to a target: origin-form (`/path?query`); an HTTP/2 client's URI is absolute.
            let mut origin = http::uri::Parts::default();
            origin.path_and_query =
                Some(parts.uri.path_and_query().cloned().unwrap_or(http::uri::PathAndQuery::from_static("/")));
            parts.uri = match Uri::from_parts(origin) {
                Ok(uri) => uri,
                Err(_) => return fixed(StatusCode::BAD_REQUEST, "invalid request target\n"),
            };
        }
        parts.version = if h2c { Version::HTTP_2 } else { Version::HTTP_11 };
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::HOST, host_value);
        set_forwarded_headers(&mut parts.headers, &conn.forwarded);
        if websocket {
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        if let Some(log) = &mut ex.log
            && let Some(trace) = parts.headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok())
        {
            trace.clone_into(&mut log.trace_id);
        }
        let upstream = Request::from_parts(parts, body);

        let sent = Instant::now();
        ex.sent = Some(sent);
        let exchange = async {
            if websocket {
                websocket_request(addr, upstream).await.map(|r| (r, None))
            } else if h2c {
                self.h2c_client.request(upstream).await.map(|r| (r, None)).map_err(BoxError::from)
            } else {
                self.pool.request(addr, upstream).await.map(|(r, pooled)| (r, Some(pooled)))
            }
        };
        let (mut response, pooled) = match tokio::time::timeout(self.request_timeout, exchange).await {
            Err(_) => {
                tracing::warn!(label = %ex.label, target_group = %group.id, target = %target.key.target, %addr, "target response timed out");
                ex.error = Some("TargetResponseTimeout");
                return fixed(StatusCode::GATEWAY_TIMEOUT, "target timed out\n");
            }
            Ok(Err(e)) => {
                tracing::warn!(label = %ex.label, target_group = %group.id, target = %target.key.target, %addr, error = %e, "target request failed");
                ex.error = Some("TargetConnectionError");
                return fixed(StatusCode::BAD_GATEWAY, "bad gateway\n");
            }
            Ok(Ok(exchanged)) => exchanged,
        };
        let now = Instant::now();
        ex.headers = Some(now);
        let status = response.status().as_u16();
        ex.target_status = Some(status);
        ex.lb.target_response(status);
        group.counters.target_response(status, now.saturating_duration_since(sent));

        if let Some(client_upgrade) = client_upgrade
            && response.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let open = self.metrics.websockets.open();
            tokio::spawn(async move {
                let guards = (in_flight, active, open);
                let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else {
                    tracing::debug!("a WebSocket upgrade did not complete");
                    return;
                };
                tunnel(TokioIo::new(client), TokioIo::new(upstream)).await;
                drop(guards);
            });
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ProxyBody::empty());
        }

        let (mut parts, inner) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let done = inner.is_end_stream();
        let finish =
            (!done).then_some(Finish { _in_flight: Some(in_flight), _active: active, _pooled: pooled, log: None });
        Response::from_parts(parts, ProxyBody::Upstream { inner, finish })
    }
}

/// Copies bytes both ways until either side closes (or fails), then closes both.
async fn tunnel<C, U>(client: C, upstream: U)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncWriteExt;
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let result = tokio::select! {
        r = tokio::io::copy(&mut client_read, &mut upstream_write) => r,
        r = tokio::io::copy(&mut upstream_read, &mut client_write) => r,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "WebSocket tunnel ended with an error");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = client_write.shutdown().await;
        let _ = upstream_write.shutdown().await;
    })
    .await;
}

/// Sends a WebSocket upgrade request over a fresh HTTP/1.1 connection that may be upgraded.
async fn websocket_request(addr: SocketAddr, req: Request<Incoming>) -> Result<Response<Incoming>, BoxError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await??;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "WebSocket upstream connection failed");
        }
    });
    Ok(sender.send_request(req).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn forwarded_headers_table() {
        let client: SocketAddr = "10.0.0.7:5555".parse().expect("addr");
        // (prior X-Forwarded-For, prior trace id, want X-Forwarded-For)
        let cases = [(None, None, "10.0.0.7"), (Some("1.2.3.4"), Some("Root=1-abc"), "1.2.3.4, 10.0.0.7")];
        for (prior_xff, prior_trace, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(v) = prior_xff {
                h.insert("x-forwarded-for", HeaderValue::from_static(v));
            }
            if let Some(v) = prior_trace {
                h.insert("x-amzn-trace-id", HeaderValue::from_static(v));
            }
            set_forwarded_headers(&mut h, &Forwarded::new(client, 8443, true));
            assert_eq!(h["x-forwarded-for"], want);
            assert_eq!(h["x-forwarded-proto"], "https");
            assert_eq!(h["x-forwarded-port"], "8443");
            let trace = h["x-amzn-trace-id"].to_str().expect("ascii");
            match prior_trace {
                Some(v) => assert_eq!(trace, v),
                None => assert!(trace.starts_with("Root=1-")),
            }
        }
        let mapped: SocketAddr = "[::ffff:10.0.0.8]:1".parse().expect("addr");
        let mut h = HeaderMap::new();
        set_forwarded_headers(&mut h, &Forwarded::new(mapped, 80, false));
        assert_eq!(h["x-forwarded-for"], "10.0.0.8");
        assert_eq!(h["x-forwarded-proto"], "http");
    }

    #[test]
    fn trace_id_format() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(0x5f00_0001);
        let id = new_trace_id(now);
        let id = id.to_str().expect("ascii");
        let parts: Vec<_> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "Root=1");
        assert_eq!(parts[1], "5f000001");
        assert_eq!(parts[2].len(), 24);
        assert!(parts[2].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(new_trace_id(now), id, "random part differs");
    }
}
