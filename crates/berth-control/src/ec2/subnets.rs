//! Subnets users create: CreateSubnet, DeleteSubnet and ModifySubnetAttribute, and what makes a subnet
//! private.
//!
//! berth has no route tables or internet gateways, so a subnet's `MapPublicIpOnLaunch` decides: `true` (the
//! default VPC's subnets) is public, `false` (what CreateSubnet gives, as on AWS) is private. An Express
//! service whose subnets are all private gets an internal load balancer ([`Privacy::Private`]); a mix is
//! refused. A subnet is a label inside its VPC's block: every subnet's tasks join the VPC's network.

use berth_core::ErrorCode;
use berth_core::cidr::Cidr;
use berth_core::status::ServiceStatus;
use berth_model::ec2::*;
use berth_store::{SubnetRow, Tx};

use super::{err, new_id};
use crate::{Control, ControlError, now};

/// The smallest and largest subnet blocks AWS allows.
const PREFIX_RANGE: std::ops::RangeInclusive<u8> = 16..=28;

/// Whether a set of subnets is public or private (internet-facing or internal load balancer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    Public,
    Private,
}

impl Privacy {
    /// The load balancer scheme that goes with it.
    pub fn scheme(self) -> &'static str {
        match self {
            Privacy::Public => "internet-facing",
            Privacy::Private => "internal",
        }
    }
}

/// Public when every subnet maps public IPs, private when none does; a mix is refused (AWS documents no
/// behaviour for it; an Express service's load balancer is either internet-facing or internal).
pub fn privacy(subnets: &[SubnetRow]) -> Result<Privacy, ControlError> {
    let public: Vec<&str> = subnets.iter().filter(|s| s.map_public_ip).map(|s| s.id.as_str()).collect();
    let private: Vec<&str> = subnets.iter().filter(|s| !s.map_public_ip).map(|s| s.id.as_str()).collect();
    match (public.is_empty(), private.is_empty()) {
        (_, true) => Ok(Privacy::Public),
        (true, false) => Ok(Privacy::Private),
        (false, false) => Err(ControlError::invalid(format!(
            "networkConfiguration.subnets mixes public subnets ({}) and private subnets ({}); an Express service's \
             subnets must all be public (internet-facing load balancer) or all private (internal load balancer).",
            public.join(", "),
            private.join(", ")
        ))),
    }
}

/// The privacy of the subnets named in a stored network configuration (unknown subnets are ignored; none
/// known: public, the default VPC's).
pub(crate) fn privacy_of_ids(tx: &Tx<'_>, ids: &[String]) -> Result<Privacy, ControlError> {
    let mut rows = Vec::new();
    for id in ids {
        if let Some(s) = tx.subnet_get(id)? {
            rows.push(s);
        }
    }
    privacy(&rows)
}

