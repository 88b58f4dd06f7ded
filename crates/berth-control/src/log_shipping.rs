//! Containers' output in CloudWatch Logs: berth acting as the `awslogs` log driver.
//!
//! An Express service's container logs to a log group (`/aws/ecs/<cluster>/<service>-<4 hex>` unless
//! `primaryContainer.awsLogsConfiguration` names one) with the stream prefix `ecs`: each task writes the stream
//! `<prefix>/Main/<task id>`. Three roles meet here:
//!
//! - **Express, as the infrastructure role**, creates the group when a service is created (or an update names a
//!   new one), tagged `AmazonECSManaged=true`, recorded in the provisioning journal (`express/journal.rs`, `express/log_group.rs`) as `logs:DescribeLogGroups`,
//!   `logs:CreateLogGroup` and `logs:TagResource` with the request tag. Groups are kept after the service is
//!   deleted (the role has no `logs:DeleteLogGroup`), so an existing group is used as it is.
//! - **The task launch, as the execution role** ([`Control::prepare_log_stream`]), checks `logs:CreateLogStream`
//!   and `logs:PutLogEvents` on the stream's ARN and that the group exists, creates the stream, and records the
//!   task's shipping row (`berth-store/src/log_shipping.rs`). A failure stops the task before its container
//!   exists, with ECS's `ResourceInitializationError: failed to validate logger args: ...`.
//! - **The shipper** (one per task with a shipping row, in the executor) follows the container's output through
//!   [`berth_runtime::Driver::follow_output`] and appends batches (≤ 1,000 lines, ≤ 1 MiB, < 24 h apart, at most
//!   [`BATCH_WAIT`] after a batch's first line) through PutLogEvents' rules (`logs/ingest.rs`) in short
//!   transactions that also move the task's cursor, so a batch is shipped exactly once. Each batch is authorized as the execution role (`logs:PutLogEvents`); a
//!   denied batch, or one whose stream was deleted, is dropped with a log line and counted, as the awslogs driver
//!   loses what it cannot put.
//!
//! Restart-safe and level-triggered: the cursor is the last shipped line's timestamp (ns) and how many shipped
//! lines had exactly that timestamp; a new shipper follows from that instant and skips those lines, and so does a
//! shipper whose follow the runtime broke off (a Docker restart: the container runs on). Every
//! reconciler pass makes sure each undrained row whose container exists has a shipper. A task's container is
//! removed only after its shipper has drained its output (the container is stopped, not removed, first), or
//! after [`DRAIN_TIMEOUT`] (logged).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use berth_runtime::{DriverError, ObservedState, ObservedTask, OutputLine};
use berth_store::{LogShippingRow, LogStreamRow};
use tokio::sync::watch;

use crate::logs::now_ms;
use crate::logs::target::LogTarget;
use crate::{Control, ControlError};

/// What a task stops with when its log stream cannot be created (the awslogs driver's wording on Fargate).
pub(crate) const LOGGER_ERROR: &str = "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream";
/// A batch is shipped at the latest this long after its first line.
pub(crate) const BATCH_WAIT: Duration = Duration::from_millis(250);
/// ... or when it has this many lines ...
const BATCH_LINES: usize = 1_000;
/// ... or would exceed PutLogEvents' 1 MiB (message bytes plus 26 per event).
const BATCH_BYTES: usize = 1_048_576;
/// ... or would span 24 hours (PutLogEvents' limit).
const MAX_SPAN_NS: i64 = 24 * 3600 * 1_000_000_000;
/// The longest a stopped task's container waits for its shipper before it is removed anyway.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before a shipper follows again after the runtime or the store failed.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The shippers running in this process (losing them is safe: the next pass starts them again).
#[derive(Debug, Default)]
pub(crate) struct Shippers {
    /// Per task: `true` once its shipper has finished.
    running: HashMap<String, watch::Receiver<bool>>,
}

/// Where a shipper is in a task's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Cursor {
    last_ns: Option<i64>,
    same_ns: i64,
}

