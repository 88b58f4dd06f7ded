//! Pure ALB listener-rule matching: wildcard patterns, CIDRs, the six condition types, rule order (explicit
//! rules by priority, host routes as exact-host rules at [`HOST_ROUTE_PRIORITY`]), redirect URLs and the load
//! balancers' security-group source filters ([`SourceFilters`]). No I/O,
//! no locks; rules are compiled once per route table and matched against a borrowed [`RequestView`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use berth_core::wildcard::{Token, Wildcard};
use berth_routes::{Condition, HOST_ROUTE_PRIORITY, Redirect};
use http::{HeaderMap, HeaderName};

/// An ALB wildcard pattern: `*` any run (possibly empty), `?` exactly one character; `\*`, `\?`, `\\` are
/// literals (a lone trailing `\` too). Case folding (ASCII) is decided at compile time.
pub(crate) fn wildcard(pattern: &str, fold: bool) -> Wildcard {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut bytes = pattern.bytes();
    while let Some(b) = bytes.next() {
        tokens.push(match b {
            b'*' => Token::Star { colon: true },
            b'?' => Token::One { colon: true },
            b'\\' => Token::Byte(bytes.next().unwrap_or(b'\\')),
            b => Token::Byte(b),
        });
    }
    Wildcard::new(tokens, fold)
}

/// An address block; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return None;
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                Some(Cidr::V4 { net: u32::from(a) & mask, mask })
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return None;
                }
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
                Some(Cidr::V6 { net: u128::from(a) & mask, mask })
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Cidr::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

/// The load balancers' source filters, compiled once per table: host → the CIDRs each listener admits.
/// Lookups borrow the request's (already lowercase) host and allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct SourceFilters {
    by_host: HashMap<String, Arc<ListenerSources>>,
}

/// The CIDRs one load balancer admits on each listener.
#[derive(Debug)]
struct ListenerSources {
    https: Vec<Cidr>,
    http: Vec<Cidr>,
}

impl SourceFilters {
    /// Invalid CIDRs are dropped (logged): a filter never admits more than its valid entries say.
    pub fn new(filters: &[berth_routes::SourceFilter]) -> Self {
        let compile = |list: &[String]| -> Vec<Cidr> {
            list.iter()
                .filter_map(|c| {
                    let parsed = Cidr::parse(c);
                    if parsed.is_none() {
                        tracing::warn!(cidr = %c, "ignoring an invalid source CIDR");
                    }
                    parsed
                })
                .collect()
        };
        let mut by_host = HashMap::new();
        for f in filters {
            let lists = Arc::new(ListenerSources { https: compile(&f.https), http: compile(&f.http) });
            for h in &f.hosts {
                by_host.insert(h.to_ascii_lowercase(), Arc::clone(&lists));
            }
        }
        SourceFilters { by_host }
    }

    /// Whether a client at `source` may reach lowercase `host` on the HTTPS (`https`) or HTTP listener.
    /// A host no filter names is open to everyone.
    pub fn allows(&self, host: &str, https: bool, source: IpAddr) -> bool {
        match self.by_host.get(host) {
            None => true,
            Some(lists) => {
                let cidrs = if https { &lists.https } else { &lists.http };
                cidrs.iter().any(|c| c.contains(source))
            }
        }
    }
}

/// What rules look at in a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    /// Normalized: lowercase, no port, no trailing dot.
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub method: &'a str,
    pub headers: &'a HeaderMap,
    pub source: IpAddr,
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Host(Vec<Wildcard>),
    Path(Vec<Wildcard>),
    Header(HeaderName, Vec<Wildcard>),
    Method(Vec<String>),
    Query(Vec<(Option<Wildcard>, Wildcard)>),
    SourceIp(Vec<Cidr>),
}

