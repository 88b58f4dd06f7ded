//! CSRF protection on every change: a middleware that checks each POST's origin (the browser's `Sec-Fetch-Site`
//! and `Origin`) against the console's own, and its `csrf` form field against the session's token.
//!
//! Origin rule (strict): when the browser sends `Sec-Fetch-Site`, it must be `same-origin`; when it sends
//! `Origin`, it must be exactly the origin the request was made to (`https://` + its `Host`), and that must be
//! the console's configured origin or, when that is a loopback name, the same port on another loopback name
//! (`localhost`, `127.0.0.1`, `[::1]`): a browser on `https://127.0.0.1:9445` says `Origin: https://127.0.0.1:9445`
//! and `Host: 127.0.0.1:9445`, which is same-origin by its own account. `Origin: null` is refused. Requests with
//! neither header (not a browser) rely on the token alone, which only a page of the session can know.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, Method};

use crate::{AppState, ConsoleError, session};

/// The name of the hidden form field.
pub const FIELD: &str = "csrf";

/// The largest form body the console reads.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// Whether the browser's headers allow a change on this console.
pub fn origin_allowed(headers: &HeaderMap, configured_origin: &str) -> bool {
    if headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() != b"same-origin") {
        return false;
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(host) = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let requested = format!("https://{host}");
    if !origin.eq_ignore_ascii_case(&requested) {
        return false;
    }
    if origin.eq_ignore_ascii_case(configured_origin) {
        return true;
    }
    match (loopback_port(configured_origin), loopback_port(origin)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The port of an `https://` origin on a loopback name.
fn loopback_port(origin: &str) -> Option<u16> {
    let rest = origin.strip_prefix("https://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let loopback = ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| host.eq_ignore_ascii_case(l));
    if !loopback {
        return None;
    }
    port.parse().ok()
}

/// Whether the form's token is the session's (compared in constant time; an empty token never matches).
pub fn token_matches(given: &str, expected: &str) -> bool {
    !expected.is_empty() && berth_core::ids::constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// The first value of `name` in an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_pairs(body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Every `key=value` pair of a urlencoded body, decoded (`+` is a space).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| {
        let spaced: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&spaced).decode_utf8_lossy().into_owned()
    };
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The middleware: every request that is not GET/HEAD passes the origin check; every one but the sign-in form
/// also carries the session's token. A failure answers 403 and the handler never runs.
pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    if !origin_allowed(req.headers(), &state.config().origin) {
        tracing::info!(path = %req.uri().path(), "console: refused a change from another origin");
        return ConsoleError::Csrf.into_response();
    }
    if req.uri().path() == "/signin" {
        return next.run(req).await;
    }
    let Some((_, session)) = session::from_headers(&state, req.headers()) else {
        // No session: nothing to change as anyone; sign in first.
        return Redirect::to("/signin").into_response();
    };
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return ConsoleError::BadInput(format!("the form is over {MAX_FORM_BYTES} bytes")).into_response(),
    };
    let given = form_field(&bytes, FIELD).unwrap_or_default();
    if !token_matches(&given, &session.csrf) {
        tracing::info!(path = %parts.uri.path(), "console: refused a change without the session's CSRF token");
        return ConsoleError::Csrf.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "https://localhost:9445";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_cases() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("no browser headers (curl, scripts): token only", &[("host", "localhost:9445")], true),
            ("own origin", &[("host", "localhost:9445"), ("origin", CONSOLE)], true),
            (
                "own origin, browser says same-origin",
                &[("host", "localhost:9445"), ("origin", CONSOLE), ("sec-fetch-site", "same-origin")],
                true,
            ),
            (
                "127.0.0.1 form of the same port, same-origin by the browser",
                &[("host", "127.0.0.1:9445"), ("origin", "https://127.0.0.1:9445"), ("sec-fetch-site", "same-origin")],
                true,
            ),
            ("another port", &[("host", "localhost:9445"), ("origin", "https://localhost:8000")], false),
            ("another site", &[("host", "localhost:9445"), ("origin", "https://evil.example")], false),
            ("plain http on the same host", &[("host", "localhost:9445"), ("origin", "http://localhost:9445")], false),
            (
                "origin differs from the host asked (127.0.0.1 page posting to localhost)",
                &[("host", "localhost:9445"), ("origin", "https://127.0.0.1:9445")],
                false,
            ),
            ("origin null (sandboxed or file page)", &[("host", "localhost:9445"), ("origin", "null")], false),
            ("browser says cross-site", &[("host", "localhost:9445"), ("sec-fetch-site", "cross-site")], false),
            (
                "browser says same-site (another port)",
                &[("host", "localhost:9445"), ("sec-fetch-site", "same-site")],
                false,
            ),
            (
                "browser says none (typed URL) but POST",
                &[("host", "localhost:9445"), ("origin", CONSOLE), ("sec-fetch-site", "none")],
                false,
            ),
            (
                "same-origin claim with a foreign Origin",
                &[("host", "localhost:9445"), ("origin", "https://evil.example"), ("sec-fetch-site", "same-origin")],
                false,
            ),
            ("origin without a host header", &[("origin", CONSOLE)], false),
            (
                "a non-loopback name on the same port",
                &[("host", "evil.localtest.me:9445"), ("origin", "https://evil.localtest.me:9445")],
                false,
            ),
        ];
        for (name, h, want) in cases {
            assert_eq!(origin_allowed(&headers(h), CONSOLE), *want, "{name}");
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", ""), "an empty expected token never matches");
    }

    #[test]
    fn form_parsing() {
        let body = b"csrf=t%2B1&name=my+app&env=A%3D1%0D%0AB%3D2&flag&csrf=second";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("t+1"), "the first value wins");
        assert_eq!(form_field(body, "name").as_deref(), Some("my app"));
        assert_eq!(form_field(body, "env").as_deref(), Some("A=1\r\nB=2"));
        assert_eq!(form_field(body, "flag").as_deref(), Some(""));
        assert_eq!(form_field(body, "missing"), None);
        assert_eq!(form_pairs(b"").len(), 0);
        assert_eq!(form_pairs(b"a=%ZZ").first().map(|(_, v)| v.as_str()), Some("%ZZ"), "bad escapes kept");
    }
}
