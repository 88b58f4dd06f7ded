//! VPCs, subnets and tags: the default VPC created at first start, its CIDR kept equal to its network's
//! subnet, DescribeVpcs, DescribeSubnets, CreateTags and DescribeTags.

use std::net::IpAddr;

use berth_core::ErrorCode;
use berth_core::cidr::Cidr;
use berth_model::ec2::*;
use berth_store::{SecurityGroupRow, SubnetRow, Tx, VpcRow};

use super::{err, filters_match, new_id, tag_list, tag_pairs};
use crate::{Control, ControlError, now};

/// The default VPC's CIDR until the runtime reports its network's subnet (AWS's default-VPC block).
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// One default subnet per availability-zone slot, as AWS's default VPC has.
const DEFAULT_ZONES: &[&str] = &["a", "b", "c"];
const SUBNET_PREFIX: u8 = 20;

/// The default subnets' blocks carved from `vpc` (/20s, or halves of smaller VPCs).
fn default_subnet_cidrs(vpc: Cidr) -> Vec<Cidr> {
    let prefix = if vpc.prefix() <= SUBNET_PREFIX - 2 { SUBNET_PREFIX } else { (vpc.prefix() + 2).min(32) };
    (0..DEFAULT_ZONES.len() as u32).filter_map(|i| vpc.subnet(prefix, i)).collect()
}

/// Creates the default VPC, its subnets and its `default` security group unless they exist. Idempotent.
pub(crate) fn ensure_default_vpc(c: &Control, tx: &Tx<'_>) -> Result<(), ControlError> {
    let t = now();
    let vpc = match tx.vpc_default()? {
        Some(v) => v,
        None => {
            let v = VpcRow {
                id: new_id("vpc"),
                cidr: DEFAULT_VPC_CIDR.into(),
                is_default: true,
                network: c.config.network.clone(),
                created_at: t,
            };
            tx.vpc_insert(&v)?;
            let cidr: Cidr = v.cidr.parse().map_err(|_| err(ErrorCode::Server, "default VPC CIDR"))?;
            for (zone, block) in DEFAULT_ZONES.iter().zip(default_subnet_cidrs(cidr)) {
                tx.subnet_insert(&SubnetRow {
                    id: new_id("subnet"),
                    vpc_id: v.id.clone(),
                    availability_zone: format!("{}{zone}", c.names.region),
                    cidr: block.to_string(),
                    map_public_ip: true,
                    default_for_az: true,
                    created_at: t,
                })?;
            }
            v
        }
    };
    if tx.security_group_by_name(&vpc.id, "default")?.is_none() {
        let g = SecurityGroupRow {
            id: new_id("sg"),
            vpc_id: vpc.id.clone(),
            name: "default".into(),
            description: "default VPC security group".into(),
            owner_id: c.names.account.clone(),
            created_at: t,
        };
        tx.security_group_insert(&g)?;
        // AWS's default group: members may reach each other; all outbound traffic is allowed.
        super::groups::insert_rule(
            tx,
            &g.id,
            false,
            &super::rules::RuleSpec {
                protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                peer: super::rules::Peer::Group(g.id.clone()),
                description: None,
            },
        )?;
        super::groups::insert_default_egress(tx, &g.id)?;
    }
    Ok(())
}

/// Makes the VPC backed by `network` report the network's subnet as its CIDR, and re-carves its default
/// subnets from it. Returns whether anything changed.
pub(crate) fn adopt_network_subnet(tx: &Tx<'_>, network: &str, subnet: Cidr) -> Result<bool, ControlError> {
    let Some(vpc) = tx.vpcs()?.into_iter().find(|v| v.network == network) else {
        return Ok(false);
    };
    if vpc.cidr == subnet.to_string() {
        return Ok(false);
    }
    tracing::info!(vpc = %vpc.id, from = %vpc.cidr, to = %subnet, "the VPC takes its network's subnet as its CIDR");
    tx.vpc_set_cidr(&vpc.id, &subnet.to_string())?;
    let subnets: Vec<SubnetRow> =
        tx.subnets()?.into_iter().filter(|s| s.vpc_id == vpc.id && s.default_for_az).collect();
    for (s, block) in subnets.iter().zip(default_subnet_cidrs(subnet)) {
        tx.subnet_set_cidr(&s.id, &block.to_string())?;
    }
    Ok(true)
}

