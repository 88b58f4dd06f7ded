//! Pure routing decisions: which host a request names, which target group (by weight or the `AWSALBTG`
//! cookie) and which target (round robin with slow start, least outstanding requests, or the target pinned by
//! an `AWSALB` / `AWSALBAPP-<n>` cookie) serve it, the stickiness cookies to set on the response, and where the
//! HTTP listener redirects. No I/O, no locks; the clock is an input ([`Now`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use berth_routes::{Algorithm, MinimumHealthy, ProtocolVersion, TargetHealth, TargetStickiness};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};
use ring::hmac;

use crate::metrics::TgCounters;
use crate::target::{NOT_HEALTHY, TargetRuntime, clock_ms};

/// The moment a request is routed: the proxy's monotonic clock (slow start) and the wall clock (stickiness
/// deadlines inside cookies, which every proxy of a server must read alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    pub mono_ms: u64,
    pub epoch_secs: u64,
}

impl Now {
    pub fn current() -> Now {
        let epoch_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Now { mono_ms: clock_ms(), epoch_secs }
    }
}

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
#[cfg(test)]
pub(crate) fn sticky_cookie<'a>(cookies: impl Iterator<Item = &'a str>) -> Option<u64> {
    cookie_in(cookies, STICKY_COOKIE).and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// The full weight of a target under slow start (a slow-starting one gets a linear part of it).
pub(crate) const FULL_WEIGHT: u64 = 1000;

/// Slow start's weight of target `i` at `now` (ms): [`FULL_WEIGHT`] for a healthy target, 0 for one that is
/// not, and `FULL_WEIGHT × elapsed / window` while it is slow-starting. A target slow-starts for `window` ms
/// after it became healthy (`since`) when, at the moment it joined the group or last stopped being healthy
/// (`joined`), another target was already healthy: so the first healthy targets of a group, and targets
/// registered together into an empty one, do not slow-start, as on ALB. The earliest healthy target never
/// slow-starts, so a group with a healthy target always has a positive total weight.
pub(crate) fn slow_start_weight(
    i: usize,
    len: usize,
    window: u64,
    now: u64,
    joined: impl Fn(usize) -> u64,
    since: impl Fn(usize) -> u64,
) -> u64 {
    let own = since(i);
    if own == NOT_HEALTHY {
        return 0;
    }
    let elapsed = now.saturating_sub(own);
    if window == 0 || elapsed >= window {
        return FULL_WEIGHT;
    }
    let others_first = (0..len).filter(|j| *j != i).map(&since).min().unwrap_or(NOT_HEALTHY);
    if others_first == NOT_HEALTHY || others_first > joined(i) {
        return FULL_WEIGHT;
    }
    FULL_WEIGHT * elapsed / window
}

/// Like [`pick_weighted`] over weights computed by `weight` (no allocation for small groups).
pub(crate) fn pick_weighted_by(len: usize, ticket: u64, weight: impl Fn(usize) -> u64) -> Option<usize> {
    let mut small = [0u32; 32];
    let mut large = Vec::new();
    let weights: &mut [u32] = if len <= small.len() {
        &mut small[..len]
    } else {
        large.resize(len, 0);
        &mut large
    };
    for (i, w) in weights.iter_mut().enumerate() {
        *w = weight(i).min(u64::from(u32::MAX)) as u32;
    }
    pick_weighted(weights, ticket)
}

/// The secret keying target-stickiness cookies: an HMAC-SHA256 key from the table's `stickiness_key` (or, for
/// a table without one, a random key of this process).
pub(crate) struct StickyKey(hmac::Key);

impl std::fmt::Debug for StickyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StickyKey(..)")
    }
}

/// Length of a target cookie's value: 16 hex (target hint), 12 hex (deadline), 64 hex (HMAC-SHA256).
const TARGET_COOKIE_LEN: usize = 16 + 12 + 64;

