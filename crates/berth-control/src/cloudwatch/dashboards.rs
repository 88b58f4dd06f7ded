//! Dashboards (PutDashboard, GetDashboard, ListDashboards, DeleteDashboards) and the tag operations on alarms and
//! dashboards (TagResource, UntagResource, ListTagsForResource, through the store's `tags` table by ARN).
//!
//! A dashboard body must be a JSON object with a `widgets` array of objects, each with a known `type`; what is
//! wrong is answered as `DashboardInvalidInputError` naming the data path. Bodies are kept as sent.

use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch as cw;
use berth_store::DashboardRow;

use super::{alarms, invalid, missing};
use crate::{Control, ControlError};

/// Most dashboards one ListDashboards page holds (AWS: 1000).
const PAGE: usize = 1000;
/// Most tags on one resource (AWS: 50).
const MAX_TAGS: usize = 50;
/// Widget types CloudWatch knows.
const WIDGET_TYPES: &[&str] = &["metric", "text", "log", "alarm", "explorer", "custom"];

fn not_found(name: &str) -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::DashboardNotFound, format!("Dashboard {name} does not exist")))
}

fn invalid_input(message: impl Into<String>) -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::DashboardInvalidInput, message))
}

/// Dashboard names: 1–255 of letters, digits, `-` and `_` (AWS's rule).
fn check_name(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > 255 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(invalid_input(
            "The value for field DashboardName contains invalid characters. It can only contain alphanumerics, dash (-) and underscore (_).",
        ));
    }
    Ok(())
}

/// The body's problems as (data path, message); empty when valid.
pub(crate) fn validate_body(body: &str) -> Vec<(String, String)> {
    let value: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return vec![("/".into(), format!("The field DashboardBody must be a valid JSON object: {e}"))],
    };
    let Some(obj) = value.as_object() else {
        return vec![("/".into(), "The field DashboardBody must be a valid JSON object".into())];
    };
    let Some(widgets) = obj.get("widgets") else {
        return vec![("/".into(), "Should have required property 'widgets'".into())];
    };
    let Some(widgets) = widgets.as_array() else { return vec![("/widgets".into(), "Should be array".into())] };
    let mut out = Vec::new();
    for (i, w) in widgets.iter().enumerate() {
        let at = format!("/widgets/{i}");
        let Some(w) = w.as_object() else {
            out.push((at, "Should be object".into()));
            continue;
        };
        match w.get("type").and_then(|t| t.as_str()) {
            None => out.push((at.clone(), "Should have required property 'type'".into())),
            Some(t) if !WIDGET_TYPES.contains(&t) => out
                .push((format!("{at}/type"), format!("Should be equal to one of the allowed values {WIDGET_TYPES:?}"))),
            Some(_) => {}
        }
        if w.get("properties").is_some_and(|p| !p.is_object()) {
            out.push((format!("{at}/properties"), "Should be object".into()));
        }
        for dim in ["x", "y", "width", "height"] {
            if w.get(dim).is_some_and(|v| !v.is_u64()) {
                out.push((format!("{at}/{dim}"), "Should be integer".into()));
            }
        }
    }
    out
}

pub(super) fn put(c: &Control, r: cw::PutDashboardInput, now: f64) -> Result<cw::PutDashboardOutput, ControlError> {
    let name = r.dashboard_name.unwrap_or_default();
    check_name(&name)?;
    let body = r.dashboard_body.ok_or_else(|| missing("DashboardBody"))?;
    let problems = validate_body(&body);
    if !problems.is_empty() {
        let detail: Vec<String> = problems.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        return Err(invalid_input(format!("The input for the dashboard body is invalid: {}", detail.join("; "))));
    }
    let tags = tag_pairs(r.tags.as_deref().unwrap_or_default())?;
    let arn = c.dashboard_arn(&name);
    c.tx(|tx| {
        tx.dashboard_put(&DashboardRow { name: name.clone(), arn: arn.clone(), body, last_modified: now })?;
        tx.tags_put(&arn, &tags)?;
        Ok(())
    })?;
    Ok(cw::PutDashboardOutput { dashboard_validation_messages: Some(Vec::new()) })
}

pub(super) fn get(c: &Control, r: cw::GetDashboardInput) -> Result<cw::GetDashboardOutput, ControlError> {
    let name = r.dashboard_name.unwrap_or_default();
    let d = c.read(|tx| Ok(tx.dashboard_get(&name)?))?.ok_or_else(|| not_found(&name))?;
    Ok(cw::GetDashboardOutput {
        dashboard_arn: Some(d.arn),
        dashboard_body: Some(d.body),
        dashboard_name: Some(d.name),
    })
}

pub(super) fn list(c: &Control, r: cw::ListDashboardsInput) -> Result<cw::ListDashboardsOutput, ControlError> {
    let prefix = r.dashboard_name_prefix.unwrap_or_default();
    let after = r.next_token.unwrap_or_default();
    let mut rows = c.read(|tx| Ok(tx.dashboard_list(&prefix, &after, PAGE + 1)?))?;
    let next_token = (rows.len() > PAGE).then(|| {
        rows.truncate(PAGE);
        rows.last().map(|d| d.name.clone()).unwrap_or_default()
    });
    let entries = rows
        .into_iter()
        .map(|d| cw::DashboardEntry {
            size: Some(d.body.len() as i64),
            dashboard_name: Some(d.name),
            dashboard_arn: Some(d.arn),
            last_modified: Some(berth_model::Timestamp(d.last_modified)),
        })
        .collect();
    Ok(cw::ListDashboardsOutput { dashboard_entries: Some(entries), next_token })
}

