//! ELBv2: load balancers, listeners, rules, target groups and their attributes, the API over them
//! (`api.rs`, entered by `Control::handle_elbv2`), the pure rule validation and matching (`rules.rs`), where load
//! balancers listen and who may connect (`network.rs`), and what the route table takes from them
//! ([`route_rules`], [`route_groups`]). Users may edit all of it through the API; the reconciler reads these
//! rows but never rewrites a user's edit. An Express service's own resources are placed by
//! `crate::express::placement`.

mod api;
mod context;
pub(crate) mod network;
pub(crate) mod rules;

pub(crate) use api::handle;

use std::collections::{BTreeMap, HashMap};

use berth_core::{AwsError, ids};
use berth_model::elbv2::{Action, RuleCondition};
use berth_routes::{Algorithm, Condition, HealthCheck, MinimumHealthy, Rule, TargetStickiness};
use berth_store::{ListenerRow, ServiceRow, Tx};
use serde::{Deserialize, Serialize};

use crate::{CallerIdentity, Control, ControlError, authz};

/// A target group's health check, as ModifyTargetGroup edits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HealthSettings {
    pub path: String,
    /// `traffic-port` or a port number.
    pub port: String,
    pub protocol: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    pub matcher: String,
}

impl HealthSettings {
    /// What Express sets (reference §2.9): 30 s interval, 5 s timeout, 5 healthy, 2 unhealthy.
    pub fn express(path: &str) -> Self {
        HealthSettings {
            path: path.to_string(),
            port: "traffic-port".into(),
            protocol: "HTTP".into(),
            interval: 30,
            timeout: 5,
            healthy: 5,
            unhealthy: 2,
            matcher: "200-399".into(),
        }
    }

    pub fn route(&self) -> HealthCheck {
        HealthCheck {
            path: self.path.clone(),
            interval_secs: self.interval,
            timeout_secs: self.timeout,
            healthy_threshold: self.healthy,
            unhealthy_threshold: self.unhealthy,
            matcher: self.matcher.clone(),
            ..HealthCheck::default()
        }
    }
}

/// ALB's target group health requirements: below them, routing fails open (the proxy routes to every checked
/// target); DNS failover has nothing to do with one zone and is validated and stored only.
pub(crate) const ROUTING_MIN_COUNT: &str = "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count";
pub(crate) const ROUTING_MIN_PERCENTAGE: &str =
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage";
pub(crate) const DNS_MIN_COUNT: &str = "target_group_health.dns_failover.minimum_healthy_targets.count";
pub(crate) const DNS_MIN_PERCENTAGE: &str = "target_group_health.dns_failover.minimum_healthy_targets.percentage";

