//! A deliberately small HTTP/1.1 request parser and response writer: request heads with a bounded size,
//! `Content-Length` bodies, keep-alive per the version and `Connection` header. No chunked request bodies.

use std::fmt::Write as _;

/// The largest request head (request line plus headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest request body accepted (it is read and discarded).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string (without `?`), empty if none.
    pub query: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter (no percent-decoding; the demo's parameters are numbers).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Why a request head could not be parsed; each maps to the status the server answers with before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed request line or header (400).
    Bad(&'static str),
    /// The head exceeds [`MAX_HEAD_BYTES`] (431).
    HeadTooLarge,
    /// The declared body exceeds [`MAX_BODY_BYTES`] (413).
    BodyTooLarge,
    /// A body encoding the demo does not implement, e.g. chunked (501).
    Unsupported(&'static str),
    /// Not HTTP/1.x (505).
    Version,
}

impl ParseError {
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Bad(_) => 400,
            ParseError::HeadTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::Unsupported(_) => 501,
            ParseError::Version => 505,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            ParseError::Bad(m) | ParseError::Unsupported(m) => m,
            ParseError::HeadTooLarge => "request header too large",
            ParseError::BodyTooLarge => "request body too large",
            ParseError::Version => "HTTP version not supported",
        }
    }
}

