//! Entry points for the fuzz targets under `fuzz/` (cargo-fuzz). Not an API: they exist so the crate-private
//! parsing and matching code can be driven with arbitrary input, and they assert the invariants it promises.

use std::net::{IpAddr, SocketAddr};

use berth_routes::{Redirect, Rule};
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::rules::{Cond, RedirectInput, RequestView, RuleSet};

/// Host / `:authority` parsing: the result is never empty, lowercase, and stable when parsed again.
/// Inputs the proxy can never see (invalid header values or authorities) are ignored.
pub fn request_host(host_header: Option<&str>, authority: Option<&str>) -> Option<String> {
    let host_header = host_header.filter(|h| HeaderValue::from_str(h).is_ok());
    let authority = authority.filter(|a| a.parse::<http::uri::Authority>().is_ok());
    let host = crate::route::request_host(host_header, authority)?;
    assert!(!host.is_empty());
    assert!(!host.bytes().any(|b| b.is_ascii_uppercase()), "{host:?}");
    let _ = crate::route::strip_port(&host);
    let _ = crate::route::redirect_location(&host, "/", 443);
    Some(host)
}

/// A wildcard pattern against a text; a pattern without special characters matches exactly itself.
pub fn wildcard(pattern: &str, text: &str, fold: bool) -> bool {
    let w = crate::rules::wildcard(pattern, fold);
    if !pattern.contains(['*', '?', '\\']) {
        assert!(w.matches(pattern), "{pattern:?} must match itself");
    }
    if !pattern.is_empty() && pattern.bytes().all(|b| b == b'*') {
        assert!(w.matches(text));
    }
    w.matches(text)
}

/// A request as the fuzzer describes it.
#[derive(Debug)]
pub struct FuzzRequest<'a> {
    pub host_header: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub path_and_query: &'a str,
    pub method: &'a str,
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub source: IpAddr,
}

fn header_map(pairs: &[(&[u8], &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    headers
}

/// Compiles `rules` plus host routes for `hosts` and matches the request; returns the matched priority.
pub fn match_rules(rules: &[Rule], hosts: &[String], req: &FuzzRequest<'_>) -> Option<u32> {
    let compiled: Vec<_> = rules
        .iter()
        .filter_map(|r| {
            let conds: Result<Vec<Cond>, String> = r.conditions.iter().map(Cond::compile).collect();
            conds.ok().map(|c| (r.priority, c, r.arn.clone()))
        })
        .collect();
    let set = RuleSet::new(compiled, hosts.iter().map(|h| (berth_certs::normalize_server_name(h), h.clone())));
    let host = crate::route::request_host(req.host_header, req.authority)?;
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path_and_query, None),
    };
    let headers = header_map(req.headers);
    let view = RequestView { host: &host, path, query, method: req.method, headers: &headers, source: req.source };
    set.find(&view).map(|(m, _)| m.priority())
}

/// An ALB redirect's Location; when there is one it is a valid header value.
pub fn redirect(r: &Redirect, host: &str, port: u16, path: &str, query: Option<&str>) -> Option<String> {
    let input = RedirectInput { protocol: "HTTPS", host, port, path, query };
    let location = crate::rules::redirect_location(r, &input)?;
    assert!(location.starts_with("http://") || location.starts_with("https://"), "{location}");
    Some(location)
}

/// Header handling on arbitrary headers: hop-by-hop stripping, forwarding headers, WebSocket detection,
/// the stickiness cookies.
pub fn headers(pairs: &[(&[u8], &[u8])], client: SocketAddr, https: bool) {
    let mut headers = header_map(pairs);
    let _ = crate::route::cookie(&headers, "AWSALBTG");
    if let Some(value) = crate::route::cookie(&headers, crate::route::LB_COOKIE) {
        // An arbitrary cookie value never opens under a key it was not sealed with.
        assert_eq!(crate::route::StickyKey::new("fuzz").open("lb", "tg", value), None);
    }
    let mut req = Request::new(());
    *req.headers_mut() = headers.clone();
    let _ = crate::forward::is_websocket(&req);
    crate::forward::strip_hop_by_hop(&mut headers);
    for name in ["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"] {
        assert!(!headers.contains_key(name), "{name} survived");
    }
    crate::forward::set_forwarded_headers(&mut headers, &crate::forward::Forwarded::new(client, 443, https));
    assert!(
        headers.contains_key("x-forwarded-for")
            || pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-for"))
    );
    assert!(headers.contains_key("x-amzn-trace-id"));
}