/// ALB's target-group attribute defaults (the keys berth accepts).
pub(crate) fn default_tg_attributes() -> BTreeMap<String, String> {
    [
        ("deregistration_delay.timeout_seconds", "300"),
        ("slow_start.duration_seconds", "0"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration"),
        ("stickiness.enabled", "false"),
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        (ROUTING_MIN_COUNT, "1"),
        (ROUTING_MIN_PERCENTAGE, "off"),
        (DNS_MIN_COUNT, "1"),
        (DNS_MIN_PERCENTAGE, "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// ALB's load-balancer attribute defaults, with what Express sets (desync mitigation off, no access logs).
pub(crate) fn default_lb_attributes() -> BTreeMap<String, String> {
    [
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("deletion_protection.enabled", "false"),
        ("idle_timeout.timeout_seconds", "60"),
        ("client_keep_alive.seconds", "3600"),
        ("routing.http.desync_mitigation_mode", "off"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http.preserve_host_header.enabled", "false"),
        ("routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false"),
        ("routing.http.xff_client_port.enabled", "false"),
        ("routing.http.xff_header_processing.mode", "append"),
        ("routing.http2.enabled", "true"),
        ("waf.fail_open.enabled", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(crate) fn json<T: Serialize>(v: &T) -> Result<String, ControlError> {
    serde_json::to_string(v).map_err(|e| ControlError::invalid(e.to_string()))
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T, ControlError> {
    serde_json::from_str(s).map_err(|e| ControlError::Store(berth_store::StoreError::Corrupt(format!("{what}: {e}"))))
}

impl Control {
    pub(crate) fn elb_arn(&self, resource: &str) -> String {
        format!("arn:aws:elasticloadbalancing:{}:{}:{resource}", self.names.region, self.names.account)
    }

    pub(crate) fn certificate_arn(&self) -> String {
        let h = ids::random_hex(32);
        format!(
            "arn:aws:acm:{}:{}:certificate/{}-{}-{}-{}-{}",
            self.names.region,
            self.names.account,
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

pub(crate) fn rule_arn(c: &Control, listener_arn: &str) -> String {
    let path = listener_arn.split_once(":listener/").map(|(_, p)| p).unwrap_or(listener_arn);
    c.elb_arn(&format!("listener-rule/{path}/{}", ids::random_hex(16)))
}

/// The HTTPS listener of a load balancer.
pub(crate) fn https_listener(tx: &Tx<'_>, lb_arn: &str) -> Result<Option<ListenerRow>, ControlError> {
    Ok(tx.listeners(lb_arn)?.into_iter().find(|l| l.protocol == "HTTPS"))
}

/// What ECS shows of a service's load balancing: (live target group, the other one, the Express rule ARN).
pub(crate) fn service_groups(
    tx: &Tx<'_>,
    service: &ServiceRow,
) -> Result<Option<(String, String, Option<String>)>, ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(None) };
    let revision = service.live_revision.as_deref().unwrap_or(&service.target_revision);
    let live = tx.revision_group(revision)?.unwrap_or_else(|| p.group_a.clone());
    let other = if live == p.group_a { p.group_b.clone() } else { p.group_a.clone() };
    let rule = tx.rules_all()?.into_iter().find(|r| r.service_id == Some(service.id)).map(|r| r.arn);
    Ok(Some((live, other, rule)))
}

/// The `deregistration_delay.timeout_seconds` of the group the service's live (else target) revision uses.
pub(crate) fn deregistration_delay(tx: &Tx<'_>, service: &ServiceRow) -> Result<Option<f64>, ControlError> {
    let revision = service.live_revision.as_deref().unwrap_or(&service.target_revision);
    let Some(group) = tx.revision_group(revision)? else { return Ok(None) };
    let Some(g) = tx.tg_get(&group)? else { return Ok(None) };
    let attrs: BTreeMap<String, String> = parse(&g.attributes, "target group attributes")?;
    Ok(attrs.get("deregistration_delay.timeout_seconds").and_then(|v| v.parse::<f64>().ok()))
}

/// Revision ARN → target group ARN, for every revision that has one.
pub(crate) fn revision_groups(tx: &Tx<'_>) -> Result<HashMap<String, String>, ControlError> {
    Ok(tx.revision_groups()?.into_iter().collect())
}

/// The listener rules and load balancers the proxy serves: every servable load balancer (see
/// [`network::route_load_balancers`]) and its HTTPS listener's non-default rules, each tied to its load
/// balancer. When several load balancers share a socket (the default ones, or an internal VPC address), a
/// rule without a host-header condition is limited to the hosts its own load balancer serves (its services'
/// endpoints and the hosts its rules name), since there the Host picks the load balancer.
pub(crate) fn route_rules(
    c: &Control,
    tx: &Tx<'_>,
    hosts_by_service: &HashMap<i64, String>,
) -> Result<(Vec<Rule>, Vec<berth_routes::LoadBalancer>), ControlError> {
    let lbs = tx.lbs()?;
    let placements = tx.placements()?;
    let mut parsed_by_lb = Vec::new();
    let mut rule_hosts: HashMap<String, Vec<String>> = HashMap::new();
    for lb in &lbs {
        let Some(listener) = https_listener(tx, &lb.arn)? else { continue };
        let rows = tx.rules(&listener.arn)?;
        let mut parsed = Vec::new();
        let mut scope: Vec<String> = placements
            .iter()
            .filter(|p| p.load_balancer_arn == lb.arn)
            .filter_map(|p| hosts_by_service.get(&p.service_id).cloned())
            .collect();
        for row in rows.into_iter().filter(|r| r.priority.is_some()) {
            let conditions: Vec<RuleCondition> = parse(&row.conditions, "rule conditions")?;
            let actions: Vec<Action> = parse(&row.actions, "rule actions")?;
            let conditions = rules::route_conditions(&conditions);
            for c in &conditions {
                if let Condition::HostHeader { values } = c {
                    scope.extend(values.iter().cloned());
                    rule_hosts
                        .entry(lb.arn.clone())
                        .or_default()
                        .extend(values.iter().filter(|v| !v.contains(['*', '?'])).cloned());
                }
            }
            parsed.push((row, conditions, actions));
        }
        scope.sort();
        scope.dedup();
        parsed_by_lb.push((lb.arn.clone(), scope, parsed));
    }
    let served = network::route_load_balancers(c, tx, hosts_by_service, &rule_hosts)?;
    let socket_of = |arn: &str| served.iter().find(|l| l.arn == arn).map(|l| l.https_listen);
    let mut out = Vec::new();
    for (lb_arn, scope, parsed) in parsed_by_lb {
        let Some(socket) = socket_of(&lb_arn) else { continue };
        let shared = served.iter().filter(|l| l.https_listen == socket).count() > 1;
        for (row, mut conditions, actions) in parsed {
            let Some(action) = rules::route_action(&actions) else { continue };
            if shared && !conditions.iter().any(|c| matches!(c, Condition::HostHeader { .. })) {
                if scope.is_empty() {
                    continue;
                }
                conditions.push(Condition::HostHeader { values: scope.clone() });
            }
            out.push(Rule {
                arn: row.arn.clone(),
                priority: row.priority.unwrap_or(0),
                conditions,
                actions: vec![action],
                load_balancer: Some(lb_arn.clone()),
            });
        }
    }
    out.sort_by_key(|r| r.priority);
    Ok((out, served))
}

/// One target group as the route table needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupRoute {
    pub arn: String,
    pub service_id: Option<i64>,
    pub health_check: HealthCheck,
    pub algorithm: Algorithm,
    /// `slow_start.duration_seconds` (0: off).
    pub slow_start_secs: u32,
    /// The `stickiness.*` attributes, when enabled.
    pub stickiness: Option<TargetStickiness>,
    /// `target_group_health.unhealthy_state_routing.*`.
    pub unhealthy_routing: MinimumHealthy,
    /// Targets registered by hand: (ip, port).
    pub registered: Vec<(String, u16)>,
}

/// The secret keying the proxies' target-stickiness cookies: created once, kept in the store's meta, so every
/// proxy (and a restarted server) accepts the cookies any proxy issued.
pub(crate) fn stickiness_key(tx: &Tx<'_>) -> Result<String, ControlError> {
    if let Some(key) = tx.meta_get("stickiness_key")?.filter(|k| !k.is_empty()) {
        return Ok(key);
    }
    let key = berth_core::ids::random_hex(64);
    tx.meta_set("stickiness_key", &key)?;
    Ok(key)
}

/// The routing failover requirement of `target_group_health.unhealthy_state_routing.*` (values were validated
/// when set; `off` or a missing key is no percentage).
pub(crate) fn unhealthy_routing(attrs: &BTreeMap<String, String>) -> MinimumHealthy {
    let get = |k: &str| attrs.get(k).map(String::as_str).unwrap_or_default();
    MinimumHealthy {
        count: get(ROUTING_MIN_COUNT).parse::<u32>().ok().filter(|v| *v > 0).unwrap_or(1),
        percentage: get(ROUTING_MIN_PERCENTAGE).parse::<u8>().ok().filter(|v| (1..=100).contains(v)),
    }
}

/// The target stickiness `stickiness.*` attributes enable, if any (values were validated when set).
pub(crate) fn target_stickiness(attrs: &BTreeMap<String, String>) -> Option<TargetStickiness> {
    let get = |k: &str| attrs.get(k).map(String::as_str).unwrap_or_default();
    let secs = |k: &str| get(k).parse::<u32>().ok().filter(|v| *v > 0).unwrap_or(86_400);
    if get("stickiness.enabled") != "true" {
        return None;
    }
    match get("stickiness.type") {
        "app_cookie" => Some(TargetStickiness::AppCookie {
            cookie_name: get("stickiness.app_cookie.cookie_name").to_owned(),
            duration_secs: secs("stickiness.app_cookie.duration_seconds"),
        })
        .filter(|s| matches!(s, TargetStickiness::AppCookie { cookie_name, .. } if !cookie_name.is_empty())),
        _ => Some(TargetStickiness::LbCookie { duration_secs: secs("stickiness.lb_cookie.duration_seconds") }),
    }
}

pub(crate) fn route_groups(tx: &Tx<'_>) -> Result<Vec<GroupRoute>, ControlError> {
    let registered = tx.targets_registered()?;
    let mut out = Vec::new();
    for g in tx.tgs()? {
        let h: HealthSettings = parse(&g.health_check, "health check")?;
        let attrs: BTreeMap<String, String> = parse(&g.attributes, "target group attributes")?;
        let algorithm = match attrs.get("load_balancing.algorithm.type").map(String::as_str) {
            Some("least_outstanding_requests") => Algorithm::LeastOutstandingRequests,
            _ => Algorithm::RoundRobin,
        };
        out.push(GroupRoute {
            registered: registered
                .iter()
                .filter(|(tg, _, _)| *tg == g.arn)
                .map(|(_, id, port)| (id.clone(), *port))
                .collect(),
            arn: g.arn,
            service_id: g.service_id,
            health_check: h.route(),
            algorithm,
            slow_start_secs: attrs.get("slow_start.duration_seconds").and_then(|v| v.parse().ok()).unwrap_or(0),
            stickiness: target_stickiness(&attrs),
            unhealthy_routing: unhealthy_routing(&attrs),
        });
    }
    Ok(out)
}

/// The hosts whose certificates the HTTPS listeners carry (besides the default one).
pub(crate) fn certificate_hosts(tx: &Tx<'_>) -> Result<Vec<String>, ControlError> {
    let mut hosts = Vec::new();
    for lb in tx.lbs()? {
        if let Some(l) = https_listener(tx, &lb.arn)? {
            for cert in tx.listener_certificates(&l.arn)? {
                if !cert.is_default && !hosts.contains(&cert.host) {
                    hosts.push(cert.host);
                }
            }
        }
    }
    Ok(hosts)
}

impl Control {
    /// Handles one decoded ELBv2 operation for an authenticated caller.
    pub async fn handle_elbv2(
        &self,
        caller: &CallerIdentity,
        op: berth_model::elbv2::Operation,
    ) -> Result<berth_model::elbv2::Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = (|| {
            if !authz::is_root(caller) {
                let requests = context::elbv2_requests(self, &op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("elasticloadbalancing:{name}"), requests)?;
            }
            handle(self, op).map_err(AwsError::from)
        })();
        crate::error::answer(berth_model::elbv2::SIGNING_NAME, name, errors, out)
    }
}
