//! Health checks: the ALB state machine (pure), the matcher, the prober task per target, and the
//! supervisor that starts and stops probers as route tables change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_routes::{HealthCheck, ProtocolVersion, RouteTable, Target, TargetGroup, TargetHealth, TargetState};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::target::{Reason, Status, TargetKey, TargetRuntime};

/// Which response codes count as healthy: `"200"`, `"200,302"`, `"200-399"` (and mixes of those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matcher(Vec<(u16, u16)>);

impl Default for Matcher {
    fn default() -> Self {
        Matcher(vec![(200, 399)])
    }
}

impl Matcher {
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let code = |c: &str| match c.trim().parse::<u16>() {
            Ok(v) if (100..=599).contains(&v) => Ok(v),
            _ => Err(format!("invalid HTTP code {c:?} in matcher {s:?}")),
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let range = match part.split_once('-') {
                Some((lo, hi)) => (code(lo)?, code(hi)?),
                None => {
                    let c = code(part)?;
                    (c, c)
                }
            };
            if range.0 > range.1 {
                return Err(format!("empty range {part:?} in matcher {s:?}"));
            }
            ranges.push(range);
        }
        Ok(Matcher(ranges))
    }

    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Success,
    Failure(Reason),
}

/// ALB's target health state machine for a registered target.
///
/// `initial` (never healthy yet) probes every `initial_interval_ms` and becomes healthy after
/// `healthy_threshold` consecutive successes; failures keep it `initial` (with the failure as reason) so a
/// slow-starting target still serves within one fast interval of being ready, until it has failed for as long
/// as ALB would take to call it unhealthy (`unhealthy_threshold` × `interval_secs`, counted in the fast
/// intervals waited): then it is `unhealthy` and probed at the normal pace, so a broken target is not probed
/// fifty times a second forever. `healthy` becomes `unhealthy` after `unhealthy_threshold` consecutive
/// failures; `unhealthy` becomes `healthy` after `healthy_threshold` consecutive successes. Both probe every
/// `interval_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Machine {
    status: Status,
    successes: u32,
    failures: u32,
    /// While `initial`: the time waited between consecutive failed probes (probe durations not counted).
    initial_failing: Duration,
}

impl Machine {
    pub fn new() -> Self {
        Machine::resume(Status::INITIAL)
    }

    /// Continues from a known status (a prober restarted because its health check changed).
    pub fn resume(status: Status) -> Self {
        let status = if status.health == TargetHealth::Draining { Status::INITIAL } else { status };
        Machine { status, successes: 0, failures: 0, initial_failing: Duration::ZERO }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Records a probe; true when the status (health or reason) changed.
    pub fn observe(&mut self, probe: Probe, check: &HealthCheck) -> bool {
        let before = self.status;
        let healthy_threshold = check.healthy_threshold.max(1);
        let unhealthy_threshold = check.unhealthy_threshold.max(1);
        match probe {
            Probe::Success => {
                self.failures = 0;
                self.initial_failing = Duration::ZERO;
                self.successes = self.successes.saturating_add(1);
                if self.status.health != TargetHealth::Healthy && self.successes >= healthy_threshold {
                    self.status = Status::HEALTHY;
                }
            }
            Probe::Failure(reason) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                match self.status.health {
                    TargetHealth::Healthy if self.failures >= unhealthy_threshold => {
                        self.status = Status { health: TargetHealth::Unhealthy, reason: Some(reason) };
                    }
                    TargetHealth::Healthy => {}
                    TargetHealth::Initial => {
                        if self.failures > 1 {
                            self.initial_failing += self.next_delay(check);
                        }
                        let alb_window =
                            Duration::from_secs(u64::from(check.interval_secs.max(1))) * unhealthy_threshold;
                        let health = if self.initial_failing >= alb_window {
                            TargetHealth::Unhealthy
                        } else {
                            TargetHealth::Initial
                        };
                        self.status = Status { health, reason: Some(reason) };
                    }
                    TargetHealth::Unhealthy | TargetHealth::Draining => {
                        self.status.reason = Some(reason);
                    }
                }
            }
        }
        self.status != before
    }

