//! Security groups and their rules: create, delete, describe, authorize and revoke, as EC2 answers them.

use berth_core::ErrorCode;
use berth_core::status::ServiceStatus;
use berth_model::ec2::*;
use berth_store::{SecurityGroupRow, SecurityGroupRuleRow, Tx};

use super::rules::{self, Peer, RuleSpec};
use super::{err, filters_match, new_id, tag_list, tag_pairs};
use crate::{Control, ControlError, now};

/// At most this many rules per group and direction (EC2's default quota).
const MAX_RULES: usize = 60;

/// Appends a rule to a group and returns it.
pub(crate) fn insert_rule(
    tx: &Tx<'_>,
    group_id: &str,
    egress: bool,
    spec: &RuleSpec,
) -> Result<SecurityGroupRuleRow, ControlError> {
    let (v4, v6, group) = match &spec.peer {
        Peer::V4(c) => (Some(c.to_string()), None, None),
        Peer::V6(c) => (None, Some(c.to_string()), None),
        Peer::Group(g) => (None, None, Some(g.clone())),
    };
    let row = SecurityGroupRuleRow {
        id: new_id("sgr"),
        group_id: group_id.to_string(),
        egress,
        protocol: spec.protocol.clone(),
        from_port: spec.from_port,
        to_port: spec.to_port,
        cidr_ipv4: v4,
        cidr_ipv6: v6,
        referenced_group_id: group,
        description: spec.description.clone(),
    };
    tx.security_group_rule_insert(&row)?;
    Ok(row)
}

/// EC2's default egress rule: all traffic to 0.0.0.0/0.
pub(crate) fn insert_default_egress(tx: &Tx<'_>, group_id: &str) -> Result<(), ControlError> {
    let all: berth_core::cidr::Cidr = "0.0.0.0/0".parse().map_err(|_| err(ErrorCode::Server, "0.0.0.0/0"))?;
    insert_rule(
        tx,
        group_id,
        true,
        &RuleSpec { protocol: "-1".into(), from_port: -1, to_port: -1, peer: Peer::V4(all), description: None },
    )?;
    Ok(())
}

fn malformed_or_missing(id: &str) -> ControlError {
    if id.starts_with("sg-") {
        err(ErrorCode::Ec2InvalidGroupNotFound, format!("The security group '{id}' does not exist"))
    } else {
        err(ErrorCode::Ec2InvalidGroupIdMalformed, format!("Invalid id: \"{id}\" (expecting \"sg-...\")"))
    }
}

/// The group named by id, or by name in the default VPC.
pub(crate) fn resolve(tx: &Tx<'_>, id: Option<&str>, name: Option<&str>) -> Result<SecurityGroupRow, ControlError> {
    match (id, name) {
        (Some(id), _) => tx.security_group_get(id)?.ok_or_else(|| malformed_or_missing(id)),
        (None, Some(name)) => {
            let vpc =
                tx.vpc_default()?.ok_or_else(|| err(ErrorCode::Ec2InvalidVpcIdNotFound, "There is no default VPC"))?;
            tx.security_group_by_name(&vpc.id, name)?.ok_or_else(|| {
                err(
                    ErrorCode::Ec2InvalidGroupNotFound,
                    format!("The security group '{name}' does not exist in default VPC '{}'", vpc.id),
                )
            })
        }
        (None, None) => {
            Err(err(ErrorCode::MissingParameter, "The request must contain the parameter groupName or groupId"))
        }
    }
}

fn group_arn(c: &Control, id: &str) -> String {
    super::arn(c, "security-group", id)
}

fn rule_arn(c: &Control, id: &str) -> String {
    super::arn(c, "security-group-rule", id)
}

