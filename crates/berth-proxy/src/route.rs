//! Pure routing decisions: which host a request names, which target group (by weight) and which target
//! (round robin among the healthy) serve it, and where the HTTP listener redirects. No I/O, no locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_routes::Algorithm;

use crate::metrics::TgCounters;
use crate::target::TargetRuntime;

/// The host a request names (Host header, else the URI authority as HTTP/2's `:authority`), without
/// port or trailing dot, lowercased. `None` when there is none.
pub(crate) fn request_host(host_header: Option<&str>, authority: Option<&str>) -> Option<String> {
    let raw = host_header.or(authority)?.trim();
    let host = strip_port(raw);
    let host = host.strip_suffix('.').unwrap_or(host).trim_end();
    // What is left must be a name or an address: a ':' outside an IPv6 literal means a port that is not
    // a number (or garbage such as ":."), which no route can match.
    if host.is_empty() || (!host.starts_with('[') && host.contains(':')) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// `example.com:8443` → `example.com`, `[::1]:443` → `[::1]`; a host without port is returned as is.
pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The `Location` for the HTTP listener's redirect: `https://<host>[:<port>]<path?query>`.
pub(crate) fn redirect_location(host: &str, path_and_query: &str, https_port: u16) -> String {
    let path = if path_and_query.starts_with('/') { path_and_query } else { "/" };
    if https_port == 443 { format!("https://{host}{path}") } else { format!("https://{host}:{https_port}{path}") }
}

/// Chooses an index with probability proportional to `weights` (zero weights are never chosen) from a
/// ticket (a per-host counter). The tickets walk a golden-ratio (Weyl) sequence over the weight line, so
/// consecutive requests are spread smoothly and every window of requests follows the weights closely.
pub(crate) fn pick_weighted(weights: &[u32], ticket: u64) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let x = ticket.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut point = ((u128::from(x) * u128::from(total)) >> 64) as u64;
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// Round robin over the eligible indexes of `0..len`: the ticket-th eligible one, cyclically.
pub(crate) fn pick_round_robin(len: usize, ticket: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
    let count = (0..len).filter(|i| eligible(*i)).count();
    if count == 0 {
        return None;
    }
    let nth = (ticket % count as u64) as usize;
    (0..len).filter(|i| eligible(*i)).nth(nth)
}

/// Least outstanding requests over the eligible indexes of `0..len`: the one with the smallest `load`, ties
/// broken by scanning from the ticket-th index (so equal loads still rotate).
pub(crate) fn pick_least_outstanding(
    len: usize,
    ticket: u64,
    eligible: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> u64,
) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let start = (ticket % len as u64) as usize;
    let mut best: Option<(u64, usize)> = None;
    for k in 0..len {
        let i = (start + k) % len;
        if !eligible(i) {
            continue;
        }
        let l = load(i);
        if best.is_none_or(|(b, _)| l < b) {
            best = Some((l, i));
        }
    }
    best.map(|(_, i)| i)
}

/// The stickiness cookie's value for a target group: a stable hash of its ARN (FNV-1a), in hex.
pub(crate) fn sticky_token(group_id: &str) -> u64 {
    group_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The name of ALB's target-group stickiness cookie.
pub(crate) const STICKY_COOKIE: &str = "AWSALBTG";

/// The target group token in a request's `Cookie` headers, if it carries the stickiness cookie.
pub(crate) fn sticky_cookie<'a>(cookies: impl Iterator<Item = &'a str>) -> Option<u64> {
    cookies.flat_map(|c| c.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == STICKY_COOKIE).then(|| u64::from_str_radix(v.trim(), 16).ok()).flatten()
    })
}

/// A target group as a rule forwards to it: its routable (registered) targets and how to pick among them.
#[derive(Debug)]
pub(crate) struct GroupRoute {
    pub id: Arc<str>,
    pub targets: Vec<Arc<TargetRuntime>>,
    pub algorithm: Algorithm,
    /// Talk HTTP/2 with prior knowledge to these targets.
    pub h2c: bool,
    pub counters: Arc<TgCounters>,
    pub sticky: u64,
    next: AtomicU64,
}

impl GroupRoute {
    pub fn new(id: impl Into<Arc<str>>, targets: Vec<Arc<TargetRuntime>>) -> Self {
        let id: Arc<str> = id.into();
        GroupRoute {
            sticky: sticky_token(&id),
            id,
            targets,
            algorithm: Algorithm::RoundRobin,
            h2c: false,
            counters: Arc::default(),
            next: AtomicU64::new(0),
        }
    }

