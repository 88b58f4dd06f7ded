//! The live side of one target: its health status (written by its prober, read by the router), when it joined
//! its group and last became healthy (for slow start, on the proxy's monotonic clock), and its in-flight
//! request count. It outlives table versions as long as the target stays in its group.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use berth_routes::TargetHealth;

/// A target is the same target across table versions while its group, id and address stay the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TargetKey {
    pub group: String,
    pub target: String,
    pub addr: SocketAddr,
}

/// ALB's reason codes for a target that is not healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    InitialHealthChecking,
    ResponseCodeMismatch,
    Timeout,
    FailedHealthChecks,
    DeregistrationInProgress,
}

impl Reason {
    const ALL: [Reason; 5] = [
        Reason::InitialHealthChecking,
        Reason::ResponseCodeMismatch,
        Reason::Timeout,
        Reason::FailedHealthChecks,
        Reason::DeregistrationInProgress,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::InitialHealthChecking => "Elb.InitialHealthChecking",
            Reason::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            Reason::Timeout => "Target.Timeout",
            Reason::FailedHealthChecks => "Target.FailedHealthChecks",
            Reason::DeregistrationInProgress => "Target.DeregistrationInProgress",
        }
    }
}

/// A target's health and, when not healthy, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub health: TargetHealth,
    pub reason: Option<Reason>,
}

impl Status {
    pub const INITIAL: Status = Status { health: TargetHealth::Initial, reason: Some(Reason::InitialHealthChecking) };
    pub const HEALTHY: Status = Status { health: TargetHealth::Healthy, reason: None };
    pub const DRAINING: Status =
        Status { health: TargetHealth::Draining, reason: Some(Reason::DeregistrationInProgress) };

    fn encode(self) -> u8 {
        let health = match self.health {
            TargetHealth::Initial => 0,
            TargetHealth::Healthy => 1,
            TargetHealth::Unhealthy => 2,
            TargetHealth::Draining => 3,
        };
        let reason = self.reason.and_then(|r| Reason::ALL.iter().position(|x| *x == r)).map_or(0, |i| i as u8 + 1);
        health | (reason << 2)
    }

    fn decode(v: u8) -> Status {
        let health = match v & 3 {
            0 => TargetHealth::Initial,
            1 => TargetHealth::Healthy,
            2 => TargetHealth::Unhealthy,
            _ => TargetHealth::Draining,
        };
        let reason = match v >> 2 {
            0 => None,
            i => Reason::ALL.get(usize::from(i) - 1).copied(),
        };
        Status { health, reason }
    }
}

/// Where [`clock_ms`] starts: far enough from 0 that a moment can be moved a whole slow-start window (≤ 900 s)
/// into the past.
const CLOCK_START_MS: u64 = 1 << 30;

/// Milliseconds on the proxy's monotonic clock (from [`CLOCK_START_MS`] at its first use in this process).
pub(crate) fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    CLOCK_START_MS + EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// `healthy_since` of a target that is not healthy.
pub(crate) const NOT_HEALTHY: u64 = u64::MAX;

pub(crate) struct TargetRuntime {
    pub key: TargetKey,
    /// The encoded [`Status`]: read lock-free on the hot path.
    status: AtomicU8,
    /// When (on [`clock_ms`]) the target was registered or last stopped being healthy: whether it enters slow
    /// start is judged against the group as it was then.
    joined: AtomicU64,
    /// When it last became healthy ([`NOT_HEALTHY`] while it is not).
    healthy_since: AtomicU64,
    /// Which prober may write the status; bumped whenever the supervisor takes over (so a prober being
    /// aborted can never overwrite what replaced it).
    owner: Mutex<u64>,
    in_flight: AtomicU64,
    /// Requests sent to it (cumulative), for the report's per-target counts.
    requests: AtomicU64,
}

