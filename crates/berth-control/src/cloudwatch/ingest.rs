//! The one gate every datapoint enters by: PutMetricData, the proxies' reports and the tasks' samples hand
//! [`Sample`]s to [`Control::record_metrics`], which buffers them and writes them in batches, off the caller's
//! path. Reads of stored aggregates come back through [`Control::metric_aggregates`].
//!
//! The buffer merges samples per (series, tier, bucket) in memory; [`Control::flush_metrics`] writes everything
//! buffered in one short transaction (the background task [`Control::run_metrics`] does it every second, and once
//! more when the server stops; dropping the control plane does it too). Each batch carries a sequence number and
//! the transaction that writes it records the number, so a read merges exactly the batches the store does not hold
//! yet: what was acknowledged is readable at once, and counted once. Roll-up ([`Control::roll_up_metrics`]) moves
//! aged aggregates into coarser tiers (`storage::roll_up_plan`, merge + delete), a bounded number per pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_telemetry::storage::{self, TIERS, Tier};
use berth_telemetry::{Aggregate, Dimension, MetricId, Unit};

use crate::{Control, ControlError, now};

/// One aggregate of one series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: MetricId,
    /// Epoch seconds.
    pub timestamp: f64,
    pub aggregate: Aggregate,
    /// 1 (high resolution, kept in 1-second buckets for 3 hours) or 60.
    pub storage_resolution: i32,
}

/// How often the buffer is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a roll-up pass runs, and how many aggregates one pass moves at most.
pub const ROLL_UP_INTERVAL: Duration = Duration::from_secs(60);
pub const ROLL_UP_BUDGET: usize = 20_000;
/// Most series one roll-up pass looks at (the next pass continues after the last).
pub const ROLL_UP_SERIES: usize = 2_000;

/// One series' part of a batch.
#[derive(Debug, Clone, Default)]
struct SeriesBatch {
    /// 1 once a high-resolution sample arrived.
    resolution: i32,
    /// Arrival time of the newest sample (epoch seconds).
    last_seen: i64,
    buckets: HashMap<(Tier, i64), Aggregate>,
}

type Batch = HashMap<MetricId, SeriesBatch>;

/// The write buffer: the batch being filled and the batches taken by a flush that is not known to have committed.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    pending: Batch,
    /// The sequence number the pending batch will be written under.
    seq: u64,
    flushing: Vec<(u64, Arc<Batch>)>,
    /// The series id the roll-up continues after.
    roll_up_cursor: i64,
}

/// How many unwritten batches (one a second) the buffer keeps while the store refuses writes: ten minutes. Past it
/// the oldest batch is dropped (and logged), and PutMetricData is refused, so a store that stays down cannot make
/// the server's memory grow without bound.
pub(crate) const MAX_UNWRITTEN_BATCHES: usize = 600;

/// Drops the oldest unwritten batches beyond `max`; returns how many batches, and series in them, were dropped.
fn shed_oldest(flushing: &mut Vec<(u64, Arc<Batch>)>, max: usize) -> (usize, usize) {
    let excess = flushing.len().saturating_sub(max);
    let series = flushing.drain(..excess).map(|(_, b)| b.len()).sum();
    (excess, series)
}

/// Per-series state the control plane keeps for metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    buffer: Mutex<Buffer>,
    /// Serializes flushes (the periodic one, the one at shutdown, the one in `Drop`).
    flush: Mutex<()>,
}

impl Metrics {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One stored or buffered aggregate of a series, as a read collects them.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub metric: MetricId,
    pub start: i64,
    pub aggregate: Aggregate,
}

fn dims_pairs(dims: &[Dimension]) -> Vec<(String, String)> {
    dims.iter().map(|d| (d.name.clone(), d.value.clone())).collect()
}

fn tier_of(n: i64) -> Option<Tier> {
    TIERS.iter().copied().find(|t| *t as i64 == n)
}

/// A series' identity from its row.
pub(crate) fn metric_of(row: &berth_store::MetricSeriesRow) -> MetricId {
    MetricId {
        namespace: row.namespace.clone(),
        name: row.name.clone(),
        dimensions: row.dimensions.iter().map(|(n, v)| Dimension::new(n, v)).collect(),
        unit: Unit::parse(&row.unit, "Unit").unwrap_or(Unit::None),
    }
}

