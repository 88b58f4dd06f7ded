//! CloudWatch metrics and dashboards. A series (`metric_series`) is one metric identity — namespace, name, sorted
//! dimensions, unit — with its storage resolution (1 once any high-resolution datum arrived, else 60) and when it
//! last received data. Its data (`metric_data`) are encoded aggregates keyed by (series, tier, bucket start): the
//! control plane decides tiers, merges and roll-ups (berth-telemetry's rules); this module only keeps the bytes.
//! The flush sequence number (`metric_flush`) says which in-memory batch of the control plane the store already
//! holds, so a read can merge the batches not yet written without counting one twice. Dashboards are bodies by
//! name.

use rusqlite::{OptionalExtension, params};

use crate::{Result, StoreError, Tx};

/// One series' identity and bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSeriesRow {
    pub id: i64,
    pub namespace: String,
    pub name: String,
    /// (name, value), sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// The unit's wire name (`Count`, `None`).
    pub unit: String,
    /// 1 or 60.
    pub storage_resolution: i32,
    /// Epoch seconds of the newest datum's arrival.
    pub last_seen: i64,
}

/// A stored dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardRow {
    pub name: String,
    pub arn: String,
    pub body: String,
    /// Epoch seconds.
    pub last_modified: f64,
}

fn dims_text(dims: &[(String, String)]) -> String {
    serde_json::to_string(dims).unwrap_or_else(|_| "[]".into())
}

fn series_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, String, String, i32, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_series(raw: (i64, String, String, String, String, i32, i64)) -> Result<MetricSeriesRow> {
    let (id, namespace, name, dims, unit, storage_resolution, last_seen) = raw;
    let dimensions = serde_json::from_str(&dims).map_err(|e| StoreError::Corrupt(format!("series {id}: {e}")))?;
    Ok(MetricSeriesRow { id, namespace, name, dimensions, unit, storage_resolution, last_seen })
}

const SERIES_COLUMNS: &str = "id, namespace, name, dimensions, unit, storage_resolution, last_seen";

