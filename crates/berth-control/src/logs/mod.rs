//! CloudWatch Logs: log groups, log streams and their events, as the `logs` (2014-03-28) API speaks them.
//!
//! Groups and streams are named as AWS names them; events arrive through [`ingest::append`] (PutLogEvents and
//! the container-output shipper alike), are read per stream with GetLogEvents' `f/`/`b/` tokens and searched
//! group-wide with FilterLogEvents and a [`pattern`]. Every operation is authorized as `logs:<Operation>` on the
//! log group's ARN (the stream's ARN for stream-level operations, `...:log-group:*` for DescribeLogGroups) with
//! the group's tags as `aws:ResourceTag/*`. Retention is enforced by the reconciler's periodic pass
//! ([`Control::expire_log_events`]): events older than their group's retention are deleted. Log groups are never
//! deleted implicitly (they outlive the services that wrote to them).

mod events;
mod groups;
pub(crate) mod ingest;
pub mod live_tail;
pub mod pattern;
mod regex;
mod streams;
pub(crate) mod target;

use berth_core::{AwsError, ErrorCode};
use berth_iam::RequestContext;
use berth_model::logs::{Operation, Output};
use berth_store::{LogGroupRow, Tx};

use crate::{CallerIdentity, Control, ControlError, authz};

/// The retention periods (days) PutRetentionPolicy accepts, as AWS lists them.
pub(crate) const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Control {
    /// Handles one decoded CloudWatch Logs operation for an authenticated caller.
    pub async fn handle_logs(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = (|| {
            if !authz::is_root(caller) {
                authz::authorize_request(caller, self.logs_request(&op).map_err(AwsError::from)?)?;
            }
            self.logs_handle(op, now_ms()).map_err(AwsError::from)
        })();
        crate::error::answer(berth_model::logs::SIGNING_NAME, name, errors, out)
    }

    fn logs_handle(&self, op: Operation, now: i64) -> Result<Output, ControlError> {
        Ok(match op {
            Operation::CreateLogGroup(r) => Output::CreateLogGroup(groups::create(self, r, now)?),
            Operation::DeleteLogGroup(r) => Output::DeleteLogGroup(groups::delete(self, r)?),
            Operation::DescribeLogGroups(r) => Output::DescribeLogGroups(groups::describe(self, r)?),
            Operation::PutRetentionPolicy(r) => Output::PutRetentionPolicy(groups::put_retention(self, r, now)?),
            Operation::DeleteRetentionPolicy(r) => Output::DeleteRetentionPolicy(groups::delete_retention(self, r)?),
            Operation::TagResource(r) => Output::TagResource(groups::tag_resource(self, r)?),
            Operation::UntagResource(r) => Output::UntagResource(groups::untag_resource(self, r)?),
            Operation::ListTagsForResource(r) => Output::ListTagsForResource(groups::list_tags_for_resource(self, r)?),
            Operation::TagLogGroup(r) => Output::TagLogGroup(groups::tag_log_group(self, r)?),
            Operation::UntagLogGroup(r) => Output::UntagLogGroup(groups::untag_log_group(self, r)?),
            Operation::ListTagsLogGroup(r) => Output::ListTagsLogGroup(groups::list_tags_log_group(self, r)?),
            Operation::CreateLogStream(r) => Output::CreateLogStream(streams::create(self, r, now)?),
            Operation::DeleteLogStream(r) => Output::DeleteLogStream(streams::delete(self, r)?),
            Operation::DescribeLogStreams(r) => Output::DescribeLogStreams(streams::describe(self, r)?),
            Operation::PutLogEvents(r) => Output::PutLogEvents(events::put(self, r, now)?),
            Operation::GetLogEvents(r) => Output::GetLogEvents(events::get(self, r)?),
            Operation::FilterLogEvents(r) => Output::FilterLogEvents(events::filter(self, r)?),
            // An event stream: the API layer opens it with `Control::start_live_tail` (live_tail.rs).
            Operation::StartLiveTail(_) => {
                return Err(
                    AwsError::new(ErrorCode::InvalidParameter, "StartLiveTail answers with an event stream").into()
                );
            }
        })
    }

    /// The request context `logs:<Op>` is authorized with: the group's (or stream's) ARN, the group's tags, and
    /// for CreateLogGroup / TagResource / TagLogGroup the request's tags.
    fn logs_request(&self, op: &Operation) -> Result<RequestContext, ControlError> {
        let action = format!("logs:{}", op.name());
        let on_group = |name: Option<&str>, stream: Option<&str>| -> Result<RequestContext, ControlError> {
            let name = name.unwrap_or_default();
            let arn = self.log_group_arn(name);
            let tags = self.read(|tx| Ok(tx.tags_get(&arn)?))?;
            let resource = match stream {
                Some(s) => self.log_stream_arn(name, s),
                None => arn,
            };
            Ok(RequestContext::new(action.clone(), resource)
                .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        };
        let by_arn = |arn: Option<&str>| -> Result<RequestContext, ControlError> {
            match arn.and_then(|a| self.log_group_name_of_arn(a)) {
                Some(name) => on_group(Some(&name), None),
                None => Ok(RequestContext::new(action.clone(), arn.unwrap_or("*"))),
            }
        };
        let request_tags = |ctx: RequestContext, tags: &Option<std::collections::BTreeMap<String, String>>| {
            ctx.with_request_tags(tags.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        let ident = |name: &Option<String>, id: &Option<String>| -> Option<String> {
            name.clone().or_else(|| id.as_deref().map(|i| self.log_group_name_of_arn(i).unwrap_or_else(|| i.into())))
        };
        Ok(match op {
            Operation::CreateLogGroup(r) => {
                let name = r.log_group_name.as_deref().unwrap_or_default();
                request_tags(RequestContext::new(action.clone(), self.log_group_arn(name)), &r.tags)
            }
            Operation::DescribeLogGroups(_) => RequestContext::new(action.clone(), self.log_group_arn("*")),
            Operation::DeleteLogGroup(r) => on_group(r.log_group_name.as_deref(), None)?,
            Operation::PutRetentionPolicy(r) => on_group(r.log_group_name.as_deref(), None)?,
            Operation::DeleteRetentionPolicy(r) => on_group(r.log_group_name.as_deref(), None)?,
            Operation::DescribeLogStreams(r) => {
                on_group(ident(&r.log_group_name, &r.log_group_identifier).as_deref(), None)?
            }
            Operation::FilterLogEvents(r) => {
                on_group(ident(&r.log_group_name, &r.log_group_identifier).as_deref(), None)?
            }
            Operation::CreateLogStream(r) => on_group(r.log_group_name.as_deref(), r.log_stream_name.as_deref())?,
            Operation::DeleteLogStream(r) => on_group(r.log_group_name.as_deref(), r.log_stream_name.as_deref())?,
            Operation::PutLogEvents(r) => on_group(r.log_group_name.as_deref(), r.log_stream_name.as_deref())?,
            Operation::GetLogEvents(r) => {
                on_group(ident(&r.log_group_name, &r.log_group_identifier).as_deref(), r.log_stream_name.as_deref())?
            }
            Operation::TagResource(r) => request_tags(by_arn(r.resource_arn.as_deref())?, &r.tags),
            Operation::UntagResource(r) => {
                by_arn(r.resource_arn.as_deref())?.with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default())
            }
            Operation::ListTagsForResource(r) => by_arn(r.resource_arn.as_deref())?,
            Operation::TagLogGroup(r) => request_tags(on_group(r.log_group_name.as_deref(), None)?, &r.tags),
            Operation::UntagLogGroup(r) => on_group(r.log_group_name.as_deref(), None)?
                .with_multi_key("aws:TagKeys", r.tags.clone().unwrap_or_default()),
            Operation::ListTagsLogGroup(r) => on_group(r.log_group_name.as_deref(), None)?,
            Operation::StartLiveTail(_) => RequestContext::new(action.clone(), self.log_group_arn("*")),
        })
    }

    /// `arn:aws:logs:<region>:<account>:log-group:<name>`.
    pub(crate) fn log_group_arn(&self, name: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:{name}", self.names.region, self.names.account)
    }

    /// `arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:<stream>`.
    pub(crate) fn log_stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.log_group_arn(group))
    }

    /// The group a log group ARN (with or without the trailing `:*`) of this region and account names.
    pub(crate) fn log_group_name_of_arn(&self, arn: &str) -> Option<String> {
        let prefix = self.log_group_arn("");
        let name = arn.strip_prefix(&prefix)?;
        let name = name.strip_suffix(":*").unwrap_or(name);
        (!name.is_empty() && !name.contains(':')).then(|| name.to_string())
    }

    /// Deletes every event older than its group's retention at `now_ms`; returns how many went. The reconciler
    /// calls this periodically; tests call it with their own clock.
    pub fn expire_log_events(&self, now_ms: i64) -> Result<usize, ControlError> {
        self.tx(|tx| {
            let mut n = 0;
            for g in tx.log_groups_all()? {
                if let Some(days) = g.retention_days {
                    n += tx.log_events_expire(&g.name, now_ms - i64::from(days) * DAY_MS)?;
                }
            }
            Ok(n)
        })
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn invalid(message: impl Into<String>) -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::InvalidParameter, message))
}

