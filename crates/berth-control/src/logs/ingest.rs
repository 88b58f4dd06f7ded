//! Appending events to a log stream with PutLogEvents' rules, for the API and for the container-output shipper
//! alike. A batch that breaks a rule of the whole request (size, count, order, span) is refused with
//! InvalidParameterException and nothing is stored; events that are merely too old, expired by the group's
//! retention or too far in the future are skipped and reported, as AWS's `rejectedLogEventsInfo` reports them.

use berth_store::Tx;

use super::{DAY_MS, existing_group, invalid, stream_not_found};
use crate::ControlError;

/// Bytes AWS counts per event on top of its message.
pub(crate) const EVENT_OVERHEAD: usize = 26;
/// Largest message of one event.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD;
/// Largest batch: the messages' bytes plus [`EVENT_OVERHEAD`] per event.
pub(crate) const MAX_BATCH_BYTES: usize = 1024 * 1024;
pub(crate) const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_SPAN_MS: i64 = DAY_MS;
const MAX_AGE_MS: i64 = 14 * DAY_MS;
const MAX_AHEAD_MS: i64 = 2 * 60 * 60 * 1000;

/// The events of a batch that were not stored, by index, as AWS's `rejectedLogEventsInfo` reports them: every
/// event from `too_new_start` on, and every event up to and including `too_old_end` and `expired_end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
}

impl Rejected {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Rejected::default()
    }
}

/// PutLogEvents' rules applied to a batch: each message ≤ 256 KiB − 26 bytes, ≤ 10,000 events and ≤ 1 MiB
/// (sum of message bytes + 26 each) per batch, in chronological order, spanning ≤ 24 h; events older than 14
/// days or than the group's retention are rejected as too old (expired), more than 2 h ahead as too new. The
/// accepted events are stored with `now_ms` as their ingestion time.
pub(crate) fn append(
    tx: &Tx<'_>,
    group: &str,
    stream: &str,
    events: &[(i64, String)],
    now_ms: i64,
) -> Result<Rejected, ControlError> {
    let g = existing_group(tx, group)?;
    if tx.log_stream_get(group, stream)?.is_none() {
        return Err(stream_not_found());
    }
    check_batch(events)?;
    let rejected = classify(events, now_ms, g.retention_days);
    let kept = accepted(events, &rejected);
    if !kept.is_empty() {
        let kept: Vec<(i64, &str)> = kept.iter().map(|(t, m)| (*t, m.as_str())).collect();
        tx.log_events_append(group, stream, &kept, now_ms)?;
    }
    Ok(rejected)
}

/// The events of a batch [`append`] stored: those `rejected` does not name.
pub(crate) fn accepted<'a>(events: &'a [(i64, String)], rejected: &Rejected) -> &'a [(i64, String)] {
    let start = rejected.too_old_end.max(rejected.expired_end).map_or(0, |i| i + 1).min(events.len());
    let end = rejected.too_new_start.unwrap_or(events.len()).clamp(start, events.len());
    &events[start..end]
}

