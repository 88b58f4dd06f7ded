//! The ELBv2 operations over the stored resources. Mutations validate as ALB does, write in one
//! transaction and publish a new route table at once, so an edit routes traffic within a second.

use std::collections::BTreeMap;

use berth_core::ErrorCode;
use berth_model::Timestamp;
use berth_model::elbv2::*;
use berth_routes::{TargetHealth as Health, TargetState};
use berth_store::{ListenerRow, LoadBalancerRow, RuleRow, TargetGroupRow, Tx};

use super::{HealthSettings, default_lb_attributes, default_tg_attributes, json, parse, rules};
use crate::{Control, ControlError, now};

const MAX_TAGS: usize = 50;
const RULES_PER_LISTENER: usize = 100;

fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError::code(code, message)
}

fn validation(message: impl Into<String>) -> ControlError {
    err(ErrorCode::ValidationError, message)
}

pub(crate) fn handle(c: &Control, op: Operation) -> Result<Output, ControlError> {
    use Operation as O;
    let mutates = matches!(
        op,
        O::CreateRule(_)
            | O::ModifyRule(_)
            | O::DeleteRule(_)
            | O::SetRulePriorities(_)
            | O::ModifyTargetGroup(_)
            | O::ModifyTargetGroupAttributes(_)
            | O::RegisterTargets(_)
            | O::DeregisterTargets(_)
            | O::ModifyLoadBalancerAttributes(_)
    );
    let out = match op {
        O::DescribeLoadBalancers(r) => Output::DescribeLoadBalancers(c.read(|tx| describe_lbs(c, tx, r))?),
        O::DescribeListeners(r) => Output::DescribeListeners(c.read(|tx| describe_listeners(tx, r))?),
        O::DescribeRules(r) => Output::DescribeRules(c.read(|tx| describe_rules(tx, r))?),
        O::CreateRule(r) => Output::CreateRule(c.tx(|tx| create_rule(c, tx, r))?),
        // ModifyRule's model lists no InvalidConfigurationRequest (CreateRule's does): what berth cannot do
        // there is a validation error.
        O::ModifyRule(r) => Output::ModifyRule(
            c.tx(|tx| modify_rule(tx, r))
                .map_err(|e| e.respelled(ErrorCode::InvalidConfigurationRequest, ErrorCode::ValidationError))?,
        ),
        O::DeleteRule(r) => Output::DeleteRule(c.tx(|tx| delete_rule(tx, r))?),
        O::SetRulePriorities(r) => Output::SetRulePriorities(c.tx(|tx| set_priorities(tx, r))?),
        O::DescribeTargetGroups(r) => Output::DescribeTargetGroups(c.read(|tx| describe_tgs(tx, r))?),
        O::ModifyTargetGroup(r) => Output::ModifyTargetGroup(c.tx(|tx| modify_tg(tx, r))?),
        O::DescribeTargetGroupAttributes(r) => Output::DescribeTargetGroupAttributes(c.read(|tx| {
            let g = tg(tx, r.target_group_arn.as_deref())?;
            Ok(DescribeTargetGroupAttributesOutput { attributes: Some(tg_attributes(&g)?) })
        })?),
        O::ModifyTargetGroupAttributes(r) => {
            Output::ModifyTargetGroupAttributes(c.tx(|tx| modify_tg_attributes(tx, r))?)
        }
        O::DescribeLoadBalancerAttributes(r) => Output::DescribeLoadBalancerAttributes(c.read(|tx| {
            let l = lb(tx, r.load_balancer_arn.as_deref())?;
            Ok(DescribeLoadBalancerAttributesOutput { attributes: Some(lb_attributes(&l)?) })
        })?),
        O::ModifyLoadBalancerAttributes(r) => {
            Output::ModifyLoadBalancerAttributes(c.tx(|tx| modify_lb_attributes(tx, r))?)
        }
        O::DescribeTargetHealth(r) => Output::DescribeTargetHealth(target_health(c, r)?),
        O::RegisterTargets(r) => Output::RegisterTargets(c.tx(|tx| register(tx, r))?),
        O::DeregisterTargets(r) => Output::DeregisterTargets(c.tx(|tx| deregister(tx, r))?),
        O::DescribeListenerCertificates(r) => Output::DescribeListenerCertificates(c.read(|tx| {
            let l = listener(tx, r.listener_arn.as_deref())?;
            let certs = tx
                .listener_certificates(&l.arn)?
                .into_iter()
                .map(|cert| Certificate {
                    certificate_arn: Some(cert.certificate_arn),
                    is_default: Some(cert.is_default),
                })
                .collect();
            let (page, next) = page(certs, r.marker.as_deref(), r.page_size)?;
            Ok(DescribeListenerCertificatesOutput { certificates: Some(page), next_marker: next })
        })?),
        O::DescribeTags(r) => Output::DescribeTags(c.read(|tx| describe_tags(tx, r))?),
        O::AddTags(r) => Output::AddTags(c.tx(|tx| add_tags(tx, r))?),
        O::RemoveTags(r) => Output::RemoveTags(c.tx(|tx| {
            let keys = r.tag_keys.unwrap_or_default();
            for arn in r.resource_arns.unwrap_or_default() {
                require_resource(tx, &arn)?;
                tx.tags_remove(&arn, &keys)?;
            }
            Ok(RemoveTagsOutput {})
        })?),
    };
    if mutates {
        c.publish_routes()?;
        c.wake();
    }
    Ok(out)
}

