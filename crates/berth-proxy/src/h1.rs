//! HTTP/1.1 message heads and body framing for the fast path (see `fast.rs`), on borrowed bytes: a request
//! head is parsed with `httparse` and judged plain enough for the fast path (or not, then hyper serves the
//! connection), and rewritten for the target with the `X-Forwarded-*` and trace headers; a target's response
//! head is parsed and rewritten for the client without its hop-by-hop headers; chunked bodies are passed
//! through verbatim while [`Chunked`] finds where they end. Pure functions, no I/O.

use httparse::{EMPTY_HEADER, Header, Status};

/// Headers read per message; a head with more leaves the fast path (hyper applies its own limits).
pub(crate) const MAX_HEADERS: usize = 64;
/// The largest request head the fast path reads; a larger one is handed to hyper (which answers 431 when
/// it is over hyper's limit). Also the largest response head accepted from a target.
pub(crate) const MAX_HEAD: usize = 32 * 1024;

/// Header storage for one parse.
pub(crate) type HeaderBuf<'b> = [Header<'b>; MAX_HEADERS];

pub(crate) fn header_buf<'b>() -> HeaderBuf<'b> {
    [EMPTY_HEADER; MAX_HEADERS]
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, passed through as is.
    Chunked,
    /// Until the target closes the connection (responses only).
    Close,
}

/// A request head the fast path can forward.
#[derive(Debug)]
pub(crate) struct RequestHead<'b> {
    pub method: &'b str,
    /// Origin-form: `/path?query`.
    pub target: &'b str,
    pub path: &'b str,
    pub query: Option<&'b str>,
    /// The `Host` header as sent.
    pub host: &'b str,
    pub framing: Framing,
    /// `Connection: close`: the connection ends after this response.
    pub close: bool,
    /// The first `X-Forwarded-For` value, when it is visible ASCII and not blank.
    pub forwarded_for: Option<&'b str>,
    pub has_trace_id: bool,
    /// How many of the header storage's entries the head filled.
    pub headers: usize,
    /// Length of the head in the buffer, including the blank line.
    pub len: usize,
}

/// The outcome of reading a request head from the start of a buffer.
#[derive(Debug)]
pub(crate) enum ParsedRequest<'b> {
    /// More bytes are needed.
    Partial,
    /// Not for the fast path (the reason is for tracing): hyper serves the connection from here on.
    Unusual(&'static str),
    Ready(RequestHead<'b>),
}

/// A request target the proxy forwards as is: visible ASCII that `http::Uri` keeps unchanged (a target with a
/// fragment, `<`, `>`, `` ` ``, `"` or other bytes is left to hyper's parsing).
fn plain_target(target: &str) -> bool {
    target.bytes().all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'#' | b'<' | b'>' | b'`' | b'"'))
}

/// A header value as `str` if it is visible ASCII (and tabs), as `http::HeaderValue::to_str` accepts.
fn visible(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) { std::str::from_utf8(value).ok() } else { None }
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// Whether every comma-separated token of a `Connection` value is `close` or `keep-alive`; and whether
/// `close` is one of them. `None`: another token (upgrade, a listed header), which the fast path leaves to
/// hyper.
fn connection_tokens(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for token in value.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty()) {
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !token.eq_ignore_ascii_case(b"keep-alive") {
            return None;
        }
    }
    Some(close)
}