impl StickyKey {
    pub fn new(secret: &str) -> StickyKey {
        static FALLBACK: OnceLock<[u8; 32]> = OnceLock::new();
        let bytes = match secret.is_empty() {
            true => &FALLBACK.get_or_init(rand::random)[..],
            false => secret.as_bytes(),
        };
        StickyKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A target's public handle in cookies: the first 8 bytes of a keyed hash of its group, id and address, so a
    /// cookie can only ever name a target of the group that is in the table (never an address).
    pub fn hint(&self, group: &str, target: &crate::target::TargetKey) -> u64 {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in
            [b"target".as_slice(), group.as_bytes(), target.target.as_bytes(), target.addr.to_string().as_bytes()]
        {
            ctx.update(part);
            ctx.update(&[0]);
        }
        let tag = ctx.sign();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_be_bytes(first)
    }

    fn message(kind: &str, group: &str, hint: u64, deadline: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(kind.len() + group.len() + 18);
        m.extend_from_slice(kind.as_bytes());
        m.push(0);
        m.extend_from_slice(group.as_bytes());
        m.push(0);
        m.extend_from_slice(&hint.to_be_bytes());
        m.extend_from_slice(&deadline.to_be_bytes());
        m
    }

    /// A cookie value pinning the target `hint` of `group` until `deadline` (epoch seconds).
    pub fn seal(&self, kind: &str, group: &str, hint: u64, deadline: u64) -> String {
        let tag = hmac::sign(&self.0, &StickyKey::message(kind, group, hint, deadline));
        format!("{hint:016x}{:012x}{}", deadline & 0xffff_ffff_ffff, hex::encode(tag))
    }

    /// The (hint, deadline) a cookie value seals, when its tag is ours (checked in constant time).
    pub fn open(&self, kind: &str, group: &str, value: &str) -> Option<(u64, u64)> {
        if value.len() != TARGET_COOKIE_LEN || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let hint = u64::from_str_radix(&value[..16], 16).ok()?;
        let deadline = u64::from_str_radix(&value[16..28], 16).ok()?;
        let tag = hex::decode(&value[28..]).ok()?;
        hmac::verify(&self.0, &StickyKey::message(kind, group, hint, deadline), &tag).ok()?;
        Some((hint, deadline))
    }
}

/// ALB's duration-based stickiness cookie, and its CORS twin.
pub(crate) const LB_COOKIE: &str = "AWSALB";
pub(crate) const LB_CORS_COOKIE: &str = "AWSALBCORS";
/// ALB's application-based stickiness cookie: `AWSALBAPP-<index of the group in the forward action>`.
pub(crate) const APP_COOKIE_PREFIX: &str = "AWSALBAPP-";
/// ALB's own cookies last 7 days whatever the stickiness duration (which the sealed deadline enforces).
const LB_COOKIE_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// A request cookie's value by exact name, over every `Cookie` header (HTTP/2 may split them).
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookie_in(headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()), name)
}

fn cookie_in<'a>(mut cookies: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    cookies.find_map(|c| {
        c.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
    })
}

/// Whether a response sets the cookie `name` (ALB then issues its application-based stickiness cookie).
fn sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.split_once('=').is_some_and(|(k, _)| k.trim() == name))
}

/// A group's target stickiness, ready for the request path.
#[derive(Debug)]
pub(crate) struct TargetSticky {
    pub mode: TargetStickiness,
    pub key: Arc<StickyKey>,
    /// Each target's cookie hint ([`StickyKey::hint`]), by index in the group's targets.
    pub hints: Vec<u64>,
}

