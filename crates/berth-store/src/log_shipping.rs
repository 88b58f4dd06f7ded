//! Log shipping: for each task whose output goes to CloudWatch Logs, where it goes (group, stream, the
//! execution role that writes it) and how far it got. The cursor is the last shipped line's timestamp in
//! nanoseconds and how many shipped lines had exactly that timestamp, so a restarted shipper resumes at that
//! instant and skips those lines: nothing is shipped twice and nothing is skipped. It is written in the same
//! transaction as the events it covers.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogShippingRow {
    pub task_id: String,
    pub group: String,
    pub stream: String,
    /// The execution role the events are written as.
    pub role_arn: String,
    /// The timestamp (ns since the Unix epoch) of the last line shipped, or `None` before the first.
    pub last_ns: Option<i64>,
    /// How many shipped lines had exactly `last_ns`.
    pub same_ns: i64,
    /// Lines dropped because PutLogEvents was denied or the stream was gone.
    pub dropped: i64,
    /// The container's output ended and everything was shipped (or the container is gone).
    pub drained: bool,
}

const COLS: &str = "task_id, group_name, stream, role_arn, last_ns, same_ns, dropped, drained";

fn row(r: &Row<'_>) -> rusqlite::Result<LogShippingRow> {
    Ok(LogShippingRow {
        task_id: r.get(0)?,
        group: r.get(1)?,
        stream: r.get(2)?,
        role_arn: r.get(3)?,
        last_ns: r.get(4)?,
        same_ns: r.get(5)?,
        dropped: r.get(6)?,
        drained: r.get(7)?,
    })
}

impl Tx<'_> {
    /// Records (or replaces, for a relaunch of the same task id) where a task's output goes.
    pub fn log_shipping_put(&self, s: &LogShippingRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT OR REPLACE INTO log_shipping({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![s.task_id, s.group, s.stream, s.role_arn, s.last_ns, s.same_ns, s.dropped, s.drained],
        )?;
        Ok(())
    }

    pub fn log_shipping_get(&self, task_id: &str) -> Result<Option<LogShippingRow>> {
        let sql = format!("SELECT {COLS} FROM log_shipping WHERE task_id = ?1");
        Ok(self.conn().query_row(&sql, [task_id], row).optional()?)
    }

    /// Every task whose output is not drained yet.
    pub fn log_shipping_undrained(&self) -> Result<Vec<LogShippingRow>> {
        let mut stmt =
            self.conn().prepare(&format!("SELECT {COLS} FROM log_shipping WHERE drained = 0 ORDER BY task_id"))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Moves a task's cursor (and drop counter, drained flag).
    pub fn log_shipping_update(&self, s: &LogShippingRow) -> Result<()> {
        self.conn().execute(
            "UPDATE log_shipping SET last_ns = ?2, same_ns = ?3, dropped = ?4, drained = ?5 WHERE task_id = ?1",
            params![s.task_id, s.last_ns, s.same_ns, s.dropped, s.drained],
        )?;
        Ok(())
    }

    /// Forgets drained rows of tasks that no longer exist (pruned).
    pub fn log_shipping_prune(&self) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM log_shipping WHERE drained = 1 AND task_id NOT IN (SELECT id FROM tasks)", [])?)
    }
}
