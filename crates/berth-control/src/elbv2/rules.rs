//! The pure parts of ELBv2: validating and normalizing rule conditions and actions as ALB does, turning them
//! into the route-table contract, allocating priorities, placing services on shared load balancers and
//! moving a service's traffic between its two target groups on every rule that forwards to them.

use std::collections::BTreeSet;

use berth_core::ErrorCode;
use berth_model::elbv2::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, HostHeaderConditionConfig,
    PathPatternConditionConfig, RedirectActionStatusCodeEnum, RuleCondition, TargetGroupStickinessConfig,
    TargetGroupTuple,
};
use berth_routes::{
    Condition, FixedResponse, QueryStringPair, Redirect, RedirectStatus, RuleAction, Stickiness, WeightedTargetGroup,
};

use crate::ControlError;

/// ALB's rule priorities.
pub(crate) const PRIORITY_MAX: u32 = 50_000;
/// Express services per shared load balancer.
pub(crate) const SERVICES_PER_LB: usize = 25;
/// Condition values (match evaluations) per rule.
const VALUES_PER_RULE: usize = 5;
/// Target groups per forward action.
const GROUPS_PER_FORWARD: usize = 5;
const WEIGHT_MAX: i32 = 999;
const PATTERN_MAX: usize = 128;

fn validation(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::ValidationError, message)
}

/// Checks conditions as ALB does and returns them normalized: host-header and path-pattern carry both
/// `Values` and their config (as DescribeRules shows them), every other field its config.
pub(crate) fn normalize_conditions(conditions: Vec<RuleCondition>) -> Result<Vec<RuleCondition>, ControlError> {
    let mut seen = BTreeSet::new();
    let mut total = 0usize;
    let mut out = Vec::with_capacity(conditions.len());
    for c in conditions {
        let field = c.field.clone().unwrap_or_default();
        if c.regex_values.is_some()
            || c.host_header_config.as_ref().is_some_and(|h| h.regex_values.is_some())
            || c.path_pattern_config.as_ref().is_some_and(|h| h.regex_values.is_some())
            || c.http_header_config.as_ref().is_some_and(|h| h.regex_values.is_some())
        {
            return Err(ControlError::code(
                ErrorCode::InvalidConfigurationRequest,
                "Regular-expression conditions are not supported by berth; use wildcard Values.",
            ));
        }
        let once = matches!(field.as_str(), "host-header" | "path-pattern" | "http-request-method" | "source-ip");
        if once && !seen.insert(field.clone()) {
            return Err(validation(format!("A rule can only have one '{field}' condition")));
        }
        let n = match field.as_str() {
            "host-header" | "path-pattern" => {
                let config_values = match field.as_str() {
                    "host-header" => c.host_header_config.as_ref().and_then(|h| h.values.clone()),
                    _ => c.path_pattern_config.as_ref().and_then(|h| h.values.clone()),
                };
                let values = match (c.values.clone(), config_values) {
                    (Some(_), Some(_)) => {
                        return Err(validation(format!(
                            "You cannot specify both 'Values' and the config of a '{field}' condition"
                        )));
                    }
                    (Some(v), None) | (None, Some(v)) => v,
                    (None, None) => vec![],
                };
                for v in &values {
                    if v.is_empty() || v.len() > PATTERN_MAX {
                        return Err(validation(format!(
                            "'{v}' is not a valid '{field}' value: it must be 1 to {PATTERN_MAX} characters"
                        )));
                    }
                    if field == "path-pattern" && !v.starts_with('/') && !v.starts_with('*') {
                        return Err(validation(format!("Path pattern '{v}' must start with '/' or '*'")));
                    }
                }
                let n = values.len();
                let mut norm =
                    RuleCondition { field: Some(field.clone()), values: Some(values.clone()), ..Default::default() };
                if field == "host-header" {
                    norm.host_header_config =
                        Some(HostHeaderConditionConfig { values: Some(values), regex_values: None });
                } else {
                    norm.path_pattern_config =
                        Some(PathPatternConditionConfig { values: Some(values), regex_values: None });
                }
                out.push(norm);
                n
            }
            "http-header" => {
                let h = c
                    .http_header_config
                    .clone()
                    .ok_or_else(|| validation("An 'http-header' condition needs HttpHeaderConfig"))?;
                let name = h.http_header_name.clone().unwrap_or_default();
                if name.is_empty()
                    || name.len() > 40
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
                {
                    return Err(validation(format!("'{name}' is not a valid HTTP header name")));
                }
                let values = h.values.clone().unwrap_or_default();
                check_len(&field, &values)?;
                out.push(RuleCondition {
                    field: Some(field.clone()),
                    http_header_config: Some(h),
                    ..Default::default()
                });
                values.len()
            }
            "http-request-method" => {
                let m = c
                    .http_request_method_config
                    .clone()
                    .ok_or_else(|| validation("An 'http-request-method' condition needs HttpRequestMethodConfig"))?;
                let values = m.values.clone().unwrap_or_default();
                for v in &values {
                    if v.is_empty()
                        || v.len() > 40
                        || !v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
                    {
                        return Err(validation(format!(
                            "'{v}' is not a valid HTTP request method: use A-Z, '_' and '-'"
                        )));
                    }
                }
                out.push(RuleCondition {
                    field: Some(field.clone()),
                    http_request_method_config: Some(m),
                    ..Default::default()
                });
                values.len()
            }
            "query-string" => {
                let q = c
                    .query_string_config
                    .clone()
                    .ok_or_else(|| validation("A 'query-string' condition needs QueryStringConfig"))?;
                let values = q.values.clone().unwrap_or_default();
                for p in &values {
                    let v = p.value.as_deref().unwrap_or_default();
                    if v.is_empty() || v.len() > PATTERN_MAX || p.key.as_deref().is_some_and(|k| k.len() > PATTERN_MAX)
                    {
                        return Err(validation(format!("Query string values must be 1 to {PATTERN_MAX} characters")));
                    }
                }
                out.push(RuleCondition {
                    field: Some(field.clone()),
                    query_string_config: Some(q),
                    ..Default::default()
                });
                values.len()
            }
            "source-ip" => {
                let s = c
                    .source_ip_config
                    .clone()
                    .ok_or_else(|| validation("A 'source-ip' condition needs SourceIpConfig"))?;
                let values = s.values.clone().unwrap_or_default();
                for v in &values {
                    if !valid_cidr(v) {
                        return Err(validation(format!("'{v}' is not a valid CIDR block")));
                    }
                }
                out.push(RuleCondition { field: Some(field.clone()), source_ip_config: Some(s), ..Default::default() });
                values.len()
            }
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' must be one of [host-header, path-pattern, http-header, http-request-method, query-string, source-ip]"
                )));
            }
        };
        if n == 0 {
            return Err(validation(format!("A '{field}' condition needs at least one value")));
        }
        total += n;
    }
    if total > VALUES_PER_RULE {
        return Err(validation(format!("A rule can only have '{VALUES_PER_RULE}' condition values")));
    }
    Ok(out)
}

