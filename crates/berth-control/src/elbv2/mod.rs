//! The ELBv2 resources behind Express services, and the ELBv2 API over them.
//!
//! Every Express service gets, in the transaction that creates it: a place on a shared application load
//! balancer (up to 25 services each, same scheme; a new one is created with an HTTPS:443 listener whose
//! default rule answers 404 and an HTTP:80 listener that redirects to HTTPS), its endpoint certificate on
//! the HTTPS listener, two `ip` target groups, and a host-header rule at the listener's lowest free priority
//! forwarding to the live group (weight 100) and the idle one (weight 0). A deployment registers the new
//! revision's tasks in the idle group; when they are healthy, [`shift_service`] moves the weights on every
//! rule that forwards to either group, user rules included. Users may edit all of it through the API; the
//! reconciler reads these rows but never rewrites a user's edit. The route table is built from these rows
//! only ([`route_rules`], [`route_groups`]).

mod api;
pub(crate) mod network;
pub(crate) mod rules;

pub(crate) use api::handle;

use std::collections::{BTreeMap, HashMap};

use berth_core::ids;
use berth_model::elbv2::{Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig, RuleCondition};
use berth_routes::{Algorithm, Condition, HealthCheck, MinimumHealthy, Rule, TargetStickiness};
use berth_store::{
    ListenerCertificateRow, ListenerRow, LoadBalancerRow, PlacementRow, RuleRow, ServiceRow, TargetGroupRow, Tx,
};
use serde::{Deserialize, Serialize};

use crate::iam::provisioning::Journal;
use crate::{Control, ControlError};

const MANAGED_TAG: (&str, &str) = ("AmazonECSManaged", "true");

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

