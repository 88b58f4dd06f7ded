//! The HTTPS transport: one pooled hyper client per [`Client`](crate::Client) family, rustls on ring trusting
//! only berth's CA (HTTP/2 when the server offers it by ALPN, else HTTP/1.1), plain TCP for `http://` endpoints.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::ClientError;

/// How long one call may take, connection included.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting (TCP) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (berth's biggest are log pages and task lists, far below this).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How long an idle pooled connection is kept: below berth-api's 30 s wait for the next request's headers, so
/// the client lets a connection go before the server closes it under a request being sent.
const POOL_IDLE: Duration = Duration::from_secs(20);

/// An answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

/// The pooled HTTP(S) client for one endpoint.
pub(crate) struct Transport {
    endpoint: String,
    client: HyperClient<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl Transport {
    pub(crate) fn new(endpoint: &str, ca_pem: Option<&[u8]>) -> Result<Arc<Transport>, ClientError> {
        Self::with_timeout(endpoint, ca_pem, CALL_TIMEOUT)
    }

    fn with_timeout(endpoint: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Arc<Transport>, ClientError> {
        let tls = if endpoint.starts_with("https://") {
            let Some(pem) = ca_pem else {
                return Err(ClientError::Config(format!(
                    "{endpoint} is https, but no CA to trust was given: set AWS_CA_BUNDLE to berth's ca.pem (in its \
                     data directory), or ca_bundle in the profile"
                )));
            };
            Some(tls_connector(pem)?)
        } else {
            None
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(16)
            .build(Connector { http, tls });
        Ok(Arc::new(Transport { endpoint: endpoint.to_string(), client, timeout }))
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one request and reads the whole answer, within the call timeout ([`CALL_TIMEOUT`]).
    pub(crate) async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Answer, ClientError> {
        let transport = |detail: String| ClientError::Transport { endpoint: self.endpoint.clone(), detail };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| transport(chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| transport(format!("reading the answer: {}", chain(e.as_ref()))))?
                .to_bytes();
            Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| transport(format!("no answer within {:.1} s", self.timeout.as_secs_f64())))?
    }
}

/// An error and its causes, `outer: inner: root`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn tls_connector(pem: &[u8]) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| ClientError::Config(format!("the CA bundle is not valid PEM: {e}")))?;
        roots.add(cert).map_err(|e| ClientError::Config(format!("the CA bundle holds a bad certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config("the CA bundle holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/2 when berth offers it: concurrent calls (the console's several per page) share one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Connects TCP, then TLS when the URI is https.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Option<tokio_rustls::TlsConnector>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut http = self.http.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
            let tcp = http.call(uri).await?;
            if !https {
                return Ok(Stream::Plain(tcp));
            }
            let Some(tls) = tls else {
                return Err("an https endpoint needs a CA bundle".into());
            };
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("'{host}' is not a TLS server name: {e}"))?;
            let stream = tokio::time::timeout(TLS_TIMEOUT, tls.connect(name, tcp.into_inner()))
                .await
                .map_err(|_| format!("TLS handshake with {host} timed out"))?
                .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
            Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Tls(s) if s.inner().get_ref().1.alpn_protocol() == Some(b"h2") => Connected::new().negotiated_h2(),
            Stream::Plain(_) | Stream::Tls(_) => Connected::new(),
        }
    }
}

impl Read for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Accepts, reads, never answers.
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let endpoint = format!("http://{addr}");
        let transport = Transport::with_timeout(&endpoint, None, Duration::from_millis(300)).expect("transport");
        let request = http::Request::post(format!("{endpoint}/")).body(Full::new(Bytes::new())).expect("request");
        let started = std::time::Instant::now();
        match transport.send(request).await {
            Err(ClientError::Transport { endpoint: e, detail }) => {
                assert_eq!(e, endpoint);
                assert!(detail.contains("no answer within 0.3 s"), "{detail}");
            }
            other => panic!("{:?}", other.map(|a| a.status)),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        server.abort();
    }

    #[test]
    fn https_needs_a_usable_ca() {
        assert!(
            matches!(Transport::new("https://localhost:1", None), Err(ClientError::Config(m)) if m.contains("AWS_CA_BUNDLE"))
        );
        let not_pem = Transport::new("https://localhost:1", Some(b"nothing here"));
        assert!(matches!(not_pem, Err(ClientError::Config(m)) if m.contains("no certificate")));
        let bad_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(Transport::new("https://localhost:1", Some(bad_der.as_bytes())), Err(ClientError::Config(_))));
        assert!(Transport::new("http://localhost:1", None).is_ok());
    }
}
