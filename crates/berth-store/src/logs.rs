//! CloudWatch Logs: log groups, their streams and the streams' events. Times are epoch milliseconds, as the Logs
//! API speaks them. Deleting a group deletes its streams and events (foreign keys with `ON DELETE CASCADE`) and
//! its tags (the generic `tags` table, keyed by the group ARN). Events carry a store-assigned `seq` that increases
//! with every insert, so `(timestamp_ms, seq)` is a total order that readers use as a paging cursor. The store
//! validates nothing about events (sizes, ages, order): the control plane does.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, StoreError, Tx};

/// A log group. `name` is unique (case-sensitive, as AWS).
#[derive(Debug, Clone, PartialEq)]
pub struct LogGroupRow {
    pub name: String,
    /// `arn:aws:logs:<region>:<account>:log-group:<name>` (without the `:*` DescribeLogGroups adds to `arn`).
    pub arn: String,
    /// Epoch milliseconds.
    pub created_ms: i64,
    /// `None`: events never expire.
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
    /// `STANDARD` or `INFREQUENT_ACCESS`.
    pub log_group_class: String,
    pub deletion_protection: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogStreamRow {
    /// The log group's name.
    pub group: String,
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
    /// The UTF-8 bytes of the messages currently stored.
    pub stored_bytes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEventRow {
    /// Store-assigned, increasing with every insert.
    pub seq: i64,
    /// The log stream's name.
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: String,
}

/// A position in the `(timestamp_ms, seq)` order of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogCursor {
    pub timestamp_ms: i64,
    pub seq: i64,
}

impl LogEventRow {
    pub fn cursor(&self) -> LogCursor {
        LogCursor { timestamp_ms: self.timestamp_ms, seq: self.seq }
    }
}

/// Which events a read returns: a time window (`start_ms` inclusive, `end_ms` exclusive, as AWS), a cursor
/// bound (strictly after it reading forward, strictly before it reading backward), and at most `limit` rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEventRange {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub cursor: Option<LogCursor>,
    /// Newest first (and `cursor` bounds from above) instead of oldest first.
    pub backward: bool,
    pub limit: usize,
}

const GROUP_COLS: &str = "name, arn, created_ms, retention_days, kms_key_id, log_group_class, deletion_protection";
const STREAM_COLS: &str =
    "group_name, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes";
const EVENT_COLS: &str = "seq, stream, timestamp_ms, ingestion_ms, message";

fn group_row(r: &Row<'_>) -> rusqlite::Result<LogGroupRow> {
    Ok(LogGroupRow {
        name: r.get(0)?,
        arn: r.get(1)?,
        created_ms: r.get(2)?,
        retention_days: r.get(3)?,
        kms_key_id: r.get(4)?,
        log_group_class: r.get(5)?,
        deletion_protection: r.get(6)?,
    })
}

fn stream_row(r: &Row<'_>) -> rusqlite::Result<LogStreamRow> {
    Ok(LogStreamRow {
        group: r.get(0)?,
        name: r.get(1)?,
        created_ms: r.get(2)?,
        first_event_ms: r.get(3)?,
        last_event_ms: r.get(4)?,
        last_ingestion_ms: r.get(5)?,
        stored_bytes: r.get(6)?,
    })
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<LogEventRow> {
    Ok(LogEventRow {
        seq: r.get(0)?,
        stream: r.get(1)?,
        timestamp_ms: r.get(2)?,
        ingestion_ms: r.get(3)?,
        message: r.get(4)?,
    })
}

fn conflict(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what)
        }
        e => e.into(),
    }
}

