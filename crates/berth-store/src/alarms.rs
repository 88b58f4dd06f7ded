//! CloudWatch metric alarms and their history. An alarm row keeps the configuration as PutMetricAlarm received it
//! (the control plane's JSON, opaque here), the columns DescribeAlarms filters on, the state with its reason, and
//! the evaluator's schedule: when the alarm is next due, when its Auto Scaling actions last ran in this state,
//! whether a SetAlarmState's actions are still to run, and a generation that every configuration or state change
//! by a command bumps (an evaluation writes its result only if the generation it read is still current). History
//! items are kept by a store-assigned `seq`; `(timestamp, seq)` orders and pages them, and they outlive their alarm
//! (as CloudWatch's do) until pruned by age. Times are epoch seconds.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub name: String,
    pub arn: String,
    /// The configuration, as the control plane serialized it.
    pub config: String,
    /// A single-metric alarm's metric (DescribeAlarmsForMetric); `None` for metric-math alarms.
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// Who created the alarm on a user's behalf (a target tracking policy's ARN), if anyone.
    pub managed_by: Option<String>,
    pub actions_enabled: bool,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub state_reason: String,
    pub state_reason_data: Option<String>,
    /// `PARTIAL_DATA`, `EVALUATION_FAILURE`, `EVALUATION_ERROR` or none.
    pub evaluation_state: Option<String>,
    pub state_updated: f64,
    pub state_transitioned: f64,
    pub config_updated: f64,
    /// When the evaluator next evaluates the alarm (epoch seconds).
    pub next_evaluation: i64,
    /// When the actions of the current state last ran (Auto Scaling actions repeat while the state lasts).
    pub actions_run_at: Option<i64>,
    /// A SetAlarmState changed the state and its actions have not run yet.
    pub actions_pending: bool,
    /// Bumped by every command that changes the alarm.
    pub generation: i64,
}

/// One `AlarmHistoryItem`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmHistoryRow {
    /// Store-assigned on insert (ignored by [`Tx::alarm_history_add`]).
    pub seq: i64,
    pub alarm_name: String,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub alarm_type: String,
    pub timestamp: f64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub item_type: String,
    pub summary: String,
    pub data: String,
}

/// A position in the `(timestamp, seq)` order of history items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryCursor {
    pub timestamp: f64,
    pub seq: i64,
}

/// Which history items a read returns, at most `limit`, in `(timestamp, seq)` order (newest first unless
/// `ascending`), strictly after `after` in that order.
#[derive(Debug, Clone, Default)]
pub struct AlarmHistoryQuery {
    pub alarm_name: Option<String>,
    /// Alarm types to include (empty: all).
    pub alarm_types: Vec<String>,
    pub item_type: Option<String>,
    /// Inclusive bounds.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub ascending: bool,
    pub after: Option<HistoryCursor>,
    pub limit: usize,
}

const ALARM_COLS: &str = "name, arn, config, namespace, metric_name, managed_by, actions_enabled, state, state_reason, \
     state_reason_data, evaluation_state, state_updated, state_transitioned, config_updated, next_evaluation, \
     actions_run_at, actions_pending, generation";
const HISTORY_COLS: &str = "seq, alarm_name, alarm_type, timestamp, item_type, summary, data";

fn alarm_row(r: &Row<'_>) -> rusqlite::Result<AlarmRow> {
    Ok(AlarmRow {
        name: r.get(0)?,
        arn: r.get(1)?,
        config: r.get(2)?,
        namespace: r.get(3)?,
        metric_name: r.get(4)?,
        managed_by: r.get(5)?,
        actions_enabled: r.get(6)?,
        state: r.get(7)?,
        state_reason: r.get(8)?,
        state_reason_data: r.get(9)?,
        evaluation_state: r.get(10)?,
        state_updated: r.get(11)?,
        state_transitioned: r.get(12)?,
        config_updated: r.get(13)?,
        next_evaluation: r.get(14)?,
        actions_run_at: r.get(15)?,
        actions_pending: r.get(16)?,
        generation: r.get(17)?,
    })
}

fn history_row(r: &Row<'_>) -> rusqlite::Result<AlarmHistoryRow> {
    Ok(AlarmHistoryRow {
        seq: r.get(0)?,
        alarm_name: r.get(1)?,
        alarm_type: r.get(2)?,
        timestamp: r.get(3)?,
        item_type: r.get(4)?,
        summary: r.get(5)?,
        data: r.get(6)?,
    })
}