    /// How long to wait before the next probe.
    pub fn next_delay(&self, check: &HealthCheck) -> Duration {
        match self.status.health {
            TargetHealth::Initial => Duration::from_millis(u64::from(check.initial_interval_ms.max(10))),
            _ => Duration::from_secs(u64::from(check.interval_secs.max(1))),
        }
    }
}

pub(crate) type ProbeClient = Client<HttpConnector, Empty<Bytes>>;

pub(crate) fn probe_client(h2c: bool) -> ProbeClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).http2_only(h2c).build(connector)
}

/// Health-check bodies are read up to this size (then the connection is dropped, not pooled).
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// One `GET http://<addr><path>` within the check's timeout.
pub(crate) async fn probe(client: &ProbeClient, key: &TargetKey, check: &HealthCheck, matcher: &Matcher) -> Probe {
    let path = if check.path.starts_with('/') { check.path.as_str() } else { "/" };
    let request = match http::Request::get(format!("http://{}{}", key.addr, path))
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .body(Empty::new())
    {
        Ok(r) => r,
        Err(_) => return Probe::Failure(Reason::FailedHealthChecks),
    };
    let timeout = Duration::from_secs(u64::from(check.timeout_secs.max(1)));
    let exchange = async {
        let response = client.request(request).await.map_err(|_| Reason::FailedHealthChecks)?;
        let status = response.status().as_u16();
        // Read a small body so the connection can be reused; a large or failing one is just dropped.
        let _ = http_body_util::Limited::new(response.into_body(), PROBE_BODY_LIMIT).collect().await;
        Ok::<u16, Reason>(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Probe::Failure(Reason::Timeout),
        Ok(Err(reason)) => Probe::Failure(reason),
        Ok(Ok(status)) if matcher.matches(status) => Probe::Success,
        Ok(Ok(_)) => Probe::Failure(Reason::ResponseCodeMismatch),
    }
}

/// Probes one target until revoked: first probe at once, then at the machine's pace.
async fn run_prober(
    runtime: Arc<TargetRuntime>,
    token: u64,
    check: HealthCheck,
    mut machine: Machine,
    client: ProbeClient,
    changed: Arc<Notify>,
) {
    let matcher = Matcher::parse(&check.matcher).unwrap_or_else(|e| {
        tracing::warn!(target_group = %runtime.key.group, error = %e, "using the default health check matcher");
        Matcher::default()
    });
    loop {
        let result = probe(&client, &runtime.key, &check, &matcher).await;
        if machine.observe(result, &check) {
            if !runtime.record(token, machine.status()) {
                return;
            }
            let status = machine.status();
            tracing::info!(
                target_group = %runtime.key.group, target = %runtime.key.target, addr = %runtime.key.addr,
                health = ?status.health, reason = status.reason.map(Reason::code), "target health changed"
            );
            changed.notify_one();
        }
        tokio::time::sleep(machine.next_delay(&check)).await;
    }
}

struct Supervised {
    runtime: Arc<TargetRuntime>,
    check: HealthCheck,
    /// Probed over h2c (the group's protocol version is HTTP2).
    h2c: bool,
    prober: Option<JoinHandle<()>>,
}

impl Supervised {
    fn stop(&mut self) {
        if let Some(p) = self.prober.take() {
            p.abort();
        }
    }
}

/// One target group as the supervisor last synced it: the group itself and its targets' runtimes and probers.
struct Group {
    synced: TargetGroup,
    targets: HashMap<TargetKey, Supervised>,
}

/// Owns every target's runtime and prober; [`Supervisor::sync`] converges them on a route table, group by group:
/// a group equal to the one last synced is not touched at all.
pub(crate) struct Supervisor {
    groups: HashMap<String, Group>,
    client: ProbeClient,
    h2c_client: ProbeClient,
    changed: Arc<Notify>,
}

impl Supervisor {
    pub fn new(changed: Arc<Notify>) -> Self {
        Supervisor { groups: HashMap::new(), client: probe_client(false), h2c_client: probe_client(true), changed }
    }

    /// Converges on `table`: for each group that differs from the one last synced (or is new), starts probers
    /// for new registered targets (weight 0 included), restarts those whose check changed (keeping their
    /// health), stops draining and removed ones; drops groups the table no longer has. Returns the ids of the
    /// groups it changed, added or dropped: every other group's targets keep their runtimes as they were.
    pub fn sync(&mut self, table: &RouteTable) -> HashSet<String> {
        let mut changed = HashSet::new();
        let mut present = HashSet::with_capacity(table.target_groups.len());
        for group in &table.target_groups {
            if !present.insert(group.id.as_str()) {
                continue;
            }
            if self.groups.get(&group.id).is_some_and(|g| g.synced == *group) {
                continue;
            }
            changed.insert(group.id.clone());
            let mut entry = self.groups.remove(&group.id).unwrap_or_else(|| Group {
                synced: TargetGroup { slow_start_secs: 0, ..TargetGroup::default() },
                targets: HashMap::new(),
            });
            self.sync_group(group, &mut entry.targets);
            // Slow start just enabled (or widened from 0): its targets already healthy keep their full share, as
            // on ALB; only targets that turn healthy from now on slow-start.
            if entry.synced.slow_start_secs == 0 && group.slow_start_secs > 0 {
                let now = crate::target::clock_ms();
                let window = u64::from(group.slow_start_secs) * 1000;
                for t in entry.targets.values() {
                    t.runtime.settle(now, window);
                }
            }
            entry.synced = group.clone();
            self.groups.insert(group.id.clone(), entry);
        }
        self.groups.retain(|id, g| {
            let keep = present.contains(id.as_str());
            if !keep {
                for t in g.targets.values_mut() {
                    t.stop();
                }
                changed.insert(id.clone());
            }
            keep
        });
        changed
    }

    fn spawn(&self, runtime: &Arc<TargetRuntime>, check: &HealthCheck, h2c: bool, machine: Machine) -> JoinHandle<()> {
        let token = runtime.take_over(machine.status());
        let client = if h2c { &self.h2c_client } else { &self.client };
        tokio::spawn(run_prober(runtime.clone(), token, check.clone(), machine, client.clone(), self.changed.clone()))
    }

    fn sync_group(&self, group: &TargetGroup, entries: &mut HashMap<TargetKey, Supervised>) {
        let h2c = group.protocol_version == ProtocolVersion::Http2;
        let mut seen = HashSet::with_capacity(group.targets.len());
        for target in &group.targets {
            let key = TargetKey { group: group.id.clone(), target: target.id.clone(), addr: target.addr };
            if !seen.insert(key.clone()) {
                continue;
            }
            let draining = target.state == TargetState::Draining;
            match entries.get_mut(&key) {
                Some(entry) if draining => {
                    if entry.prober.is_some() || entry.runtime.status() != Status::DRAINING {
                        entry.stop();
                        entry.runtime.take_over(Status::DRAINING);
                    }
                }
                Some(entry) if entry.prober.is_some() && entry.check == group.health_check && entry.h2c == h2c => {}
                Some(entry) => {
                    // Back from draining (start over) or a changed check (keep the health it has).
                    let machine = match entry.prober.is_some() {
                        true => Machine::resume(entry.runtime.status()),
                        false => Machine::new(),
                    };
                    entry.stop();
                    entry.prober = Some(self.spawn(&entry.runtime, &group.health_check, h2c, machine));
                    entry.check = group.health_check.clone();
                    entry.h2c = h2c;
                }
                None => {
                    let status = if draining { Status::DRAINING } else { Status::INITIAL };
                    let runtime = TargetRuntime::new(key.clone(), status);
                    let prober = (!draining).then(|| self.spawn(&runtime, &group.health_check, h2c, Machine::new()));
                    let check = group.health_check.clone();
                    entries.insert(key, Supervised { runtime, check, h2c, prober });
                }
            }
        }
        entries.retain(|key, entry| {
            let keep = seen.contains(key);
            if !keep {
                entry.stop();
            }
            keep
        });
    }

    /// The runtime of `target` of group `group`, if the last synced table has it.
    pub fn runtime(&self, group: &str, target: &Target) -> Option<&Arc<TargetRuntime>> {
        let g = self.groups.get(group)?;
        let key = TargetKey { group: group.to_owned(), target: target.id.clone(), addr: target.addr };
        g.targets.get(&key).map(|e| &e.runtime)
    }

    /// Every target's runtime (weight 0 and draining included), by group and target id.
    pub fn runtimes(&self) -> Vec<Arc<TargetRuntime>> {
        let mut all: Vec<_> =
            self.groups.values().flat_map(|g| g.targets.values().map(|e| e.runtime.clone())).collect();
        all.sort_by(|a, b| (&a.key.group, &a.key.target).cmp(&(&b.key.group, &b.key.target)));
        all
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for g in self.groups.values_mut() {
            for entry in g.targets.values_mut() {
                entry.stop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_table() {
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("200", &[200], &[201, 302, 500]),
            ("200,302", &[200, 302], &[201, 301, 404]),
            ("200-399", &[200, 250, 302, 399], &[199, 400, 500]),
            (" 200 - 204 , 404 ", &[200, 204, 404], &[205, 403]),
        ];
        for (s, yes, no) in cases {
            let m = Matcher::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            for code in *yes {
                assert!(m.matches(*code), "{s} should match {code}");
            }
            for code in *no {
                assert!(!m.matches(*code), "{s} should not match {code}");
            }
        }
        for bad in ["", "abc", "200-", "-200", "399-200", "99", "600", "200,,302"] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Matcher::default().matches(302));
    }

    /// Runs a sequence of probes ('+' success, 'c' code mismatch, 't' timeout, 'r' refused) and returns
    /// the health after each, as letters: i(nitial) h(ealthy) u(nhealthy).
    fn run(check: &HealthCheck, probes: &str) -> (String, Option<Reason>) {
        let mut m = Machine::new();
        let mut out = String::new();
        for c in probes.chars() {
            let probe = match c {
                '+' => Probe::Success,
                'c' => Probe::Failure(Reason::ResponseCodeMismatch),
                't' => Probe::Failure(Reason::Timeout),
                _ => Probe::Failure(Reason::FailedHealthChecks),
            };
            m.observe(probe, check);
            out.push(match m.status().health {
                TargetHealth::Initial => 'i',
                TargetHealth::Healthy => 'h',
                TargetHealth::Unhealthy => 'u',
                TargetHealth::Draining => 'd',
            });
        }
        (out, m.status().reason)
    }

    #[test]
    fn state_machine_table() {
        let check = HealthCheck { healthy_threshold: 3, unhealthy_threshold: 2, ..HealthCheck::default() };
        let cases: &[(&str, &str, Option<Reason>)] = &[
            ("+++", "iih", None),
            // Failures while initial keep it initial and reset the streak.
            ("++c+++", "iiiiih", None),
            ("rrrrr", "iiiii", Some(Reason::FailedHealthChecks)),
            ("+++c", "iihh", None),
            ("+++cc", "iihhu", Some(Reason::ResponseCodeMismatch)),
            ("+++c+c", "iihhhh", None),
            ("+++ct", "iihhu", Some(Reason::Timeout)),
            ("+++tt++", "iihhuuu", Some(Reason::Timeout)),
            ("+++tt+++", "iihhuuuh", None),
            ("+++tt++c+++", "iihhuuuuuuh", None),
        ];
        for (probes, want, reason) in cases {
            let (got, got_reason) = run(&check, probes);
            assert_eq!(&got, want, "probes {probes}");
            assert_eq!(got_reason, *reason, "probes {probes}");
        }
        // Thresholds of 0 behave as 1.
        let eager = HealthCheck { healthy_threshold: 0, unhealthy_threshold: 0, ..HealthCheck::default() };
        assert_eq!(run(&eager, "+c+").0, "huh");
    }

    #[test]
    fn pace_follows_the_state() {
        let check =
            HealthCheck { interval_secs: 7, initial_interval_ms: 50, healthy_threshold: 1, ..Default::default() };
        let mut m = Machine::new();
        assert_eq!(m.next_delay(&check), Duration::from_millis(50));
        m.observe(Probe::Success, &check);
        assert_eq!(m.next_delay(&check), Duration::from_secs(7));
        assert_eq!(Machine::resume(Status::DRAINING).status(), Status::INITIAL);
    }

    #[test]
    fn a_target_failing_from_the_start_turns_unhealthy_after_albs_window() {
        // interval 1 s × threshold 2 = 2 s of failing, counted in 100 ms fast intervals: 20 waits.
        let check = HealthCheck {
            interval_secs: 1,
            unhealthy_threshold: 2,
            healthy_threshold: 2,
            initial_interval_ms: 100,
            ..HealthCheck::default()
        };
        let (states, reason) = run(&check, &"c".repeat(22));
        assert_eq!(states, format!("{}uu", "i".repeat(20)));
        assert_eq!(reason, Some(Reason::ResponseCodeMismatch));
        // A success in between starts the window again.
        let probes = format!("{}+{}", "c".repeat(15), "c".repeat(15));
        assert_eq!(run(&check, &probes).0, "i".repeat(31));
        let mut m = Machine::new();
        for _ in 0..21 {
            m.observe(Probe::Failure(Reason::Timeout), &check);
        }
        assert_eq!(m.status().health, TargetHealth::Unhealthy);
        assert_eq!(m.next_delay(&check), Duration::from_secs(1), "probed at the normal pace now");
        assert!(!m.observe(Probe::Success, &check));
        assert!(m.observe(Probe::Success, &check), "healthy after the healthy threshold");
        assert_eq!(m.status(), Status::HEALTHY);
    }

    #[tokio::test]
    async fn enabling_slow_start_settles_targets_already_healthy() {
        let table = |slow_start_secs: u32, ids: &[&str]| RouteTable {
            target_groups: vec![TargetGroup {
                id: "tg".into(),
                targets: ids
                    .iter()
                    .map(|id| Target {
                        id: (*id).into(),
                        addr: "127.0.0.1:1".parse().expect("addr"),
                        state: TargetState::Registered,
                    })
                    .collect(),
                slow_start_secs,
                ..TargetGroup::default()
            }],
            ..RouteTable::default()
        };
        let mut supervisor = Supervisor::new(Arc::new(Notify::new()));
        supervisor.sync(&table(0, &["old"]));
        let old = supervisor.runtimes().first().expect("runtime").clone();
        old.take_over(Status::HEALTHY);
        let since = old.healthy_since();
        // Slow start enabled: the healthy target is not put into slow start.
        supervisor.sync(&table(30, &["old", "new"]));
        assert!(old.healthy_since() <= since.min(crate::target::clock_ms() - 30_000), "settled");
        // A target that turns healthy from now on is not settled by later tables.
        let new = supervisor.runtimes().into_iter().find(|r| r.key.target == "new").expect("new");
        new.take_over(Status::HEALTHY);
        let new_since = new.healthy_since();
        supervisor.sync(&table(30, &["old", "new"]));
        assert_eq!(new.healthy_since(), new_since);
    }

    #[test]
    fn observe_reports_reason_changes() {
        let check = HealthCheck::default();
        let mut m = Machine::new();
        assert!(m.observe(Probe::Failure(Reason::Timeout), &check), "initial reason changed");
        assert!(!m.observe(Probe::Failure(Reason::Timeout), &check), "same reason again");
        assert!(m.observe(Probe::Failure(Reason::FailedHealthChecks), &check));
    }
}
