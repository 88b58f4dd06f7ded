//! EC2: the default VPC and its subnets, security groups and their rules, and tags on EC2 ids.
//!
//! Each VPC is backed by a runtime network (the default VPC by the task network), and its CIDR is the
//! network's subnet once the runtime reports it. Security groups are records here; they become real in
//! two places: the firewall policy between task containers ([`firewall`], applied by the reconciler) and
//! the load balancer's source filter ([`rules::allowed_sources`]). Express services get their two groups
//! from `crate::express::security_groups`; which services use which groups is `attachments.rs`. Every operation
//! is authorized on the resource ARNs it names (`context.rs`).

pub(crate) mod attachments;
mod context;
pub mod firewall;
pub(crate) mod groups;
pub(crate) mod network;
pub mod rules;
pub mod subnets;

use berth_core::{AwsError, ErrorCode};
use berth_model::ec2::{Filter, Operation, Output, Tag};

use crate::{CallerIdentity, Control, ControlError, authz};

impl Control {
    /// Handles one decoded EC2 operation for an authenticated caller.
    pub async fn handle_ec2(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let name = op.name();
        if !authz::is_root(caller) {
            let authorized = context::ec2_requests(self, &op)
                .map_err(AwsError::from)
                .and_then(|requests| authz::authorize_all(caller, &format!("ec2:{name}"), requests));
            if let Err(e) = authorized {
                return crate::error::answer(berth_model::ec2::SIGNING_NAME, name, &[], Err(e));
            }
        }
        let mutates = !op.name().starts_with("Describe");
        let out = match op {
            Operation::DescribeVpcs(r) => network::describe_vpcs(self, r).map(Output::DescribeVpcs),
            Operation::DescribeSubnets(r) => network::describe_subnets(self, r).map(Output::DescribeSubnets),
            Operation::CreateSubnet(r) => subnets::create(self, r).map(Output::CreateSubnet),
            Operation::DeleteSubnet(r) => subnets::delete(self, r).map(Output::DeleteSubnet),
            Operation::ModifySubnetAttribute(r) => {
                subnets::modify_attribute(self, r).map(Output::ModifySubnetAttribute)
            }
            Operation::CreateTags(r) => network::create_tags(self, r).map(Output::CreateTags),
            Operation::DescribeTags(r) => network::describe_tags(self, r).map(Output::DescribeTags),
            Operation::CreateSecurityGroup(r) => groups::create(self, r).map(Output::CreateSecurityGroup),
            Operation::DeleteSecurityGroup(r) => groups::delete(self, r).map(Output::DeleteSecurityGroup),
            Operation::DescribeSecurityGroups(r) => groups::describe(self, r).map(Output::DescribeSecurityGroups),
            Operation::DescribeSecurityGroupRules(r) => {
                groups::describe_rules(self, r).map(Output::DescribeSecurityGroupRules)
            }
            Operation::AuthorizeSecurityGroupIngress(r) => {
                groups::authorize_ingress(self, r).map(Output::AuthorizeSecurityGroupIngress)
            }
            Operation::AuthorizeSecurityGroupEgress(r) => {
                groups::authorize_egress(self, r).map(Output::AuthorizeSecurityGroupEgress)
            }
            Operation::RevokeSecurityGroupIngress(r) => {
                groups::revoke_ingress(self, r).map(Output::RevokeSecurityGroupIngress)
            }
            Operation::RevokeSecurityGroupEgress(r) => {
                groups::revoke_egress(self, r).map(Output::RevokeSecurityGroupEgress)
            }
        };
        if out.is_ok() && mutates {
            // Rules, groups or attachments may have changed: publish the load balancers' source filters now
            // (sub-second, without waiting for a reconcile pass) and let the reconciler re-plan the firewall.
            if let Err(e) = self.publish_routes() {
                tracing::warn!(error = %e, "cannot publish routes after a security group change");
            }
            self.wake();
        }
        crate::error::answer(berth_model::ec2::SIGNING_NAME, name, &[], out.map_err(AwsError::from))
    }
}

