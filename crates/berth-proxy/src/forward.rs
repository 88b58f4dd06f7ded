//! The HTTPS request path: route by host, pick a target, forward over a pooled HTTP/1.1 client with the
//! `X-Forwarded-*` and trace headers, and stream the response back while counting it in flight.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::listener::ActiveRequest;
use crate::route::request_host;
use crate::state::SharedSnapshot;
use crate::target::InFlight;

pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

pub(crate) fn upstream_client(idle: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(idle).build(connector)
}

/// A response body: a small fixed one the proxy writes, or the target's, streamed.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    Fixed(Option<Bytes>),
    Upstream { inner: Incoming, guards: Option<(InFlight, ActiveRequest)> },
}

impl ProxyBody {
    pub fn text(s: &str) -> Self {
        ProxyBody::Fixed(Some(Bytes::copy_from_slice(s.as_bytes())))
    }

    pub fn empty() -> Self {
        ProxyBody::Fixed(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Fixed(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Upstream { inner, guards } => {
                let polled = Pin::new(&mut *inner).poll_frame(cx);
                // The request is over once its body ends or fails: stop counting it in flight.
                if matches!(polled, Poll::Ready(None | Some(Err(_)))) || inner.is_end_stream() {
                    guards.take();
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Fixed(data) => data.is_none(),
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
pub(crate) fn new_trace_id(now: SystemTime) -> String {
    let epoch = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
    let random: [u8; 12] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("Root=1-{epoch:08x}-{hex}")
}

/// Sets the `X-Forwarded-*` headers (appending the client to `X-Forwarded-For`) and a trace id if absent.
pub(crate) fn set_forwarded_headers(headers: &mut HeaderMap, client: SocketAddr, port: u16) {
    let ip = client.ip().to_canonical().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    headers.insert("x-forwarded-port", HeaderValue::from(port));
    if !headers.contains_key("x-amzn-trace-id")
        && let Ok(v) = HeaderValue::from_str(&new_trace_id(SystemTime::now()))
    {
        headers.insert("x-amzn-trace-id", v);
    }
}

/// What the HTTPS service needs for every request.
pub(crate) struct Forwarder {
    pub snapshot: SharedSnapshot,
    pub client: UpstreamClient,
    pub request_timeout: Duration,
}

impl Forwarder {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client_addr: SocketAddr,
        listen_port: u16,
        active: ActiveRequest,
    ) -> Response<ProxyBody> {
        let host_header = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
        let Some(host) = request_host(host_header, req.uri().authority().map(|a| a.as_str())) else {
            return fixed(StatusCode::BAD_REQUEST, "missing host\n");
        };
        let (service, group, target) = {
            let snapshot = self.snapshot.load();
            let Some(route) = snapshot.hosts.get(&host) else {
                return fixed(StatusCode::NOT_FOUND, "no service at this host\n");
            };
            match route.choose() {
                Some((group, target)) => (route.service.clone(), group.id.clone(), target.clone()),
                None => return fixed(StatusCode::SERVICE_UNAVAILABLE, "no healthy target\n"),
            }
        };
        let in_flight = target.begin();
        let addr = target.key.addr;

        let (mut parts, body) = req.into_parts();
        let host_value = match parts.headers.get(header::HOST) {
            Some(v) => v.clone(),
            None => match parts.uri.authority().map(|a| HeaderValue::from_str(a.as_str())) {
                Some(Ok(v)) => v,
                _ => return fixed(StatusCode::BAD_REQUEST, "missing host\n"),
            },
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match Uri::try_from(format!("http://{addr}{path}")) {
            Ok(uri) => uri,
            Err(_) => return fixed(StatusCode::BAD_REQUEST, "invalid request target\n"),
        };
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::HOST, host_value);
        set_forwarded_headers(&mut parts.headers, client_addr, listen_port);
        let upstream = Request::from_parts(parts, body);

        match tokio::time::timeout(self.request_timeout, self.client.request(upstream)).await {
            Err(_) => {
                tracing::warn!(%host, %service, target_group = %group, target = %target.key.target, %addr, "target response timed out");
                fixed(StatusCode::GATEWAY_TIMEOUT, "target timed out\n")
            }
            Ok(Err(e)) => {
                tracing::warn!(%host, %service, target_group = %group, target = %target.key.target, %addr, error = %e, "target request failed");
                fixed(StatusCode::BAD_GATEWAY, "bad gateway\n")
            }
            Ok(Ok(response)) => {
                let (mut parts, inner) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let done = inner.is_end_stream();
                let guards = (!done).then_some((in_flight, active));
                Response::from_parts(parts, ProxyBody::Upstream { inner, guards })
            }
        }
    }
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
            set_forwarded_headers(&mut h, client, 8443);
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
        set_forwarded_headers(&mut h, mapped, 443);
        assert_eq!(h["x-forwarded-for"], "10.0.0.8");
    }

    #[test]
    fn trace_id_format() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(0x5f00_0001);
        let id = new_trace_id(now);
        let parts: Vec<_> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "Root=1");
        assert_eq!(parts[1], "5f000001");
        assert_eq!(parts[2].len(), 24);
        assert!(parts[2].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(new_trace_id(now), id, "random part differs");
    }
}