/// Finds the end of a request head in `buf`: the index just past the blank line (CRLF CRLF, or bare LF LF).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the request and the number of bytes its head used.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    // Tolerate blank lines before a request line (RFC 9112 section 2.2).
    let skip = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
    let rest = &buf[skip..];
    let Some(end) = head_end(rest) else {
        return if buf.len() > MAX_HEAD_BYTES { Err(ParseError::HeadTooLarge) } else { Ok(None) };
    };
    if end > MAX_HEAD_BYTES {
        return Err(ParseError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&rest[..end]).map_err(|_| ParseError::Bad("request head is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(ParseError::Bad("missing request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Bad("malformed request line"));
    };
    if !is_token(method) {
        return Err(ParseError::Bad("malformed method"));
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(ParseError::Bad("malformed request target"));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(ParseError::Version),
        _ => return Err(ParseError::Bad("malformed HTTP version")),
    };

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            return Err(ParseError::Bad("obsolete header folding"));
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::Bad("header without colon"))?;
        if !is_token(name) {
            return Err(ParseError::Bad("malformed header name"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::HeadTooLarge);
        }
        headers.push((name.to_string(), value.trim_matches([' ', '\t']).to_string()));
    }

    let mut content_length: Option<usize> = None;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| ParseError::Bad("malformed Content-Length"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(ParseError::Bad("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ParseError::Unsupported("Transfer-Encoding request bodies are not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            for opt in value.split(',').map(str::trim) {
                connection_close |= opt.eq_ignore_ascii_case("close");
                connection_keep_alive |= opt.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY_BYTES {
        return Err(ParseError::BodyTooLarge);
    }
    let keep_alive = !connection_close && (minor_version == 1 || connection_keep_alive);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let request =
        Request { method: method.to_string(), path, query, minor_version, headers, content_length, keep_alive };
    Ok(Some((request, skip + end)))
}

/// A response to write: status, content type and body; the server adds the common headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Forces the connection closed after this response.
    pub close: bool,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into().into_bytes(), close: false }
    }

    pub fn html(body: String) -> Self {
        Self { status: 200, content_type: "text/html; charset=utf-8", body: body.into_bytes(), close: false }
    }

    /// Serialises the response. `head_only` omits the body (for HEAD requests) but keeps its length.
    pub fn to_bytes(&self, extra_headers: &[(&str, &str)], keep_alive: bool, head_only: bool) -> Vec<u8> {
        // 1xx, 204 and 304 carry no body and no Content-Length (RFC 9110 sections 8.6, 15.2, 15.3.5, 15.4.5).
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        let keep_alive = keep_alive && !self.close && self.status >= 200;
        let mut head = String::with_capacity(256);
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if !bodiless {
            let _ = write!(head, "Content-Type: {}\r\nContent-Length: {}\r\n", self.content_type, self.body.len());
        }
        for (k, v) in extra_headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
        let mut out = head.into_bytes();
        if !bodiless && !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// Whether the connection may stay open after this response.
    pub fn keeps_alive(&self, request_keep_alive: bool) -> bool {
        request_keep_alive && !self.close && self.status >= 200
    }
}

/// The reason phrase for a status code ("" for codes without a registered phrase, which HTTP allows).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(Request, usize)>, ParseError> {
        parse_head(s.as_bytes())
    }

    fn ok(s: &str) -> Request {
        match parse(s) {
            Ok(Some((r, used))) => {
                assert_eq!(used, s.len(), "consumed the whole head");
                r
            }
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn parses_simple_get() {
        let r = ok("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/ping");
        assert_eq!(r.query, "");
        assert_eq!(r.minor_version, 1);
        assert_eq!(r.header("host"), Some("x"));
        assert_eq!(r.content_length, 0);
        assert!(r.keep_alive);
    }

    #[test]
    fn splits_query_and_reads_params() {
        let r = ok("GET /sleep?ms=250&x HTTP/1.1\r\n\r\n");
        assert_eq!(r.path, "/sleep");
        assert_eq!(r.query_param("ms"), Some("250"));
        assert_eq!(r.query_param("x"), Some(""));
        assert_eq!(r.query_param("y"), None);
    }

    #[test]
    fn incomplete_head_needs_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn leaves_pipelined_bytes_alone() {
        let s = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let Ok(Some((r, used))) = parse(s) else { panic!("expected a request") };
        assert_eq!(r.path, "/a");
        assert_eq!(&s[used..], "GET /b HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn content_length() {
        assert_eq!(ok("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").content_length, 5);
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(ParseError::Bad("malformed Content-Length"))
        );
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(ParseError::Bad("conflicting Content-Length"))
        );
        assert_eq!(parse("POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), Err(ParseError::BodyTooLarge));
        assert!(matches!(
            parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(ParseError::Unsupported(_))
        ));
    }

    #[test]
    fn rejects_malformed_heads() {
        assert!(matches!(parse("GET /\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse("GET / HTTP/1.1 extra\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse("G(T / HTTP/1.1\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse("GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse("GET / HTTP/1.1\r\nBad Name: b\r\n\r\n"), Err(ParseError::Bad(_))));
        assert_eq!(parse("GET / HTTP/2.0\r\n\r\n"), Err(ParseError::Version));
        assert!(matches!(parse("GET / FTP/1.0\r\n\r\n"), Err(ParseError::Bad(_))));
    }

    #[test]
    fn bounds_head_size() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big), Err(ParseError::HeadTooLarge));
        let big_complete = format!("{big}\r\n");
        assert_eq!(parse(&big_complete), Err(ParseError::HeadTooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn tolerates_bare_lf_and_leading_blank_lines() {
        let r = ok("\r\nGET /x HTTP/1.1\nHost: h\n\n");
        assert_eq!(r.path, "/x");
        assert_eq!(r.header("Host"), Some("h"));
    }

    #[test]
    fn serialises_responses() {
        let r = Response::text(200, "pong");
        let bytes = String::from_utf8(r.to_bytes(&[("x-demo-version", "dev")], true, false)).unwrap_or_default();
        assert_eq!(
            bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\nx-demo-version: dev\r\nConnection: keep-alive\r\n\r\npong"
        );
        let head = String::from_utf8(r.to_bytes(&[], false, true)).unwrap_or_default();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"), "{head}");
        let no_content =
            String::from_utf8(Response::text(204, "ignored").to_bytes(&[], true, false)).unwrap_or_default();
        assert_eq!(no_content, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");
        let info = Response::text(103, "");
        assert!(!info.keeps_alive(true));
        assert!(
            String::from_utf8(info.to_bytes(&[], true, false)).unwrap_or_default().starts_with("HTTP/1.1 103 \r\n")
        );
    }
}