impl Tx<'_> {
    /// The series' id, creating the series when new; raises its resolution to 1 when `storage_resolution` is 1
    /// and moves `last_seen` forward.
    pub fn metric_series_upsert(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(String, String)],
        unit: &str,
        storage_resolution: i32,
        last_seen: i64,
    ) -> Result<i64> {
        let dims = dims_text(dimensions);
        self.conn().execute(
            "INSERT INTO metric_series(namespace, name, dimensions, unit, storage_resolution, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT(namespace, name, dimensions, unit) DO UPDATE SET \
             storage_resolution = MIN(storage_resolution, excluded.storage_resolution), \
             last_seen = MAX(last_seen, excluded.last_seen)",
            params![namespace, name, dims, unit, storage_resolution, last_seen],
        )?;
        Ok(self.conn().query_row(
            "SELECT id FROM metric_series WHERE namespace = ?1 AND name = ?2 AND dimensions = ?3 AND unit = ?4",
            params![namespace, name, dims, unit],
            |r| r.get(0),
        )?)
    }

    /// The series of one metric (every unit it was recorded with), or of one unit only.
    pub fn metric_series_find(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[(String, String)],
        unit: Option<&str>,
    ) -> Result<Vec<MetricSeriesRow>> {
        let dims = dims_text(dimensions);
        let mut st = self.conn().prepare_cached(&format!(
            "SELECT {SERIES_COLUMNS} FROM metric_series WHERE namespace = ?1 AND name = ?2 AND dimensions = ?3 \
             AND (?4 IS NULL OR unit = ?4) ORDER BY id"
        ))?;
        let rows = st.query_map(params![namespace, name, dims, unit], series_row)?;
        rows.map(|r| to_series(r?)).collect()
    }

    /// Series in id order after `after`, optionally of one namespace and metric name; at most `limit`.
    pub fn metric_series_list(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<MetricSeriesRow>> {
        let mut st = self.conn().prepare_cached(&format!(
            "SELECT {SERIES_COLUMNS} FROM metric_series WHERE id > ?1 AND (?2 IS NULL OR namespace = ?2) \
             AND (?3 IS NULL OR name = ?3) ORDER BY id LIMIT ?4"
        ))?;
        let rows = st.query_map(params![after, namespace, name, limit as i64], series_row)?;
        rows.map(|r| to_series(r?)).collect()
    }

    /// The stored aggregate bytes of one bucket.
    pub fn metric_data_get(&self, series: i64, tier: i64, start: i64) -> Result<Option<Vec<u8>>> {
        let mut st = self
            .conn()
            .prepare_cached("SELECT aggregate FROM metric_data WHERE series = ?1 AND tier = ?2 AND start = ?3")?;
        Ok(st.query_row(params![series, tier, start], |r| r.get(0)).optional()?)
    }

    /// Writes (replacing) one bucket's aggregate bytes.
    pub fn metric_data_put(&self, series: i64, tier: i64, start: i64, aggregate: &[u8]) -> Result<()> {
        let mut st = self.conn().prepare_cached(
            "INSERT INTO metric_data(series, tier, start, aggregate) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(series, tier, start) DO UPDATE SET aggregate = excluded.aggregate",
        )?;
        st.execute(params![series, tier, start, aggregate])?;
        Ok(())
    }

    pub fn metric_data_delete(&self, series: i64, tier: i64, start: i64) -> Result<()> {
        let mut st =
            self.conn().prepare_cached("DELETE FROM metric_data WHERE series = ?1 AND tier = ?2 AND start = ?3")?;
        st.execute(params![series, tier, start])?;
        Ok(())
    }

    /// Every (tier, start, bytes) of a series whose start is in `[start, end)`, by tier then start.
    pub fn metric_data_range(&self, series: i64, start: i64, end: i64) -> Result<Vec<(i64, i64, Vec<u8>)>> {
        let mut st = self.conn().prepare_cached(
            "SELECT tier, start, aggregate FROM metric_data WHERE series = ?1 AND start >= ?2 AND start < ?3 \
             ORDER BY tier, start",
        )?;
        let rows = st.query_map(params![series, start, end], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The bucket starts of a series' tier older than `before`, oldest first, at most `limit`.
    pub fn metric_data_older(&self, series: i64, tier: i64, before: i64, limit: usize) -> Result<Vec<i64>> {
        let mut st = self.conn().prepare_cached(
            "SELECT start FROM metric_data WHERE series = ?1 AND tier = ?2 AND start < ?3 ORDER BY start LIMIT ?4",
        )?;
        let rows = st.query_map(params![series, tier, before, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stored aggregates and their bytes (keys included: series, tier and start as SQLite stores them, 8 bytes
    /// each at most), for one series or all.
    pub fn metric_data_size(&self, series: Option<i64>) -> Result<(i64, i64)> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(aggregate)), 0) FROM metric_data WHERE ?1 IS NULL OR series = ?1",
            [series],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The sequence number of the newest in-memory batch written (0 before the first).
    pub fn metric_flush_seq(&self) -> Result<u64> {
        let n: i64 = self.conn().query_row("SELECT seq FROM metric_flush WHERE id = 0", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn metric_flush_seq_set(&self, seq: u64) -> Result<()> {
        self.conn().execute("UPDATE metric_flush SET seq = ?1 WHERE id = 0", [seq as i64])?;
        Ok(())
    }

    // ---- dashboards

    pub fn dashboard_put(&self, d: &DashboardRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO cw_dashboards(name, arn, body, last_modified) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET body = excluded.body, last_modified = excluded.last_modified",
            params![d.name, d.arn, d.body, d.last_modified],
        )?;
        Ok(())
    }

    pub fn dashboard_get(&self, name: &str) -> Result<Option<DashboardRow>> {
        Ok(self
            .conn()
            .query_row("SELECT name, arn, body, last_modified FROM cw_dashboards WHERE name = ?1", [name], |r| {
                Ok(DashboardRow { name: r.get(0)?, arn: r.get(1)?, body: r.get(2)?, last_modified: r.get(3)? })
            })
            .optional()?)
    }

    /// Dashboards whose name starts with `prefix`, by name, after `after`.
    pub fn dashboard_list(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<DashboardRow>> {
        let mut st = self.conn().prepare(
            "SELECT name, arn, body, last_modified FROM cw_dashboards WHERE substr(name, 1, length(?1)) = ?1 \
             AND name > ?2 ORDER BY name LIMIT ?3",
        )?;
        let rows = st.query_map(params![prefix, after, limit as i64], |r| {
            Ok(DashboardRow { name: r.get(0)?, arn: r.get(1)?, body: r.get(2)?, last_modified: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a dashboard and its tags; `false` if there was none.
    pub fn dashboard_delete(&self, name: &str) -> Result<bool> {
        let Some(d) = self.dashboard_get(name)? else { return Ok(false) };
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [&d.arn])?;
        self.conn().execute("DELETE FROM cw_dashboards WHERE name = ?1", [name])?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn series_upsert_keeps_the_finest_resolution_and_newest_time() {
        let mut s = Store::open_in_memory().expect("store");
        s.tx(|t| {
            let dims = vec![("ServiceName".to_string(), "web".to_string())];
            let a = t.metric_series_upsert("App", "Latency", &dims, "Milliseconds", 60, 100)?;
            let b = t.metric_series_upsert("App", "Latency", &dims, "Milliseconds", 1, 90)?;
            let c = t.metric_series_upsert("App", "Latency", &dims, "Count", 60, 95)?;
            assert_eq!(a, b);
            assert_ne!(a, c);
            let rows = t.metric_series_find("App", "Latency", &dims, None)?;
            assert_eq!(rows.len(), 2);
            assert_eq!((rows[0].storage_resolution, rows[0].last_seen), (1, 100));
            assert_eq!(t.metric_series_find("App", "Latency", &dims, Some("Count"))?.len(), 1);
            assert_eq!(t.metric_series_find("App", "Latency", &[], None)?.len(), 0);
            t.metric_data_put(a, 1, 60, &[1, 2, 3])?;
            t.metric_data_put(a, 1, 60, &[4])?;
            t.metric_data_put(a, 0, 61, &[5])?;
            assert_eq!(t.metric_data_get(a, 1, 60)?, Some(vec![4]));
            assert_eq!(t.metric_data_range(a, 0, 100)?, vec![(0, 61, vec![5]), (1, 60, vec![4])]);
            assert_eq!(t.metric_data_older(a, 1, 61, 10)?, vec![60]);
            t.metric_data_delete(a, 1, 60)?;
            assert_eq!(t.metric_data_size(Some(a))?, (1, 1));
            assert_eq!(t.metric_flush_seq()?, 0);
            t.metric_flush_seq_set(7)?;
            assert_eq!(t.metric_flush_seq()?, 7);
            Ok::<_, crate::StoreError>(())
        })
        .expect("tx");
    }
}