fn parse_block(s: &str) -> Result<Cidr, ControlError> {
    s.parse().map_err(|_| {
        err(
            ErrorCode::InvalidParameterValue,
            format!("Value ({s}) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
        )
    })
}

fn overlaps(a: Cidr, b: Cidr) -> bool {
    a.contains(b.addr()) || b.contains(a.addr())
}

pub(crate) fn create(c: &Control, r: CreateSubnetRequest) -> Result<CreateSubnetResult, ControlError> {
    let vpc_id = r.vpc_id.clone().unwrap_or_default();
    if r.ipv6_native == Some(true) || r.ipv6_cidr_block.is_some() {
        return Err(err(ErrorCode::InvalidParameterValue, "IPv6 subnets are not supported by berth (IPv4 only)."));
    }
    let Some(block) = r.cidr_block.as_deref() else {
        return Err(err(ErrorCode::MissingParameter, "The request must contain the parameter cidrBlock"));
    };
    let block = parse_block(block)?;
    let tags = super::groups::spec_tags(&r.tag_specifications, ResourceType::Subnet)?;
    let subnet = c.tx(|tx| {
        let vpc = tx
            .vpc_get(&vpc_id)?
            .ok_or_else(|| err(ErrorCode::Ec2InvalidVpcIdNotFound, format!("The vpc ID '{vpc_id}' does not exist")))?;
        let vpc_block: Cidr = vpc.cidr.parse().map_err(|_| err(ErrorCode::Server, "stored VPC CIDR"))?;
        if !block.is_ipv4() || !PREFIX_RANGE.contains(&block.prefix()) || block.prefix() < vpc_block.prefix() || !vpc_block.contains(block.addr()) {
            return Err(err(ErrorCode::Ec2InvalidSubnetRange, format!("The CIDR '{block}' is invalid.")));
        }
        if let Some(other) = tx.subnets()?.into_iter().filter(|s| s.vpc_id == vpc.id).find(|s| s.cidr.parse().is_ok_and(|o| overlaps(o, block))) {
            return Err(err(ErrorCode::Ec2InvalidSubnetConflict, format!("The CIDR '{block}' conflicts with another subnet ({}).", other.id)));
        }
        let zone = r.availability_zone.clone().unwrap_or_else(|| format!("{}a", c.names.region));
        if !zone.starts_with(&c.names.region) {
            return Err(err(ErrorCode::InvalidParameterValue, format!("Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {r}a, {r}b, {r}c.", r = c.names.region)));
        }
        let row = SubnetRow {
            id: new_id("subnet"),
            vpc_id: vpc.id.clone(),
            availability_zone: zone,
            cidr: block.to_string(),
            map_public_ip: false,
            default_for_az: false,
            created_at: now(),
        };
        tx.subnet_insert(&row)?;
        if !tags.is_empty() {
            tx.ec2_tags_put(&row.id, &tags)?;
        }
        Ok(super::network::render_subnet(c, &row, tx.ec2_tags_get(&row.id)?))
    })?;
    Ok(CreateSubnetResult { subnet: Some(subnet) })
}

/// The active service whose current network configuration names `subnet`, if any.
fn user_of(tx: &Tx<'_>, subnet: &str) -> Result<Option<String>, ControlError> {
    for s in tx.services_live(None)? {
        if s.status != ServiceStatus::Active || s.target_revision.is_empty() {
            continue;
        }
        let config = crate::revisions::revision_config(tx, &s.target_revision)?;
        let uses =
            config.network_configuration.and_then(|n| n.subnets).is_some_and(|ids| ids.iter().any(|i| i == subnet));
        if uses {
            return Ok(Some(s.arn));
        }
    }
    Ok(None)
}

fn existing(tx: &Tx<'_>, id: &str) -> Result<SubnetRow, ControlError> {
    tx.subnet_get(id)?
        .ok_or_else(|| err(ErrorCode::Ec2InvalidSubnetIdNotFound, format!("The subnet ID '{id}' does not exist")))
}

pub(crate) fn delete(c: &Control, r: DeleteSubnetRequest) -> Result<(), ControlError> {
    let id = r.subnet_id.unwrap_or_default();
    c.tx(|tx| {
        existing(tx, &id)?;
        if let Some(service) = user_of(tx, &id)? {
            return Err(err(
                ErrorCode::Ec2DependencyViolation,
                format!("The subnet '{id}' has dependencies and cannot be deleted (used by service {service})."),
            ));
        }
        tx.subnet_delete(&id)?;
        Ok(())
    })
}

pub(crate) fn modify_attribute(c: &Control, r: ModifySubnetAttributeRequest) -> Result<(), ControlError> {
    let id = r.subnet_id.clone().unwrap_or_default();
    let map_public = r.map_public_ip_on_launch.as_ref().and_then(|v| v.value);
    let others = r.assign_ipv6_address_on_creation.is_some()
        || r.map_customer_owned_ip_on_launch.is_some()
        || r.enable_dns64.is_some()
        || r.enable_resource_name_dns_a_record_on_launch.is_some()
        || r.enable_resource_name_dns_aaaa_record_on_launch.is_some();
    let Some(map_public) = map_public else {
        return Err(err(
            if others { ErrorCode::InvalidParameterValue } else { ErrorCode::MissingParameter },
            if others {
                "berth supports only the MapPublicIpOnLaunch subnet attribute."
            } else {
                "The request must contain exactly one attribute to modify (MapPublicIpOnLaunch)."
            },
        ));
    };
    if others {
        return Err(err(ErrorCode::InvalidParameterCombination, "Only one attribute can be modified at a time."));
    }
    c.tx(|tx| {
        let subnet = existing(tx, &id)?;
        if subnet.map_public_ip != map_public
            && let Some(service) = user_of(tx, &id)?
        {
            // The service's load balancer scheme follows its subnets; changing it under a running service
            // would silently move its endpoint between the public and the VPC side.
            return Err(err(
                ErrorCode::Ec2DependencyViolation,
                format!(
                    "The subnet '{id}' is used by service {service}, whose load balancer scheme follows its subnets; \
                     delete the service or move it to other subnets first."
                ),
            ));
        }
        tx.subnet_set_map_public_ip(&id, map_public)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, public: bool) -> SubnetRow {
        SubnetRow {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            cidr: "10.0.0.0/24".into(),
            map_public_ip: public,
            default_for_az: false,
            created_at: 0.0,
        }
    }

    #[test]
    fn privacy_table() {
        type Case<'a> = (&'a [(&'a str, bool)], Option<Privacy>);
        let cases: &[Case<'_>] = &[
            (&[], Some(Privacy::Public)),
            (&[("a", true), ("b", true)], Some(Privacy::Public)),
            (&[("a", false)], Some(Privacy::Private)),
            (&[("a", false), ("b", false)], Some(Privacy::Private)),
            (&[("a", true), ("b", false)], None),
        ];
        for (subnets, want) in cases {
            let rows: Vec<SubnetRow> = subnets.iter().map(|(id, p)| subnet(id, *p)).collect();
            assert_eq!(privacy(&rows).ok(), *want, "{subnets:?}");
        }
        let mixed = privacy(&[subnet("subnet-pub", true), subnet("subnet-priv", false)]).expect_err("mixed");
        assert!(mixed.to_string().contains("subnet-pub") && mixed.to_string().contains("subnet-priv"), "{mixed}");
    }

    #[test]
    fn overlap_table() {
        let c = |s: &str| s.parse::<Cidr>().expect("cidr");
        assert!(overlaps(c("10.0.0.0/16"), c("10.0.1.0/24")));
        assert!(overlaps(c("10.0.1.0/24"), c("10.0.0.0/16")));
        assert!(!overlaps(c("10.0.0.0/24"), c("10.0.1.0/24")));
    }
}