impl Cond {
    /// Compiles a condition; an invalid header name or CIDR is an error (the rule is not served).
    pub fn compile(c: &Condition) -> Result<Cond, String> {
        let wild = |values: &[String], fold| values.iter().map(|v| wildcard(v, fold)).collect();
        Ok(match c {
            Condition::HostHeader { values } => Cond::Host(wild(values, true)),
            Condition::PathPattern { values } => Cond::Path(wild(values, false)),
            Condition::HttpHeader { name, values } => {
                let name = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| format!("invalid header name {name:?}"))?;
                Cond::Header(name, wild(values, true))
            }
            Condition::HttpRequestMethod { values } => Cond::Method(values.clone()),
            Condition::QueryString { values } => Cond::Query(
                values
                    .iter()
                    .map(|p| {
                        let key = p.key.as_deref().map(|k| wildcard(&berth_core::percent::decode_lossy(k), true));
                        (key, wildcard(&berth_core::percent::decode_lossy(&p.value), true))
                    })
                    .collect(),
            ),
            Condition::SourceIp { values } => Cond::SourceIp(
                values
                    .iter()
                    .map(|v| Cidr::parse(v).ok_or_else(|| format!("invalid CIDR {v:?}")))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Cond::Host(values) => values.iter().any(|w| w.matches(req.host)),
            Cond::Path(values) => values.iter().any(|w| w.matches(req.path)),
            Cond::Header(name, values) => req
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| values.iter().any(|w| w.matches(v))),
            Cond::Method(values) => values.iter().any(|m| m == req.method),
            Cond::Query(pairs) => {
                let Some(query) = req.query else { return false };
                query.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let (k, v) = (berth_core::percent::decode_lossy(k), berth_core::percent::decode_lossy(v));
                    pairs.iter().any(|(pk, pv)| pk.as_ref().is_none_or(|pk| pk.matches(&k)) && pv.matches(&v))
                })
            }
            Cond::SourceIp(cidrs) => cidrs.iter().any(|c| c.contains(req.source)),
        }
    }
}

/// Every rule of a listener with its payload `A` (what the proxy does on a match), in evaluation order.
#[derive(Debug)]
pub(crate) struct RuleSet<A> {
    /// Explicit rules with priority ≤ [`HOST_ROUTE_PRIORITY`], by ascending priority.
    before: Vec<(u32, Vec<Cond>, A)>,
    /// Host routes by normalized host.
    hosts: HashMap<String, A>,
    /// Explicit rules with a higher priority.
    after: Vec<(u32, Vec<Cond>, A)>,
}

impl<A> Default for RuleSet<A> {
    fn default() -> Self {
        RuleSet { before: Vec::new(), hosts: HashMap::new(), after: Vec::new() }
    }
}

/// Which rule matched: an explicit one's priority, or a host route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matched {
    Rule(u32),
    Host,
}

impl Matched {
    /// ALB's `matched_rule_priority` log field (host routes log their implicit priority).
    pub fn priority(self) -> u32 {
        match self {
            Matched::Rule(p) => p,
            Matched::Host => HOST_ROUTE_PRIORITY,
        }
    }
}

impl<A> RuleSet<A> {
    /// `rules`: (priority, compiled conditions, payload) in any order (ties keep their given order);
    /// `hosts`: (normalized host, payload), the first of a duplicated host wins.
    pub fn new(rules: Vec<(u32, Vec<Cond>, A)>, hosts: impl IntoIterator<Item = (String, A)>) -> Self {
        let mut rules = rules;
        rules.sort_by_key(|(p, _, _)| *p);
        let split = rules.partition_point(|(p, _, _)| *p <= HOST_ROUTE_PRIORITY);
        let after = rules.split_off(split);
        let mut map = HashMap::new();
        for (host, a) in hosts {
            map.entry(host).or_insert(a);
        }
        RuleSet { before: rules, hosts: map, after }
    }

    /// Whether a rule looks at request headers (the fast path then builds a header map for [`RuleSet::find`]).
    pub fn uses_headers(&self) -> bool {
        self.before.iter().chain(&self.after).any(|(_, conds, _)| conds.iter().any(|c| matches!(c, Cond::Header(..))))
    }

    /// The first matching rule's payload; `None`: the default action (404).
    pub fn find(&self, req: &RequestView<'_>) -> Option<(Matched, &A)> {
        fn explicit<'r, A>(rules: &'r [(u32, Vec<Cond>, A)], req: &RequestView<'_>) -> Option<&'r (u32, Vec<Cond>, A)> {
            rules.iter().find(|(_, conds, _)| conds.iter().all(|c| c.matches(req)))
        }
        if let Some((p, _, a)) = explicit(&self.before, req) {
            return Some((Matched::Rule(*p), a));
        }
        if let Some(a) = self.hosts.get(req.host) {
            return Some((Matched::Host, a));
        }
        explicit(&self.after, req).map(|(p, _, a)| (Matched::Rule(*p), a))
    }
}