impl Cursor {
    fn advance(&mut self, ts: i64) {
        match self.last_ns {
            Some(last) if ts == last => self.same_ns += 1,
            Some(last) if ts < last => {}
            _ => {
                self.last_ns = Some(ts);
                self.same_ns = 1;
            }
        }
    }
}

/// Lines a resumed follower yields again (those at the cursor's instant already shipped) are skipped.
#[derive(Debug)]
struct Resume {
    at: Option<i64>,
    skip: i64,
}

impl Resume {
    fn skips(&mut self, line: &OutputLine) -> bool {
        match self.at {
            Some(at) if line.timestamp_ns == at && self.skip > 0 => {
                self.skip -= 1;
                true
            }
            Some(at) if line.timestamp_ns < at => true,
            _ => {
                self.at = None;
                false
            }
        }
    }
}

impl Control {
    /// At launch, as the execution role: may it create the task's stream and put events in it, and does the group
    /// exist? Then the stream is created and the task's shipping row written. The error is the task's stop reason.
    pub(crate) fn prepare_log_stream(
        &self,
        task_id: &str,
        target: &LogTarget,
        role: Option<&str>,
    ) -> Result<(), String> {
        let stream = target.stream(task_id);
        let arn = self.log_stream_arn(&target.group, &stream);
        let outcome = self.tx(|tx| {
            for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
                if let Err(e) = self.execution_role_may(tx, role, action, &arn) {
                    return Ok(Err(format!("{LOGGER_ERROR}: AccessDeniedException: {e} : exit status 1")));
                }
            }
            if tx.log_group_get(&target.group)?.is_none() {
                return Ok(Err(format!(
                    "{LOGGER_ERROR}: ResourceNotFoundException: The specified log group does not exist. : exit status 1"
                )));
            }
            if tx.log_stream_get(&target.group, &stream)?.is_none() {
                tx.log_stream_insert(&LogStreamRow {
                    group: target.group.clone(),
                    name: stream.clone(),
                    created_ms: now_ms(),
                    first_event_ms: None,
                    last_event_ms: None,
                    last_ingestion_ms: None,
                    stored_bytes: 0,
                })?;
            }
            tx.log_shipping_put(&LogShippingRow {
                task_id: task_id.to_string(),
                group: target.group.clone(),
                stream: stream.clone(),
                role_arn: role.unwrap_or_default().to_string(),
                last_ns: None,
                same_ns: 0,
                dropped: 0,
                drained: false,
            })?;
            Ok(Ok(()))
        });
        match outcome {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(task = %task_id, error = %e, "cannot prepare a task's log stream");
                Err(format!(
                    "{LOGGER_ERROR}: ServiceUnavailableException: the log store is unavailable : exit status 1"
                ))
            }
        }
    }

    fn shippers(&self) -> std::sync::MutexGuard<'_, Shippers> {
        self.shippers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One reconciler pass's share: every undrained task whose container exists has a shipper; rows of tasks that
    /// stopped without a container (never started, or removed behind berth's back) are closed.
    pub(crate) fn ensure_shippers(self: &Arc<Self>, observed: &BTreeMap<String, ObservedTask>) {
        let rows = match self.tx(|tx| {
            // A task that is gone or stopped is not among the not-stopped ones: one read, not one per row.
            let live: std::collections::HashSet<String> = tx.tasks_not_stopped()?.into_iter().map(|t| t.id).collect();
            let rows = tx.log_shipping_undrained()?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let stopped = !live.contains(&row.task_id);
                    (row, stopped)
                })
                .collect::<Vec<_>>())
        }) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read log shipping state");
                return;
            }
        };
        for (row, stopped) in rows {
            if observed.contains_key(&row.task_id) {
                self.ensure_shipper(&row.task_id);
            } else if stopped && !self.shippers().running.contains_key(&row.task_id) {
                let closed =
                    self.tx(|tx| Ok(tx.log_shipping_update(&LogShippingRow { drained: true, ..row.clone() })?));
                if let Err(e) = closed {
                    tracing::warn!(task = %row.task_id, error = %e, "cannot close log shipping");
                }
            }
        }
    }

    /// Starts the task's shipper unless it runs or its output is drained; returns what to wait on for the end.
    pub(crate) fn ensure_shipper(self: &Arc<Self>, task_id: &str) -> Option<watch::Receiver<bool>> {
        let mut shippers = self.shippers();
        if let Some(done) = shippers.running.get(task_id) {
            return Some(done.clone());
        }
        match self.tx(|tx| Ok(tx.log_shipping_get(task_id)?)) {
            Ok(Some(row)) if !row.drained => {}
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(task = %task_id, error = %e, "cannot read log shipping state");
                return None;
            }
        }
        let (done_tx, done_rx) = watch::channel(false);
        shippers.running.insert(task_id.to_string(), done_rx.clone());
        let (weak, id) = (Arc::downgrade(self), task_id.to_string());
        tokio::spawn(async move {
            ship(weak.clone(), &id).await;
            if let Some(c) = weak.upgrade() {
                c.shippers().running.remove(&id);
            }
            let _ = done_tx.send(true);
        });
        Some(done_rx)
    }

    /// Waits (at most [`DRAIN_TIMEOUT`]) for a stopped task's output to be shipped, before its container goes.
    pub(crate) async fn drain_output(self: &Arc<Self>, task_id: &str) {
        let Some(mut done) = self.ensure_shipper(task_id) else { return };
        if tokio::time::timeout(DRAIN_TIMEOUT, done.wait_for(|d| *d)).await.is_err() {
            tracing::warn!(task = %task_id, "removing a task's container before its output was drained (timeout)");
        }
    }

    /// Whether the task's output still has to be shipped.
    pub(crate) fn ships_output(&self, task_id: &str) -> bool {
        self.tx(|tx| Ok(tx.log_shipping_get(task_id)?)).ok().flatten().is_some_and(|r| !r.drained)
    }

    /// Appends one batch as the execution role and moves the cursor, in one transaction.
    fn ship_batch(&self, task_id: &str, batch: &[(i64, String)], cursor: Cursor) -> Result<(), ControlError> {
        // What was stored, offered to live-tail sessions once the transaction committed.
        let mut shipped = None;
        self.tx(|tx| {
            let Some(mut row) = tx.log_shipping_get(task_id)? else { return Ok(()) };
            let arn = self.log_stream_arn(&row.group, &row.stream);
            let denied = self.execution_role_may(tx, Some(&row.role_arn), "logs:PutLogEvents", &arn).err();
            let stream = tx.log_stream_get(&row.group, &row.stream)?;
            match (denied, stream) {
                (None, Some(_)) => {
                    let mut events: Vec<(i64, String)> =
                        batch.iter().map(|(ns, m)| (ns.div_euclid(1_000_000), m.clone())).collect();
                    // As the awslogs driver does: a batch is put in time order (stdout and stderr interleave).
                    events.sort_by_key(|(ms, _)| *ms);
                    // PutLogEvents' own rules (logs/ingest.rs): what it rejects is lost, as with awslogs.
                    let now = now_ms();
                    match crate::logs::ingest::append(tx, &row.group, &row.stream, &events, now) {
                        Ok(rejected) => {
                            if !rejected.is_empty() {
                                let lost = events.len() - crate::logs::ingest::accepted(&events, &rejected).len();
                                tracing::warn!(task = %task_id, lines = lost, ?rejected, "log events rejected");
                                row.dropped += lost as i64;
                            }
                            shipped = Some((row.group.clone(), row.stream.clone(), events, rejected, now));
                        }
                        Err(ControlError::Aws(e)) => {
                            tracing::warn!(task = %task_id, lines = batch.len(), error = %e.message, "dropping log events");
                            row.dropped += batch.len() as i64;
                        }
                        Err(e) => return Err(e),
                    }
                }
                (denied, _) => {
                    let why = denied.map(|e| format!("AccessDeniedException: {e}")).unwrap_or_else(|| {
                        "ResourceNotFoundException: The specified log stream does not exist.".into()
                    });
                    tracing::warn!(task = %task_id, lines = batch.len(), reason = %why, "dropping log events");
                    row.dropped += batch.len() as i64;
                }
            }
            row.last_ns = cursor.last_ns;
            row.same_ns = cursor.same_ns;
            tx.log_shipping_update(&row)?;
            Ok(())
        })?;
        if let Some((group, stream, events, rejected, now)) = shipped {
            if let Some(oldest) = events.iter().map(|(t, _)| *t).min() {
                let lag = u64::try_from(now.saturating_sub(oldest)).unwrap_or(0);
                self.observed.shipping_lag.observe(std::time::Duration::from_millis(lag));
            }
            self.live_tail_publish(&group, &stream, crate::logs::ingest::accepted(&events, &rejected), now);
        }
        Ok(())
    }

    fn mark_drained(&self, task_id: &str) {
        let marked = self.tx(|tx| {
            if let Some(row) = tx.log_shipping_get(task_id)? {
                tx.log_shipping_update(&LogShippingRow { drained: true, ..row })?;
            }
            Ok(())
        });
        if let Err(e) = marked {
            tracing::warn!(task = %task_id, error = %e, "cannot record a task's output as drained");
        }
    }

    /// Lines dropped so far for a task (denied or stream gone), for tests and diagnostics.
    pub fn log_lines_dropped(&self, task_id: &str) -> i64 {
        self.tx(|tx| Ok(tx.log_shipping_get(task_id)?)).ok().flatten().map_or(0, |r| r.dropped)
    }
}

