//! Tags on clusters, services, tasks and task definitions.

use berth_core::{Arn, ErrorCode};
use berth_model::ecs::*;
use berth_store::Tx;

use super::render;
use crate::{Control, ControlError};

/// ECS allows at most 50 tags per resource.
const MAX_TAGS: usize = 50;

pub(crate) fn tag(c: &Control, r: TagResourceRequest) -> Result<TagResourceResponse, ControlError> {
    let arn = r.resource_arn.unwrap_or_default();
    let tags = tag_pairs(r.tags.unwrap_or_default())?;
    c.tx(|tx| {
        require_resource(tx, &arn)?;
        let existing = tx.tags_get(&arn)?;
        let total = existing.iter().filter(|(k, _)| !tags.iter().any(|(n, _)| n == k)).count() + tags.len();
        if total > MAX_TAGS {
            return Err(ControlError::invalid("A resource can have at most 50 tags."));
        }
        tx.tags_put(&arn, &tags)?;
        Ok(())
    })?;
    Ok(TagResourceResponse {})
}

pub(crate) fn untag(c: &Control, r: UntagResourceRequest) -> Result<UntagResourceResponse, ControlError> {
    let arn = r.resource_arn.unwrap_or_default();
    let keys = r.tag_keys.unwrap_or_default();
    c.tx(|tx| {
        require_resource(tx, &arn)?;
        tx.tags_remove(&arn, &keys)?;
        Ok(())
    })?;
    Ok(UntagResourceResponse {})
}

pub(crate) fn list(c: &Control, r: ListTagsForResourceRequest) -> Result<ListTagsForResourceResponse, ControlError> {
    let arn = r.resource_arn.unwrap_or_default();
    let tags = c.read(|tx| {
        // ListTagsForResource's model lists no ResourceNotFoundException: a missing resource is an invalid one.
        require_resource(tx, &arn)
            .map_err(|e| e.respelled(ErrorCode::ResourceNotFound, ErrorCode::InvalidParameter))?;
        render::tag_list(tx, &arn)
    })?;
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}

/// Taggable ECS resources must exist.
fn require_resource(tx: &Tx<'_>, arn: &str) -> Result<(), ControlError> {
    let parsed: Arn = arn.parse().map_err(|e| ControlError::invalid(format!("Invalid resourceArn '{arn}': {e}")))?;
    if parsed.service != "ecs" {
        return Err(ControlError::invalid(format!("Invalid resourceArn '{arn}': not an ECS resource.")));
    }
    let kind = parsed.resource.split('/').next().unwrap_or_default();
    let exists = match kind {
        "cluster" => {
            let name = parsed.resource.trim_start_matches("cluster/");
            tx.cluster_get(name)?.is_some()
        }
        "service" => tx.service_by_arn(arn)?.is_some(),
        "task" => tx.task_get(arn)?.is_some(),
        "task-definition" => tx.task_definition_get(arn)?.is_some(),
        _ => {
            return Err(ControlError::invalid(format!(
                "Invalid resourceArn '{arn}': tagging {kind} is not supported."
            )));
        }
    };
    if exists {
        Ok(())
    } else {
        Err(ControlError::code(ErrorCode::ResourceNotFound, format!("The specified resource was not found: {arn}")))
    }
}

/// Validates tags as ECS does (1–128 character keys, values up to 256, at most 50) into key/value pairs.
pub(crate) fn tag_pairs(tags: Vec<Tag>) -> Result<Vec<(String, String)>, ControlError> {
    if tags.len() > MAX_TAGS {
        return Err(ControlError::invalid(format!(
            "A resource can have at most {MAX_TAGS} tags; {} given.",
            tags.len()
        )));
    }
    tags.into_iter()
        .map(|t| {
            let key = t.key.unwrap_or_default();
            if key.is_empty() || key.len() > 128 {
                return Err(ControlError::invalid("Tag keys must be 1 to 128 characters."));
            }
            let value = t.value.unwrap_or_default();
            if value.len() > 256 {
                return Err(ControlError::invalid("Tag values must be at most 256 characters."));
            }
            Ok((key, value))
        })
        .collect()
}