fn check_len(field: &str, values: &[String]) -> Result<(), ControlError> {
    for v in values {
        if v.is_empty() || v.len() > PATTERN_MAX {
            return Err(validation(format!("'{field}' values must be 1 to {PATTERN_MAX} characters")));
        }
    }
    Ok(())
}

fn valid_cidr(s: &str) -> bool {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else { return false };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match len {
        None => true,
        Some(l) => l.parse::<u32>().is_ok_and(|l| l <= max),
    }
}

/// Checks actions as ALB does (one final forward, redirect or fixed-response; up to 5 weighted target
/// groups in `known`; weights 0..=999) and returns them normalized: forwards carry a `ForwardConfig` (and
/// `TargetGroupArn` when there is one group), orders are 1, 2, ...
pub(crate) fn normalize_actions(
    actions: Vec<Action>,
    known: &dyn Fn(&str) -> bool,
) -> Result<Vec<Action>, ControlError> {
    if actions.is_empty() {
        return Err(validation("A rule needs at least one action"));
    }
    let mut actions = actions;
    actions.sort_by_key(|a| a.order.unwrap_or(i32::MAX));
    if actions.len() > 1 {
        return Err(ControlError::code(
            ErrorCode::TooManyActions,
            "berth supports exactly one forward, redirect or fixed-response action per rule (authenticate actions are not supported)",
        ));
    }
    let mut out = Vec::new();
    for a in actions {
        let norm = match a.r#type {
            Some(ActionTypeEnum::Forward) => {
                let mut tuples = a.forward_config.as_ref().and_then(|f| f.target_groups.clone()).unwrap_or_default();
                if let Some(arn) = &a.target_group_arn {
                    let same = tuples.len() == 1 && tuples[0].target_group_arn.as_deref() == Some(arn);
                    if !tuples.is_empty() && !same {
                        return Err(validation("You cannot specify both TargetGroupArn and a different ForwardConfig"));
                    }
                    if tuples.is_empty() {
                        tuples.push(TargetGroupTuple { target_group_arn: Some(arn.clone()), weight: Some(1) });
                    }
                }
                if tuples.is_empty() {
                    return Err(validation("A forward action needs a target group"));
                }
                if tuples.len() > GROUPS_PER_FORWARD {
                    return Err(ControlError::code(
                        ErrorCode::TooManyTargetGroups,
                        format!("A forward action can have at most {GROUPS_PER_FORWARD} target groups"),
                    ));
                }
                let mut seen = BTreeSet::new();
                for t in &mut tuples {
                    let arn = t.target_group_arn.clone().unwrap_or_default();
                    if !known(&arn) {
                        return Err(ControlError::code(
                            ErrorCode::TargetGroupNotFound,
                            format!("Target group '{arn}' not found"),
                        ));
                    }
                    if !seen.insert(arn.clone()) {
                        return Err(validation(format!("Target group '{arn}' is listed twice")));
                    }
                    let w = t.weight.unwrap_or(1);
                    if !(0..=WEIGHT_MAX).contains(&w) {
                        return Err(validation(format!("Target group weight {w} must be between 0 and {WEIGHT_MAX}")));
                    }
                    t.weight = Some(w);
                }
                let stick = a.forward_config.as_ref().and_then(|f| f.target_group_stickiness_config.clone());
                if let Some(s) = &stick
                    && s.enabled == Some(true)
                    && !s.duration_seconds.is_some_and(|d| (1..=604_800).contains(&d))
                {
                    return Err(validation("Stickiness DurationSeconds must be between 1 and 604800"));
                }
                Action {
                    r#type: Some(ActionTypeEnum::Forward),
                    target_group_arn: (tuples.len() == 1).then(|| tuples[0].target_group_arn.clone()).flatten(),
                    order: Some(1),
                    forward_config: Some(ForwardActionConfig {
                        target_groups: Some(tuples),
                        target_group_stickiness_config: Some(
                            stick.unwrap_or(TargetGroupStickinessConfig {
                                enabled: Some(false),
                                duration_seconds: None,
                            }),
                        ),
                    }),
                    ..Default::default()
                }
            }
            Some(ActionTypeEnum::Redirect) => {
                let r =
                    a.redirect_config.clone().ok_or_else(|| validation("A redirect action needs RedirectConfig"))?;
                if r.status_code.is_none() {
                    return Err(validation("RedirectConfig.StatusCode is required"));
                }
                if let Some(p) = &r.protocol
                    && !matches!(p.as_str(), "HTTP" | "HTTPS" | "#{protocol}")
                {
                    return Err(validation(format!("Redirect protocol '{p}' must be HTTP, HTTPS or #{{protocol}}")));
                }
                if let Some(p) = &r.path
                    && !p.starts_with('/')
                {
                    return Err(validation(format!("Redirect path '{p}' must start with '/'")));
                }
                Action {
                    r#type: Some(ActionTypeEnum::Redirect),
                    order: Some(1),
                    redirect_config: Some(r),
                    ..Default::default()
                }
            }
            Some(ActionTypeEnum::FixedResponse) => {
                let f = a
                    .fixed_response_config
                    .clone()
                    .ok_or_else(|| validation("A fixed-response action needs FixedResponseConfig"))?;
                fixed_status(&f)?;
                if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(validation("A fixed response's MessageBody can be at most 1024 characters"));
                }
                if let Some(ct) = &f.content_type
                    && !matches!(
                        ct.as_str(),
                        "text/plain" | "text/css" | "text/html" | "application/javascript" | "application/json"
                    )
                {
                    return Err(validation(format!("ContentType '{ct}' is not supported")));
                }
                Action {
                    r#type: Some(ActionTypeEnum::FixedResponse),
                    order: Some(1),
                    fixed_response_config: Some(f),
                    ..Default::default()
                }
            }
            Some(other) => {
                return Err(ControlError::code(
                    ErrorCode::InvalidLoadBalancerAction,
                    format!("Action type '{}' is not supported by berth", other.as_str()),
                ));
            }
            None => return Err(validation("Action Type is required")),
        };
        out.push(norm);
    }
    Ok(out)
}

