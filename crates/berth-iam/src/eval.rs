//! The decision: explicit deny wins, then any allow, else the implicit (default) deny.
//!
//! This is the single-account part of the IAM User Guide's reference_policies_evaluation-logic.html ("Determining
//! whether a request is allowed or denied within an account"): "By default, all requests are implicitly denied";
//! "An explicit allow in an identity-based or resource-based policy overrides this default"; "An explicit deny in
//! any policy overrides any allows". Identity, resource-based and trust policies are all statements here; a
//! statement that names a `Principal`/`NotPrincipal` also has to match the request's principal. Permissions
//! boundaries, session policies, SCPs and cross-account rules are not modelled.

use crate::condition;
use crate::context::{AwsPrincipal, Principal, RequestContext};
use crate::pattern::{Mode, Pattern, action_matches};
use crate::policy::{ActionBlock, Effect, Policy, PrincipalBlock, PrincipalSet, ResourceBlock, Statement, Version};

/// The outcome of evaluating a request against a set of policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some statement allows it and none denies it.
    Allow,
    /// A `Deny` statement applies; `sid` is its `Sid`, if it has one.
    ExplicitDeny { sid: Option<String> },
    /// Nothing allows it.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Evaluate `request` against every statement of every policy.
pub fn evaluate(request: &RequestContext, policies: &[&Policy]) -> Decision {
    let mut allowed = false;
    for policy in policies {
        for stmt in &policy.statements {
            if !statement_applies(stmt, policy.version, request) {
                continue;
            }
            match stmt.effect {
                Effect::Deny => return Decision::ExplicitDeny { sid: stmt.sid.clone() },
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

/// Does the statement apply to the request (action, resource, principal and every condition match)?
pub fn statement_applies(stmt: &Statement, version: Version, request: &RequestContext) -> bool {
    let vars = (version == Version::V2012_10_17).then_some(request);
    let action_ok = match &stmt.action {
        ActionBlock::Action(list) => list.iter().any(|p| action_matches(p, &request.action)),
        ActionBlock::NotAction(list) => !list.iter().any(|p| action_matches(p, &request.action)),
    };
    if !action_ok {
        return false;
    }
    let resource_hit = |p: &String| {
        p == "*" || Pattern::compile(p, vars, Mode::Arn, false).is_some_and(|pat| pat.matches(&request.resource))
    };
    let resource_ok = match &stmt.resource {
        None => true,
        Some(ResourceBlock::Resource(list)) => list.iter().any(resource_hit),
        Some(ResourceBlock::NotResource(list)) => !list.iter().any(resource_hit),
    };
    if !resource_ok {
        return false;
    }
    let principal_ok = match &stmt.principal {
        None => true,
        Some(PrincipalBlock::Principal(set)) => principal_matches(set, request.principal.as_ref()),
        Some(PrincipalBlock::NotPrincipal(set)) => !principal_matches(set, request.principal.as_ref()),
    };
    principal_ok && stmt.conditions.iter().all(|c| condition::holds(c, request, vars))
}

/// Does a `Principal` element name this principal? See reference_policies_elements_principal.html: an account
/// (`"123456789012"` or `arn:aws:iam::123456789012:root`) stands for every identity in it; a role ARN matches
/// the role's sessions; an assumed-role session ARN matches that session; `"*"` (or `{"AWS": "*"}`) matches
/// everyone, anonymous callers included.
pub fn principal_matches(set: &PrincipalSet, principal: Option<&Principal>) -> bool {
    if set.everyone || set.aws.iter().any(|a| a == "*") {
        return true;
    }
    match principal {
        None | Some(Principal::Anonymous) => false,
        Some(Principal::Aws(p)) => set.aws.iter().any(|v| aws_principal_matches(v, p)),
        Some(Principal::Service(s)) => set.service.iter().any(|v| v.eq_ignore_ascii_case(s)),
        Some(Principal::Federated(f)) => set.federated.iter().any(|v| v == f),
    }
}

fn aws_principal_matches(value: &str, p: &AwsPrincipal) -> bool {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value == p.account;
    }
    if value == p.arn || p.session_arn.as_deref() == Some(value) {
        return true;
    }
    value.parse::<berth_core::Arn>().is_ok_and(|a| a.service == "iam" && a.resource == "root" && a.account == p.account)
}

/// May `principal` call `sts:AssumeRole` on the role with this trust policy? Conditions in the trust policy
/// see only the keys that follow from the principal; use [`evaluate`] with a full context (e.g. `sts:ExternalId`,
/// `aws:SourceAccount`) when the caller has more.
pub fn trust_allows(trust: &Policy, role_arn: &str, principal: &Principal) -> Decision {
    let request = RequestContext::new("sts:AssumeRole", role_arn).with_principal(principal.clone());
    evaluate(&request, &[trust])
}

/// The `AccessDenied` message AWS gives for a denied request, e.g. `User: arn:aws:sts::123456789012:assumed-role/
/// infra/ECSGateway is not authorized to perform: ec2:DescribeAccountAttributes because no identity-based policy
/// allows the ec2:DescribeAccountAttributes action`. `caller` is the calling identity's ARN (the session ARN for
/// a role session). `None` when the decision is `Allow`.
pub fn access_denied_message(caller: &str, request: &RequestContext, decision: &Decision) -> Option<String> {
    let on = if request.resource == "*" { String::new() } else { format!(" on resource: {}", request.resource) };
    let why = match decision {
        Decision::Allow => return None,
        Decision::ImplicitDeny => format!("because no identity-based policy allows the {} action", request.action),
        Decision::ExplicitDeny { .. } => "with an explicit deny in an identity-based policy".to_owned(),
    };
    Some(format!("User: {caller} is not authorized to perform: {}{on} {why}", request.action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_messages_read_like_aws() {
        let caller = "arn:aws:sts::123456789012:assumed-role/infra/ECSGateway";
        let req = RequestContext::new("ec2:DescribeAccountAttributes", "*");
        assert_eq!(
            access_denied_message(caller, &req, &Decision::ImplicitDeny).as_deref(),
            Some(
                "User: arn:aws:sts::123456789012:assumed-role/infra/ECSGateway is not authorized to perform: \
                 ec2:DescribeAccountAttributes because no identity-based policy allows the \
                 ec2:DescribeAccountAttributes action"
            )
        );
        let req = RequestContext::new("ecs:DeleteService", "arn:aws:ecs:us-east-1:123456789012:service/default/web");
        assert_eq!(
            access_denied_message(caller, &req, &Decision::ExplicitDeny { sid: None }).as_deref(),
            Some(
                "User: arn:aws:sts::123456789012:assumed-role/infra/ECSGateway is not authorized to perform: \
                 ecs:DeleteService on resource: arn:aws:ecs:us-east-1:123456789012:service/default/web with an \
                 explicit deny in an identity-based policy"
            )
        );
        assert_eq!(access_denied_message(caller, &req, &Decision::Allow), None);
    }
}