/// A page of `items` from `marker` (an offset), at most `page_size` (1..=400, default 400).
fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    page_size: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ControlError> {
    let size = crate::paging::size(page_size, 400, 1..=400)
        .map_err(|n| validation(format!("Page size {n} must be between 1 and 400")))?;
    crate::paging::offset_page(items, marker, size)
        .map_err(|_| validation(format!("Invalid marker '{}'", marker.unwrap_or_default())))
}

// ---- lookups

fn lb(tx: &Tx<'_>, arn: Option<&str>) -> Result<LoadBalancerRow, ControlError> {
    let arn = arn.unwrap_or_default();
    tx.lb_get(arn)?.ok_or_else(|| err(ErrorCode::LoadBalancerNotFound, format!("Load balancer '{arn}' not found")))
}

fn listener(tx: &Tx<'_>, arn: Option<&str>) -> Result<ListenerRow, ControlError> {
    let arn = arn.unwrap_or_default();
    tx.listener_get(arn)?.ok_or_else(|| err(ErrorCode::ListenerNotFound, format!("Listener '{arn}' not found")))
}

fn rule(tx: &Tx<'_>, arn: Option<&str>) -> Result<RuleRow, ControlError> {
    let arn = arn.unwrap_or_default();
    tx.rule_get(arn)?.ok_or_else(|| err(ErrorCode::RuleNotFound, format!("One or more rules not found: '{arn}'")))
}

fn tg(tx: &Tx<'_>, arn: Option<&str>) -> Result<TargetGroupRow, ControlError> {
    let arn = arn.unwrap_or_default();
    tx.tg_get(arn)?.ok_or_else(|| err(ErrorCode::TargetGroupNotFound, format!("Target group '{arn}' not found")))
}

fn require_resource(tx: &Tx<'_>, arn: &str) -> Result<(), ControlError> {
    if arn.contains(":loadbalancer/") {
        lb(tx, Some(arn)).map(|_| ())
    } else if arn.contains(":listener-rule/") {
        rule(tx, Some(arn)).map(|_| ())
    } else if arn.contains(":listener/") {
        listener(tx, Some(arn)).map(|_| ())
    } else if arn.contains(":targetgroup/") {
        tg(tx, Some(arn)).map(|_| ())
    } else {
        Err(validation(format!("'{arn}' is not a valid load balancer, listener, rule or target group ARN")))
    }
}

// ---- rendering

fn render_lb(c: &Control, tx: &Tx<'_>, l: &LoadBalancerRow) -> Result<LoadBalancer, ControlError> {
    let vpc_id = super::network::lb_vpc(tx, &l.arn)?;
    let security_groups = super::network::lb_security_groups(tx, &l.arn)?;
    Ok(LoadBalancer {
        load_balancer_arn: Some(l.arn.clone()),
        dns_name: Some(l.dns_name.clone()),
        canonical_hosted_zone_id: Some("Z35SXDOTRQ7X7K".into()),
        created_time: Some(Timestamp(l.created_at)),
        load_balancer_name: Some(l.name.clone()),
        scheme: LoadBalancerSchemeEnum::parse(&l.scheme),
        vpc_id: Some(vpc_id),
        state: Some(LoadBalancerState { code: Some(LoadBalancerStateEnum::Active), reason: None }),
        r#type: Some(LoadBalancerTypeEnum::Application),
        availability_zones: Some(vec![AvailabilityZone {
            zone_name: Some(format!("{}a", c.names.region)),
            ..Default::default()
        }]),
        security_groups: Some(security_groups),
        ip_address_type: Some(IpAddressType::Ipv4),
        ..Default::default()
    })
}

fn render_listener(tx: &Tx<'_>, l: &ListenerRow) -> Result<Listener, ControlError> {
    let https = l.protocol == "HTTPS";
    let certs = tx.listener_certificates(&l.arn)?;
    Ok(Listener {
        listener_arn: Some(l.arn.clone()),
        load_balancer_arn: Some(l.load_balancer_arn.clone()),
        port: Some(i32::from(l.port)),
        protocol: ProtocolEnum::parse(&l.protocol),
        // DescribeListeners shows the default certificate only.
        certificates: https.then(|| {
            certs
                .iter()
                .filter(|c| c.is_default)
                .map(|c| Certificate { certificate_arn: Some(c.certificate_arn.clone()), is_default: None })
                .collect()
        }),
        ssl_policy: https.then(|| "ELBSecurityPolicy-TLS13-1-2-2021-06".into()),
        default_actions: Some(parse(&l.default_actions, "listener default actions")?),
        ..Default::default()
    })
}

fn render_rule(r: &RuleRow) -> Result<Rule, ControlError> {
    Ok(Rule {
        rule_arn: Some(r.arn.clone()),
        priority: Some(r.priority.map(|p| p.to_string()).unwrap_or_else(|| "default".into())),
        conditions: Some(parse(&r.conditions, "rule conditions")?),
        actions: Some(parse(&r.actions, "rule actions")?),
        is_default: Some(r.priority.is_none()),
        transforms: None,
    })
}