impl TargetSticky {
    fn kind(&self) -> &'static str {
        match self.mode {
            TargetStickiness::LbCookie { .. } => "lb",
            TargetStickiness::AppCookie { .. } => "app",
        }
    }

    fn duration(&self) -> u64 {
        match &self.mode {
            TargetStickiness::LbCookie { duration_secs } | TargetStickiness::AppCookie { duration_secs, .. } => {
                u64::from((*duration_secs).max(1))
            }
        }
    }
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
    /// The group's token in the `AWSALBTG` cookie (forward-action stickiness).
    pub sticky: u64,
    /// Slow start's window in milliseconds (0: off; round robin only).
    pub slow_start_ms: u64,
    /// Target stickiness (`stickiness.*` attributes).
    pub target_sticky: Option<TargetSticky>,
    /// The group's place in its forward action: the `<n>` of `AWSALBAPP-<n>`.
    pub index: usize,
    /// Below this many healthy targets the group fails open (`unhealthy_state_routing`).
    pub unhealthy_routing: MinimumHealthy,
    next: AtomicU64,
    /// Fail-open picks' own rotation (a request that fails open has already taken a ticket of `next`).
    next_open: AtomicU64,
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
            slow_start_ms: 0,
            target_sticky: None,
            index: 0,
            unhealthy_routing: MinimumHealthy::default(),
            next: AtomicU64::new(0),
            next_open: AtomicU64::new(0),
        }
    }

    /// Takes the table's settings of the group: algorithm, protocol version, slow start and target stickiness
    /// (cookie hints are computed once here, not per request).
    pub fn configure(&mut self, group: &berth_routes::TargetGroup, key: &Arc<StickyKey>) {
        self.algorithm = group.algorithm;
        self.h2c = group.protocol_version == ProtocolVersion::Http2;
        self.slow_start_ms = u64::from(group.slow_start_secs) * 1000;
        self.unhealthy_routing = group.unhealthy_routing;
        self.target_sticky = group.stickiness.clone().map(|mode| TargetSticky {
            mode,
            key: key.clone(),
            hints: self.targets.iter().map(|t| key.hint(&self.id, &t.key)).collect(),
        });
    }

    /// Whether routing to this group needs the clock.
    fn needs_clock(&self) -> bool {
        self.slow_start_ms > 0 || self.target_sticky.is_some()
    }

    /// The next healthy target by the group's algorithm.
    #[cfg(test)]
    pub fn pick(&self) -> Option<&Arc<TargetRuntime>> {
        let now = if self.needs_clock() { Now::current() } else { Now { mono_ms: 0, epoch_secs: 0 } };
        self.pick_index(now).map(|i| &self.targets[i])
    }

    /// The index of the next healthy target by the group's algorithm at `now` (slow start applies to round
    /// robin only, as on ALB). `None` when no target is healthy. When some are, but fewer than the group's
    /// minimum ([`MinimumHealthy`]), the group fails open: every checked target may serve, healthy or not.
    pub fn pick_index(&self, now: Now) -> Option<usize> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let healthy = |i: usize| self.targets[i].is_healthy();
        // With ALB's default requirement (one healthy target) only a group without healthy targets fails open,
        // which [`ForwardRoute::pick`] handles; so the count is only taken when the requirement is raised.
        if !self.unhealthy_routing.is_default() {
            let count = self.targets.iter().filter(|t| t.is_healthy()).count();
            if count == 0 {
                return None;
            }
            if self.unhealthy_routing.breached(count, self.targets.len()) {
                return self.pick_open(ticket);
            }
        }
        match self.algorithm {
            Algorithm::RoundRobin if self.slow_start_ms > 0 => {
                let len = self.targets.len();
                let joined = |j: usize| self.targets[j].joined();
                let since = |j: usize| match self.targets[j].is_healthy() {
                    true => self.targets[j].healthy_since(),
                    false => NOT_HEALTHY,
                };
                pick_weighted_by(len, ticket, |i| {
                    slow_start_weight(i, len, self.slow_start_ms, now.mono_ms, joined, since)
                })
            }
            Algorithm::RoundRobin => pick_round_robin(self.targets.len(), ticket, healthy),
            Algorithm::LeastOutstandingRequests => {
                pick_least_outstanding(self.targets.len(), ticket, healthy, |i| self.targets[i].in_flight())
            }
        }
    }

    /// Fail open: the next target by the group's algorithm among every target whose health has been checked,
    /// healthy or unhealthy (as ALB routes to all registered targets when too few are healthy). Targets still
    /// in their initial checks and draining ones never get fail-open traffic. `None`: no such target (503).
    pub fn pick_fail_open(&self) -> Option<usize> {
        self.pick_open(self.next_open.fetch_add(1, Ordering::Relaxed))
    }

    fn pick_open(&self, ticket: u64) -> Option<usize> {
        let checked =
            |i: usize| matches!(self.targets[i].status().health, TargetHealth::Healthy | TargetHealth::Unhealthy);
        match self.algorithm {
            Algorithm::RoundRobin => pick_round_robin(self.targets.len(), ticket, checked),
            Algorithm::LeastOutstandingRequests => {
                pick_least_outstanding(self.targets.len(), ticket, checked, |i| self.targets[i].in_flight())
            }
        }
    }

    /// The target a request's stickiness cookie pins, with the cookie's deadline, if it is valid, unexpired and
    /// names a healthy target of this group. An application-based cookie counts only while the request also
    /// carries the application's own cookie.
    fn pinned(&self, headers: &HeaderMap, now: Now) -> Option<(usize, u64)> {
        let sticky = self.target_sticky.as_ref()?;
        let value = match &sticky.mode {
            TargetStickiness::LbCookie { .. } => cookie(headers, LB_COOKIE)?,
            TargetStickiness::AppCookie { cookie_name, .. } => {
                cookie(headers, cookie_name)?;
                cookie(headers, &format!("{APP_COOKIE_PREFIX}{}", self.index))?
            }
        };
        let (hint, deadline) = sticky.key.open(sticky.kind(), &self.id, value)?;
        if deadline <= now.epoch_secs {
            return None;
        }
        let i = sticky.hints.iter().position(|h| *h == hint)?;
        self.targets[i].is_healthy().then_some((i, deadline))
    }
}

/// A forward action: target groups with non-zero weights, and optional target-group stickiness.
#[derive(Debug)]
pub(crate) struct ForwardRoute {
    groups: Vec<(GroupRoute, u32)>,
    weights: Vec<u32>,
    /// The stickiness duration in seconds, when enabled.
    pub stickiness: Option<u32>,
    /// Some group slow-starts or has target stickiness: routing reads the clock.
    needs_clock: bool,
    next: AtomicU64,
}

/// One routing decision: the group, the target, and what the response must carry to keep the client there.
#[derive(Debug)]
pub(crate) struct Pick<'a> {
    pub group: &'a GroupRoute,
    pub target: &'a Arc<TargetRuntime>,
    index: usize,
    /// `AWSALBTG`'s lifetime, when the forward action is sticky.
    group_cookie: Option<u32>,
    /// The deadline of the target cookie the request carried (valid and kept), if any.
    pinned_until: Option<u64>,
    now: Now,
}

