//! The request contexts an EC2 operation is authorized with, as AWS's Service Authorization Reference lists
//! them: the ARN of each resource the request acts on (`security-group/<id>` for the group operations,
//! `subnet/<id>`, `vpc/<id>`) with its tags as `aws:ResourceTag/...` and `ec2:ResourceTag/...`, `ec2:Vpc` on a
//! security group, and `aws:RequestTag/...` / `aws:TagKeys` where tags come with the request. A create is
//! authorized on the VPC it goes into and on the new resource's type (`security-group/*`, `subnet/*`) with the
//! request's tags. The Describe operations take no resource-level permissions (resource `*`).

use berth_iam::RequestContext;
use berth_model::ec2::{Operation, ResourceType, Tag, TagSpecification};

use super::{arn, groups};
use crate::{Control, ControlError, authz};

/// One context per resource `ec2:<Op>` acts on (all must be allowed).
pub(crate) fn ec2_requests(c: &Control, op: &Operation) -> Result<Vec<RequestContext>, ControlError> {
    use Operation as O;
    let action = format!("ec2:{}", op.name());
    c.read(|tx| {
        let on = |kind: &str, id: &str| -> Result<RequestContext, ControlError> {
            let tags = tx.ec2_tags_get(id)?;
            let mut request = RequestContext::new(action.clone(), arn(c, kind, id))
                .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for (k, v) in &tags {
                request = request.with_key(&format!("ec2:ResourceTag/{k}"), v.clone());
            }
            Ok(request)
        };
        let group = |id: Option<&str>, name: Option<&str>| -> Result<RequestContext, ControlError> {
            match groups::resolve(tx, id, name) {
                Ok(g) => Ok(on("security-group", &g.id)?.with_key("ec2:Vpc", arn(c, "vpc", &g.vpc_id))),
                // Unknown groups are authorized on the id or name given; the operation then reports them missing.
                Err(_) => on("security-group", id.or(name).unwrap_or_default()),
            }
        };
        let create = |kind: &str, vpc: Option<&str>, specs: &Option<Vec<TagSpecification>>, rt: ResourceType| {
            let vpc = match vpc {
                Some(v) => v.to_string(),
                None => super::network::default_vpc(tx)?,
            };
            let tags =
                specs.iter().flatten().filter(|s| s.resource_type == Some(rt)).flat_map(|s| s.tags.iter().flatten());
            let new = authz::with_request_tags(
                RequestContext::new(action.clone(), arn(c, kind, "*")),
                tags.map(|t| (&t.key, &t.value)),
            );
            Ok::<_, ControlError>(vec![on("vpc", &vpc)?, new])
        };
        let tagged =
            |ids: &Option<Vec<String>>, tags: &Option<Vec<Tag>>| -> Result<Vec<RequestContext>, ControlError> {
                ids.iter()
                    .flatten()
                    .map(|id| {
                        Ok(authz::with_request_tags(
                            on(kind_of(id), id)?,
                            tags.iter().flatten().map(|t| (&t.key, &t.value)),
                        ))
                    })
                    .collect()
            };
        Ok(match op {
            O::CreateSubnet(r) => create("subnet", r.vpc_id.as_deref(), &r.tag_specifications, ResourceType::Subnet)?,
            O::DeleteSubnet(r) => vec![on("subnet", r.subnet_id.as_deref().unwrap_or_default())?],
            O::ModifySubnetAttribute(r) => vec![on("subnet", r.subnet_id.as_deref().unwrap_or_default())?],
            O::CreateTags(r) => tagged(&r.resources, &r.tags)?,
            O::CreateSecurityGroup(r) => {
                create("security-group", r.vpc_id.as_deref(), &r.tag_specifications, ResourceType::SecurityGroup)?
            }
            O::DeleteSecurityGroup(r) => vec![group(r.group_id.as_deref(), r.group_name.as_deref())?],
            O::AuthorizeSecurityGroupIngress(r) => vec![group(r.group_id.as_deref(), r.group_name.as_deref())?],
            O::AuthorizeSecurityGroupEgress(r) => vec![group(r.group_id.as_deref(), None)?],
            O::RevokeSecurityGroupIngress(r) => vec![group(r.group_id.as_deref(), r.group_name.as_deref())?],
            O::RevokeSecurityGroupEgress(r) => vec![group(r.group_id.as_deref(), None)?],
            O::DescribeVpcs(_)
            | O::DescribeSubnets(_)
            | O::DescribeTags(_)
            | O::DescribeSecurityGroups(_)
            | O::DescribeSecurityGroupRules(_) => vec![RequestContext::new(action.clone(), "*")],
        })
    })
}

/// The ARN resource type of an EC2 id, by its prefix.
fn kind_of(id: &str) -> &'static str {
    match id.split_once('-').map(|(p, _)| p) {
        Some("sg") => "security-group",
        Some("subnet") => "subnet",
        Some("vpc") => "vpc",
        Some("sgr") => "security-group-rule",
        _ => "*",
    }
}