/// Merges `(bucket start, aggregate)` items into `period`-second buckets aligned on `start`, oldest first.
pub(crate) fn into_periods(
    items: impl IntoIterator<Item = (i64, Aggregate)>,
    period: i64,
    start: i64,
) -> Vec<(i64, Aggregate)> {
    let mut out: BTreeMap<i64, Aggregate> = BTreeMap::new();
    for (s, agg) in items {
        let bucket = start + (s - start).div_euclid(period) * period;
        match out.get_mut(&bucket) {
            Some(a) => a.merge(&agg),
            None => {
                out.insert(bucket, agg);
            }
        }
    }
    out.into_iter().collect()
}

impl Control {
    /// Takes samples into the write buffer; never waits for the store.
    pub fn record_metrics(&self, samples: Vec<Sample>) {
        let t = now();
        let now_s = t.floor() as i64;
        let mut buf = self.metrics.buffer();
        for s in samples {
            if !s.timestamp.is_finite() {
                continue;
            }
            let ts = s.timestamp.floor() as i64;
            let high = s.storage_resolution == 1;
            // Older than every tier: nothing would keep it.
            let Some(tier) = storage::tier_for(ts, high, now_s) else { continue };
            let series =
                buf.pending.entry(s.metric).or_insert_with(|| SeriesBatch { resolution: 60, ..Default::default() });
            if high {
                series.resolution = 1;
            }
            series.last_seen = series.last_seen.max(now_s);
            match series.buckets.get_mut(&(tier, tier.bucket(ts))) {
                Some(a) => a.merge(&s.aggregate),
                None => {
                    series.buckets.insert((tier, tier.bucket(ts)), s.aggregate);
                }
            }
        }
    }

    /// Whether the buffer is full of batches the store refused: new datapoints from clients are refused meanwhile.
    pub(crate) fn metric_backlog_full(&self) -> bool {
        self.metrics.buffer().flushing.len() >= MAX_UNWRITTEN_BATCHES
    }

    /// Reads the flush sequence the store holds, so batches numbered from here on are known unwritten.
    pub(crate) fn init_metrics(&self) -> Result<(), ControlError> {
        let seq = self.tx(|tx| Ok(tx.metric_flush_seq()?))?;
        self.metrics.buffer().seq = seq + 1;
        Ok(())
    }

    /// Writes everything buffered in one transaction; returns how many aggregates were written. A failed write
    /// keeps the batches (readable, and written by the next flush).
    pub fn flush_metrics(&self) -> Result<usize, ControlError> {
        let _one = self.metrics.flush.lock().unwrap_or_else(|e| e.into_inner());
        let batches: Vec<(u64, Arc<Batch>)> = {
            let mut buf = self.metrics.buffer();
            if !buf.pending.is_empty() {
                let batch = Arc::new(std::mem::take(&mut buf.pending));
                let seq = buf.seq;
                buf.seq += 1;
                buf.flushing.push((seq, batch));
            }
            let (batches, series) = shed_oldest(&mut buf.flushing, MAX_UNWRITTEN_BATCHES);
            if batches > 0 {
                tracing::error!(
                    batches,
                    series,
                    "the metric store has refused writes for too long: the oldest buffered datapoints are dropped"
                );
            }
            buf.flushing.clone()
        };
        let Some(last) = batches.last().map(|(s, _)| *s) else { return Ok(0) };
        let written = self.tx(|tx| {
            let mut n = 0;
            for (_, batch) in &batches {
                for (metric, series) in batch.iter() {
                    let id = tx.metric_series_upsert(
                        &metric.namespace,
                        &metric.name,
                        &dims_pairs(&metric.dimensions),
                        metric.unit.as_str(),
                        series.resolution,
                        series.last_seen,
                    )?;
                    for ((tier, start), agg) in &series.buckets {
                        let tier_n = *tier as i64;
                        let merged = match tx.metric_data_get(id, tier_n, *start)? {
                            Some(bytes) => match Aggregate::decode(&bytes) {
                                Ok(mut old) => {
                                    old.merge(agg);
                                    old
                                }
                                Err(_) => {
                                    tracing::warn!(series = id, start, "undecodable stored aggregate replaced");
                                    agg.clone()
                                }
                            },
                            None => agg.clone(),
                        };
                        tx.metric_data_put(id, tier_n, *start, &merged.encode())?;
                        n += 1;
                    }
                }
            }
            tx.metric_flush_seq_set(last)?;
            Ok(n)
        })?;
        self.metrics.buffer().flushing.retain(|(s, _)| *s > last);
        Ok(written)
    }