impl Pick<'_> {
    /// Appends the stickiness cookies to a target's response: `AWSALBTG` for a sticky forward action; for
    /// duration-based target stickiness `AWSALB` and `AWSALBCORS` (`SameSite=None; Secure`) on every response,
    /// keeping the deadline the client was pinned with; for application-based stickiness `AWSALBAPP-<n>`
    /// whenever the target sets the application cookie, with a fresh deadline.
    pub fn set_cookies(&self, headers: &mut HeaderMap) {
        if let Some(duration) = self.group_cookie
            && let Ok(v) = HeaderValue::from_str(&format!(
                "{STICKY_COOKIE}={:016x}; Max-Age={duration}; Path=/",
                self.group.sticky
            ))
        {
            headers.append(SET_COOKIE, v);
        }
        let Some(sticky) = &self.group.target_sticky else { return };
        let Some(hint) = sticky.hints.get(self.index).copied() else { return };
        let expires = berth_core::time::http_date(self.now.epoch_secs + LB_COOKIE_LIFETIME_SECS);
        let fresh = self.now.epoch_secs + sticky.duration();
        let cookies = match &sticky.mode {
            TargetStickiness::LbCookie { .. } => {
                let value = sticky.key.seal(sticky.kind(), &self.group.id, hint, self.pinned_until.unwrap_or(fresh));
                vec![
                    format!("{LB_COOKIE}={value}; Expires={expires}; Path=/"),
                    format!("{LB_CORS_COOKIE}={value}; Expires={expires}; Path=/; SameSite=None; Secure"),
                ]
            }
            TargetStickiness::AppCookie { cookie_name, .. } if sets_cookie(headers, cookie_name) => {
                let value = sticky.key.seal(sticky.kind(), &self.group.id, hint, fresh);
                vec![format!("{APP_COOKIE_PREFIX}{}={value}; Expires={expires}; Path=/", self.group.index)]
            }
            TargetStickiness::AppCookie { .. } => vec![],
        };
        for c in cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                headers.append(SET_COOKIE, v);
            }
        }
    }
}

impl ForwardRoute {
    /// `groups` with weight 0 receive no traffic and are dropped here.
    pub fn new(groups: Vec<(GroupRoute, u32)>, stickiness: Option<u32>) -> Self {
        let mut groups: Vec<_> = groups.into_iter().filter(|(_, w)| *w > 0).collect();
        for (i, (g, _)) in groups.iter_mut().enumerate() {
            g.index = i;
        }
        let weights = groups.iter().map(|(_, w)| *w).collect();
        let needs_clock = groups.iter().any(|(g, _)| g.needs_clock());
        ForwardRoute { groups, weights, stickiness, needs_clock, next: AtomicU64::new(0) }
    }

    /// A target group by weight, then a healthy target in it by its algorithm. When the chosen group has no
    /// healthy target, the next weighted group that has one serves instead (a canary without healthy
    /// targets must not fail its share of requests). When no weighted group has a healthy target, the chosen
    /// group fails open (the next one with a checked target). `None`: no checked target anywhere (503).
    #[cfg(test)]
    pub fn choose(&self) -> Option<(&GroupRoute, &Arc<TargetRuntime>)> {
        let now = self.now();
        self.choose_at(now).map(|(g, i)| (g, &g.targets[i]))
    }

    fn now(&self) -> Now {
        if self.needs_clock { Now::current() } else { Now { mono_ms: 0, epoch_secs: 0 } }
    }