fn fixed_status(f: &FixedResponseActionConfig) -> Result<u16, ControlError> {
    let s = f.status_code.as_deref().unwrap_or_default();
    match s.parse::<u16>() {
        Ok(code) if s.len() == 3 && matches!(code / 100, 2 | 4 | 5) => Ok(code),
        _ => Err(validation(format!("Fixed response status code '{s}' must be 2XX, 4XX or 5XX"))),
    }
}

/// The route-table conditions of stored conditions.
pub(crate) fn route_conditions(conditions: &[RuleCondition]) -> Vec<Condition> {
    conditions
        .iter()
        .filter_map(|c| {
            Some(match c.field.as_deref()? {
                "host-header" => Condition::HostHeader {
                    values: c.host_header_config.as_ref().and_then(|h| h.values.clone()).or(c.values.clone())?,
                },
                "path-pattern" => Condition::PathPattern {
                    values: c.path_pattern_config.as_ref().and_then(|h| h.values.clone()).or(c.values.clone())?,
                },
                "http-header" => {
                    let h = c.http_header_config.as_ref()?;
                    Condition::HttpHeader { name: h.http_header_name.clone()?, values: h.values.clone()? }
                }
                "http-request-method" => {
                    Condition::HttpRequestMethod { values: c.http_request_method_config.as_ref()?.values.clone()? }
                }
                "query-string" => Condition::QueryString {
                    values: c
                        .query_string_config
                        .as_ref()?
                        .values
                        .as_ref()?
                        .iter()
                        .map(|p| QueryStringPair { key: p.key.clone(), value: p.value.clone().unwrap_or_default() })
                        .collect(),
                },
                "source-ip" => Condition::SourceIp { values: c.source_ip_config.as_ref()?.values.clone()? },
                _ => return None,
            })
        })
        .collect()
}