    /// Writes the buffer every second and rolls aged aggregates up every minute, until `shutdown` resolves; then
    /// writes the buffer once more, so nothing acknowledged is lost on a clean stop.
    pub async fn run_metrics(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_roll_up = std::time::Instant::now() - ROLL_UP_INTERVAL;
        loop {
            tokio::select! {
                _ = flush.tick() => {}
                _ = &mut shutdown => break,
            }
            let me = Arc::clone(&self);
            let roll = last_roll_up.elapsed() >= ROLL_UP_INTERVAL;
            if roll {
                last_roll_up = std::time::Instant::now();
            }
            // SQLite off the async workers.
            let done = tokio::task::spawn_blocking(move || {
                if let Err(e) = me.flush_metrics() {
                    tracing::warn!(error = %e, "cannot write metrics; will retry");
                }
                if roll && let Err(e) = me.roll_up_metrics(now().floor() as i64, ROLL_UP_BUDGET) {
                    tracing::warn!(error = %e, "metric roll-up failed; will retry");
                }
            });
            let _ = done.await;
        }
        let me = Arc::clone(&self);
        let _ = tokio::task::spawn_blocking(move || me.flush_metrics()).await;
    }

    /// One roll-up pass at `now`: continuing after the last series the previous pass reached, moves aggregates
    /// that outlived their tier into the coarser tier (merging) or drops them after 455 days, at most `budget`
    /// moves, in one transaction. Restart-safe: what is aged is found again from the store. Returns the moves.
    pub fn roll_up_metrics(&self, now: i64, budget: usize) -> Result<usize, ControlError> {
        let cursor = self.metrics.buffer().roll_up_cursor;
        let (moved, next) = self.tx(|tx| {
            let mut moved = 0;
            let mut visited = 0;
            let mut after = cursor;
            loop {
                if visited >= ROLL_UP_SERIES {
                    return Ok((moved, after));
                }
                let series = tx.metric_series_list(None, None, after, 64)?;
                if series.is_empty() {
                    return Ok((moved, 0));
                }
                for s in series {
                    visited += 1;
                    let mut keys = Vec::new();
                    for tier in TIERS {
                        let before = now - tier.retention();
                        for start in tx.metric_data_older(s.id, tier as i64, before, budget.saturating_sub(moved))? {
                            keys.push((tier, start));
                        }
                    }
                    for m in storage::roll_up_plan(keys, now) {
                        let (tier, start) = m.from;
                        let Some(bytes) = tx.metric_data_get(s.id, tier as i64, start)? else { continue };
                        tx.metric_data_delete(s.id, tier as i64, start)?;
                        moved += 1;
                        let Some((to_tier, to_start)) = m.to else { continue };
                        let Ok(mut agg) = Aggregate::decode(&bytes) else { continue };
                        if let Some(old) = tx.metric_data_get(s.id, to_tier as i64, to_start)?
                            && let Ok(old) = Aggregate::decode(&old)
                        {
                            agg.merge(&old);
                        }
                        tx.metric_data_put(s.id, to_tier as i64, to_start, &agg.encode())?;
                    }
                    after = s.id;
                    if moved >= budget {
                        // This series may hold more: the next pass starts at it again.
                        return Ok((moved, s.id - 1));
                    }
                }
            }
        })?;
        self.metrics.buffer().roll_up_cursor = next;
        Ok(moved)
    }

