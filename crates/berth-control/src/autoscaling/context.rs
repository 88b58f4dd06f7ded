//! The request contexts an Application Auto Scaling operation is authorized with, as AWS's Service Authorization
//! Reference lists them: the scalable target's ARN (`scalable-target/<id>`, with its tags as
//! `aws:ResourceTag/...`) for the operations on a registered target, `*` for a target not registered yet and for
//! the Describe operations without a resource; the request's tags (`aws:RequestTag/...`, `aws:TagKeys`) where it
//! carries some; and `application-autoscaling:service-namespace` / `application-autoscaling:scalable-dimension`.

use berth_iam::RequestContext;
use berth_model::application_autoscaling::{Operation, ScalableDimension, ServiceNamespace};

use super::{DIMENSION, NAMESPACE};
use crate::{Control, ControlError};

/// The contexts `application-autoscaling:<Op>` is authorized with.
pub(crate) fn requests(c: &Control, op: &Operation) -> Result<Vec<RequestContext>, ControlError> {
    use Operation as O;
    let action = format!("application-autoscaling:{}", op.name());
    let keyed = |mut r: RequestContext, ns: Option<ServiceNamespace>, dim: Option<ScalableDimension>| {
        if let Some(ns) = ns {
            r = r.with_key("application-autoscaling:service-namespace", ns.as_str());
        }
        if let Some(d) = dim {
            r = r.with_key("application-autoscaling:scalable-dimension", d.as_str());
        }
        r
    };
    // A registered target is named by its ARN with its tags; anything else by `*`.
    let target = |resource_id: &Option<String>| -> Result<RequestContext, ControlError> {
        let rid = resource_id.clone().unwrap_or_default();
        c.read(|tx| match tx.scalable_target_get(NAMESPACE, &rid, DIMENSION)? {
            Some(t) => {
                let tags = tx.tags_get(&t.arn)?;
                Ok(RequestContext::new(action.clone(), t.arn)
                    .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            }
            None => Ok(RequestContext::new(action.clone(), "*")),
        })
    };
    let by_arn = |arn: &Option<String>| -> Result<RequestContext, ControlError> {
        let arn = arn.clone().unwrap_or_default();
        let tags = c.read(|tx| Ok(tx.tags_get(&arn)?))?;
        Ok(RequestContext::new(action.clone(), arn)
            .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    };
    let request_tags = |r: RequestContext, tags: &Option<std::collections::BTreeMap<String, String>>| match tags {
        Some(t) if !t.is_empty() => r.with_request_tags(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        _ => r,
    };
    Ok(vec![match op {
        O::RegisterScalableTarget(r) => {
            request_tags(keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension), &r.tags)
        }
        O::DeregisterScalableTarget(r) => keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension),
        O::PutScalingPolicy(r) => keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension),
        O::DeleteScalingPolicy(r) => keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension),
        O::PutScheduledAction(r) => keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension),
        O::DeleteScheduledAction(r) => keyed(target(&r.resource_id)?, r.service_namespace, r.scalable_dimension),
        O::DescribeScalableTargets(r) => keyed(RequestContext::new(action.clone(), "*"), r.service_namespace, None),
        O::DescribeScalingPolicies(r) => keyed(RequestContext::new(action.clone(), "*"), r.service_namespace, None),
        O::DescribeScalingActivities(r) => keyed(RequestContext::new(action.clone(), "*"), r.service_namespace, None),
        O::DescribeScheduledActions(r) => keyed(RequestContext::new(action.clone(), "*"), r.service_namespace, None),
        O::TagResource(r) => request_tags(by_arn(&r.resource_arn)?, &r.tags),
        O::UntagResource(r) => {
            by_arn(&r.resource_arn)?.with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default())
        }
        O::ListTagsForResource(r) => by_arn(&r.resource_arn)?,
    }])
}