/// The route-table action of stored actions (the first by order).
pub(crate) fn route_action(actions: &[Action]) -> Option<RuleAction> {
    let a = actions.iter().min_by_key(|a| a.order.unwrap_or(i32::MAX))?;
    Some(match a.r#type? {
        ActionTypeEnum::Forward => {
            let f = a.forward_config.as_ref();
            let tuples = f.and_then(|f| f.target_groups.clone()).unwrap_or_else(|| {
                a.target_group_arn
                    .iter()
                    .map(|arn| TargetGroupTuple { target_group_arn: Some(arn.clone()), weight: Some(1) })
                    .collect()
            });
            let stickiness = f
                .and_then(|f| f.target_group_stickiness_config.as_ref())
                .filter(|s| s.enabled == Some(true))
                .map(|s| Stickiness { duration_secs: s.duration_seconds.unwrap_or(3600).max(1) as u32 });
            RuleAction::Forward {
                target_groups: tuples
                    .into_iter()
                    .filter_map(|t| {
                        Some(WeightedTargetGroup {
                            target_group: t.target_group_arn?,
                            weight: t.weight.unwrap_or(1).max(0) as u32,
                        })
                    })
                    .collect(),
                stickiness,
            }
        }
        ActionTypeEnum::Redirect => {
            let r = a.redirect_config.as_ref()?;
            RuleAction::Redirect(Redirect {
                protocol: r.protocol.clone(),
                host: r.host.clone(),
                port: r.port.clone(),
                path: r.path.clone(),
                query: r.query.clone(),
                status_code: match r.status_code? {
                    RedirectActionStatusCodeEnum::Http301 => RedirectStatus::Http301,
                    RedirectActionStatusCodeEnum::Http302 => RedirectStatus::Http302,
                },
            })
        }
        ActionTypeEnum::FixedResponse => {
            let f = a.fixed_response_config.as_ref()?;
            RuleAction::FixedResponse(FixedResponse {
                status_code: fixed_status(f).ok()?,
                content_type: f.content_type.clone(),
                message_body: f.message_body.clone(),
            })
        }
        _ => return None,
    })
}

/// The target groups a stored action list forwards to.
pub(crate) fn forwarded_groups(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if let Some(arn) = &a.target_group_arn {
            out.push(arn.clone());
        }
        for t in a.forward_config.iter().flat_map(|f| f.target_groups.iter().flatten()) {
            if let Some(arn) = &t.target_group_arn
                && !out.contains(arn)
            {
                out.push(arn.clone());
            }
        }
    }
    out
}

/// Moves a service's traffic to `live` on one rule's actions: where the forward lists both of the service's
/// groups, `live` gets their combined weight and the other 0; where it lists only the other one, that entry
/// now names `live`. Returns whether anything changed. Other target groups keep their weights.
pub(crate) fn shift_weights(actions: &mut [Action], live: &str, idle: &str) -> bool {
    let mut changed = false;
    for a in actions.iter_mut() {
        let Some(tuples) = a.forward_config.as_mut().and_then(|f| f.target_groups.as_mut()) else {
            if a.target_group_arn.as_deref() == Some(idle) {
                a.target_group_arn = Some(live.to_string());
                changed = true;
            }
            continue;
        };
        let li = tuples.iter().position(|t| t.target_group_arn.as_deref() == Some(live));
        let ii = tuples.iter().position(|t| t.target_group_arn.as_deref() == Some(idle));
        match (li, ii) {
            (Some(l), Some(i)) => {
                let total = tuples[l].weight.unwrap_or(1) + tuples[i].weight.unwrap_or(1);
                if tuples[l].weight != Some(total) || tuples[i].weight != Some(0) {
                    tuples[l].weight = Some(total);
                    tuples[i].weight = Some(0);
                    changed = true;
                }
            }
            (None, Some(i)) => {
                tuples[i].target_group_arn = Some(live.to_string());
                changed = true;
            }
            _ => {}
        }
        let single = (tuples.len() == 1).then(|| tuples[0].target_group_arn.clone()).flatten();
        if a.target_group_arn.is_some() && a.target_group_arn != single {
            a.target_group_arn = single;
            changed = true;
        }
    }
    changed
}