/// A `Content-Length` value: digits only.
fn content_length(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Parses the request head at the start of `buf` and decides whether the fast path can forward it: an
/// HTTP/1.1 request in origin form with one visible-ASCII `Host`, a body framed by one `Content-Length` or by
/// `Transfer-Encoding: chunked` alone, and no `Upgrade`, `Expect` or `Connection` token other than
/// `close`/`keep-alive`. Everything else is [`ParsedRequest::Unusual`].
pub(crate) fn parse_request<'b>(buf: &'b [u8], headers: &mut HeaderBuf<'b>) -> ParsedRequest<'b> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() < MAX_HEAD => return ParsedRequest::Partial,
        Ok(Status::Partial) => return ParsedRequest::Unusual("head too large"),
        Err(_) => return ParsedRequest::Unusual("malformed head"),
    };
    if len > MAX_HEAD {
        return ParsedRequest::Unusual("head too large");
    }
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return ParsedRequest::Unusual("not HTTP/1.1");
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return ParsedRequest::Unusual("not origin-form");
    }
    if !plain_target(target) {
        return ParsedRequest::Unusual("request target needs normalizing");
    }
    let mut host = None;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    let mut forwarded_for = None;
    let mut seen_xff = false;
    let mut has_trace_id = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return ParsedRequest::Unusual("several Host headers");
            }
            match visible(h.value) {
                Some(v) => host = Some(v),
                None => return ParsedRequest::Unusual("Host is not ASCII"),
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return ParsedRequest::Unusual("several Content-Length headers");
            }
            match content_length(h.value) {
                Some(n) => length = Some(n),
                None => return ParsedRequest::Unusual("invalid Content-Length"),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if chunked || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return ParsedRequest::Unusual("transfer coding");
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            match connection_tokens(h.value) {
                Some(c) => close |= c,
                None => return ParsedRequest::Unusual("Connection options"),
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"expect") {
            return ParsedRequest::Unusual("Upgrade or Expect");
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            if !seen_xff {
                seen_xff = true;
                forwarded_for = visible(h.value).filter(|v| !v.trim().is_empty());
            }
        } else if name.eq_ignore_ascii_case(b"x-amzn-trace-id") {
            has_trace_id = true;
        }
    }
    let Some(host) = host else {
        return ParsedRequest::Unusual("no Host");
    };
    let framing = match (length, chunked) {
        (Some(_), true) => return ParsedRequest::Unusual("Content-Length with Transfer-Encoding"),
        (Some(0), false) | (None, false) => Framing::Empty,
        (Some(n), false) => Framing::Length(n),
        (None, true) => Framing::Chunked,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    ParsedRequest::Ready(RequestHead {
        method,
        target,
        path,
        query,
        host,
        framing,
        close,
        forwarded_for,
        has_trace_id,
        headers: req.headers.len(),
        len,
    })
}

/// Request headers never sent to a target (they describe the client connection, or are set by the proxy).
fn dropped_request_header(name: &[u8]) -> bool {
    const DROPPED: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"x-forwarded-proto",
        b"x-forwarded-port",
    ];
    DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) || name.eq_ignore_ascii_case(b"x-forwarded-for")
}

/// What the proxy adds to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForwardedFor<'a> {
    /// The client's address, as `X-Forwarded-For` lists it.
    pub client: &'a [u8],
    /// The listener's port.
    pub port: &'a [u8],
    pub https: bool,
}

