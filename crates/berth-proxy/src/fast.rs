//! The HTTP/1.1 fast path: the common request (an HTTP/1.1 request that a rule forwards to an HTTP/1.1 target
//! group, no stickiness, no access log) is read with `httparse` into a per-connection buffer, matched on
//! borrowed data, and written with the `X-Forwarded-*` and trace headers straight onto a pooled keep-alive
//! target connection; the response head is rewritten into a reused buffer and sent together with the start
//! of the body in one write, and the rest of the body is streamed (`Content-Length`, chunked or until the
//! target closes), never buffered whole. Anything else (HTTP/1.0, `Upgrade`, `Expect`, absolute-form targets,
//! heads over [`h1::MAX_HEAD`], malformed heads, fixed responses, redirects, 403/404/503, h2c groups)
//! returns the connection with the bytes read so far ([`Outcome::Fallback`]): the caller replays them into
//! hyper through [`Rewind`], which serves the rest of the connection exactly as before.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;

use crate::forward::{ConnInfo, Forwarder, trace_id_bytes};
use crate::h1::{self, Chunked, Framing, ParsedRequest, ParsedResponse, RequestHead};
use crate::listener::Activity;
use crate::metrics::{LbCounters, TgCounters};
use crate::route::strip_port;
use crate::rules::RequestView;
use crate::state::ActionKind;
use crate::target::TargetRuntime;
use crate::upstream::{RAW_BUF, RawConn};

/// How a connection left the fast path.
pub(crate) enum Outcome<S> {
    /// It is over (closed by either side, or by the proxy).
    Closed,
    /// Hyper serves it from here on: the stream and the bytes read from it that were not handled yet (the
    /// start of a request).
    Fallback(S, Vec<u8>),
}

