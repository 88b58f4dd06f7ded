//! Log events: PutLogEvents (through [`ingest::append`]), GetLogEvents (one stream, `f/`/`b/` tokens that a
//! caller can follow to either end) and FilterLogEvents (a group-wide time-ordered scan through a filter
//! pattern, resumable with `nextToken`).

use berth_model::logs::*;
use berth_store::{LogCursor, LogEventRange, LogEventRow};

use super::pattern::Pattern;
use super::{existing_group, group_ref, ingest, invalid, limit, stream_not_found};
use crate::{Control, ControlError};

/// Largest response of GetLogEvents and FilterLogEvents: the messages' bytes plus 26 per event.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const MAX_EVENTS: usize = 10_000;
/// FilterLogEvents reads the store in batches of this many events...
const SCAN_BATCH: usize = 1_000;
/// ...and returns (with a `nextToken`) after examining this many, even with fewer matches than asked for.
const SCAN_BUDGET: usize = 100_000;

pub(super) fn put(c: &Control, r: PutLogEventsRequest, now: i64) -> Result<PutLogEventsResponse, ControlError> {
    let group = r.log_group_name.unwrap_or_default();
    let stream = r.log_stream_name.unwrap_or_default();
    let events: Vec<(i64, String)> = r
        .log_events
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.timestamp.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect();
    if events.is_empty() {
        return Err(invalid(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have \
             length greater than or equal to 1",
        ));
    }
    let rejected = c.tx(|tx| ingest::append(tx, &group, &stream, &events, now))?;
    c.live_tail_publish(&group, &stream, ingest::accepted(&events, &rejected), now);
    let as_i32 = |i: Option<usize>| i.map(|i| i32::try_from(i).unwrap_or(i32::MAX));
    Ok(PutLogEventsResponse {
        // Sequence tokens are ignored, as AWS now ignores them; a token is still returned for older clients.
        next_sequence_token: Some(format!("{now:056}")),
        rejected_log_events_info: (!rejected.is_empty()).then(|| RejectedLogEventsInfo {
            too_new_log_event_start_index: as_i32(rejected.too_new_start),
            too_old_log_event_end_index: as_i32(rejected.too_old_end),
            expired_log_event_end_index: as_i32(rejected.expired_end),
        }),
        rejected_entity_info: None,
    })
}

/// `f/<timestamp><seq>/s` or `b/...`: where to continue and in which direction.
fn token(backward: bool, c: LogCursor) -> String {
    format!("{}/{:019}{:019}/s", if backward { 'b' } else { 'f' }, c.timestamp_ms, c.seq)
}

fn parse_token(t: &str) -> Option<(bool, LogCursor)> {
    let (dir, rest) = t.split_once('/')?;
    let backward = match dir {
        "f" => false,
        "b" => true,
        _ => return None,
    };
    let digits = rest.strip_suffix("/s")?;
    if digits.len() != 38 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((backward, LogCursor { timestamp_ms: digits[..19].parse().ok()?, seq: digits[19..].parse().ok()? }))
}

/// Keeps the leading events (in reading order) that fit in a response.
fn fit(rows: &mut Vec<LogEventRow>) {
    let mut bytes = 0;
    let keep = rows
        .iter()
        .position(|e| {
            bytes += e.message.len() + ingest::EVENT_OVERHEAD;
            bytes > MAX_RESPONSE_BYTES
        })
        .unwrap_or(rows.len());
    rows.truncate(keep.max(1).min(rows.len()));
}

pub(super) fn get(c: &Control, r: GetLogEventsRequest) -> Result<GetLogEventsResponse, ControlError> {
    let group = group_ref(c, r.log_group_name.as_deref(), r.log_group_identifier.as_deref())?;
    let stream = r.log_stream_name.unwrap_or_default();
    let limit = limit(r.limit, MAX_EVENTS, MAX_EVENTS)?;
    let given = match r.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(parse_token(t).ok_or_else(|| invalid("The specified nextToken is invalid."))?),
    };
    // Without a token: the oldest events from the head, or (the default) the newest ones.
    let (backward, cursor) = match given {
        Some((b, cur)) => (b, Some(cur)),
        None => (!r.start_from_head.unwrap_or(false), None),
    };
    let range = LogEventRange { start_ms: r.start_time, end_ms: r.end_time, cursor, backward, limit };
    let mut rows = c.read(|tx| {
        existing_group(tx, &group)?;
        if tx.log_stream_get(&group, &stream)?.is_none() {
            return Err(stream_not_found());
        }
        Ok(tx.log_events_read(&group, &stream, &range)?)
    })?;
    fit(&mut rows);
    if backward {
        rows.reverse();
    }
    // With nothing read, both tokens stay where the caller was (the same token back at either end).
    let here = cursor.unwrap_or(LogCursor { timestamp_ms: 0, seq: 0 });
    let first = rows.first().map_or(here, LogEventRow::cursor);
    let last = rows.last().map_or(here, LogEventRow::cursor);
    Ok(GetLogEventsResponse {
        events: Some(
            rows.into_iter()
                .map(|e| OutputLogEvent {
                    timestamp: Some(e.timestamp_ms),
                    message: Some(e.message),
                    ingestion_time: Some(e.ingestion_ms),
                })
                .collect(),
        ),
        next_forward_token: Some(token(false, last)),
        next_backward_token: Some(token(true, first)),
    })
}