    /// Every stored or buffered aggregate of the series matching (namespace, name, dimensions) and `unit` (any
    /// unit when `None`) whose bucket starts in `[start, end)`.
    pub(crate) fn metric_entries(
        &self,
        namespace: &str,
        name: &str,
        dimensions: &[Dimension],
        unit: Option<Unit>,
        start: i64,
        end: i64,
    ) -> Result<Vec<Stored>, ControlError> {
        let matches = |m: &MetricId| {
            m.namespace == namespace && m.name == name && m.dimensions == dimensions && unit.is_none_or(|u| m.unit == u)
        };
        let pick = |seq: u64, batch: &Batch, out: &mut Vec<(u64, Stored)>| {
            for (m, s) in batch.iter().filter(|(m, _)| matches(m)) {
                for ((_, b), agg) in &s.buckets {
                    if (start..end).contains(b) {
                        out.push((seq, Stored { metric: m.clone(), start: *b, aggregate: agg.clone() }));
                    }
                }
            }
        };
        let mut unwritten = Vec::new();
        {
            let buf = self.metrics.buffer();
            for (seq, batch) in &buf.flushing {
                pick(*seq, batch, &mut unwritten);
            }
            pick(buf.seq, &buf.pending, &mut unwritten);
        }
        let dims = dims_pairs(dimensions);
        let unit_name = unit.map(Unit::as_str);
        let (written_seq, mut out) = self.read(|tx| {
            let seq = tx.metric_flush_seq()?;
            let mut out = Vec::new();
            for row in tx.metric_series_find(namespace, name, &dims, unit_name)? {
                let metric = metric_of(&row);
                for (tier, s, bytes) in tx.metric_data_range(row.id, start, end)? {
                    let (Some(_), Ok(aggregate)) = (tier_of(tier), Aggregate::decode(&bytes)) else { continue };
                    out.push(Stored { metric: metric.clone(), start: s, aggregate });
                }
            }
            Ok((seq, out))
        })?;
        out.extend(unwritten.into_iter().filter(|(seq, _)| *seq > written_seq).map(|(_, s)| s));
        Ok(out)
    }

    /// The stored aggregates of `metric` (unit included) per `period`-second bucket in `[start, end)` (epoch
    /// seconds), oldest first, each keyed by its bucket's start.
    pub fn metric_aggregates(
        &self,
        metric: &MetricId,
        period: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, ControlError> {
        self.aggregates_of(metric, Some(metric.unit), period, start, end)
    }

    /// [`Control::metric_aggregates`] over every unit the metric was recorded with (`metric.unit` ignored): what
    /// a Get or an alarm without `Unit` reads.
    pub fn metric_aggregates_any_unit(
        &self,
        metric: &MetricId,
        period: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, ControlError> {
        self.aggregates_of(metric, None, period, start, end)
    }

    fn aggregates_of(
        &self,
        metric: &MetricId,
        unit: Option<Unit>,
        period: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, ControlError> {
        if period <= 0 || start >= end {
            return Ok(Vec::new());
        }
        let entries = self.metric_entries(&metric.namespace, &metric.name, &metric.dimensions, unit, start, end)?;
        Ok(into_periods(entries.into_iter().map(|e| (e.start, e.aggregate)), period, start))
    }

    /// Every series (stored, or only buffered so far) of `namespace`/`name` when given, with the newest arrival.
    pub(crate) fn metric_series(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<BTreeMap<MetricId, i64>, ControlError> {
        let mut out: BTreeMap<MetricId, i64> = self.read(|tx| {
            let mut out = BTreeMap::new();
            let mut after = 0;
            loop {
                let rows = tx.metric_series_list(namespace, name, after, 1000)?;
                let Some(last) = rows.last() else { break };
                after = last.id;
                for r in &rows {
                    out.insert(metric_of(r), r.last_seen);
                }
            }
            Ok(out)
        })?;
        let buf = self.metrics.buffer();
        let batches = buf.flushing.iter().map(|(_, b)| b.as_ref()).chain(std::iter::once(&buf.pending));
        for batch in batches {
            for (m, s) in batch.iter() {
                if namespace.is_none_or(|n| n == m.namespace) && name.is_none_or(|n| n == m.name) {
                    let seen = out.entry(m.clone()).or_insert(s.last_seen);
                    *seen = (*seen).max(s.last_seen);
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Control {
    /// A control plane going away (a clean stop, a test's restart) writes what it still buffers.
    fn drop(&mut self) {
        if let Err(e) = self.flush_metrics() {
            tracing::warn!(error = %e, "metrics buffered at shutdown could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_stays_down_sheds_the_oldest_batches() {
        let batch = |n: usize| {
            let mut b = Batch::new();
            for i in 0..n {
                let id = MetricId::new("App", &format!("m{i}"), Vec::new(), berth_telemetry::Unit::None, "M")
                    .expect("metric");
                b.insert(id, SeriesBatch::default());
            }
            Arc::new(b)
        };
        let mut flushing: Vec<(u64, Arc<Batch>)> = (1..=5).map(|s| (s, batch(s as usize))).collect();
        assert_eq!(shed_oldest(&mut flushing, 5), (0, 0));
        assert_eq!(shed_oldest(&mut flushing, 3), (2, 3));
        assert_eq!(flushing.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3, 4, 5]);
    }
}
