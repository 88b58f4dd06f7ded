//! The demo's endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Request, Response};

/// The longest `/sleep` honoured (10 minutes).
pub const MAX_SLEEP_MS: u64 = 600_000;
/// The longest `/cpu` burn honoured (1 minute).
pub const MAX_CPU_MS: u64 = 60_000;

/// What the app knows about itself, fixed at start.
#[derive(Debug, Clone)]
pub struct Identity {
    pub version: String,
    pub hostname: String,
}

/// `DEMO_FAIL_RATE`: the share of requests to `/` answered 500, spread evenly (the k-th request fails when
/// `floor(k × rate)` grows, so 0.05 fails exactly every 20th, never two in a row), counted across connections.
/// Kept in millionths so the spread is exact for rates such as 0.05 or 0.1.
#[derive(Debug, Default)]
pub struct FailRate {
    per_million: u64,
    seen: AtomicU64,
}

impl FailRate {
    /// Parses a rate from 0.0 to 1.0 (`0.05`, `1`, `0`); anything else is an error naming the value.
    pub fn parse(value: &str) -> Result<FailRate, String> {
        let rate: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("DEMO_FAIL_RATE must be a number from 0.0 to 1.0, got {value:?}"))?;
        if !rate.is_finite() || !(0.0..=1.0).contains(&rate) {
            return Err(format!("DEMO_FAIL_RATE must be from 0.0 to 1.0, got {value:?}"));
        }
        Ok(FailRate { per_million: (rate * 1_000_000.0).round() as u64, seen: AtomicU64::new(0) })
    }

    /// The rate in millionths.
    pub fn per_million(&self) -> u64 {
        self.per_million
    }

    /// Counts one request and says whether it fails.
    pub fn next_fails(&self) -> bool {
        if self.per_million == 0 {
            return false;
        }
        let k = u128::from(self.seen.fetch_add(1, Ordering::Relaxed)) + 1;
        let rate = u128::from(self.per_million);
        k * rate / 1_000_000 > (k - 1) * rate / 1_000_000
    }
}

/// Answers one request. Sleeps and CPU burns happen on the calling (per-connection) thread.
pub fn handle(req: &Request, id: &Identity, fail: &FailRate) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        let known =
            matches!(req.path.as_str(), "/" | "/ping" | "/sleep" | "/cpu" | "/env") || req.path.starts_with("/status/");
        return if known { Response::text(405, "method not allowed\n") } else { not_found() };
    }
    match req.path.as_str() {
        "/ping" => Response::text(200, "pong"),
        "/" if fail.next_fails() => {
            Response::text(500, format!("injected failure (DEMO_FAIL_RATE {} per million)\n", fail.per_million()))
        }
        "/" => Response::html(index(id)),
        "/sleep" => match millis(req, MAX_SLEEP_MS) {
            Ok(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                Response::text(200, format!("slept {ms} ms\n"))
            }
            Err(r) => r,
        },
        "/cpu" => match millis(req, MAX_CPU_MS) {
            Ok(ms) => {
                let iterations = burn(Duration::from_millis(ms));
                Response::text(200, format!("burned {ms} ms of cpu ({iterations} iterations)\n"))
            }
            Err(r) => r,
        },
        "/env" => Response::text(200, env_listing(std::env::vars_os())),
        path => match path.strip_prefix("/status/") {
            Some(code) => status(code),
            None => not_found(),
        },
    }
}

fn not_found() -> Response {
    Response::text(404, "not found\n")
}

fn status(code: &str) -> Response {
    match code.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Response::text(c, format!("status {c}\n")),
        _ => Response::text(400, "status must be a number from 100 to 599\n"),
    }
}

/// Reads `ms` from the query: required, a non-negative integer, capped at `cap`.
fn millis(req: &Request, cap: u64) -> Result<u64, Response> {
    match req.query_param("ms").map(str::parse::<u64>) {
        Some(Ok(ms)) => Ok(ms.min(cap)),
        Some(Err(_)) => Err(Response::text(400, "ms must be a non-negative integer\n")),
        None => Err(Response::text(400, "missing ms query parameter\n")),
    }
}

fn burn(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut n: u64 = 0;
    while start.elapsed() < d {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        n += 1;
    }
    std::hint::black_box(x);
    n
}