/// The load balancers whose rules forward to each target group.
fn lbs_of_groups(tx: &Tx<'_>) -> Result<BTreeMap<String, Vec<String>>, ControlError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in tx.lbs()? {
        for li in tx.listeners(&l.arn)? {
            for r in tx.rules(&li.arn)? {
                let actions: Vec<Action> = parse(&r.actions, "rule actions")?;
                for g in rules::forwarded_groups(&actions) {
                    let e = out.entry(g).or_default();
                    if !e.contains(&l.arn) {
                        e.push(l.arn.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

fn render_tg(
    tx: &Tx<'_>,
    g: &TargetGroupRow,
    lbs: &BTreeMap<String, Vec<String>>,
) -> Result<TargetGroup, ControlError> {
    let h: HealthSettings = parse(&g.health_check, "health check")?;
    let vpc_id = super::network::tg_vpc(tx, g, lbs.get(&g.arn).and_then(|l| l.first()).map(String::as_str))?;
    Ok(TargetGroup {
        target_group_arn: Some(g.arn.clone()),
        target_group_name: Some(g.name.clone()),
        protocol: ProtocolEnum::parse(&g.protocol),
        port: Some(i32::from(g.port)),
        vpc_id: Some(vpc_id),
        health_check_protocol: ProtocolEnum::parse(&h.protocol),
        health_check_port: Some(h.port.clone()),
        health_check_enabled: Some(true),
        health_check_interval_seconds: Some(h.interval as i32),
        health_check_timeout_seconds: Some(h.timeout as i32),
        healthy_threshold_count: Some(h.healthy as i32),
        unhealthy_threshold_count: Some(h.unhealthy as i32),
        health_check_path: Some(h.path.clone()),
        matcher: Some(Matcher { http_code: Some(h.matcher.clone()), grpc_code: None }),
        load_balancer_arns: Some(lbs.get(&g.arn).cloned().unwrap_or_default()),
        target_type: Some(TargetTypeEnum::Ip),
        protocol_version: Some("HTTP1".into()),
        ip_address_type: Some(TargetGroupIpAddressTypeEnum::Ipv4),
        ..Default::default()
    })
}

fn tg_attributes(g: &TargetGroupRow) -> Result<Vec<TargetGroupAttribute>, ControlError> {
    // Defaults first: a group stored before an attribute existed shows its default.
    let mut attrs = default_tg_attributes();
    attrs.extend(parse::<BTreeMap<String, String>>(&g.attributes, "target group attributes")?);
    Ok(attrs.into_iter().map(|(k, v)| TargetGroupAttribute { key: Some(k), value: Some(v) }).collect())
}

fn lb_attributes(l: &LoadBalancerRow) -> Result<Vec<LoadBalancerAttribute>, ControlError> {
    let attrs: BTreeMap<String, String> = parse(&l.attributes, "load balancer attributes")?;
    Ok(attrs.into_iter().map(|(k, v)| LoadBalancerAttribute { key: Some(k), value: Some(v) }).collect())
}

// ---- describe

fn describe_lbs(
    c: &Control,
    tx: &Tx<'_>,
    r: DescribeLoadBalancersInput,
) -> Result<DescribeLoadBalancersOutput, ControlError> {
    let all = tx.lbs()?;
    let mut rows = Vec::new();
    if let Some(arns) = r.load_balancer_arns.filter(|a| !a.is_empty()) {
        for arn in arns {
            rows.push(lb(tx, Some(&arn))?);
        }
    } else if let Some(names) = r.names.filter(|n| !n.is_empty()) {
        for name in names {
            let found = all.iter().find(|l| l.name == name).cloned();
            rows.push(
                found.ok_or_else(|| {
                    err(ErrorCode::LoadBalancerNotFound, format!("Load balancers '[{name}]' not found"))
                })?,
            );
        }
    } else {
        rows = all;
    }
    let (page, next) = page(rows, r.marker.as_deref(), r.page_size)?;
    Ok(DescribeLoadBalancersOutput {
        load_balancers: Some(page.iter().map(|l| render_lb(c, tx, l)).collect::<Result<_, _>>()?),
        next_marker: next,
    })
}

fn describe_listeners(tx: &Tx<'_>, r: DescribeListenersInput) -> Result<DescribeListenersOutput, ControlError> {
    let rows = match (r.load_balancer_arn.as_deref(), r.listener_arns.filter(|a| !a.is_empty())) {
        (Some(arn), None) => {
            lb(tx, Some(arn))?;
            tx.listeners(arn)?
        }
        (None, Some(arns)) => arns.iter().map(|a| listener(tx, Some(a))).collect::<Result<_, _>>()?,
        _ => return Err(validation("You must specify either a load balancer ARN or one or more listener ARNs")),
    };
    let (page, next) = page(rows, r.marker.as_deref(), r.page_size)?;
    Ok(DescribeListenersOutput {
        listeners: Some(page.iter().map(|l| render_listener(tx, l)).collect::<Result<_, _>>()?),
        next_marker: next,
    })
}

fn describe_rules(tx: &Tx<'_>, r: DescribeRulesInput) -> Result<DescribeRulesOutput, ControlError> {
    let rows = match (r.listener_arn.as_deref(), r.rule_arns.filter(|a| !a.is_empty())) {
        (Some(arn), None) => {
            listener(tx, Some(arn))?;
            tx.rules(arn)?
        }
        (None, Some(arns)) => arns.iter().map(|a| rule(tx, Some(a))).collect::<Result<_, _>>()?,
        _ => return Err(validation("You must specify either a listener ARN or one or more rule ARNs")),
    };
    let (page, next) = page(rows, r.marker.as_deref(), r.page_size)?;
    Ok(DescribeRulesOutput { rules: Some(page.iter().map(render_rule).collect::<Result<_, _>>()?), next_marker: next })
}

fn describe_tgs(tx: &Tx<'_>, r: DescribeTargetGroupsInput) -> Result<DescribeTargetGroupsOutput, ControlError> {
    let all = tx.tgs()?;
    let lbs = lbs_of_groups(tx)?;
    let rows: Vec<TargetGroupRow> = if let Some(arn) = r.load_balancer_arn.as_deref() {
        lb(tx, Some(arn))?;
        all.into_iter().filter(|g| lbs.get(&g.arn).is_some_and(|l| l.iter().any(|x| x == arn))).collect()
    } else if let Some(arns) = r.target_group_arns.filter(|a| !a.is_empty()) {
        arns.iter().map(|a| tg(tx, Some(a))).collect::<Result<_, _>>()?
    } else if let Some(names) = r.names.filter(|n| !n.is_empty()) {
        let mut out = Vec::new();
        for name in names {
            out.push(all.iter().find(|g| g.name == name).cloned().ok_or_else(|| {
                err(ErrorCode::TargetGroupNotFound, format!("One or more target groups not found: '{name}'"))
            })?);
        }
        out
    } else {
        all
    };
    let (page, next) = page(rows, r.marker.as_deref(), r.page_size)?;
    Ok(DescribeTargetGroupsOutput {
        target_groups: Some(page.iter().map(|g| render_tg(tx, g, &lbs)).collect::<Result<_, _>>()?),
        next_marker: next,
    })
}

// ---- rules

fn tag_pairs(tags: Option<Vec<Tag>>) -> Result<Vec<(String, String)>, ControlError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags.unwrap_or_default() {
        let key = t.key.unwrap_or_default();
        if key.is_empty() || key.len() > 128 || key.starts_with("aws:") {
            return Err(validation(format!("Tag key '{key}' must be 1 to 128 characters and not start with 'aws:'")));
        }
        let value = t.value.unwrap_or_default();
        if value.len() > 256 {
            return Err(validation(format!("The value of tag '{key}' is longer than 256 characters")));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(err(ErrorCode::DuplicateTagKeys, format!("Tag key '{key}' is given twice")));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn check_priority(p: i32) -> Result<u32, ControlError> {
    if (1..=rules::PRIORITY_MAX as i32).contains(&p) {
        Ok(p as u32)
    } else {
        Err(validation(format!("Priority '{p}' must be between 1 and {}", rules::PRIORITY_MAX)))
    }
}

fn known_group(tx: &Tx<'_>) -> Result<impl Fn(&str) -> bool, ControlError> {
    let arns: Vec<String> = tx.tgs()?.into_iter().map(|g| g.arn).collect();
    Ok(move |a: &str| arns.iter().any(|x| x == a))
}

fn create_rule(c: &Control, tx: &Tx<'_>, r: CreateRuleInput) -> Result<CreateRuleOutput, ControlError> {
    let l = listener(tx, r.listener_arn.as_deref())?;
    if l.protocol != "HTTPS" {
        return Err(err(
            ErrorCode::InvalidConfigurationRequest,
            "berth serves listener rules on the HTTPS:443 listener; its HTTP:80 listener redirects every request to HTTPS",
        ));
    }
    if r.transforms.is_some() {
        return Err(err(ErrorCode::InvalidConfigurationRequest, "Rule transforms are not supported by berth"));
    }
    let priority = check_priority(r.priority.unwrap_or_default())?;
    let conditions = rules::normalize_conditions(r.conditions.unwrap_or_default())?;
    if conditions.is_empty() {
        return Err(validation("A rule needs at least one condition"));
    }
    let actions = rules::normalize_actions(r.actions.unwrap_or_default(), &known_group(tx)?)?;
    // CreateRule's model lists no DuplicateTagKeys (AddTags' does).
    let tags = tag_pairs(r.tags).map_err(|e| e.respelled(ErrorCode::DuplicateTagKeys, ErrorCode::ValidationError))?;
    if tags.len() > MAX_TAGS {
        return Err(err(ErrorCode::TooManyTags, format!("A resource can have at most {MAX_TAGS} tags")));
    }
    let existing = tx.rules(&l.arn)?;
    if existing.iter().any(|x| x.priority == Some(priority)) {
        return Err(err(ErrorCode::PriorityInUse, format!("Priority '{priority}' is currently in use")));
    }
    if existing.iter().filter(|x| x.priority.is_some()).count() >= RULES_PER_LISTENER {
        return Err(err(ErrorCode::TooManyRules, format!("A listener can have at most {RULES_PER_LISTENER} rules")));
    }
    let row = RuleRow {
        arn: super::rule_arn(c, &l.arn),
        listener_arn: l.arn.clone(),
        priority: Some(priority),
        conditions: json(&conditions)?,
        actions: json(&actions)?,
        service_id: None,
    };
    tx.rule_insert(&row)?;
    tx.tags_put(&row.arn, &tags)?;
    Ok(CreateRuleOutput { rules: Some(vec![render_rule(&row)?]) })
}

fn modify_rule(tx: &Tx<'_>, r: ModifyRuleInput) -> Result<ModifyRuleOutput, ControlError> {
    let mut row = rule(tx, r.rule_arn.as_deref())?;
    if row.priority.is_none() {
        return Err(err(ErrorCode::OperationNotPermitted, "berth does not modify a listener's default rule"));
    }
    if r.transforms.is_some() {
        return Err(err(ErrorCode::InvalidConfigurationRequest, "Rule transforms are not supported by berth"));
    }
    if let Some(conditions) = r.conditions {
        let conditions = rules::normalize_conditions(conditions)?;
        if conditions.is_empty() {
            return Err(validation("A rule needs at least one condition"));
        }
        row.conditions = json(&conditions)?;
    }
    if let Some(actions) = r.actions {
        row.actions = json(&rules::normalize_actions(actions, &known_group(tx)?)?)?;
    }
    tx.rule_update(&row)?;
    Ok(ModifyRuleOutput { rules: Some(vec![render_rule(&row)?]) })
}

fn delete_rule(tx: &Tx<'_>, r: DeleteRuleInput) -> Result<DeleteRuleOutput, ControlError> {
    let row = rule(tx, r.rule_arn.as_deref())?;
    if row.priority.is_none() {
        return Err(err(ErrorCode::OperationNotPermitted, "A listener's default rule cannot be deleted"));
    }
    tx.rule_delete(&row.arn)?;
    Ok(DeleteRuleOutput {})
}

fn set_priorities(tx: &Tx<'_>, r: SetRulePrioritiesInput) -> Result<SetRulePrioritiesOutput, ControlError> {
    let pairs = r.rule_priorities.unwrap_or_default();
    let mut changes: Vec<(RuleRow, u32)> = Vec::new();
    for p in pairs {
        let row = rule(tx, p.rule_arn.as_deref())?;
        if row.priority.is_none() {
            return Err(err(ErrorCode::OperationNotPermitted, "The priority of a default rule cannot be changed"));
        }
        let priority = check_priority(p.priority.unwrap_or_default())?;
        if changes.iter().any(|(r2, p2)| *p2 == priority || r2.arn == row.arn) {
            return Err(err(ErrorCode::PriorityInUse, format!("Priority '{priority}' is given twice")));
        }
        changes.push((row, priority));
    }
    for (row, priority) in &changes {
        let moving: Vec<&str> = changes.iter().map(|(r, _)| r.arn.as_str()).collect();
        let clash = tx
            .rules(&row.listener_arn)?
            .into_iter()
            .any(|o| o.priority == Some(*priority) && !moving.contains(&o.arn.as_str()));
        if clash {
            return Err(err(ErrorCode::PriorityInUse, format!("Priority '{priority}' is currently in use")));
        }
    }
    // Two steps, so rules may swap priorities without tripping the uniqueness of (listener, priority).
    for (row, _) in &changes {
        tx.rule_update(&RuleRow { priority: None, ..row.clone() })?;
    }
    let mut out = Vec::new();
    for (row, priority) in changes {
        let row = RuleRow { priority: Some(priority), ..row };
        tx.rule_update(&row)?;
        out.push(render_rule(&row)?);
    }
    Ok(SetRulePrioritiesOutput { rules: Some(out) })
}

// ---- target groups

fn modify_tg(tx: &Tx<'_>, r: ModifyTargetGroupInput) -> Result<ModifyTargetGroupOutput, ControlError> {
    let mut g = tg(tx, r.target_group_arn.as_deref())?;
    let mut h: HealthSettings = parse(&g.health_check, "health check")?;
    if r.health_check_enabled == Some(false) {
        return Err(validation("Health checks cannot be disabled for target groups with target type 'ip'"));
    }
    if let Some(p) = r.health_check_protocol {
        if p != ProtocolEnum::Http {
            return Err(err(
                ErrorCode::InvalidConfigurationRequest,
                format!("Health check protocol '{}' is not supported by berth; use HTTP", p.as_str()),
            ));
        }
        h.protocol = p.as_str().into();
    }
    if let Some(port) = r.health_check_port {
        if port != "traffic-port" {
            return Err(err(
                ErrorCode::InvalidConfigurationRequest,
                "berth health-checks targets on their traffic port; HealthCheckPort must be 'traffic-port'",
            ));
        }
        h.port = port;
    }
    if let Some(path) = r.health_check_path {
        if !path.starts_with('/') || path.len() > 1024 || path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(validation(format!(
                "Health check path '{path}' must start with '/', contain no whitespace and be at most 1024 characters"
            )));
        }
        h.path = path;
    }
    let range = |name: &str, v: i32, lo: i32, hi: i32| -> Result<u32, ControlError> {
        if (lo..=hi).contains(&v) {
            Ok(v as u32)
        } else {
            Err(validation(format!("{name} must be between {lo} and {hi}, got {v}")))
        }
    };
    if let Some(v) = r.health_check_interval_seconds {
        h.interval = range("HealthCheckIntervalSeconds", v, 5, 300)?;
    }
    if let Some(v) = r.health_check_timeout_seconds {
        h.timeout = range("HealthCheckTimeoutSeconds", v, 2, 120)?;
    }
    if let Some(v) = r.healthy_threshold_count {
        h.healthy = range("HealthyThresholdCount", v, 2, 10)?;
    }
    if let Some(v) = r.unhealthy_threshold_count {
        h.unhealthy = range("UnhealthyThresholdCount", v, 2, 10)?;
    }
    if h.timeout >= h.interval {
        return Err(validation(format!(
            "Health check timeout ({}) must be smaller than the interval ({})",
            h.timeout, h.interval
        )));
    }
    if let Some(m) = r.matcher {
        if m.grpc_code.is_some() {
            return Err(validation("GrpcCode is only valid for target groups with protocol version GRPC"));
        }
        let code = m.http_code.unwrap_or_default();
        if !valid_matcher(&code) {
            return Err(validation(format!(
                "Matcher HttpCode '{code}' must be codes from 200 to 499, e.g. '200', '200,202' or '200-299'"
            )));
        }
        h.matcher = code;
    }
    g.health_check = json(&h)?;
    tx.tg_update(&g)?;
    let lbs = lbs_of_groups(tx)?;
    Ok(ModifyTargetGroupOutput { target_groups: Some(vec![render_tg(tx, &g, &lbs)?]) })
}

fn valid_matcher(code: &str) -> bool {
    let ok = |s: &str| s.len() == 3 && s.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    !code.is_empty()
        && code.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => ok(a) && ok(b) && a <= b,
            None => ok(part),
        })
}

fn modify_tg_attributes(
    tx: &Tx<'_>,
    r: ModifyTargetGroupAttributesInput,
) -> Result<ModifyTargetGroupAttributesOutput, ControlError> {
    let mut g = tg(tx, r.target_group_arn.as_deref())?;
    let defaults = default_tg_attributes();
    let mut attrs = defaults.clone();
    attrs.extend(parse::<BTreeMap<String, String>>(&g.attributes, "target group attributes")?);
    for a in r.attributes.unwrap_or_default() {
        let key = a.key.unwrap_or_default();
        let value = a.value.unwrap_or_default();
        if !defaults.contains_key(&key) {
            return Err(validation(format!("Target group attribute key '{key}' is not recognized")));
        }
        let int = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|v| (lo..=hi).contains(&v));
        let ok = match key.as_str() {
            "deregistration_delay.timeout_seconds" => int(0, 3600),
            "slow_start.duration_seconds" => value == "0" || int(30, 900),
            "load_balancing.algorithm.type" => matches!(value.as_str(), "round_robin" | "least_outstanding_requests"),
            "load_balancing.algorithm.anomaly_mitigation" => value == "off",
            "load_balancing.cross_zone.enabled" => {
                matches!(value.as_str(), "true" | "false" | "use_load_balancer_configuration")
            }
            "stickiness.enabled" => matches!(value.as_str(), "true" | "false"),
            "stickiness.type" => matches!(value.as_str(), "lb_cookie" | "app_cookie"),
            "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => int(1, 604_800),
            // 1 to the group's maximum number of targets (ALB's quota: 1,000); DNS failover may also be off.
            super::ROUTING_MIN_COUNT => int(1, MAX_TARGETS),
            super::DNS_MIN_COUNT => value == "off" || int(1, MAX_TARGETS),
            super::ROUTING_MIN_PERCENTAGE | super::DNS_MIN_PERCENTAGE => value == "off" || int(1, 100),
            "stickiness.app_cookie.cookie_name" => {
                if value.starts_with("AWSALB") {
                    return Err(validation(format!(
                        "Application cookie name '{value}' is not allowed: names that start with the following prefixes are not allowed: AWSALB, AWSALBAPP, and AWSALBTG; they're reserved for use by the load balancer"
                    )));
                }
                value.is_empty() || value.bytes().all(is_cookie_name_byte)
            }
            _ => false,
        };
        if !ok {
            return Err(validation(format!("'{value}' is not a valid value for target group attribute '{key}'")));
        }
        attrs.insert(key, value);
    }
    check_tg_attributes(&attrs)?;
    g.attributes = json(&attrs)?;
    tx.tg_update(&g)?;
    Ok(ModifyTargetGroupAttributesOutput { attributes: Some(tg_attributes(&g)?) })
}

/// A token character of RFC 6265's cookie-name (visible ASCII but separators).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// ALB's quota of targets per target group, the upper bound of a minimum healthy target count.
const MAX_TARGETS: i64 = 1000;

/// The checks ALB makes across a target group's attributes once a modification is applied.
fn check_tg_attributes(attrs: &BTreeMap<String, String>) -> Result<(), ControlError> {
    let get = |k: &str| attrs.get(k).map(String::as_str).unwrap_or_default();
    // DNS failover must not trigger later than routing failover: a DNS threshold set away from its default is at
    // least routing's.
    let defaults = default_tg_attributes();
    let number = |v: &str| v.parse::<u32>().ok();
    let set = |k: &str| number(get(k)).filter(|_| defaults.get(k).map(String::as_str) != Some(get(k)));
    for (dns, routing) in
        [(super::DNS_MIN_COUNT, super::ROUTING_MIN_COUNT), (super::DNS_MIN_PERCENTAGE, super::ROUTING_MIN_PERCENTAGE)]
    {
        if let (Some(d), Some(r)) = (set(dns), number(get(routing)))
            && d < r
        {
            return Err(err(
                ErrorCode::InvalidConfigurationRequest,
                format!("The value of '{dns}' ({d}) must be greater than or equal to the value of '{routing}' ({r})"),
            ));
        }
    }
    if get("slow_start.duration_seconds").parse::<u32>().is_ok_and(|v| v > 0)
        && get("load_balancing.algorithm.type") == "least_outstanding_requests"
    {
        return Err(err(
            ErrorCode::InvalidConfigurationRequest,
            "Slow start mode cannot be enabled when the load balancing algorithm is 'least_outstanding_requests'",
        ));
    }
    if get("stickiness.enabled") == "true"
        && get("stickiness.type") == "app_cookie"
        && get("stickiness.app_cookie.cookie_name").is_empty()
    {
        return Err(validation(
            "The target group attribute 'stickiness.app_cookie.cookie_name' is required when 'stickiness.type' is 'app_cookie'",
        ));
    }
    Ok(())
}

fn modify_lb_attributes(
    tx: &Tx<'_>,
    r: ModifyLoadBalancerAttributesInput,
) -> Result<ModifyLoadBalancerAttributesOutput, ControlError> {
    let l = lb(tx, r.load_balancer_arn.as_deref())?;
    let mut attrs: BTreeMap<String, String> = parse(&l.attributes, "load balancer attributes")?;
    let defaults = default_lb_attributes();
    for a in r.attributes.unwrap_or_default() {
        let key = a.key.unwrap_or_default();
        let value = a.value.unwrap_or_default();
        let Some(default) = defaults.get(&key) else {
            return Err(validation(format!("Load balancer attribute key '{key}' is not recognized")));
        };
        let ok = match key.as_str() {
            "idle_timeout.timeout_seconds" => value.parse::<u32>().is_ok_and(|v| (1..=4000).contains(&v)),
            "client_keep_alive.seconds" => value.parse::<u32>().is_ok_and(|v| (60..=604_800).contains(&v)),
            "routing.http.desync_mitigation_mode" => {
                matches!(value.as_str(), "monitor" | "defensive" | "strictest" | "off")
            }
            "routing.http.xff_header_processing.mode" => matches!(value.as_str(), "append" | "preserve" | "remove"),
            "access_logs.s3.bucket" | "access_logs.s3.prefix" => true,
            _ if default == "true" || default == "false" => matches!(value.as_str(), "true" | "false"),
            _ => true,
        };
        if !ok {
            return Err(validation(format!("'{value}' is not a valid value for load balancer attribute '{key}'")));
        }
        attrs.insert(key, value);
    }
    tx.lb_set_attributes(&l.arn, &json(&attrs)?)?;
    let l = LoadBalancerRow { attributes: json(&attrs)?, ..l };
    Ok(ModifyLoadBalancerAttributesOutput { attributes: Some(lb_attributes(&l)?) })
}

// ---- targets

fn target_addr(g: &TargetGroupRow, t: &TargetDescription) -> Result<(std::net::IpAddr, u16), ControlError> {
    let id = t.id.clone().unwrap_or_default();
    let ip: std::net::IpAddr = id.parse().map_err(|_| {
        err(ErrorCode::InvalidTarget, format!("Target '{id}' is not an IP address (the target group's type is 'ip')"))
    })?;
    let port = match t.port {
        None => g.port,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => return Err(validation(format!("Port {p} must be between 1 and 65535"))),
    };
    Ok((ip, port))
}

fn register(tx: &Tx<'_>, r: RegisterTargetsInput) -> Result<RegisterTargetsOutput, ControlError> {
    let g = tg(tx, r.target_group_arn.as_deref())?;
    for t in r.targets.unwrap_or_default() {
        let (ip, port) = target_addr(&g, &t)?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(err(ErrorCode::InvalidTarget, format!("Target '{ip}' is not a usable address")));
        }
        tx.target_register(&g.arn, &ip.to_string(), port)?;
    }
    Ok(RegisterTargetsOutput {})
}

fn deregister(tx: &Tx<'_>, r: DeregisterTargetsInput) -> Result<DeregisterTargetsOutput, ControlError> {
    let g = tg(tx, r.target_group_arn.as_deref())?;
    for t in r.targets.unwrap_or_default() {
        let (ip, port) = target_addr(&g, &t)?;
        if !tx.target_deregister(&g.arn, &ip.to_string(), port)? {
            return Err(err(
                ErrorCode::InvalidTarget,
                format!(
                    "The target '{ip}:{port}' is not registered in this target group (task targets follow their service)"
                ),
            ));
        }
    }
    Ok(DeregisterTargetsOutput {})
}

fn description(state: TargetHealthStateEnum, reason: Option<TargetHealthReasonEnum>) -> TargetHealth {
    use TargetHealthReasonEnum as R;
    let text = reason.map(|r| match r {
        R::ElbRegistrationInProgress => "Target registration is in progress",
        R::ElbInitialHealthChecking => "Initial health checks in progress",
        R::TargetResponseCodeMismatch => "Health checks failed with a response code the matcher does not accept",
        R::TargetTimeout => "Request timed out",
        R::TargetNotRegistered => "Target is not registered to the target group",
        R::TargetNotInUse => "Target group is not configured to receive traffic from the load balancer",
        R::TargetDeregistrationInProgress => "Target deregistration is in progress",
        _ => "Health checks failed",
    });
    TargetHealth { state: Some(state), reason, description: text.map(Into::into) }
}

fn target_health(c: &Control, r: DescribeTargetHealthInput) -> Result<DescribeTargetHealthOutput, ControlError> {
    use TargetHealthReasonEnum as R;
    use TargetHealthStateEnum as S;
    let (g, in_use) = c.read(|tx| {
        let g = tg(tx, r.target_group_arn.as_deref())?;
        let in_use = lbs_of_groups(tx)?.contains_key(&g.arn);
        Ok((g, in_use))
    })?;
    let table = c.routes.borrow().clone();
    let targets = table.target_group(&g.arn).map(|t| t.targets.clone()).unwrap_or_default();
    let t = now();
    let health = c.health.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let wanted = r.targets.unwrap_or_default();
    for target in &targets {
        let ip = target.addr.ip().to_string();
        let port = target.addr.port();
        if !wanted.is_empty()
            && !wanted
                .iter()
                .any(|w| w.id.as_deref() == Some(ip.as_str()) && w.port.is_none_or(|p| p == i32::from(port)))
        {
            continue;
        }
        let th = if target.state == TargetState::Draining {
            description(S::Draining, Some(R::TargetDeregistrationInProgress))
        } else if !in_use {
            description(S::Unused, Some(R::TargetNotInUse))
        } else {
            match health.target(&g.arn, &target.id, t) {
                None => description(S::Initial, Some(R::ElbRegistrationInProgress)),
                Some(s) => match s.health {
                    Health::Initial => description(S::Initial, Some(R::ElbInitialHealthChecking)),
                    Health::Healthy => TargetHealth { state: Some(S::Healthy), reason: None, description: None },
                    Health::Draining => description(S::Draining, Some(R::TargetDeregistrationInProgress)),
                    Health::Unhealthy => description(
                        S::Unhealthy,
                        Some(s.reason.as_deref().and_then(R::parse).unwrap_or(R::TargetFailedHealthChecks)),
                    ),
                },
            }
        };
        out.push(TargetHealthDescription {
            target: Some(TargetDescription { id: Some(ip), port: Some(i32::from(port)), ..Default::default() }),
            health_check_port: Some(port.to_string()),
            target_health: Some(th),
            ..Default::default()
        });
    }
    // Asked-for targets that are not registered.
    for w in &wanted {
        let id = w.id.clone().unwrap_or_default();
        let listed = out.iter().any(|d| {
            d.target
                .as_ref()
                .is_some_and(|t| t.id.as_deref() == Some(id.as_str()) && w.port.is_none_or(|p| t.port == Some(p)))
        });
        if !listed {
            out.push(TargetHealthDescription {
                target: Some(TargetDescription {
                    id: Some(id),
                    port: w.port.or(Some(i32::from(g.port))),
                    ..Default::default()
                }),
                target_health: Some(description(S::Unused, Some(R::TargetNotRegistered))),
                ..Default::default()
            });
        }
    }
    Ok(DescribeTargetHealthOutput { target_health_descriptions: Some(out) })
}

// ---- tags

fn describe_tags(tx: &Tx<'_>, r: DescribeTagsInput) -> Result<DescribeTagsOutput, ControlError> {
    let arns = r.resource_arns.unwrap_or_default();
    if arns.len() > 20 {
        return Err(validation("DescribeTags accepts at most 20 resource ARNs"));
    }
    let mut out = Vec::new();
    for arn in arns {
        require_resource(tx, &arn)?;
        let tags = tx.tags_get(&arn)?.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
        out.push(TagDescription { resource_arn: Some(arn), tags: Some(tags) });
    }
    Ok(DescribeTagsOutput { tag_descriptions: Some(out) })
}

fn add_tags(tx: &Tx<'_>, r: AddTagsInput) -> Result<AddTagsOutput, ControlError> {
    let tags = tag_pairs(r.tags)?;
    for arn in r.resource_arns.unwrap_or_default() {
        require_resource(tx, &arn)?;
        let mut keys: Vec<String> = tx.tags_get(&arn)?.into_iter().map(|(k, _)| k).collect();
        keys.extend(tags.iter().map(|(k, _)| k.clone()));
        keys.sort();
        keys.dedup();
        if keys.len() > MAX_TAGS {
            return Err(err(ErrorCode::TooManyTags, format!("A resource can have at most {MAX_TAGS} tags")));
        }
        tx.tags_put(&arn, &tags)?;
    }
    Ok(AddTagsOutput {})
}
