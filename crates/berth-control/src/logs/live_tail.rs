//! StartLiveTail: a session that streams the events ingested into up to 10 log groups as they arrive.
//!
//! Every accepted batch leaves the one ingest gate ([`super::ingest::append`], after its transaction committed)
//! on a broadcast channel, the [`Hub`]; with no session open that costs one atomic load. A session is a task
//! holding a receiver: it keeps the events of its groups (and streams, and filter pattern), and writes
//! `sessionUpdate`s into a small channel the API layer turns into event-stream frames. An update with events goes
//! out as soon as one arrives, then at most once a second while events keep coming; after a second without one,
//! an empty update is the heartbeat. More than [`MAX_EVENTS_PER_UPDATE`] matching events in one update are
//! sampled down to that many (reservoir sampling, arrival order kept) with `sessionMetadata.sampled`, as are the
//! updates of a session that fell behind the hub. A session ends with `SessionTimeoutException` after three
//! hours, or when its client goes away (the API layer drops the receiver).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_core::{AwsError, ErrorCode};
use berth_iam::RequestContext;
use berth_model::logs::{
    LiveTailSessionLogEvent, LiveTailSessionMetadata, LiveTailSessionStart, LiveTailSessionUpdate, StartLiveTailRequest,
};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::pattern::Pattern;
use super::{group_not_found, invalid};
use crate::{CallerIdentity, Control, ControlError, authz};

/// The longest a session stays open (AWS: three hours).
pub const SESSION_LIMIT: Duration = Duration::from_secs(3 * 60 * 60);
/// The most events one `sessionUpdate` carries; more are sampled.
pub const MAX_EVENTS_PER_UPDATE: usize = 500;
/// The least time between two updates carrying events, and the heartbeat period.
const UPDATE_PERIOD: Duration = Duration::from_secs(1);
/// Log groups one session may tail.
const MAX_GROUPS: usize = 10;
/// Sessions open at once (AWS has a per-account quota); more answer LimitExceededException.
pub const MAX_SESSIONS: usize = 100;
/// Batches the hub keeps for a session that fell behind before it skips ahead (and the session says `sampled`).
/// A session never waits for its client, so only CPU makes one fall behind; this bounds what the hub holds.
const HUB_CAPACITY: usize = 1024;
/// Updates buffered for a slow client (AWS: 10); an update that does not fit is dropped and the next one says
/// `sampled`.
const CLIENT_BUFFER: usize = 10;

/// One committed batch of a stream.
#[derive(Debug)]
pub(crate) struct Appended {
    group: String,
    stream: String,
    ingestion_ms: i64,
    events: Vec<(i64, String)>,
}

/// Where ingested batches are offered to the open sessions.
pub(crate) struct Hub {
    tx: broadcast::Sender<Arc<Appended>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: broadcast::channel(HUB_CAPACITY).0 }
    }
}

impl Hub {
    /// Offers committed events to the open sessions; free when none is open.
    pub(crate) fn publish(&self, group: &str, stream: &str, events: &[(i64, String)], ingestion_ms: i64) {
        if events.is_empty() || self.tx.receiver_count() == 0 {
            return;
        }
        let batch = Appended { group: group.into(), stream: stream.into(), ingestion_ms, events: events.to_vec() };
        let _ = self.tx.send(Arc::new(batch));
    }