fn event_id(e: &LogEventRow) -> String {
    format!("{:020}{:036}", e.timestamp_ms, e.seq)
}

pub(super) fn filter(c: &Control, r: FilterLogEventsRequest) -> Result<FilterLogEventsResponse, ControlError> {
    let group = group_ref(c, r.log_group_name.as_deref(), r.log_group_identifier.as_deref())?;
    let limit = limit(r.limit, MAX_EVENTS, MAX_EVENTS)?;
    let names = r.log_stream_names.filter(|n| !n.is_empty());
    let prefix = r.log_stream_name_prefix.filter(|p| !p.is_empty());
    if names.is_some() && prefix.is_some() {
        return Err(invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters."));
    }
    if names.as_ref().is_some_and(|n| n.len() > 100) {
        return Err(invalid("logStreamNames can name at most 100 log streams."));
    }
    if let (Some(s), Some(e)) = (r.start_time, r.end_time)
        && e < s
    {
        return Err(invalid("endTime must not be before startTime."));
    }
    let pattern = Pattern::parse(r.filter_pattern.as_deref().unwrap_or(""))
        .map_err(|e| invalid(format!("Invalid filter pattern: {e}")))?;
    let mut cursor = match r.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            crate::token::decode(t)
                .and_then(|s| {
                    let (a, b) = s.split_once('/')?;
                    Some(LogCursor { timestamp_ms: a.parse().ok()?, seq: b.parse().ok()? })
                })
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        ),
    };
    let mut events = Vec::new();
    let mut more = false;
    c.read(|tx| {
        existing_group(tx, &group)?;
        let streams: Option<Vec<String>> = match (&names, &prefix) {
            (Some(n), _) => Some(n.clone()),
            (None, Some(p)) => {
                Some(tx.log_streams_of(&group)?.into_iter().map(|s| s.name).filter(|n| n.starts_with(p)).collect())
            }
            (None, None) => None,
        };
        let mut scanned = 0;
        let mut bytes = 0;
        'scan: loop {
            let range = LogEventRange {
                start_ms: r.start_time,
                end_ms: r.end_time,
                cursor,
                backward: false,
                limit: SCAN_BATCH,
            };
            let batch = tx.log_events_scan(&group, streams.as_deref(), &range)?;
            let full = batch.len() == SCAN_BATCH;
            for e in batch {
                if events.len() >= limit || bytes + e.message.len() + ingest::EVENT_OVERHEAD > MAX_RESPONSE_BYTES {
                    more = true;
                    break 'scan;
                }
                scanned += 1;
                cursor = Some(e.cursor());
                if pattern.matches(&e.message) {
                    bytes += e.message.len() + ingest::EVENT_OVERHEAD;
                    events.push(FilteredLogEvent {
                        event_id: Some(event_id(&e)),
                        log_stream_name: Some(e.stream),
                        timestamp: Some(e.timestamp_ms),
                        ingestion_time: Some(e.ingestion_ms),
                        message: Some(e.message),
                    });
                }
            }
            if !full {
                break;
            }
            if scanned >= SCAN_BUDGET {
                more = true;
                break;
            }
        }
        Ok(())
    })?;
    let next_token = match (more, cursor) {
        (true, Some(cur)) => Some(crate::token::encode(&format!("{}/{}", cur.timestamp_ms, cur.seq))),
        _ => None,
    };
    Ok(FilterLogEventsResponse { events: Some(events), searched_log_streams: Some(Vec::new()), next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for (b, ts, seq) in [(false, 0, 0), (true, 1_800_000_000_000, 42), (false, i64::MAX, i64::MAX)] {
            let c = LogCursor { timestamp_ms: ts, seq };
            let t = token(b, c);
            assert!(t.starts_with(if b { "b/" } else { "f/" }) && t.ends_with("/s"), "{t}");
            assert_eq!(parse_token(&t), Some((b, c)));
        }
        for bad in ["", "f/", "x/00/s", "f/123/s", &format!("f/{}/s", "a".repeat(38)), &format!("f/{}", "0".repeat(38))]
        {
            assert_eq!(parse_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn responses_stop_at_one_mebibyte() {
        let row = |i: i64, n: usize| LogEventRow {
            seq: i,
            stream: "s".into(),
            timestamp_ms: i,
            ingestion_ms: i,
            message: "x".repeat(n),
        };
        let mut rows: Vec<LogEventRow> = (0..10).map(|i| row(i, 200_000)).collect();
        fit(&mut rows);
        assert_eq!(rows.len(), 5);
        let mut small: Vec<LogEventRow> = (0..10).map(|i| row(i, 10)).collect();
        fit(&mut small);
        assert_eq!(small.len(), 10);
        let mut none: Vec<LogEventRow> = Vec::new();
        fit(&mut none);
        assert!(none.is_empty());
    }
}
