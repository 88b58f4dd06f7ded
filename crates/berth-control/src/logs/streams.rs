//! Log streams: create, delete, describe (by name or by last event time, either direction, keyset-paged).

use berth_core::ErrorCode;
use berth_model::logs::*;
use berth_store::{LogStreamRow, StoreError};

use super::{existing_group, group_ref, invalid, limit, stream_not_found, valid_stream_name};
use crate::{Control, ControlError};

pub(super) fn create(c: &Control, r: CreateLogStreamRequest, now: i64) -> Result<(), ControlError> {
    let group = r.log_group_name.unwrap_or_default();
    let name = r.log_stream_name.unwrap_or_default();
    valid_stream_name(&name)?;
    let row = LogStreamRow {
        group: group.clone(),
        name,
        created_ms: now,
        first_event_ms: None,
        last_event_ms: None,
        last_ingestion_ms: None,
        stored_bytes: 0,
    };
    c.tx(|tx| {
        existing_group(tx, &group)?;
        match tx.log_stream_insert(&row) {
            Err(StoreError::Conflict(_)) => {
                Err(ControlError::code(ErrorCode::LogsResourceAlreadyExists, "The specified log stream already exists"))
            }
            other => Ok(other?),
        }
    })
}

pub(super) fn delete(c: &Control, r: DeleteLogStreamRequest) -> Result<(), ControlError> {
    let group = r.log_group_name.unwrap_or_default();
    let name = r.log_stream_name.unwrap_or_default();
    c.tx(|tx| {
        existing_group(tx, &group)?;
        if !tx.log_stream_delete(&group, &name)? {
            return Err(stream_not_found());
        }
        Ok(())
    })
}

/// The sort key of a stream: (last event time or -1, name) when ordered by time, ("", name) by name.
fn key(s: &LogStreamRow, by_time: bool) -> (i64, String) {
    (if by_time { s.last_event_ms.unwrap_or(-1) } else { 0 }, s.name.clone())
}

fn encode_key(k: &(i64, String)) -> String {
    crate::token::encode(&format!("{}/{}", k.0, k.1))
}

fn decode_key(t: &str) -> Option<(i64, String)> {
    let s = crate::token::decode(t)?;
    let (n, name) = s.split_once('/')?;
    Some((n.parse().ok()?, name.to_string()))
}

pub(super) fn describe(c: &Control, r: DescribeLogStreamsRequest) -> Result<DescribeLogStreamsResponse, ControlError> {
    let group = group_ref(c, r.log_group_name.as_deref(), r.log_group_identifier.as_deref())?;
    let limit = limit(r.limit, 50, 50)?;
    let by_time = r.order_by == Some(OrderBy::LastEventTime);
    let prefix = r.log_stream_name_prefix.filter(|p| !p.is_empty());
    if by_time && prefix.is_some() {
        return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
    }
    let descending = r.descending.unwrap_or(false);
    let after = match r.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(decode_key(t).ok_or_else(|| invalid("The specified nextToken is invalid."))?),
    };
    let mut rows = c.read(|tx| {
        existing_group(tx, &group)?;
        Ok(tx.log_streams_of(&group)?)
    })?;
    rows.retain(|s| prefix.as_deref().is_none_or(|p| s.name.starts_with(p)));
    rows.sort_by_key(|s| key(s, by_time));
    if descending {
        rows.reverse();
    }
    if let Some(a) = &after {
        rows.retain(|s| if descending { key(s, by_time) < *a } else { key(s, by_time) > *a });
    }
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_token = if more { rows.last().map(|s| encode_key(&key(s, by_time))) } else { None };
    let streams = rows
        .into_iter()
        .map(|s| LogStream {
            arn: Some(c.log_stream_arn(&group, &s.name)),
            log_stream_name: Some(s.name),
            creation_time: Some(s.created_ms),
            first_event_timestamp: s.first_event_ms,
            last_event_timestamp: s.last_event_ms,
            last_ingestion_time: s.last_ingestion_ms,
            stored_bytes: Some(s.stored_bytes),
            upload_sequence_token: None,
        })
        .collect();
    Ok(DescribeLogStreamsResponse { log_streams: Some(streams), next_token })
}
