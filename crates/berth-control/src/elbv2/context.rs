//! The request contexts an ELBv2 operation is authorized with, as AWS's Service Authorization Reference lists
//! them: the ARN of each resource the request names (a rule for ModifyRule, a target group for
//! RegisterTargets, ...) with its tags as `aws:ResourceTag/...` and `elasticloadbalancing:ResourceTag/...`, and
//! `aws:RequestTag/...` / `aws:TagKeys` where tags come with the request. The Describe operations take no
//! resource-level permissions (resource `*`). A rule is created on its listener's ARN.

use berth_iam::RequestContext;
use berth_model::elbv2::{Operation, Tag};

use crate::{Control, ControlError, authz};

/// One context per resource `elasticloadbalancing:<Op>` acts on (all must be allowed).
pub(crate) fn elbv2_requests(c: &Control, op: &Operation) -> Result<Vec<RequestContext>, ControlError> {
    use Operation as O;
    let action = format!("elasticloadbalancing:{}", op.name());
    let on = |arn: Option<&String>| -> Result<RequestContext, ControlError> {
        let arn = arn.map(String::as_str).unwrap_or_default();
        let tags = c.read(|tx| Ok(tx.tags_get(arn)?))?;
        let resource_tags = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut request = RequestContext::new(action.clone(), arn).with_resource_tags(resource_tags);
        for (k, v) in &tags {
            request = request.with_key(&format!("elasticloadbalancing:ResourceTag/{k}"), v.clone());
        }
        Ok(request)
    };
    let request_tags = |request: RequestContext, tags: &Option<Vec<Tag>>| {
        authz::with_request_tags(request, tags.iter().flatten().map(|t| (&t.key, &t.value)))
    };
    Ok(match op {
        O::CreateRule(r) => vec![request_tags(on(r.listener_arn.as_ref())?, &r.tags)],
        O::ModifyRule(r) => vec![on(r.rule_arn.as_ref())?],
        O::DeleteRule(r) => vec![on(r.rule_arn.as_ref())?],
        O::SetRulePriorities(r) => {
            r.rule_priorities.iter().flatten().map(|p| on(p.rule_arn.as_ref())).collect::<Result<_, _>>()?
        }
        O::ModifyTargetGroup(r) => vec![on(r.target_group_arn.as_ref())?],
        O::ModifyTargetGroupAttributes(r) => vec![on(r.target_group_arn.as_ref())?],
        O::RegisterTargets(r) => vec![on(r.target_group_arn.as_ref())?],
        O::DeregisterTargets(r) => vec![on(r.target_group_arn.as_ref())?],
        O::ModifyLoadBalancerAttributes(r) => vec![on(r.load_balancer_arn.as_ref())?],
        O::AddTags(r) => r
            .resource_arns
            .iter()
            .flatten()
            .map(|arn| Ok(request_tags(on(Some(arn))?, &r.tags)))
            .collect::<Result<_, ControlError>>()?,
        O::RemoveTags(r) => r
            .resource_arns
            .iter()
            .flatten()
            .map(|arn| Ok(on(Some(arn))?.with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default())))
            .collect::<Result<_, ControlError>>()?,
        O::DescribeLoadBalancers(_)
        | O::DescribeListeners(_)
        | O::DescribeRules(_)
        | O::DescribeTargetGroups(_)
        | O::DescribeTargetGroupAttributes(_)
        | O::DescribeLoadBalancerAttributes(_)
        | O::DescribeTargetHealth(_)
        | O::DescribeListenerCertificates(_)
        | O::DescribeTags(_) => vec![RequestContext::new(action, "*")],
    })
}