/// The ARN of an EC2 resource: `arn:aws:ec2:<region>:<account>:<kind>/<id>`.
pub(crate) fn arn(c: &Control, kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{}:{}:{kind}/{id}", c.names.region, c.names.account)
}

/// A page of an EC2 Describe listing: `MaxResults` 5 to 1000 (default: up to 1000), `NextToken` an offset.
pub(crate) fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ControlError> {
    let size = crate::paging::size(max, 1000, 5..=1000).map_err(|m| {
        err(
            ErrorCode::InvalidParameterValue,
            format!("Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."),
        )
    })?;
    crate::paging::offset_page(items, token, size)
        .map_err(|_| err(ErrorCode::InvalidParameterValue, "Invalid NextToken"))
}

/// A new EC2 id: `<prefix>-` and 17 hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", berth_core::ids::random_hex(17))
}

pub(crate) fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError::code(code, message)
}

/// Tags in EC2's shape.
pub(crate) fn tag_list(tags: Vec<(String, String)>) -> Vec<Tag> {
    tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()
}

/// Validated tag pairs (EC2's limits: key 1..=128, value at most 256, not starting with `aws:`).
pub(crate) fn tag_pairs(tags: &[Tag]) -> Result<Vec<(String, String)>, ControlError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags {
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(err(
                ErrorCode::InvalidParameterValue,
                format!("Invalid tag '{key}': keys have 1 to 128 characters and values at most 256."),
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(err(
                ErrorCode::InvalidParameterValue,
                format!("Tag keys starting with 'aws:' are reserved: '{key}'."),
            ));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(err(ErrorCode::InvalidParameterValue, format!("Duplicate tag key '{key}'.")));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// EC2 filter value matching: `*` matches any run of characters and `?` one character.
pub(crate) fn glob(pattern: &str, value: &str) -> bool {
    use berth_core::wildcard::{Token, Wildcard};
    let tokens = pattern
        .bytes()
        .map(|b| match b {
            b'*' => Token::Star { colon: true },
            b'?' => Token::One { colon: true },
            b => Token::Byte(b),
        })
        .collect();
    Wildcard::new(tokens, false).matches(value)
}

/// Whether a resource passes every filter. `field` gives the resource's values for a filter name, or
/// `None` when the name is not a filter of this operation (an error, as EC2 answers).
pub(crate) fn filters_match(
    filters: &[Filter],
    tags: &[(String, String)],
    field: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<bool, ControlError> {
    for f in filters {
        let name = f.name.as_deref().unwrap_or_default();
        let wanted = f.values.clone().unwrap_or_default();
        let have: Vec<String> = if let Some(key) = name.strip_prefix("tag:") {
            tags.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
        } else if name == "tag-key" {
            tags.iter().map(|(k, _)| k.clone()).collect()
        } else if name == "tag-value" {
            tags.iter().map(|(_, v)| v.clone()).collect()
        } else {
            field(name)
                .ok_or_else(|| err(ErrorCode::InvalidParameterValue, format!("The filter '{name}' is invalid")))?
        };
        if !wanted.iter().any(|w| have.iter().any(|h| glob(w, h))) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_globs() {
        let cases = [
            ("sg-*", "sg-0123", true),
            ("sg-?123", "sg-0123", true),
            ("sg-?123", "sg-00123", false),
            ("default", "default", true),
            ("default", "default2", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (p, v, want) in cases {
            assert_eq!(glob(p, v), want, "{p} ~ {v}");
        }
    }

    #[test]
    fn tags_are_validated() {
        let t = |k: &str, v: &str| Tag { key: Some(k.into()), value: Some(v.into()) };
        assert!(tag_pairs(&[t("Name", "x"), t("env", "")]).is_ok());
        assert!(tag_pairs(&[t("", "x")]).is_err());
        assert!(tag_pairs(&[t("aws:x", "x")]).is_err());
        assert!(tag_pairs(&[t("a", "1"), t("a", "2")]).is_err());
        assert!(tag_pairs(&[t(&"k".repeat(129), "x")]).is_err());
    }
}