/// Sets a service's two groups' weights in a rule's forwards: `target_percent` of the service's traffic to
/// `target`, the rest to `source`. A forward naming only one of them gains the other; a forward over the two
/// alone gets [`crate::plan::alb_weights`] exactly (5% is 95/5, 0.5% 995/5, 0 and 100 exactly 100/0); a forward
/// that also names other groups keeps their weights and splits the service's share (rounded). Forwards naming
/// neither group are left alone. Returns whether anything changed.
pub(crate) fn set_group_weights(actions: &mut [Action], source: &str, target: &str, target_percent: f64) -> bool {
    let mut changed = false;
    for a in actions.iter_mut() {
        if a.forward_config.as_ref().and_then(|f| f.target_groups.as_ref()).is_none() {
            // The single-group form: only when it names one of ours does it become a weighted forward.
            let Some(g) = a.target_group_arn.clone().filter(|g| g == source || g == target) else { continue };
            a.forward_config = Some(berth_model::elbv2::ForwardActionConfig {
                target_groups: Some(vec![berth_model::elbv2::TargetGroupTuple {
                    target_group_arn: Some(g),
                    weight: Some(1),
                }]),
                target_group_stickiness_config: None,
            });
        }
        let Some(tuples) = a.forward_config.as_mut().and_then(|f| f.target_groups.as_mut()) else { continue };
        let ours = |t: &berth_model::elbv2::TargetGroupTuple| matches!(t.target_group_arn.as_deref(), Some(g) if g == source || g == target);
        if !tuples.iter().any(ours) {
            continue;
        }
        let share: i32 = tuples.iter().filter(|t| ours(t)).map(|t| t.weight.unwrap_or(1)).sum();
        let others = tuples.iter().any(|t| !ours(t));
        let (ws, wt) = if others {
            let wt = (f64::from(share) * target_percent.clamp(0.0, 100.0) / 100.0).round() as i32;
            (share - wt, wt)
        } else {
            crate::plan::alb_weights(target_percent)
        };
        let before = tuples.clone();
        let (mut seen_s, mut seen_t) = (false, false);
        for t in tuples.iter_mut() {
            if t.target_group_arn.as_deref() == Some(source) {
                t.weight = Some(ws);
                seen_s = true;
            } else if t.target_group_arn.as_deref() == Some(target) {
                t.weight = Some(wt);
                seen_t = true;
            }
        }
        for (seen, g, w) in [(seen_s, source, ws), (seen_t, target, wt)] {
            if !seen {
                tuples.push(berth_model::elbv2::TargetGroupTuple {
                    target_group_arn: Some(g.to_string()),
                    weight: Some(w),
                });
            }
        }
        if *tuples != before {
            changed = true;
        }
        if a.target_group_arn.is_some() {
            a.target_group_arn = None;
            changed = true;
        }
    }
    changed
}

/// Removes `groups` from a rule's forwards. Returns `None` when the forward is left with no group (the rule
/// must go), else whether anything changed.
pub(crate) fn strip_groups(actions: &mut [Action], groups: &[String]) -> Option<bool> {
    let mut changed = false;
    for a in actions.iter_mut() {
        if a.target_group_arn.as_ref().is_some_and(|g| groups.contains(g)) {
            a.target_group_arn = None;
            changed = true;
        }
        if let Some(tuples) = a.forward_config.as_mut().and_then(|f| f.target_groups.as_mut()) {
            let before = tuples.len();
            tuples.retain(|t| !t.target_group_arn.as_ref().is_some_and(|g| groups.contains(g)));
            if tuples.len() != before {
                changed = true;
                if tuples.is_empty() {
                    return None;
                }
                if tuples.len() == 1 {
                    a.target_group_arn = tuples[0].target_group_arn.clone();
                }
            }
        } else if changed && a.r#type == Some(ActionTypeEnum::Forward) {
            return None;
        }
    }
    Some(changed)
}

/// The lowest priority (1..=50000) no rule of the listener uses.
pub(crate) fn lowest_free_priority(used: &[u32]) -> Option<u32> {
    let used: BTreeSet<u32> = used.iter().copied().collect();
    (1..=PRIORITY_MAX).find(|p| !used.contains(p))
}

