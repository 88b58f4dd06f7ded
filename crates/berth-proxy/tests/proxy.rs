//! End-to-end tests of the proxy: a real proxy on ephemeral ports, a fake server answering the route watch
//! and collecting reports, tiny hyper backends, and real HTTPS clients trusting the test CA.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_certs::{Ca, IssuedCert};
use berth_proxy::{Proxy, ProxyConfig};
use berth_routes::{
    Algorithm, Certificate, Condition, FixedResponse, HealthCheck, HostRoute, ProtocolVersion, ProxyReport,
    QueryStringPair, REPORT_PATH, ROUTES_PATH, Redirect, RedirectStatus, RouteTable, Rule, RuleAction, Stickiness,
    TOKEN_HEADER, Target, TargetGroup, TargetHealth, TargetState, TargetStickiness, WeightedTargetGroup,
};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};

const TOKEN: &str = "test-token";
const HOST: &str = "web-abc123.ecs.us-east-1.localhost";
const STEP: Duration = Duration::from_millis(20);
const WAIT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestBody = UnsyncBoxBody<Bytes, BoxError>;

fn full(s: impl Into<Bytes>) -> TestBody {
    Full::new(s.into()).map_err(|e: Infallible| match e {}).boxed_unsync()
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// Serves `handler` over HTTP/1.1 until the test ends.
fn serve_on<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<TestBody>, BoxError>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service_fn(handler))
                    .await;
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------------------
// The fake server: route watch and reports.

struct FakeServer {
    addr: SocketAddr,
    table: watch::Sender<RouteTable>,
    reports: Mutex<Vec<ProxyReport>>,
}

impl FakeServer {
    async fn start() -> Arc<FakeServer> {
        let (listener, addr) = bind().await;
        let (table, _) = watch::channel(RouteTable::default());
        let server = Arc::new(FakeServer { addr, table, reports: Mutex::default() });
        let handler_server = server.clone();
        serve_on(listener, move |req| {
            let server = handler_server.clone();
            async move { Ok(server.handle(req).await) }
        });
        server
    }

    fn publish(&self, table: RouteTable) {
        self.table.send_replace(table);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<TestBody> {
        let status = |s: StatusCode| {
            let mut r = Response::new(full(""));
            *r.status_mut() = s;
            r
        };
        if req.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return status(StatusCode::UNAUTHORIZED);
        }
        match (req.method().as_str(), req.uri().path()) {
            ("GET", ROUTES_PATH) => {
                let query = req.uri().query().unwrap_or("");
                let after: u64 =
                    query.split('&').find_map(|kv| kv.strip_prefix("after=")).and_then(|v| v.parse().ok()).unwrap_or(0);
                assert!(query.contains("proxy=test-proxy"), "{query}");
                let mut rx = self.table.subscribe();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                loop {
                    let table = rx.borrow_and_update().clone();
                    if table.version > after {
                        return Response::new(full(serde_json::to_vec(&table).expect("json")));
                    }
                    if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                        return status(StatusCode::NO_CONTENT);
                    }
                }
            }
            ("POST", REPORT_PATH) => {
                let body = req.into_body().collect().await.expect("body").to_bytes();
                let report: ProxyReport = serde_json::from_slice(&body).expect("report json");
                self.reports.lock().expect("lock").push(report);
                status(StatusCode::NO_CONTENT)
            }
            _ => status(StatusCode::NOT_FOUND),
        }
    }

    /// The latest report, if any.
    fn last_report(&self) -> Option<ProxyReport> {
        self.reports.lock().expect("lock").last().cloned()
    }

    /// Waits until the latest report satisfies `pred`.
    async fn wait_report(&self, what: &str, pred: impl Fn(&ProxyReport) -> bool) -> ProxyReport {
        let started = Instant::now();
        loop {
            if let Some(r) = self.last_report().filter(|r| pred(r)) {
                return r;
            }
            assert!(started.elapsed() < WAIT, "timed out waiting for a report: {what}; last {:?}", self.last_report());
            tokio::time::sleep(STEP).await;
        }
    }
}

fn health_of(report: &ProxyReport, target: &str) -> Option<(TargetHealth, Option<String>, u64)> {
    report.targets.iter().find(|t| t.target == target).map(|t| (t.health, t.reason.clone(), t.in_flight))
}

// ---------------------------------------------------------------------------------------------------------
// Backends.

struct Backend {
    name: &'static str,
    addr: SocketAddr,
    ping: AtomicU16,
    hits: AtomicUsize,
    release: Notify,
}

impl Backend {
    async fn start(name: &'static str) -> Arc<Backend> {
        let (listener, addr) = bind().await;
        let backend = Arc::new(Backend {
            name,
            addr,
            ping: AtomicU16::new(200),
            hits: AtomicUsize::new(0),
            release: Notify::new(),
        });
        let handler_backend = backend.clone();
        serve_on(listener, move |req| handler_backend.clone().handle(req));
        backend
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<TestBody>, BoxError> {
        let path = req.uri().path().to_owned();
        if path == "/ping" {
            let mut r = Response::new(full("pong"));
            *r.status_mut() = StatusCode::from_u16(self.ping.load(Ordering::SeqCst)).expect("status");
            return Ok(r);
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        let (parts, body) = req.into_parts();
        let seen = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut response = match path.as_str() {
            "/reset" => return Err("reset by backend".into()),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Response::new(full("slow"))
            }
            "/hold" => {
                // First chunk now, second when the test releases it: proves the proxy streams.
                let (tx, rx) = mpsc::channel::<Bytes>(2);
                let backend = self.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Bytes::from_static(b"first\n")).await;
                    backend.release.notified().await;
                    let _ = tx.send(Bytes::from_static(b"second\n")).await;
                });
                let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|b| (Ok::<_, BoxError>(Frame::data(b)), rx))
                });
                Response::new(http_body_util::StreamBody::new(stream).boxed_unsync())
            }
            "/echo" => Response::new(body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()),
            "/login" => {
                // The application's own session cookie (application-based stickiness follows it).
                let mut r = Response::new(full(self.name));
                r.headers_mut().insert("set-cookie", "SESSION=s1; Path=/; HttpOnly".parse().expect("hv"));
                r
            }
            _ => Response::new(full(self.name)),
        };
        let h = response.headers_mut();
        h.insert("x-backend", self.name.parse().expect("hv"));
        for name in ["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "x-amzn-trace-id"] {
            if let Ok(v) = seen(name).parse() {
                h.insert(format!("x-seen-{name}").parse::<http::HeaderName>().expect("name"), v);
            }
        }
        Ok(response)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tables, proxies, clients.

fn check() -> HealthCheck {
    HealthCheck {
        path: "/ping".into(),
        interval_secs: 1,
        timeout_secs: 1,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: "200".into(),
        initial_interval_ms: 20,
    }
}

/// A target: its id, the backend behind it, its registration state.
type TargetSpec<'a> = (&'a str, &'a Backend, TargetState);

struct Spec<'a> {
    hosts: &'a [(&'a str, &'a [(&'a str, u32)])],
    groups: &'a [(&'a str, &'a [TargetSpec<'a>])],
}

