//! Log groups: create, delete, describe, retention and tags (the resource-ARN operations and the legacy
//! `*LogGroup` ones). Tags live in the store's generic tags table under the group's ARN.

use std::collections::BTreeMap;

use berth_core::{AwsError, ErrorCode};
use berth_model::logs::*;
use berth_store::{LogGroupRow, StoreError};

use super::{DAY_MS, RETENTION_DAYS, existing_group, invalid, limit, valid_group_name};
use crate::{Control, ControlError};

const MAX_TAGS: usize = 50;

pub(super) fn create(c: &Control, r: CreateLogGroupRequest, now: i64) -> Result<(), ControlError> {
    let name = r.log_group_name.unwrap_or_default();
    valid_group_name(&name)?;
    let tags = tag_pairs(r.tags.unwrap_or_default())?;
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!("A log group can have at most {MAX_TAGS} tags.")));
    }
    if let Some(k) = &r.kms_key_id
        && (k.is_empty() || k.len() > 256)
    {
        return Err(invalid("kmsKeyId must have 1 to 256 characters."));
    }
    let row = LogGroupRow {
        arn: c.log_group_arn(&name),
        name,
        created_ms: now,
        retention_days: None,
        kms_key_id: r.kms_key_id,
        log_group_class: r.log_group_class.unwrap_or(LogGroupClass::Standard).as_str().to_string(),
        deletion_protection: r.deletion_protection_enabled.unwrap_or(false),
    };
    c.tx(|tx| {
        match tx.log_group_insert(&row) {
            Err(StoreError::Conflict(_)) => {
                return Err(ControlError::code(
                    ErrorCode::LogsResourceAlreadyExists,
                    "The specified log group already exists",
                ));
            }
            other => other?,
        }
        tx.tags_put(&row.arn, &tags)?;
        Ok(())
    })
}

pub(super) fn delete(c: &Control, r: DeleteLogGroupRequest) -> Result<(), ControlError> {
    let name = r.log_group_name.unwrap_or_default();
    c.tx(|tx| {
        let g = existing_group(tx, &name)?;
        if g.deletion_protection {
            return Err(ControlError::code(
                ErrorCode::Validation,
                format!("Log group {name} has deletion protection enabled; disable it before deleting the log group."),
            ));
        }
        tx.log_group_delete(&name)?;
        Ok(())
    })
}

pub(super) fn describe(c: &Control, r: DescribeLogGroupsRequest) -> Result<DescribeLogGroupsResponse, ControlError> {
    let limit = limit(r.limit, 50, 50)?;
    let prefix = r.log_group_name_prefix.filter(|p| !p.is_empty());
    let pattern = r.log_group_name_pattern.filter(|p| !p.is_empty());
    if prefix.is_some() && pattern.is_some() {
        return Err(invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."));
    }
    let identifiers: Option<Vec<String>> = match r.log_group_identifiers {
        None => None,
        Some(ids) => {
            if prefix.is_some() || pattern.is_some() {
                return Err(invalid(
                    "logGroupIdentifiers is mutually exclusive with logGroupNamePrefix and logGroupNamePattern.",
                ));
            }
            Some(ids.iter().map(|i| c.log_group_name_of_arn(i).unwrap_or_else(|| i.clone())).collect())
        }
    };
    let after = match r.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(crate::token::decode(t).ok_or_else(|| invalid("The specified nextToken is invalid."))?),
    };
    let pattern_lower = pattern.map(|p| p.to_lowercase());
    let (rows, stored): (Vec<LogGroupRow>, Vec<i64>) = c.read(|tx| {
        let rows: Vec<LogGroupRow> = tx
            .log_groups_all()?
            .into_iter()
            .filter(|g| prefix.as_deref().is_none_or(|p| g.name.starts_with(p)))
            .filter(|g| pattern_lower.as_deref().is_none_or(|p| g.name.to_lowercase().contains(p)))
            .filter(|g| identifiers.as_ref().is_none_or(|ids| ids.contains(&g.name)))
            .filter(|g| r.log_group_class.is_none_or(|k| k.as_str() == g.log_group_class))
            .filter(|g| after.as_deref().is_none_or(|a| g.name.as_str() > a))
            .take(limit + 1)
            .collect();
        let stored = rows.iter().map(|g| tx.log_group_stored_bytes(&g.name)).collect::<Result<Vec<_>, _>>()?;
        Ok((rows, stored))
    })?;
    let more = rows.len() > limit;
    let groups: Vec<LogGroup> = rows
        .into_iter()
        .zip(stored)
        .take(limit)
        .map(|(g, bytes)| LogGroup {
            log_group_name: Some(g.name.clone()),
            creation_time: Some(g.created_ms),
            retention_in_days: g.retention_days,
            metric_filter_count: Some(0),
            arn: Some(format!("{}:*", g.arn)),
            stored_bytes: Some(bytes),
            kms_key_id: g.kms_key_id,
            log_group_class: LogGroupClass::parse(&g.log_group_class),
            log_group_arn: Some(g.arn),
            deletion_protection_enabled: Some(g.deletion_protection),
            ..Default::default()
        })
        .collect();
    let next_token =
        if more { groups.last().and_then(|g| g.log_group_name.as_deref()).map(crate::token::encode) } else { None };
    Ok(DescribeLogGroupsResponse { log_groups: Some(groups), next_token })
}