impl Tx<'_> {
    // ---- log groups

    /// Fails with `Conflict` if a group of that name exists.
    pub fn log_group_insert(&self, g: &LogGroupRow) -> Result<()> {
        self.conn()
            .execute(
                &format!("INSERT INTO log_groups({GROUP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    g.name,
                    g.arn,
                    g.created_ms,
                    g.retention_days,
                    g.kms_key_id,
                    g.log_group_class,
                    g.deletion_protection
                ],
            )
            .map_err(conflict(format!("log group {}", g.name)))?;
        Ok(())
    }

    pub fn log_group_get(&self, name: &str) -> Result<Option<LogGroupRow>> {
        let sql = format!("SELECT {GROUP_COLS} FROM log_groups WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], group_row).optional()?)
    }

    /// Every log group, by name (byte order, as AWS lists them).
    pub fn log_groups_all(&self) -> Result<Vec<LogGroupRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {GROUP_COLS} FROM log_groups ORDER BY name"))?;
        let rows = st.query_map([], group_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a group with its streams, events and tags; `false` if there was none.
    pub fn log_group_delete(&self, name: &str) -> Result<bool> {
        let Some(g) = self.log_group_get(name)? else { return Ok(false) };
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [&g.arn])?;
        Ok(self.conn().execute("DELETE FROM log_groups WHERE name = ?1", [name])? > 0)
    }

    /// Sets (or with `None` removes) a group's retention; `false` if there is no such group.
    pub fn log_group_set_retention(&self, name: &str, days: Option<i32>) -> Result<bool> {
        let n =
            self.conn().execute("UPDATE log_groups SET retention_days = ?2 WHERE name = ?1", params![name, days])?;
        Ok(n > 0)
    }

    /// The bytes stored in a group's streams.
    pub fn log_group_stored_bytes(&self, name: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams WHERE group_name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    // ---- log streams

    /// Fails with `Conflict` if the stream exists in the group (the group must exist: foreign key).
    pub fn log_stream_insert(&self, s: &LogStreamRow) -> Result<()> {
        self.conn()
            .execute(
                &format!("INSERT INTO log_streams({STREAM_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    s.group,
                    s.name,
                    s.created_ms,
                    s.first_event_ms,
                    s.last_event_ms,
                    s.last_ingestion_ms,
                    s.stored_bytes
                ],
            )
            .map_err(conflict(format!("log stream {} in {}", s.name, s.group)))?;
        Ok(())
    }

    pub fn log_stream_get(&self, group: &str, name: &str) -> Result<Option<LogStreamRow>> {
        let sql = format!("SELECT {STREAM_COLS} FROM log_streams WHERE group_name = ?1 AND name = ?2");
        Ok(self.conn().query_row(&sql, params![group, name], stream_row).optional()?)
    }

    /// A group's streams, by name.
    pub fn log_streams_of(&self, group: &str) -> Result<Vec<LogStreamRow>> {
        let mut st = self
            .conn()
            .prepare(&format!("SELECT {STREAM_COLS} FROM log_streams WHERE group_name = ?1 ORDER BY name"))?;
        let rows = st.query_map([group], stream_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a stream and its events; `false` if there was none.
    pub fn log_stream_delete(&self, group: &str, name: &str) -> Result<bool> {
        let n =
            self.conn().execute("DELETE FROM log_streams WHERE group_name = ?1 AND name = ?2", params![group, name])?;
        Ok(n > 0)
    }

    // ---- log events

    /// Appends events (timestamp_ms, message) to an existing stream in the given order and updates the stream's
    /// first/last event time, last ingestion time and stored bytes. No validation here (the control layer does it).
    pub fn log_events_append(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, &str)],
        ingestion_ms: i64,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut st = self.conn().prepare_cached(
            "INSERT INTO log_events(group_name, stream, timestamp_ms, ingestion_ms, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut bytes = 0i64;
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (ts, msg) in events {
            st.execute(params![group, stream, ts, ingestion_ms, msg])?;
            bytes += msg.len() as i64;
            first = first.min(*ts);
            last = last.max(*ts);
        }
        self.conn().execute(
            "UPDATE log_streams SET \
               first_event_ms = MIN(COALESCE(first_event_ms, ?3), ?3), \
               last_event_ms = MAX(COALESCE(last_event_ms, ?4), ?4), \
               last_ingestion_ms = ?5, stored_bytes = stored_bytes + ?6 \
             WHERE group_name = ?1 AND name = ?2",
            params![group, stream, first, last, ingestion_ms, bytes],
        )?;
        Ok(())
    }

    /// A stream's events in `range`, oldest first (newest first when reading backward).
    pub fn log_events_read(&self, group: &str, stream: &str, range: &LogEventRange) -> Result<Vec<LogEventRow>> {
        self.log_events_query(group, Some(stream), None, range)
    }

    /// Events of a whole group (or of the streams named in `streams`) in `range`, in `(timestamp, seq)` order.
    pub fn log_events_scan(
        &self,
        group: &str,
        streams: Option<&[String]>,
        range: &LogEventRange,
    ) -> Result<Vec<LogEventRow>> {
        self.log_events_query(group, None, streams, range)
    }

    fn log_events_query(
        &self,
        group: &str,
        stream: Option<&str>,
        streams: Option<&[String]>,
        range: &LogEventRange,
    ) -> Result<Vec<LogEventRow>> {
        let mut sql = format!("SELECT {EVENT_COLS} FROM log_events WHERE group_name = ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![group.to_string().into()];
        let mut push = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(s) = stream {
            push(&mut sql, " AND stream = ?", s.to_string().into());
        }
        if let Some(names) = streams {
            if names.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND stream IN (");
            for (i, n) in names.iter().enumerate() {
                push(&mut sql, if i == 0 { "?" } else { ", ?" }, n.clone().into());
            }
            sql.push(')');
        }
        if let Some(t) = range.start_ms {
            push(&mut sql, " AND timestamp_ms >= ?", t.into());
        }
        if let Some(t) = range.end_ms {
            push(&mut sql, " AND timestamp_ms < ?", t.into());
        }
        if let Some(c) = range.cursor {
            // (timestamp, seq) compared as a pair, written out so SQLite can use the index.
            let op = if range.backward { "<" } else { ">" };
            args.push(c.timestamp_ms.into());
            let ts = args.len();
            args.push(c.seq.into());
            let seq = args.len();
            sql.push_str(&format!(" AND (timestamp_ms {op} ?{ts} OR (timestamp_ms = ?{ts} AND seq {op} ?{seq}))"));
        }
        let dir = if range.backward { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY timestamp_ms {dir}, seq {dir} LIMIT {}", range.limit));
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args), event_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a group's events with a timestamp before `before_ms` and brings its streams' stored bytes and
    /// first event times up to date. Returns how many events went.
    pub fn log_events_expire(&self, group: &str, before_ms: i64) -> Result<usize> {
        let n = self
            .conn()
            .execute("DELETE FROM log_events WHERE group_name = ?1 AND timestamp_ms < ?2", params![group, before_ms])?;
        if n > 0 {
            self.conn().execute(
                "UPDATE log_streams SET \
                   stored_bytes = (SELECT COALESCE(SUM(length(CAST(e.message AS BLOB))), 0) FROM log_events e \
                                   WHERE e.group_name = log_streams.group_name AND e.stream = log_streams.name), \
                   first_event_ms = (SELECT MIN(e.timestamp_ms) FROM log_events e \
                                     WHERE e.group_name = log_streams.group_name AND e.stream = log_streams.name) \
                 WHERE group_name = ?1",
                [group],
            )?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn group(name: &str) -> LogGroupRow {
        LogGroupRow {
            name: name.into(),
            arn: format!("arn:aws:logs:us-east-1:000000000000:log-group:{name}"),
            created_ms: 1_000,
            retention_days: None,
            kms_key_id: None,
            log_group_class: "STANDARD".into(),
            deletion_protection: false,
        }
    }

    fn stream(group: &str, name: &str) -> LogStreamRow {
        LogStreamRow {
            group: group.into(),
            name: name.into(),
            created_ms: 2_000,
            first_event_ms: None,
            last_event_ms: None,
            last_ingestion_ms: None,
            stored_bytes: 0,
        }
    }

    fn range(limit: usize) -> LogEventRange {
        LogEventRange { limit, ..LogEventRange::default() }
    }

    fn messages(rows: &[LogEventRow]) -> Vec<&str> {
        rows.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn groups_and_streams_are_unique_and_cascade() {
        let mut s = Store::open_in_memory().expect("open");
        s.tx(|t| {
            t.log_group_insert(&group("/app/web"))?;
            assert!(matches!(t.log_group_insert(&group("/app/web")), Err(StoreError::Conflict(_))));
            // Names are case-sensitive.
            t.log_group_insert(&group("/app/WEB"))?;
            t.log_stream_insert(&stream("/app/web", "a"))?;
            assert!(matches!(t.log_stream_insert(&stream("/app/web", "a")), Err(StoreError::Conflict(_))));
            t.log_stream_insert(&stream("/app/WEB", "a"))?;
            // A stream needs its group.
            assert!(t.log_stream_insert(&stream("/missing", "a")).is_err());
            t.tags_put(&group("/app/web").arn, &[("team".into(), "x".into())])?;
            t.log_events_append("/app/web", "a", &[(10, "one"), (20, "two")], 30)?;
            Ok::<_, StoreError>(())
        })
        .expect("setup");
        s.tx(|t| {
            assert_eq!(t.log_group_get("/app/web")?, Some(group("/app/web")));
            assert_eq!(
                t.log_groups_all()?.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
                ["/app/WEB", "/app/web"]
            );
            assert!(t.log_group_delete("/app/web")?);
            assert!(!t.log_group_delete("/app/web")?);
            assert_eq!(t.log_group_get("/app/web")?, None);
            assert_eq!(t.log_stream_get("/app/web", "a")?, None);
            assert!(t.log_events_scan("/app/web", None, &range(10))?.is_empty());
            assert!(t.tags_get(&group("/app/web").arn)?.is_empty());
            // The other group is untouched, and the name can be reused.
            assert!(t.log_stream_get("/app/WEB", "a")?.is_some());
            t.log_group_insert(&group("/app/web"))?;
            assert!(t.log_streams_of("/app/web")?.is_empty());
            Ok::<_, StoreError>(())
        })
        .expect("delete");
    }

    #[test]
    fn append_updates_stream_and_reads_page_both_ways() {
        let mut s = Store::open_in_memory().expect("open");
        s.tx(|t| {
            t.log_group_insert(&group("g"))?;
            t.log_stream_insert(&stream("g", "s"))?;
            t.log_stream_insert(&stream("g", "other"))?;
            t.log_events_append("g", "s", &[(100, "a"), (100, "b"), (50, "héllo")], 1_000)?;
            t.log_events_append("g", "s", &[(200, "c")], 2_000)?;
            t.log_events_append("g", "other", &[(150, "x")], 2_500)?;
            Ok::<_, StoreError>(())
        })
        .expect("append");
        s.tx(|t| {
            let st = t.log_stream_get("g", "s")?.expect("stream");
            assert_eq!((st.first_event_ms, st.last_event_ms, st.last_ingestion_ms), (Some(50), Some(200), Some(2_000)));
            assert_eq!(st.stored_bytes, 1 + 1 + 6 + 1);
            assert_eq!(t.log_group_stored_bytes("g")?, 10);

            let all = t.log_events_read("g", "s", &range(100))?;
            assert_eq!(messages(&all), ["héllo", "a", "b", "c"]);
            assert!(all.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
            assert!(all.iter().all(|e| e.stream == "s"));
            // Forward paging from a cursor in the middle of equal timestamps.
            let page = t.log_events_read("g", "s", &LogEventRange { cursor: Some(all[1].cursor()), ..range(100) })?;
            assert_eq!(messages(&page), ["b", "c"]);
            // Backward paging.
            let back = t.log_events_read("g", "s", &LogEventRange { backward: true, ..range(2) })?;
            assert_eq!(messages(&back), ["c", "b"]);
            let back2 = t.log_events_read(
                "g",
                "s",
                &LogEventRange { backward: true, cursor: Some(back[1].cursor()), ..range(2) },
            )?;
            assert_eq!(messages(&back2), ["a", "héllo"]);
            // Time window: start inclusive, end exclusive.
            let win =
                t.log_events_read("g", "s", &LogEventRange { start_ms: Some(100), end_ms: Some(200), ..range(100) })?;
            assert_eq!(messages(&win), ["a", "b"]);
            // Group-wide scan, and restricted to named streams.
            assert_eq!(messages(&t.log_events_scan("g", None, &range(100))?), ["héllo", "a", "b", "x", "c"]);
            let only = ["other".to_string()];
            assert_eq!(messages(&t.log_events_scan("g", Some(&only), &range(100))?), ["x"]);
            assert!(t.log_events_scan("g", Some(&[]), &range(100))?.is_empty());
            Ok::<_, StoreError>(())
        })
        .expect("read");
    }

    #[test]
    fn retention_and_expiry() {
        let mut s = Store::open_in_memory().expect("open");
        s.tx(|t| {
            t.log_group_insert(&group("g"))?;
            t.log_stream_insert(&stream("g", "s"))?;
            t.log_events_append("g", "s", &[(10, "old"), (20, "older?"), (30, "new")], 40)?;
            assert!(t.log_group_set_retention("g", Some(7))?);
            assert!(!t.log_group_set_retention("nope", Some(7))?);
            assert_eq!(t.log_group_get("g")?.and_then(|g| g.retention_days), Some(7));
            assert_eq!(t.log_events_expire("g", 30)?, 2);
            assert_eq!(t.log_events_expire("g", 30)?, 0);
            let st = t.log_stream_get("g", "s")?.expect("stream");
            assert_eq!((st.stored_bytes, st.first_event_ms), (3, Some(30)));
            assert_eq!(messages(&t.log_events_read("g", "s", &range(10))?), ["new"]);
            assert!(t.log_group_set_retention("g", None)?);
            assert_eq!(t.log_group_get("g")?.and_then(|g| g.retention_days), None);
            assert!(t.log_stream_delete("g", "s")?);
            assert!(!t.log_stream_delete("g", "s")?);
            assert!(t.log_events_scan("g", None, &range(10))?.is_empty());
            Ok::<_, StoreError>(())
        })
        .expect("retention");
    }
}