/// Appends the request head for the target to `out`: the same request line and headers (names and values as
/// received) without the hop-by-hop ones, then `X-Forwarded-For` (the client appended to a prior list),
/// `X-Forwarded-Proto`, `X-Forwarded-Port`, and an `X-Amzn-Trace-Id` from `trace_id` unless the request had
/// one. `buf` and `headers` are what [`parse_request`] read `head` from.
pub(crate) fn write_request_head(
    out: &mut Vec<u8>,
    head: &RequestHead<'_>,
    headers: &[Header<'_>],
    fwd: ForwardedFor<'_>,
    trace_id: impl FnOnce() -> [u8; 40],
) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        if dropped_request_header(h.name.as_bytes()) {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = head.forwarded_for {
        out.extend_from_slice(prior.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(fwd.client);
    out.extend_from_slice(if fwd.https {
        b"\r\nx-forwarded-proto: https\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    out.extend_from_slice(b"x-forwarded-port: ");
    out.extend_from_slice(fwd.port);
    out.extend_from_slice(b"\r\n");
    if !head.has_trace_id {
        out.extend_from_slice(b"x-amzn-trace-id: ");
        out.extend_from_slice(&trace_id());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A target's response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// The target keeps the connection for another request once this body has been read.
    pub reusable: bool,
    pub len: usize,
}

/// The outcome of reading a response head from the start of a buffer.
#[derive(Debug)]
pub(crate) enum ParsedResponse {
    Partial,
    /// Not a valid response (the proxy answers 502).
    Invalid(&'static str),
    /// A 1xx informational response of `len` bytes, skipped (as hyper's client does).
    Informational(usize),
    Ready(ResponseHead),
}

/// Parses the response head at the start of `buf` (`head_request`: the request was `HEAD`, so there is no
/// body whatever the headers say) and appends the head for the client to `out`: the status line and the
/// headers without the hop-by-hop ones (and without those the target's `Connection` names), keeping
/// `Transfer-Encoding: chunked` when the chunked body is passed through, plus `Connection: close` when
/// `close` (the client connection ends after this response, as it does for a body that ends with the
/// target's connection).
pub(crate) fn parse_response(buf: &[u8], head_request: bool, close: bool, out: &mut Vec<u8>) -> ParsedResponse {
    let mut storage = header_buf();
    let mut res = httparse::Response::new(&mut storage);
    let len = match res.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() < MAX_HEAD => return ParsedResponse::Partial,
        Ok(Status::Partial) => return ParsedResponse::Invalid("response head too large"),
        Err(_) => return ParsedResponse::Invalid("malformed response head"),
    };
    let (Some(version), Some(status)) = (res.version, res.code) else {
        return ParsedResponse::Invalid("malformed response head");
    };
    if status == 101 {
        return ParsedResponse::Invalid("101 without an upgrade request");
    }
    if (100..200).contains(&status) {
        return ParsedResponse::Informational(len);
    }
    let mut length = None;
    let mut coding: Option<&[u8]> = None;
    let mut connection: Option<&[u8]> = None;
    let mut upstream_close = version == 0;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            match (content_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return ParsedResponse::Invalid("invalid Content-Length"),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Several: the last names the final coding.
            coding = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection = connection.or(Some(h.value));
            for token in h.value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    upstream_close = true;
                } else if version == 0 && token.eq_ignore_ascii_case(b"keep-alive") {
                    upstream_close = false;
                }
            }
        }
    }
    let chunked_last = coding.is_some_and(|c| {
        c.rsplit(|&b| b == b',').next().map(trim).is_some_and(|last| last.eq_ignore_ascii_case(b"chunked"))
    });
    let no_body = head_request || status == 204 || status == 304;
    let framing = if no_body {
        Framing::Empty
    } else if coding.is_some() {
        if chunked_last { Framing::Chunked } else { Framing::Close }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    let close = close || framing == Framing::Close;
    let listed = |name: &[u8]| {
        connection.is_some_and(|c| c.split(|&b| b == b',').map(trim).any(|t| t.eq_ignore_ascii_case(name)))
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8]);
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let hop = [&b"connection"[..], b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"]
            .iter()
            .any(|d| name.eq_ignore_ascii_case(d));
        let te = name.eq_ignore_ascii_case(b"transfer-encoding");
        // A chunked body is passed through with its coding; a Content-Length next to it is wrong.
        let cl = name.eq_ignore_ascii_case(b"content-length");
        if hop || (te && framing != Framing::Chunked) || (cl && coding.is_some() && !no_body) || listed(name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let reusable = !upstream_close && framing != Framing::Close;
    ParsedResponse::Ready(ResponseHead { status, framing, reusable, len })
}

/// An invalid chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size (`digits` so far).
    Size {
        digits: u8,
    },
    /// A chunk extension, up to CR.
    Ext,
    SizeLf,
    /// Chunk data (`Chunked::remaining` bytes left).
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// A trailer field's name, up to `:`.
    TrailerName,
    /// A trailer field's value, up to CR.
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Follows a chunked body passed through verbatim, to find where it ends. Sizes, extensions and trailer
/// lines are bounded.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: ChunkState,
    size: u64,
    remaining: u64,
    /// Bytes of the current extension or of all trailers.
    extra: usize,
}

const MAX_CHUNK_EXT: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    pub fn new() -> Self {
        Chunked { state: ChunkState::Size { digits: 0 }, size: 0, remaining: 0, extra: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Reads `data` (the next bytes of the body) and returns how many of them belong to the body: all of
    /// them, or fewer when the body ended within `data` (then [`Chunked::is_done`]).
    pub fn scan(&mut self, data: &[u8]) -> Result<usize, ChunkError> {
        use ChunkState as S;
        let mut i = 0;
        while i < data.len() {
            if self.state == S::Done {
                return Ok(i);
            }
            if self.state == S::Data {
                let take = self.remaining.min((data.len() - i) as u64);
                self.remaining -= take;
                i += take as usize;
                if self.remaining == 0 {
                    self.state = S::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (S::Size { digits }, _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(ChunkError("chunk size too large"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    self.size = self.size * 16 + u64::from(d);
                    S::Size { digits: digits + 1 }
                }
                (S::Size { digits: 0 }, _) => return Err(ChunkError("invalid chunk size")),
                (S::Size { .. }, b';' | b' ' | b'\t') => {
                    self.extra = 0;
                    S::Ext
                }
                (S::Size { .. } | S::Ext, b'\r') => S::SizeLf,
                (S::Size { .. }, _) => return Err(ChunkError("invalid chunk size")),
                (S::Ext, b'\n') => return Err(ChunkError("bare LF in a chunk extension")),
                (S::Ext, _) => {
                    self.extra += 1;
                    if self.extra > MAX_CHUNK_EXT {
                        return Err(ChunkError("chunk extension too long"));
                    }
                    S::Ext
                }
                (S::SizeLf, b'\n') if self.size == 0 => {
                    self.extra = 0;
                    S::TrailerStart
                }
                (S::SizeLf, b'\n') => {
                    self.remaining = self.size;
                    self.size = 0;
                    S::Data
                }
                (S::DataCr, b'\r') => S::DataLf,
                (S::DataLf, b'\n') => S::Size { digits: 0 },
                (S::TrailerStart, b'\r') => S::EndLf,
                // Trailer lines are `name: value` (a line that is not, such as a request line, would be read
                // differently by a target that does not expect trailers).
                (S::TrailerStart | S::TrailerName, _) if is_token(b) => {
                    self.extra += 1;
                    if self.extra > MAX_TRAILERS {
                        return Err(ChunkError("trailers too long"));
                    }
                    S::TrailerName
                }
                (S::TrailerName, b':') => S::TrailerLine,
                (S::TrailerStart | S::TrailerName, _) => return Err(ChunkError("invalid trailer field")),
                (S::TrailerLine, b'\n') => return Err(ChunkError("bare LF in trailers")),
                (S::TrailerLine, _) => {
                    self.extra += 1;
                    if self.extra > MAX_TRAILERS {
                        return Err(ChunkError("trailers too long"));
                    }
                    if b == b'\r' { S::TrailerLf } else { S::TrailerLine }
                }
                (S::TrailerLf, b'\n') => S::TrailerStart,
                (S::EndLf, b'\n') => S::Done,
                _ => return Err(ChunkError("invalid chunk framing")),
            };
        }
        Ok(i)
    }
}

/// A `token` character (RFC 9110), as in header field names.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// How many bytes of `available` belong to a body with `framing` that still has `left` bytes to go
/// (`Length`), and whether the body is complete after them.
pub(crate) fn body_slice(
    framing: Framing,
    left: &mut u64,
    chunked: &mut Chunked,
    available: &[u8],
) -> Result<(usize, bool), ChunkError> {
    match framing {
        Framing::Empty => Ok((0, true)),
        Framing::Length(_) => {
            let n = (*left).min(available.len() as u64);
            *left -= n;
            Ok((n as usize, *left == 0))
        }
        Framing::Chunked => {
            let n = chunked.scan(available)?;
            Ok((n, chunked.is_done()))
        }
        Framing::Close => Ok((available.len(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str) -> Result<(String, Framing, bool), String> {
        let mut headers = header_buf();
        match parse_request(raw.as_bytes(), &mut headers) {
            ParsedRequest::Ready(head) => {
                let mut out = Vec::new();
                let fwd = ForwardedFor { client: b"10.0.0.7", port: b"443", https: true };
                write_request_head(&mut out, &head, &headers[..head.headers], fwd, || {
                    *b"Root=1-00000000-000000000000000000000001"
                });
                Ok((String::from_utf8(out).expect("utf8"), head.framing, head.close))
            }
            ParsedRequest::Partial => Err("partial".into()),
            ParsedRequest::Unusual(why) => Err(why.into()),
        }
    }

    #[test]
    fn request_heads_table() {
        const TRACE: &str = "x-amzn-trace-id: Root=1-00000000-000000000000000000000001\r\n";
        let fwd = "x-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: https\r\nx-forwarded-port: 443\r\n";
        let plain = format!("GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\n{fwd}{TRACE}\r\n");
        // (raw head, want rewritten head or the reason it is not for the fast path, framing, close)
        let cases: Vec<(&str, Result<String, &str>, Framing, bool)> = vec![
            ("GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\n\r\n", Ok(plain.clone()), Framing::Empty, false),
            (
                "GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nConnection: keep-alive, close\r\nTE: trailers\r\nKeep-Alive: 5\r\n\r\n",
                Ok(plain.clone()),
                Framing::Empty,
                true,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\nX-Amzn-Trace-Id: Root=1-a\r\n\r\nhello",
                Ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Amzn-Trace-Id: Root=1-a\r\nx-forwarded-for: 1.2.3.4, 10.0.0.7\r\nx-forwarded-proto: https\r\nx-forwarded-port: 443\r\n\r\n".into()),
                Framing::Length(5),
                false,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For:  \r\n\r\n",
                Ok(format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{fwd}{TRACE}\r\n")),
                Framing::Chunked,
                false,
            ),
            ("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", Ok(format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{fwd}{TRACE}\r\n")), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x", Err("partial"), Framing::Empty, false),
            ("GET / HTTP/1.0\r\nHost: x\r\n\r\n", Err("not HTTP/1.1"), Framing::Empty, false),
            ("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Err("not origin-form"), Framing::Empty, false),
            ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", Err("not origin-form"), Framing::Empty, false),
            ("CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n", Err("not origin-form"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\n\r\n", Err("no Host"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err("several Host headers"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: \u{e9}\r\n\r\n", Err("Host is not ASCII"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Err("several Content-Length headers"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", Err("invalid Content-Length"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", Err("invalid Content-Length"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err("transfer coding"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Err("Content-Length with Transfer-Encoding"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", Err("Connection options"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", Err("Upgrade or Expect"), Framing::Empty, false),
            ("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", Err("Upgrade or Expect"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\n\r\n", Err("Connection options"), Framing::Empty, false),
            ("GET / HTTP/1.1\r\nHo st: x\r\n\r\n", Err("malformed head"), Framing::Empty, false),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Err("malformed head"), Framing::Empty, false),
        ];
        for (raw, want, framing, close) in cases {
            crate::fuzzing::h1_request(raw.as_bytes());
            let got = req(raw);
            match (&got, &want) {
                (Ok((head, f, c)), Ok(w)) => {
                    assert_eq!(head, w, "{raw:?}");
                    assert_eq!((*f, *c), (framing, close), "{raw:?}");
                }
                (Err(e), Err(w)) => assert_eq!(e, w, "{raw:?}"),
                _ => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS));
        assert_eq!(req(&many).err().as_deref(), Some("malformed head"));
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}", "b".repeat(MAX_HEAD));
        assert_eq!(req(&big).err().as_deref(), Some("head too large"));
    }

    fn res(raw: &str, head_request: bool, close: bool) -> Result<(String, u16, Framing, bool), String> {
        let mut out = Vec::new();
        match parse_response(raw.as_bytes(), head_request, close, &mut out) {
            ParsedResponse::Ready(h) => Ok((String::from_utf8(out).expect("utf8"), h.status, h.framing, h.reusable)),
            ParsedResponse::Partial => Err("partial".into()),
            ParsedResponse::Informational(n) => Err(format!("informational {n}")),
            ParsedResponse::Invalid(why) => Err(why.into()),
        }
    }

    #[test]
    fn plain_targets_are_what_http_uri_keeps() {
        for (b, query) in (0u8..=255).flat_map(|b| [(b, false), (b, true)]) {
            let raw = if query { vec![b'/', b'a', b'?', b, b'b'] } else { vec![b'/', b'a', b, b'b'] };
            let Ok(target) = String::from_utf8(raw) else { continue };
            if plain_target(&target) {
                let Ok(parsed) = http::uri::PathAndQuery::try_from(target.as_str()) else {
                    panic!("byte {b:#x} rejected by http")
                };
                assert_eq!(parsed.as_str(), target, "byte {b:#x}");
            }
        }
        assert!(plain_target("/a/b?c=d&e=%20"));
        assert!(!plain_target("/a#frag"));
    }

    #[test]
    fn response_heads_table() {
        type Want = Result<(&'static str, u16, Framing, bool), &'static str>;
        // (raw, HEAD request, client asked to close, want (client head, status, framing, reusable) or error)
        let cases: Vec<(&str, bool, bool, Want)> = vec![
            (
                "HTTP/1.1 200 OK\r\nServer: n\r\nContent-Length: 3\r\n\r\nabc",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nServer: n\r\nContent-Length: 3\r\n\r\n", 200, Framing::Length(3), true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                false,
                true,
                Ok((
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nconnection: close\r\n\r\n",
                    200,
                    Framing::Length(3),
                    true,
                )),
            ),
            (
                "HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-Conn\r\nX-Conn: 1\r\nKeep-Alive: timeout=5\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n", 201, Framing::Chunked, true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, Framing::Chunked, true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", 200, Framing::Length(1), false)),
            ),
            (
                "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", 200, Framing::Close, false)),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", 200, Framing::Close, false)),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 200, Framing::Length(2), false)),
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 200, Framing::Length(2), true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                true,
                false,
                Ok(("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", 200, Framing::Empty, true)),
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 204 No Content\r\n\r\n", 204, Framing::Empty, true)),
            ),
            (
                "HTTP/1.1 304 \r\nContent-Length: 9\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 304 \r\nContent-Length: 9\r\n\r\n", 304, Framing::Empty, true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                false,
                Ok(("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Framing::Empty, true)),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
                false,
                false,
                Ok((
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
                    200,
                    Framing::Length(2),
                    true,
                )),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                false,
                false,
                Err("invalid Content-Length"),
            ),
            ("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false, false, Err("invalid Content-Length")),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, false, Err("101 without an upgrade request")),
            ("HTTP/1.1 100 Continue\r\n\r\n", false, false, Err("informational 25")),
            ("HTTP/1.1 200 OK\r\nContent-Le", false, false, Err("partial")),
            ("garbage\r\n\r\n", false, false, Err("malformed response head")),
        ];
        for (raw, head_request, close, want) in cases {
            crate::fuzzing::h1_response(raw.as_bytes(), head_request, close);
            let got = res(raw, head_request, close);
            match (&got, &want) {
                (Ok((h, s, f, r)), Ok((wh, ws, wf, wr))) => {
                    assert_eq!((h.as_str(), *s, *f, *r), (*wh, *ws, *wf, *wr), "{raw:?}");
                }
                (Err(e), Err(w)) => assert_eq!(e, w, "{raw:?}"),
                _ => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Scans `body` in pieces of `step` bytes; returns the body length found, or the error.
    fn scan_in_steps(body: &[u8], step: usize) -> Result<Option<usize>, ChunkError> {
        let mut c = Chunked::new();
        let mut total = 0;
        for piece in body.chunks(step) {
            let n = c.scan(piece)?;
            total += n;
            if c.is_done() {
                return Ok(Some(total));
            }
            assert_eq!(n, piece.len());
        }
        Ok(None)
    }

    #[test]
    fn chunked_boundaries_table() {
        // (body followed by extra bytes, want body length / None: incomplete / error)
        type Want = Result<Option<usize>, &'static str>;
        let cases: Vec<(&[u8], Want)> = vec![
            (b"0\r\n\r\nNEXT", Ok(Some(5))),
            (b"5\r\nhello\r\n0\r\n\r\n", Ok(Some(15))),
            (b"5;name=v\r\nhello\r\n0\r\n\r\nGET", Ok(Some(22))),
            (b"A\r\n0123456789\r\n1\r\nx\r\n0\r\nExpires: never\r\nX: y\r\n\r\nzz", Ok(Some(48))),
            (b"a\r\n0123456789\r\n0\r\n\r\n", Ok(Some(20))),
            (b"5\r\nhello\r\n", Ok(None)),
            (b"5\r\nhel", Ok(None)),
            (b"", Ok(None)),
            (b"\r\n", Err("invalid chunk size")),
            (b"g\r\n", Err("invalid chunk size")),
            (b"5\nhello", Err("invalid chunk size")),
            (b"5\r\nhelloX\r\n", Err("invalid chunk framing")),
            (b"5\r\nhello\rX", Err("invalid chunk framing")),
            (b"5;x\nhello", Err("bare LF in a chunk extension")),
            (b"0\r\nX: y\n\r\n", Err("bare LF in trailers")),
            (b"0\r\n\n", Err("invalid trailer field")),
            (b"0\r\nGET / HTTP/1.1\r\n\r\n", Err("invalid trailer field")),
            (b"0\r\nGET http://x/ HTTP/1.1\r\n\r\n", Err("invalid trailer field")),
            (b"0\r\nNo-Colon\r\n\r\n", Err("invalid trailer field")),
            (b"0\r\n\rX", Err("invalid chunk framing")),
            (b"1000000000000000\r\n", Err("chunk size too large")),
        ];
        for (body, want) in cases {
            crate::fuzzing::chunked(body, &[1, 5, 9, 3]);
            for step in [1, 2, 3, 7, body.len().max(1)] {
                let got = scan_in_steps(body, step).map_err(|e| e.0);
                assert_eq!(got, want, "{:?} in steps of {step}", String::from_utf8_lossy(body));
            }
        }
        let long_ext = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_EXT + 1));
        assert_eq!(scan_in_steps(long_ext.as_bytes(), 100).map_err(|e| e.0), Err("chunk extension too long"));
        let long_trailer = format!("0\r\n{}", "t".repeat(MAX_TRAILERS + 1));
        assert_eq!(scan_in_steps(long_trailer.as_bytes(), 100).map_err(|e| e.0), Err("trailers too long"));
        let big = format!("{:x}\r\n{}\r\n0\r\n\r\n", 100_000, "z".repeat(100_000));
        assert_eq!(scan_in_steps(big.as_bytes(), 4096), Ok(Some(big.len())));
    }

    #[test]
    fn body_slices() {
        let mut left = 5;
        let mut c = Chunked::new();
        assert_eq!(body_slice(Framing::Length(5), &mut left, &mut c, b"abc"), Ok((3, false)));
        assert_eq!(body_slice(Framing::Length(5), &mut left, &mut c, b"deNEXT"), Ok((2, true)));
        assert_eq!(body_slice(Framing::Empty, &mut left, &mut c, b"x"), Ok((0, true)));
        assert_eq!(body_slice(Framing::Close, &mut left, &mut c, b"xyz"), Ok((3, false)));
        assert_eq!(body_slice(Framing::Chunked, &mut left, &mut c, b"1\r\nx\r\n0\r\n\r\nGET"), Ok((11, true)));
    }
}