pub(crate) fn describe_vpcs(c: &Control, r: DescribeVpcsRequest) -> Result<DescribeVpcsResult, ControlError> {
    let ids = r.vpc_ids.unwrap_or_default();
    let filters = r.filters.unwrap_or_default();
    let vpcs = c.read(|tx| {
        let all = tx.vpcs()?;
        for id in &ids {
            if !all.iter().any(|v| &v.id == id) {
                return Err(err(ErrorCode::Ec2InvalidVpcIdNotFound, format!("The vpc ID '{id}' does not exist")));
            }
        }
        let mut out = Vec::new();
        for v in all {
            if !ids.is_empty() && !ids.contains(&v.id) {
                continue;
            }
            let tags = tx.ec2_tags_get(&v.id)?;
            let keep = filters_match(&filters, &tags, |name| match name {
                "vpc-id" => Some(vec![v.id.clone()]),
                "cidr" | "cidr-block-association.cidr-block" => Some(vec![v.cidr.clone()]),
                "is-default" | "isDefault" => Some(vec![v.is_default.to_string()]),
                "state" => Some(vec!["available".into()]),
                "owner-id" => Some(vec![c.names.account.clone()]),
                _ => None,
            })?;
            if keep {
                out.push(render_vpc(c, &v, tags));
            }
        }
        Ok(out)
    })?;
    let (page, next) = super::page(vpcs, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeVpcsResult { vpcs: Some(page), next_token: next })
}

fn render_vpc(c: &Control, v: &VpcRow, tags: Vec<(String, String)>) -> Vpc {
    Vpc {
        vpc_id: Some(v.id.clone()),
        owner_id: Some(c.names.account.clone()),
        cidr_block: Some(v.cidr.clone()),
        is_default: Some(v.is_default),
        state: Some(VpcState::Available),
        instance_tenancy: Some(Tenancy::Default),
        dhcp_options_id: Some("default".into()),
        cidr_block_association_set: Some(vec![VpcCidrBlockAssociation {
            association_id: Some(format!("vpc-cidr-assoc-{}", v.id.trim_start_matches("vpc-"))),
            cidr_block: Some(v.cidr.clone()),
            cidr_block_state: Some(VpcCidrBlockState {
                state: Some(VpcCidrBlockStateCode::Associated),
                status_message: None,
            }),
        }]),
        tags: Some(tag_list(tags)),
        ..Default::default()
    }
}

pub(crate) fn describe_subnets(c: &Control, r: DescribeSubnetsRequest) -> Result<DescribeSubnetsResult, ControlError> {
    let ids = r.subnet_ids.unwrap_or_default();
    let filters = r.filters.unwrap_or_default();
    let subnets = c.read(|tx| {
        let all = tx.subnets()?;
        for id in &ids {
            if !all.iter().any(|s| &s.id == id) {
                return Err(err(ErrorCode::Ec2InvalidSubnetIdNotFound, format!("The subnet ID '{id}' does not exist")));
            }
        }
        let mut out = Vec::new();
        for s in all {
            if !ids.is_empty() && !ids.contains(&s.id) {
                continue;
            }
            let tags = tx.ec2_tags_get(&s.id)?;
            let keep = filters_match(&filters, &tags, |name| match name {
                "subnet-id" => Some(vec![s.id.clone()]),
                "vpc-id" => Some(vec![s.vpc_id.clone()]),
                "availability-zone" | "availabilityZone" => Some(vec![s.availability_zone.clone()]),
                "cidr-block" | "cidr" | "cidrBlock" => Some(vec![s.cidr.clone()]),
                "default-for-az" | "defaultForAz" => Some(vec![s.default_for_az.to_string()]),
                "map-public-ip-on-launch" => Some(vec![s.map_public_ip.to_string()]),
                "state" => Some(vec!["available".into()]),
                "owner-id" => Some(vec![c.names.account.clone()]),
                _ => None,
            })?;
            if keep {
                out.push(render_subnet(c, &s, tags));
            }
        }
        Ok(out)
    })?;
    let (page, next) = super::page(subnets, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeSubnetsResult { subnets: Some(page), next_token: next })
}

pub(super) fn render_subnet(c: &Control, s: &SubnetRow, tags: Vec<(String, String)>) -> Subnet {
    let free = s.cidr.parse::<Cidr>().map(|n| (1i64 << (32 - u32::from(n.prefix().min(32)))) - 5).unwrap_or(0);
    Subnet {
        subnet_id: Some(s.id.clone()),
        vpc_id: Some(s.vpc_id.clone()),
        owner_id: Some(c.names.account.clone()),
        subnet_arn: Some(super::arn(c, "subnet", &s.id)),
        availability_zone: Some(s.availability_zone.clone()),
        cidr_block: Some(s.cidr.clone()),
        available_ip_address_count: Some(i32::try_from(free.max(0)).unwrap_or(i32::MAX)),
        default_for_az: Some(s.default_for_az),
        map_public_ip_on_launch: Some(s.map_public_ip),
        state: Some(SubnetState::Available),
        assign_ipv6_address_on_creation: Some(false),
        ipv6_native: Some(false),
        tags: Some(tag_list(tags)),
        ..Default::default()
    }
}