/// The host a request names, as [`crate::route::request_host`] normalizes it, borrowed when it is already
/// normal (lowercase).
pub(crate) fn normalized_host(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    let host = strip_port(raw);
    let host = host.strip_suffix('.').unwrap_or(host).trim_end();
    if host.is_empty() || (!host.starts_with('[') && host.contains(':')) {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

/// What the fast path forwards a request to, decided from its head.
struct Plan {
    target: Arc<TargetRuntime>,
    group: Arc<str>,
    group_counters: Arc<TgCounters>,
    lb: Arc<LbCounters>,
    label: Arc<str>,
}

/// Routes a request head on borrowed data: `None` unless a rule forwards it to an HTTP/1.1 group without
/// stickiness (forward-action or target) and a healthy target exists (everything else is hyper's).
fn plan(fwd: &Forwarder, conn: &ConnInfo, head: &RequestHead<'_>, headers: &[httparse::Header<'_>]) -> Option<Plan> {
    let host = normalized_host(head.host)?;
    let snapshot = fwd.snapshot.load();
    // The rule set of the socket the connection arrived on (a load balancer's own address, or the default ones).
    let map = if snapshot.socket(conn.socket).rules.uses_headers() { header_map(headers)? } else { HeaderMap::new() };
    let view = RequestView {
        host: &host,
        path: head.path,
        query: head.query,
        method: head.method,
        headers: &map,
        source: conn.peer.ip(),
    };
    // A client the load balancer's groups do not admit is hyper's path's (403).
    let (_, action) = snapshot.route(conn.socket, &view, conn.tls.is_some()).ok()??;
    let ActionKind::Forward(forward) = &action.kind else { return None };
    // Decided before picking: a request handed to hyper must not advance the round robin twice.
    if !forward.is_plain() {
        return None;
    }
    // Without stickiness, routing reads no cookie: `map` (empty unless a rule reads headers) routes exactly as
    // the request's headers would.
    let pick = forward.pick(&map)?;
    let (group, target) = (pick.group, pick.target);
    conn.meter.attribute(&action.counters);
    Some(Plan {
        target: target.clone(),
        group: group.id.clone(),
        group_counters: group.counters.clone(),
        lb: action.counters.clone(),
        label: action.label.clone(),
    })
}

/// The request headers as hyper would have them, for rules with header conditions.
fn header_map(headers: &[httparse::Header<'_>]) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// Reads more bytes into `buf` (appending); `Ok(0)` at the end of the stream.
async fn read_more<R: AsyncRead + Unpin>(io: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(RAW_BUF);
    }
    io.read_buf(buf).await
}

/// A response the proxy itself writes on the fast path (502, 504, 400), with `Connection: close` when the
/// connection ends after it.
fn write_error(out: &mut Vec<u8>, status: u16, close: bool) {
    // (status line, content-length, body): the same texts as hyper's path.
    let (line, length, body): (&[u8], &[u8], &[u8]) = match status {
        504 => (b"HTTP/1.1 504 Gateway Timeout\r\n", b"17", b"target timed out\n"),
        400 => (b"HTTP/1.1 400 Bad Request\r\n", b"21", b"invalid request body\n"),
        _ => (b"HTTP/1.1 502 Bad Gateway\r\n", b"12", b"bad gateway\n"),
    };
    out.clear();
    out.extend_from_slice(line);
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\ncontent-length: ");
    out.extend_from_slice(length);
    out.extend_from_slice(if close { b"\r\nconnection: close\r\n\r\n" } else { b"\r\n\r\n" });
    out.extend_from_slice(body);
}

/// How a forwarded exchange failed.
enum Failure {
    /// The client went away or sent an invalid body: close without an answer (or with 400).
    Client(bool),
    /// The target could not be reached, failed, or answered garbage: 502.
    Target(String),
}

/// The request body still to be read from the client.
struct BodyLeft {
    framing: Framing,
    left: u64,
    chunked: Chunked,
    done: bool,
}

impl BodyLeft {
    fn new(framing: Framing) -> Self {
        let left = if let Framing::Length(n) = framing { n } else { 0 };
        BodyLeft { framing, left, chunked: Chunked::new(), done: framing == Framing::Empty }
    }

    /// How many bytes of `data` belong to the body (and notes whether it is complete).
    fn take(&mut self, data: &[u8]) -> Result<usize, h1::ChunkError> {
        let (n, done) = h1::body_slice(self.framing, &mut self.left, &mut self.chunked, data)?;
        self.done = done;
        Ok(n)
    }
}

/// Sends the request in `out` (head and the body bytes already read) and the rest of the body to `addr` over
/// a pooled or new connection, and reads the response head into the connection's buffer; the client head is
/// then in `out`. A reused connection that fails before any response byte is replaced once when the whole
/// request was in `out` (the target had closed it while idle).
#[allow(clippy::too_many_arguments)]
async fn exchange<S: AsyncRead + Unpin>(
    fwd: &Forwarder,
    addr: SocketAddr,
    io: &mut S,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    body: &mut BodyLeft,
    head_request: bool,
    close: bool,
) -> Result<(RawConn, h1::ResponseHead), Failure> {
    let replayable = body.done;
    let mut retried = false;
    loop {
        let (mut up, reused) = match fwd.pool.checkout_raw(addr) {
            Some(c) => (c, true),
            None => (RawConn::connect(addr).await.map_err(|e| Failure::Target(e.to_string()))?, false),
        };
        let may_retry = reused && replayable && !retried;
        if let Err(e) = up.tcp.write_all(out).await {
            if may_retry {
                retried = true;
                continue;
            }
            return Err(Failure::Target(e.to_string()));
        }
        while !body.done {
            buf.clear();
            match read_more(io, buf).await {
                Ok(0) | Err(_) => return Err(Failure::Client(false)),
                Ok(_) => {}
            }
            let n = body.take(buf).map_err(|_| Failure::Client(true))?;
            up.tcp.write_all(&buf[..n]).await.map_err(|e| Failure::Target(e.to_string()))?;
            buf.drain(..n);
        }
        up.buf.clear();
        // Whether the target answered anything (then the request is never sent again).
        let mut answered = false;
        loop {
            let read = read_more(&mut up.tcp, &mut up.buf).await;
            match read {
                Ok(n) if n > 0 => answered = true,
                Ok(_) | Err(_) if may_retry && !answered => break,
                Ok(_) => return Err(Failure::Target("the target closed the connection".into())),
                Err(e) => return Err(Failure::Target(e.to_string())),
            }
            loop {
                out.clear();
                match h1::parse_response(&up.buf, head_request, close, out) {
                    ParsedResponse::Partial => break,
                    ParsedResponse::Invalid(why) => return Err(Failure::Target(why.into())),
                    ParsedResponse::Informational(n) => {
                        up.buf.drain(..n);
                        if up.buf.is_empty() {
                            break;
                        }
                    }
                    ParsedResponse::Ready(head) => return Ok((up, head)),
                }
            }
        }
        retried = true;
    }
}

/// Serves HTTP/1.1 requests on `io` until the connection ends or a request needs hyper. `stop` ends it
/// between requests (graceful shutdown).
pub(crate) async fn serve<S>(
    mut io: S,
    fwd: &Forwarder,
    conn: &ConnInfo,
    activity: &Arc<Activity>,
    stop: &Notify,
) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(RAW_BUF);
    let mut out: Vec<u8> = Vec::with_capacity(RAW_BUF);
    loop {
        // A complete request head, planned.
        let planned = {
            let mut storage = h1::header_buf();
            match h1::parse_request(&buf, &mut storage) {
                ParsedRequest::Partial => None,
                ParsedRequest::Unusual(why) => {
                    tracing::trace!(why, "request left to hyper");
                    return Outcome::Fallback(io, buf);
                }
                ParsedRequest::Ready(head) => {
                    let headers = &storage[..head.headers];
                    let Some(plan) = plan(fwd, conn, &head, headers) else {
                        return Outcome::Fallback(io, buf);
                    };
                    out.clear();
                    h1::write_request_head(&mut out, &head, headers, conn.forwarded.for_h1(), || {
                        trace_id_bytes(SystemTime::now())
                    });
                    Some((plan, head.len, head.framing, head.close, head.method == "HEAD"))
                }
            }
        };
        let Some((plan, head_len, framing, client_close, head_request)) = planned else {
            let read = if buf.is_empty() {
                tokio::select! {
                    biased;
                    () = stop.notified() => return Outcome::Closed,
                    r = read_more(&mut io, &mut buf) => r,
                }
            } else {
                read_more(&mut io, &mut buf).await
            };
            match read {
                Ok(n) if n > 0 => continue,
                _ => return Outcome::Closed,
            }
        };
        let active = activity.begin();
        buf.drain(..head_len);
        let mut body = BodyLeft::new(framing);
        let n = match body.take(&buf) {
            Ok(n) => n,
            Err(_) => {
                // An invalid chunked body: nothing was sent to the target.
                write_error(&mut out, 400, true);
                let _ = io.write_all(&out).await;
                return Outcome::Closed;
            }
        };
        out.extend_from_slice(&buf[..n]);
        buf.drain(..n);

        let close = client_close || activity.is_draining();
        let addr = plan.target.key.addr;
        plan.group_counters.requests.fetch_add(1, Ordering::Relaxed);
        let in_flight = plan.target.begin();
        let sent = Instant::now();
        let exchanged = tokio::time::timeout(
            fwd.request_timeout,
            exchange(fwd, addr, &mut io, &mut buf, &mut out, &mut body, head_request, close),
        )
        .await;
        plan.lb.requests.fetch_add(1, Ordering::Relaxed);
        let (mut up, head) = match exchanged {
            Ok(Ok(exchanged)) => exchanged,
            Ok(Err(Failure::Client(invalid))) => {
                if invalid {
                    write_error(&mut out, 400, true);
                    let _ = io.write_all(&out).await;
                }
                return Outcome::Closed;
            }
            Ok(Err(Failure::Target(error))) => {
                tracing::warn!(label = %plan.label, target_group = %plan.group, target = %plan.target.key.target, %addr, %error, "target request failed");
                plan.lb.elb_response(502);
                let close = close || !body.done;
                write_error(&mut out, 502, close);
                if io.write_all(&out).await.is_err() || io.flush().await.is_err() || close {
                    return Outcome::Closed;
                }
                continue;
            }
            Err(_) => {
                tracing::warn!(label = %plan.label, target_group = %plan.group, target = %plan.target.key.target, %addr, "target response timed out");
                plan.lb.elb_response(504);
                let close = close || !body.done;
                write_error(&mut out, 504, close);
                if io.write_all(&out).await.is_err() || io.flush().await.is_err() || close {
                    return Outcome::Closed;
                }
                continue;
            }
        };
        let now = Instant::now();
        plan.lb.target_response(head.status);
        plan.group_counters.target_response(head.status, now.saturating_duration_since(sent));

        // The head and the start of the body in one write.
        up.buf.drain(..head.len);
        let mut response = BodyLeft::new(head.framing);
        let Ok(n) = response.take(&up.buf) else {
            return Outcome::Closed;
        };
        out.extend_from_slice(&up.buf[..n]);
        let mut reusable = head.reusable && up.buf.len() == n;
        if io.write_all(&out).await.is_err() || io.flush().await.is_err() {
            return Outcome::Closed;
        }
        while !response.done {
            up.buf.clear();
            match read_more(&mut up.tcp, &mut up.buf).await {
                Ok(0) if head.framing == Framing::Close => break,
                Ok(0) | Err(_) => return Outcome::Closed,
                Ok(_) => {}
            }
            let Ok(n) = response.take(&up.buf) else {
                return Outcome::Closed;
            };
            reusable &= !response.done || up.buf.len() == n;
            if io.write_all(&up.buf[..n]).await.is_err() || io.flush().await.is_err() {
                return Outcome::Closed;
            }
        }
        if reusable {
            fwd.pool.checkin_raw(addr, up);
        }
        drop(in_flight);
        drop(active);
        if close || head.framing == Framing::Close {
            let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
            return Outcome::Closed;
        }
    }
}

/// A stream that first yields `prefix` (bytes already read from it), then reads on.
pub(crate) struct Rewind<T> {
    prefix: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T> Rewind<T> {
    pub fn new(prefix: Vec<u8>, inner: T) -> Self {
        Rewind { prefix, pos: 0, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_host_agrees_with_request_host() {
        let cases = [
            "example.com",
            "Example.COM:8443",
            "example.com.",
            " example.com ",
            "[::1]:443",
            "[::1]",
            "a:b",
            ":.",
            "",
            "x.test:",
            "10.0.0.1:80",
            "EXAMPLE.com.:443",
        ];
        for raw in cases {
            let want = crate::route::request_host(Some(raw), None);
            assert_eq!(normalized_host(raw).map(Cow::into_owned), want, "{raw:?}");
        }
    }

    #[test]
    fn error_responses_are_well_framed() {
        for (status, close) in [(400, true), (502, false), (502, true), (504, false)] {
            let mut out = Vec::new();
            write_error(&mut out, status, close);
            let mut storage = h1::header_buf();
            let mut res = httparse::Response::new(&mut storage);
            let Ok(httparse::Status::Complete(len)) = res.parse(&out) else { panic!("{status}: not a head") };
            assert_eq!(res.code, Some(status));
            let length = res.headers.iter().find(|h| h.name == "content-length").map(|h| h.value);
            assert_eq!(length, Some((out.len() - len).to_string().as_bytes()), "{status}");
            assert_eq!(res.headers.iter().any(|h| h.name == "connection" && h.value == b"close"), close);
        }
    }

    #[tokio::test]
    async fn rewind_replays_the_prefix_then_reads_on() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut rewind = Rewind::new(b"hello".to_vec(), server);
        let mut all = String::new();
        rewind.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
    }
}