/// `KEY=value` lines, sorted by key; non-UTF-8 bytes are replaced.
pub fn env_listing(vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> String {
    let mut lines: Vec<(String, String)> =
        vars.map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect();
    lines.sort();
    lines.into_iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn index(id: &Identity) -> String {
    let v = escape_html(&id.version);
    let h = escape_html(&id.hostname);
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>berth demo</title></head>\n\
         <body><h1>berth demo</h1><p>version <b>{v}</b> on host <b>{h}</b></p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn get(target: &str) -> Response {
        get_with("GET", target)
    }

    fn get_with(method: &str, target: &str) -> Response {
        let raw = format!("{method} {target} HTTP/1.1\r\n\r\n");
        let Ok(Some((req, _))) = parse_head(raw.as_bytes()) else { panic!("bad test request {raw:?}") };
        handle(&req, &Identity { version: "v<1>".into(), hostname: "abc123".into() }, &FailRate::default())
    }

    fn fails(rate: &FailRate, n: usize) -> Vec<usize> {
        (1..=n).filter(|_| rate.next_fails()).collect()
    }

    #[test]
    fn fail_rates_parse_and_spread_evenly() {
        // (value, the requests among the first 40 that fail)
        let cases: Vec<(&str, Vec<usize>)> = vec![
            ("0", vec![]),
            ("0.0", vec![]),
            ("0.05", vec![20, 40]),
            (" 0.1 ", vec![10, 20, 30, 40]),
            ("0.25", vec![4, 8, 12, 16, 20, 24, 28, 32, 36, 40]),
            ("1", (1..=40).collect()),
            ("0.5", (1..=20).map(|i| 2 * i).collect()),
        ];
        for (value, want) in cases {
            let rate = FailRate::parse(value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(fails(&rate, 40), want, "{value}");
        }
        // Exactly the share over a long run, never two in a row below one half.
        let rate = FailRate::parse("0.03").unwrap_or_else(|e| panic!("{e}"));
        let failed = fails(&rate, 10_000);
        assert_eq!(failed.len(), 300);
        assert!(failed.windows(2).all(|w| w[1] - w[0] >= 33), "{failed:?}");
        for bad in ["", "x", "-0.1", "1.01", "NaN", "inf", "5%"] {
            let e = FailRate::parse(bad).map(|_| ()).expect_err(bad);
            assert!(e.contains("DEMO_FAIL_RATE") && e.contains("0.0 to 1.0"), "{e}");
        }
    }

    #[test]
    fn only_the_index_fails() {
        let rate = FailRate::parse("1").unwrap_or_else(|e| panic!("{e}"));
        let id = Identity { version: "v2".into(), hostname: "h".into() };
        let call = |target: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\n\r\n");
            let Ok(Some((req, _))) = parse_head(raw.as_bytes()) else { panic!("bad test request {raw:?}") };
            handle(&req, &id, &rate).status
        };
        assert_eq!(call("/"), 500);
        assert_eq!(call("/"), 500);
        assert_eq!(call("/ping"), 200);
        assert_eq!(call("/env"), 200);
        assert_eq!(call("/status/201"), 201);
        assert_eq!(call("/nope"), 404);
        // Half: every other request to `/`, whatever comes between.
        let half = FailRate::parse("0.5").unwrap_or_else(|e| panic!("{e}"));
        let statuses: Vec<u16> = ["/", "/ping", "/", "/", "/ping", "/"]
            .iter()
            .map(|t| {
                let raw = format!("GET {t} HTTP/1.1\r\n\r\n");
                let Ok(Some((req, _))) = parse_head(raw.as_bytes()) else { panic!("bad test request") };
                handle(&req, &id, &half).status
            })
            .collect();
        assert_eq!(statuses, vec![200, 200, 500, 200, 200, 500]);
    }

    #[test]
    fn routes() {
        let ping = get("/ping");
        assert_eq!((ping.status, ping.body.as_slice()), (200, b"pong".as_slice()));
        let index = get("/");
        assert_eq!(index.status, 200);
        let html = String::from_utf8_lossy(&index.body);
        assert!(html.contains("v&lt;1&gt;") && html.contains("abc123"), "{html}");
        assert_eq!(get("/nope").status, 404);
        assert_eq!(get("/ping/").status, 404);
        assert_eq!(get("/env").status, 200);
        assert_eq!(get_with("POST", "/ping").status, 405);
        assert_eq!(get_with("POST", "/nope").status, 404);
        assert_eq!(get_with("HEAD", "/ping").status, 200);
    }

    #[test]
    fn status_codes_are_validated() {
        assert_eq!(get("/status/503").status, 503);
        assert_eq!(get("/status/100").status, 100);
        assert_eq!(get("/status/599").status, 599);
        assert_eq!(get("/status/600").status, 400);
        assert_eq!(get("/status/99").status, 400);
        assert_eq!(get("/status/abc").status, 400);
        assert_eq!(get("/status/").status, 400);
    }

    #[test]
    fn sleep_and_cpu_take_ms() {
        assert_eq!(get("/sleep?ms=1").status, 200);
        assert_eq!(get("/cpu?ms=1").status, 200);
        assert_eq!(get("/sleep").status, 400);
        assert_eq!(get("/sleep?ms=-1").status, 400);
        assert_eq!(get("/cpu?ms=x").status, 400);
    }

    #[test]
    fn env_is_sorted_lines() {
        let vars = [("B", "2"), ("A", "1=x"), ("C", "")].map(|(k, v)| (k.into(), v.into()));
        assert_eq!(env_listing(vars.into_iter()), "A=1=x\nB=2\nC=\n");
    }
}