pub(crate) fn group_not_found() -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::ResourceNotFound, "The specified log group does not exist."))
}

pub(crate) fn stream_not_found() -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::ResourceNotFound, "The specified log stream does not exist."))
}

/// The log group a request names, by `logGroupName` or `logGroupIdentifier` (a name or an ARN), not both.
pub(crate) fn group_ref(c: &Control, name: Option<&str>, identifier: Option<&str>) -> Result<String, ControlError> {
    match (name.filter(|n| !n.is_empty()), identifier.filter(|i| !i.is_empty())) {
        (Some(_), Some(_)) => Err(invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")),
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(i)) if i.starts_with("arn:") => c.log_group_name_of_arn(i).ok_or_else(group_not_found),
        (None, Some(i)) => Ok(i.to_string()),
        (None, None) => Err(invalid("Should provide either logGroupName or logGroupIdentifier.")),
    }
}

/// The stored group, or ResourceNotFoundException.
pub(crate) fn existing_group(tx: &Tx<'_>, name: &str) -> Result<LogGroupRow, ControlError> {
    tx.log_group_get(name)?.ok_or_else(group_not_found)
}

/// Checks a log group name as AWS does: 1 to 512 characters of `[.\-_/#A-Za-z0-9]`.
pub(crate) fn valid_group_name(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > 512 {
        return Err(invalid(format!("Invalid log group name '{name}': it must have 1 to 512 characters.")));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c)) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )));
    }
    if name.starts_with("aws/") {
        return Err(invalid("Log group names can't start with the string aws/."));
    }
    Ok(())
}