    /// The next healthy target by the group's algorithm.
    pub fn pick(&self) -> Option<&Arc<TargetRuntime>> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let healthy = |i: usize| self.targets[i].is_healthy();
        let i = match self.algorithm {
            Algorithm::RoundRobin => pick_round_robin(self.targets.len(), ticket, healthy),
            Algorithm::LeastOutstandingRequests => {
                pick_least_outstanding(self.targets.len(), ticket, healthy, |i| self.targets[i].in_flight())
            }
        };
        i.map(|i| &self.targets[i])
    }
}

/// A forward action: target groups with non-zero weights, and optional target-group stickiness.
#[derive(Debug)]
pub(crate) struct ForwardRoute {
    groups: Vec<(GroupRoute, u32)>,
    weights: Vec<u32>,
    /// The stickiness duration in seconds, when enabled.
    pub stickiness: Option<u32>,
    next: AtomicU64,
}

impl ForwardRoute {
    /// `groups` with weight 0 receive no traffic and are dropped here.
    pub fn new(groups: Vec<(GroupRoute, u32)>, stickiness: Option<u32>) -> Self {
        let groups: Vec<_> = groups.into_iter().filter(|(_, w)| *w > 0).collect();
        let weights = groups.iter().map(|(_, w)| *w).collect();
        ForwardRoute { groups, weights, stickiness, next: AtomicU64::new(0) }
    }