pub(super) fn delete(c: &Control, r: cw::DeleteDashboardsInput) -> Result<cw::DeleteDashboardsOutput, ControlError> {
    let names = r.dashboard_names.unwrap_or_default();
    if names.is_empty() {
        return Err(missing("DashboardNames"));
    }
    // All or nothing: one missing dashboard refuses the call.
    c.tx(|tx| {
        for n in &names {
            if tx.dashboard_get(n)?.is_none() {
                // The operation's model lists no DashboardNotFoundError: a missing one is an invalid value.
                return Err(invalid(format!("The specified dashboard does not exist. Dashboard {n} does not exist.")));
            }
        }
        for n in &names {
            tx.dashboard_delete(n)?;
        }
        Ok(())
    })?;
    Ok(cw::DeleteDashboardsOutput {})
}

/// What a CloudWatch ARN names.
enum Resource {
    Alarm(String),
    Dashboard(String),
}

fn resource(c: &Control, arn: &str) -> Result<Resource, ControlError> {
    let alarm = c.alarm_arn("");
    let dashboard = c.dashboard_arn("");
    if let Some(name) = arn.strip_prefix(&alarm).filter(|n| !n.is_empty()) {
        return Ok(Resource::Alarm(name.to_string()));
    }
    if let Some(name) = arn.strip_prefix(&dashboard).filter(|n| !n.is_empty()) {
        return Ok(Resource::Dashboard(name.to_string()));
    }
    Err(invalid(format!("The value {arn} for parameter ResourceARN is invalid.")))
}

/// The resource's ARN when it exists, else ResourceNotFoundException.
fn existing(c: &Control, arn: Option<String>) -> Result<String, ControlError> {
    let arn = arn.unwrap_or_default();
    if arn.is_empty() {
        return Err(missing("ResourceARN"));
    }
    let found = match resource(c, &arn)? {
        Resource::Alarm(name) => alarms::exists(c, &name)?,
        Resource::Dashboard(name) => c.read(|tx| Ok(tx.dashboard_get(&name)?))?.is_some(),
    };
    if !found {
        return Err(ControlError::Aws(AwsError::new(
            ErrorCode::ResourceNotFound,
            format!("The specified resource {arn} does not exist."),
        )));
    }
    Ok(arn)
}

pub(super) fn tag_pairs(tags: &[cw::Tag]) -> Result<Vec<(String, String)>, ControlError> {
    let mut out = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let k = t.key.clone().unwrap_or_default();
        let v = t.value.clone().unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") {
            return Err(invalid(format!("The value {k} for parameter Tags.member.{}.Key is invalid.", i + 1)));
        }
        if v.chars().count() > 256 {
            return Err(invalid(format!("The value for parameter Tags.member.{}.Value is too long.", i + 1)));
        }
        out.push((k, v));
    }
    Ok(out)
}

pub(super) fn tag(c: &Control, r: cw::TagResourceInput) -> Result<cw::TagResourceOutput, ControlError> {
    let arn = existing(c, r.resource_arn)?;
    let tags = tag_pairs(r.tags.as_deref().unwrap_or_default())?;
    c.tx(|tx| {
        let mut keys: std::collections::BTreeSet<String> = tx.tags_get(&arn)?.into_iter().map(|(k, _)| k).collect();
        keys.extend(tags.iter().map(|(k, _)| k.clone()));
        if keys.len() > MAX_TAGS {
            return Err(invalid(format!("A resource can have at most {MAX_TAGS} tags.")));
        }
        tx.tags_put(&arn, &tags)?;
        Ok(())
    })?;
    Ok(cw::TagResourceOutput {})
}

pub(super) fn untag(c: &Control, r: cw::UntagResourceInput) -> Result<cw::UntagResourceOutput, ControlError> {
    let arn = existing(c, r.resource_arn)?;
    let keys = r.tag_keys.unwrap_or_default();
    c.tx(|tx| Ok(tx.tags_remove(&arn, &keys)?))?;
    Ok(cw::UntagResourceOutput {})
}

pub(super) fn list_tags(
    c: &Control,
    r: cw::ListTagsForResourceInput,
) -> Result<cw::ListTagsForResourceOutput, ControlError> {
    let arn = existing(c, r.resource_arn)?;
    let tags = c.read(|tx| Ok(tx.tags_get(&arn)?))?;
    Ok(cw::ListTagsForResourceOutput {
        tags: Some(tags.into_iter().map(|(k, v)| cw::Tag { key: Some(k), value: Some(v) }).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::validate_body;

    #[test]
    fn dashboard_bodies() {
        let paths = |b: &str| validate_body(b).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        for (case, body, want) in [
            ("valid", r#"{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{}}]}"#, vec![]),
            ("empty widgets", r#"{"widgets":[]}"#, vec![]),
            ("not json", "{", vec!["/"]),
            ("not an object", "[]", vec!["/"]),
            ("no widgets", "{}", vec!["/"]),
            ("widgets not a list", r#"{"widgets":{}}"#, vec!["/widgets"]),
            ("widget without type", r#"{"widgets":[{}]}"#, vec!["/widgets/0"]),
            ("unknown type", r#"{"widgets":[{"type":"pie"}]}"#, vec!["/widgets/0/type"]),
            ("bad width", r#"{"widgets":[{"type":"text","width":"wide"}]}"#, vec!["/widgets/0/width"]),
        ] {
            assert_eq!(paths(body), want, "{case}");
        }
    }
}
