//! Entry points for the fuzz targets under `fuzz/` (cargo-fuzz). Not an API: they exist so the crate-private
//! parsing and matching code can be driven with arbitrary input, and they assert the invariants it promises.

use std::net::{IpAddr, SocketAddr};

use berth_routes::{Redirect, Rule};
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use crate::rules::{Cond, RedirectInput, RequestView, RuleSet, Wildcard};

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
    let w = Wildcard::new(pattern, fold);
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