pub(super) fn put_retention(c: &Control, r: PutRetentionPolicyRequest, now: i64) -> Result<(), ControlError> {
    let name = r.log_group_name.unwrap_or_default();
    let days = r.retention_in_days.unwrap_or_default();
    if !RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = RETENTION_DAYS.iter().map(|d| d.to_string()).collect();
        return Err(invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member \
             must satisfy enum value set: [{}]",
            allowed.join(", ")
        )));
    }
    c.tx(|tx| {
        existing_group(tx, &name)?;
        tx.log_group_set_retention(&name, Some(days))?;
        // Events already past the new retention go now; the reconciler's periodic pass deletes the rest as they age.
        tx.log_events_expire(&name, now - i64::from(days) * DAY_MS)?;
        Ok(())
    })
}

pub(super) fn delete_retention(c: &Control, r: DeleteRetentionPolicyRequest) -> Result<(), ControlError> {
    let name = r.log_group_name.unwrap_or_default();
    c.tx(|tx| {
        existing_group(tx, &name)?;
        tx.log_group_set_retention(&name, None)?;
        Ok(())
    })
}

// ---- tags

/// The group a `resourceArn` names (log groups are the only taggable Logs resource berth has).
fn group_of_resource(c: &Control, arn: Option<&str>) -> Result<String, ControlError> {
    let arn = arn.unwrap_or_default();
    if !arn.starts_with("arn:") {
        return Err(invalid(format!("Invalid resource ARN: {arn}")));
    }
    c.log_group_name_of_arn(arn).ok_or_else(|| {
        ControlError::Aws(AwsError::new(
            ErrorCode::ResourceNotFound,
            format!("The specified resource does not exist: {arn}"),
        ))
    })
}

fn tag_text_ok(s: &str) -> bool {
    s.chars().all(|ch| ch.is_alphanumeric() || ch.is_whitespace() || "_.:/=+-@".contains(ch))
}

/// Validates tags as Logs does: keys 1 to 128 characters, values up to 256, letters, digits, spaces and
/// `_.:/=+-@`; the `aws:` prefix is reserved.
fn tag_pairs(tags: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ControlError> {
    let mut out = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || !tag_text_ok(&k) {
            return Err(invalid(format!(
                "Invalid tag key '{k}': keys have 1 to 128 letters, digits, spaces or _.:/=+-@"
            )));
        }
        if v.chars().count() > 256 || !tag_text_ok(&v) {
            return Err(invalid(format!(
                "Invalid value for tag '{k}': values have up to 256 letters, digits, spaces or _.:/=+-@"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("Invalid tag key '{k}': the aws: prefix is reserved.")));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn tag_group(c: &Control, name: &str, tags: BTreeMap<String, String>) -> Result<(), ControlError> {
    let tags = tag_pairs(tags)?;
    c.tx(|tx| {
        let g = existing_group(tx, name)?;
        let current = tx.tags_get(&g.arn)?;
        let added = tags.iter().filter(|(k, _)| !current.iter().any(|(ck, _)| ck == k)).count();
        if current.len() + added > MAX_TAGS {
            return Err(ControlError::code(
                ErrorCode::LogsTooManyTags,
                format!("A resource can have no more than {MAX_TAGS} tags."),
            ));
        }
        tx.tags_put(&g.arn, &tags)?;
        Ok(())
    })
}

fn untag_group(c: &Control, name: &str, keys: Vec<String>) -> Result<(), ControlError> {
    c.tx(|tx| {
        let g = existing_group(tx, name)?;
        tx.tags_remove(&g.arn, &keys)?;
        Ok(())
    })
}

fn group_tags(c: &Control, name: &str) -> Result<BTreeMap<String, String>, ControlError> {
    c.read(|tx| {
        let g = existing_group(tx, name)?;
        Ok(tx.tags_get(&g.arn)?.into_iter().collect())
    })
}

pub(super) fn tag_resource(c: &Control, r: TagResourceRequest) -> Result<(), ControlError> {
    let name = group_of_resource(c, r.resource_arn.as_deref())?;
    tag_group(c, &name, r.tags.unwrap_or_default())
}

pub(super) fn untag_resource(c: &Control, r: UntagResourceRequest) -> Result<(), ControlError> {
    let name = group_of_resource(c, r.resource_arn.as_deref())?;
    untag_group(c, &name, r.tag_keys.unwrap_or_default())
}

pub(super) fn list_tags_for_resource(
    c: &Control,
    r: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ControlError> {
    let name = group_of_resource(c, r.resource_arn.as_deref())?;
    Ok(ListTagsForResourceResponse { tags: Some(group_tags(c, &name)?) })
}

pub(super) fn tag_log_group(c: &Control, r: TagLogGroupRequest) -> Result<(), ControlError> {
    // The older API's model has no TooManyTagsException: too many tags is an invalid parameter there.
    tag_group(c, r.log_group_name.as_deref().unwrap_or_default(), r.tags.unwrap_or_default())
        .map_err(|e| e.respelled(ErrorCode::LogsTooManyTags, ErrorCode::InvalidParameter))
}

pub(super) fn untag_log_group(c: &Control, r: UntagLogGroupRequest) -> Result<(), ControlError> {
    untag_group(c, r.log_group_name.as_deref().unwrap_or_default(), r.tags.unwrap_or_default())
}

pub(super) fn list_tags_log_group(
    c: &Control,
    r: ListTagsLogGroupRequest,
) -> Result<ListTagsLogGroupResponse, ControlError> {
    Ok(ListTagsLogGroupResponse { tags: Some(group_tags(c, r.log_group_name.as_deref().unwrap_or_default())?) })
}