fn table(version: u64, certs: &[(&str, &IssuedCert)], spec: &Spec<'_>) -> RouteTable {
    RouteTable {
        version,
        certificates: certs
            .iter()
            .map(|(host, c)| Certificate {
                id: format!("cert-{host}"),
                hosts: vec![(*host).into()],
                cert_pem: c.cert_pem.clone(),
                key_pem: c.key_pem.clone(),
            })
            .collect(),
        hosts: spec
            .hosts
            .iter()
            .map(|(host, fwd)| HostRoute {
                host: (*host).into(),
                service: format!("arn:aws:ecs:us-east-1:000000000000:service/default/{host}"),
                forward: fwd
                    .iter()
                    .map(|(tg, w)| WeightedTargetGroup { target_group: (*tg).into(), weight: *w })
                    .collect(),
            })
            .collect(),
        target_groups: spec
            .groups
            .iter()
            .map(|(id, targets)| TargetGroup {
                id: (*id).into(),
                health_check: check(),
                targets: targets
                    .iter()
                    .map(|(tid, b, state)| Target { id: (*tid).into(), addr: b.addr, state: *state })
                    .collect(),
                ..TargetGroup::default()
            })
            .collect(),
        rules: vec![],
        source_filters: vec![],
        stickiness_key: String::new(),
        load_balancers: vec![],
    }
}

fn state_file(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("berth-proxy-it-{name}-{}-{nanos}", std::process::id())).join("routes.json")
}

async fn start_proxy(server_url: String, state: PathBuf) -> Proxy {
    start_proxy_with(server_url, state, |_| {}).await
}

async fn start_proxy_with(server_url: String, state: PathBuf, tweak: impl FnOnce(&mut ProxyConfig)) -> Proxy {
    let mut config = ProxyConfig::new(server_url, TOKEN, state);
    config.https_listen = "127.0.0.1:0".parse().expect("addr");
    config.http_listen = "127.0.0.1:0".parse().expect("addr");
    config.proxy_id = "test-proxy".into();
    config.request_timeout = Duration::from_secs(1);
    config.shutdown_grace = Duration::from_secs(1);
    tweak(&mut config);
    Proxy::start(config).await.expect("proxy starts")
}

async fn wait_version(proxy: &Proxy, version: u64) {
    let started = Instant::now();
    while proxy.table_version() < version {
        assert!(started.elapsed() < WAIT, "proxy never served version {version}");
        tokio::time::sleep(STEP).await;
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// An HTTPS connection to the proxy for `sni`, verified against the CA; returns the sender and the
/// certificate the proxy presented.
async fn connect(proxy: SocketAddr, ca: &Ca, sni: &str, h2: bool) -> (Sender, CertificateDer<'static>) {
    let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
    let config = berth_certs::client_config(&[ca.root_pem()], alpn).expect("client config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(proxy).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("name");
    let tls =
        tokio::time::timeout(WAIT, connector.connect(name, tcp)).await.expect("handshake time").expect("handshake");
    let (_, conn) = tls.get_ref();
    let peer = conn.peer_certificates().expect("peer")[0].clone().into_owned();
    assert_eq!(conn.alpn_protocol(), Some(alpn[0]));
    let io = TokioIo::new(tls);
    let sender = if h2 {
        let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.expect("h2");
        tokio::spawn(c);
        Sender::H2(s)
    } else {
        let (s, c) = hyper::client::conn::http1::handshake(io).await.expect("h1");
        tokio::spawn(c);
        Sender::H1(s)
    };
    (sender, peer)
}

impl Sender {
    async fn send(&mut self, host: &str, path: &str, body: &'static [u8]) -> Response<Incoming> {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let fut = async {
            match self {
                Sender::H1(s) => {
                    let req = Request::builder().method(method).uri(path).header("host", host);
                    s.ready().await.expect("ready");
                    s.send_request(req.body(Full::new(Bytes::from_static(body))).expect("req")).await
                }
                Sender::H2(s) => {
                    let req = Request::builder().method(method).uri(format!("https://{host}{path}"));
                    s.ready().await.expect("ready");
                    s.send_request(req.body(Full::new(Bytes::from_static(body))).expect("req")).await
                }
            }
        };
        tokio::time::timeout(WAIT, fut).await.expect("response in time").expect("response")
    }

    /// Sends `req` (its URI a path; the host is added as Host for HTTP/1 and `:authority` for HTTP/2).
    async fn request(&mut self, host: &str, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
        let (mut parts, body) = req.into_parts();
        let fut = async {
            match self {
                Sender::H1(s) => {
                    parts.headers.insert("host", host.parse().expect("host"));
                    s.ready().await.expect("ready");
                    s.send_request(Request::from_parts(parts, body)).await
                }
                Sender::H2(s) => {
                    parts.uri = format!("https://{host}{}", parts.uri).parse().expect("uri");
                    s.ready().await.expect("ready");
                    s.send_request(Request::from_parts(parts, body)).await
                }
            }
        };
        let response = tokio::time::timeout(WAIT, fut).await.expect("response in time").expect("response");
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect()).await.expect("body in time").expect("body").to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&mut self, host: &str, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let response = self.send(host, path, b"").await;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect()).await.expect("body in time").expect("body").to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }
}

fn der(cert: &IssuedCert) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).expect("der")
}

