//! The request context of an ECS operation: the resource it acts on and the tags that come with it, so identity
//! policies can scope ECS permissions to services and clusters (`Resource`, `aws:ResourceTag/...`,
//! `aws:RequestTag/...`, `aws:TagKeys`). Operations not listed here are checked on resource `*`.

use berth_iam::RequestContext;
use berth_model::ecs::Operation;

use crate::names::cluster_name;
use crate::{Control, ControlError};

/// The context `ecs:<Op>` is authorized with.
pub(crate) fn ecs_request(c: &Control, op: &Operation) -> Result<RequestContext, ControlError> {
    let action = format!("ecs:{}", op.name());
    let pairs = |tags: &Option<Vec<berth_model::ecs::Tag>>| -> Vec<(String, String)> {
        tags.iter()
            .flatten()
            .map(|t| (t.key.clone().unwrap_or_default(), t.value.clone().unwrap_or_default()))
            .collect()
    };
    let on_existing = |arn: &str| -> Result<RequestContext, ControlError> {
        let tags = c.read(|tx| Ok(tx.tags_get(arn)?))?;
        Ok(RequestContext::new(action.clone(), arn)
            .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    };
    Ok(match op {
        Operation::CreateExpressGatewayService(r) => {
            let cluster = cluster_name(r.cluster.as_deref());
            let name = r.service_name.clone().unwrap_or_else(|| {
                berth_core::ids::service_name_from_image(
                    r.primary_container.as_ref().and_then(|p| p.image.as_deref()).unwrap_or("service"),
                )
            });
            let tags = pairs(&r.tags);
            RequestContext::new(action, c.names.service(&cluster, &name))
                .with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
        Operation::DescribeExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::UpdateExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::DeleteExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::DeleteCluster(r) => on_existing(&c.names.cluster(&cluster_name(r.cluster.as_deref())))?,
        Operation::ListTagsForResource(r) => on_existing(r.resource_arn.as_deref().unwrap_or_default())?,
        Operation::TagResource(r) => {
            let tags = pairs(&r.tags);
            on_existing(r.resource_arn.as_deref().unwrap_or_default())?
                .with_request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
        Operation::UntagResource(r) => on_existing(r.resource_arn.as_deref().unwrap_or_default())?
            .with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default()),
        _ => RequestContext::new(action, "*"),
    })
}