/// The resource type of an EC2 id, by its prefix.
fn resource_type(id: &str) -> Option<ResourceType> {
    match id.split_once('-').map(|(p, _)| p) {
        Some("vpc") => Some(ResourceType::Vpc),
        Some("subnet") => Some(ResourceType::Subnet),
        Some("sg") => Some(ResourceType::SecurityGroup),
        Some("sgr") => Some(ResourceType::SecurityGroupRule),
        _ => None,
    }
}

/// Whether `id` names an existing resource.
fn resource_exists(tx: &Tx<'_>, id: &str) -> Result<bool, ControlError> {
    Ok(match resource_type(id) {
        Some(ResourceType::Vpc) => tx.vpc_get(id)?.is_some(),
        Some(ResourceType::Subnet) => tx.subnet_get(id)?.is_some(),
        Some(ResourceType::SecurityGroup) => tx.security_group_get(id)?.is_some(),
        Some(ResourceType::SecurityGroupRule) => tx.security_group_rules_all()?.iter().any(|r| r.id == id),
        _ => false,
    })
}

pub(crate) fn create_tags(c: &Control, r: CreateTagsRequest) -> Result<(), ControlError> {
    let resources = r.resources.unwrap_or_default();
    let tags = tag_pairs(&r.tags.unwrap_or_default())?;
    if resources.is_empty() {
        return Err(err(ErrorCode::MissingParameter, "The request must contain the parameter resourceIdSet"));
    }
    c.tx(|tx| {
        for id in &resources {
            if resource_type(id).is_none() {
                return Err(err(ErrorCode::Ec2InvalidId, format!("The ID '{id}' is not valid")));
            }
            if !resource_exists(tx, id)? {
                let code = match resource_type(id) {
                    Some(ResourceType::Vpc) => ErrorCode::Ec2InvalidVpcIdNotFound,
                    Some(ResourceType::Subnet) => ErrorCode::Ec2InvalidSubnetIdNotFound,
                    Some(ResourceType::SecurityGroupRule) => ErrorCode::Ec2InvalidSecurityGroupRuleIdNotFound,
                    _ => ErrorCode::Ec2InvalidGroupNotFound,
                };
                return Err(err(code, format!("The ID '{id}' does not exist")));
            }
            if tx.ec2_tags_get(id)?.len() + tags.len() > 50 {
                return Err(err(ErrorCode::InvalidParameterValue, format!("'{id}' would have more than 50 tags.")));
            }
            tx.ec2_tags_put(id, &tags)?;
        }
        Ok(())
    })
}

pub(crate) fn describe_tags(c: &Control, r: DescribeTagsRequest) -> Result<DescribeTagsResult, ControlError> {
    let filters = r.filters.unwrap_or_default();
    let all = c.read(|tx| Ok(tx.ec2_tags_all()?))?;
    let mut out = Vec::new();
    for (id, key, value) in all {
        let rtype = resource_type(&id);
        let keep = filters_match(&filters, &[], |name| match name {
            "resource-id" => Some(vec![id.clone()]),
            "resource-type" => Some(rtype.iter().map(|t| t.as_str().to_string()).collect()),
            "key" => Some(vec![key.clone()]),
            "value" => Some(vec![value.clone()]),
            _ => None,
        })?;
        if keep {
            out.push(TagDescription {
                resource_id: Some(id),
                resource_type: rtype,
                key: Some(key),
                value: Some(value),
            });
        }
    }
    let (page, next) = super::page(out, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeTagsResult { tags: Some(page), next_token: next })
}

/// Pagination for lists that allow up to 1,000 items a page.
/// The meta key holding the gateway address of a runtime network.
pub(crate) fn gateway_key(network: &str) -> String {
    format!("network_gateway:{network}")
}

/// Records the gateway address the runtime reports for `network`. Returns whether it changed.
pub(crate) fn record_gateway(tx: &Tx<'_>, network: &str, gateway: IpAddr) -> Result<bool, ControlError> {
    let key = gateway_key(network);
    let value = gateway.to_string();
    if tx.meta_get(&key)?.as_deref() == Some(value.as_str()) {
        return Ok(false);
    }
    tx.meta_set(&key, &value)?;
    Ok(true)
}

pub(crate) fn default_vpc(tx: &Tx<'_>) -> Result<String, ControlError> {
    Ok(tx.vpc_default()?.map(|v| v.id).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_subnets_follow_the_vpc_block() {
        let show = |c: &str| {
            default_subnet_cidrs(c.parse().expect("cidr")).iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(show("172.31.0.0/16"), ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]);
        assert_eq!(show("172.18.0.0/16"), ["172.18.0.0/20", "172.18.16.0/20", "172.18.32.0/20"]);
        assert_eq!(show("10.0.0.0/24"), ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26"]);
    }
}