/// Retries a GET on fresh connections until it answers `want` (targets become healthy asynchronously).
async fn wait_status(proxy: SocketAddr, ca: &Ca, host: &str, want: StatusCode) {
    let started = Instant::now();
    loop {
        let (mut s, _) = connect(proxy, ca, host, false).await;
        if s.get(host, "/").await.0 == want {
            return;
        }
        assert!(started.elapsed() < WAIT, "{host} never answered {want}");
        tokio::time::sleep(STEP).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_https_by_host_with_forwarded_headers_over_h1_and_h2() {
    let ca = Ca::generate().expect("ca");
    let (cert_a, cert_b) =
        (ca.issue(&[HOST.into()], &[]).expect("a"), ca.issue(&["other.localhost".into()], &[]).expect("b"));
    let server = FakeServer::start().await;
    let web = Backend::start("web").await;
    let other = Backend::start("other").await;
    server.publish(table(
        1,
        &[(HOST, &cert_a), ("other.localhost", &cert_b)],
        &Spec {
            hosts: &[(HOST, &[("tg-web", 100)]), ("other.localhost", &[("tg-other", 1)])],
            groups: &[
                ("tg-web", &[("task-web", &web, TargetState::Registered)]),
                ("tg-other", &[("task-other", &other, TargetState::Registered)]),
            ],
        },
    ));
    let proxy = start_proxy(server.url(), state_file("headers")).await;
    wait_version(&proxy, 1).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    wait_status(proxy.https_addr(), &ca, "other.localhost", StatusCode::OK).await;

    for h2 in [false, true] {
        let (mut s, peer) = connect(proxy.https_addr(), &ca, HOST, h2).await;
        assert_eq!(peer, der(&cert_a), "SNI picks the host's certificate");
        for _ in 0..3 {
            // Several requests on one connection (keep-alive / multiplexing).
            let (status, headers, body) = s.get(HOST, "/hello?x=1").await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "web"), "h2={h2}");
            assert_eq!(headers["x-seen-host"], HOST, "the Host header is kept (h2: from :authority)");
            assert_eq!(headers["x-seen-x-forwarded-proto"], "https");
            assert_eq!(headers["x-seen-x-forwarded-port"], proxy.https_addr().port().to_string().as_str());
            assert_eq!(headers["x-seen-x-forwarded-for"], "127.0.0.1");
            let trace = headers["x-seen-x-amzn-trace-id"].to_str().expect("trace");
            assert!(trace.starts_with("Root=1-") && trace.len() == "Root=1-".len() + 8 + 1 + 24, "{trace}");
        }
        // The same connection's Host decides the route (not SNI); an unknown host is 404.
        let (status, _, body) = s.get("other.localhost", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "other"));
        let (status, _, body) = s.get("unknown.localhost", "/").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        // A request body is forwarded and the response streamed back.
        let response = s.send(HOST, "/echo", b"ping-pong-body").await;
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"ping-pong-body");
    }
    let (_, peer) = connect(proxy.https_addr(), &ca, "other.localhost", true).await;
    assert_eq!(peer, der(&cert_b));

    let report = server
        .wait_report("both targets healthy", |r| {
            r.version == 1
                && health_of(r, "task-web").is_some_and(|h| h.0 == TargetHealth::Healthy && h.2 == 0)
                && health_of(r, "task-other").is_some_and(|h| h.0 == TargetHealth::Healthy)
        })
        .await;
    assert_eq!(report.proxy_id, "test-proxy");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_listener_redirects_to_https() {
    let server = FakeServer::start().await;
    let proxy = start_proxy(server.url(), state_file("redirect")).await;
    let cases = [
        (HOST.to_owned(), "/a/b?c=1", format!("https://{HOST}:{}/a/b?c=1", proxy.https_addr().port())),
        (
            format!("Upper.Localhost:{}", proxy.http_addr().port()),
            "/",
            format!("https://upper.localhost:{}/", proxy.https_addr().port()),
        ),
    ];
    for (host, path, want) in cases {
        let tcp = TcpStream::connect(proxy.http_addr()).await.expect("connect");
        let (mut s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("h1");
        tokio::spawn(c);
        let req = Request::get(path).header("host", host.as_str()).body(Empty::<Bytes>::new()).expect("req");
        let response = tokio::time::timeout(WAIT, s.send_request(req)).await.expect("in time").expect("response");
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(response.headers()["location"], want.as_str());
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_round_robin_and_health_transitions() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let (a, b1, b2, c) =
        (Backend::start("a").await, Backend::start("b1").await, Backend::start("b2").await, Backend::start("c").await);
    c.ping.store(503, Ordering::SeqCst);
    server.publish(table(
        3,
        &[(HOST, &cert)],
        &Spec {
            hosts: &[(HOST, &[("tg-a", 1), ("tg-b", 3), ("tg-c", 0)])],
            groups: &[
                ("tg-a", &[("a", &a, TargetState::Registered)]),
                ("tg-b", &[("b1", &b1, TargetState::Registered), ("b2", &b2, TargetState::Registered)]),
                ("tg-c", &[("c", &c, TargetState::Registered)]),
            ],
        },
    ));
    let proxy = start_proxy(server.url(), state_file("weights")).await;
    let healthy = |r: &ProxyReport, t: &str| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Healthy);
    // Weight-0 groups are probed too: the server needs their health for deployments.
    let report = server
        .wait_report("a, b1, b2 healthy; c failing", |r| {
            ["a", "b1", "b2"].iter().all(|t| healthy(r, t))
                && health_of(r, "c") == Some((TargetHealth::Initial, Some("Target.ResponseCodeMismatch".into()), 0))
        })
        .await;
    assert_eq!(report.version, 3);

    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, true).await;
    let mut counts = HashMap::<String, u32>::new();
    for _ in 0..400 {
        let (status, _, body) = s.get(HOST, "/").await;
        assert_eq!(status, StatusCode::OK);
        *counts.entry(body).or_default() += 1;
    }
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert!(count("a").abs_diff(100) <= 3, "{counts:?}");
    assert!(count("b1").abs_diff(150) <= 3 && count("b2").abs_diff(150) <= 3, "{counts:?}");
    assert_eq!(count("c"), 0, "{counts:?}");

    // b1 starts failing its checks: unhealthy after 2 failures, then gets no traffic.
    b1.ping.store(500, Ordering::SeqCst);
    server
        .wait_report("b1 unhealthy", |r| {
            health_of(r, "b1") == Some((TargetHealth::Unhealthy, Some("Target.ResponseCodeMismatch".into()), 0))
        })
        .await;
    let before = b1.hits.load(Ordering::SeqCst);
    for _ in 0..40 {
        assert_eq!(s.get(HOST, "/").await.0, StatusCode::OK);
    }
    assert_eq!(b1.hits.load(Ordering::SeqCst), before, "an unhealthy target gets no request");

    // Every target of the host failing: ALB fails open and routes to all of them, the weight-0 group's aside.
    for backend in [&a, &b2] {
        backend.ping.store(500, Ordering::SeqCst);
    }
    server
        .wait_report("all unhealthy", |r| {
            ["a", "b1", "b2"].iter().all(|t| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Unhealthy))
        })
        .await;
    let mut open = HashMap::<String, u32>::new();
    for _ in 0..40 {
        let (status, _, body) = s.get(HOST, "/").await;
        assert_eq!(status, StatusCode::OK);
        *open.entry(body).or_default() += 1;
    }
    let mut served: Vec<&str> = open.keys().map(String::as_str).collect();
    served.sort_unstable();
    assert_eq!(served, ["a", "b1", "b2"], "fail-open traffic: {open:?}");
    // And back: healthy again after 2 successes.
    a.ping.store(200, Ordering::SeqCst);
    server.wait_report("a healthy again", |r| healthy(r, "a")).await;
    let (status, _, body) = s.get(HOST, "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_target_finishes_streams_and_gets_no_new_requests() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let (one, two) = (Backend::start("one").await, Backend::start("two").await);
    let certs = [(HOST, &cert)];
    let spec = |state_one| {
        table(
            if state_one == TargetState::Registered { 1 } else { 2 },
            &certs,
            &Spec {
                hosts: &[(HOST, &[("tg", 1)])],
                groups: &[("tg", &[("one", &one, state_one), ("two", &two, TargetState::Registered)])],
            },
        )
    };
    server.publish(spec(TargetState::Registered));
    let proxy = start_proxy(server.url(), state_file("draining")).await;
    let healthy = |r: &ProxyReport, t: &str| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Healthy);
    server.wait_report("both healthy", |r| healthy(r, "one") && healthy(r, "two")).await;

    // Two held streams, one per target (round robin); their first chunk arrives before the backend ends
    // the body, so the proxy does not buffer.
    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, true).await;
    let mut held = HashMap::new();
    for _ in 0..2 {
        let response = s.send(HOST, "/hold", b"").await;
        assert_eq!(response.status(), StatusCode::OK);
        let name = response.headers()["x-backend"].to_str().expect("name").to_owned();
        let mut body = response.into_body();
        let frame = tokio::time::timeout(WAIT, body.frame()).await.expect("first chunk in time");
        let first = frame.expect("frame").expect("ok").into_data().expect("data");
        assert_eq!(&first[..], b"first\n");
        held.insert(name, body);
    }
    assert_eq!(held.len(), 2, "round robin sent one stream to each target");
    server
        .wait_report("one in flight each", |r| {
            health_of(r, "one").is_some_and(|h| h.2 == 1) && health_of(r, "two").is_some_and(|h| h.2 == 1)
        })
        .await;

    // Target one drains: reported draining with its in-flight stream, and gets no new request.
    server.publish(spec(TargetState::Draining));
    wait_version(&proxy, 2).await;
    server
        .wait_report("one draining", |r| {
            r.version == 2
                && health_of(r, "one")
                    == Some((TargetHealth::Draining, Some("Target.DeregistrationInProgress".into()), 1))
        })
        .await;
    let before = one.hits.load(Ordering::SeqCst);
    for _ in 0..10 {
        let (status, _, body) = s.get(HOST, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "two"));
    }
    assert_eq!(one.hits.load(Ordering::SeqCst), before);

    // The held streams finish; in-flight counts drop to zero.
    one.release.notify_one();
    two.release.notify_one();
    for (name, body) in held {
        let rest = tokio::time::timeout(WAIT, body.collect()).await.expect("rest in time").expect("rest").to_bytes();
        assert_eq!(&rest[..], b"second\n", "{name}");
    }
    server
        .wait_report("nothing in flight", |r| {
            health_of(r, "one").is_some_and(|h| h.2 == 0) && health_of(r, "two").is_some_and(|h| h.2 == 0)
        })
        .await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_502_and_504() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let backend = Backend::start("web").await;
    server.publish(table(
        1,
        &[(HOST, &cert)],
        &Spec { hosts: &[(HOST, &[("tg", 1)])], groups: &[("tg", &[("web", &backend, TargetState::Registered)])] },
    ));
    let proxy = start_proxy(server.url(), state_file("errors")).await;
    wait_version(&proxy, 1).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, false).await;
    let (status, _, _) = s.get(HOST, "/reset").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let started = Instant::now();
    let (status, _, _) = s.get(HOST, "/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_millis(2500), "504 after the 1 s request timeout");
    // The connection and the target still work afterwards, and nothing stays counted in flight.
    let (status, _, body) = s.get(HOST, "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "web"));
    server.wait_report("nothing in flight", |r| health_of(r, "web").is_some_and(|h| h.2 == 0)).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_saved_table_while_the_server_is_down() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let backend = Backend::start("web").await;
    server.publish(table(
        7,
        &[(HOST, &cert)],
        &Spec { hosts: &[(HOST, &[("tg", 1)])], groups: &[("tg", &[("web", &backend, TargetState::Registered)])] },
    ));
    let state = state_file("saved");
    let proxy = start_proxy(server.url(), state.clone()).await;
    wait_version(&proxy, 7).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    proxy.stop().await;

    // A server that is not there: the proxy starts from its state file and serves (certificate included).
    let (listener, dead) = bind().await;
    drop(listener);
    let proxy = start_proxy(format!("http://{dead}"), state.clone()).await;
    assert_eq!(proxy.table_version(), 7, "the saved table is served at once");
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    proxy.stop().await;
    if let Some(dir) = state.parent() {
        std::fs::remove_dir_all(dir).ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_but_idle_keep_alive_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let backend = Backend::start("web").await;
    server.publish(table(
        1,
        &[(HOST, &cert)],
        &Spec { hosts: &[(HOST, &[("tg", 1)])], groups: &[("tg", &[("web", &backend, TargetState::Registered)])] },
    ));
    let mut config = ProxyConfig::new(server.url(), TOKEN, state_file("slow"));
    config.https_listen = "127.0.0.1:0".parse().expect("addr");
    config.http_listen = "127.0.0.1:0".parse().expect("addr");
    config.proxy_id = "test-proxy".into();
    config.header_read_timeout = Duration::from_millis(300);
    config.shutdown_grace = Duration::from_secs(1);
    let proxy = Proxy::start(config).await.expect("proxy");
    wait_version(&proxy, 1).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;

    // Idle keep-alive longer than the header-read timeout: the connection still serves.
    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, false).await;
    assert_eq!(s.get(HOST, "/").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s.get(HOST, "/").await.0, StatusCode::OK);

    // Half a request head, then silence: the proxy closes the connection.
    let config = berth_certs::client_config(&[ca.root_pem()], &[b"http/1.1"]).expect("client config");
    let tcp = TcpStream::connect(proxy.https_addr()).await.expect("connect");
    let name = ServerName::try_from(HOST.to_owned()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("handshake");
    tls.write_all(b"GET / HTTP/1.1\r\nHo").await.expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(WAIT, tls.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "no response, just a close: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Listener rules, metrics, access logs, WebSocket, h2c.

fn rule(arn: &str, priority: u32, conditions: Vec<Condition>, action: RuleAction) -> Rule {
    Rule { arn: arn.into(), priority, conditions, actions: vec![action], load_balancer: None }
}

fn forward_to(groups: &[(&str, u32)], stickiness: Option<u32>) -> RuleAction {
    RuleAction::Forward {
        target_groups: groups
            .iter()
            .map(|(tg, w)| WeightedTargetGroup { target_group: (*tg).into(), weight: *w })
            .collect(),
        stickiness: stickiness.map(|duration_secs| Stickiness { duration_secs }),
    }
}

fn values(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

async fn scrape(addr: SocketAddr) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect metrics");
    let (mut s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("h1");
    tokio::spawn(c);
    let req = Request::get("/metrics").header("host", "metrics").body(Empty::<Bytes>::new()).expect("req");
    let response = s.send_request(req).await.expect("metrics response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of one sample line (`name{labels} value`) in a scrape, 0 when absent.
fn metric(text: &str, series: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_rules_metrics_and_access_log() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into(), "*.localhost".into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let (web, api, beta, canary) = (
        Backend::start("web").await,
        Backend::start("api").await,
        Backend::start("beta").await,
        Backend::start("canary").await,
    );
    let mut t = table(
        1,
        &[(HOST, &cert)],
        &Spec {
            hosts: &[(HOST, &[("tg-web", 1)])],
            groups: &[
                ("tg-web", &[("web", &web, TargetState::Registered)]),
                ("tg-api", &[("api", &api, TargetState::Registered)]),
                ("tg-beta", &[("beta", &beta, TargetState::Registered)]),
                ("tg-canary", &[("canary", &canary, TargetState::Registered)]),
            ],
        },
    );
    let host = |h: &str| Condition::HostHeader { values: values(&[h]) };
    t.rules = vec![
        rule(
            "r-api",
            10,
            vec![host(HOST), Condition::PathPattern { values: values(&["/api/*"]) }],
            forward_to(&[("tg-api", 1)], None),
        ),
        rule(
            "r-beta",
            20,
            vec![Condition::HttpHeader { name: "X-Channel".into(), values: values(&["beta*"]) }],
            forward_to(&[("tg-beta", 1)], None),
        ),
        rule(
            "r-query",
            25,
            vec![Condition::QueryString { values: vec![QueryStringPair { key: Some("v".into()), value: "2".into() }] }],
            forward_to(&[("tg-beta", 1)], None),
        ),
        rule(
            "r-delete",
            26,
            vec![host(HOST), Condition::HttpRequestMethod { values: values(&["DELETE"]) }],
            RuleAction::FixedResponse(FixedResponse {
                status_code: 405,
                content_type: Some("application/json".into()),
                message_body: Some("{\"error\":\"no\"}".into()),
            }),
        ),
        // A user's allow-list: /admin only from 10.0.0.0/8, everyone else gets 403.
        rule(
            "r-admin-allow",
            30,
            vec![
                Condition::PathPattern { values: values(&["/admin*"]) },
                Condition::SourceIp { values: values(&["10.0.0.0/8"]) },
            ],
            forward_to(&[("tg-web", 1)], None),
        ),
        rule(
            "r-admin-deny",
            31,
            vec![Condition::PathPattern { values: values(&["/admin*"]) }],
            RuleAction::FixedResponse(FixedResponse {
                status_code: 403,
                content_type: None,
                message_body: Some("denied".into()),
            }),
        ),
        rule(
            "r-old",
            40,
            vec![host("old-*.localhost")],
            RuleAction::Redirect(Redirect {
                protocol: None,
                host: Some("new.localhost".into()),
                port: None,
                path: Some("/moved/#{path}".into()),
                query: None,
                status_code: RedirectStatus::Http302,
            }),
        ),
        rule("r-sticky", 50, vec![host("sticky.localhost")], forward_to(&[("tg-web", 1), ("tg-canary", 1)], Some(300))),
        // An invalid rule is not served (and does not break the table).
        rule(
            "r-bad",
            1,
            vec![Condition::SourceIp { values: values(&["not-a-cidr"]) }],
            forward_to(&[("tg-api", 1)], None),
        ),
    ];
    server.publish(t);
    let log_path = state_file("access-log").with_file_name("access.log");
    let log_for_config = log_path.clone();
    let proxy = start_proxy_with(server.url(), state_file("rules"), move |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.access_log = Some(log_for_config);
        c.http_forward = true;
    })
    .await;
    wait_version(&proxy, 1).await;
    let healthy = |r: &ProxyReport, t: &str| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Healthy);
    server.wait_report("all healthy", |r| ["web", "api", "beta", "canary"].iter().all(|t| healthy(r, t))).await;
    let metrics_addr = proxy.metrics_addr().expect("metrics enabled");
    let before = scrape(metrics_addr).await;

    for h2 in [false, true] {
        let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, h2).await;
        let get = |path: &str| Request::get(path).body(Full::new(Bytes::new())).expect("req");
        // (host, request, want status, want body)
        let cases: Vec<(&str, Request<Full<Bytes>>, StatusCode, &str)> = vec![
            (HOST, get("/"), StatusCode::OK, "web"),
            (HOST, get("/api/users"), StatusCode::OK, "api"),
            ("other.localhost", get("/api/users"), StatusCode::NOT_FOUND, "no service at this host\n"),
            (
                HOST,
                Request::get("/").header("x-channel", "Beta-7").body(Full::default()).expect("req"),
                StatusCode::OK,
                "beta",
            ),
            (HOST, get("/?a=1&v=2"), StatusCode::OK, "beta"),
            (
                HOST,
                Request::delete("/x").body(Full::default()).expect("req"),
                StatusCode::METHOD_NOT_ALLOWED,
                "{\"error\":\"no\"}",
            ),
            (HOST, get("/admin/panel"), StatusCode::FORBIDDEN, "denied"),
            ("other.localhost", get("/admin"), StatusCode::FORBIDDEN, "denied"),
            ("unknown.localhost", get("/"), StatusCode::NOT_FOUND, "no service at this host\n"),
        ];
        for (host, req, want_status, want_body) in cases {
            let what = format!("h2={h2} {host} {} {}", req.method(), req.uri());
            let (status, headers, body) = s.request(host, req).await;
            assert_eq!((status, body.as_str()), (want_status, want_body), "{what}");
            if want_status == StatusCode::METHOD_NOT_ALLOWED {
                assert_eq!(headers["content-type"], "application/json");
            }
        }
        let (status, headers, _) = s.request("old-app.localhost", get("/a/b?c=1")).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(
            headers["location"],
            format!("https://new.localhost:{}/moved/a/b?c=1", proxy.https_addr().port()).as_str()
        );
    }

    // Stickiness: the cookie pins the group the first response chose.
    // (SNI names the certificate's host; the Host header picks the rule.)
    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, false).await;
    let (status, headers, first) = s.get("sticky.localhost", "/").await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers["set-cookie"].to_str().expect("cookie").to_owned();
    assert!(cookie.starts_with("AWSALBTG=") && cookie.contains("Max-Age=300"), "{cookie}");
    let pair = cookie.split(';').next().expect("pair").to_owned();
    for _ in 0..10 {
        let req = Request::get("/").header("cookie", pair.as_str()).body(Full::default()).expect("req");
        let (_, _, body) = s.request("sticky.localhost", req).await;
        assert_eq!(body, first, "pinned by {pair}");
    }
    let unpinned: std::collections::HashSet<String> = {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            seen.insert(s.get("sticky.localhost", "/").await.2);
        }
        seen
    };
    assert_eq!(unpinned.len(), 2, "without the cookie both groups serve: {unpinned:?}");

    // The plain HTTP listener serves the rules too when forwarding is on.
    let tcp = TcpStream::connect(proxy.http_addr()).await.expect("connect");
    let (mut plain, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("h1");
    tokio::spawn(c);
    let req = Request::get("/api/x").header("host", HOST).body(Empty::<Bytes>::new()).expect("req");
    let response = plain.send_request(req).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-seen-x-forwarded-proto"], "http");

    // The counters moved.
    let after = scrape(metrics_addr).await;
    let moved = |series: &str| metric(&after, series) - metric(&before, series);
    let svc = format!("load_balancer=\"arn:aws:ecs:us-east-1:000000000000:service/default/{HOST}\"");
    assert_eq!(moved(&format!("berth_lb_requests_total{{{svc}}}")), 2, "{after}");
    assert_eq!(moved(&format!("berth_lb_httpcode_target_2xx_total{{{svc}}}")), 2);
    assert_eq!(moved("berth_lb_requests_total{load_balancer=\"r-api\"}"), 3);
    assert_eq!(moved("berth_lb_httpcode_elb_4xx_total{load_balancer=\"r-delete\"}"), 2);
    assert_eq!(moved("berth_lb_httpcode_elb_4xx_total{load_balancer=\"r-admin-deny\"}"), 4);
    assert_eq!(moved("berth_lb_httpcode_elb_3xx_total{load_balancer=\"r-old\"}"), 2);
    assert_eq!(moved("berth_lb_httpcode_elb_4xx_total{load_balancer=\"-\"}"), 4, "unmatched 404s");
    assert_eq!(moved("berth_tg_requests_total{target_group=\"tg-api\"}"), 3);
    assert_eq!(moved("berth_tg_target_response_time_seconds_count{target_group=\"tg-api\"}"), 3);
    assert_eq!(moved("berth_tg_httpcode_target_2xx_total{target_group=\"tg-beta\"}"), 4);
    assert_eq!(metric(&after, "berth_tg_healthy_hosts{target_group=\"tg-web\"}"), 1);
    assert_eq!(metric(&after, "berth_tg_unhealthy_hosts{target_group=\"tg-web\"}"), 0);
    assert!(metric(&after, "berth_lb_new_connections_total{listener=\"https\"}") >= 3);
    assert!(metric(&after, "berth_lb_active_connections{listener=\"https\"}") >= 1);
    assert_eq!(metric(&after, "berth_lb_new_connections_total{listener=\"http\"}"), 1);

    // The access log has one ALB-format line per request.
    let started = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.iter().any(|l| l.starts_with("http ")) {
            break lines;
        }
        assert!(started.elapsed() < WAIT, "access log incomplete: {lines:?}");
        tokio::time::sleep(STEP).await;
    };
    let api_line = lines.iter().find(|l| l.contains("/api/users HTTP/1.1")).expect("an api line");
    let fields: Vec<&str> = api_line.split(' ').collect();
    assert_eq!(fields[0], "https", "{api_line}");
    assert_eq!(fields[2], "r-api");
    assert!(fields[3].starts_with("127.0.0.1:"), "{api_line}");
    assert_eq!(fields[4], api.addr.to_string());
    assert_eq!((fields[8], fields[9]), ("200", "200"));
    // (The quoted request has spaces: "GET url HTTP/1.1" spans fields 12..=14.)
    assert_eq!(fields[12], "\"GET");
    assert_eq!(fields[13], format!("https://{HOST}:{}/api/users", proxy.https_addr().port()));
    assert_eq!((fields[14], fields[15]), ("HTTP/1.1\"", "\"-\""), "{api_line}");
    assert_ne!(fields[16], "-", "a cipher: {api_line}");
    assert!(fields[17].starts_with("TLSv1."), "{api_line}");
    assert_eq!(fields[18], "tg-api");
    assert!(fields[19].starts_with("\"Root=1-"), "{api_line}");
    assert_eq!(fields[20], format!("\"{HOST}\""));
    assert_eq!((fields[22], fields[24]), ("10", "\"forward\""), "{api_line}");
    assert_eq!(fields.len(), 32, "{api_line}");
    assert!(lines.iter().any(|l| l.starts_with("h2 ") && l.contains(" 405 - ") && l.contains("\"fixed-response\"")));
    assert!(lines.iter().any(|l| l.contains("\"redirect\" \"https://new.localhost:")));
    let plain_line = lines.iter().find(|l| l.starts_with("http ")).expect("plain line");
    assert!(plain_line.contains(" - - tg-api "), "no TLS fields on plain HTTP: {plain_line}");
    proxy.stop().await;
    std::fs::remove_file(&log_path).ok();
}

/// A minimal WebSocket echo server: the RFC 6455 handshake, then echoes text frames until a close frame.
async fn websocket_echo_server() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                if !head.to_ascii_lowercase().contains("upgrade: websocket") {
                    // A health check.
                    let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                    return;
                }
                let key = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
                    })
                    .expect("key");
                let seen_xff = head.to_ascii_lowercase().contains("x-forwarded-for: 127.0.0.1");
                let accept = websocket_accept(&key);
                let reply = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {accept}\r\nX-Seen-Xff: {seen_xff}\r\n\r\n"
                );
                tcp.write_all(reply.as_bytes()).await.expect("101");
                loop {
                    let mut h = [0u8; 2];
                    if tcp.read_exact(&mut h).await.is_err() {
                        return;
                    }
                    let opcode = h[0] & 0x0f;
                    let len = usize::from(h[1] & 0x7f);
                    assert!(h[1] & 0x80 != 0 && len < 126, "masked short frames only");
                    let mut mask = [0u8; 4];
                    tcp.read_exact(&mut mask).await.expect("mask");
                    let mut payload = vec![0u8; len];
                    tcp.read_exact(&mut payload).await.expect("payload");
                    for (i, b) in payload.iter_mut().enumerate() {
                        *b ^= mask[i % 4];
                    }
                    let mut frame = vec![0x80 | opcode, len as u8];
                    frame.extend_from_slice(&payload);
                    tcp.write_all(&frame).await.expect("echo");
                    if opcode == 0x8 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn websocket_accept(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in digest.as_ref().chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn websocket_accept_matches_rfc_6455() {
    assert_eq!(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through_and_counts_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let ws_addr = websocket_echo_server().await;
    let mut t = table(1, &[(HOST, &cert)], &Spec { hosts: &[], groups: &[] });
    t.rules.push(rule(
        "r-ws",
        1,
        vec![Condition::PathPattern { values: values(&["/ws"]) }],
        forward_to(&[("tg-ws", 1)], None),
    ));
    t.target_groups.push(TargetGroup {
        id: "tg-ws".into(),
        health_check: check(),
        targets: vec![Target { id: "ws".into(), addr: ws_addr, state: TargetState::Registered }],
        ..TargetGroup::default()
    });
    server.publish(t);
    let proxy = start_proxy_with(server.url(), state_file("websocket"), |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    wait_version(&proxy, 1).await;
    server.wait_report("ws target healthy", |r| health_of(r, "ws").is_some_and(|h| h.0 == TargetHealth::Healthy)).await;

    let config = berth_certs::client_config(&[ca.root_pem()], &[b"http/1.1"]).expect("client config");
    let tcp = TcpStream::connect(proxy.https_addr()).await.expect("connect");
    let name = ServerName::try_from(HOST.to_owned()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("handshake");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).await.expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tls.read(&mut byte)).await.expect("101 in time").expect("read");
        assert_eq!(n, 1, "closed before the 101: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("connection: upgrade"), "{head}");
    assert!(head.contains(&format!("sec-websocket-accept: {}", websocket_accept(key).to_ascii_lowercase())), "{head}");
    assert!(head.contains("x-seen-xff: true"), "forwarded headers are set on the upgrade: {head}");

    let frame = |opcode: u8, payload: &[u8]| {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    };
    for message in [&b"hello"[..], b"second message", b""] {
        tls.write_all(&frame(0x1, message)).await.expect("send");
        let mut echoed = vec![0u8; 2 + message.len()];
        tokio::time::timeout(WAIT, tls.read_exact(&mut echoed)).await.expect("echo in time").expect("echo");
        assert_eq!(echoed[0], 0x81);
        assert_eq!(&echoed[2..], message);
    }
    // Open WebSocket: counted in flight on its target and as an active WebSocket connection.
    server.wait_report("ws in flight", |r| health_of(r, "ws").is_some_and(|h| h.2 == 1)).await;
    let metrics_addr = proxy.metrics_addr().expect("metrics");
    assert_eq!(metric(&scrape(metrics_addr).await, "berth_lb_active_connections{listener=\"websocket\"}"), 1);

    // The client closes: the echo server answers the close frame and hangs up; the tunnel ends.
    tls.write_all(&frame(0x8, b"")).await.expect("close");
    let mut close = [0u8; 2];
    tokio::time::timeout(WAIT, tls.read_exact(&mut close)).await.expect("close echo in time").expect("close echo");
    assert_eq!(close[0], 0x88);
    server.wait_report("ws done", |r| health_of(r, "ws").is_some_and(|h| h.2 == 0)).await;
    let text = scrape(metrics_addr).await;
    assert_eq!(metric(&text, "berth_lb_active_connections{listener=\"websocket\"}"), 0);
    assert_eq!(metric(&text, "berth_lb_new_connections_total{listener=\"websocket\"}"), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_targets_and_least_outstanding_requests() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    // An HTTP/2-only (prior knowledge) backend.
    let (listener, h2_addr) = bind().await;
    let slow = Arc::new(Notify::new());
    let slow_for_server = slow.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let slow = slow_for_server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let slow = slow.clone();
                    async move {
                        if req.uri().path() == "/hold" {
                            slow.notified().await;
                        }
                        let seen = format!(
                            "{:?} host={} authority={}",
                            req.version(),
                            req.headers().get("host").and_then(|v| v.to_str().ok()).unwrap_or("-"),
                            req.uri().authority().map_or("-", |a| a.as_str())
                        );
                        Ok::<_, Infallible>(Response::new(full(seen)))
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let mut t = table(
        1,
        &[(HOST, &cert)],
        &Spec {
            hosts: &[(HOST, &[("tg-lor", 1)])],
            groups: &[("tg-lor", &[("a", &a, TargetState::Registered), ("b", &b, TargetState::Registered)])],
        },
    );
    t.target_groups[0].algorithm = Algorithm::LeastOutstandingRequests;
    t.target_groups.push(TargetGroup {
        id: "tg-h2".into(),
        health_check: check(),
        targets: vec![Target { id: "h2".into(), addr: h2_addr, state: TargetState::Registered }],
        protocol_version: ProtocolVersion::Http2,
        ..TargetGroup::default()
    });
    t.rules.push(rule(
        "r-h2",
        1,
        vec![Condition::HostHeader { values: values(&["h2.localhost"]) }],
        forward_to(&[("tg-h2", 1)], None),
    ));
    server.publish(t);
    let proxy = start_proxy(server.url(), state_file("h2c")).await;
    wait_version(&proxy, 1).await;
    let healthy = |r: &ProxyReport, t: &str| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Healthy);
    // The h2c target is health-checked over h2c too.
    server.wait_report("a, b, h2 healthy", |r| healthy(r, "a") && healthy(r, "b") && healthy(r, "h2")).await;

    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, true).await;
    for h2 in [false, true] {
        let (mut c, _) = connect(proxy.https_addr(), &ca, HOST, h2).await;
        let (status, _, body) = c.get("h2.localhost", "/x").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.starts_with("HTTP/2.0 host=h2.localhost"), "h2={h2}: {body}");
    }

    // Least outstanding requests: with a request held on one target, new ones go to the other.
    let (mut hold_conn, _) = connect(proxy.https_addr(), &ca, HOST, true).await;
    let held = hold_conn.send(HOST, "/hold", b"").await;
    let busy = held.headers()["x-backend"].to_str().expect("name").to_owned();
    for _ in 0..6 {
        let (status, _, body) = s.get(HOST, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(body, busy, "least outstanding avoids the busy target");
    }
    a.release.notify_one();
    b.release.notify_one();
    drop(held);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificates_serve_new_handshakes_and_keep_open_connections() {
    let ca = Ca::generate().expect("ca");
    let old = ca.issue(&[HOST.into()], &[]).expect("old");
    let server = FakeServer::start().await;
    let web = Backend::start("web").await;
    let spec = Spec {
        hosts: &[(HOST, &[("tg-web", 1)])],
        groups: &[("tg-web", &[("task-web", &web, TargetState::Registered)])],
    };
    server.publish(table(1, &[(HOST, &old)], &spec));
    let proxy = start_proxy(server.url(), state_file("cert-renewal")).await;
    wait_version(&proxy, 1).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    let (mut h1, peer1) = connect(proxy.https_addr(), &ca, HOST, false).await;
    let (mut h2, peer2) = connect(proxy.https_addr(), &ca, HOST, true).await;
    assert_eq!((peer1.clone(), peer2), (der(&old), der(&old)));
    assert_eq!(h1.get(HOST, "/").await.0, StatusCode::OK);

    // The server renews the certificate (same host, new key) and publishes a new table.
    let new = ca.issue(&[HOST.into()], &[]).expect("new");
    assert_ne!(der(&new), der(&old));
    server.publish(table(2, &[(HOST, &new)], &spec));
    wait_version(&proxy, 2).await;
    // Connections opened before the swap keep working (their TLS session is not touched)...
    for _ in 0..3 {
        let (status, _, body) = h1.get(HOST, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "web"));
        let (status, _, body) = h2.get(HOST, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "web"));
    }
    // ... and every new handshake gets the new certificate, over HTTP/1.1 and HTTP/2.
    for h2 in [false, true] {
        let (mut s, peer) = connect(proxy.https_addr(), &ca, HOST, h2).await;
        assert_eq!(peer, der(&new), "h2={h2}");
        assert_eq!(s.get(HOST, "/").await.0, StatusCode::OK);
    }
    ca.verify(&new.cert_pem, HOST).expect("valid");
    proxy.stop().await;
}

/// The value of the Set-Cookie named `name` (up to its first `;`).
fn set_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next().and_then(|kv| kv.strip_prefix(name)).and_then(|v| v.strip_prefix('=')))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_stickiness_pins_clients_by_cookie() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let spec = Spec {
        hosts: &[(HOST, &[("tg", 1)])],
        groups: &[("tg", &[("a", &a, TargetState::Registered), ("b", &b, TargetState::Registered)])],
    };
    let sticky = |version: u64, mode: TargetStickiness| {
        let mut t = table(version, &[(HOST, &cert)], &spec);
        t.target_groups[0].stickiness = Some(mode);
        t.stickiness_key = "test-stickiness-key".into();
        t
    };
    server.publish(sticky(1, TargetStickiness::LbCookie { duration_secs: 600 }));
    let proxy = start_proxy(server.url(), state_file("target-stickiness")).await;
    server
        .wait_report("both healthy", |r| {
            ["a", "b"].iter().all(|t| health_of(r, t).is_some_and(|h| h.0 == TargetHealth::Healthy))
        })
        .await;
    let (mut s, _) = connect(proxy.https_addr(), &ca, HOST, false).await;
    let get = |cookie: Option<String>| {
        let mut req = Request::get("/");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.body(Full::new(Bytes::new())).expect("req")
    };
    // Without a cookie: the two targets alternate, and every response carries AWSALB and AWSALBCORS.
    let mut bodies = Vec::new();
    let mut cookies = HashMap::new();
    for _ in 0..4 {
        let (status, headers, body) = s.request(HOST, get(None)).await;
        assert_eq!(status, StatusCode::OK);
        let alb = set_cookie(&headers, "AWSALB").expect("AWSALB").to_owned();
        assert_eq!(set_cookie(&headers, "AWSALBCORS"), Some(alb.as_str()));
        let cors =
            headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with("AWSALBCORS="));
        assert!(cors.is_some_and(|c| c.ends_with("; SameSite=None; Secure")), "{cors:?}");
        cookies.insert(body.clone(), alb);
        bodies.push(body);
    }
    assert_eq!(bodies, ["a", "b", "a", "b"]);
    // With a target's cookie: always that target, on new connections too.
    for target in ["a", "b"] {
        for _ in 0..3 {
            let (mut fresh, _) = connect(proxy.https_addr(), &ca, HOST, true).await;
            for _ in 0..3 {
                let (status, _, body) = fresh.request(HOST, get(Some(format!("AWSALB={}", cookies[target])))).await;
                assert_eq!((status, body.as_str()), (StatusCode::OK, target));
            }
        }
    }
    // A cookie from another server's key pins nothing.
    // (Its last character is changed, to one it is not: appending a fixed "0" forged nothing one time in 16.)
    let (kept, last) = cookies["a"].split_at(cookies["a"].len() - 1);
    let forged = format!("AWSALB={kept}{}", if last == "0" { "1" } else { "0" });
    let picked: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(s.request(HOST, get(Some(forged.clone()))).await.2);
        }
        v
    };
    assert!(picked.contains(&"a".to_owned()) && picked.contains(&"b".to_owned()), "{picked:?}");
    // The pinned target fails its checks: the request goes to the other one, and the cookie follows.
    a.ping.store(500, Ordering::SeqCst);
    server.wait_report("a unhealthy", |r| health_of(r, "a").is_some_and(|h| h.0 == TargetHealth::Unhealthy)).await;
    let (status, headers, body) = s.request(HOST, get(Some(format!("AWSALB={}", cookies["a"])))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "b"));
    let moved = set_cookie(&headers, "AWSALB").expect("cookie").to_owned();
    a.ping.store(200, Ordering::SeqCst);
    server.wait_report("a healthy", |r| health_of(r, "a").is_some_and(|h| h.0 == TargetHealth::Healthy)).await;
    for _ in 0..4 {
        assert_eq!(s.request(HOST, get(Some(format!("AWSALB={moved}")))).await.2, "b");
    }

    // Application-based: the load balancer's cookie appears when the application sets its own.
    server.publish(sticky(2, TargetStickiness::AppCookie { cookie_name: "SESSION".into(), duration_secs: 600 }));
    wait_version(&proxy, 2).await;
    let (_, headers, _) = s.request(HOST, get(None)).await;
    assert_eq!(set_cookie(&headers, "AWSALBAPP-0"), None, "no application cookie, no AWSALBAPP");
    let (_, headers, target) =
        s.request(HOST, Request::get("/login").body(Full::new(Bytes::new())).expect("req")).await;
    let app = set_cookie(&headers, "AWSALBAPP-0").expect("AWSALBAPP-0").to_owned();
    assert_eq!(set_cookie(&headers, "SESSION"), Some("s1"), "the application's cookie passes through");
    for _ in 0..4 {
        let (_, _, body) = s.request(HOST, get(Some(format!("SESSION=s1; AWSALBAPP-0={app}")))).await;
        assert_eq!(body, target);
    }
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP/1.1 fast path, byte by byte.