impl Tx<'_> {
    pub fn alarm_get(&self, name: &str) -> Result<Option<AlarmRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {ALARM_COLS} FROM cw_alarms WHERE name = ?1"), [name], alarm_row)
            .optional()?)
    }

    /// Inserts the alarm or replaces the row of that name, exactly as given.
    pub fn alarm_put(&self, a: &AlarmRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT OR REPLACE INTO cw_alarms({ALARM_COLS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ),
            params![
                a.name,
                a.arn,
                a.config,
                a.namespace,
                a.metric_name,
                a.managed_by,
                a.actions_enabled,
                a.state,
                a.state_reason,
                a.state_reason_data,
                a.evaluation_state,
                a.state_updated,
                a.state_transitioned,
                a.config_updated,
                a.next_evaluation,
                a.actions_run_at,
                a.actions_pending,
                a.generation
            ],
        )?;
        Ok(())
    }

    /// Whether an alarm of that name existed.
    pub fn alarm_delete(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM cw_alarms WHERE name = ?1", [name])? > 0)
    }

    /// Every alarm, by name.
    pub fn alarms_list(&self) -> Result<Vec<AlarmRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {ALARM_COLS} FROM cw_alarms ORDER BY name"))?;
        let rows = st.query_map([], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn alarms_count(&self) -> Result<usize> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM cw_alarms", [], |r| r.get::<_, i64>(0))? as usize)
    }

    /// The alarms of one metric (namespace and name), by name.
    pub fn alarms_for_metric(&self, namespace: &str, metric_name: &str) -> Result<Vec<AlarmRow>> {
        let mut st = self.conn().prepare(&format!(
            "SELECT {ALARM_COLS} FROM cw_alarms WHERE namespace = ?1 AND metric_name = ?2 ORDER BY name"
        ))?;
        let rows = st.query_map([namespace, metric_name], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The alarms created on behalf of `managed_by`, by name.
    pub fn alarms_managed_by(&self, managed_by: &str) -> Result<Vec<AlarmRow>> {
        let mut st =
            self.conn().prepare(&format!("SELECT {ALARM_COLS} FROM cw_alarms WHERE managed_by = ?1 ORDER BY name"))?;
        let rows = st.query_map([managed_by], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The alarms due at `now`: evaluation time reached, or a SetAlarmState's actions still to run.
    pub fn alarms_due(&self, now: i64) -> Result<Vec<AlarmRow>> {
        // Every second, from the alarm loop: the statement is cached.
        let mut st = self.conn().prepare_cached(&format!(
            "SELECT {ALARM_COLS} FROM cw_alarms WHERE next_evaluation <= ?1 OR actions_pending = 1 ORDER BY name"
        ))?;
        let rows = st.query_map([now], alarm_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The earliest `next_evaluation` of any alarm.
    pub fn alarms_next_due(&self) -> Result<Option<i64>> {
        Ok(self.conn().prepare_cached("SELECT MIN(next_evaluation) FROM cw_alarms")?.query_row([], |r| r.get(0))?)
    }

    /// Appends a history item and returns its `seq`.
    pub fn alarm_history_add(&self, h: &AlarmHistoryRow) -> Result<i64> {
        self.conn().execute(
            "INSERT INTO cw_alarm_history(alarm_name, alarm_type, timestamp, item_type, summary, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![h.alarm_name, h.alarm_type, h.timestamp, h.item_type, h.summary, h.data],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// One page of history items (see [`AlarmHistoryQuery`]).
    pub fn alarm_history_page(&self, q: &AlarmHistoryQuery) -> Result<Vec<AlarmHistoryRow>> {
        let mut sql = format!("SELECT {HISTORY_COLS} FROM cw_alarm_history WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(n) = &q.alarm_name {
            arg(&mut sql, " AND alarm_name = ?", n.clone().into());
        }
        if let Some(t) = &q.item_type {
            arg(&mut sql, " AND item_type = ?", t.clone().into());
        }
        if let Some(s) = q.start {
            arg(&mut sql, " AND timestamp >= ?", s.into());
        }
        if let Some(e) = q.end {
            arg(&mut sql, " AND timestamp <= ?", e.into());
        }
        if !q.alarm_types.is_empty() {
            sql.push_str(" AND alarm_type IN (");
            for (i, t) in q.alarm_types.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                arg(&mut sql, "?", t.clone().into());
            }
            sql.push(')');
        }
        if let Some(c) = q.after {
            let lt = if q.ascending { ">" } else { "<" };
            arg(&mut sql, &format!(" AND (timestamp {lt} ?"), c.timestamp.into());
            arg(&mut sql, " OR (timestamp = ?", c.timestamp.into());
            arg(&mut sql, &format!(" AND seq {lt} ?))"), c.seq.into());
        }
        let order = if q.ascending { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY timestamp {order}, seq {order} LIMIT {}", q.limit));
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args), history_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes history items older than `before`; returns how many.
    pub fn alarm_history_prune(&self, before: f64) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM cw_alarm_history WHERE timestamp < ?1", [before])?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    use super::*;

    fn alarm(name: &str, next: i64) -> AlarmRow {
        AlarmRow {
            name: name.into(),
            arn: format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"),
            config: "{}".into(),
            namespace: Some("App".into()),
            metric_name: Some("Latency".into()),
            managed_by: None,
            actions_enabled: true,
            state: "INSUFFICIENT_DATA".into(),
            state_reason: "Unchecked: Initial alarm creation".into(),
            state_reason_data: None,
            evaluation_state: None,
            state_updated: 1.0,
            state_transitioned: 1.0,
            config_updated: 1.0,
            next_evaluation: next,
            actions_run_at: None,
            actions_pending: false,
            generation: 1,
        }
    }

    fn item(name: &str, t: f64, kind: &str) -> AlarmHistoryRow {
        AlarmHistoryRow {
            seq: 0,
            alarm_name: name.into(),
            alarm_type: "MetricAlarm".into(),
            timestamp: t,
            item_type: kind.into(),
            summary: format!("{kind} at {t}"),
            data: "{}".into(),
        }
    }

    #[test]
    fn alarms_round_trip_and_fall_due() {
        let mut s = Store::open_in_memory().expect("store");
        s.tx(|t| {
            t.alarm_put(&alarm("b", 100))?;
            t.alarm_put(&alarm("a", 50))?;
            let mut c = alarm("c", 500);
            c.namespace = None;
            c.metric_name = None;
            c.actions_pending = true;
            t.alarm_put(&c)?;
            assert_eq!(t.alarm_get("a")?, Some(alarm("a", 50)));
            let names = |v: Vec<AlarmRow>| v.into_iter().map(|a| a.name).collect::<Vec<_>>();
            assert_eq!(names(t.alarms_list()?), ["a", "b", "c"]);
            assert_eq!(t.alarms_count()?, 3);
            assert_eq!(names(t.alarms_due(60)?), ["a", "c"]);
            assert_eq!(names(t.alarms_due(100)?), ["a", "b", "c"]);
            assert_eq!(names(t.alarms_for_metric("App", "Latency")?), ["a", "b"]);
            assert_eq!(t.alarms_next_due()?, Some(50));
            let mut a = alarm("a", 200);
            a.state = "ALARM".into();
            t.alarm_put(&a)?;
            assert_eq!(t.alarm_get("a")?.map(|a| (a.state, a.next_evaluation)), Some(("ALARM".into(), 200)));
            assert!(t.alarm_delete("a")?);
            assert!(!t.alarm_delete("a")?);
            assert_eq!(names(t.alarms_list()?), ["b", "c"]);
            Ok::<_, crate::StoreError>(())
        })
        .expect("tx");
    }

    #[test]
    fn history_pages_by_time_and_seq_in_both_directions() {
        let mut s = Store::open_in_memory().expect("store");
        s.tx(|t| {
            for (name, at, kind) in [
                ("a", 10.0, "StateUpdate"),
                ("b", 10.0, "StateUpdate"),
                ("a", 20.0, "Action"),
                ("a", 20.0, "StateUpdate"),
                ("a", 30.0, "ConfigurationUpdate"),
            ] {
                t.alarm_history_add(&item(name, at, kind))?;
            }
            let walk = |mut q: AlarmHistoryQuery| -> crate::Result<Vec<(String, f64)>> {
                let mut out = Vec::new();
                loop {
                    let page = t.alarm_history_page(&q)?;
                    let Some(last) = page.last() else { return Ok(out) };
                    q.after = Some(HistoryCursor { timestamp: last.timestamp, seq: last.seq });
                    out.extend(page.into_iter().map(|h| (h.item_type, h.timestamp)));
                }
            };
            let a = AlarmHistoryQuery { alarm_name: Some("a".into()), limit: 1, ..Default::default() };
            assert_eq!(
                walk(a.clone())?,
                [
                    ("ConfigurationUpdate".into(), 30.0),
                    ("StateUpdate".into(), 20.0),
                    ("Action".into(), 20.0),
                    ("StateUpdate".into(), 10.0)
                ]
            );
            assert_eq!(
                walk(AlarmHistoryQuery { ascending: true, limit: 2, ..a.clone() })?,
                [
                    ("StateUpdate".into(), 10.0),
                    ("Action".into(), 20.0),
                    ("StateUpdate".into(), 20.0),
                    ("ConfigurationUpdate".into(), 30.0)
                ]
            );
            let ranged = AlarmHistoryQuery {
                item_type: Some("StateUpdate".into()),
                start: Some(10.0),
                end: Some(20.0),
                alarm_types: vec!["MetricAlarm".into()],
                limit: 10,
                ..Default::default()
            };
            assert_eq!(walk(ranged.clone())?.len(), 3);
            assert_eq!(walk(AlarmHistoryQuery { alarm_types: vec!["CompositeAlarm".into()], ..ranged })?, []);
            assert_eq!(t.alarm_history_prune(20.0)?, 2);
            assert_eq!(walk(AlarmHistoryQuery { limit: 10, ..Default::default() })?.len(), 3);
            Ok::<_, crate::StoreError>(())
        })
        .expect("tx");
    }
}