/// The rules of a whole batch.
fn check_batch(events: &[(i64, String)]) -> Result<(), ControlError> {
    if events.len() > MAX_BATCH_EVENTS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have \
             length less than or equal to {MAX_BATCH_EVENTS}"
        )));
    }
    let mut bytes = 0usize;
    for (i, (ts, m)) in events.iter().enumerate() {
        if m.is_empty() {
            return Err(invalid(format!("Log event {i} has an empty message.")));
        }
        if m.len() > MAX_MESSAGE_BYTES {
            return Err(invalid(format!(
                "Log event {i} is too large: {} bytes; a message can have at most {MAX_MESSAGE_BYTES} bytes.",
                m.len()
            )));
        }
        if *ts < 0 {
            return Err(invalid(format!("Log event {i} has a negative timestamp.")));
        }
        bytes += m.len() + EVENT_OVERHEAD;
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "The batch of log events is {bytes} bytes; a PutLogEvents request can carry at most {MAX_BATCH_BYTES} \
             (message bytes plus {EVENT_OVERHEAD} per event)."
        )));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(invalid("Log events in a single PutLogEvents request must be in chronological order."));
    }
    if let (Some(first), Some(last)) = (events.first(), events.last())
        && last.0 - first.0 > MAX_SPAN_MS
    {
        return Err(invalid(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    Ok(())
}

/// Which events of a chronological batch are too old, expired or too new at `now_ms`.
fn classify(events: &[(i64, String)], now_ms: i64, retention_days: Option<i32>) -> Rejected {
    let last_before = |cutoff: i64| events.iter().rposition(|(t, _)| *t < cutoff);
    Rejected {
        too_new_start: events.iter().position(|(t, _)| *t > now_ms + MAX_AHEAD_MS),
        too_old_end: last_before(now_ms - MAX_AGE_MS),
        expired_end: retention_days.and_then(|d| last_before(now_ms - i64::from(d) * DAY_MS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const H: i64 = 60 * 60 * 1000;

    fn batch(times: &[i64]) -> Vec<(i64, String)> {
        times.iter().map(|t| (*t, format!("event at {t}"))).collect()
    }

    #[test]
    fn classify_reports_aws_indices() {
        // (timestamps relative to NOW, retention, expected)
        let cases: &[(&[i64], Option<i32>, Rejected)] = &[
            (&[0, H], None, Rejected::default()),
            (&[-15 * DAY_MS, -1, 0], None, Rejected { too_old_end: Some(0), ..Default::default() }),
            (&[0, 2 * H + 1, 3 * H], None, Rejected { too_new_start: Some(1), ..Default::default() }),
            (&[0, 2 * H], None, Rejected::default()),
            (&[-2 * DAY_MS, -DAY_MS - 1, 0], Some(1), Rejected { expired_end: Some(1), ..Default::default() }),
            (&[-15 * DAY_MS, -10 * DAY_MS], Some(30), Rejected { too_old_end: Some(0), ..Default::default() }),
            (
                &[-20 * DAY_MS, -6 * DAY_MS, 3 * H],
                Some(7),
                Rejected { too_new_start: Some(2), too_old_end: Some(0), expired_end: Some(0) },
            ),
        ];
        for (times, retention, want) in cases {
            let events = batch(&times.iter().map(|t| NOW + t).collect::<Vec<_>>());
            assert_eq!(classify(&events, NOW, *retention), *want, "{times:?} retention {retention:?}");
        }
    }

    #[test]
    fn batch_rules() {
        assert!(check_batch(&batch(&[1, 1, 2])).is_ok());
        assert!(check_batch(&batch(&[2, 1])).is_err(), "out of order");
        assert!(check_batch(&batch(&[0, DAY_MS])).is_ok());
        assert!(check_batch(&batch(&[0, DAY_MS + 1])).is_err(), "spans more than a day");
        assert!(check_batch(&[(1, String::new())]).is_err(), "empty message");
        assert!(check_batch(&[(1, "x".repeat(MAX_MESSAGE_BYTES))]).is_ok());
        assert!(check_batch(&[(1, "x".repeat(MAX_MESSAGE_BYTES + 1))]).is_err());
        // Five messages of 256 KiB - 26 each exceed 1 MiB; four fit.
        let big = |n: usize| (0..n).map(|i| (i as i64, "x".repeat(MAX_MESSAGE_BYTES))).collect::<Vec<_>>();
        assert!(check_batch(&big(4)).is_ok());
        assert!(check_batch(&big(5)).is_err());
        assert!(check_batch(&batch(&vec![5; MAX_BATCH_EVENTS])).is_ok());
        assert!(check_batch(&batch(&vec![5; MAX_BATCH_EVENTS + 1])).is_err());
    }
}