/// Which load balancer a new service joins: the oldest of the same scheme with fewer than
/// [`SERVICES_PER_LB`] services. `None`: a new one is needed. `lbs` is (arn, scheme, services), oldest first.
pub(crate) fn choose_load_balancer<'a>(lbs: &'a [(String, String, usize)], scheme: &str) -> Option<&'a str> {
    lbs.iter().find(|(_, s, n)| s == scheme && *n < SERVICES_PER_LB).map(|(arn, _, _)| arn.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::elbv2::{HttpHeaderConditionConfig, RedirectActionConfig, SourceIpConditionConfig};

    fn fwd(groups: &[(&str, i32)]) -> Action {
        Action {
            r#type: Some(ActionTypeEnum::Forward),
            forward_config: Some(ForwardActionConfig {
                target_groups: Some(
                    groups
                        .iter()
                        .map(|(g, w)| TargetGroupTuple { target_group_arn: Some((*g).into()), weight: Some(*w) })
                        .collect(),
                ),
                target_group_stickiness_config: None,
            }),
            ..Default::default()
        }
    }

    type Lbs = Vec<(String, String, usize)>;
    type Weights = Vec<(String, i32)>;

    fn weights(a: &Action) -> Weights {
        a.forward_config
            .iter()
            .flat_map(|f| f.target_groups.iter().flatten())
            .map(|t| (t.target_group_arn.clone().unwrap_or_default(), t.weight.unwrap_or(-1)))
            .collect()
    }

    #[test]
    fn placement_table() {
        let lb = |arn: &str, scheme: &str, n: usize| (arn.to_string(), scheme.to_string(), n);
        // (load balancers, scheme, expected)
        let cases: Vec<(Lbs, &str, Option<&str>)> = vec![
            (vec![], "internet-facing", None),
            (vec![lb("a", "internet-facing", 0)], "internet-facing", Some("a")),
            (vec![lb("a", "internet-facing", 24)], "internet-facing", Some("a")),
            (vec![lb("a", "internet-facing", 25)], "internet-facing", None),
            (vec![lb("a", "internet-facing", 25), lb("b", "internet-facing", 1)], "internet-facing", Some("b")),
            (vec![lb("a", "internet-facing", 3), lb("b", "internet-facing", 1)], "internet-facing", Some("a")),
            (vec![lb("a", "internal", 0)], "internet-facing", None),
            (vec![lb("a", "internet-facing", 2), lb("b", "internal", 0)], "internal", Some("b")),
        ];
        for (lbs, scheme, want) in cases {
            assert_eq!(choose_load_balancer(&lbs, scheme), want, "{lbs:?} {scheme}");
        }
    }

    #[test]
    fn priority_table() {
        let cases: Vec<(Vec<u32>, Option<u32>)> = vec![
            (vec![], Some(1)),
            (vec![1, 2, 3], Some(4)),
            (vec![2, 3], Some(1)),
            (vec![1, 3, 10], Some(2)),
            ((1..=PRIORITY_MAX).collect(), None),
        ];
        for (used, want) in cases {
            assert_eq!(lowest_free_priority(&used), want);
        }
    }

    #[test]
    fn shift_weights_table() {
        // (actions before, live, idle, weights after, changed)
        let cases: Vec<(Action, Weights, bool)> = vec![
            // The Express rule: 100/0 flips to 0/100.
            (fwd(&[("A", 100), ("B", 0)]), vec![("A".into(), 0), ("B".into(), 100)], true),
            // A user's rule naming only the old live group follows the service.
            (fwd(&[("A", 1)]), vec![("B".into(), 1)], true),
            // A user's weighted rule across services keeps its split.
            (fwd(&[("A", 90), ("X", 10)]), vec![("B".into(), 90), ("X".into(), 10)], true),
            // Already on the live group: nothing changes.
            (fwd(&[("B", 5), ("X", 5)]), vec![("B".into(), 5), ("X".into(), 5)], false),
            (fwd(&[("X", 1)]), vec![("X".into(), 1)], false),
            // Both present with a user split: all of the service's weight moves to the live group.
            (fwd(&[("A", 30), ("B", 20), ("X", 50)]), vec![("A".into(), 0), ("B".into(), 50), ("X".into(), 50)], true),
        ];
        for (before, want, changed) in cases {
            let mut actions = vec![before.clone()];
            assert_eq!(shift_weights(&mut actions, "B", "A"), changed, "{before:?}");
            assert_eq!(weights(&actions[0]), want, "{before:?}");
        }
        // A fixed response is left alone.
        let mut fixed = vec![Action { r#type: Some(ActionTypeEnum::FixedResponse), ..Default::default() }];
        assert!(!shift_weights(&mut fixed, "B", "A"));
    }

    #[test]
    fn set_group_weights_table() {
        // (actions before, target percent, weights after, changed); source "A", target "B".
        let cases: Vec<(Action, f64, Weights, bool)> = vec![
            (fwd(&[("A", 100), ("B", 0)]), 5.0, vec![("A".into(), 95), ("B".into(), 5)], true),
            (fwd(&[("A", 95), ("B", 5)]), 100.0, vec![("A".into(), 0), ("B".into(), 100)], true),
            (fwd(&[("A", 0), ("B", 100)]), 0.0, vec![("A".into(), 100), ("B".into(), 0)], true),
            (fwd(&[("A", 100), ("B", 0)]), 0.0, vec![("A".into(), 100), ("B".into(), 0)], false),
            // Fractions map exactly onto ALB's 0-999.
            (fwd(&[("A", 100), ("B", 0)]), 0.5, vec![("A".into(), 995), ("B".into(), 5)], true),
            (fwd(&[("A", 100), ("B", 0)]), 12.5, vec![("A".into(), 875), ("B".into(), 125)], true),
            (fwd(&[("A", 100), ("B", 0)]), 33.3, vec![("A".into(), 667), ("B".into(), 333)], true),
            // A user's rule naming only the source gains the target.
            (fwd(&[("A", 1)]), 10.0, vec![("A".into(), 90), ("B".into(), 10)], true),
            // Order kept: the target first stays first.
            (fwd(&[("B", 100), ("A", 0)]), 5.0, vec![("B".into(), 5), ("A".into(), 95)], true),
            // A split with another service keeps the other's weight; the service's share is split.
            (fwd(&[("A", 50), ("X", 50)]), 20.0, vec![("A".into(), 40), ("X".into(), 50), ("B".into(), 10)], true),
            // Not ours: untouched.
            (fwd(&[("X", 1)]), 50.0, vec![("X".into(), 1)], false),
        ];
        for (before, pct, want, changed) in cases {
            let mut actions = vec![before.clone()];
            assert_eq!(set_group_weights(&mut actions, "A", "B", pct), changed, "{before:?} {pct}");
            assert_eq!(weights(&actions[0]), want, "{before:?} {pct}");
        }
        // The single-group form becomes a weighted forward.
        let mut single = vec![Action {
            r#type: Some(ActionTypeEnum::Forward),
            target_group_arn: Some("A".into()),
            ..Default::default()
        }];
        assert!(set_group_weights(&mut single, "A", "B", 5.0));
        assert_eq!(weights(&single[0]), vec![("A".to_string(), 95), ("B".to_string(), 5)]);
        assert_eq!(single[0].target_group_arn, None);
    }

    #[test]
    fn strip_groups_table() {
        let gone = vec!["A".to_string(), "B".to_string()];
        let mut a = vec![fwd(&[("A", 100), ("B", 0)])];
        assert_eq!(strip_groups(&mut a, &gone), None, "nothing left to forward to");
        let mut a = vec![fwd(&[("A", 90), ("X", 10)])];
        assert_eq!(strip_groups(&mut a, &gone), Some(true));
        assert_eq!(weights(&a[0]), vec![("X".to_string(), 10)]);
        let mut a = vec![fwd(&[("X", 1)])];
        assert_eq!(strip_groups(&mut a, &gone), Some(false));
    }

    fn cond(field: &str, values: &[&str]) -> RuleCondition {
        RuleCondition {
            field: Some(field.into()),
            values: Some(values.iter().map(|v| (*v).to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn condition_validation_table() {
        let ip = |v: &[&str]| RuleCondition {
            field: Some("source-ip".into()),
            source_ip_config: Some(SourceIpConditionConfig {
                values: Some(v.iter().map(|s| (*s).to_string()).collect()),
                ip_address_type: None,
            }),
            ..Default::default()
        };
        let header = |name: &str| RuleCondition {
            field: Some("http-header".into()),
            http_header_config: Some(HttpHeaderConditionConfig {
                http_header_name: Some(name.into()),
                values: Some(vec!["x".into()]),
                regex_values: None,
            }),
            ..Default::default()
        };
        let long = format!("/{}", "a".repeat(128));
        // (conditions, Ok or the error code)
        let cases: Vec<(Vec<RuleCondition>, Result<(), ErrorCode>)> = vec![
            (vec![cond("host-header", &["a.example.com"])], Ok(())),
            (vec![cond("path-pattern", &["/api/*"])], Ok(())),
            (vec![cond("path-pattern", &["api"])], Err(ErrorCode::ValidationError)),
            (vec![cond("path-pattern", &[&long])], Err(ErrorCode::ValidationError)),
            (vec![cond("host-header", &["a", "b", "c"]), cond("path-pattern", &["/1", "/2"])], Ok(())),
            (
                vec![cond("host-header", &["a", "b", "c"]), cond("path-pattern", &["/1", "/2", "/3"])],
                Err(ErrorCode::ValidationError),
            ),
            (vec![cond("host-header", &["a"]), cond("host-header", &["b"])], Err(ErrorCode::ValidationError)),
            (vec![cond("host-header", &[])], Err(ErrorCode::ValidationError)),
            (vec![cond("cookie", &["a"])], Err(ErrorCode::ValidationError)),
            (vec![ip(&["10.0.0.0/8", "127.0.0.1/32", "::1"])], Ok(())),
            (vec![ip(&["10.0.0.0/33"])], Err(ErrorCode::ValidationError)),
            (vec![ip(&["nope"])], Err(ErrorCode::ValidationError)),
            (vec![header("X-Env"), header("X-Other")], Ok(())),
            (vec![header("Bad Header")], Err(ErrorCode::ValidationError)),
        ];
        for (conds, want) in cases {
            let got = normalize_conditions(conds.clone()).map(|_| ()).map_err(|e| match e {
                ControlError::Aws(a) => a.code,
                other => panic!("{other}"),
            });
            assert_eq!(got, want, "{conds:?}");
        }
        let norm = normalize_conditions(vec![cond("host-header", &["a.example.com"])]).expect("ok");
        assert_eq!(
            norm[0].host_header_config.as_ref().and_then(|h| h.values.clone()),
            Some(vec!["a.example.com".into()])
        );
        assert_eq!(route_conditions(&norm), vec![Condition::HostHeader { values: vec!["a.example.com".into()] }]);
    }

    #[test]
    fn action_validation_table() {
        let known = |arn: &str| arn.starts_with("tg-");
        let fixed = |code: &str| Action {
            r#type: Some(ActionTypeEnum::FixedResponse),
            fixed_response_config: Some(FixedResponseActionConfig {
                status_code: Some(code.into()),
                content_type: Some("text/plain".into()),
                message_body: Some("no".into()),
            }),
            ..Default::default()
        };
        let six: Vec<(String, i32)> = (0..6).map(|i| (format!("tg-{i}"), 1)).collect();
        let six: Vec<(&str, i32)> = six.iter().map(|(g, w)| (g.as_str(), *w)).collect();
        let cases: Vec<(Vec<Action>, Result<(), ErrorCode>)> = vec![
            (vec![fwd(&[("tg-a", 90), ("tg-b", 10)])], Ok(())),
            (vec![fwd(&[("tg-a", 1000)])], Err(ErrorCode::ValidationError)),
            (vec![fwd(&[("tg-a", -1)])], Err(ErrorCode::ValidationError)),
            (vec![fwd(&[("nope", 1)])], Err(ErrorCode::TargetGroupNotFound)),
            (vec![fwd(&six)], Err(ErrorCode::TooManyTargetGroups)),
            (vec![fwd(&[("tg-a", 1), ("tg-a", 1)])], Err(ErrorCode::ValidationError)),
            (vec![fixed("403")], Ok(())),
            (vec![fixed("302")], Err(ErrorCode::ValidationError)),
            (vec![fixed("40")], Err(ErrorCode::ValidationError)),
            (vec![fixed("403"), fixed("404")], Err(ErrorCode::TooManyActions)),
            (vec![], Err(ErrorCode::ValidationError)),
            (
                vec![Action {
                    r#type: Some(ActionTypeEnum::Redirect),
                    redirect_config: Some(RedirectActionConfig {
                        protocol: Some("HTTPS".into()),
                        status_code: Some(RedirectActionStatusCodeEnum::Http301),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                Ok(()),
            ),
            (
                vec![Action { r#type: Some(ActionTypeEnum::AuthenticateOidc), ..Default::default() }],
                Err(ErrorCode::InvalidLoadBalancerAction),
            ),
        ];
        for (actions, want) in cases {
            let got = normalize_actions(actions.clone(), &known).map(|_| ()).map_err(|e| match e {
                ControlError::Aws(a) => a.code,
                other => panic!("{other}"),
            });
            assert_eq!(got, want, "{actions:?}");
        }
        // A bare TargetGroupArn becomes a one-group ForwardConfig with weight 1.
        let bare = Action {
            r#type: Some(ActionTypeEnum::Forward),
            target_group_arn: Some("tg-a".into()),
            ..Default::default()
        };
        let norm = normalize_actions(vec![bare], &known).expect("ok");
        assert_eq!(weights(&norm[0]), vec![("tg-a".to_string(), 1)]);
        assert_eq!(
            route_action(&norm),
            Some(RuleAction::Forward {
                target_groups: vec![WeightedTargetGroup { target_group: "tg-a".into(), weight: 1 }],
                stickiness: None
            })
        );
        assert_eq!(
            route_action(&[fixed("403")]),
            Some(RuleAction::FixedResponse(FixedResponse {
                status_code: 403,
                content_type: Some("text/plain".into()),
                message_body: Some("no".into())
            }))
        );
    }
}
