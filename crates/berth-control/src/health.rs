//! What proxies report back: target health, in-flight requests, and the route-table version they serve.

use std::collections::HashMap;

use berth_routes::{ProxyReport, TargetHealth};

/// A proxy whose last report is older than this is considered gone.
pub const PROXY_STALE_SECS: f64 = 5.0;

#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    pub health: TargetHealth,
    pub reason: Option<String>,
    pub in_flight: u64,
}

/// The merged view of every proxy's reports.
#[derive(Debug, Default)]
pub struct HealthView {
    proxies: HashMap<String, ProxyState>,
}

#[derive(Debug)]
struct ProxyState {
    version: u64,
    at: f64,
    targets: HashMap<(String, String), TargetStatus>,
}

impl HealthView {
    /// Records a report; returns whether anything the reconciler cares about changed.
    pub fn apply(&mut self, report: ProxyReport, now: f64) -> bool {
        let targets: HashMap<(String, String), TargetStatus> = report
            .targets
            .into_iter()
            .map(|t| {
                (
                    (t.target_group, t.target),
                    TargetStatus { health: t.health, reason: t.reason, in_flight: t.in_flight },
                )
            })
            .collect();
        let changed = match self.proxies.get(&report.proxy_id) {
            None => true,
            Some(old) => old.version != report.version || old.targets != targets,
        };
        self.proxies.insert(report.proxy_id, ProxyState { version: report.version, at: now, targets });
        changed
    }

    fn live(&self, now: f64) -> impl Iterator<Item = &ProxyState> {
        self.proxies.values().filter(move |p| now - p.at <= PROXY_STALE_SECS)
    }

    /// The table version each live proxy serves.
    pub fn served_versions(&self, now: f64) -> std::collections::BTreeMap<String, u64> {
        self.proxies
            .iter()
            .filter(|(_, p)| now - p.at <= PROXY_STALE_SECS)
            .map(|(id, p)| (id.clone(), p.version))
            .collect()
    }

    /// The lowest table version any live proxy serves; `None` when no proxy is live.
    pub fn min_version(&self, now: f64) -> Option<u64> {
        self.live(now).map(|p| p.version).min()
    }

    /// A target's health as the live proxies see it: healthy only if every live proxy that knows the target
    /// says so; in-flight requests summed over proxies. `None` when no live proxy reports it.
    pub fn target(&self, target_group: &str, target: &str, now: f64) -> Option<TargetStatus> {
        let key = (target_group.to_string(), target.to_string());
        let mut out: Option<TargetStatus> = None;
        for p in self.live(now) {
            let Some(s) = p.targets.get(&key) else { continue };
            out = Some(match out {
                None => s.clone(),
                Some(mut acc) => {
                    acc.in_flight += s.in_flight;
                    if acc.health == TargetHealth::Healthy && s.health != TargetHealth::Healthy {
                        acc.health = s.health;
                        acc.reason = s.reason.clone();
                    }
                    acc
                }
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_routes::TargetReport;

    fn report(proxy: &str, version: u64, health: TargetHealth, in_flight: u64) -> ProxyReport {
        ProxyReport {
            proxy_id: proxy.into(),
            version,
            targets: vec![TargetReport {
                target_group: "tg".into(),
                target: "t1".into(),
                health,
                reason: None,
                in_flight,
            }],
        }
    }

    #[test]
    fn merges_proxies_and_forgets_stale_ones() {
        let mut v = HealthView::default();
        assert!(v.apply(report("a", 3, TargetHealth::Healthy, 2), 100.0));
        assert!(!v.apply(report("a", 3, TargetHealth::Healthy, 2), 100.5), "same report is no change");
        assert!(v.apply(report("b", 2, TargetHealth::Unhealthy, 1), 101.0));
        let t = v.target("tg", "t1", 101.0).expect("known");
        assert_eq!(t.health, TargetHealth::Unhealthy, "one unhealthy view wins");
        assert_eq!(t.in_flight, 3);
        assert_eq!(v.min_version(101.0), Some(2));
        // a goes stale
        assert_eq!(v.min_version(105.8), Some(2));
        assert_eq!(v.target("tg", "t1", 105.8).expect("b").in_flight, 1);
        assert_eq!(v.min_version(200.0), None);
        assert!(v.target("tg", "t1", 200.0).is_none());
    }
}