    /// Open sessions.
    pub(crate) fn sessions(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// One message of a session, for the API layer to frame.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveMessage {
    /// `sessionStart` or `sessionUpdate`, with its JSON payload.
    Event { event_type: &'static str, payload: Vec<u8> },
    /// `SessionTimeoutException` or `SessionStreamingException`; the stream ends after it.
    Exception { exception_type: &'static str, payload: Vec<u8> },
}

/// An open live-tail session: its messages, `sessionStart` first. Dropping it ends the session.
#[derive(Debug)]
pub struct LiveTail {
    rx: mpsc::Receiver<LiveMessage>,
}

impl LiveTail {
    /// The next message (`Ready(None)`: the session ended).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<LiveMessage>> {
        self.rx.poll_recv(cx)
    }

    /// The next message, awaited (tests).
    pub async fn next(&mut self) -> Option<LiveMessage> {
        self.rx.recv().await
    }
}

/// Which events a session shows.
#[derive(Debug)]
struct Filter {
    /// Group name → the identifier the request named it by (events report it).
    groups: BTreeMap<String, String>,
    streams: Streams,
    pattern: Pattern,
}

#[derive(Debug)]
enum Streams {
    All,
    Named(Vec<String>),
    Prefixed(Vec<String>),
}

impl Filter {
    fn identifier(&self, group: &str, stream: &str) -> Option<&str> {
        let id = self.groups.get(group)?;
        let stream_ok = match &self.streams {
            Streams::All => true,
            Streams::Named(names) => names.iter().any(|n| n == stream),
            Streams::Prefixed(prefixes) => prefixes.iter().any(|p| stream.starts_with(p.as_str())),
        };
        stream_ok.then_some(id.as_str())
    }
}

impl Control {
    /// StartLiveTail: validates and authorizes (`logs:StartLiveTail` on each group), then opens the session.
    /// Must be called within a Tokio runtime (the session is a task).
    pub fn start_live_tail(&self, caller: &CallerIdentity, r: StartLiveTailRequest) -> Result<LiveTail, AwsError> {
        let errors = berth_model::logs::Operation::StartLiveTail(StartLiveTailRequest::default()).errors();
        let out = self.live_tail_open(caller, r, Instant::now() + SESSION_LIMIT);
        crate::error::answer(berth_model::logs::SIGNING_NAME, "StartLiveTail", errors, out)
    }

    /// [`Control::start_live_tail`] with the session's end given (tests shorten it).
    pub fn live_tail_open(
        &self,
        caller: &CallerIdentity,
        r: StartLiveTailRequest,
        deadline: Instant,
    ) -> Result<LiveTail, AwsError> {
        let identifiers = r.log_group_identifiers.clone().unwrap_or_default();
        if identifiers.is_empty() || identifiers.len() > MAX_GROUPS {
            return Err(invalid_aws(format!(
                "1 validation error detected: Value at 'logGroupIdentifiers' failed to satisfy constraint: Member \
                 must have length between 1 and {MAX_GROUPS}"
            )));
        }
        let mut groups = BTreeMap::new();
        for id in &identifiers {
            let name = if id.starts_with("arn:") {
                if id.ends_with('*') {
                    return Err(invalid_aws(format!("The log group ARN '{id}' can't end with an asterisk (*).")));
                }
                self.log_group_name_of_arn(id).ok_or_else(|| AwsError::from(group_not_found()))?
            } else {
                id.clone()
            };
            groups.insert(name, id.clone());
        }
        let names = r.log_stream_names.clone().filter(|v| !v.is_empty());
        let prefixes = r.log_stream_name_prefixes.clone().filter(|v| !v.is_empty());
        let streams = match (names, prefixes) {
            (Some(_), Some(_)) => {
                return Err(invalid_aws("logStreamNames and logStreamNamePrefixes are mutually exclusive."));
            }
            (Some(_), None) | (None, Some(_)) if groups.len() > 1 => {
                return Err(invalid_aws(
                    "logStreamNames or logStreamNamePrefixes can be given only with exactly one log group.",
                ));
            }
            (Some(n), None) => Streams::Named(n),
            (None, Some(p)) => Streams::Prefixed(p),
            (None, None) => Streams::All,
        };
        let pattern = Pattern::parse(r.log_event_filter_pattern.as_deref().unwrap_or(""))
            .map_err(|e| invalid_aws(format!("Invalid filter pattern: {e}")))?;
        // Authorized on each group (with its tags), then each must exist.
        let rows = self.read(|tx| {
            let mut rows = Vec::new();
            for name in groups.keys() {
                let arn = self.log_group_arn(name);
                rows.push((arn.clone(), tx.tags_get(&arn)?, tx.log_group_get(name)?.is_some()));
            }
            Ok(rows)
        })?;
        if !authz::is_root(caller) {
            for (arn, tags, _) in &rows {
                let ctx = RequestContext::new("logs:StartLiveTail", arn.as_str())
                    .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                authz::authorize_request(caller, ctx)?;
            }
        }
        if rows.iter().any(|(_, _, exists)| !exists) {
            return Err(group_not_found().into());
        }
        if self.live_tail.sessions() >= MAX_SESSIONS {
            return Err(AwsError::new(
                ErrorCode::LimitExceeded,
                format!("At most {MAX_SESSIONS} live tail sessions can be open at once."),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| AwsError::new(ErrorCode::Server, "no runtime to run the live tail session on"))?;
        let start = LiveTailSessionStart {
            request_id: Some(berth_core::ids::uuid4()),
            session_id: Some(berth_core::ids::uuid4()),
            log_group_identifiers: Some(identifiers),
            log_stream_names: r.log_stream_names,
            log_stream_name_prefixes: r.log_stream_name_prefixes,
            log_event_filter_pattern: r.log_event_filter_pattern,
        };
        let (out, rx) = mpsc::channel(CLIENT_BUFFER);
        let payload = serde_json::to_vec(&start).map_err(|e| AwsError::new(ErrorCode::Server, e.to_string()))?;
        out.try_send(LiveMessage::Event { event_type: "sessionStart", payload })
            .map_err(|_| AwsError::new(ErrorCode::Server, "the live tail session could not start"))?;
        let seed = start
            .session_id
            .as_deref()
            .map_or(1, |s| s.bytes().fold(0x9e37_79b9_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
        let session = Session::new(Filter { groups, streams, pattern }, seed);
        runtime.spawn(session.run(self.live_tail.tx.subscribe(), out, deadline));
        tracing::debug!(session = ?start.session_id, sessions = self.live_tail.sessions(), "live tail session opened");
        Ok(LiveTail { rx })
    }

    /// Offers a committed batch to the live-tail sessions (the ingest gate's callers, after their transaction).
    pub(crate) fn live_tail_publish(&self, group: &str, stream: &str, events: &[(i64, String)], ingestion_ms: i64) {
        self.live_tail.publish(group, stream, events, ingestion_ms);
    }
}

fn invalid_aws(message: impl Into<String>) -> AwsError {
    match invalid(message) {
        ControlError::Aws(e) => e,
        other => AwsError::from(other),
    }
}

/// A session's state between updates.
struct Session {
    filter: Filter,
    /// The events of the next update: a reservoir of at most [`MAX_EVENTS_PER_UPDATE`], by arrival number.
    pending: Vec<(u64, LiveTailSessionLogEvent)>,
    /// Events that matched since the last update.
    matched: u64,
    /// Batches skipped because the session fell behind the hub.
    lagged: bool,
    rng: u64,
}

impl Session {
    fn new(filter: Filter, seed: u64) -> Self {
        Session { filter, pending: Vec::new(), matched: 0, lagged: false, rng: seed | 1 }
    }

    /// Keeps the batch's matching events (sampling past [`MAX_EVENTS_PER_UPDATE`]).
    fn offer(&mut self, batch: &Appended) {
        let Some(id) = self.filter.identifier(&batch.group, &batch.stream).map(str::to_string) else { return };
        for (ts, message) in &batch.events {
            if !self.filter.pattern.matches(message) {
                continue;
            }
            let n = self.matched;
            self.matched += 1;
            let slot = if (n as usize) < MAX_EVENTS_PER_UPDATE {
                None
            } else {
                // Reservoir sampling: the n-th event replaces a kept one with probability 500 / (n + 1).
                let j = self.next_random() % (n + 1);
                match usize::try_from(j) {
                    Ok(j) if j < MAX_EVENTS_PER_UPDATE => Some(j),
                    _ => continue,
                }
            };
            let event = LiveTailSessionLogEvent {
                log_stream_name: Some(batch.stream.clone()),
                log_group_identifier: Some(id.clone()),
                message: Some(message.clone()),
                timestamp: Some(*ts),
                ingestion_time: Some(batch.ingestion_ms),
            };
            match slot {
                None => self.pending.push((n, event)),
                Some(j) => self.pending[j] = (n, event),
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: sampling needs spread, not secrecy.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next update, in arrival order; resets the counts.
    fn take_update(&mut self) -> LiveTailSessionUpdate {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(n, _)| *n);
        let sampled = self.lagged || self.matched > MAX_EVENTS_PER_UPDATE as u64;
        self.matched = 0;
        self.lagged = false;
        LiveTailSessionUpdate {
            session_metadata: Some(LiveTailSessionMetadata { sampled: Some(sampled) }),
            session_results: Some(pending.into_iter().map(|(_, e)| e).collect()),
        }
    }

    async fn run(mut self, mut rx: broadcast::Receiver<Arc<Appended>>, out: mpsc::Sender<LiveMessage>, end: Instant) {
        let mut last_update = Instant::now();
        let mut last_events: Option<Instant> = None;
        loop {
            let has_events = !self.pending.is_empty() || self.lagged;
            let due = match (has_events, last_events) {
                (true, Some(t)) => t + UPDATE_PERIOD,
                (true, None) => Instant::now(),
                (false, _) => last_update + UPDATE_PERIOD,
            };
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(end) => {
                    let payload = br#"{"message":"Session timed out after three hours."}"#.to_vec();
                    let timeout = LiveMessage::Exception { exception_type: "SessionTimeoutException", payload };
                    let _ = tokio::time::timeout(UPDATE_PERIOD * 5, out.send(timeout)).await;
                    return;
                }
                () = out.closed() => return,
                () = tokio::time::sleep_until(due) => {
                    let update = self.take_update();
                    let carried = update.session_results.as_ref().is_some_and(|r| !r.is_empty());
                    let Ok(payload) = serde_json::to_vec(&update) else { return };
                    // Never wait for the client: the hub's receiver must keep draining (its batches are shared).
                    match out.try_send(LiveMessage::Event { event_type: "sessionUpdate", payload }) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => self.lagged = true,
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                    last_update = Instant::now();
                    if carried {
                        last_events = Some(last_update);
                    }
                }
                batch = rx.recv() => match batch {
                    Ok(batch) => self.offer(&batch),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.lagged = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(streams: Streams, pattern: &str) -> Filter {
        Filter {
            groups: BTreeMap::from([("g".to_string(), "arn:g".to_string())]),
            streams,
            pattern: Pattern::parse(pattern).expect("pattern"),
        }
    }

    fn batch(group: &str, stream: &str, messages: &[&str]) -> Appended {
        Appended {
            group: group.into(),
            stream: stream.into(),
            ingestion_ms: 7,
            events: messages.iter().enumerate().map(|(i, m)| (i as i64, m.to_string())).collect(),
        }
    }

    #[test]
    fn filters_by_group_stream_and_pattern() {
        // (streams, pattern, group, stream, messages, expected messages)
        type Case = (Streams, &'static str, &'static str, &'static str, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (Streams::All, "", "g", "s", vec!["a", "b"], vec!["a", "b"]),
            (Streams::All, "", "other", "s", vec!["a"], vec![]),
            (Streams::All, "ERROR", "g", "s", vec!["ERROR x", "INFO y"], vec!["ERROR x"]),
            (Streams::Named(vec!["s1".into()]), "", "g", "s1", vec!["a"], vec!["a"]),
            (Streams::Named(vec!["s1".into()]), "", "g", "s10", vec!["a"], vec![]),
            (Streams::Prefixed(vec!["web/".into()]), "", "g", "web/1", vec!["a"], vec!["a"]),
            (Streams::Prefixed(vec!["web/".into()]), "", "g", "api/1", vec!["a"], vec![]),
        ];
        for (streams, pattern, group, stream, messages, want) in cases {
            let mut s = Session::new(filter(streams, pattern), 1);
            s.offer(&batch(group, stream, &messages));
            let update = s.take_update();
            let got: Vec<String> =
                update.session_results.unwrap_or_default().into_iter().filter_map(|e| e.message).collect();
            assert_eq!(got, want, "{group}/{stream} {pattern:?}");
            assert_eq!(update.session_metadata.and_then(|m| m.sampled), Some(false));
        }
    }

    #[test]
    fn events_report_the_identifier_and_times() {
        let mut s = Session::new(filter(Streams::All, ""), 1);
        s.offer(&batch("g", "s", &["hello"]));
        let e = s.take_update().session_results.unwrap_or_default().remove(0);
        assert_eq!(e.log_group_identifier.as_deref(), Some("arn:g"));
        assert_eq!(e.log_stream_name.as_deref(), Some("s"));
        assert_eq!((e.timestamp, e.ingestion_time), (Some(0), Some(7)));
    }

    #[test]
    fn more_than_500_events_are_sampled_in_arrival_order() {
        let mut s = Session::new(filter(Streams::All, ""), 42);
        let messages: Vec<String> = (0..2000).map(|i| format!("{i}")).collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        s.offer(&batch("g", "s", &refs));
        let update = s.take_update();
        let got: Vec<i64> = update
            .session_results
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.message.as_deref()?.parse().ok())
            .collect();
        assert_eq!(got.len(), MAX_EVENTS_PER_UPDATE);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "arrival order");
        assert!(got.iter().any(|n| *n >= 1000), "later events are sampled in too");
        assert_eq!(update.session_metadata.and_then(|m| m.sampled), Some(true));
        // The next update starts afresh.
        assert_eq!(s.take_update().session_metadata.and_then(|m| m.sampled), Some(false));
    }

    #[tokio::test(start_paused = true)]
    async fn updates_heartbeats_and_timeout() {
        let hub = Hub::default();
        let (out, mut rx) = mpsc::channel(CLIENT_BUFFER);
        let start = Instant::now();
        let task = tokio::spawn(Session::new(filter(Streams::All, ""), 1).run(
            hub.tx.subscribe(),
            out,
            start + Duration::from_millis(3500),
        ));
        tokio::task::yield_now().await;
        hub.publish("g", "s", &[(1, "first".into())], 2);
        let next = |rx: &mut mpsc::Receiver<LiveMessage>| {
            let m = rx.try_recv().ok();
            m.map(|m| match m {
                LiveMessage::Event { event_type, payload } => {
                    let u: LiveTailSessionUpdate = serde_json::from_slice(&payload).expect("update");
                    (event_type, u.session_results.unwrap_or_default().len())
                }
                LiveMessage::Exception { exception_type, .. } => (exception_type, 0),
            })
        };
        // The first event goes out at once (no earlier update carried events).
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(next(&mut rx), Some(("sessionUpdate", 1)));
        // The next one waits for the second to pass.
        hub.publish("g", "s", &[(3, "second".into())], 4);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(next(&mut rx), None);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(next(&mut rx), Some(("sessionUpdate", 1)));
        // Quiet: an empty heartbeat a second later.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(next(&mut rx), Some(("sessionUpdate", 0)));
        // The session's end.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut last = None;
        while let Some(m) = next(&mut rx) {
            last = Some(m);
        }
        assert_eq!(last, Some(("SessionTimeoutException", 0)));
        task.await.expect("session ended");
        assert_eq!(hub.sessions(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_client_never_stalls_the_session() {
        let hub = Hub::default();
        let (out, mut rx) = mpsc::channel(CLIENT_BUFFER);
        let task = tokio::spawn(Session::new(filter(Streams::All, ""), 1).run(
            hub.tx.subscribe(),
            out,
            Instant::now() + SESSION_LIMIT,
        ));
        // The client reads nothing while 2 × HUB_CAPACITY batches arrive over 30 s.
        for i in 0..2 * HUB_CAPACITY {
            hub.publish("g", "s", &[(i as i64, format!("line {i}"))], 0);
            if i % 70 == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(hub.tx.len(), 0, "the hub holds no batch for the session");
        // The session kept up with the hub (it never waited for the client), so it never lagged behind it: the
        // updates that did not fit were dropped and the next one that fits says so.
        let mut updates = Vec::new();
        while let Ok(LiveMessage::Event { payload, .. }) = rx.try_recv() {
            updates.push(serde_json::from_slice::<LiveTailSessionUpdate>(&payload).expect("update"));
        }
        assert_eq!(updates.len(), CLIENT_BUFFER, "the buffer holds the first updates");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let next = match rx.try_recv() {
            Ok(LiveMessage::Event { payload, .. }) => serde_json::from_slice::<LiveTailSessionUpdate>(&payload),
            other => panic!("{other:?}"),
        };
        assert_eq!(next.expect("update").session_metadata.and_then(|m| m.sampled), Some(true));
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test]
    async fn a_gone_client_ends_the_session() {
        let hub = Hub::default();
        let (out, rx) = mpsc::channel(CLIENT_BUFFER);
        let task = tokio::spawn(Session::new(filter(Streams::All, ""), 1).run(
            hub.tx.subscribe(),
            out,
            Instant::now() + SESSION_LIMIT,
        ));
        assert_eq!(hub.sessions(), 1);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("ended").expect("no panic");
        assert_eq!(hub.sessions(), 0);
    }
}