/// What ended one follow of a task's output.
enum Ended {
    /// The follow ended and everything it yielded was shipped (the end of the output if the container had
    /// stopped before the follow began).
    Drained,
    /// The container is gone: nothing more can be read.
    Gone,
    /// The runtime or the store failed: follow again from the persisted cursor.
    Retry,
    /// The control plane is gone (a restart in tests): stop.
    Stop,
}

/// A task's shipper: follows from the persisted cursor until the output ends, resuming after failures.
///
/// A follow also ends when the runtime's daemon goes away (a Docker restart under live-restore: the container
/// runs on), so the end of a follow is the end of the output only when the container had already stopped
/// before that follow began; otherwise the shipper follows again from its cursor, which yields what is left
/// (and skips what was shipped), and ends the next time.
async fn ship(weak: Weak<Control>, task_id: &str) {
    // The last follow ended while the container ran: pause before the next unless it has stopped since.
    let mut cut_short = false;
    loop {
        let driver = match weak.upgrade() {
            Some(c) => Arc::clone(&c.driver),
            None => return,
        };
        let stopped = match driver.task_state(task_id).await {
            Ok(state) => !matches!(state, Some(ObservedState::Running | ObservedState::Created)),
            Err(e) => {
                tracing::debug!(task = %task_id, error = %e, "cannot see a task's container; following again later");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        drop(driver);
        if cut_short && !stopped {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let ended = follow_once(&weak, task_id).await;
        let Some(c) = weak.upgrade() else { return };
        match ended {
            Ended::Drained if stopped => {
                c.mark_drained(task_id);
                return;
            }
            Ended::Gone => {
                c.mark_drained(task_id);
                return;
            }
            Ended::Drained => {
                cut_short = true;
                continue;
            }
            Ended::Stop => return,
            Ended::Retry => {}
        }
        cut_short = false;
        drop(c);
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn follow_once(weak: &Weak<Control>, task_id: &str) -> Ended {
    let (row, driver) = {
        let Some(c) = weak.upgrade() else { return Ended::Stop };
        match c.tx(|tx| Ok(tx.log_shipping_get(task_id)?)) {
            Ok(Some(row)) if !row.drained => (row, Arc::clone(&c.driver)),
            Ok(_) => return Ended::Stop,
            Err(e) => {
                tracing::warn!(task = %task_id, error = %e, "cannot read log shipping state");
                return Ended::Retry;
            }
        }
    };
    let mut follower = match driver.follow_output(task_id, row.last_ns).await {
        Ok(f) => f,
        Err(DriverError::NotFound(_)) => return Ended::Gone,
        Err(e) => {
            tracing::warn!(task = %task_id, error = %e, "cannot follow a task's output");
            return Ended::Retry;
        }
    };
    let mut resume = Resume { at: row.last_ns, skip: row.same_ns };
    let mut cursor = Cursor { last_ns: row.last_ns, same_ns: row.same_ns };
    let mut batch: Vec<(i64, String)> = Vec::new();
    let mut bytes = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    let flush = |batch: &mut Vec<(i64, String)>, bytes: &mut usize, cursor: Cursor| -> Result<(), Ended> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(c) = weak.upgrade() else { return Err(Ended::Stop) };
        match c.ship_batch(task_id, batch, cursor) {
            Ok(()) => {
                batch.clear();
                *bytes = 0;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(task = %task_id, error = %e, "cannot store log events; following again");
                Err(Ended::Retry)
            }
        }
    };
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, follower.next()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Err(ended) = flush(&mut batch, &mut bytes, cursor) {
                        return ended;
                    }
                    deadline = None;
                    continue;
                }
            },
            None => follower.next().await,
        };
        match next {
            Some(Ok(line)) => {
                if resume.skips(&line) {
                    continue;
                }
                let size = line.line.len() + 26;
                // PutLogEvents refuses a batch spanning more than 24 h: such a line starts a new one.
                // (Lines come nearly in time order: the first and the last line bound the batch.)
                let span = [batch.first(), batch.last()]
                    .into_iter()
                    .flatten()
                    .map(|(ns, _)| (ns - line.timestamp_ns).abs())
                    .max()
                    .unwrap_or(0);
                if batch.len() >= BATCH_LINES || bytes + size > BATCH_BYTES || span >= MAX_SPAN_NS {
                    if let Err(ended) = flush(&mut batch, &mut bytes, cursor) {
                        return ended;
                    }
                    deadline = None;
                }
                cursor.advance(line.timestamp_ns);
                batch.push((line.timestamp_ns, line.line));
                bytes += size;
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + BATCH_WAIT);
            }
            Some(Err(DriverError::NotFound(_))) => {
                return match flush(&mut batch, &mut bytes, cursor) {
                    Ok(()) => Ended::Gone,
                    Err(ended) => ended,
                };
            }
            Some(Err(e)) => {
                tracing::warn!(task = %task_id, error = %e, "following a task's output failed; following again");
                return match flush(&mut batch, &mut bytes, cursor) {
                    Ok(()) => Ended::Retry,
                    Err(ended) => ended,
                };
            }
            None => {
                return match flush(&mut batch, &mut bytes, cursor) {
                    Ok(()) => Ended::Drained,
                    Err(ended) => ended,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_counts_lines_at_the_last_instant() {
        // (timestamps shipped, cursor after)
        let cases: Vec<(Vec<i64>, Cursor)> = vec![
            (vec![], Cursor { last_ns: None, same_ns: 0 }),
            (vec![5], Cursor { last_ns: Some(5), same_ns: 1 }),
            (vec![5, 5, 5], Cursor { last_ns: Some(5), same_ns: 3 }),
            (vec![5, 5, 7], Cursor { last_ns: Some(7), same_ns: 1 }),
            // A line older than the last (stdout and stderr interleaved) does not move it back.
            (vec![5, 7, 6], Cursor { last_ns: Some(7), same_ns: 1 }),
        ];
        for (shipped, want) in cases {
            let mut c = Cursor::default();
            for ts in &shipped {
                c.advance(*ts);
            }
            assert_eq!(c, want, "{shipped:?}");
        }
    }

    #[test]
    fn a_resumed_follow_skips_what_was_shipped() {
        let line =
            |ts: i64| OutputLine { timestamp_ns: ts, stream: berth_runtime::OutputStream::Stdout, line: "x".into() };
        // Cursor at 5 with two lines shipped there: the follower yields 5, 5, 5, 6 again from 5 on.
        let mut r = Resume { at: Some(5), skip: 2 };
        let got: Vec<bool> = [5, 5, 5, 6, 5].iter().map(|ts| r.skips(&line(*ts))).collect();
        // After the first new line, nothing is skipped any more.
        assert_eq!(got, vec![true, true, false, false, false]);
        let mut fresh = Resume { at: None, skip: 0 };
        assert!(!fresh.skips(&line(1)));
    }
}