/// Writes `parts` (pausing between them, so bodies arrive in pieces) and reads until the proxy closes.
async fn raw_exchange(addr: SocketAddr, parts: &[&str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    for part in parts {
        tcp.write_all(part.as_bytes()).await.expect("write");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await.expect("closed in time").expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_fast_path_pipelines_streams_bodies_and_hands_over_to_hyper() {
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let backend = Backend::start("web").await;
    server.publish(table(
        1,
        &[(HOST, &cert)],
        &Spec { hosts: &[(HOST, &[("tg", 1)])], groups: &[("tg", &[("web", &backend, TargetState::Registered)])] },
    ));
    let proxy = start_proxy_with(server.url(), state_file("fast"), |c| c.http_forward = true).await;
    wait_version(&proxy, 1).await;
    wait_status(proxy.https_addr(), &ca, HOST, StatusCode::OK).await;
    let addr = proxy.http_addr();

    // Pipelined in one write: a GET with a prior X-Forwarded-For, a chunked POST and a Content-Length POST
    // (both echoed), a HEAD, then an HTTP/1.0 request, which hyper serves (and closes after).
    let pipelined = format!(
        "GET /a HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n\r\n\
         POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n\
         POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\r\nhello\
         HEAD /h HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /old HTTP/1.0\r\nHost: {HOST}\r\n\r\n"
    );
    let text = raw_exchange(addr, &[&pipelined]).await;
    assert_eq!(text.matches(" 200 OK\r\n").count(), 5, "{text}");
    assert!(text.contains("x-seen-x-forwarded-for: 1.2.3.4, 127.0.0.1\r\n"), "{text}");
    assert!(text.contains("x-seen-x-forwarded-proto: http\r\n"), "{text}");
    assert!(text.contains("x-seen-x-amzn-trace-id: Root=1-"), "{text}");
    assert!(text.contains("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n") && text.contains("\r\n\r\nhello"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("keep-alive"), "{text}");

    // A chunked body and a Content-Length body arriving in pieces; Connection: close ends the connection.
    let text = raw_exchange(
        addr,
        &[
            &format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
            "lo\r\n",
            "6\r\n world\r\n0\r\n\r\n",
            &format!("PUT /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 6\r\nConnection: close\r\n\r\nab"),
            "cdef",
        ],
    )
    .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(text.contains("hel") && text.contains(" world") && text.contains("\r\n\r\nabcdef"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");

    // An invalid chunked body is a 400 and the end of the connection; a target reset is a 502 (and the
    // connection goes on); a malformed head is hyper's 400.
    let text = raw_exchange(
        addr,
        &[&format!("POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")],
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    let text = raw_exchange(
        addr,
        &[&format!(
            "GET /reset HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
        )],
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n") && text.contains("HTTP/1.1 200 OK\r\n"), "{text}");
    let text = raw_exchange(addr, &["GET / HTTP/1.1\r\nHo st: x\r\n\r\n"]).await;
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    // Unknown host: hyper's 404 after the fast path handed over.
    let text = raw_exchange(addr, &["GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n"]).await;
    assert!(text.starts_with("HTTP/1.1 404 "), "{text}");
    server.wait_report("nothing in flight", |r| health_of(r, "web").is_some_and(|h| h.2 == 0)).await;
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Load balancers with their own addresses.

/// Whether an HTTPS GET to `addr` for `host` is answered (its status), or the connection is refused or closed.
async fn status_at(addr: SocketAddr, ca: &Ca, host: &str) -> Option<StatusCode> {
    let config = berth_certs::client_config(&[ca.root_pem()], &[b"http/1.1"]).expect("client config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from(host.to_owned()).expect("name");
    let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp)).await.ok()?.ok()?;
    let (mut s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.ok()?;
    tokio::spawn(c);
    let req = Request::get("/").header("host", host).body(Full::<Bytes>::default()).expect("req");
    Some(tokio::time::timeout(WAIT, s.send_request(req)).await.ok()?.ok()?.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancers_own_address_is_bound_filtered_and_closed_as_the_table_says() {
    use berth_routes::{ListenerSources, LoadBalancer};
    let ca = Ca::generate().expect("ca");
    let cert = ca.issue(&[HOST.into(), "shared.localhost".into()], &[]).expect("cert");
    let server = FakeServer::start().await;
    let web = Backend::start("web").await;
    // A free port on a loopback alias for the load balancer's own HTTPS listener.
    let own = {
        let l = std::net::TcpListener::bind("127.0.0.9:0").expect("free port");
        l.local_addr().expect("addr")
    };
    let lb = |sources: &[&str]| LoadBalancer {
        arn: "lb-own".into(),
        https_listen: Some(own),
        hosts: vec![HOST.into()],
        sources: Some(ListenerSources { https: values(sources), http: vec![] }),
        ..LoadBalancer::default()
    };
    let fixed = RuleAction::FixedResponse(FixedResponse {
        status_code: 200,
        content_type: None,
        message_body: Some("shared".into()),
    });
    let mut t = table(
        1,
        &[(HOST, &cert)],
        &Spec { hosts: &[], groups: &[("tg-web", &[("web", &web, TargetState::Registered)])] },
    );
    let mut own_rule =
        rule("r-own", 1, vec![Condition::HostHeader { values: values(&[HOST]) }], forward_to(&[("tg-web", 1)], None));
    own_rule.load_balancer = Some("lb-own".into());
    t.rules = vec![
        own_rule,
        rule("r-shared", 2, vec![Condition::HostHeader { values: values(&["shared.localhost"]) }], fixed),
    ];
    t.load_balancers = vec![lb(&["127.0.0.0/8"])];
    server.publish(t.clone());
    let proxy = start_proxy(server.url(), state_file("own-address")).await;
    wait_version(&proxy, 1).await;

    let started = Instant::now();
    while status_at(own, &ca, HOST).await != Some(StatusCode::OK) {
        assert!(started.elapsed() < WAIT, "the load balancer's own address never served its host");
        tokio::time::sleep(STEP).await;
    }
    assert_eq!(
        status_at(proxy.https_addr(), &ca, HOST).await,
        Some(StatusCode::NOT_FOUND),
        "not on the default socket"
    );
    assert_eq!(status_at(own, &ca, "shared.localhost").await, Some(StatusCode::NOT_FOUND), "only its own rules");
    assert_eq!(status_at(proxy.https_addr(), &ca, "shared.localhost").await, Some(StatusCode::OK));

    // Its groups stop admitting loopback: the connection is closed at accept, before TLS.
    t.version = 2;
    t.load_balancers = vec![lb(&["10.0.0.0/8"])];
    server.publish(t.clone());
    wait_version(&proxy, 2).await;
    assert_eq!(status_at(own, &ca, HOST).await, None, "refused at accept");

    // A table without it closes the socket.
    t.version = 3;
    t.load_balancers = vec![];
    t.rules.retain(|r| r.load_balancer.is_none());
    server.publish(t);
    wait_version(&proxy, 3).await;
    let started = Instant::now();
    while TcpStream::connect(own).await.is_ok() {
        assert!(started.elapsed() < WAIT, "the socket of a load balancer no table names stays open");
        tokio::time::sleep(STEP).await;
    }
    proxy.stop().await;
}