/// Checks a log stream name: 1 to 512 characters, no `:` and no `*`.
pub(crate) fn valid_stream_name(name: &str) -> Result<(), ControlError> {
    if name.is_empty() || name.len() > 512 {
        return Err(invalid(format!("Invalid log stream name '{name}': it must have 1 to 512 characters.")));
    }
    if name.contains(':') || name.contains('*') {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member \
             must satisfy regular expression pattern: [^:*]*"
        )));
    }
    Ok(())
}

/// A `limit` within `1..=max` (`default` when absent).
pub(crate) fn limit(value: Option<i32>, default: usize, max: usize) -> Result<usize, ControlError> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value \
             between 1 and {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_rules() {
        for ok in ["a", "/aws-not/x", "/ecs/web#1", "A.b-c_d/e", &"x".repeat(512)] {
            assert!(valid_group_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "colon:", "star*", "aws/lambda/x", &"x".repeat(513)] {
            assert!(valid_group_name(bad).is_err(), "{bad}");
        }
        for ok in ["s", "ecs/Main/abc", "with space", &"y".repeat(512)] {
            assert!(valid_stream_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a*", &"y".repeat(513)] {
            assert!(valid_stream_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None, 50, 50).ok(), Some(50));
        assert_eq!(limit(Some(7), 50, 50).ok(), Some(7));
        assert!(limit(Some(0), 50, 50).is_err());
        assert!(limit(Some(51), 50, 50).is_err());
    }
}