fn json<T: Serialize>(v: &T) -> Result<String, ControlError> {
    serde_json::to_string(v).map_err(|e| ControlError::invalid(e.to_string()))
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T, ControlError> {
    serde_json::from_str(s).map_err(|e| ControlError::Store(berth_store::StoreError::Corrupt(format!("{what}: {e}"))))
}

impl Control {
    fn elb_arn(&self, resource: &str) -> String {
        format!("arn:aws:elasticloadbalancing:{}:{}:{resource}", self.names.region, self.names.account)
    }

    fn certificate_arn(&self) -> String {
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

/// The pieces of a load balancer ARN a listener or rule ARN repeats: `app/<name>/<id>`.
fn lb_path(lb_arn: &str) -> &str {
    lb_arn.split_once(":loadbalancer/").map(|(_, p)| p).unwrap_or(lb_arn)
}

/// A normalized forward action over `groups` (target group, weight), as DescribeRules shows it.
fn forward_actions(groups: &[(&str, i32)]) -> Result<Vec<Action>, ControlError> {
    let a = Action {
        r#type: Some(ActionTypeEnum::Forward),
        forward_config: Some(berth_model::elbv2::ForwardActionConfig {
            target_groups: Some(
                groups
                    .iter()
                    .map(|(g, w)| berth_model::elbv2::TargetGroupTuple {
                        target_group_arn: Some((*g).to_string()),
                        weight: Some(*w),
                    })
                    .collect(),
            ),
            target_group_stickiness_config: None,
        }),
        ..Default::default()
    };
    rules::normalize_actions(vec![a], &|_| true)
}

/// Creates a load balancer in `vpc_id` with the scheme of `privacy`, with its HTTPS:443 (default certificate,
/// 404 default rule) and HTTP:80 (redirect) listeners. Returns its ARN.
fn create_load_balancer(
    c: &Control,
    tx: &Tx<'_>,
    t: f64,
    vpc_id: &str,
    privacy: crate::ec2::subnets::Privacy,
    journal: &mut Journal,
) -> Result<String, ControlError> {
    let name = format!("ecs-express-gateway-alb-{}", ids::random_hex(8));
    let id = ids::random_hex(16);
    let arn = c.elb_arn(&format!("loadbalancer/app/{name}/{id}"));
    // AWS names an internal load balancer's DNS record `internal-<name>-...`.
    let prefix = if privacy == crate::ec2::subnets::Privacy::Private { "internal-" } else { "" };
    let dns = format!("{prefix}{name}-{}.{}.elb.{}", &id[..10], c.names.region, c.config.base_domain);
    tx.lb_insert(&LoadBalancerRow {
        arn: arn.clone(),
        name,
        scheme: privacy.scheme().into(),
        dns_name: dns,
        attributes: json(&default_lb_attributes())?,
        created_at: t,
    })?;
    network::assign(c, tx, &arn, vpc_id, privacy)?;
    let managed = [(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())];
    tx.tags_put(&arn, &managed)?;
    journal.elb_create("CreateLoadBalancer", &arn, &managed);
    let not_found = Action {
        r#type: Some(ActionTypeEnum::FixedResponse),
        order: Some(1),
        fixed_response_config: Some(FixedResponseActionConfig {
            status_code: Some("404".into()),
            content_type: Some("text/plain".into()),
            message_body: None,
        }),
        ..Default::default()
    };
    let redirect = Action {
        r#type: Some(ActionTypeEnum::Redirect),
        order: Some(1),
        redirect_config: Some(RedirectActionConfig {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: Some("#{host}".into()),
            path: Some("/#{path}".into()),
            query: Some("#{query}".into()),
            status_code: Some(berth_model::elbv2::RedirectActionStatusCodeEnum::Http301),
        }),
        ..Default::default()
    };
    for (port, protocol, default) in [(443u16, "HTTPS", not_found), (80, "HTTP", redirect)] {
        let listener =
            c.elb_arn(&format!("listener/app/{}/{}", lb_path(&arn).trim_start_matches("app/"), ids::random_hex(16)));
        let actions = json(&vec![default])?;
        tx.listener_insert(&ListenerRow {
            arn: listener.clone(),
            load_balancer_arn: arn.clone(),
            port,
            protocol: protocol.into(),
            default_actions: actions.clone(),
        })?;
        tx.tags_put(&listener, &managed)?;
        journal.elb_create("CreateListener", &listener, &managed);
        tx.rule_insert(&RuleRow {
            arn: rule_arn(c, &listener),
            listener_arn: listener.clone(),
            priority: None,
            conditions: "[]".into(),
            actions,
            service_id: None,
        })?;
        if protocol == "HTTPS" {
            tx.listener_certificate_add(&ListenerCertificateRow {
                listener_arn: listener,
                certificate_arn: c.certificate_arn(),
                host: c.default_host(),
                is_default: true,
            })?;
        }
    }
    Ok(arn)
}

fn rule_arn(c: &Control, listener_arn: &str) -> String {
    let path = listener_arn.split_once(":listener/").map(|(_, p)| p).unwrap_or(listener_arn);
    c.elb_arn(&format!("listener-rule/{path}/{}", ids::random_hex(16)))
}

/// The HTTPS listener of a load balancer.
pub(crate) fn https_listener(tx: &Tx<'_>, lb_arn: &str) -> Result<Option<ListenerRow>, ControlError> {
    Ok(tx.listeners(lb_arn)?.into_iter().find(|l| l.protocol == "HTTPS"))
}

/// Places a new Express service: a shared load balancer of its VPC and scheme (internet-facing for public
/// subnets, internal for private ones; or a new one), two target groups, the endpoint certificate on the
/// HTTPS listener and a host-header rule at the lowest free priority. Assigns the service's current
/// revisions to the first group. Called in the transaction that creates the service, after its first
/// revision; what it does as the infrastructure role goes into `journal`.
pub(crate) fn place_service(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    health_path: &str,
    port: u16,
    t: f64,
    journal: &mut Journal,
) -> Result<PlacementRow, ControlError> {
    journal.describe("elasticloadbalancing:DescribeLoadBalancers");
    let (vpc, privacy) = network::service_network(tx, &service.target_revision)?;
    let placements = tx.placements()?;
    let mut lbs: Vec<(String, String, usize)> = Vec::new();
    for lb in tx.lbs()? {
        if network::lb_vpc(tx, &lb.arn)? != vpc {
            continue;
        }
        let n = placements.iter().filter(|p| p.load_balancer_arn == lb.arn).count();
        lbs.push((lb.arn, lb.scheme, n));
    }
    let lb_arn = match rules::choose_load_balancer(&lbs, privacy.scheme()) {
        Some(arn) => arn.to_string(),
        None => create_load_balancer(c, tx, t, &vpc, privacy, journal)?,
    };
    journal.describe("elasticloadbalancing:DescribeListeners");
    let listener = https_listener(tx, &lb_arn)?.ok_or_else(|| {
        ControlError::code(berth_core::ErrorCode::ListenerNotFound, "The load balancer has no HTTPS listener")
    })?;
    let managed = [(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())];
    let mut groups = Vec::new();
    for _ in 0..2 {
        let name = format!("ecs-gateway-tg-{}", ids::random_hex(17));
        let arn = c.elb_arn(&format!("targetgroup/{name}/{}", ids::random_hex(16)));
        tx.tg_insert(&TargetGroupRow {
            arn: arn.clone(),
            name,
            service_id: Some(service.id),
            protocol: "HTTP".into(),
            port,
            health_check: json(&HealthSettings::express(health_path))?,
            attributes: json(&default_tg_attributes())?,
            created_at: t,
        })?;
        tx.tags_put(&arn, &managed)?;
        journal.elb_create("CreateTargetGroup", &arn, &managed);
        groups.push(arn);
    }
    journal.describe("elasticloadbalancing:DescribeRules");
    let used: Vec<u32> = tx.rules(&listener.arn)?.iter().filter_map(|r| r.priority).collect();
    let priority = rules::lowest_free_priority(&used).ok_or_else(|| {
        ControlError::code(
            berth_core::ErrorCode::TooManyRules,
            "The load balancer's listener has no free rule priority",
        )
    })?;
    let host = service.endpoint_host.clone();
    let conditions = rules::normalize_conditions(vec![RuleCondition {
        field: Some("host-header".into()),
        values: Some(vec![host.clone()]),
        ..Default::default()
    }])?;
    let rule = RuleRow {
        arn: rule_arn(c, &listener.arn),
        listener_arn: listener.arn.clone(),
        priority: Some(priority),
        conditions: json(&conditions)?,
        actions: json(&forward_actions(&[(&groups[0], 100), (&groups[1], 0)])?)?,
        service_id: Some(service.id),
    };
    tx.rule_insert(&rule)?;
    tx.tags_put(&rule.arn, &managed)?;
    journal.elb_create("CreateRule", &rule.arn, &managed);
    tx.listener_certificate_add(&ListenerCertificateRow {
        listener_arn: listener.arn.clone(),
        certificate_arn: c.certificate_arn(),
        host,
        is_default: false,
    })?;
    journal.elb(tx, "AddListenerCertificates", &listener.arn)?;
    let placement = PlacementRow {
        service_id: service.id,
        load_balancer_arn: lb_arn,
        group_a: groups[0].clone(),
        group_b: groups[1].clone(),
    };
    tx.placement_insert(&placement)?;
    for rev in [Some(&service.target_revision), service.live_revision.as_ref()].into_iter().flatten() {
        if !rev.is_empty() && tx.revision_group(rev)?.is_none() {
            tx.revision_group_set(rev, &placement.group_a)?;
            journal.elb(tx, "RegisterTargets", &placement.group_a)?;
        }
    }
    Ok(placement)
}

/// Assigns a new revision to the service's idle target group (the one the live revision does not use) and
/// carries the live group's health check and attributes over to it, so a user's edits survive the
/// deployment. `health_path` is the revision's path when the update changed it. The deployment's load balancer
/// actions go into `journal`.
pub(crate) fn assign_revision(
    tx: &Tx<'_>,
    service: &ServiceRow,
    revision: &str,
    health_path: Option<&str>,
    journal: &mut Journal,
) -> Result<(), ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(()) };
    let base = service.live_revision.as_deref().unwrap_or(&service.target_revision);
    let base_group = tx.revision_group(base)?;
    let group = match base_group.as_deref() {
        Some(g) if g == p.group_a => p.group_b.clone(),
        _ => p.group_a.clone(),
    };
    tx.revision_group_set(revision, &group)?;
    let source = base_group.unwrap_or_else(|| p.group_a.clone());
    journal.deployment(tx, &group, &source)?;
    let (Some(src), Some(mut dst)) = (tx.tg_get(&source)?, tx.tg_get(&group)?) else { return Ok(()) };
    if src.arn != dst.arn {
        dst.health_check = src.health_check.clone();
        dst.attributes = src.attributes.clone();
    }
    if let Some(path) = health_path {
        // Only the new revision's group: the live group keeps probing its tasks on their path until traffic
        // moves (then it follows, see [`shift_service`]).
        let mut h: HealthSettings = parse(&dst.health_check, "health check")?;
        h.path = path.to_string();
        dst.health_check = json(&h)?;
    }
    tx.tg_update(&dst)?;
    Ok(())
}

/// Moves a service's traffic to the target group of `revision` on every rule that forwards to either of
/// its groups (user rules included). Returns whether a rule changed.
pub(crate) fn shift_service(tx: &Tx<'_>, service_id: i64, revision: &str) -> Result<bool, ControlError> {
    let Some(p) = tx.placement_get(service_id)? else { return Ok(false) };
    let Some(live) = tx.revision_group(revision)? else { return Ok(false) };
    let idle = if live == p.group_a { p.group_b.clone() } else { p.group_a.clone() };
    let mut changed = false;
    for mut rule in tx.rules_all()? {
        let mut actions: Vec<Action> = parse(&rule.actions, "rule actions")?;
        if rules::shift_weights(&mut actions, &live, &idle) {
            rule.actions = json(&actions)?;
            tx.rule_update(&rule)?;
            changed = true;
        }
    }
    // The idle group now follows the live one's settings (health check path included).
    if let (Some(src), Some(mut dst)) = (tx.tg_get(&live)?, tx.tg_get(&idle)?) {
        dst.health_check = src.health_check;
        dst.attributes = src.attributes;
        tx.tg_update(&dst)?;
    }
    Ok(changed)
}

/// A deleted service leaves its load balancer: its rule and certificate go, other rules stop forwarding to
/// its groups (a rule left with nothing to forward to is deleted), and a load balancer with no service left
/// is deleted with its listeners. The groups stay (their tasks drain) until [`retire_groups`]. What it does as
/// the infrastructure role goes into `journal`.
pub(crate) fn release_service(tx: &Tx<'_>, service: &ServiceRow, journal: &mut Journal) -> Result<(), ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(()) };
    let groups = vec![p.group_a.clone(), p.group_b.clone()];
    journal.describe("elasticloadbalancing:DescribeRules");
    for mut rule in tx.rules_all()? {
        if rule.service_id == Some(service.id) {
            journal.elb(tx, "DeleteRule", &rule.arn)?;
            tx.rule_delete(&rule.arn)?;
            continue;
        }
        let mut actions: Vec<Action> = parse(&rule.actions, "rule actions")?;
        match rules::strip_groups(&mut actions, &groups) {
            None if rule.priority.is_some() => {
                if crate::iam::provisioning::is_express_rule(&rule) {
                    journal.elb(tx, "DeleteRule", &rule.arn)?;
                }
                tx.rule_delete(&rule.arn)?
            }
            Some(true) => {
                if crate::iam::provisioning::is_express_rule(&rule) {
                    journal.elb(tx, "ModifyRule", &rule.arn)?;
                }
                rule.actions = json(&actions)?;
                tx.rule_update(&rule)?;
            }
            _ => {}
        }
    }
    journal.describe("elasticloadbalancing:DescribeListeners");
    if let Some(l) = https_listener(tx, &p.load_balancer_arn)? {
        journal.elb(tx, "RemoveListenerCertificates", &l.arn)?;
        tx.listener_certificate_remove_host(&l.arn, &service.endpoint_host)?;
    }
    tx.placement_delete(service.id)?;
    if !tx.placements()?.iter().any(|o| o.load_balancer_arn == p.load_balancer_arn) {
        for l in tx.listeners(&p.load_balancer_arn)? {
            journal.elb(tx, "DeleteListener", &l.arn)?;
        }
        journal.elb(tx, "DeleteLoadBalancer", &p.load_balancer_arn)?;
        tx.lb_delete(&p.load_balancer_arn)?;
    }
    Ok(())
}

/// Deletes an inactive service's target groups; what it does as the infrastructure role goes into `journal`.
pub(crate) fn retire_groups(tx: &Tx<'_>, service_id: i64, journal: &mut Journal) -> Result<(), ControlError> {
    for g in tx.tgs()?.into_iter().filter(|g| g.service_id == Some(service_id)) {
        journal.elb(tx, "DeleteTargetGroup", &g.arn)?;
        tx.tg_delete(&g.arn)?;
    }
    Ok(())
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

/// Gives every active Express service that has no load balancer yet (one created before ELBv2 resources
/// existed) its resources, with all its revisions in the first group.
pub(crate) fn adopt_unplaced(c: &Control, tx: &Tx<'_>, t: f64) -> Result<bool, ControlError> {
    let mut adopted = false;
    for s in tx.services_live(None)? {
        if !s.express || s.status != berth_core::status::ServiceStatus::Active || tx.placement_get(s.id)?.is_some() {
            continue;
        }
        let config = crate::ecs::revision_config(tx, &s.target_revision)?;
        let path = config.health_check_path.clone().unwrap_or_else(|| "/ping".into());
        let port =
            config.primary_container.as_ref().and_then(|p| p.container_port).unwrap_or(80).clamp(1, 65535) as u16;
        // An upgrade of berth's own store, not a request: not authorized as the service's role.
        let p = place_service(c, tx, &s, &path, port, t, &mut Journal::default())?;
        for task in tx.tasks_not_stopped()?.into_iter().filter(|task| task.service_id == Some(s.id)) {
            if let Some(rev) = task.revision_arn
                && tx.revision_group(&rev)?.is_none()
            {
                tx.revision_group_set(&rev, &p.group_a)?;
            }
        }
        tracing::info!(service = %s.arn, load_balancer = %p.load_balancer_arn, "gave a service its load balancer resources");
        adopted = true;
    }
    Ok(adopted)
}