/// The tags of the TagSpecifications addressed to `resource_type`.
pub(crate) fn spec_tags(
    specs: &Option<Vec<TagSpecification>>,
    resource_type: ResourceType,
) -> Result<Vec<(String, String)>, ControlError> {
    let mut tags = Vec::new();
    for s in specs.iter().flatten() {
        match s.resource_type {
            Some(t) if t == resource_type => tags.extend(s.tags.clone().unwrap_or_default()),
            other => {
                return Err(err(
                    ErrorCode::InvalidParameterValue,
                    format!(
                        "'{}' is not a valid taggable resource type for this operation.",
                        other.map(|t| t.as_str()).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    tag_pairs(&tags)
}

/// Creates a group in `vpc_id` with EC2's default egress rule. Shared by the API and Express.
pub(crate) fn create_group(
    c: &Control,
    tx: &Tx<'_>,
    name: &str,
    description: &str,
    vpc_id: &str,
    tags: &[(String, String)],
) -> Result<SecurityGroupRow, ControlError> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(err(ErrorCode::InvalidParameterValue, "Group names have 1 to 255 characters."));
    }
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(err(
            ErrorCode::InvalidParameterValue,
            format!("Group names may not be in the format sg-*: '{name}'."),
        ));
    }
    if description.chars().count() > 255 {
        return Err(err(ErrorCode::InvalidParameterValue, "Group descriptions have at most 255 characters."));
    }
    if tx.vpc_get(vpc_id)?.is_none() {
        return Err(err(ErrorCode::Ec2InvalidVpcIdNotFound, format!("The vpc ID '{vpc_id}' does not exist")));
    }
    if tx.security_group_by_name(vpc_id, name)?.is_some() {
        return Err(err(
            ErrorCode::Ec2InvalidGroupDuplicate,
            format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
        ));
    }
    let g = SecurityGroupRow {
        id: new_id("sg"),
        vpc_id: vpc_id.to_string(),
        name: name.to_string(),
        description: description.to_string(),
        owner_id: c.names.account.clone(),
        created_at: now(),
    };
    tx.security_group_insert(&g)?;
    insert_default_egress(tx, &g.id)?;
    tx.ec2_tags_put(&g.id, tags)?;
    Ok(g)
}

pub(crate) fn create(c: &Control, r: CreateSecurityGroupRequest) -> Result<CreateSecurityGroupResult, ControlError> {
    let name = r.group_name.clone().unwrap_or_default();
    let description = r.description.clone().unwrap_or_default();
    let tags = spec_tags(&r.tag_specifications, ResourceType::SecurityGroup)?;
    let g = c.tx(|tx| {
        let vpc_id = match &r.vpc_id {
            Some(v) => v.clone(),
            None => tx
                .vpc_default()?
                .map(|v| v.id)
                .ok_or_else(|| err(ErrorCode::Ec2InvalidVpcIdNotFound, "No default VPC"))?,
        };
        create_group(c, tx, &name, &description, &vpc_id, &tags)
    })?;
    Ok(CreateSecurityGroupResult {
        group_id: Some(g.id.clone()),
        security_group_arn: Some(group_arn(c, &g.id)),
        tags: (!tags.is_empty()).then(|| tag_list(tags)),
    })
}

/// Why a group cannot be deleted now, if it cannot.
pub(crate) fn in_use(tx: &Tx<'_>, g: &SecurityGroupRow) -> Result<Option<String>, ControlError> {
    for att in tx.service_groups_all()?.into_iter().filter(|a| a.group_id == g.id) {
        let live = tx.service_by_id(att.service_id)?.is_some_and(|s| s.status != ServiceStatus::Inactive);
        if live {
            return Ok(Some(format!("resource {} has a dependent object", g.id)));
        }
    }
    if let Some(other) = tx.security_groups_referencing(&g.id)?.first() {
        return Ok(Some(format!("resource {} has a dependent object (a rule of {other} references it)", g.id)));
    }
    Ok(None)
}

pub(crate) fn delete(c: &Control, r: DeleteSecurityGroupRequest) -> Result<DeleteSecurityGroupResult, ControlError> {
    let id = c.tx(|tx| {
        let g = resolve(tx, r.group_id.as_deref(), r.group_name.as_deref())?;
        if g.name == "default" {
            return Err(err(
                ErrorCode::Ec2CannotDelete,
                format!("the specified group: \"{}\" name: \"default\" cannot be deleted by a user", g.id),
            ));
        }
        if let Some(why) = in_use(tx, &g)? {
            return Err(err(ErrorCode::Ec2DependencyViolation, why));
        }
        tx.security_group_delete(&g.id)?;
        Ok(g.id)
    })?;
    Ok(DeleteSecurityGroupResult { r#return: Some(true), group_id: Some(id) })
}

pub(crate) fn describe(
    c: &Control,
    r: DescribeSecurityGroupsRequest,
) -> Result<DescribeSecurityGroupsResult, ControlError> {
    let ids = r.group_ids.unwrap_or_default();
    let names = r.group_names.unwrap_or_default();
    let filters = r.filters.unwrap_or_default();
    let groups = c.read(|tx| {
        for id in &ids {
            if tx.security_group_get(id)?.is_none() {
                return Err(malformed_or_missing(id));
            }
        }
        for name in &names {
            resolve(tx, None, Some(name))?;
        }
        let default_vpc = tx.vpc_default()?.map(|v| v.id);
        let rules = tx.security_group_rules_all()?;
        let mut out = Vec::new();
        for g in tx.security_groups()? {
            if !ids.is_empty() && !ids.contains(&g.id) {
                continue;
            }
            let named = names.contains(&g.name) && default_vpc.as_deref() == Some(g.vpc_id.as_str());
            if !names.is_empty() && !named {
                continue;
            }
            let tags = tx.ec2_tags_get(&g.id)?;
            let keep = filters_match(&filters, &tags, |name| match name {
                "group-id" => Some(vec![g.id.clone()]),
                "group-name" => Some(vec![g.name.clone()]),
                "vpc-id" => Some(vec![g.vpc_id.clone()]),
                "description" => Some(vec![g.description.clone()]),
                "owner-id" => Some(vec![g.owner_id.clone()]),
                _ => None,
            })?;
            if !keep {
                continue;
            }
            let own: Vec<&SecurityGroupRuleRow> = rules.iter().filter(|x| x.group_id == g.id).collect();
            let ingress: Vec<&SecurityGroupRuleRow> = own.iter().copied().filter(|x| !x.egress).collect();
            let egress: Vec<&SecurityGroupRuleRow> = own.iter().copied().filter(|x| x.egress).collect();
            out.push(SecurityGroup {
                group_id: Some(g.id.clone()),
                group_name: Some(g.name.clone()),
                description: Some(g.description.clone()),
                vpc_id: Some(g.vpc_id.clone()),
                owner_id: Some(g.owner_id.clone()),
                security_group_arn: Some(group_arn(c, &g.id)),
                ip_permissions: Some(rules::to_permissions(&ingress, &g.owner_id, &g.vpc_id)),
                ip_permissions_egress: Some(rules::to_permissions(&egress, &g.owner_id, &g.vpc_id)),
                tags: Some(tag_list(tags)),
            });
        }
        Ok(out)
    })?;
    let (page, next) = super::page(groups, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeSecurityGroupsResult { security_groups: Some(page), next_token: next })
}

fn render_rule(
    c: &Control,
    tx: &Tx<'_>,
    r: &SecurityGroupRuleRow,
    owner: &str,
) -> Result<SecurityGroupRule, ControlError> {
    let (from, to) = rules::ports(r);
    let referenced = match &r.referenced_group_id {
        Some(g) => Some(ReferencedSecurityGroup {
            group_id: Some(g.clone()),
            user_id: Some(owner.to_string()),
            vpc_id: tx.security_group_get(g)?.map(|x| x.vpc_id),
            ..Default::default()
        }),
        None => None,
    };
    Ok(SecurityGroupRule {
        security_group_rule_id: Some(r.id.clone()),
        group_id: Some(r.group_id.clone()),
        group_owner_id: Some(owner.to_string()),
        is_egress: Some(r.egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(from.unwrap_or(-1)),
        to_port: Some(to.unwrap_or(-1)),
        cidr_ipv4: r.cidr_ipv4.clone(),
        cidr_ipv6: r.cidr_ipv6.clone(),
        prefix_list_id: None,
        referenced_group_info: referenced,
        description: r.description.clone(),
        tags: Some(tag_list(tx.ec2_tags_get(&r.id)?)),
        security_group_rule_arn: Some(rule_arn(c, &r.id)),
    })
}

pub(crate) fn describe_rules(
    c: &Control,
    r: DescribeSecurityGroupRulesRequest,
) -> Result<DescribeSecurityGroupRulesResult, ControlError> {
    let ids = r.security_group_rule_ids.unwrap_or_default();
    let filters = r.filters.unwrap_or_default();
    let out = c.read(|tx| {
        let all = tx.security_group_rules_all()?;
        for id in &ids {
            if !all.iter().any(|x| &x.id == id) {
                return Err(err(
                    ErrorCode::Ec2InvalidSecurityGroupRuleIdNotFound,
                    format!("The security group rule ID '{id}' does not exist"),
                ));
            }
        }
        let mut out = Vec::new();
        for rule in &all {
            if !ids.is_empty() && !ids.contains(&rule.id) {
                continue;
            }
            let tags = tx.ec2_tags_get(&rule.id)?;
            let keep = filters_match(&filters, &tags, |name| match name {
                "group-id" => Some(vec![rule.group_id.clone()]),
                "security-group-rule-id" => Some(vec![rule.id.clone()]),
                _ => None,
            })?;
            if keep {
                out.push(render_rule(c, tx, rule, &c.names.account)?);
            }
        }
        Ok(out)
    })?;
    let (rules, next) = super::page(out, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeSecurityGroupRulesResult { security_group_rules: Some(rules), next_token: next })
}

/// The permissions a request names: its IpPermissions, or the legacy top-level members as one.
struct Legacy<'a> {
    cidr_ip: Option<&'a str>,
    protocol: Option<&'a str>,
    from: Option<i32>,
    to: Option<i32>,
    source_group_name: Option<&'a str>,
}

/// The legacy members of a request: all four Authorize/Revoke requests carry them under the same names, in
/// four distinct generated types.
macro_rules! legacy {
    ($r:expr) => {
        Legacy {
            cidr_ip: $r.cidr_ip.as_deref(),
            protocol: $r.ip_protocol.as_deref(),
            from: $r.from_port,
            to: $r.to_port,
            source_group_name: $r.source_security_group_name.as_deref(),
        }
    };
}

fn permissions(list: Option<Vec<IpPermission>>, l: Legacy<'_>) -> Result<Vec<IpPermission>, ControlError> {
    let mut out = list.unwrap_or_default();
    if l.cidr_ip.is_some() || l.source_group_name.is_some() || l.protocol.is_some() {
        if !out.is_empty() {
            return Err(err(
                ErrorCode::InvalidParameterCombination,
                "The parameter 'ipPermissions' may not be used in combination with 'cidrIp', 'ipProtocol', 'fromPort', 'toPort' or 'sourceSecurityGroupName'",
            ));
        }
        let protocol = l.protocol.map(str::to_string).or_else(|| l.source_group_name.map(|_| "-1".to_string()));
        out.push(IpPermission {
            ip_protocol: protocol,
            from_port: l.from,
            to_port: l.to,
            ip_ranges: l.cidr_ip.map(|c| vec![IpRange { cidr_ip: Some(c.to_string()), description: None }]),
            user_id_group_pairs: l
                .source_group_name
                .map(|n| vec![UserIdGroupPair { group_name: Some(n.to_string()), ..Default::default() }]),
            ..Default::default()
        });
    }
    if out.is_empty() {
        return Err(err(ErrorCode::MissingParameter, "No permissions were given: pass IpPermissions."));
    }
    Ok(out)
}

/// The normalized rules of `perms` for group `g` (group pairs resolved within the group's VPC).
fn specs(tx: &Tx<'_>, g: &SecurityGroupRow, perms: &[IpPermission]) -> Result<Vec<RuleSpec>, ControlError> {
    let mut out = Vec::new();
    for p in perms {
        let specs = rules::specs_from_permission(p, |pair| {
            let peer = match (&pair.group_id, &pair.group_name) {
                (Some(id), _) => tx.security_group_get(id)?.ok_or_else(|| malformed_or_missing(id))?,
                (None, Some(name)) => tx.security_group_by_name(&g.vpc_id, name)?.ok_or_else(|| {
                    err(
                        ErrorCode::Ec2InvalidGroupNotFound,
                        format!("The security group '{name}' does not exist in VPC '{}'", g.vpc_id),
                    )
                })?,
                (None, None) => {
                    return Err(err(ErrorCode::MissingParameter, "A UserIdGroupPair needs GroupId or GroupName."));
                }
            };
            if peer.vpc_id != g.vpc_id {
                return Err(err(
                    ErrorCode::InvalidParameterValue,
                    format!(
                        "Security group {} is in VPC {}, not in {} (no peering in berth).",
                        peer.id, peer.vpc_id, g.vpc_id
                    ),
                ));
            }
            Ok(peer.id)
        })?;
        if specs.is_empty() {
            return Err(err(
                ErrorCode::MissingParameter,
                "Each permission needs at least one of IpRanges, Ipv6Ranges or UserIdGroupPairs.",
            ));
        }
        out.extend(specs);
    }
    Ok(out)
}

fn describe_spec(s: &RuleSpec) -> String {
    let peer = match &s.peer {
        Peer::V4(c) | Peer::V6(c) => c.to_string(),
        Peer::Group(g) => g.clone(),
    };
    let proto = if s.protocol == "-1" { "ALL".to_string() } else { s.protocol.to_uppercase() };
    format!("peer: {peer}, {proto}, from port: {}, to port: {}, ALLOW", s.from_port, s.to_port)
}

/// Adds rules to a group (shared by the API and Express): duplicates are refused, as EC2 does.
pub(crate) fn authorize(
    c: &Control,
    tx: &Tx<'_>,
    g: &SecurityGroupRow,
    egress: bool,
    specs: &[RuleSpec],
    tags: &[(String, String)],
) -> Result<Vec<SecurityGroupRule>, ControlError> {
    let existing: Vec<SecurityGroupRuleRow> =
        tx.security_group_rules(&g.id)?.into_iter().filter(|x| x.egress == egress).collect();
    for (i, s) in specs.iter().enumerate() {
        if existing.iter().any(|x| s.same_as(x))
            || specs[..i].iter().any(|o| {
                o.protocol == s.protocol && o.from_port == s.from_port && o.to_port == s.to_port && o.peer == s.peer
            })
        {
            return Err(err(
                ErrorCode::Ec2InvalidPermissionDuplicate,
                format!("the specified rule \"{}\" already exists", describe_spec(s)),
            ));
        }
    }
    if existing.len() + specs.len() > MAX_RULES {
        return Err(err(
            ErrorCode::Ec2RulesPerSecurityGroupLimitExceeded,
            format!("The maximum number of rules per security group ({MAX_RULES}) has been reached."),
        ));
    }
    let mut out = Vec::new();
    for s in specs {
        let row = insert_rule(tx, &g.id, egress, s)?;
        tx.ec2_tags_put(&row.id, tags)?;
        out.push(render_rule(c, tx, &row, &g.owner_id)?);
    }
    Ok(out)
}

pub(crate) fn authorize_ingress(
    c: &Control,
    r: AuthorizeSecurityGroupIngressRequest,
) -> Result<AuthorizeSecurityGroupIngressResult, ControlError> {
    let tags = spec_tags(&r.tag_specifications, ResourceType::SecurityGroupRule)?;
    let perms = permissions(r.ip_permissions.clone(), legacy!(r))?;
    let rules = c.tx(|tx| {
        let g = resolve(tx, r.group_id.as_deref(), r.group_name.as_deref())?;
        let specs = specs(tx, &g, &perms)?;
        authorize(c, tx, &g, false, &specs, &tags)
    })?;
    Ok(AuthorizeSecurityGroupIngressResult { r#return: Some(true), security_group_rules: Some(rules) })
}

pub(crate) fn authorize_egress(
    c: &Control,
    r: AuthorizeSecurityGroupEgressRequest,
) -> Result<AuthorizeSecurityGroupEgressResult, ControlError> {
    let tags = spec_tags(&r.tag_specifications, ResourceType::SecurityGroupRule)?;
    let perms = permissions(r.ip_permissions.clone(), legacy!(r))?;
    let rules = c.tx(|tx| {
        let g = resolve(tx, r.group_id.as_deref(), None)?;
        let specs = specs(tx, &g, &perms)?;
        authorize(c, tx, &g, true, &specs, &tags)
    })?;
    Ok(AuthorizeSecurityGroupEgressResult { r#return: Some(true), security_group_rules: Some(rules) })
}

/// Removes rules named by id or by permission; every one must exist (else nothing is removed).
fn revoke(
    tx: &Tx<'_>,
    g: &SecurityGroupRow,
    egress: bool,
    rule_ids: &[String],
    perms: Option<Vec<IpPermission>>,
) -> Result<Vec<RevokedSecurityGroupRule>, ControlError> {
    let existing: Vec<SecurityGroupRuleRow> =
        tx.security_group_rules(&g.id)?.into_iter().filter(|x| x.egress == egress).collect();
    let mut doomed: Vec<SecurityGroupRuleRow> = Vec::new();
    for id in rule_ids {
        let found = existing.iter().find(|x| &x.id == id).ok_or_else(|| {
            err(
                ErrorCode::Ec2InvalidSecurityGroupRuleIdNotFound,
                format!("The security group rule ID '{id}' does not exist in group {}", g.id),
            )
        })?;
        doomed.push(found.clone());
    }
    if let Some(perms) = perms {
        for s in specs(tx, g, &perms)? {
            let found = existing.iter().find(|x| s.same_as(x)).ok_or_else(|| {
                err(
                    ErrorCode::Ec2InvalidPermissionNotFound,
                    format!("The specified rule \"{}\" does not exist in this security group.", describe_spec(&s)),
                )
            })?;
            doomed.push(found.clone());
        }
    }
    if doomed.is_empty() {
        return Err(err(ErrorCode::MissingParameter, "Give IpPermissions or SecurityGroupRuleIds to revoke."));
    }
    doomed.sort_by(|a, b| a.id.cmp(&b.id));
    doomed.dedup_by(|a, b| a.id == b.id);
    let mut out = Vec::new();
    for d in doomed {
        tx.security_group_rule_delete(&d.id)?;
        let (from, to) = rules::ports(&d);
        out.push(RevokedSecurityGroupRule {
            security_group_rule_id: Some(d.id.clone()),
            group_id: Some(d.group_id.clone()),
            is_egress: Some(d.egress),
            ip_protocol: Some(d.protocol.clone()),
            from_port: Some(from.unwrap_or(-1)),
            to_port: Some(to.unwrap_or(-1)),
            cidr_ipv4: d.cidr_ipv4.clone(),
            cidr_ipv6: d.cidr_ipv6.clone(),
            prefix_list_id: None,
            referenced_group_id: d.referenced_group_id.clone(),
            description: d.description.clone(),
        });
    }
    Ok(out)
}

fn revoke_perms(
    list: Option<Vec<IpPermission>>,
    l: Legacy<'_>,
    has_ids: bool,
) -> Result<Option<Vec<IpPermission>>, ControlError> {
    let any_legacy = l.cidr_ip.is_some() || l.protocol.is_some() || l.source_group_name.is_some();
    if has_ids && list.as_ref().is_none_or(Vec::is_empty) && !any_legacy {
        return Ok(None);
    }
    permissions(list, l).map(Some)
}

pub(crate) fn revoke_ingress(
    c: &Control,
    r: RevokeSecurityGroupIngressRequest,
) -> Result<RevokeSecurityGroupIngressResult, ControlError> {
    let ids = r.security_group_rule_ids.clone().unwrap_or_default();
    let perms = revoke_perms(r.ip_permissions.clone(), legacy!(r), !ids.is_empty())?;
    let revoked = c.tx(|tx| {
        let g = resolve(tx, r.group_id.as_deref(), r.group_name.as_deref())?;
        revoke(tx, &g, false, &ids, perms)
    })?;
    Ok(RevokeSecurityGroupIngressResult {
        r#return: Some(true),
        unknown_ip_permissions: None,
        revoked_security_group_rules: Some(revoked),
    })
}

pub(crate) fn revoke_egress(
    c: &Control,
    r: RevokeSecurityGroupEgressRequest,
) -> Result<RevokeSecurityGroupEgressResult, ControlError> {
    let ids = r.security_group_rule_ids.clone().unwrap_or_default();
    let perms = revoke_perms(r.ip_permissions.clone(), legacy!(r), !ids.is_empty())?;
    let revoked = c.tx(|tx| {
        let g = resolve(tx, r.group_id.as_deref(), None)?;
        revoke(tx, &g, true, &ids, perms)
    })?;
    Ok(RevokeSecurityGroupEgressResult {
        r#return: Some(true),
        unknown_ip_permissions: None,
        revoked_security_group_rules: Some(revoked),
    })
}