impl std::fmt::Debug for TargetRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetRuntime")
            .field("key", &self.key)
            .field("status", &self.status())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl TargetRuntime {
    pub fn new(key: TargetKey, status: Status) -> Arc<Self> {
        let now = clock_ms();
        let healthy = status.health == TargetHealth::Healthy;
        Arc::new(TargetRuntime {
            key,
            status: AtomicU8::new(status.encode()),
            joined: AtomicU64::new(now),
            healthy_since: AtomicU64::new(if healthy { now } else { NOT_HEALTHY }),
            owner: Mutex::new(0),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// Stores a status (under the owner lock) and stamps the moments the target becomes or stops being
    /// healthy.
    fn set(&self, status: Status) {
        let before = Status::decode(self.status.swap(status.encode(), Ordering::AcqRel));
        let (was, is) = (before.health == TargetHealth::Healthy, status.health == TargetHealth::Healthy);
        if was != is {
            let now = clock_ms();
            if is {
                self.healthy_since.store(now, Ordering::Release);
            } else {
                self.joined.store(now, Ordering::Release);
                self.healthy_since.store(NOT_HEALTHY, Ordering::Release);
            }
        }
    }

    /// When the target joined its group or last stopped being healthy (ms, [`clock_ms`]).
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Acquire)
    }

    /// When the target last became healthy (ms, [`clock_ms`]); [`NOT_HEALTHY`] while it is not.
    pub fn healthy_since(&self) -> u64 {
        self.healthy_since.load(Ordering::Acquire)
    }

    /// A healthy target takes its full share at once: its healthy moment moves at least `window_ms` into the
    /// past (slow start was just enabled for its group, and ALB does not slow-start targets already healthy).
    pub fn settle(&self, now_ms: u64, window_ms: u64) {
        let _owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_healthy() {
            self.healthy_since.fetch_min(now_ms.saturating_sub(window_ms), Ordering::AcqRel);
        }
    }

    /// Sets both moments (tests drive slow start with their own clock).
    #[cfg(test)]
    pub fn set_times(&self, joined: u64, healthy_since: u64) {
        self.joined.store(joined, Ordering::Release);
        self.healthy_since.store(healthy_since, Ordering::Release);
    }

    pub fn status(&self) -> Status {
        Status::decode(self.status.load(Ordering::Acquire))
    }

    pub fn is_healthy(&self) -> bool {
        self.status().health == TargetHealth::Healthy
    }

    /// The supervisor sets the status and revokes every earlier prober; returns the new owner token.
    pub fn take_over(&self, status: Status) -> u64 {
        let mut owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
        *owner += 1;
        self.set(status);
        *owner
    }

    /// A prober records a status; false when it no longer owns the target (it must stop).
    pub fn record(&self, token: u64, status: Status) -> bool {
        let owner = self.owner.lock().unwrap_or_else(PoisonError::into_inner);
        if *owner != token {
            return false;
        }
        self.set(status);
        true
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests sent to it so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts one request until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// One request in flight to a target.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<TargetRuntime>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
pub(crate) fn test_target(group: &str, id: &str, status: Status) -> Arc<TargetRuntime> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    TargetRuntime::new(TargetKey { group: group.into(), target: id.into(), addr }, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_encoding_round_trips() {
        let healths = [TargetHealth::Initial, TargetHealth::Healthy, TargetHealth::Unhealthy, TargetHealth::Draining];
        for health in healths {
            for reason in std::iter::once(None).chain(Reason::ALL.iter().copied().map(Some)) {
                let s = Status { health, reason };
                assert_eq!(Status::decode(s.encode()), s);
            }
        }
    }

    #[test]
    fn ownership_and_in_flight() {
        let t = test_target("tg", "a", Status::INITIAL);
        let token = t.take_over(Status::INITIAL);
        assert!(t.record(token, Status::HEALTHY));
        assert!(t.is_healthy());
        let newer = t.take_over(Status::DRAINING);
        assert!(!t.record(token, Status::HEALTHY), "a revoked prober must not write");
        assert_eq!(t.status(), Status::DRAINING);
        assert!(t.record(newer, Status::HEALTHY));
        let (a, b) = (t.begin(), t.begin());
        assert_eq!(t.in_flight(), 2);
        drop(a);
        assert_eq!(t.in_flight(), 1);
        drop(b);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn health_transitions_are_stamped() {
        let t = test_target("tg", "a", Status::INITIAL);
        assert_eq!(t.healthy_since(), NOT_HEALTHY);
        let joined = t.joined();
        let token = t.take_over(Status::INITIAL);
        assert!(t.record(token, Status::HEALTHY));
        let since = t.healthy_since();
        assert!(since != NOT_HEALTHY && since >= joined);
        assert_eq!(t.joined(), joined, "becoming healthy does not move the join time");
        assert!(t.record(token, Status::HEALTHY));
        assert_eq!(t.healthy_since(), since, "staying healthy keeps the moment");
        let unhealthy = Status { health: TargetHealth::Unhealthy, reason: Some(Reason::Timeout) };
        assert!(t.record(token, unhealthy));
        assert_eq!(t.healthy_since(), NOT_HEALTHY);
        assert!(t.joined() >= since, "leaving healthy starts a new join");
        assert_ne!(test_target("tg", "b", Status::HEALTHY).healthy_since(), NOT_HEALTHY);
        assert!(clock_ms() >= CLOCK_START_MS);
    }

    #[test]
    fn settling_moves_only_a_healthy_target_past_the_window() {
        let t = test_target("tg", "a", Status::HEALTHY);
        t.set_times(5_000_000_000, 5_000_000_000);
        t.settle(5_000_010_000, 60_000);
        assert_eq!(t.healthy_since(), 5_000_010_000 - 60_000);
        t.settle(5_000_010_000, 30_000);
        assert_eq!(t.healthy_since(), 5_000_010_000 - 60_000, "never forward");
        let u = test_target("tg", "u", Status::INITIAL);
        u.settle(5_000_010_000, 60_000);
        assert_eq!(u.healthy_since(), NOT_HEALTHY);
    }
}