/// The request parts a redirect may reuse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedirectInput<'a> {
    /// `HTTP` or `HTTPS`.
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// The `Location` of an ALB redirect, or `None` when the substituted URL is invalid (then ALB answers 500).
pub(crate) fn redirect_location(r: &Redirect, req: &RedirectInput<'_>) -> Option<String> {
    let port = req.port.to_string();
    let path_no_slash = req.path.strip_prefix('/').unwrap_or(req.path);
    let fill = |template: &str| -> String {
        template
            .replace("#{protocol}", req.protocol)
            .replace("#{host}", req.host)
            .replace("#{port}", &port)
            .replace("#{path}", path_no_slash)
            .replace("#{query}", req.query.unwrap_or(""))
    };
    let protocol = fill(r.protocol.as_deref().unwrap_or("#{protocol}")).to_ascii_lowercase();
    if protocol != "http" && protocol != "https" {
        return None;
    }
    let host = fill(r.host.as_deref().unwrap_or("#{host}"));
    let port = fill(r.port.as_deref().unwrap_or("#{port}"));
    let path = fill(r.path.as_deref().unwrap_or("/#{path}"));
    let query = fill(r.query.as_deref().unwrap_or("#{query}"));
    let bad = |s: &str| s.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if host.is_empty() || bad(&host) || bad(&path) || bad(&query) || !path.starts_with('/') {
        return None;
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return None;
    }
    let mut out = format!("{protocol}://{host}:{port}{path}");
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_routes::{QueryStringPair, RedirectStatus};
    use http::HeaderValue;

    fn view<'a>(headers: &'a HeaderMap, target: &'a str) -> RequestView<'a> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        RequestView {
            host: "app.example.com",
            path,
            query,
            method: "GET",
            headers,
            source: "10.1.2.3".parse().expect("ip"),
        }
    }

    #[test]
    fn wildcard_table() {
        // (pattern, fold case, text, matches) — ALB's documented semantics: `*` 0+ chars, `?` exactly 1.
        let cases: &[(&str, bool, &str, bool)] = &[
            ("/img/*", false, "/img/a.png", true),
            ("/img/*", false, "/img/", true),
            ("/img/*", false, "/img", false),
            ("/img/*", false, "/IMG/a.png", false),
            ("*.example.com", true, "www.example.com", true),
            ("*.example.com", true, "a.b.example.com", true),
            ("*.example.com", true, "example.com", false),
            ("*.example.com", true, "WWW.Example.COM", true),
            ("?.example.com", true, "a.example.com", true),
            ("?.example.com", true, "ab.example.com", false),
            ("?.example.com", true, ".example.com", false),
            ("/a?c", false, "/abc", true),
            ("/a?c", false, "/ac", false),
            ("/é?", false, "/éü", true),
            ("*", false, "", true),
            ("*", false, "anything/at/all", true),
            ("", false, "", true),
            ("", false, "x", false),
            ("/api/*/users", false, "/api/v1/users", true),
            ("/api/*/users", false, "/api/v1/v2/users", true),
            ("/api/*/users", false, "/api/v1/users/1", false),
            ("*a*b*c*", false, "xxaxxbxxcxx", true),
            ("*a*b*c*", false, "xxaxxcxxbxx", false),
            ("a**b", false, "ab", true),
            ("exact", false, "exact", true),
            ("exact", false, "exactly", false),
            ("\\*lit", false, "*lit", true),
            ("\\*lit", false, "xlit", false),
            ("a\\?", false, "a?", true),
            ("a\\?", false, "ab", false),
            ("trail\\", false, "trail\\", true),
            ("/Path", false, "/path", false),
            ("/Path", true, "/path", true),
            ("\\Path", true, "path", true),
        ];
        for (pattern, fold, text, want) in cases {
            assert_eq!(wildcard(pattern, *fold).matches(text), *want, "{pattern:?} vs {text:?} (fold {fold})");
        }
    }

    #[test]
    fn source_filter_table() {
        let f = |hosts: &[&str], https: &[&str], http: &[&str]| berth_routes::SourceFilter {
            hosts: strings(hosts),
            https: strings(https),
            http: strings(http),
        };
        let filters = SourceFilters::new(&[
            f(&["Web.Example.com"], &["127.0.0.1/32", "10.0.0.0/8"], &["0.0.0.0/0", "::/0"]),
            f(&["closed.example.com"], &[], &["nonsense", "192.0.2.0/24"]),
        ]);
        let cases: &[(&str, bool, &str, bool)] = &[
            ("web.example.com", true, "127.0.0.1", true),
            ("web.example.com", true, "127.0.0.2", false),
            ("web.example.com", true, "10.9.8.7", true),
            ("web.example.com", true, "::ffff:127.0.0.1", true),
            ("web.example.com", true, "::1", false),
            ("web.example.com", false, "127.0.0.2", true),
            ("web.example.com", false, "2001:db8::1", true),
            ("closed.example.com", true, "127.0.0.1", false),
            ("closed.example.com", false, "192.0.2.9", true),
            ("closed.example.com", false, "198.51.100.1", false),
            ("other.example.com", true, "203.0.113.1", true),
        ];
        for (host, https, ip, want) in cases {
            assert_eq!(filters.allows(host, *https, ip.parse().expect("ip")), *want, "{host} https={https} {ip}");
        }
        assert!(SourceFilters::new(&[]).allows("web.example.com", true, "127.0.0.2".parse().expect("ip")));
    }

    #[test]
    fn cidr_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("192.168.1.7/24", "192.168.1.200", true),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("::/0", "fe80::1", true),
            ("::1/128", "::1", true),
            ("::1", "127.0.0.1", false),
        ];
        for (cidr, ip, want) in cases {
            let c = Cidr::parse(cidr).unwrap_or_else(|| panic!("{cidr} parses"));
            assert_eq!(c.contains(ip.parse().expect("ip")), *want, "{cidr} contains {ip}");
        }
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "abc", "10.0.0.0/x", "/8"] {
            assert_eq!(Cidr::parse(bad), None, "{bad:?}");
        }
    }

    fn cond(c: Condition) -> Cond {
        Cond::compile(&c).expect("compiles")
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn host_header_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["app.example.com"], "app.example.com", true),
            (&["APP.example.com"], "app.example.com", true),
            (&["other.example.com", "*.example.com"], "app.example.com", true),
            (&["*.example.org"], "app.example.com", false),
            (&["app.example.co?"], "app.example.com", true),
            (&[], "app.example.com", false),
        ];
        let headers = HeaderMap::new();
        for (values, host, want) in cases {
            let c = cond(Condition::HostHeader { values: strings(values) });
            let req = RequestView { host, ..view(&headers, "/") };
            assert_eq!(c.matches(&req), *want, "{values:?} vs {host}");
        }
    }

    #[test]
    fn path_pattern_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["/api/*"], "/api/v1?x=1", true),
            (&["/api/*"], "/API/v1", false),
            (&["/api/*"], "/apix", false),
            // Matched on the path only: a query never satisfies a path pattern.
            (&["*x=1*"], "/api?x=1", false),
            (&["/a", "/b"], "/b", true),
            (&["/img/*.png"], "/img/cat.png", true),
            (&["/img/*.png"], "/img/cat.jpg", false),
            (&["/"], "/", true),
        ];
        let headers = HeaderMap::new();
        for (values, target, want) in cases {
            let c = cond(Condition::PathPattern { values: strings(values) });
            assert_eq!(c.matches(&view(&headers, target)), *want, "{values:?} vs {target}");
        }
    }

    #[test]
    fn http_header_table() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("Mozilla/5.0 (iPhone; CPU iPhone OS)"));
        headers.append("x-env", HeaderValue::from_static("prod"));
        headers.append("x-env", HeaderValue::from_static("Beta-2"));
        let cases: &[(&str, &[&str], bool)] = &[
            ("User-Agent", &["*iPhone*"], true),
            ("user-agent", &["*iphone*"], true),
            ("User-Agent", &["*Android*"], false),
            // Any occurrence of a repeated header may match.
            ("X-Env", &["beta-*"], true),
            ("X-Env", &["prod"], true),
            ("X-Env", &["staging"], false),
            ("X-Missing", &["*"], false),
        ];
        for (name, values, want) in cases {
            let c = cond(Condition::HttpHeader { name: (*name).into(), values: strings(values) });
            assert_eq!(c.matches(&view(&headers, "/")), *want, "{name}: {values:?}");
        }
        assert!(Cond::compile(&Condition::HttpHeader { name: "bad name".into(), values: vec![] }).is_err());
    }

    #[test]
    fn http_request_method_table() {
        let headers = HeaderMap::new();
        let cases: &[(&[&str], &str, bool)] = &[
            (&["GET"], "GET", true),
            (&["GET", "HEAD"], "HEAD", true),
            // Case-sensitive and no wildcards.
            (&["get"], "GET", false),
            (&["G*"], "GET", false),
            (&["PURGE"], "PURGE", true),
            (&["POST"], "GET", false),
        ];
        for (values, method, want) in cases {
            let c = cond(Condition::HttpRequestMethod { values: strings(values) });
            assert_eq!(c.matches(&RequestView { method, ..view(&headers, "/") }), *want, "{values:?} vs {method}");
        }
    }

    #[test]
    fn query_string_table() {
        let headers = HeaderMap::new();
        let pair = |k: Option<&str>, v: &str| QueryStringPair { key: k.map(Into::into), value: v.into() };
        let cases: Vec<(Vec<QueryStringPair>, &str, bool)> = vec![
            (vec![pair(Some("version"), "v1")], "/?version=v1", true),
            (vec![pair(Some("version"), "v1")], "/?a=b&version=v1&c=d", true),
            (vec![pair(Some("version"), "v1")], "/?version=v2", false),
            (vec![pair(Some("version"), "v1")], "/", false),
            // Case-insensitive keys and values, wildcards.
            (vec![pair(Some("Version"), "V*")], "/?version=v9", true),
            (vec![pair(Some("v?r"), "*")], "/?var=", true),
            // No key: any parameter's value.
            (vec![pair(None, "beta")], "/?channel=beta", true),
            (vec![pair(None, "beta")], "/?beta=1", false),
            // Several pairs: any of them.
            (vec![pair(Some("a"), "1"), pair(Some("b"), "2")], "/?b=2", true),
            // Percent-decoded on both sides; a literal `*` escaped.
            (vec![pair(Some("q"), "a b")], "/?q=a%20b", true),
            (vec![pair(Some("q"), "a%20b")], "/?q=a%20b", true),
            (vec![pair(Some("q"), "\\*")], "/?q=%2A", true),
            (vec![pair(Some("q"), "\\*")], "/?q=x", false),
            // A key without `=` has an empty value.
            (vec![pair(Some("flag"), "")], "/?flag", true),
        ];
        for (pairs, target, want) in cases {
            let c = cond(Condition::QueryString { values: pairs.clone() });
            assert_eq!(c.matches(&view(&headers, target)), want, "{pairs:?} vs {target}");
        }
    }

    #[test]
    fn source_ip_table() {
        let headers = HeaderMap::new();
        let cases: &[(&[&str], &str, bool)] = &[
            (&["10.0.0.0/8"], "10.1.2.3", true),
            (&["192.168.0.0/16", "10.1.2.3/32"], "10.1.2.3", true),
            (&["192.168.0.0/16"], "10.1.2.3", false),
            (&["2001:db8::/32"], "2001:db8::1", true),
            (&["127.0.0.1/32"], "::ffff:127.0.0.1", true),
        ];
        for (values, ip, want) in cases {
            let c = cond(Condition::SourceIp { values: strings(values) });
            let req = RequestView { source: ip.parse().expect("ip"), ..view(&headers, "/") };
            assert_eq!(c.matches(&req), *want, "{values:?} vs {ip}");
        }
        assert!(Cond::compile(&Condition::SourceIp { values: strings(&["10.0.0.0/8", "nope"]) }).is_err());
    }

    #[test]
    fn rule_order_table() {
        let headers = HeaderMap::new();
        let path = |p: &str| vec![cond(Condition::PathPattern { values: strings(&[p]) })];
        let host = |h: &str| cond(Condition::HostHeader { values: strings(&[h]) });
        let ip = |c: &str| cond(Condition::SourceIp { values: strings(&[c]) });
        let rules = vec![
            (30, path("/*"), "catch-all-30"),
            (10, path("/api/*"), "api-10"),
            // AND across conditions: host and source IP must both hold.
            (5, vec![host("app.example.com"), ip("192.168.0.0/16")], "internal-5"),
            (
                20,
                vec![host("app.example.com"), cond(Condition::PathPattern { values: strings(&["/admin*"]) })],
                "admin-20",
            ),
            (60_000, vec![host("late.example.com")], "after-hosts"),
            (40, vec![host("*.wild.example.com")], "wild-40"),
        ];
        let set = RuleSet::new(
            rules,
            [("app.example.com".to_owned(), "host-app"), ("late.example.com".to_owned(), "host-late")],
        );
        // (host, path, source, want)
        type Case<'a> = (&'a str, &'a str, &'a str, Option<(Matched, &'a str)>);
        let cases: &[Case<'_>] = &[
            ("app.example.com", "/api/x", "10.0.0.1", Some((Matched::Rule(10), "api-10"))),
            ("app.example.com", "/api/x", "192.168.1.1", Some((Matched::Rule(5), "internal-5"))),
            ("app.example.com", "/admin", "10.0.0.1", Some((Matched::Rule(20), "admin-20"))),
            ("app.example.com", "/", "10.0.0.1", Some((Matched::Rule(30), "catch-all-30"))),
            // Host routes come after every explicit rule up to HOST_ROUTE_PRIORITY, before later ones.
            ("late.example.com", "", "10.0.0.1", Some((Matched::Host, "host-late"))),
            ("a.wild.example.com", "", "10.0.0.1", Some((Matched::Rule(40), "wild-40"))),
            ("nothing.example.com", "", "10.0.0.1", None),
        ];
        for (h, p, source, want) in cases {
            let req = RequestView { host: h, source: source.parse().expect("ip"), ..view(&headers, p) };
            assert_eq!(set.find(&req).map(|(m, a)| (m, *a)), *want, "{h}{p} from {source}");
        }
        assert_eq!(Matched::Host.priority(), HOST_ROUTE_PRIORITY);
        let empty: RuleSet<&str> = RuleSet::default();
        assert!(empty.find(&view(&headers, "/")).is_none());
    }

    #[test]
    fn redirect_table() {
        let req =
            RedirectInput { protocol: "HTTP", host: "app.example.com", port: 80, path: "/a/b", query: Some("x=1") };
        let r = |protocol: Option<&str>,
                 host: Option<&str>,
                 port: Option<&str>,
                 path: Option<&str>,
                 query: Option<&str>| {
            Redirect {
                protocol: protocol.map(Into::into),
                host: host.map(Into::into),
                port: port.map(Into::into),
                path: path.map(Into::into),
                query: query.map(Into::into),
                status_code: RedirectStatus::Http301,
            }
        };
        let cases = [
            (r(Some("HTTPS"), None, Some("443"), None, None), Some("https://app.example.com:443/a/b?x=1")),
            (r(None, None, None, None, None), Some("http://app.example.com:80/a/b?x=1")),
            (
                r(None, Some("new.#{host}"), None, Some("/v2/#{path}"), Some("#{query}&from=old")),
                Some("http://new.app.example.com:80/v2/a/b?x=1&from=old"),
            ),
            (
                r(Some("#{protocol}"), Some("other.example.com"), Some("#{port}"), Some("/"), Some("")),
                Some("http://other.example.com:80/"),
            ),
            (r(Some("FTP"), None, None, None, None), None),
            (r(None, None, Some("99999"), None, None), None),
            (r(None, None, None, Some("no-slash"), None), None),
            (r(None, Some(""), None, None, None), None),
        ];
        for (redirect, want) in cases {
            assert_eq!(redirect_location(&redirect, &req).as_deref(), want, "{redirect:?}");
        }
        let no_query = RedirectInput { query: None, ..req };
        assert_eq!(
            redirect_location(&r(None, None, None, None, None), &no_query).as_deref(),
            Some("http://app.example.com:80/a/b")
        );
    }
}
