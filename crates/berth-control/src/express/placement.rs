//! Where an Express service's traffic enters: its place on a shared application load balancer (up to 25
//! services each, same VPC and scheme; a new one is created with an HTTPS:443 listener whose default rule
//! answers 404 and an HTTP:80 listener that redirects to HTTPS), its endpoint certificate on the HTTPS
//! listener, two `ip` target groups, and a host-header rule at the listener's lowest free priority forwarding
//! to the live group (weight 100) and the idle one (weight 0). A deployment registers the new revision's tasks
//! in the idle group; when they are healthy, [`shift_service`] moves the weights on every rule that forwards
//! to either group, user rules included.

use berth_core::ids;
use berth_model::elbv2::{Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig, RuleCondition};
use berth_store::{
    ListenerCertificateRow, ListenerRow, LoadBalancerRow, PlacementRow, RuleRow, ServiceRow, TargetGroupRow, Tx,
};

use super::MANAGED_TAG;
use super::journal::Journal;
use crate::ec2::subnets::Privacy;
use crate::elbv2::{
    HealthSettings, default_lb_attributes, default_tg_attributes, https_listener, json, network, parse, rule_arn, rules,
};
use crate::{Control, ControlError};

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
    privacy: Privacy,
    journal: &mut Journal,
) -> Result<String, ControlError> {
    let name = format!("ecs-express-gateway-alb-{}", ids::random_hex(8));
    let id = ids::random_hex(16);
    let arn = c.elb_arn(&format!("loadbalancer/app/{name}/{id}"));
    // AWS names an internal load balancer's DNS record `internal-<name>-...`.
    let prefix = if privacy == Privacy::Private { "internal-" } else { "" };
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
    let (vpc, privacy) = service_network(tx, &service.target_revision)?;
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

/// Sets the production weights of a service's revisions: `target_percent` to `target_group`, the rest to
/// `source_group`, on every rule that forwards to either (the Express rule and users' rules alike), except
/// `skip` (BLUE_GREEN's test listener rule, which follows the test weights). Returns whether a rule changed.
pub(crate) fn set_weights(
    tx: &Tx<'_>,
    source_group: &str,
    target_group: &str,
    target_percent: f64,
    skip: Option<&str>,
) -> Result<bool, ControlError> {
    let mut changed = false;
    for mut rule in tx.rules_all()? {
        if Some(rule.arn.as_str()) == skip {
            continue;
        }
        let mut actions: Vec<Action> = parse(&rule.actions, "rule actions")?;
        if rules::set_group_weights(&mut actions, source_group, target_group, target_percent) {
            rule.actions = json(&actions)?;
            tx.rule_update(&rule)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Sets one rule's weights (BLUE_GREEN's test listener rule): `target_percent` to `target_group`.
pub(crate) fn set_rule_weights(
    tx: &Tx<'_>,
    rule_arn: &str,
    source_group: &str,
    target_group: &str,
    target_percent: f64,
) -> Result<bool, ControlError> {
    let Some(mut rule) = tx.rule_get(rule_arn)? else { return Ok(false) };
    let mut actions: Vec<Action> = parse(&rule.actions, "rule actions")?;
    if !rules::set_group_weights(&mut actions, source_group, target_group, target_percent) {
        return Ok(false);
    }
    rule.actions = json(&actions)?;
    tx.rule_update(&rule)?;
    Ok(true)
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
                if super::journal::is_express_rule(&rule) {
                    journal.elb(tx, "DeleteRule", &rule.arn)?;
                }
                tx.rule_delete(&rule.arn)?
            }
            Some(true) => {
                if super::journal::is_express_rule(&rule) {
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

/// Gives every active Express service that has no load balancer yet (one created before ELBv2 resources
/// existed) its resources, with all its revisions in the first group.
pub(crate) fn adopt_unplaced(c: &Control, tx: &Tx<'_>, t: f64) -> Result<bool, ControlError> {
    let mut adopted = false;
    let placed: std::collections::HashSet<i64> = tx.placements()?.into_iter().map(|p| p.service_id).collect();
    for s in tx.services_live(None)? {
        if !s.express || s.status != berth_core::status::ServiceStatus::Active || placed.contains(&s.id) {
            continue;
        }
        let config = crate::revisions::revision_config(tx, &s.target_revision)?;
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

/// The VPC and scheme a new Express service's load balancer must have, from its current revision's subnets.
pub(crate) fn service_network(tx: &Tx<'_>, revision: &str) -> Result<(String, Privacy), ControlError> {
    let config = crate::revisions::revision_config(tx, revision)?;
    let ids = config.network_configuration.and_then(|n| n.subnets).unwrap_or_default();
    let privacy = crate::ec2::subnets::privacy_of_ids(tx, &ids)?;
    let vpc = match ids.first().map(|id| tx.subnet_get(id)).transpose()?.flatten() {
        Some(s) => s.vpc_id,
        None => crate::ec2::network::default_vpc(tx)?,
    };
    Ok((vpc, privacy))
}