    /// A target group by weight, then a healthy target in it by its algorithm. When the chosen group has no
    /// healthy target, the next weighted group that has one serves instead (a canary without healthy
    /// targets must not fail its share of requests). `None`: no healthy target anywhere (503).
    pub fn choose(&self) -> Option<(&GroupRoute, &Arc<TargetRuntime>)> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let first = pick_weighted(&self.weights, ticket)?;
        let n = self.groups.len();
        (0..n).find_map(|k| {
            let (group, _) = &self.groups[(first + k) % n];
            group.pick().map(|t| (group, t))
        })
    }

    /// Like [`ForwardRoute::choose`], but a request whose stickiness cookie names one of the groups stays on
    /// it while it has a healthy target (only when stickiness is enabled).
    pub fn choose_sticky(&self, cookie: Option<u64>) -> Option<(&GroupRoute, &Arc<TargetRuntime>)> {
        if self.stickiness.is_some()
            && let Some(token) = cookie
            && let Some((group, _)) = self.groups.iter().find(|(g, _)| g.sticky == token)
            && let Some(target) = group.pick()
        {
            return Some((group, target));
        }
        self.choose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Status, test_target};

    #[test]
    fn request_host_table() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("web-abc123.ecs.us-east-1.localhost"), None, Some("web-abc123.ecs.us-east-1.localhost")),
            (Some("Web-ABC123.ECS.us-east-1.localhost:8443"), None, Some("web-abc123.ecs.us-east-1.localhost")),
            (Some("example.com."), None, Some("example.com")),
            (Some("example.com.:443"), None, Some("example.com")),
            (None, Some("h2.example.com:443"), Some("h2.example.com")),
            (Some("host.example"), Some("other.example"), Some("host.example")),
            (Some("[::1]:443"), None, Some("[::1]")),
            (Some("[::1]"), None, Some("[::1]")),
            (Some("127.0.0.1:80"), None, Some("127.0.0.1")),
            (Some("example.com:notaport"), None, None),
            (None, Some(":."), None),
            (Some(""), None, None),
            (Some(":443"), None, None),
            (None, None, None),
        ];
        for (host, authority, want) in cases {
            assert_eq!(request_host(*host, *authority).as_deref(), *want, "host {host:?} authority {authority:?}");
        }
    }

    #[test]
    fn redirect_location_table() {
        let cases = [
            ("a.localhost", "/x?y=1", 443, "https://a.localhost/x?y=1"),
            ("a.localhost", "/", 8443, "https://a.localhost:8443/"),
            ("a.localhost", "", 443, "https://a.localhost/"),
            ("[::1]", "/p", 443, "https://[::1]/p"),
        ];
        for (host, path, port, want) in cases {
            assert_eq!(redirect_location(host, path, port), want);
        }
    }

    #[test]
    fn weighted_choice_table() {
        // (weights, requests, expected share per index, tolerance in requests)
        let cases: &[(&[u32], u64, &[u64], u64)] = &[
            (&[100], 1000, &[1000], 0),
            (&[95, 5], 1000, &[950, 50], 2),
            (&[5, 95], 1000, &[50, 950], 2),
            (&[0, 100], 500, &[0, 500], 0),
            (&[100, 0], 500, &[500, 0], 0),
            (&[1, 1, 1], 3000, &[1000, 1000, 1000], 3),
            (&[1, 3], 400, &[100, 300], 2),
            (&[50, 0, 50], 1000, &[500, 0, 500], 2),
        ];
        for (weights, n, want, tol) in cases {
            let mut counts = vec![0u64; weights.len()];
            for t in 0..*n {
                counts[pick_weighted(weights, t).expect("some")] += 1;
            }
            for (i, (got, want)) in counts.iter().zip(want.iter()).enumerate() {
                assert!(got.abs_diff(*want) <= *tol, "weights {weights:?}: index {i} got {got}, want {want}±{tol}");
            }
        }
        for weights in [&[][..], &[0][..], &[0, 0][..]] {
            assert_eq!(pick_weighted(weights, 7), None, "{weights:?}");
        }
    }

    #[test]
    fn weighted_choice_is_smooth() {
        // A 5% canary gets about 1 in 20 requests in every window of 100, never a burst.
        let weights = [95, 5];
        for start in [0u64, 100, 12_345, u64::MAX - 200] {
            let canary = (start..start + 100).filter(|t| pick_weighted(&weights, *t) == Some(1)).count();
            assert!((3..=7).contains(&canary), "window at {start}: {canary}");
        }
        let mut run = 0;
        for t in 0..2000u64 {
            run = if pick_weighted(&weights, t) == Some(1) { run + 1 } else { 0 };
            assert!(run <= 1, "canary picked twice in a row at {t}");
        }
    }

    #[test]
    fn round_robin_table() {
        let cases: &[(&[bool], &[Option<usize>])] = &[
            (&[true, true, true], &[Some(0), Some(1), Some(2), Some(0), Some(1), Some(2)]),
            (&[true, false, true], &[Some(0), Some(2), Some(0), Some(2)]),
            (&[false, false, true], &[Some(2), Some(2)]),
            (&[false, false], &[None, None]),
            (&[], &[None]),
        ];
        for (eligible, want) in cases {
            let got: Vec<_> =
                (0..want.len() as u64).map(|t| pick_round_robin(eligible.len(), t, |i| eligible[i])).collect();
            assert_eq!(&got, want, "eligible {eligible:?}");
        }
    }

    fn host(groups: &[(&str, u32, &[Status])]) -> ForwardRoute {
        let groups = groups
            .iter()
            .map(|(id, weight, targets)| {
                let targets =
                    targets.iter().enumerate().map(|(i, s)| test_target(id, &format!("{id}-{i}"), *s)).collect();
                (GroupRoute::new(*id, targets), *weight)
            })
            .collect();
        ForwardRoute::new(groups, None)
    }

    #[test]
    fn host_choice_table() {
        use Status as S;
        let unhealthy = S { health: berth_routes::TargetHealth::Unhealthy, reason: None };
        // (groups, requests, expected count per target id)
        type Case<'a> = (&'a [(&'a str, u32, &'a [Status])], u64, &'a [(&'a str, u64)]);
        let cases: &[Case<'_>] = &[
            (&[("a", 100, &[S::HEALTHY, S::HEALTHY])], 100, &[("a-0", 50), ("a-1", 50)]),
            // Initial, unhealthy and draining targets get nothing.
            (&[("a", 1, &[S::INITIAL, S::HEALTHY, unhealthy, S::DRAINING])], 10, &[("a-1", 10)]),
            // Weight 0 gets nothing even when healthy.
            (&[("a", 0, &[S::HEALTHY]), ("b", 10, &[S::HEALTHY])], 10, &[("b-0", 10)]),
            (
                &[("a", 1, &[S::HEALTHY]), ("b", 3, &[S::HEALTHY, S::HEALTHY])],
                400,
                &[("a-0", 100), ("b-0", 150), ("b-1", 150)],
            ),
            // The canary has no healthy target: the stable group takes its share.
            (&[("stable", 95, &[S::HEALTHY]), ("canary", 5, &[S::INITIAL])], 100, &[("stable-0", 100)]),
        ];
        for (groups, n, want) in cases {
            let h = host(groups);
            let mut counts = std::collections::HashMap::<String, u64>::new();
            for _ in 0..*n {
                let (g, t) = h.choose().expect("a target");
                assert_eq!(&*g.id, t.key.group);
                *counts.entry(t.key.target.clone()).or_default() += 1;
            }
            let want: std::collections::HashMap<String, u64> = want.iter().map(|(k, v)| ((*k).into(), *v)).collect();
            for (id, count) in &counts {
                let expected = want.get(id).copied().unwrap_or(0);
                assert!(count.abs_diff(expected) <= 2, "{groups:?}: {id} got {count}, want {expected}");
            }
            assert_eq!(counts.values().sum::<u64>(), *n);
        }
        for groups in [&[][..], &[("a", 1, &[S::INITIAL][..])][..], &[("a", 0, &[S::HEALTHY][..])][..]] {
            assert!(host(groups).choose().is_none(), "{groups:?} must have no target");
        }
    }

    #[test]
    fn least_outstanding_table() {
        // (eligible, in flight, tickets → picks)
        type Case<'a> = (&'a [bool], &'a [u64], &'a [Option<usize>]);
        let cases: &[Case<'_>] = &[
            (&[true, true, true], &[5, 1, 3], &[Some(1), Some(1), Some(1)]),
            (&[true, false, true], &[5, 0, 3], &[Some(2), Some(2)]),
            // Equal loads rotate with the ticket.
            (&[true, true, true], &[2, 2, 2], &[Some(0), Some(1), Some(2), Some(0)]),
            (&[true, true, true], &[0, 4, 0], &[Some(0), Some(2), Some(2), Some(0)]),
            (&[false, false], &[0, 0], &[None]),
            (&[], &[], &[None]),
        ];
        for (eligible, load, want) in cases {
            let got: Vec<_> = (0..want.len() as u64)
                .map(|t| pick_least_outstanding(eligible.len(), t, |i| eligible[i], |i| load[i]))
                .collect();
            assert_eq!(&got, want, "eligible {eligible:?} load {load:?}");
        }
    }

    #[test]
    fn least_outstanding_group_follows_in_flight() {
        let targets: Vec<_> = (0..3).map(|i| test_target("g", &format!("t{i}"), Status::HEALTHY)).collect();
        let mut group = GroupRoute::new("g", targets.clone());
        group.algorithm = Algorithm::LeastOutstandingRequests;
        let _busy = (targets[0].begin(), targets[0].begin(), targets[2].begin());
        for _ in 0..5 {
            assert_eq!(group.pick().map(|t| t.key.target.as_str()), Some("t1"));
        }
    }

    #[test]
    fn sticky_cookie_table() {
        let token = sticky_token("arn:tg/a");
        let hex = format!("{token:016x}");
        let cases: Vec<(Vec<String>, Option<u64>)> = vec![
            (vec![format!("AWSALBTG={hex}")], Some(token)),
            (vec![format!("a=1; AWSALBTG={hex}; b=2")], Some(token)),
            (vec!["a=1".into(), format!("AWSALBTG={hex}")], Some(token)),
            (vec!["AWSALBTG=zz".into()], None),
            (vec!["AWSALB=abc".into()], None),
            (vec![], None),
        ];
        for (cookies, want) in cases {
            assert_eq!(sticky_cookie(cookies.iter().map(String::as_str)), want, "{cookies:?}");
        }
        assert_ne!(sticky_token("arn:tg/a"), sticky_token("arn:tg/b"));
    }

    #[test]
    fn stickiness_pins_a_group_while_it_is_healthy() {
        let mk = |id: &str, s: Status| GroupRoute::new(id, vec![test_target(id, &format!("{id}-0"), s)]);
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::HEALTHY), 1)], Some(60));
        let b = sticky_token("b");
        for _ in 0..10 {
            assert_eq!(route.choose_sticky(Some(b)).map(|(g, _)| &*g.id), Some("b"));
        }
        // An unknown token falls back to the weights.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            seen.insert(route.choose_sticky(Some(1)).map(|(g, _)| g.id.clone()));
        }
        assert_eq!(seen.len(), 2);
        // A pinned group without a healthy target: another one serves.
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::INITIAL), 1)], Some(60));
        assert_eq!(route.choose_sticky(Some(b)).map(|(g, _)| &*g.id), Some("a"));
        // Without stickiness the cookie is ignored.
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::HEALTHY), 1)], None);
        let picks: std::collections::HashSet<_> =
            (0..10).filter_map(|_| route.choose_sticky(Some(b)).map(|(g, _)| g.id.clone())).collect();
        assert_eq!(picks.len(), 2);
    }
}