/// The fast path's request head parsing and rewriting: a head it accepts is rewritten into a head that
/// parses again, is accepted again with the same framing, carries exactly one `X-Forwarded-For` and no
/// hop-by-hop header; the fast path's host normalization agrees with [`request_host`].
pub fn h1_request(raw: &[u8]) {
    use crate::h1::{ForwardedFor, ParsedRequest, header_buf, parse_request, write_request_head};
    let mut storage = header_buf();
    let ParsedRequest::Ready(head) = parse_request(raw, &mut storage) else { return };
    assert!(head.len <= raw.len());
    let expected = crate::route::request_host(Some(head.host), None);
    assert_eq!(crate::fast::normalized_host(head.host).map(std::borrow::Cow::into_owned), expected);
    let mut out = Vec::new();
    let fwd = ForwardedFor { client: b"10.1.2.3", port: b"443", https: true };
    write_request_head(&mut out, &head, &storage[..head.headers], fwd, || *b"Root=1-00000000-000000000000000000000000");
    let mut again = header_buf();
    let ParsedRequest::Ready(rewritten) = parse_request(&out, &mut again) else {
        panic!("rewritten head not accepted: {:?}", String::from_utf8_lossy(&out))
    };
    assert_eq!(rewritten.len, out.len());
    assert_eq!(rewritten.framing, head.framing);
    assert_eq!((rewritten.method, rewritten.target), (head.method, head.target));
    let names: Vec<String> = again[..rewritten.headers].iter().map(|h| h.name.to_ascii_lowercase()).collect();
    assert_eq!(names.iter().filter(|n| *n == "x-forwarded-for").count(), 1);
    assert_eq!(names.iter().filter(|n| *n == "x-amzn-trace-id").count().min(1), 1);
    for hop in ["connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection"] {
        assert!(!names.iter().any(|n| n == hop), "{hop} forwarded");
    }
}

/// The fast path's response head rewriting: what it sends to the client parses as a response with the same
/// status and no hop-by-hop header but its own `Connection: close`.
pub fn h1_response(raw: &[u8], head_request: bool, close: bool) {
    use crate::h1::{Framing, ParsedResponse, parse_response};
    let mut out = Vec::new();
    let ParsedResponse::Ready(head) = parse_response(raw, head_request, close, &mut out) else { return };
    assert!(head.len <= raw.len());
    let mut storage = crate::h1::header_buf();
    let mut parsed = httparse::Response::new(&mut storage);
    assert_eq!(
        parsed.parse(&out).ok(),
        Some(httparse::Status::Complete(out.len())),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(parsed.code, Some(head.status));
    let connection: Vec<&[u8]> =
        parsed.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")).map(|h| h.value).collect();
    let closes = close || head.framing == Framing::Close;
    assert_eq!(connection, if closes { vec![&b"close"[..]] } else { vec![] });
    for hop in ["keep-alive", "te", "trailer", "upgrade", "proxy-connection"] {
        assert!(!parsed.headers.iter().any(|h| h.name.eq_ignore_ascii_case(hop)), "{hop} forwarded");
    }
    if head.framing == Framing::Chunked {
        assert!(parsed.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding")));
    }
}

/// The chunked-body scanner gives the same result whatever pieces the body arrives in.
pub fn chunked(body: &[u8], cuts: &[u16]) {
    let mut whole = crate::h1::Chunked::new();
    let expected = whole.scan(body).map(|n| (n, whole.is_done()));
    let mut pieces = crate::h1::Chunked::new();
    let mut at = 0;
    let mut got = Ok((0, false));
    let mut bounds: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % (body.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(body.len());
    for end in bounds {
        if end < at {
            continue;
        }
        match pieces.scan(&body[at..end]) {
            Ok(n) => {
                got = Ok((at + n, pieces.is_done()));
                if pieces.is_done() {
                    break;
                }
                at = end;
            }
            Err(e) => {
                got = Err(e);
                break;
            }
        }
    }
    assert_eq!(got, expected);
}