    #[cfg(test)]
    fn choose_at(&self, now: Now) -> Option<(&GroupRoute, usize)> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let first = pick_weighted(&self.weights, ticket)?;
        let n = self.groups.len();
        let healthy = (0..n).find_map(|k| {
            let (group, _) = &self.groups[(first + k) % n];
            group.pick_index(now).map(|i| (group, i))
        });
        healthy.or_else(|| {
            (0..n).find_map(|k| {
                let (group, _) = &self.groups[(first + k) % n];
                group.pick_fail_open().map(|i| (group, i))
            })
        })
    }

    /// Whether requests can take the HTTP/1.1 fast path: no stickiness (forward-action or target) and no h2c
    /// group, so routing never reads cookies or sets any. Checked before [`ForwardRoute::pick`], which advances
    /// the round robin.
    pub fn is_plain(&self) -> bool {
        self.stickiness.is_none() && self.groups.iter().all(|(g, _)| g.target_sticky.is_none() && !g.h2c)
    }

    /// Routes a request by its cookies: the group its `AWSALBTG` cookie names while that has a healthy target
    /// (only when the action is sticky), else one by weight; within the group the target its stickiness
    /// cookie pins while healthy, else one by the group's algorithm. When no group (of non-zero weight) has a
    /// healthy target, ALB fails open: the same order of groups, any checked target of the first that has one.
    /// `None`: no checked target at all (503: a group without registered targets, or only initial ones).
    pub fn pick(&self, headers: &HeaderMap) -> Option<Pick<'_>> {
        self.pick_at(headers, self.now())
    }

    pub fn pick_at(&self, headers: &HeaderMap, now: Now) -> Option<Pick<'_>> {
        let sticky_group = self.stickiness.and_then(|_| {
            let token = cookie(headers, STICKY_COOKIE).and_then(|v| u64::from_str_radix(v, 16).ok())?;
            self.groups.iter().position(|(g, _)| g.sticky == token)
        });
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let first = pick_weighted(&self.weights, ticket)?;
        let n = self.groups.len();
        let order = || sticky_group.into_iter().chain((0..n).map(|k| (first + k) % n));
        for g in order() {
            let group = &self.groups[g].0;
            let (index, pinned_until) = match group.pinned(headers, now) {
                Some((i, until)) => (i, Some(until)),
                None => match group.pick_index(now) {
                    Some(i) => (i, None),
                    None => continue,
                },
            };
            return Some(Pick {
                group,
                target: &group.targets[index],
                index,
                group_cookie: self.stickiness,
                pinned_until,
                now,
            });
        }
        order().find_map(|g| {
            let group = &self.groups[g].0;
            let index = group.pick_fail_open()?;
            Some(Pick {
                group,
                target: &group.targets[index],
                index,
                group_cookie: self.stickiness,
                pinned_until: None,
                now,
            })
        })
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
    fn fail_open_table() {
        use Status as S;
        let bad = S { health: TargetHealth::Unhealthy, reason: None };
        let default = MinimumHealthy::default();
        let count2 = MinimumHealthy { count: 2, percentage: None };
        let half = MinimumHealthy { count: 1, percentage: Some(50) };
        // (groups, minimum healthy, requests, expected count per target id)
        type Case<'a> = (&'a [(&'a str, u32, &'a [Status])], MinimumHealthy, u64, &'a [(&'a str, u64)]);
        let cases: &[Case<'_>] = &[
            // Every target unhealthy: ALB routes to all of them.
            (&[("a", 1, &[bad, bad])], default, 100, &[("a-0", 50), ("a-1", 50)]),
            // Targets still in their initial checks, and draining ones, get no fail-open traffic.
            (&[("a", 1, &[S::INITIAL, bad, S::DRAINING])], default, 10, &[("a-1", 10)]),
            // A weight-0 group (the idle group of a deployment) never serves, healthy or not.
            (&[("idle", 0, &[S::HEALTHY]), ("live", 100, &[bad])], default, 10, &[("live-0", 10)]),
            (&[("idle", 0, &[bad]), ("live", 100, &[bad, bad])], default, 10, &[("live-0", 5), ("live-1", 5)]),
            // A healthy group anywhere in the action is preferred over failing open.
            (&[("stable", 95, &[S::HEALTHY]), ("canary", 5, &[bad])], default, 100, &[("stable-0", 100)]),
            // Raised requirements: below them the group routes to all its checked targets.
            (&[("a", 1, &[S::HEALTHY, bad, bad])], default, 30, &[("a-0", 30)]),
            (&[("a", 1, &[S::HEALTHY, bad, bad])], count2, 30, &[("a-0", 10), ("a-1", 10), ("a-2", 10)]),
            (&[("a", 1, &[S::HEALTHY, S::HEALTHY, bad])], count2, 30, &[("a-0", 15), ("a-1", 15)]),
            (&[("a", 1, &[S::HEALTHY, bad, bad])], half, 30, &[("a-0", 10), ("a-1", 10), ("a-2", 10)]),
            (&[("a", 1, &[S::HEALTHY, S::HEALTHY, bad])], half, 30, &[("a-0", 15), ("a-1", 15)]),
        ];
        for (groups, minimum, n, want) in cases {
            let h = host_with(groups, *minimum);
            let mut counts = std::collections::HashMap::<String, u64>::new();
            for _ in 0..*n {
                let (g, t) = h.choose().expect("a target");
                assert_eq!(&*g.id, t.key.group);
                *counts.entry(t.key.target.clone()).or_default() += 1;
            }
            let want: std::collections::HashMap<String, u64> = want.iter().map(|(k, v)| ((*k).into(), *v)).collect();
            assert_eq!(counts, want, "{groups:?} with {minimum:?}");
            // The request path (cookies, stickiness) decides alike.
            let none = HeaderMap::new();
            let picked = h.pick_at(&none, T0).expect("a target");
            assert!(want.contains_key(&picked.target.key.target), "{groups:?}: {}", picked.target.key.target);
        }
        // No registered target, only initial ones, or only a weight-0 group: 503.
        let nothing: &[&[(&str, u32, &[Status])]] =
            &[&[("a", 1, &[])], &[("a", 1, &[S::INITIAL, S::DRAINING])], &[("a", 0, &[bad]), ("b", 1, &[])]];
        for groups in nothing {
            let h = host_with(groups, default);
            assert!(h.choose().is_none(), "{groups:?} must have no target");
            assert!(h.pick_at(&HeaderMap::new(), T0).is_none(), "{groups:?} must have no target");
        }
    }

    fn host_with(groups: &[(&str, u32, &[Status])], minimum: MinimumHealthy) -> ForwardRoute {
        let groups = groups
            .iter()
            .map(|(id, weight, targets)| {
                let targets =
                    targets.iter().enumerate().map(|(i, s)| test_target(id, &format!("{id}-{i}"), *s)).collect();
                let mut g = GroupRoute::new(*id, targets);
                g.configure(
                    &berth_routes::TargetGroup { id: (*id).into(), unhealthy_routing: minimum, ..Default::default() },
                    &Arc::new(StickyKey::new("k")),
                );
                (g, *weight)
            })
            .collect();
        ForwardRoute::new(groups, None)
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

    /// Cookies as a client would send them back: every `name=value` of the Set-Cookie headers.
    fn cookie_header(set: &HeaderMap) -> HeaderMap {
        let mut h = HeaderMap::new();
        let pairs: Vec<&str> = set
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .collect();
        if !pairs.is_empty() {
            h.insert(COOKIE, HeaderValue::from_str(&pairs.join("; ")).expect("cookie"));
        }
        h
    }

    fn cookies(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(COOKIE, HeaderValue::from_str(&format!("{k}={v}")).expect("cookie"));
        }
        h
    }

    const T0: Now = Now { mono_ms: 1_000_000, epoch_secs: 1_795_781_619 };

    #[test]
    fn only_routes_without_stickiness_or_h2c_are_plain() {
        let mk = |id: &str| GroupRoute::new(id, vec![test_target(id, &format!("{id}-0"), Status::HEALTHY)]);
        assert!(ForwardRoute::new(vec![(mk("a"), 1), (mk("b"), 1)], None).is_plain());
        assert!(!ForwardRoute::new(vec![(mk("a"), 1)], Some(60)).is_plain());
        let mut h2c = mk("b");
        h2c.h2c = true;
        assert!(!ForwardRoute::new(vec![(mk("a"), 1), (h2c, 1)], None).is_plain());
        let mut h2c_unused = mk("c");
        h2c_unused.h2c = true;
        assert!(ForwardRoute::new(vec![(mk("a"), 1), (h2c_unused, 0)], None).is_plain(), "weight 0 is dropped");
    }

    #[test]
    fn stickiness_pins_a_group_while_it_is_healthy() {
        let mk = |id: &str, s: Status| GroupRoute::new(id, vec![test_target(id, &format!("{id}-0"), s)]);
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::HEALTHY), 1)], Some(60));
        let b = cookies(&[("AWSALBTG", &format!("{:016x}", sticky_token("b")))]);
        for _ in 0..10 {
            let pick = route.pick_at(&b, T0).expect("pick");
            assert_eq!(&*pick.group.id, "b");
            let mut set = HeaderMap::new();
            pick.set_cookies(&mut set);
            assert_eq!(set[SET_COOKIE], format!("AWSALBTG={:016x}; Max-Age=60; Path=/", sticky_token("b")).as_str());
        }
        // An unknown token falls back to the weights.
        let unknown = cookies(&[("AWSALBTG", "1")]);
        let seen: std::collections::HashSet<_> =
            (0..10).map(|_| route.pick_at(&unknown, T0).map(|p| p.group.id.clone())).collect();
        assert_eq!(seen.len(), 2);
        // A pinned group without a healthy target: another one serves.
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::INITIAL), 1)], Some(60));
        assert_eq!(route.pick_at(&b, T0).map(|p| p.group.id.clone()).as_deref(), Some("a"));
        // Without stickiness the cookie is ignored, and nothing is set.
        let route = ForwardRoute::new(vec![(mk("a", Status::HEALTHY), 1), (mk("b", Status::HEALTHY), 1)], None);
        let picks: std::collections::HashSet<_> =
            (0..10).filter_map(|_| route.pick_at(&b, T0).map(|p| p.group.id.clone())).collect();
        assert_eq!(picks.len(), 2);
        let mut set = HeaderMap::new();
        route.pick_at(&b, T0).expect("pick").set_cookies(&mut set);
        assert!(set.is_empty());
    }

    #[test]
    fn slow_start_weight_table() {
        // Targets as (joined, healthy since); window 60 s; now 100 s (all in ms).
        const NO: u64 = NOT_HEALTHY;
        type Case<'a> = (&'a [(u64, u64)], &'a [u64], &'a str);
        let cases: &[Case<'_>] = &[
            (&[(0, 10_000), (70_000, 100_000)], &[1000, 0], "healthy just now while another is: 0%"),
            (&[(0, 10_000), (60_000, 70_000)], &[1000, 500], "half way: half its weight"),
            (&[(0, 10_000), (30_000, 40_000)], &[1000, 1000], "the window has passed"),
            (&[(0, 10_000), (5_000, 70_000)], &[1000, 1000], "joined before any other was healthy: not slow"),
            (&[(0, 90_000), (0, 95_000)], &[1000, 1000], "registered together into an empty group"),
            (&[(0, 10_000), (70_000, NO)], &[1000, 0], "not healthy: nothing"),
            (&[(0, NO), (70_000, 100_000)], &[0, 1000], "the only healthy target does not slow-start"),
            (&[(0, 10_000), (70_000, 85_000), (80_000, 85_000)], &[1000, 250, 250], "two newcomers"),
        ];
        for (targets, want, what) in cases {
            let got: Vec<u64> = (0..targets.len())
                .map(|i| slow_start_weight(i, targets.len(), 60_000, 100_000, |j| targets[j].0, |j| targets[j].1))
                .collect();
            assert_eq!(&got, want, "{what}");
        }
        assert_eq!(slow_start_weight(1, 2, 0, 100_000, |_| 50_000, |j| [0, 100_000][j]), FULL_WEIGHT, "off");
    }

    /// Shares of the newcomer of a slow-starting group of one settled and one new target, over `n` picks at
    /// `now` (ms since it became healthy, window 60 s).
    fn newcomer_share(algorithm: Algorithm, elapsed_ms: u64, n: u64) -> u64 {
        let old = test_target("g", "old", Status::HEALTHY);
        let new = test_target("g", "new", Status::HEALTHY);
        old.set_times(0, 1_000);
        new.set_times(500_000, 600_000);
        let mut group = GroupRoute::new("g", vec![old, new]);
        group.algorithm = algorithm;
        group.slow_start_ms = 60_000;
        let now = Now { mono_ms: 600_000 + elapsed_ms, epoch_secs: 0 };
        (0..n).filter(|_| group.pick_index(now) == Some(1)).count() as u64
    }

    #[test]
    fn slow_start_shares_over_many_picks() {
        // (elapsed ms, expected newcomer picks of 3000): weights 1000 : 1000 × elapsed / window.
        let cases = [(0, 0), (15_000, 600), (30_000, 1000), (45_000, 1286), (60_000, 1500), (600_000, 1500)];
        for (elapsed, want) in cases {
            let got = newcomer_share(Algorithm::RoundRobin, elapsed, 3000);
            assert!(got.abs_diff(want) <= 3, "at {elapsed} ms: {got} of 3000, want {want}");
        }
        // Least outstanding requests ignores slow start (ALB allows it with round robin only).
        let got = newcomer_share(Algorithm::LeastOutstandingRequests, 0, 3000);
        assert!(got.abs_diff(1500) <= 3, "{got}");
    }

    #[test]
    fn cookies_seal_and_open_only_under_their_key() {
        let key = StickyKey::new("secret");
        let v = key.seal("lb", "tg", 0x0123_4567_89ab_cdef, 1_795_781_619);
        assert_eq!(v.len(), TARGET_COOKIE_LEN);
        assert_eq!(key.open("lb", "tg", &v), Some((0x0123_4567_89ab_cdef, 1_795_781_619)));
        assert_eq!(StickyKey::new("secret").open("lb", "tg", &v), Some((0x0123_4567_89ab_cdef, 1_795_781_619)));
        assert_eq!(StickyKey::new("other").open("lb", "tg", &v), None, "another server's key");
        assert_eq!(key.open("app", "tg", &v), None, "another kind");
        assert_eq!(key.open("lb", "tg2", &v), None, "another group");
        // Changing the target or the deadline breaks the tag.
        let forged_hint = format!("{:016x}{}", 0x0123_4567_89ab_cdeeu64, &v[16..]);
        let forged_deadline = format!("{}{:012x}{}", &v[..16], 4_000_000_000u64, &v[28..]);
        for bad in [forged_hint.as_str(), forged_deadline.as_str(), "", "zz", &v[..90], &format!("{v}0")] {
            assert_eq!(key.open("lb", "tg", bad), None, "{bad}");
        }
        let a = test_target("tg", "a", Status::HEALTHY);
        let b = test_target("tg", "b", Status::HEALTHY);
        assert_ne!(key.hint("tg", &a.key), key.hint("tg", &b.key));
        assert_ne!(key.hint("tg", &a.key), StickyKey::new("other").hint("tg", &a.key));
    }

    fn sticky_group(mode: TargetStickiness, statuses: &[Status]) -> ForwardRoute {
        let targets = statuses.iter().enumerate().map(|(i, s)| test_target("tg", &format!("t{i}"), *s)).collect();
        let mut group = GroupRoute::new("tg", targets);
        let table_group = berth_routes::TargetGroup { id: "tg".into(), stickiness: Some(mode), ..Default::default() };
        group.configure(&table_group, &Arc::new(StickyKey::new("k")));
        ForwardRoute::new(vec![(group, 1)], None)
    }

    #[test]
    fn lb_cookie_pins_a_target_until_its_deadline_while_healthy() {
        let route = sticky_group(TargetStickiness::LbCookie { duration_secs: 3600 }, &[Status::HEALTHY; 3]);
        let none = HeaderMap::new();
        // Without a cookie: round robin, and every response carries AWSALB and AWSALBCORS.
        let first = route.pick_at(&none, T0).expect("pick");
        let mut set = HeaderMap::new();
        first.set_cookies(&mut set);
        let values: Vec<&str> = set.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(values.len(), 2, "{values:?}");
        assert!(
            values[0].starts_with("AWSALB=") && values[0].ends_with("; Expires=Fri, 04 Dec 2026 12:13:39 GMT; Path=/")
        );
        assert!(values[1].starts_with("AWSALBCORS=") && values[1].ends_with("; Path=/; SameSite=None; Secure"));
        let pinned_to = first.target.key.target.clone();
        let back = cookie_header(&set);
        for k in 0..20 {
            let now = Now { epoch_secs: T0.epoch_secs + k * 100, ..T0 };
            let p = route.pick_at(&back, now).expect("pick");
            assert_eq!(p.target.key.target, pinned_to, "pinned request {k}");
            let mut again = HeaderMap::new();
            p.set_cookies(&mut again);
            assert_eq!(cookie_header(&again), back, "the deadline stays where the client was pinned");
        }
        let free: std::collections::HashSet<String> =
            (0..6).map(|_| route.pick_at(&none, T0).expect("pick").target.key.target.clone()).collect();
        assert_eq!(free.len(), 3, "requests without the cookie rotate");
        // After the duration the cookie is stale: normal choice, and a new deadline.
        let late = Now { epoch_secs: T0.epoch_secs + 3600, ..T0 };
        let picks: std::collections::HashSet<String> =
            (0..6).map(|_| route.pick_at(&back, late).expect("pick").target.key.target.clone()).collect();
        assert_eq!(picks.len(), 3);
        // A pinned target that is not healthy: another one serves, and the new cookie names it.
        let i = route.groups[0].0.targets.iter().position(|t| t.key.target == pinned_to).expect("target");
        let token = route.groups[0].0.targets[i].take_over(Status::HEALTHY);
        route.groups[0].0.targets[i].record(token, Status::DRAINING);
        let p = route.pick_at(&back, T0).expect("pick");
        assert_ne!(p.target.key.target, pinned_to);
        let mut moved = HeaderMap::new();
        p.set_cookies(&mut moved);
        let moved_to = p.target.key.target.clone();
        for _ in 0..5 {
            assert_eq!(route.pick_at(&cookie_header(&moved), T0).expect("pick").target.key.target, moved_to);
        }
        // A forged cookie (another target's hint, bad tag) is ignored.
        let mut forged = back.clone();
        let v = cookie(&back, LB_COOKIE).expect("value").to_owned();
        forged.insert(COOKIE, HeaderValue::from_str(&format!("AWSALB={}0{}", &v[..15], &v[16..])).expect("hv"));
        let picks: std::collections::HashSet<String> =
            (0..6).map(|_| route.pick_at(&forged, T0).expect("pick").target.key.target.clone()).collect();
        assert_eq!(picks.len(), 2, "the two healthy targets rotate");
    }

    #[test]
    fn app_cookie_follows_the_applications_cookie() {
        let mode = TargetStickiness::AppCookie { cookie_name: "SESSION".into(), duration_secs: 60 };
        let route = sticky_group(mode, &[Status::HEALTHY; 2]);
        let none = HeaderMap::new();
        let p = route.pick_at(&none, T0).expect("pick");
        let mut plain = HeaderMap::new();
        p.set_cookies(&mut plain);
        assert!(plain.is_empty(), "no application cookie in the response: nothing to pin");
        let mut set = HeaderMap::new();
        set.append(SET_COOKIE, HeaderValue::from_static("SESSION=abc; Path=/; HttpOnly"));
        p.set_cookies(&mut set);
        let app = set.get_all(SET_COOKIE).iter().nth(1).and_then(|v| v.to_str().ok()).expect("AWSALBAPP-0");
        assert!(app.starts_with("AWSALBAPP-0=") && app.ends_with("; Path=/"), "{app}");
        let pinned_to = p.target.key.target.clone();
        let back = cookie_header(&set);
        for _ in 0..10 {
            assert_eq!(route.pick_at(&back, T0).expect("pick").target.key.target, pinned_to);
        }
        // Without the application's cookie the request is not sticky.
        let only_alb = cookies(&[("AWSALBAPP-0", cookie(&back, "AWSALBAPP-0").expect("value"))]);
        let picks: std::collections::HashSet<String> =
            (0..4).map(|_| route.pick_at(&only_alb, T0).expect("pick").target.key.target.clone()).collect();
        assert_eq!(picks.len(), 2);
        // The application duration is enforced from the sealed deadline.
        let late = Now { epoch_secs: T0.epoch_secs + 60, ..T0 };
        let picks: std::collections::HashSet<String> =
            (0..4).map(|_| route.pick_at(&back, late).expect("pick").target.key.target.clone()).collect();
        assert_eq!(picks.len(), 2);
    }
}
